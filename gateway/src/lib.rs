//! The gateway: the only door devices and phones have into the ledger. It speaks the
//! ZKTeco PUSH / ADMS protocol (`/iclock/...`) and a JSON endpoint for mobile punches,
//! and appends their events through `ledger`.
//!
//! Non-goals: judging days (projections do) and keeping state of its own: pending device
//! commands and bindings are read from events, so any gateway instance serves any device.
