//! The gateway's integration tests.

mod http;
mod parser_properties;
mod real_devices;

use std::path::PathBuf;

/// `../shared/data/real-devices/` beside the checkout: punch logs exported by real
/// ZKTeco-family machines (see its PROVENANCE.md).
pub fn real_devices_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/real-devices")
}
