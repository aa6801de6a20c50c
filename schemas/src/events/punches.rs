//! Punches, from every source, and the device records that could not be punches.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::events::{Aggregate, AggregateKind};
use crate::ids::{ApprovalId, BadgeNumber, DeviceSn, PersonId, PunchId, RuleId, ZoneName};

domain_types! {
    /// One punch. `local_time` is exactly what the source sent; `instant` is that local
    /// time read in `zone` (the device binding's zone, or the phone's).
    pub struct Punch {
        pub punch_id: PunchId,
        pub source: PunchSource,
        /// Known for mobile, import and make-up punches; a device punch names a badge
        /// number and the person is resolved when the day is judged.
        #[serde(default)]
        pub person_id: Option<PersonId>,
        #[serde(default)]
        pub device_sn: Option<DeviceSn>,
        #[serde(default)]
        pub badge_number: Option<BadgeNumber>,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::local))]
        pub local_time: NaiveDateTime,
        pub zone: ZoneName,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::instant))]
        pub instant: DateTime<Utc>,
        #[serde(default)]
        pub verify_mode: Option<VerifyMode>,
        /// The device's punch-state code (0 check-in, 1 check-out, 4 overtime-in, ...), as sent.
        #[serde(default)]
        pub punch_state: Option<u16>,
        #[serde(default)]
        pub work_code: Option<String>,
        /// The job code of TFT firmware's 16-field lines (their 11th field).
        #[serde(default)]
        pub job_code: Option<String>,
        /// The device's own record sequence number, when its firmware sends one.
        #[serde(default)]
        pub device_seq: Option<u64>,
        #[serde(default)]
        pub location: Option<GeoPoint>,
        #[serde(default)]
        pub wifi_bssid: Option<String>,
        #[serde(default)]
        pub qr_token: Option<String>,
        #[serde(default)]
        pub photo_ref: Option<String>,
        /// The device line exactly as received, for audit.
        #[serde(default)]
        pub raw_line: Option<String>,
    }

    /// A position with its accuracy radius.
    pub struct GeoPoint {
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::latitude))]
        pub latitude: f64,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::longitude))]
        pub longitude: f64,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::metres))]
        pub accuracy_m: f64,
    }

    pub enum PunchSource {
        Device,
        Mobile,
        Import,
        /// An approved make-up punch (补卡); counts as a punch and is marked as such.
        MakeUp { approval_id: ApprovalId },
    }

    /// How the person proved who they are. ZKTeco verify codes: 0 password,
    /// 1 fingerprint, 2 card, 15 face, 25 palm; others are kept as their code.
    pub enum VerifyMode {
        Password,
        Fingerprint,
        Card,
        Face,
        Palm,
        Other(u16),
    }

    /// One punch.
    pub struct PunchRecorded {
        pub punch: Punch,
    }

    /// A device upload: the punches of one `ATTLOG` POST, stored as one message so that
    /// a 128-line batch costs one append, not 128.
    pub struct PunchesRecorded {
        pub sn: DeviceSn,
        pub punches: Vec<Punch>,
    }

    /// A device line that could not be a punch. Kept with its raw text so nothing a
    /// device sent is lost; the rest of its batch is recorded normally.
    pub struct DeviceRecordRejected {
        pub sn: DeviceSn,
        pub raw: String,
        pub reason: RejectionReason,
        #[serde(default)]
        pub detail: Option<String>,
    }

    /// A phone's punch refused at the door by the person's rule: outside every geofence
    /// and Wi-Fi under a rule that refuses such punches, or without the photo the rule
    /// requires. Kept for audit; it is not a punch and no report counts it.
    pub struct MobilePunchRefused {
        pub person_id: PersonId,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::instant))]
        pub instant: DateTime<Utc>,
        pub rule_id: RuleId,
        pub reason: MobileRefusal,
        /// What the phone was told, e.g. "1,210 m outside geofence hq".
        pub detail: String,
        #[serde(default)]
        pub location: Option<GeoPoint>,
        #[serde(default)]
        pub wifi_bssid: Option<String>,
    }

    #[derive(Eq, Copy, Hash)]
    pub enum MobileRefusal {
        OutOfRange,
        PhotoRequired,
    }

    #[derive(Eq, Copy, Hash)]
    pub enum RejectionReason {
        /// Fewer fields than any firmware sends (a truncated line, typically).
        TooFewFields,
        UnparsableTime,
        UnparsableBadgeNumber,
        /// Before the device was bound: a clock reset (records dated 2000).
        BeforeBinding,
        /// More than a day ahead of the server's clock (records dated 2047).
        InTheFuture,
        /// The local time does not exist in the zone (a daylight-saving gap).
        NonexistentLocalTime,
        /// Longer than any record a device writes; kept cut short (the line's length and
        /// its start are in the rejection's detail).
        LineTooLong,
        Other,
    }
}

impl VerifyMode {
    pub fn from_code(code: u16) -> Self {
        match code {
            0 => Self::Password,
            1 => Self::Fingerprint,
            2 => Self::Card,
            15 => Self::Face,
            25 => Self::Palm,
            other => Self::Other(other),
        }
    }
}

impl Punch {
    /// A device record's punch: its identity derived from (SN, badge number, local time),
    /// everything a device does not send left empty. Callers add what their line had
    /// (`Punch { verify_mode, ..Punch::from_device(..) }`).
    pub fn from_device(
        sn: DeviceSn,
        badge: BadgeNumber,
        local_time: NaiveDateTime,
        zone: ZoneName,
        instant: DateTime<Utc>,
    ) -> Self {
        Self {
            punch_id: PunchId::for_device_record(&sn, &badge, local_time),
            source: PunchSource::Device,
            person_id: None,
            device_sn: Some(sn),
            badge_number: Some(badge),
            local_time,
            zone,
            instant,
            verify_mode: None,
            punch_state: None,
            work_code: None,
            job_code: None,
            device_seq: None,
            location: None,
            wifi_bssid: None,
            qr_token: None,
            photo_ref: None,
            raw_line: None,
        }
    }

    /// The stream a punch is filed under: its device, else its person.
    pub fn aggregate(&self) -> Aggregate {
        match (&self.device_sn, &self.person_id) {
            (Some(sn), _) => Aggregate::new(AggregateKind::Punches, sn.as_str()),
            (None, Some(person)) => Aggregate::new(AggregateKind::Punches, person.as_str()),
            (None, None) => Aggregate::new(AggregateKind::Punches, "unattributed"),
        }
    }
}

impl PunchRecorded {
    pub fn aggregate(&self) -> Aggregate {
        self.punch.aggregate()
    }
}

keyed_by! {
    PunchesRecorded => Punches(sn),
    DeviceRecordRejected => Punches(sn),
    MobilePunchRefused => Punches(person_id),
}
