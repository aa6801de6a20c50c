//! Upload tables (`POST /iclock/cdata?table=..`, and `querydata`'s `tablename=`): which
//! ones the gateway reads, how, and what it answers. Names are matched in any case
//! (firmware sends `ATTLOG`, `attlog`, `options`, `rtlog`).
//!
//! Every upload is stored, or deliberately ignored with a reason, before it is
//! answered: a table nobody here knows is kept as sent ([`Handling::Keep`]), never
//! answered `OK` and dropped.

use super::operlog::Untagged;

/// An upload's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Table {
    /// Attendance records (`ATTLOG`).
    AttLog,
    /// Users, biometrics and the operation log (`OPERLOG`).
    OperLog,
    /// Unified biometric templates (`BIODATA`).
    BioData,
    /// Users, in reply to `DATA QUERY USERINFO` (`USERINFO`).
    UserInfo,
    /// Fingerprint templates (`FINGERTMP`).
    FingerTmp,
    /// An attendance photo (`ATTPHOTO`): one JPEG per POST.
    AttPhoto,
    /// What the device says about itself (`options`, after `PushOptionsFlag=1`).
    Options,
    /// Access records as they happen (`rtlog`) or from a backlog (`transaction`).
    RtLog,
    /// Door sensors and relays (`rtstate`).
    RtState,
    /// The device's error reports (`ERRORLOG`).
    ErrorLog,
    /// Identity-card readings (`IDCARD`): a national ID's personal data.
    IdCard,
    /// Security PUSH's `table=tabledata&tablename=<name>` and `querydata` bodies,
    /// answered `<name>=<count>`; `name` is lower-case.
    TableData(String),
    /// Anything else, as sent.
    Unknown(String),
}

/// What the gateway does with an upload's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// ATTLOG lines: punches.
    Attendance,
    /// `rtlog`/`transaction` lines: punches when a person was verified.
    Access,
    /// OPERLOG-style lines: users, biometrics, operations; lines without a tag read as
    /// the given kind.
    Records(Option<Untagged>),
    /// `key=value` about the device: its status.
    DeviceOptions,
    /// Not kept, for this reason; answered and counted.
    Ignore(&'static str),
    /// Not understood: stored as sent (`DeviceUploadUnrecognised`).
    Keep,
}

impl Table {
    /// From `table=` and, for Security PUSH's `tabledata`, `tablename=`.
    pub fn parse(table: &str, tablename: Option<&str>) -> Self {
        let upper = table.trim().to_ascii_uppercase();
        match upper.as_str() {
            "ATTLOG" => Self::AttLog,
            "OPERLOG" => Self::OperLog,
            "BIODATA" => Self::BioData,
            "USERINFO" | "USER" => Self::UserInfo,
            "FINGERTMP" => Self::FingerTmp,
            "ATTPHOTO" => Self::AttPhoto,
            "OPTIONS" => Self::Options,
            "RTLOG" | "TRANSACTION" => Self::RtLog,
            "RTSTATE" => Self::RtState,
            "ERRORLOG" => Self::ErrorLog,
            "IDCARD" => Self::IdCard,
            "TABLEDATA" => {
                Self::TableData(tablename.unwrap_or_default().trim().to_ascii_lowercase())
            }
            _ => Self::Unknown(table.trim().to_owned()),
        }
    }

    /// The name stamps and logs use: upper-case for attendance tables.
    pub fn name(&self) -> String {
        match self {
            Self::AttLog => "ATTLOG".into(),
            Self::OperLog => "OPERLOG".into(),
            Self::BioData => "BIODATA".into(),
            Self::UserInfo => "USERINFO".into(),
            Self::FingerTmp => "FINGERTMP".into(),
            Self::AttPhoto => "ATTPHOTO".into(),
            Self::Options => "options".into(),
            Self::RtLog => "rtlog".into(),
            Self::RtState => "rtstate".into(),
            Self::ErrorLog => "ERRORLOG".into(),
            Self::IdCard => "IDCARD".into(),
            Self::TableData(name) => format!("tabledata/{name}"),
            Self::Unknown(name) => name.clone(),
        }
    }

    pub fn handling(&self) -> Handling {
        match self {
            Self::AttLog => Handling::Attendance,
            Self::RtLog => Handling::Access,
            Self::OperLog | Self::BioData => Handling::Records(None),
            Self::UserInfo => Handling::Records(Some(Untagged::User)),
            Self::FingerTmp => Handling::Records(Some(Untagged::Fingerprint)),
            Self::Options => Handling::DeviceOptions,
            Self::AttPhoto => Handling::Ignore("attendance photos are not kept"),
            Self::RtState => Handling::Ignore("door and relay states are not kept"),
            Self::ErrorLog => Handling::Ignore("device error reports are not kept"),
            Self::IdCard => Handling::Ignore("identity-card data is not kept"),
            Self::TableData(name) => match name.as_str() {
                "user" => Handling::Records(Some(Untagged::User)),
                "biodata" | "templatev10" | "facev7" => Handling::Records(None),
                "transaction" => Handling::Access,
                "options" => Handling::DeviceOptions,
                "biophoto" | "userpic" | "attphoto" => Handling::Ignore("photos are not kept"),
                "errorlog" => Handling::Ignore("device error reports are not kept"),
                "identitycard" => Handling::Ignore("identity-card data is not kept"),
                _ => Handling::Keep,
            },
            Self::Unknown(_) => Handling::Keep,
        }
    }

    /// The answer once `count` records (lines) are stored or deliberately ignored.
    /// Attendance tables hear `OK: n`; Security PUSH's `tabledata` hears `<name>=<n>`
    /// (a bare `OK` makes it send the same data again); the rest `OK`.
    pub fn answer(&self, count: usize) -> String {
        match self {
            Self::TableData(name) => format!("{name}={count}\n"),
            Self::AttPhoto | Self::Options | Self::RtLog | Self::RtState => "OK\n".into(),
            Self::AttLog
            | Self::OperLog
            | Self::BioData
            | Self::UserInfo
            | Self::FingerTmp
            | Self::ErrorLog
            | Self::IdCard
            | Self::Unknown(_) => format!("OK: {count}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_case() {
        assert_eq!(Table::parse("attlog", None), Table::AttLog);
        assert_eq!(Table::parse(" AttLog ", None), Table::AttLog);
        assert_eq!(Table::parse("rtlog", None).handling(), Handling::Access);
        assert_eq!(
            Table::parse("tabledata", Some("USER")),
            Table::TableData("user".into())
        );
        assert_eq!(
            Table::parse("tabledata", Some("user")).answer(3),
            "user=3\n"
        );
        assert_eq!(Table::parse("ATTLOG", None).answer(2), "OK: 2\n");
        assert_eq!(Table::parse("rtlog", None).answer(1), "OK\n");
        assert_eq!(
            Table::parse("FOOLOG", None).handling(),
            Handling::Keep,
            "an unknown table is kept, not dropped"
        );
    }
}
