//! The schemas crate's integration tests: one binary, a module per concern.

mod json_schemas;
mod roundtrip;
mod samples;
mod values;

/// Set to rewrite generated files (schemas) or add missing ones (samples) instead of failing.
fn blessing() -> bool {
    std::env::var_os("LEDGERCLOCK_BLESS").is_some()
}

fn crate_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
