//! The gateway's integration tests.

mod abuse;
mod firmware;
mod fuzz_smoke;
mod http;
mod mobile;
mod parser_properties;
mod push_protocol;
mod real_devices;
mod security_push;
mod status;

use std::path::PathBuf;

/// Punch logs exported by real ZKTeco-family machines, pseudonymised and committed
/// (`gateway/testdata/real-devices/PROVENANCE.md`).
pub fn real_devices_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/real-devices")
}

/// Unbinds `sn` from `tenant` as an administrator would, under a fresh command id.
pub async fn unbind(
    ledger: &ledger::Ledger,
    tenant: &schemas::ids::TenantId,
    sn: &schemas::ids::DeviceSn,
    actor: schemas::Actor,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<commands::Outcome, commands::CommandError> {
    let request = commands::Request::new(tenant.clone(), actor, sn.clone());
    commands::devices::unbind(ledger, &request, now).await
}
