//! Huawei Cloud RAM (issue 12). Placeholder: filled in by the Huawei emulator work.

use axum::Router;

use super::Emulator;

/// The Huawei RAM emulator's state.
#[derive(Debug, Default)]
pub(super) struct HuaweiState {}

/// The Huawei RAM routes, merged into the emulator's router.
pub(super) fn routes() -> Router<Emulator> {
    Router::new()
}
