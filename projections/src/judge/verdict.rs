//! One reading of a day: which punch fills which slot, and what each slot's status is.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use schemas::events::{CalibrationTarget, Flex, OutOfRange, SlotEnd, WorkDay, WorkTime};
use schemas::ids::PunchId;

use super::plan::{self, Placed};
use super::{
    Approval, ApprovalKind, Calibration, CalibrationNote, Day, DayType, Exceptions, Overtime,
    OvertimeBasis, PunchUse, Seen, SlotVerdict, Status, Tally, Verdict, Work,
};
use crate::geo::Place;
use crate::time::{self, Span, seconds_outside};

pub(super) struct Ctx<'a> {
    pub day: &'a Day<'a>,
    pub owned: Span,
    pub zone: Tz,
}

/// A reading of the day, before it is flattened into the report.
pub(super) struct Reading {
    pub slots: Vec<(SlotVerdict, SlotVerdict)>,
    pub verdict: Verdict,
    /// Free rules: each punch's alternating role.
    pub free_roles: Option<Vec<(PunchId, PunchUse)>>,
    pub late_out_s: Option<i64>,
    /// Seconds the last off punch is past the (flex-adjusted) end of the day.
    pub past_end_s: Option<i64>,
    absent: Tally,
    covered_by: Vec<Status>,
    fully_covered: bool,
}

fn cover_status(kind: &ApprovalKind) -> Status {
    match kind {
        ApprovalKind::Leave { .. } => Status::OnLeave,
        ApprovalKind::BusinessTrip => Status::BusinessTrip,
        ApprovalKind::Outing => Status::Outing,
        ApprovalKind::Overtime => Status::Normal,
    }
}

