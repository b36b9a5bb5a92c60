//! Huawei Cloud RAM over HTTPS with SDK-HMAC-SHA256 signing. Placeholder.
