//! The gateway: the only door devices and phones have into the ledger. It speaks the
//! ZKTeco PUSH / ADMS protocol (`/iclock/...`) and appends what devices send through
//! `ledger`.
//!
//! - [`protocol`]: pure parsing and rendering of the device protocol.
//! - [`ingest`]: from an ATTLOG body to events, pure.
//! - [`operlog_ingest`]: from an OPERLOG/BIODATA body (users, biometrics, operation log) to events, pure.
//! - [`admin`]: bind, rename, unbind (decide + execute).
//! - [`registration`]: Security-PUSH registration codes, one per binding.
//! - [`cursors`]: upload cursors (`Stamp=`) per device and table, echoed on handshake.
//! - [`commands`]: a device's command queue folded from events; what a poll delivers.
//! - [`people`]: hire, update, remove under the badge-number rules.
//! - [`roster`]: who each device should hold (its scope) and the commands that get it there.
//! - [`mobile`]: a phone's punch checked against its person's rule, pure.
//! - [`http`]: the HTTP shell: its own HTTP/1.1 connection layer for devices that do not
//!   speak HTTP well, the handlers, health; `run(gateway, listener, shutdown)`.
//! - [`view`]: bindings, command queues and phone rules folded from the stream by one
//!   tail per partition, so polls and phone punches read memory, not the stream.
//! - [`simulator`]: a firmware-like device for tests and benchmarks.
//!
//! Non-goals: judging days (projections do), and keeping state of its own: bindings and
//! pending commands are folded from events, so any gateway instance serves any device.

pub mod admin;
pub mod commands;
pub mod cursors;
pub mod fuzzing;
pub mod http;
pub mod ingest;
pub mod mobile;
pub mod operlog_ingest;
pub mod protocol;
pub mod registration;
pub mod simulator;
pub mod view;
