//! AWS RAM through `aws-sdk-ram`. Placeholder.
