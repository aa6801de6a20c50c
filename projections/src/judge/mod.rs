//! The judge: what one person's workday was, as a pure function of the facts about it.
//!
//! Input is a [`Day`]: the plan of the day and of its neighbours (what the rule version in
//! force, the schedule, the calendar and the special dates say), the person's punches
//! near it, approvals and calibrations. Output is a [`Judged`] day with two verdicts side
//! by side: the *original* one, from what devices and phones recorded against the plan,
//! and the *calibrated* one, after approvals (leave, trips, outings), make-up punches and
//! calibrations. Nothing here reads a clock, a store or the network.
//!
//! Which punches are the day's: a day owns the instants between its boundaries with the
//! previous and next day ([`plan::boundary`]), so a night shift's 06:00 punch belongs to
//! the evening it started, whatever the calendar says.

mod plan;
mod verdict;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use schemas::events::{
    CalibrationApplied, CalibrationTarget, OutOfRange, Punch, PunchSource, RuleOptions, WorkDay,
};
use schemas::ids::{ApprovalId, CalibrationId, DeviceSn, PunchId, RuleId, ShiftId};
use serde::Serialize;

use crate::geo::{self, Place};
use crate::time::{self, Span};

pub use plan::{boundary, owned_span};

/// What a date is under a person's rule, before any punch is looked at.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct DayPlan {
    pub date: NaiveDate,
    pub day_type: DayType,
    /// The holiday's name, on holidays and on swapped workdays.
    pub holiday: Option<String>,
    /// When the day starts in local time: midnight, or a free rule's `day_starts_at`.
    pub starts_at: NaiveTime,
    pub work: Work,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DayType {
    Workday,
    Rest,
    Holiday,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// Nothing expected: a rest day, a holiday, a no-punch date.
    Off,
    /// Sections with times: a fixed rule's workday or a shift.
    Sections {
        shift: Option<ShiftRef>,
        day: WorkDay,
    },
    /// A free rule's workday: only absence counts.
    Free { standard_work_s: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ShiftRef {
    pub shift_id: ShiftId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RuleRef {
    pub rule_id: RuleId,
    pub version: u32,
    pub name: String,
}

/// An approval that bears on days: it covers `span`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Approval {
    pub approval_id: ApprovalId,
    pub kind: ApprovalKind,
    pub span: Span,
    /// The stream sequence of the approving event.
    #[serde(skip)]
    pub sequence: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    Leave { leave_type: String },
    BusinessTrip,
    Outing,
    Overtime,
}

/// A calibration with who made it and when, as the envelope says.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Calibration {
    pub calibration: CalibrationApplied,
    pub actor: String,
    pub at: DateTime<Utc>,
    /// The stream sequence of the calibrating event.
    #[serde(skip)]
    pub sequence: u64,
}

/// Everything the judge needs about one person's day.
#[derive(Debug, Clone, Copy)]
pub struct Day<'a> {
    pub zone: Tz,
    pub rule: &'a RuleRef,
    pub options: &'a RuleOptions,
    pub previous: &'a DayPlan,
    pub plan: &'a DayPlan,
    pub next: &'a DayPlan,
    /// The person's punches, each once (any order; punches of other days are ignored).
    pub punches: &'a [&'a Punch],
    pub approvals: &'a [Approval],
    pub calibrations: &'a [Calibration],
    /// How long after its scheduled end the previous day's last off punch was (for
    /// late-out, late-in); `None` when it was not a workday or had no off punch.
    pub late_out_s: Option<i64>,
    /// The clock, for a day that may not have ended: its open slots wait (status
    /// `pending`) and it is not absent yet. `None` judges every day as over.
    pub now: Option<DateTime<Utc>>,
}

/// A day as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Judged {
    pub date: NaiveDate,
    pub rule: RuleRef,
    pub zone: String,
    pub day_type: DayType,
    pub holiday: Option<String>,
    pub shift: Option<ShiftRef>,
    /// The instants the day owns: its punches are the ones in here.
    pub owned: Span,
    /// The clock stood before the end of `owned`: the verdicts are provisional.
    pub in_progress: bool,
    pub sections: Vec<SectionReport>,
    pub earliest: Option<NaiveDateTime>,
    pub latest: Option<NaiveDateTime>,
    pub punch_count: u32,
    pub work_s: i64,
    pub standard_work_s: i64,
    pub original: Verdict,
    pub calibrated: Verdict,
    pub approvals: Vec<ApprovalNote>,
    pub field_work: u32,
    pub overtime: Option<Overtime>,
    pub punches: Vec<PunchNote>,
    pub calibrations: Vec<CalibrationNote>,
    /// For the next day's late-out, late-in: the last off punch's lateness past the end.
    #[serde(skip)]
    pub late_out_s: Option<i64>,
}

