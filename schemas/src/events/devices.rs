//! Attendance machines: binding, scope, roster, biometrics, commands and sightings.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::ids::{BadgeNumber, DepartmentId, DeviceSn, PersonId, TenantId, ZoneName};

domain_types! {
    /// A device was bound to the tenant. Its local times are read in `zone`.
    pub struct DeviceBound {
        pub sn: DeviceSn,
        pub name: String,
        #[serde(default)]
        pub model: Option<String>,
        pub zone: ZoneName,
        /// Records dated before this local date are rejected (clock resets); `None`: the
        /// binding date.
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::opt_date))]
        #[serde(default)]
        pub records_from: Option<NaiveDate>,
    }

    /// The system-wide claim of a serial number by a tenant, recorded under the system
    /// tenant on the SN's own subject: an SN is bound to one tenant at a time, enforced by
    /// optimistic concurrency on that subject. The gateway reads bindings from these.
    pub struct DeviceClaimed {
        pub sn: DeviceSn,
        pub tenant: TenantId,
        pub zone: ZoneName,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub records_from: NaiveDate,
    }

    /// The claim ended (the device was unbound); the SN may be bound again.
    pub struct DeviceReleased {
        pub sn: DeviceSn,
        pub tenant: TenantId,
    }

    /// The device left the tenant; a `CLEAR DATA` command wipes it. History stays.
    pub struct DeviceUnbound {
        pub sn: DeviceSn,
        #[serde(default)]
        pub reason: Option<String>,
    }

    pub struct DeviceRenamed {
        pub sn: DeviceSn,
        pub name: String,
    }

    /// Who may punch on the device (可用范围). Exclusions win over inclusions.
    pub struct DeviceScopeSet {
        pub sn: DeviceSn,
        #[serde(default)]
        pub people: Vec<PersonId>,
        #[serde(default)]
        pub departments: Vec<DepartmentId>,
        /// Whether a department includes its sub-departments.
        #[serde(default)]
        pub include_sub_departments: bool,
        #[serde(default)]
        pub excluded_people: Vec<PersonId>,
        #[serde(default)]
        pub excluded_departments: Vec<DepartmentId>,
        /// What happens on the device to a person who falls out of the scope.
        #[serde(default)]
        pub on_leaving_scope: LeavingScope,
    }

    /// A person was sent to the device's roster (`DATA UPDATE USERINFO`).
    pub struct RosterMemberPushed {
        pub sn: DeviceSn,
        pub person_id: PersonId,
        pub badge_number: BadgeNumber,
        pub name: String,
        pub privilege: DevicePrivilege,
    }

    /// A person was deleted from the device's roster (`DATA DELETE USERINFO`).
    pub struct RosterMemberRemoved {
        pub sn: DeviceSn,
        #[serde(default)]
        pub person_id: Option<PersonId>,
        pub badge_number: BadgeNumber,
    }

    /// A person stays on the device but can no longer punch on it.
    pub struct RosterMemberDisabled {
        pub sn: DeviceSn,
        pub person_id: PersonId,
        pub badge_number: BadgeNumber,
    }

    pub struct DevicePrivilegeSet {
        pub sn: DeviceSn,
        pub person_id: PersonId,
        pub privilege: DevicePrivilege,
    }

    /// A biometric template was enrolled on a device (and will be delivered to the other
    /// devices in the person's scope).
    pub struct BiometricEnrolled {
        pub sn: DeviceSn,
        #[serde(default)]
        pub person_id: Option<PersonId>,
        pub badge_number: BadgeNumber,
        pub biometric: Biometric,
        /// Where the template is kept, if the device uploaded it.
        #[serde(default)]
        pub template_ref: Option<String>,
    }

    pub struct BiometricRemoved {
        pub sn: DeviceSn,
        #[serde(default)]
        pub person_id: Option<PersonId>,
        pub badge_number: BadgeNumber,
        pub biometric: Biometric,
    }

    /// A command waits for the device's next `getrequest` poll.
    pub struct DeviceCommandQueued {
        pub sn: DeviceSn,
        /// The `<id>` of `C:<id>:<command>`; unique per device.
        pub command_id: u64,
        pub command: DeviceCommand,
        /// After this instant an undelivered command is expired.
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::opt_instant))]
        #[serde(default)]
        pub expires_at: Option<DateTime<Utc>>,
        /// Set when this command retries an earlier one that failed or expired.
        #[serde(default)]
        pub retry_of: Option<u64>,
    }

    pub struct DeviceCommandDelivered {
        pub sn: DeviceSn,
        pub command_id: u64,
    }

    /// The device reported the command's result (`ID=..&Return=0&CMD=..`).
    pub struct DeviceCommandAcknowledged {
        pub sn: DeviceSn,
        pub command_id: u64,
        /// 0 is success; negative codes are device-side failures.
        pub return_code: i32,
        /// The `CMD=` verb the device echoed.
        #[serde(default)]
        pub verb: Option<String>,
    }

    pub struct DeviceCommandFailed {
        pub sn: DeviceSn,
        pub command_id: u64,
        #[serde(default)]
        pub return_code: Option<i32>,
        pub reason: String,
    }

    pub struct DeviceCommandExpired {
        pub sn: DeviceSn,
        pub command_id: u64,
    }

    /// A queued command was not delivered because a later one makes it moot before the
    /// device polled: a roster change of a badge number overtaken by another change of
    /// the same number (added, removed and added again is one `DATA UPDATE`).
    pub struct DeviceCommandSuperseded {
        pub sn: DeviceSn,
        pub command_id: u64,
        /// The command that stands instead.
        pub by: u64,
    }

    /// A Security-PUSH device (access firmware, `DeviceType=acc`) registered
    /// (`POST /iclock/registry`) and was given its `RegistryCode`. Kept with the
    /// binding: a code belongs to the claim it was issued under (`claim_sequence`), so
    /// a device bound again is registered anew. The device folds the code into the
    /// token it sends on every later request.
    pub struct DeviceRegistered {
        pub sn: DeviceSn,
        /// `acc` (access control) or `att` (attendance), as the device said.
        pub device_type: String,
        pub registry_code: String,
        /// The stream sequence of the SN's claim (`DeviceClaimed`) this registration
        /// belongs to.
        pub claim_sequence: u64,
        /// What the device said of itself when it registered (`~DeviceName`, `FirmVer`,
        /// `PushVersion`, ...), keys as sent.
        #[serde(default)]
        pub options: BTreeMap<String, String>,
    }

    /// A device's upload cursor for one table (`Stamp=` of its last stored upload),
    /// echoed in the handshake (`ATTLOGStamp=..`) so a reconnecting device sends what
    /// is new, not its whole history. Recorded only after the upload it ends is stored.
    pub struct DeviceStampRecorded {
        pub sn: DeviceSn,
        /// The table the stamp is for, upper-case (`ATTLOG`, `OPERLOG`, `ATTPHOTO`, ...).
        pub table: String,
        pub stamp: String,
        /// The claim sequence of the binding the uploads were stored under: a device
        /// bound again starts from no stamp.
        pub claim_sequence: u64,
    }

    /// A device no tenant has bound knocked on the gateway. Recorded under the system
    /// tenant, at most once per SN per hour, so an administrator can find and bind it.
    pub struct UnknownDeviceSeen {
        pub sn: DeviceSn,
        #[serde(default)]
        pub remote_addr: Option<String>,
        /// The request path and query, e.g. `/iclock/cdata?SN=..&options=all`.
        pub request: String,
    }

    /// A person as the device's own roster holds them (an `OPERLOG` `USER` line),
    /// enrolled or edited at the device. The tenant's people are not changed by it: it
    /// tells an administrator what the device holds.
    pub struct DeviceUserReported {
        pub sn: DeviceSn,
        pub badge_number: BadgeNumber,
        pub name: String,
        pub privilege: DevicePrivilege,
        #[serde(default)]
        pub card: Option<String>,
        #[serde(default)]
        pub has_password: bool,
    }

    /// An entry of the device's operation log (`OPLOG`): what was done at the device,
    /// by whom, when (device local time).
    pub struct DeviceOperationLogged {
        pub sn: DeviceSn,
        /// The firmware's operation code (e.g. 0 power on, 3 alarm, 4 menu entered).
        pub code: u16,
        /// The operator's PIN; "0" is the device itself.
        pub operator: String,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::local))]
        pub local_time: NaiveDateTime,
        #[serde(default)]
        pub values: Vec<String>,
    }

    /// What a device said about itself: on handshake and registration, in its polls'
    /// `INFO=`, its `table=options` uploads and its replies to `INFO`; and what the
    /// gateway told it of the time.
    pub struct DeviceStatusReported {
        pub sn: DeviceSn,
        #[serde(default)]
        pub firmware: Option<String>,
        #[serde(default)]
        pub user_count: Option<u32>,
        #[serde(default)]
        pub fingerprint_count: Option<u32>,
        #[serde(default)]
        pub face_count: Option<u32>,
        #[serde(default)]
        pub record_count: Option<u32>,
        #[serde(default)]
        pub ip: Option<String>,
        /// The PUSH protocol version of the firmware (`pushver=`).
        #[serde(default)]
        pub push_version: Option<String>,
        /// `att` (attendance PUSH) or `acc` (Security PUSH), when the device said.
        #[serde(default)]
        pub device_type: Option<String>,
        /// The name the device gives itself (`~DeviceName`), often its model.
        #[serde(default)]
        pub device_name: Option<String>,
        #[serde(default)]
        pub mac: Option<String>,
        /// The device's own clock (local time) when it last said it.
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::opt_local))]
        #[serde(default)]
        pub device_time: Option<NaiveDateTime>,
        /// How far the device's clock is ahead of the server's, read in the binding's
        /// zone (negative: behind), in seconds.
        #[serde(default)]
        pub clock_drift_seconds: Option<i64>,
        /// The UTC offset the gateway last told the device (`TimeZone=` on handshake,
        /// `SET OPTION TimeZone=` after a daylight-saving change), in minutes.
        #[serde(default)]
        pub utc_offset_told_minutes: Option<i32>,
        /// Everything else the device reported about itself (`table=options`,
        /// registration), keys as sent.
        #[serde(default)]
        pub options: BTreeMap<String, String>,
    }

    /// An upload of a table the gateway does not understand, kept as sent so nothing a
    /// device was told is stored is lost: a later version can read it from here.
    pub struct DeviceUploadUnrecognised {
        pub sn: DeviceSn,
        /// The `table=` of the upload, as sent.
        pub table: String,
        /// The request's query string.
        #[serde(default)]
        pub query: String,
        /// The lines of the body, in order (invalid UTF-8 replaced).
        pub lines: Vec<String>,
    }
}

