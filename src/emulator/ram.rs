//! AWS RAM over restJson1 (issue 12). Placeholder: filled in by the RAM emulator work.

use axum::Router;

use super::Emulator;

/// The RAM emulator's state.
#[derive(Debug, Default)]
pub(super) struct RamState {}

/// The RAM routes, merged into the emulator's router.
pub(super) fn routes() -> Router<Emulator> {
    Router::new()
}