impl Ctx<'_> {
    fn local(&self, t: DateTime<Utc>) -> chrono::NaiveDateTime {
        time::local(self.zone, t)
    }

    pub fn scheduled(&self) -> Vec<Placed> {
        match &self.day.plan.work {
            Work::Sections { day, .. } => plan::place(self.zone, self.day.plan.date, day),
            Work::Off | Work::Free { .. } => Vec::new(),
        }
    }

    fn rests(&self) -> Vec<Span> {
        match &self.day.plan.work {
            Work::Sections { day, .. } => plan::rests(self.zone, self.day.plan.date, day),
            Work::Off | Work::Free { .. } => Vec::new(),
        }
    }

    pub fn standard_work_s(&self) -> i64 {
        match &self.day.plan.work {
            Work::Sections { .. } => {
                let rests = self.rests();
                self.scheduled()
                    .iter()
                    .map(|p| seconds_outside(p.span(), &rests))
                    .sum()
            }
            Work::Free { standard_work_s } => i64::from(*standard_work_s),
            Work::Off => 0,
        }
    }

    /// Scheduled work (rests excluded) inside `span`.
    pub fn scheduled_work_within(&self, span: &Span) -> i64 {
        match &self.day.plan.work {
            Work::Sections { .. } => {
                let rests = self.rests();
                self.scheduled()
                    .iter()
                    .filter_map(|p| p.span().overlap(span))
                    .map(|s| seconds_outside(s, &rests))
                    .sum()
            }
            Work::Free { standard_work_s } => span
                .overlap_seconds(&self.owned)
                .min(i64::from(*standard_work_s)),
            Work::Off => 0,
        }
    }

    fn flags(&self, s: &Seen<'_>) -> Vec<Status> {
        let mut flags = Vec::new();
        if s.place == Place::OutOfRange {
            match self.day.options.out_of_range {
                OutOfRange::LocationException => flags.push(Status::LocationException),
                OutOfRange::FieldWork => flags.push(Status::FieldWork),
                OutOfRange::Refuse => {}
            }
        }
        if s.off_device {
            flags.push(Status::DeviceException);
        }
        flags
    }

    fn slot(&self, status: Status, seconds: i64, s: Option<&Seen<'_>>) -> SlotVerdict {
        SlotVerdict {
            status,
            seconds,
            punch: s.map(|s| self.local(s.at())),
            punch_id: s.map(|s| s.punch.punch_id),
            make_up: s.is_some_and(|s| s.make_up()),
            flags: s.map(|s| self.flags(s)).unwrap_or_default(),
        }
    }

    /// Reads the day from `punches` (time-ordered), with `cover` (leave, trips,
    /// outings) taken off the scheduled time.
    pub fn verdict(&self, punches: &[Seen<'_>], cover: &[&Approval]) -> Reading {
        let plan = self.day.plan;
        match &plan.work {
            Work::Off => {
                let status = match plan.day_type {
                    DayType::Holiday => Status::Holiday,
                    DayType::Rest | DayType::Workday => Status::Rest,
                };
                Reading {
                    slots: Vec::new(),
                    verdict: Verdict {
                        status: vec![status],
                        exceptions: Exceptions::default(),
                        work_s: 0,
                    },
                    free_roles: None,
                    late_out_s: None,
                    past_end_s: None,
                    absent: Tally::default(),
                    covered_by: Vec::new(),
                    fully_covered: false,
                }
            }
            Work::Free { standard_work_s } => {
                self.free(punches, cover, i64::from(*standard_work_s))
            }
            Work::Sections { day, .. } => self.sections(day, punches, cover),
        }
    }

    fn free(&self, punches: &[Seen<'_>], cover: &[&Approval], standard: i64) -> Reading {
        // 取卡规则: on, off, on, off... Work is the first on to the last off.
        let roles: Vec<(PunchId, PunchUse)> = punches
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let role = if i % 2 == 0 {
                    PunchUse::On { section: 0 }
                } else {
                    PunchUse::Off { section: 0 }
                };
                (s.punch.punch_id, role)
            })
            .collect();
        let first_on = punches.first().map(Seen::at);
        // The last punch at an odd position (1, 3, ...) is the last off.
        let last_off = match punches.len() {
            0 | 1 => None,
            n => Some(punches[if n % 2 == 0 { n - 1 } else { n - 2 }].at()),
        };
        let work_s = match (first_on, last_off) {
            (Some(a), Some(b)) => (b - a).num_seconds(),
            _ => 0,
        };
        let mut exceptions = Exceptions::default();
        let mut absent = Tally::default();
        let covered_by: Vec<Status> = cover.iter().map(|a| cover_status(&a.kind)).collect();
        let mut status = Vec::new();
        let open = self.day.now.is_some_and(|now| now < self.owned.end);
        if punches.is_empty() {
            if open && covered_by.is_empty() {
                status.push(Status::Pending);
            } else if covered_by.is_empty() {
                absent.add(standard);
                exceptions.absent = absent;
                status.push(Status::Absent);
            } else {
                status.extend(distinct(&covered_by));
            }
        } else {
            for s in punches {
                for f in self.flags(s) {
                    match f {
                        Status::LocationException => exceptions.location.add(0),
                        Status::DeviceException => exceptions.device.add(0),
                        _ => {}
                    }
                }
            }
            status = exceptions.statuses();
            if open {
                status.push(Status::Pending);
            } else if status.is_empty() {
                status.push(Status::Normal);
            }
        }
        Reading {
            slots: Vec::new(),
            verdict: Verdict {
                status,
                exceptions,
                work_s,
            },
            free_roles: Some(roles),
            late_out_s: None,
            past_end_s: last_off.map(|_| work_s - standard),
            absent,
            covered_by,
            fully_covered: punches.is_empty() && !cover.is_empty(),
        }
    }

    fn sections(&self, day: &WorkDay, punches: &[Seen<'_>], cover: &[&Approval]) -> Reading {
        let placed = self.scheduled();
        let rests = self.rests();
        let cover_spans: Vec<Span> = cover.iter().map(|a| a.span).collect();
        let last = placed.len().saturating_sub(1);

        // Late-out, late-in: the highest tier the previous day's off punch reached.
        let tier_extra = self.day.late_out_s.map_or(0, |late| {
            day.late_out_late_in
                .iter()
                .filter(|t| late >= i64::from(t.off_after_s))
                .map(|t| i64::from(t.next_on_later_by_s))
                .max()
                .unwrap_or(0)
        });

        let mut slots = Vec::with_capacity(placed.len());
        let mut work_s = 0;
        let mut absent_s = 0;
        let mut any_punched = false;
        let mut any_uncovered = false;
        let mut covered_by = Vec::new();
        let mut shift = Duration::zero();
        let mut late_out_s = None;
        let mut past_end_s = None;
        let mut any_open = false;

        for (i, p) in placed.iter().enumerate() {
            let lo = if i == 0 {
                self.owned.start
            } else {
                plan::between_sections(&placed[i - 1], p)
            };
            let hi = if i == last {
                self.owned.end
            } else {
                plan::between_sections(p, &placed[i + 1])
            };
            let region: Vec<&Seen<'_>> = punches
                .iter()
                .filter(|s| lo <= s.at() && s.at() < hi)
                .collect();
            let (on, off) = pick(p, &region);
            // A section whose punches can still come: its slots wait, unjudged.
            let open = self.day.now.is_some_and(|now| now < hi);
            any_open |= open;

            // With leave in the section, a rest next to it is not work either: leave
            // until lunch expects the person back after lunch.
            let mut holes = cover_spans.clone();
            if !cover_spans.is_empty() {
                holes.extend(rests.iter().copied());
            }
            let uncovered = p.span().minus(&holes);
            let cover_on = cover
                .iter()
                .find(|a| a.span.contains(p.on))
                .map(|a| cover_status(&a.kind));
            let cover_off = cover
                .iter()
                .find(|a| a.span.start < p.off && p.off <= a.span.end)
                .map(|a| cover_status(&a.kind));
            covered_by.extend(cover_on);
            covered_by.extend(cover_off);

            let (Some(first), Some(last_part)) = (uncovered.first(), uncovered.last()) else {
                // The whole section is covered by an approval.
                let status = cover_on.or(cover_off).unwrap_or(Status::OnLeave);
                slots.push((self.slot(status, 0, on), self.slot(status, 0, off)));
                continue;
            };
            any_uncovered = true;
            let expected_on = first.start;
            let mut expected_off = last_part.end;

            // The on slot.
            let (late_tolerance, alll) = match day.flex {
                Flex::None => (0, None),
                Flex::Allowance { late_s, .. } => (i64::from(late_s), None),
                Flex::ArriveLateLeaveLate {
                    max_late_s,
                    max_early_s,
                } => {
                    if i == 0 {
                        (i64::from(max_late_s), Some((max_late_s, max_early_s)))
                    } else {
                        (0, None)
                    }
                }
            };
            let late_tolerance = if i == 0 {
                late_tolerance.max(tier_extra)
            } else {
                late_tolerance
            };
            let on_slot = match on {
                None if open && cover_on.is_none() => self.slot(Status::Pending, 0, None),
                None => self.slot(cover_on.unwrap_or(Status::MissingPunch), 0, None),
                Some(s) => {
                    let by = (s.at() - expected_on).num_seconds();
                    if let Some((max_late, max_early)) = alll {
                        shift =
                            Duration::seconds(by.clamp(-i64::from(max_early), i64::from(max_late)));
                    }
                    if by > late_tolerance {
                        self.slot(Status::Late, by, Some(s))
                    } else {
                        self.slot(Status::Normal, 0, Some(s))
                    }
                }
            };

            // The off slot.
            let early_tolerance = match day.flex {
                Flex::Allowance { early_s, .. } => i64::from(early_s),
                Flex::None | Flex::ArriveLateLeaveLate { .. } => 0,
            };
            if i == last && matches!(day.flex, Flex::ArriveLateLeaveLate { .. }) {
                expected_off += shift;
            }
            let off_slot = match off {
                // The last punch so far may not be the last of the section.
                _ if open && cover_off.is_none() => {
                    if let Some(s) = off
                        && i == last
                    {
                        past_end_s = Some((s.at() - expected_off).num_seconds());
                        late_out_s = Some((s.at() - p.off).num_seconds());
                    }
                    self.slot(Status::Pending, 0, off)
                }
                None if day.off_punch_required => {
                    self.slot(cover_off.unwrap_or(Status::MissingPunch), 0, None)
                }
                None => self.slot(cover_off.unwrap_or(Status::Normal), 0, None),
                Some(s) => {
                    let early = (expected_off - s.at()).num_seconds();
                    if i == last {
                        past_end_s = Some(-early);
                        late_out_s = Some((s.at() - p.off).num_seconds());
                    }
                    // 下班不需打卡: an off punch is recorded for work time, never judged.
                    if early > early_tolerance && day.off_punch_required {
                        self.slot(Status::EarlyLeave, early, Some(s))
                    } else {
                        self.slot(Status::Normal, 0, Some(s))
                    }
                }
            };

            any_punched |= on.is_some() || off.is_some();
            if let (Some(a), Some(b)) = (on, off) {
                let start_shift = if i == 0 { shift } else { Duration::zero() };
                let end_shift = if i == last { shift } else { Duration::zero() };
                let clip = Span::new(p.on + start_shift, p.off + end_shift);
                let punched = Span::new(a.at(), b.at());
                let worked = match self.day.options.work_time {
                    Some(WorkTime::Punched) => (a.at() < b.at()).then_some(punched),
                    Some(WorkTime::InsideSchedule) | None => punched.overlap(&clip),
                };
                if let Some(worked) = worked {
                    work_s += seconds_outside(worked, &rests);
                }
            }
            absent_s += uncovered
                .iter()
                .map(|u| seconds_outside(*u, &rests))
                .sum::<i64>();
            slots.push((on_slot, off_slot));
        }

        let mut absent = Tally::default();
        if any_uncovered && !any_punched && !any_open {
            absent.add(absent_s);
        }
        let mut reading = Reading {
            slots,
            verdict: Verdict {
                status: Vec::new(),
                exceptions: Exceptions::default(),
                work_s,
            },
            free_roles: None,
            late_out_s,
            past_end_s,
            absent,
            covered_by,
            fully_covered: !any_uncovered && !placed.is_empty(),
        };
        reading.summarise();
        reading
    }

    pub fn overtime(&self, kept: &[Seen<'_>], reading: &Reading) -> Option<Overtime> {
        let policy = self.day.options.overtime;
        let day_type = self.day.plan.day_type;
        let (seconds, basis) = if policy.by_punch {
            let s = match &self.day.plan.work {
                Work::Off => match (kept.first(), kept.last()) {
                    (Some(a), Some(b)) => (b.at() - a.at()).num_seconds(),
                    _ => 0,
                },
                Work::Sections { .. } | Work::Free { .. } => reading.past_end_s.unwrap_or(0),
            };
            (s, OvertimeBasis::Punches)
        } else {
            let s = self
                .day
                .approvals
                .iter()
                .filter(|a| matches!(a.kind, ApprovalKind::Overtime))
                .map(|a| a.span.overlap_seconds(&self.owned))
                .sum();
            (s, OvertimeBasis::Approval)
        };
        (seconds > 0 && seconds >= i64::from(policy.min_s)).then_some(Overtime {
            seconds,
            day_type,
            basis,
        })
    }
}

/// The on and off punch of a section: with two or more punches, the earliest that its
/// on window accepts and the latest (another one) that its off window accepts; a lone
/// punch is the on punch when it is nearer the start than the end.
fn pick<'s, 'a>(
    p: &Placed,
    region: &[&'s Seen<'a>],
) -> (Option<&'s Seen<'a>>, Option<&'s Seen<'a>>) {
    let on_ok = |s: &Seen<'_>| plan::in_window(&p.on_window, p.on, s.at());
    let off_ok = |s: &Seen<'_>| plan::in_window(&p.off_window, p.off, s.at());
    match region {
        [] => (None, None),
        [only] => {
            let (a, b) = (on_ok(only), off_ok(only));
            let nearer_on = (only.at() - p.on).abs() <= (p.off - only.at()).abs();
            match (a, b) {
                (true, true) if nearer_on => (Some(*only), None),
                (true, true) => (None, Some(*only)),
                (true, false) => (Some(*only), None),
                (false, true) => (None, Some(*only)),
                (false, false) => (None, None),
            }
        }
        _ => {
            let on_at = region.iter().position(|s| on_ok(s));
            let off_at = region
                .iter()
                .enumerate()
                .rev()
                .find(|(i, s)| Some(*i) != on_at && off_ok(s) && on_at.is_none_or(|o| *i > o))
                .map(|(i, _)| i);
            (on_at.map(|i| region[i]), off_at.map(|i| region[i]))
        }
    }
}

fn distinct(statuses: &[Status]) -> Vec<Status> {
    let mut out: Vec<Status> = Vec::new();
    for s in statuses {
        if !out.contains(s) {
            out.push(*s);
        }
    }
    out
}

impl Reading {
    /// Recomputes exceptions and statuses from the slots.
    fn summarise(&mut self) {
        if self.free_roles.is_some() {
            return;
        }
        let mut e = Exceptions::default();
        for (on, off) in &self.slots {
            for slot in [on, off] {
                match slot.status {
                    Status::Late => e.late.add(slot.seconds),
                    Status::EarlyLeave => e.early_leave.add(slot.seconds),
                    Status::MissingPunch => e.missing_punch.add(0),
                    _ => {}
                }
                for f in &slot.flags {
                    match f {
                        Status::LocationException => e.location.add(0),
                        Status::DeviceException => e.device.add(0),
                        _ => {}
                    }
                }
            }
        }
        let still_absent = self.absent.count > 0
            && self.slots.iter().all(|(on, off)| {
                on.punch.is_none() && off.punch.is_none() && on.status != Status::Normal
            });
        if still_absent {
            // A workday with no punch at all is absent, and its slots are not counted
            // again as missing punches (WeCom: summary 缺卡, detail 旷工).
            e.absent = self.absent;
            e.missing_punch = Tally::default();
        }
        let mut status = e.statuses();
        let pending = self
            .slots
            .iter()
            .any(|(on, off)| on.status == Status::Pending || off.status == Status::Pending);
        if pending {
            status.push(Status::Pending);
        } else if status.is_empty() && !self.fully_covered {
            status.push(Status::Normal);
        }
        for c in distinct(&self.covered_by) {
            if !status.contains(&c) {
                status.push(c);
            }
        }
        self.verdict.exceptions = e;
        self.verdict.status = status;
    }
}

/// Applies calibrations in order: the last one for a target wins, and one that names
/// another in `replaces` retires it. Returns the whole trail, applied or not.
pub(super) fn apply_calibrations(
    reading: &mut Reading,
    calibrations: &[Calibration],
) -> Vec<CalibrationNote> {
    let retired: Vec<_> = calibrations
        .iter()
        .filter_map(|c| c.calibration.replaces.clone())
        .collect();
    let mut notes = Vec::with_capacity(calibrations.len());
    for (i, c) in calibrations.iter().enumerate() {
        let cal = &c.calibration;
        let later_same_target = calibrations[i + 1..]
            .iter()
            .any(|l| l.calibration.target == cal.target);
        let superseded = retired.contains(&cal.calibration_id) || later_same_target;
        let status = Status::from(cal.status);
        if !superseded {
            match cal.target {
                CalibrationTarget::Slot { section, end } => {
                    if let Some((on, off)) = reading.slots.get_mut(usize::from(section)) {
                        let slot = match end {
                            SlotEnd::On => on,
                            SlotEnd::Off => off,
                        };
                        if slot.status != status {
                            slot.seconds = 0;
                        }
                        slot.status = status;
                        slot.flags.clear();
                        // A calibrated slot is no longer an unpunched one.
                        if status != Status::MissingPunch && status != Status::Absent {
                            reading.absent = Tally::default();
                        }
                    }
                    reading.summarise();
                }
                CalibrationTarget::Day => {}
            }
        }
        notes.push(CalibrationNote {
            calibration_id: cal.calibration_id.clone(),
            target: cal.target.clone(),
            status,
            reason: cal.reason.clone(),
            actor: c.actor.clone(),
            at: c.at,
            replaces: cal.replaces.clone(),
            superseded,
        });
    }
    // A day calibration is applied last: it is the administrator's word on the whole day.
    if let Some(day) = notes
        .iter()
        .rev()
        .find(|n| !n.superseded && n.target == CalibrationTarget::Day)
    {
        let e = reading.verdict.exceptions;
        let mut kept = Exceptions::default();
        match day.status {
            Status::Late => kept.late = e.late,
            Status::EarlyLeave => kept.early_leave = e.early_leave,
            Status::MissingPunch => kept.missing_punch = e.missing_punch,
            Status::Absent => {
                kept.absent = if e.absent.count > 0 {
                    e.absent
                } else {
                    reading.absent
                }
            }
            Status::LocationException => kept.location = e.location,
            Status::DeviceException => kept.device = e.device,
            _ => {}
        }
        reading.verdict.exceptions = kept;
        reading.verdict.status = vec![day.status];
    }
    notes
}
