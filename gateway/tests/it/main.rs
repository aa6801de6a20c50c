//! The gateway's integration tests.

mod firmware;
mod fuzz_smoke;
mod http;
mod mobile;
mod parser_properties;
mod real_devices;
mod status;

use std::path::PathBuf;

/// Punch logs exported by real ZKTeco-family machines, pseudonymised and committed
/// (`gateway/testdata/real-devices/PROVENANCE.md`).
pub fn real_devices_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/real-devices")
}
