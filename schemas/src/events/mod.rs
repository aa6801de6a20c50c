//! The v1 event catalogue.
//!
//! Every fact Ledgerclock knows is one of the [`Event`] variants below. Each variant's
//! data type is named like the variant, in the past tense; names are never reused or
//! renamed (a changed meaning is a new event). The list in [`catalogue!`] is the single
//! source for the enum, its kind names, its aggregates, its JSON Schemas and its samples.

/// Puts the derives every wire type needs on each item.
macro_rules! domain_types {
    ($($item:item)*) => {
        $(
            #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
            #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
            $item
        )*
    };
}

/// Declares which aggregate (and so which subject) each event belongs to, by one of its id
/// fields.
macro_rules! keyed_by {
    ($($ty:ident => $kind:ident($field:ident)),* $(,)?) => {
        $(
            impl $ty {
                pub fn aggregate(&self) -> crate::events::Aggregate {
                    crate::events::Aggregate::new(
                        crate::events::AggregateKind::$kind,
                        &self.$field.as_str(),
                    )
                }
            }
        )*
    };
}

pub mod corrections;
pub mod devices;
pub mod organisation;
pub mod punches;
pub mod rules;

pub use corrections::*;
pub use devices::*;
pub use organisation::*;
pub use punches::*;
pub use rules::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an event is about: its kind and id become the last two tokens of its subject,
/// and optimistic concurrency is per aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Aggregate {
    pub kind: AggregateKind,
    pub id: String,
}

impl Aggregate {
    pub fn new(kind: AggregateKind, id: &str) -> Self {
        Self {
            kind,
            id: id.to_owned(),
        }
    }

    pub fn person(id: &crate::ids::PersonId) -> Self {
        Self::new(AggregateKind::Person, id.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AggregateKind {
    Department,
    Person,
    Device,
    DeviceCommands,
    DeviceStatus,
    Punches,
    Rule,
    Shift,
    Schedule,
    Cycle,
    Calendar,
    Reupload,
    /// A device's upload cursor per table (`DeviceStampRecorded`).
    DeviceCursor,
    /// A Security-PUSH device's registration (`DeviceRegistered`).
    DeviceRegistration,
    /// A device's own operation log (`DeviceOperationLogged`), apart from its status so
    /// that a device's last status is its subject's last message.
    DeviceLog,
    /// A payroll period (`PeriodClosed`), by month.
    Period,
}

impl AggregateKind {
    pub const ALL: [AggregateKind; 16] = [
        Self::Department,
        Self::Person,
        Self::Device,
        Self::DeviceCommands,
        Self::DeviceStatus,
        Self::Punches,
        Self::Rule,
        Self::Shift,
        Self::Schedule,
        Self::Cycle,
        Self::Calendar,
        Self::Reupload,
        Self::DeviceCursor,
        Self::DeviceRegistration,
        Self::DeviceLog,
        Self::Period,
    ];

    /// The subject token for this kind.
    pub fn token(self) -> &'static str {
        match self {
            Self::Department => "department",
            Self::Person => "person",
            Self::Device => "device",
            Self::DeviceCommands => "devcmd",
            Self::DeviceStatus => "devstatus",
            Self::Punches => "punch",
            Self::Rule => "rule",
            Self::Shift => "shift",
            Self::Schedule => "schedule",
            Self::Cycle => "cycle",
            Self::Calendar => "calendar",
            Self::Reupload => "reupload",
            Self::DeviceCursor => "devcursor",
            Self::DeviceRegistration => "devreg",
            Self::DeviceLog => "devlog",
            Self::Period => "period",
        }
    }

    /// Kinds whose events are the facts reports are judged by (organisation, rules,
    /// schedules, calendars, approvals, calibrations), as opposed to punches and the
    /// devices' own traffic.
    pub fn holds_facts(self) -> bool {
        match self {
            Self::Department
            | Self::Person
            | Self::Rule
            | Self::Shift
            | Self::Schedule
            | Self::Cycle
            | Self::Calendar
            | Self::Period => true,
            Self::Device
            | Self::DeviceCommands
            | Self::DeviceStatus
            | Self::Punches
            | Self::Reupload
            | Self::DeviceCursor
            | Self::DeviceRegistration
            | Self::DeviceLog => false,
        }
    }

    pub fn from_token(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.token() == token)
    }
}

macro_rules! catalogue {
    ($($kind:ident),* $(,)?) => {
        /// Every v1 event. On the wire: `{"type": "<Kind>", "data": {...}}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "type", content = "data")]
        pub enum Event {
            $($kind($kind),)*
        }

        impl Event {
            /// Every kind name, in catalogue order.
            pub const KINDS: &'static [&'static str] = &[$(stringify!($kind)),*];

            pub fn kind(&self) -> &'static str {
                match self {
                    $(Event::$kind(_) => stringify!($kind),)*
                }
            }

            pub fn aggregate(&self) -> Aggregate {
                match self {
                    $(Event::$kind(e) => e.aggregate(),)*
                }
            }
        }

