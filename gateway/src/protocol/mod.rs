//! The ZKTeco PUSH / ADMS protocol, as pure functions over text: no HTTP, no I/O.
//!
//! Two dialects share the `/iclock/` paths: attendance PUSH (`GET OPTION FROM`,
//! `table=ATTLOG`, `DATA UPDATE USERINFO`) and Security PUSH of access-control firmware
//! (`/iclock/registry`, `table=rtlog`, `DATA UPDATE user`).

pub mod attlog;
pub mod commands;
pub mod operlog;
pub mod options;
pub mod params;
pub mod rtlog;
pub mod status;
pub mod tables;
pub mod time;

/// Which PUSH protocol a device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Attendance PUSH (`DeviceType=att`, the default).
    #[default]
    Attendance,
    /// Security PUSH, access-control firmware (`DeviceType=acc`).
    Access,
}

impl Dialect {
    /// From a `DeviceType=` value; `None` when it names neither.
    pub fn from_device_type(value: &str) -> Option<Self> {
        match value.trim() {
            v if v.eq_ignore_ascii_case("acc") => Some(Self::Access),
            v if v.eq_ignore_ascii_case("att") => Some(Self::Attendance),
            _ => None,
        }
    }

    pub fn device_type(self) -> &'static str {
        match self {
            Self::Attendance => "att",
            Self::Access => "acc",
        }
    }
}

/// What of a line is kept when it is rejected: lines longer than any record are cut,
/// so that one line never makes an event too large to store.
pub const MAX_KEPT_LINE: usize = 512;

/// `line` as it is kept: whole, or its first [`MAX_KEPT_LINE`] bytes (on a character
/// boundary) with how long it was.
pub fn kept_line(line: &str) -> String {
    if line.len() <= MAX_KEPT_LINE {
        return line.to_owned();
    }
    let mut end = MAX_KEPT_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &line[..end], line.len())
}
