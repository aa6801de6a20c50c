//! Identifiers and small value types shared by every event.
//!
//! Identifiers are strings on the wire so that tenants can bring their own (HR system ids,
//! device serial numbers). Only `TenantId` is restricted, because it names a subject token
//! and a partition; every other id is escaped by the ledger when it enters a subject.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::SchemaError;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }
    };
}

string_id!(
    /// A person's account in the tenant. A person who leaves and rejoins gets a new one.
    PersonId
);
string_id!(
    /// A department (or sub-company) in the tenant's organisation tree.
    DepartmentId
);
string_id!(
    /// A device's serial number, as the device reports it in `SN=`.
    DeviceSn
);
string_id!(
    /// The person's number on a device (工号, PIN). Numeric and at most 9 digits when an
    /// administrator assigns it; kept as the device sent it (trimmed) when a device reports it.
    BadgeNumber
);
string_id!(
    /// An attendance rule; its versions are numbered from 1.
    RuleId
);
string_id!(
    /// A named shift (班次).
    ShiftId
);
string_id!(
    /// A schedule cycle (排班周期).
    CycleId
);
string_id!(
    /// A holiday calendar, e.g. `CN` for China's official calendar.
    CalendarId
);
string_id!(
    /// An approval form (leave, trip, outing, overtime, make-up) in the tenant's workflow.
    ApprovalId
);
string_id!(
    /// An administrator's or user's login, as the command service knows it.
    UserId
);
string_id!(
    /// A command as its caller named it (or the CLI minted it): the events it decided
    /// carry it and their ids derive from it, so the same command sent again, even long
    /// after JetStream's duplicate window, stores its facts once.
    CommandId
);

/// A tenant: one company. Lowercase ASCII letters, digits and `-`, 1 to 63 characters,
/// starting with a letter or digit, because it is a subject token and decides a partition.
/// `_system` is reserved for facts that belong to no tenant yet (an unknown device).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct TenantId(String);

impl TenantId {
    pub const SYSTEM: &'static str = "_system";

    pub fn parse(id: &str) -> Result<Self, SchemaError> {
        let ok = id == Self::SYSTEM
            || (!id.is_empty()
                && id.len() <= 63
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !id.starts_with('-'));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(SchemaError::InvalidTenant(id.to_owned()))
        }
    }

    pub fn system() -> Self {
        Self(Self::SYSTEM.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = SchemaError;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::parse(&id)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> Self {
        id.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for TenantId {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.int_in_range(1..=12)?;
        let mut s = String::with_capacity(n);
        for _ in 0..n {
            s.push(*u.choose(b"abcdefghijklmnopqrstuvwxyz0123456789")? as char);
        }
        Ok(Self(s))
    }
}

/// An IANA time-zone name (`Asia/Shanghai`, `America/New_York`), checked against the tz
/// database this build carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct ZoneName(String);

impl ZoneName {
    pub fn parse(name: &str) -> Result<Self, SchemaError> {
        name.parse::<chrono_tz::Tz>()
            .map(|tz| Self(tz.name().to_owned()))
            .map_err(|_| SchemaError::InvalidZone(name.to_owned()))
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        // Construction guarantees the name parses.
        self.0.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ZoneName {
    type Error = SchemaError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::parse(&name)
    }
}

impl From<ZoneName> for String {
    fn from(zone: ZoneName) -> Self {
        zone.0
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for ZoneName {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let name = u.choose(&[
            "Asia/Shanghai",
            "America/New_York",
            "Europe/Berlin",
            "UTC",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
        ])?;
        Ok(Self((*name).to_owned()))
    }
}

/// A calendar month, `YYYY-MM`: a payroll period.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let bad = || SchemaError::InvalidMonth(text.to_owned());
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let (year, month) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        chrono::NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
        Ok(Self { year, month })
    }

    /// The month a date falls in.
    pub fn of(date: chrono::NaiveDate) -> Self {
        use chrono::Datelike;
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    pub fn first_day(self) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("validated")
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Its last day.
    pub fn last_day(self) -> chrono::NaiveDate {
        self.next().first_day().pred_opt().expect("a day before")
    }

    pub fn contains(self, date: chrono::NaiveDate) -> bool {
        Self::of(date) == self
    }

    /// `YYYY-MM`.
    pub fn as_str(&self) -> String {
        self.to_string()
    }
}

impl TryFrom<String> for Month {
    type Error = SchemaError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Month> for String {
    fn from(m: Month) -> Self {
        m.to_string()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Month {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self {
            year: u.int_in_range(1990..=2099)?,
            month: u.int_in_range(1..=12)?,
        })
    }
}

/// Every event's identity, used as `Nats-Msg-Id`. Time-ordered (UUIDv7) when minted fresh,
/// name-based (UUIDv5) when derived from a fact that can arrive more than once.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    /// An id derived from `parts`: the same parts always give the same id, so a fact that
    /// is reported twice is appended once.
    pub fn derived(parts: &[&str]) -> Self {
        Self(derive_uuid(parts))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A punch's identity. For a device record it is derived from (SN, badge number, local
/// time as sent), so every re-send of the record is the same punch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(transparent)]
pub struct PunchId(pub Uuid);

impl PunchId {
    pub fn for_device_record(
        sn: &DeviceSn,
        badge: &BadgeNumber,
        local_time: chrono::NaiveDateTime,
    ) -> Self {
        let time = local_time.format("%Y-%m-%dT%H:%M:%S").to_string();
        Self(derive_uuid(&[
            "device-punch",
            sn.as_str(),
            badge.as_str(),
            &time,
        ]))
    }

    /// A phone's punch: derived from (person, instant to the second, what else the phone
    /// sent), so a phone that retries after a lost answer records the same punch, and a
    /// second, different punch in the same second is another.
    pub fn for_mobile(
        person: &PersonId,
        instant: chrono::DateTime<chrono::Utc>,
        evidence: &str,
    ) -> Self {
        let time = instant.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        Self(derive_uuid(&[
            "mobile-punch",
            person.as_str(),
            &time,
            evidence,
        ]))
    }

    /// An approved make-up punch: one punch per approval, however often it is approved.
    pub fn for_make_up(approval: &ApprovalId) -> Self {
        Self(derive_uuid(&["make-up-punch", approval.as_str()]))
    }

    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }
}

impl fmt::Display for PunchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Ledgerclock's UUIDv5 namespace (itself a v5 of the project's name in the URL namespace).
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"ledgerclock")
}

fn derive_uuid(parts: &[&str]) -> Uuid {
    // A unit separator cannot occur in any of the parts we derive from, so
    // ("ab","c") and ("a","bc") give different ids.
    let joined = parts.join("\u{1f}");
    Uuid::new_v5(&namespace(), joined.as_bytes())
}

string_id!(
    /// A calibration (校准); a later calibration may replace it, never erase it.
    CalibrationId
);
string_id!(
    /// A re-upload request sent to one or more devices.
    RequestId
);