domain_types! {
    /// Device privilege levels (ZKTeco `Pri=`: 0 user, 2 registrar, 14 admin).
    #[derive(Copy, Eq, Hash)]
    pub enum DevicePrivilege {
        User,
        Registrar,
        Admin,
    }

    #[derive(Copy, Eq, Default)]
    pub enum LeavingScope {
        /// Delete the person from the device.
        #[default]
        Delete,
        /// Keep the person on the device but disable punching.
        Disable,
    }

    pub enum Biometric {
        /// A finger, numbered 0-9 as devices number them.
        Fingerprint { finger: u8 },
        Face,
        Palm,
    }

    /// A command as the gateway will render it for the device.
    pub enum DeviceCommand {
        /// `DATA UPDATE USERINFO PIN=..\tName=..\tPri=..`
        UpdateUser {
            badge_number: BadgeNumber,
            name: String,
            privilege: DevicePrivilege,
            #[serde(default)]
            card: Option<String>,
            /// Kept on the device but unable to punch (a person who left a scope that
            /// disables rather than deletes): bit 0 of `Pri`.
            #[serde(default)]
            disabled: bool,
        },
        /// `DATA DELETE USERINFO PIN=..`
        DeleteUser { badge_number: BadgeNumber },
        /// `DATA QUERY ATTLOG StartTime=..\tEndTime=..`: re-upload of a range, device local time.
        QueryAttendance {
            #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::local))]
            start: NaiveDateTime,
            #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::local))]
            end: NaiveDateTime,
            /// Empty: everyone.
            #[serde(default)]
            badge_numbers: Vec<BadgeNumber>,
        },
        /// `CLEAR DATA`: wipe people and records (sent on unbind).
        ClearData,
        /// `INFO`
        Info,
        /// `CHECK`
        Check,
        Reboot,
        /// `DATA QUERY USERINFO [PIN=..]`: the device sends its users (or one of them)
        /// back as a `USERINFO` upload.
        QueryUsers {
            #[serde(default)]
            badge_number: Option<BadgeNumber>,
        },
        /// `SET OPTION TimeZone=..`: the zone's UTC offset changed (daylight saving).
        SetTimeZone { utc_offset_minutes: i32 },
    }
}

