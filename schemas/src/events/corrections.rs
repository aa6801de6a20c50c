//! Corrections and approvals. None of them changes an earlier event: a make-up punch is
//! a new punch, a calibration sits beside the status it overrides, and a later
//! calibration names the one it replaces.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::events::punches::Punch;
use crate::ids::{
    ApprovalId, BadgeNumber, CalibrationId, DeviceSn, Month, PersonId, RequestId, UserId, ZoneName,
};

domain_types! {
    /// A person asked for a make-up punch (补卡).
    pub struct MakeUpPunchRequested {
        pub approval_id: ApprovalId,
        pub person_id: PersonId,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::local))]
        pub local_time: NaiveDateTime,
        pub zone: ZoneName,
        pub reason: String,
    }

    /// The make-up was approved: `punch` (source `MakeUp`) now counts as a punch.
    pub struct MakeUpPunchApproved {
        pub approval_id: ApprovalId,
        pub person_id: PersonId,
        #[serde(default)]
        pub approver: Option<UserId>,
        pub punch: Punch,
    }

    pub struct MakeUpPunchRejected {
        pub approval_id: ApprovalId,
        pub person_id: PersonId,
        #[serde(default)]
        pub approver: Option<UserId>,
        pub reason: String,
    }

    /// An administrator overrode a status (校准). The envelope's actor is who did it;
    /// reports show the original status and this one side by side.
    pub struct CalibrationApplied {
        pub calibration_id: CalibrationId,
        pub person_id: PersonId,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub date: NaiveDate,
        pub target: CalibrationTarget,
        pub status: AttendanceStatus,
        pub reason: String,
        /// An earlier calibration of the same target that this one supersedes; that
        /// one stays in the ledger and in the day's audit trail.
        #[serde(default)]
        pub replaces: Option<CalibrationId>,
    }

    pub enum CalibrationTarget {
        /// The whole day.
        Day,
        /// One punch slot: section index from 0, and which end.
        Slot { section: u8, end: SlotEnd },
    }

    #[derive(Eq, Copy, Hash)]
    pub enum SlotEnd { On, Off }

    /// A status as reports show it (original or calibrated).
    #[derive(Eq, Copy, Hash)]
    pub enum AttendanceStatus {
        Normal,
        Late,
        EarlyLeave,
        MissingPunch,
        Absent,
        LocationException,
        DeviceException,
        FieldWork,
        OnLeave,
        Rest,
    }

    /// A span of time an approval covers.
    pub struct ApprovedSpan {
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::instant))]
        pub start: DateTime<Utc>,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::instant))]
        pub end: DateTime<Utc>,
    }

    /// 请假: leave covering all or part of one or more days.
    pub struct LeaveApproved {
        pub approval_id: ApprovalId,
        pub person_id: PersonId,
        /// The tenant's leave type (annual, sick, personal, ...).
        pub leave_type: String,
        pub span: ApprovedSpan,
        #[serde(default)]
        pub note: Option<String>,
    }

    /// 出差.
    pub struct BusinessTripApproved {
        pub approval_id: ApprovalId,
        pub person_id: PersonId,
        pub span: ApprovedSpan,
        #[serde(default)]
        pub destination: Option<String>,
    }

    /// 外出.
    pub struct OutingApproved {
        pub approval_id: ApprovalId,
        pub person_id: PersonId,
        pub span: ApprovedSpan,
        #[serde(default)]
        pub destination: Option<String>,
    }

    /// 加班.
    pub struct OvertimeApproved {
        pub approval_id: ApprovalId,
        pub person_id: PersonId,
        pub span: ApprovedSpan,
        #[serde(default)]
        pub compensation: OvertimeCompensation,
    }

    #[derive(Default, Eq, Copy)]
    pub enum OvertimeCompensation {
        #[default]
        Pay,
        TimeOff,
    }

    /// 重新上传考勤数据: devices are asked to send a range of records again.
    pub struct ReuploadRequested {
        pub request_id: RequestId,
        pub sns: Vec<DeviceSn>,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::local))]
        pub start: NaiveDateTime,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::local))]
        pub end: NaiveDateTime,
        /// Empty: everyone on the devices.
        #[serde(default)]
        pub badge_numbers: Vec<BadgeNumber>,
    }

    /// A month closed for payroll (月结). Its days keep the verdicts they had when it
    /// closed: anything recorded later that changes one (a late backlog, a calibration,
    /// a rule fixed after the fact) shows as a pending adjustment beside the closed
    /// verdict, and the next open month's report lists it.
    pub struct PeriodClosed {
        pub month: Month,
        #[serde(default)]
        pub note: Option<String>,
    }
}

keyed_by! {
    MakeUpPunchRequested => Person(person_id),
    MakeUpPunchApproved => Person(person_id),
    MakeUpPunchRejected => Person(person_id),
    CalibrationApplied => Person(person_id),
    LeaveApproved => Person(person_id),
    BusinessTripApproved => Person(person_id),
    OutingApproved => Person(person_id),
    OvertimeApproved => Person(person_id),
    ReuploadRequested => Reupload(request_id),
    PeriodClosed => Period(month),
}
