//! The gateway: the only door devices and phones have into the ledger. It speaks the
//! ZKTeco PUSH / ADMS protocol (`/iclock/...`) and appends what devices send through
//! `ledger`.
//!
//! - [`protocol`]: pure parsing and rendering of the device protocol.
//! - [`ingest`]: from an ATTLOG body to events, pure.
//! - [`admin`]: bind, rename, unbind (decide + execute).
//! - [`commands`]: a device's command queue folded from events; what a poll delivers.
//! - [`people`]: hire, update, remove under the badge-number rules.
//! - [`http`]: the HTTP shell: `run(gateway, listener, shutdown)`.
//! - [`simulator`]: a firmware-like device for tests and benchmarks.
//!
//! Non-goals: judging days (projections do), and keeping state of its own: bindings and
//! pending commands are read from events, so any gateway instance serves any device.
//! Not yet here: mobile punches, OPERLOG/BIODATA as events, device status events.

pub mod admin;
pub mod commands;
pub mod http;
pub mod ingest;
pub mod people;
pub mod protocol;
pub mod simulator;