keyed_by! {
    DeviceBound => Device(sn),
    DeviceClaimed => Device(sn),
    DeviceReleased => Device(sn),
    DeviceUnbound => Device(sn),
    DeviceRenamed => Device(sn),
    DeviceScopeSet => Device(sn),
    RosterMemberPushed => Device(sn),
    RosterMemberRemoved => Device(sn),
    RosterMemberDisabled => Device(sn),
    DevicePrivilegeSet => Device(sn),
    BiometricEnrolled => Device(sn),
    BiometricRemoved => Device(sn),
    DeviceCommandQueued => DeviceCommands(sn),
    DeviceCommandDelivered => DeviceCommands(sn),
    DeviceCommandAcknowledged => DeviceCommands(sn),
    DeviceCommandFailed => DeviceCommands(sn),
    DeviceCommandExpired => DeviceCommands(sn),
    DeviceCommandSuperseded => DeviceCommands(sn),
    DeviceRegistered => DeviceRegistration(sn),
    DeviceUploadUnrecognised => Punches(sn),
    UnknownDeviceSeen => Device(sn),
    DeviceStatusReported => DeviceStatus(sn),
    DeviceUserReported => Device(sn),
    DeviceOperationLogged => DeviceLog(sn),
}

impl DeviceStampRecorded {
    /// One cursor per device and table, so the handshake reads each table's last stamp
    /// directly.
    pub fn aggregate(&self) -> crate::events::Aggregate {
        crate::events::Aggregate::new(
            crate::events::AggregateKind::DeviceCursor,
            &Self::cursor_id(&self.sn, &self.table),
        )
    }

    pub fn cursor_id(sn: &DeviceSn, table: &str) -> String {
        format!("{sn}/{table}")
    }
}
