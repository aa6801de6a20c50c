//! What the views store, row by row: a judged day with what its neighbours and the
//! monthly report need from it, a person-month, a raw record, a rejected line, a device.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use schemas::events::{
    Biometric, DeviceRecordRejected, DeviceScopeSet, DeviceStatusReported, Punch,
};
use schemas::ids::{BadgeNumber, DepartmentId, DeviceSn, PersonId};
use serde::{Deserialize, Serialize};

use crate::judge::{DayType, Judged, NoteKind, Status, Tally};

/// A device that has said nothing for this long is offline: two of the gateway's status
/// periods (it records a device's status at least every 5 minutes while it polls).
pub const STATUS_PERIOD: chrono::Duration = chrono::Duration::minutes(5);

/// WeCom's summary status (状态), beside the detailed original and calibrated ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Summary {
    /// 正常
    Normal,
    /// 时间异常: late or early leave.
    TimeException,
    /// 缺卡: a slot without a punch, or no punch all day (detailed as absent).
    MissingPunch,
    /// 地点异常
    LocationException,
    /// 设备异常
    DeviceException,
    /// 休息
    Rest,
    /// 节假日
    Holiday,
    /// 请假 / 出差 / 外出: the day was covered by an approval.
    Approved,
    /// 进行中: the day has not ended.
    InProgress,
}

impl Summary {
    pub fn of(day: &Judged) -> Self {
        let s = &day.calibrated.status;
        let has = |x: Status| s.contains(&x);
        if day.in_progress && has(Status::Pending) {
            return Summary::InProgress;
        }
        if has(Status::MissingPunch) || has(Status::Absent) {
            Summary::MissingPunch
        } else if has(Status::Late) || has(Status::EarlyLeave) {
            Summary::TimeException
        } else if has(Status::LocationException) {
            Summary::LocationException
        } else if has(Status::DeviceException) {
            Summary::DeviceException
        } else if has(Status::Holiday) {
            Summary::Holiday
        } else if has(Status::Rest) {
            Summary::Rest
        } else if has(Status::Normal) {
            Summary::Normal
        } else if has(Status::OnLeave) || has(Status::BusinessTrip) || has(Status::Outing) {
            Summary::Approved
        } else {
            Summary::Normal
        }
    }

    /// The serialized name.
    pub fn token(self) -> &'static str {
        match self {
            Summary::Normal => "normal",
            Summary::TimeException => "time_exception",
            Summary::MissingPunch => "missing_punch",
            Summary::LocationException => "location_exception",
            Summary::DeviceException => "device_exception",
            Summary::Rest => "rest",
            Summary::Holiday => "holiday",
            Summary::Approved => "approved",
            Summary::InProgress => "in_progress",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Summary::Normal => "正常",
            Summary::TimeException => "时间异常",
            Summary::MissingPunch => "缺卡",
            Summary::LocationException => "地点异常",
            Summary::DeviceException => "设备异常",
            Summary::Rest => "休息",
            Summary::Holiday => "节假日",
            Summary::Approved => "审批",
            Summary::InProgress => "进行中",
        }
    }
}

/// WeCom's exception tallies as the monthly report sums them.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Tallies {
    pub late: Count,
    pub early_leave: Count,
    pub missing_punch: Count,
    pub absent: Count,
    pub location: Count,
    pub device: Count,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Count {
    pub count: u32,
    pub seconds: i64,
}

impl Count {
    fn of(t: Tally) -> Self {
        Self {
            count: t.count,
            seconds: t.seconds,
        }
    }

    fn add(&mut self, o: Count) {
        self.count += o.count;
        self.seconds += o.seconds;
    }

    fn sub(&mut self, o: Count) {
        self.count -= o.count;
        self.seconds -= o.seconds;
    }
}

impl Tallies {
    fn of(e: &crate::judge::Exceptions) -> Self {
        Self {
            late: Count::of(e.late),
            early_leave: Count::of(e.early_leave),
            missing_punch: Count::of(e.missing_punch),
            absent: Count::of(e.absent),
            location: Count::of(e.location),
            device: Count::of(e.device),
        }
    }

    fn add(&mut self, o: &Tallies) {
        self.late.add(o.late);
        self.early_leave.add(o.early_leave);
        self.missing_punch.add(o.missing_punch);
        self.absent.add(o.absent);
        self.location.add(o.location);
        self.device.add(o.device);
    }

    fn sub(&mut self, o: &Tallies) {
        self.late.sub(o.late);
        self.early_leave.sub(o.early_leave);
        self.missing_punch.sub(o.missing_punch);
        self.absent.sub(o.absent);
        self.location.sub(o.location);
        self.device.sub(o.device);
    }