/// A day as a department's daily report shows it: WeCom's day data (rule, day type,
/// earliest and latest punch, work and standard seconds, both verdicts with their
/// exceptions, approvals, overtime), without `Judged`'s slot-by-slot sections, punch
/// notes and calibration trail (a `daily` request with `detail`, or `explain`, has them).
///
/// It decodes straight from a stored `Judged` (MessagePack by position): the fields are
/// `Judged`'s, in its order, and the detail is skipped unread.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct DayData {
    pub date: NaiveDate,
    pub rule: RuleRef,
    pub zone: String,
    pub day_type: DayType,
    pub holiday: Option<String>,
    pub shift: Option<ShiftRef>,
    pub owned: Span,
    pub in_progress: bool,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    sections: serde::de::IgnoredAny,
    pub earliest: Option<NaiveDateTime>,
    pub latest: Option<NaiveDateTime>,
    pub punch_count: u32,
    pub work_s: i64,
    pub standard_work_s: i64,
    pub original: Verdict,
    pub calibrated: Verdict,
    pub approvals: Vec<ApprovalNote>,
    pub field_work: u32,
    pub overtime: Option<Overtime>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    punches: serde::de::IgnoredAny,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    calibrations: serde::de::IgnoredAny,
}

impl DayData {
    pub fn of(day: &Judged) -> Self {
        Self {
            date: day.date,
            rule: day.rule.clone(),
            zone: day.zone.clone(),
            day_type: day.day_type,
            holiday: day.holiday.clone(),
            shift: day.shift.clone(),
            owned: day.owned,
            in_progress: day.in_progress,
            sections: serde::de::IgnoredAny,
            earliest: day.earliest,
            latest: day.latest,
            punch_count: day.punch_count,
            work_s: day.work_s,
            standard_work_s: day.standard_work_s,
            original: day.original.clone(),
            calibrated: day.calibrated.clone(),
            approvals: day.approvals.clone(),
            field_work: day.field_work,
            overtime: day.overtime,
            punches: serde::de::IgnoredAny,
            calibrations: serde::de::IgnoredAny,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SectionReport {
    pub on: SlotReport,
    pub off: SlotReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SlotReport {
    pub scheduled: NaiveDateTime,
    pub original: SlotVerdict,
    pub calibrated: SlotVerdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SlotVerdict {
    pub status: Status,
    /// Lateness or early leave, in seconds from the scheduled (or leave-adjusted) time.
    pub seconds: i64,
    pub punch: Option<NaiveDateTime>,
    pub punch_id: Option<PunchId>,
    pub make_up: bool,
    pub flags: Vec<Status>,
}

/// Statuses, WeCom's words: slot statuses, exceptions and what covers a day.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Normal,
    Late,
    EarlyLeave,
    MissingPunch,
    Absent,
    LocationException,
    DeviceException,
    FieldWork,
    OnLeave,
    BusinessTrip,
    Outing,
    Rest,
    Holiday,
    /// The slot or day has not ended: its punches can still come.
    Pending,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Normal => "normal",
            Status::Late => "late",
            Status::EarlyLeave => "early leave",
            Status::MissingPunch => "missing punch",
            Status::Absent => "absent",
            Status::LocationException => "location exception",
            Status::DeviceException => "device exception",
            Status::FieldWork => "field work",
            Status::OnLeave => "on leave",
            Status::BusinessTrip => "business trip",
            Status::Outing => "outing",
            Status::Rest => "rest",
            Status::Holiday => "holiday",
            Status::Pending => "in progress",
        }
    }
}

impl From<schemas::events::AttendanceStatus> for Status {
    fn from(s: schemas::events::AttendanceStatus) -> Self {
        use schemas::events::AttendanceStatus as A;
        match s {
            A::Normal => Status::Normal,
            A::Late => Status::Late,
            A::EarlyLeave => Status::EarlyLeave,
            A::MissingPunch => Status::MissingPunch,
            A::Absent => Status::Absent,
            A::LocationException => Status::LocationException,
            A::DeviceException => Status::DeviceException,
            A::FieldWork => Status::FieldWork,
            A::OnLeave => Status::OnLeave,
            A::Rest => Status::Rest,
        }
    }
}

/// One verdict on a day: its statuses, exceptions and work time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Verdict {
    /// `[normal]`, the exceptions in WeCom's order, or what the day was (rest, on leave).
    pub status: Vec<Status>,
    pub exceptions: Exceptions,
    pub work_s: i64,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Tally {
    pub count: u32,
    pub seconds: i64,
}

impl Tally {
    fn add(&mut self, seconds: i64) {
        self.count += 1;
        self.seconds += seconds;
    }
}

/// WeCom's exception_infos: late, early leave, missing punch, absent, location, device.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Exceptions {
    pub late: Tally,
    pub early_leave: Tally,
    pub missing_punch: Tally,
    pub absent: Tally,
    pub location: Tally,
    pub device: Tally,
}

impl Exceptions {
    /// The exception statuses present, in WeCom's order.
    pub fn statuses(&self) -> Vec<Status> {
        [
            (self.late, Status::Late),
            (self.early_leave, Status::EarlyLeave),
            (self.missing_punch, Status::MissingPunch),
            (self.absent, Status::Absent),
            (self.location, Status::LocationException),
            (self.device, Status::DeviceException),
        ]
        .into_iter()
        .filter(|(t, _)| t.count > 0)
        .map(|(_, s)| s)
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ApprovalNote {
    pub approval_id: ApprovalId,
    pub kind: NoteKind,
    /// Scheduled work the approval covers (overtime: the overtime it grants this day).
    pub seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    Leave { leave_type: String },
    BusinessTrip,
    Outing,
    Overtime,
    MakeUp,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Overtime {
    pub seconds: i64,
    pub day_type: DayType,
    pub basis: OvertimeBasis,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OvertimeBasis {
    Approval,
    Punches,
}

/// Every punch the day owns and what became of it: the audit trail of the day.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PunchNote {
    pub punch_id: PunchId,
    pub local_time: NaiveDateTime,
    pub source: String,
    pub device_sn: Option<DeviceSn>,
    pub place: Place,
    pub used: PunchUse,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PunchUse {
    On {
        section: u8,
    },
    Off {
        section: u8,
    },
    /// Counted, but outside every punch window or not the earliest/latest of its slot.
    Unused,
    /// Within the rule's merge gap of the punch before it.
    Merged,
    /// A mobile punch the rule refuses (out of range under "refuse", photo missing).
    Refused,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CalibrationNote {
    pub calibration_id: CalibrationId,
    pub target: CalibrationTarget,
    pub status: Status,
    pub reason: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub replaces: Option<CalibrationId>,
    /// A later calibration replaced this one; it is shown, not applied.
    pub superseded: bool,
}

/// A punch as the judge sees it: where it was, whether the rule takes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen<'a> {
    pub punch: &'a Punch,
    pub place: Place,
    pub off_device: bool,
}

impl Seen<'_> {
    fn at(&self) -> DateTime<Utc> {
        self.punch.instant
    }

    fn make_up(&self) -> bool {
        matches!(self.punch.source, PunchSource::MakeUp { .. })
    }
}

fn source_label(source: &PunchSource) -> &'static str {
    match source {
        PunchSource::Device => "device",
        PunchSource::Mobile => "mobile",
        PunchSource::Import => "import",
        PunchSource::MakeUp { .. } => "make-up",
    }
}

/// Judges one day.
pub fn judge(day: &Day<'_>) -> Judged {
    let zone = day.zone;
    let plan = day.plan;
    let owned = owned_span(zone, day.previous, plan, day.next);

    // The day's punches, in time order (ties by id, so input order never matters).
    let mut mine: Vec<&Punch> = day
        .punches
        .iter()
        .copied()
        .filter(|p| owned.contains(p.instant))
        .collect();
    mine.sort_by_key(|p| (p.instant, p.punch_id));
    mine.dedup_by_key(|p| p.punch_id);

    let mut notes: Vec<PunchNote> = Vec::with_capacity(mine.len());
    let mut kept: Vec<Seen<'_>> = Vec::with_capacity(mine.len());
    let gap = day.options.merge_gap_s.map(i64::from);
    for p in mine {
        let place = if matches!(p.source, PunchSource::Mobile) {
            geo::place(day.options, p.location.as_ref(), p.wifi_bssid.as_deref())
        } else {
            Place::InRange
        };
        let refused = matches!(p.source, PunchSource::Mobile)
            && ((place == Place::OutOfRange && day.options.out_of_range == OutOfRange::Refuse)
                || (day.options.photo_required && p.photo_ref.is_none()));
        let merged = !refused
            && gap.is_some_and(|g| {
                kept.last()
                    .is_some_and(|k| (p.instant - k.at()).num_seconds() < g)
            });
        let off_device = match (&p.source, &p.device_sn) {
            (PunchSource::Device, Some(sn)) => {
                !day.options.devices.is_empty() && !day.options.devices.contains(sn)
            }
            _ => false,
        };
        notes.push(PunchNote {
            punch_id: p.punch_id,
            local_time: time::local(zone, p.instant),
            source: source_label(&p.source).to_owned(),
            device_sn: p.device_sn.clone(),
            place,
            used: if refused {
                PunchUse::Refused
            } else if merged {
                PunchUse::Merged
            } else {
                PunchUse::Unused
            },
        });
        if !refused && !merged {
            kept.push(Seen {
                punch: p,
                place,
                off_device,
            });
        }
    }

    let recorded: Vec<Seen<'_>> = kept.iter().copied().filter(|s| !s.make_up()).collect();
    let cover: Vec<&Approval> = day
        .approvals
        .iter()
        .filter(|a| !matches!(a.kind, ApprovalKind::Overtime) && a.span.overlap(&owned).is_some())
        .collect();

    let ctx = verdict::Ctx { day, owned, zone };
    let original = ctx.verdict(&recorded, &[]);
    let mut calibrated = ctx.verdict(&kept, &cover);

    // Slot roles, from the calibrated reading (it holds every punch).
    for (i, section) in calibrated.slots.iter().enumerate() {
        let i = i as u8;
        for (slot, role) in [
            (&section.0, PunchUse::On { section: i }),
            (&section.1, PunchUse::Off { section: i }),
        ] {
            if let Some(id) = slot.punch_id
                && let Some(n) = notes.iter_mut().find(|n| n.punch_id == id)
            {
                n.used = role;
            }
        }
    }
    if let Some(free) = &calibrated.free_roles {
        for (id, role) in free {
            if let Some(n) = notes.iter_mut().find(|n| n.punch_id == *id) {
                n.used = *role;
            }
        }
    }

    let calibrations = verdict::apply_calibrations(&mut calibrated, day.calibrations);

    let scheduled = ctx.scheduled();
    let sections = scheduled
        .iter()
        .zip(original.slots.iter().zip(calibrated.slots.iter()))
        .map(|(s, (o, c))| SectionReport {
            on: SlotReport {
                scheduled: time::local(zone, s.on),
                original: o.0.clone(),
                calibrated: c.0.clone(),
            },
            off: SlotReport {
                scheduled: time::local(zone, s.off),
                original: o.1.clone(),
                calibrated: c.1.clone(),
            },
        })
        .collect();

    let earliest = kept.first().map(|s| time::local(zone, s.at()));
    let latest = kept.last().map(|s| time::local(zone, s.at()));

    let mut approvals: Vec<ApprovalNote> = Vec::new();
    for a in day.approvals {
        let Some(overlap) = a.span.overlap(&owned) else {
            continue;
        };
        let (kind, seconds) = match &a.kind {
            ApprovalKind::Leave { leave_type } => (
                NoteKind::Leave {
                    leave_type: leave_type.clone(),
                },
                ctx.scheduled_work_within(&a.span),
            ),
            ApprovalKind::BusinessTrip => {
                (NoteKind::BusinessTrip, ctx.scheduled_work_within(&a.span))
            }
            ApprovalKind::Outing => (NoteKind::Outing, ctx.scheduled_work_within(&a.span)),
            ApprovalKind::Overtime => (NoteKind::Overtime, overlap.seconds()),
        };
        approvals.push(ApprovalNote {
            approval_id: a.approval_id.clone(),
            kind,
            seconds,
        });
    }
    for s in &kept {
        if let PunchSource::MakeUp { approval_id } = &s.punch.source {
            approvals.push(ApprovalNote {
                approval_id: approval_id.clone(),
                kind: NoteKind::MakeUp,
                seconds: 0,
            });
        }
    }
    let field_work = kept
        .iter()
        .filter(|s| {
            s.place == Place::OutOfRange && day.options.out_of_range == OutOfRange::FieldWork
        })
        .count() as u32;

    let overtime = ctx.overtime(&kept, &calibrated);
    let late_out_s = calibrated.late_out_s;

    Judged {
        date: plan.date,
        rule: day.rule.clone(),
        zone: zone.name().to_string(),
        day_type: plan.day_type,
        holiday: plan.holiday.clone(),
        shift: match &plan.work {
            Work::Sections { shift, .. } => shift.clone(),
            _ => None,
        },
        owned,
        in_progress: day.now.is_some_and(|now| now < owned.end),
        sections,
        earliest,
        latest,
        punch_count: kept.len() as u32,
        work_s: calibrated.verdict.work_s,
        standard_work_s: ctx.standard_work_s(),
        original: original.verdict,
        calibrated: calibrated.verdict,
        approvals,
        field_work,
        overtime,
        punches: notes,
        calibrations,
        late_out_s,
    }
}
