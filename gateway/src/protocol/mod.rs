//! The ZKTeco PUSH / ADMS protocol, as pure functions over text: no HTTP, no I/O.

pub mod attlog;
pub mod commands;
pub mod operlog;
pub mod options;
pub mod status;