    fn any(&self) -> bool {
        [
            self.late,
            self.early_leave,
            self.missing_punch,
            self.absent,
            self.location,
            self.device,
        ]
        .iter()
        .any(|c| c.count > 0)
    }
}

/// What a day adds to its month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    pub day_type: Option<DayType>,
    pub in_progress: bool,
    pub work_s: i64,
    pub standard_s: i64,
    pub original: Tallies,
    pub calibrated: Tallies,
    /// Approval kind → (count, seconds of scheduled work covered).
    pub approvals: BTreeMap<String, Count>,
    pub overtime_s: i64,
}

impl DayTotals {
    pub fn of(day: &Judged) -> Self {
        let mut approvals: BTreeMap<String, Count> = BTreeMap::new();
        for a in &day.approvals {
            let kind = match &a.kind {
                NoteKind::Leave { .. } => "leave",
                NoteKind::BusinessTrip => "business_trip",
                NoteKind::Outing => "outing",
                NoteKind::Overtime => "overtime",
                NoteKind::MakeUp => "make_up",
            };
            approvals.entry(kind.to_owned()).or_default().add(Count {
                count: 1,
                seconds: a.seconds,
            });
        }
        if day.field_work > 0 {
            approvals
                .entry("field_work".to_owned())
                .or_default()
                .add(Count {
                    count: day.field_work,
                    seconds: 0,
                });
        }
        Self {
            day_type: Some(day.day_type),
            in_progress: day.in_progress,
            work_s: day.work_s,
            standard_s: day.standard_work_s,
            original: Tallies::of(&day.original.exceptions),
            calibrated: Tallies::of(&day.calibrated.exceptions),
            approvals,
            overtime_s: day.overtime.map_or(0, |o| o.seconds),
        }
    }
}

/// A daily report as stored: the judged day (as JSON, served as is), and what the next
/// day, the month and the closing job need from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDay {
    pub department_id: DepartmentId,
    pub summary: Summary,
    /// The judge's `late_out_s`, for the next day's late-out, late-in.
    pub late_out_s: Option<i64>,
    /// When an in-progress day's owned span ends.
    pub closes_at: Option<DateTime<Utc>>,
    pub totals: DayTotals,
    /// `Judged`, MessagePack by position (compact: a store of another projection
    /// version is rebuilt, so positions never outlive the code that wrote them).
    #[serde(with = "serde_bytes")]
    pub report: Vec<u8>,
}

impl StoredDay {
    pub fn of(department_id: DepartmentId, day: &Judged) -> Self {
        Self {
            department_id,
            summary: Summary::of(day),
            late_out_s: day.late_out_s,
            closes_at: day.in_progress.then_some(day.owned.end),
            totals: DayTotals::of(day),
            report: rmp_serde::to_vec(day).expect("a judged day encodes"),
        }
    }

    /// The judged day.
    pub fn judged(&self) -> Result<Judged, crate::store::StoreError> {
        rmp_serde::from_slice(&self.report)
            .map_err(|e| crate::store::StoreError::Decode(e.to_string()))
    }

    /// The judged day's day data, its detail skipped unread.
    pub fn day_data(&self) -> Result<crate::judge::DayData, crate::store::StoreError> {
        rmp_serde::from_slice(&self.report)
            .map_err(|e| crate::store::StoreError::Decode(e.to_string()))
    }

    /// The judged day as JSON.
    pub fn report_json(&self) -> Result<String, crate::store::StoreError> {
        Ok(serde_json::to_string(&self.judged()?).expect("a judged day is JSON"))
    }
}

/// A day of a closed month whose stored day changed after the close: what it was
/// closed as, and what a later close carried into its period (a pending adjustment is
/// the stored day differing from the latest of the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedDay {
    pub closed: Option<StoredDay>,
    pub paid: Option<Option<StoredDay>>,
}

impl ClosedDay {
    /// What payroll has: the day as closed, or as a later period carried it.
    pub fn baseline(&self) -> &Option<StoredDay> {
        self.paid.as_ref().unwrap_or(&self.closed)
    }
}

/// A closed day's change, reported in the period that was open when it was carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    pub before: Option<StoredDay>,
    pub after: Option<StoredDay>,
    /// The sequence of the close that carried it.
    pub sequence: u64,
}

