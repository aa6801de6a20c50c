//! The gateway's integration tests.

mod firmware;
mod fuzz_smoke;
mod http;
mod mobile;
mod parser_properties;
mod real_devices;
mod status;

use std::path::PathBuf;

/// Punch logs exported by real ZKTeco-family machines (see its PROVENANCE.md):
/// `$LEDGERCLOCK_REAL_DEVICES`, else `shared/data/real-devices/` beside the checkout.
pub fn real_devices_dir() -> PathBuf {
    let dir = std::env::var_os("LEDGERCLOCK_REAL_DEVICES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/real-devices"),
        PathBuf::from,
    );
    assert!(
        dir.join("caoka_1_attlog.dat").is_file(),
        "real device records not found in {}: put shared/ beside the checkout or set LEDGERCLOCK_REAL_DEVICES",
        dir.display()
    );
    dir
}