        $(
            impl From<$kind> for Event {
                fn from(e: $kind) -> Self {
                    Event::$kind(e)
                }
            }
        )*

        /// The JSON Schema of each kind's data, by kind name.
        pub fn data_schemas() -> Vec<(&'static str, schemars::Schema)> {
            vec![$((stringify!($kind), schemars::schema_for!($kind)),)*]
        }

        /// An arbitrary event of the named kind (property tests, fuzzing, samples).
        #[cfg(feature = "arbitrary")]
        pub fn arbitrary_of_kind(
            kind: &str,
            u: &mut arbitrary::Unstructured<'_>,
        ) -> arbitrary::Result<Option<Event>> {
            use arbitrary::Arbitrary;
            Ok(match kind {
                $(stringify!($kind) => Some(Event::$kind($kind::arbitrary(u)?)),)*
                _ => None,
            })
        }

        #[cfg(feature = "arbitrary")]
        impl<'a> arbitrary::Arbitrary<'a> for Event {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                let kind = u.choose(Self::KINDS)?;
                arbitrary_of_kind(kind, u)?.ok_or(arbitrary::Error::IncorrectFormat)
            }
        }
    };
}

catalogue! {
    // organisation
    DepartmentDefined,
    DepartmentRenamed,
    DepartmentMoved,
    PersonHired,
    PersonUpdated,
    PersonLeft,
    PersonRejoined,
    BadgeNumberAssigned,
    // devices
    DeviceBound,
    DeviceUnbound,
    DeviceRenamed,
    DeviceScopeSet,
    RosterMemberPushed,
    RosterMemberRemoved,
    RosterMemberDisabled,
    DevicePrivilegeSet,
    BiometricEnrolled,
    BiometricRemoved,
    DeviceCommandQueued,
    DeviceCommandDelivered,
    DeviceCommandAcknowledged,
    DeviceCommandFailed,
    DeviceCommandExpired,
    UnknownDeviceSeen,
    DeviceStatusReported,
    DeviceClaimed,
    DeviceReleased,
    DeviceUserReported,
    DeviceOperationLogged,
    DeviceCommandSuperseded,
    DeviceRegistered,
    DeviceStampRecorded,
    DeviceUploadUnrecognised,
    // punches
    PunchRecorded,
    PunchesRecorded,
    DeviceRecordRejected,
    MobilePunchRefused,
    // rules
    RuleVersionDefined,
    RuleMembershipSet,
    ShiftDefined,
    ScheduleAssigned,
    ScheduleCycleDefined,
    ScheduleCycleAssigned,
    ShiftSwapApproved,
    HolidayCalendarPublished,
    SpecialDatesSet,
    // corrections
    MakeUpPunchRequested,
    MakeUpPunchApproved,
    MakeUpPunchRejected,
    CalibrationApplied,
    LeaveApproved,
    BusinessTripApproved,
    OutingApproved,
    OvertimeApproved,
    ReuploadRequested,
    PeriodClosed,
}