/// WeCom's month data for one person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MonthRow {
    pub month: String,
    /// Days judged under a rule (the month so far, for the current month).
    pub days: u32,
    pub workdays: u32,
    pub rest_days: u32,
    pub holidays: u32,
    /// Workdays with no exception (calibrated).
    pub normal_days: u32,
    /// Workdays with an exception (calibrated).
    pub exception_days: u32,
    /// Days still in progress.
    pub in_progress_days: u32,
    pub work_s: i64,
    pub standard_s: i64,
    /// Exceptions as devices and phones recorded them.
    pub original: Tallies,
    /// Exceptions after approvals, make-up punches and calibrations.
    pub calibrated: Tallies,
    pub approvals: BTreeMap<String, Count>,
    pub overtime_workday_s: i64,
    pub overtime_rest_day_s: i64,
    pub overtime_holiday_s: i64,
}

impl MonthRow {
    pub fn add(&mut self, t: &DayTotals) {
        self.count(t, 1);
    }

    /// Takes a day added before out again: a month is kept as the sum of its days, so a
    /// re-judged day changes its month without the month's other days being read.
    pub fn remove(&mut self, t: &DayTotals) {
        self.count(t, -1);
    }

    fn count(&mut self, t: &DayTotals, sign: i8) {
        let n = |field: &mut u32| {
            if sign > 0 { *field += 1 } else { *field -= 1 }
        };
        let s = |field: &mut i64, v: i64| *field += i64::from(sign) * v;
        n(&mut self.days);
        match t.day_type {
            Some(DayType::Workday) => {
                n(&mut self.workdays);
                if t.in_progress {
                    n(&mut self.in_progress_days);
                } else if t.calibrated.any() {
                    n(&mut self.exception_days);
                } else {
                    n(&mut self.normal_days);
                }
                s(&mut self.overtime_workday_s, t.overtime_s);
            }
            Some(DayType::Rest) => {
                n(&mut self.rest_days);
                s(&mut self.overtime_rest_day_s, t.overtime_s);
            }
            Some(DayType::Holiday) => {
                n(&mut self.holidays);
                s(&mut self.overtime_holiday_s, t.overtime_s);
            }
            None => {}
        }
        s(&mut self.work_s, t.work_s);
        s(&mut self.standard_s, t.standard_s);
        if sign > 0 {
            self.original.add(&t.original);
            self.calibrated.add(&t.calibrated);
            for (k, c) in &t.approvals {
                self.approvals.entry(k.clone()).or_default().add(*c);
            }
        } else {
            self.original.sub(&t.original);
            self.calibrated.sub(&t.calibrated);
            for (k, c) in &t.approvals {
                if let Some(total) = self.approvals.get_mut(k) {
                    total.sub(*c);
                    // No day of the month has this kind any more: as if never added.
                    if total.count == 0 {
                        self.approvals.remove(k);
                    }
                }
            }
        }
    }
}

/// A punch as the raw-records view keeps it, once, with the event that first brought it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawEntry {
    pub punch: Punch,
    /// How many stored events carried it.
    pub received: u32,
    pub first_sequence: u64,
    pub event_id: String,
    pub kind: String,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
}

/// A rejected device line, once per (device, text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedEntry {
    pub record: DeviceRecordRejected,
    pub received: u32,
    pub first_sequence: u64,
    pub recorded_at: DateTime<Utc>,
}

/// A device as the devices view keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceRow {
    pub sn: Option<DeviceSn>,
    pub bound: bool,
    pub name: String,
    pub model: Option<String>,
    pub zone: Option<String>,
    pub records_from: Option<NaiveDate>,
    pub bound_at: Option<DateTime<Utc>>,
    pub scope: Option<DeviceScopeSet>,
    /// Badge number → the person pushed and whether they are disabled there.
    pub roster: BTreeMap<BadgeNumber, RosterEntry>,
    /// Badge number → enrolled biometrics ("fingerprint 3", "face").
    pub enrolled: BTreeMap<BadgeNumber, BTreeSet<String>>,
    pub status: Option<DeviceStatusReported>,
    pub status_at: Option<DateTime<Utc>>,
    /// The last time the device was heard from (any event it caused).
    pub last_seen: Option<DateTime<Utc>>,
    pub punches: u64,
    pub rejected: u64,
    pub commands_pending: BTreeSet<u64>,
    pub commands_failed: BTreeSet<u64>,
    pub commands_acknowledged: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RosterEntry {
    pub person_id: Option<PersonId>,
    pub name: String,
    pub privilege: String,
    pub disabled: bool,
}

pub fn biometric_label(b: &Biometric) -> String {
    match b {
        Biometric::Fingerprint { finger } => format!("fingerprint {finger}"),
        Biometric::Face => "face".to_owned(),
        Biometric::Palm => "palm".to_owned(),
    }
}

impl DeviceRow {
    /// Online: heard from within two status periods of `now`.
    pub fn online(&self, now: DateTime<Utc>) -> bool {
        self.last_seen
            .is_some_and(|seen| now - seen <= STATUS_PERIOD * 2)
    }
}
