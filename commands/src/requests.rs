//! Requests and approvals: leave, business trips, outings and overtime approved for a
//! span; make-up punches (补卡) requested within the rule's limits, then approved or
//! rejected; calibrations (校准) of a day or a slot, each with a reason, replacing an
//! earlier one on the same day and slot without erasing it.
//!
//! All of these are facts about one person, so they are guarded on the Person kind; the
//! state also folds the rules, for the zone a local time is read in and the make-up
//! limits of the rule the person follows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use schemas::events::{
    ApprovedSpan, AttendanceStatus, BusinessTripApproved, CalibrationApplied, CalibrationTarget,
    LeaveApproved, MakeUpPunchApproved, MakeUpPunchRejected, MakeUpPunchRequested, OutingApproved,
    OvertimeApproved, OvertimeCompensation, Punch, PunchSource, RuleVersionDefined,
};
use schemas::ids::{ApprovalId, CalibrationId, PersonId, PunchId, RuleId, UserId, ZoneName};
use schemas::{AggregateKind, Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::organisation::Organisation;
use crate::rules::Rules;
use crate::{Command, Decided, Rejection, State, valid_id};

#[derive(Debug, Clone, PartialEq)]
pub struct MakeUp {
    pub person_id: PersonId,
    pub local_time: NaiveDateTime,
    pub zone: ZoneName,
    /// `None` pending, `Some(true)` approved, `Some(false)` rejected.
    pub decided: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct Requests {
    pub org: Organisation,
    pub rules: Rules,
    /// Every approval id used, by any kind of request.
    pub approvals: BTreeSet<ApprovalId>,
    pub make_ups: BTreeMap<ApprovalId, MakeUp>,
    pub calibration_ids: BTreeSet<CalibrationId>,
    /// The calibration in force on a person's day and slot.
    pub calibrations: BTreeMap<(PersonId, NaiveDate, String), CalibrationId>,
}

fn target_key(t: &CalibrationTarget) -> String {
    match t {
        CalibrationTarget::Day => "day".into(),
        CalibrationTarget::Slot { section, end } => format!("{section}:{end:?}"),
    }
}

impl State for Requests {
    fn apply(&mut self, sequence: u64, envelope: &Envelope) {
        self.org.apply_event(&envelope.event);
        self.rules.apply(sequence, envelope);
        match &envelope.event {
            Event::MakeUpPunchRequested(e) => {
                self.approvals.insert(e.approval_id.clone());
                self.make_ups.insert(
                    e.approval_id.clone(),
                    MakeUp {
                        person_id: e.person_id.clone(),
                        local_time: e.local_time,
                        zone: e.zone.clone(),
                        decided: None,
                    },
                );
            }
            Event::MakeUpPunchApproved(e) => {
                self.approvals.insert(e.approval_id.clone());
                if let Some(m) = self.make_ups.get_mut(&e.approval_id) {
                    m.decided = Some(true);
                }
            }
            Event::MakeUpPunchRejected(e) => {
                if let Some(m) = self.make_ups.get_mut(&e.approval_id) {
                    m.decided = Some(false);
                }
            }
            Event::LeaveApproved(e) => {
                self.approvals.insert(e.approval_id.clone());
            }
            Event::BusinessTripApproved(e) => {
                self.approvals.insert(e.approval_id.clone());
            }
            Event::OutingApproved(e) => {
                self.approvals.insert(e.approval_id.clone());
            }
            Event::OvertimeApproved(e) => {
                self.approvals.insert(e.approval_id.clone());
            }
            Event::CalibrationApplied(e) => {
                self.calibration_ids.insert(e.calibration_id.clone());
                self.calibrations.insert(
                    (e.person_id.clone(), e.date, target_key(&e.target)),
                    e.calibration_id.clone(),
                );
            }
            _ => {}
        }
    }
}

impl Requests {
    /// The rule version `person` follows on `date`, as the projections resolve it: a
    /// membership naming them directly beats one through a department; then the latest
    /// effective date. (Departments are read as they are now.)
    pub fn rule_of(&self, person: &PersonId, date: NaiveDate) -> Option<&RuleVersionDefined> {
        let p = self.org.people.get(person)?;
        let mut best: Option<(bool, NaiveDate, usize, &RuleId)> = None;
        for (rule, ms) in &self.rules.memberships {
            let in_force = ms
                .iter()
                .enumerate()
                .filter(|(_, m)| m.effective_from <= date)
                .max_by_key(|(i, m)| (m.effective_from, *i));
            let Some((i, m)) = in_force else { continue };
            if m.excluded_people.contains(person) {
                continue;
            }
            let direct = m.people.contains(person);
            let by_dept = m.departments.iter().any(|d| self.under(&p.department, d));
            if direct || by_dept {
                let key = (direct, m.effective_from, i, rule);
                if best.is_none_or(|b| (key.0, key.1, key.2) > (b.0, b.1, b.2)) {
                    best = Some(key);
                }
            }
        }
        let rule = best?.3;
        self.rules
            .rules
            .get(rule)?
            .iter()
            .filter(|v| v.effective_from <= date)
            .max_by_key(|v| v.version)
    }

    fn under(&self, d: &schemas::ids::DepartmentId, ancestor: &schemas::ids::DepartmentId) -> bool {
        let mut at = Some(d);
        for _ in 0..64 {
            match at {
                Some(x) if x == ancestor => return true,
                Some(x) => at = self.org.departments.get(x).and_then(|x| x.parent.as_ref()),
                None => return false,
            }
        }
        false
    }

    fn employed(&self, person: &PersonId, date: NaiveDate) -> Result<(), Rejection> {
        self.org.employed(person, date)
    }

    fn zone_of(
        &self,
        person: &PersonId,
        date: NaiveDate,
        given: Option<&ZoneName>,
    ) -> Result<ZoneName, Rejection> {
        if let Some(z) = given {
            return Ok(z.clone());
        }
        self.rule_of(person, date)
            .map(|r| r.zone.clone())
            .ok_or_else(|| {
                Rejection::Invalid(format!(
                    "person {person} follows no rule on {date}: give the zone the times are in"
                ))
            })
    }

    fn fresh_approval(&self, id: &ApprovalId) -> Result<(), Rejection> {
        valid_id("approval", id.as_str())?;
        if self.approvals.contains(id) || self.make_ups.contains_key(id) {
            return Err(Rejection::Conflict(format!("approval {id} already exists")));
        }
        Ok(())
    }
}

fn reason_required(reason: &str) -> Result<String, Rejection> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Rejection::Invalid("a reason is required".into()));
    }
    Ok(r.to_owned())
}

/// A local time in `zone` as an instant (the earlier one in a repeated hour; a time
/// skipped by a clock change is refused).
fn instant(local: NaiveDateTime, zone: &ZoneName) -> Result<DateTime<Utc>, Rejection> {
    local
        .and_local_timezone(zone.tz())
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| Rejection::Invalid(format!("{local} does not exist in {}", zone.as_str())))
}

/// What an approved absence or overtime is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AbsenceKind {
    Leave {
        leave_type: String,
    },
    BusinessTrip {
        #[serde(default)]
        destination: Option<String>,
    },
    Outing {
        #[serde(default)]
        destination: Option<String>,
    },
    Overtime {
        #[serde(default)]
        compensation: OvertimeCompensation,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RequestCommand {
    /// An approved leave, trip, outing or overtime from `start` to `end`, local times in
    /// `zone` (default: the zone of the rule the person follows on the start date).
    Approve {
        approval_id: ApprovalId,
        person_id: PersonId,
        kind: AbsenceKind,
        start: NaiveDateTime,
        end: NaiveDateTime,
        #[serde(default)]
        zone: Option<ZoneName>,
        #[serde(default)]
        note: Option<String>,
    },
    /// A make-up punch asked for, at a local time in the person's rule's zone; the
    /// rule's make-up limits (per month, days after the day) are checked now.
    RequestMakeUp {
        approval_id: ApprovalId,
        person_id: PersonId,
        local_time: NaiveDateTime,
        reason: String,
    },
    ApproveMakeUp {
        approval_id: ApprovalId,
        #[serde(default)]
        approver: Option<UserId>,
    },
    RejectMakeUp {
        approval_id: ApprovalId,
        #[serde(default)]
        approver: Option<UserId>,
        reason: String,
    },
    /// The day's or a slot's status set by an administrator, with the reason. An
    /// earlier calibration of the same day and slot is replaced (and named), not erased.
    Calibrate {
        calibration_id: CalibrationId,
        person_id: PersonId,
        date: NaiveDate,
        target: CalibrationTarget,
        status: AttendanceStatus,
        reason: String,
    },
}

impl Command for RequestCommand {
    type State = Requests;

    fn reads(&self) -> &'static [AggregateKind] {
        &[
            AggregateKind::Person,
            AggregateKind::Department,
            AggregateKind::Rule,
        ]
    }

    fn guards(&self) -> Option<AggregateKind> {
        Some(AggregateKind::Person)
    }

    fn decide(&self, s: &Requests, now: DateTime<Utc>) -> Result<Vec<Decided>, Rejection> {
        match self {
            Self::Approve {
                approval_id,
                person_id,
                kind,
                start,
                end,
                zone,
                note,
            } => {
                s.fresh_approval(approval_id)?;
                s.employed(person_id, start.date())?;
                if end <= start {
                    return Err(Rejection::Invalid(format!(
                        "the span ends ({end}) before it starts ({start})"
                    )));
                }
                if *end - *start > Duration::days(366) {
                    return Err(Rejection::Invalid("a span is at most 366 days".into()));
                }
                let zone = s.zone_of(person_id, start.date(), zone.as_ref())?;
                let span = ApprovedSpan {
                    start: instant(*start, &zone)?,
                    end: instant(*end, &zone)?,
                };
                let (approval_id, person_id) = (approval_id.clone(), person_id.clone());
                Ok(vec![match kind {
                    AbsenceKind::Leave { leave_type } => {
                        let leave_type = leave_type.trim();
                        if leave_type.is_empty() {
                            return Err(Rejection::Invalid(
                                "a leave has a type (annual, sick, personal, ...)".into(),
                            ));
                        }
                        LeaveApproved {
                            approval_id,
                            person_id,
                            leave_type: leave_type.to_owned(),
                            span,
                            note: note.clone(),
                        }
                        .into()
                    }
                    AbsenceKind::BusinessTrip { destination } => BusinessTripApproved {
                        approval_id,
                        person_id,
                        span,
                        destination: destination.clone(),
                    }
                    .into(),
                    AbsenceKind::Outing { destination } => OutingApproved {
                        approval_id,
                        person_id,
                        span,
                        destination: destination.clone(),
                    }
                    .into(),
                    AbsenceKind::Overtime { compensation } => OvertimeApproved {
                        approval_id,
                        person_id,
                        span,
                        compensation: *compensation,
                    }
                    .into(),
                }])
            }
            Self::RequestMakeUp {
                approval_id,
                person_id,
                local_time,
                reason,
            } => {
                s.fresh_approval(approval_id)?;
                let date = local_time.date();
                s.employed(person_id, date)?;
                let reason = reason_required(reason)?;
                let Some(rule) = s.rule_of(person_id, date) else {
                    return Err(Rejection::Invalid(format!(
                        "person {person_id} follows no rule on {date}: there is no day to make up"
                    )));
                };
                let zone = rule.zone.clone();
                let today = now.with_timezone(&zone.tz()).date_naive();
                if instant(*local_time, &zone)? > now {
                    return Err(Rejection::Invalid(format!(
                        "{local_time} is in the future: a make-up is for a punch that was missed"
                    )));
                }
                let limits = rule.options.make_up;
                if let Some(within) = limits.within_days
                    && (today - date).num_days() > i64::from(within)
                {
                    return Err(Rejection::Invalid(format!(
                        "rule {} allows make-ups at most {within} days after the day; {date} was {} days ago",
                        rule.rule_id,
                        (today - date).num_days()
                    )));
                }
                if let Some(per_month) = limits.per_month {
                    let used = s
                        .make_ups
                        .values()
                        .filter(|m| {
                            &m.person_id == person_id
                                && m.decided != Some(false)
                                && m.local_time.year() == date.year()
                                && m.local_time.month() == date.month()
                        })
                        .count();
                    if used >= per_month as usize {
                        return Err(Rejection::Conflict(format!(
                            "person {person_id} has used {used} of {per_month} make-ups for {}-{:02} (rule {})",
                            date.year(),
                            date.month(),
                            rule.rule_id
                        )));
                    }
                }
                Ok(vec![
                    MakeUpPunchRequested {
                        approval_id: approval_id.clone(),
                        person_id: person_id.clone(),
                        local_time: *local_time,
                        zone,
                        reason,
                    }
                    .into(),
                ])
            }
            Self::ApproveMakeUp {
                approval_id,
                approver,
            } => {
                let m = pending(s, approval_id)?;
                let instant = instant(m.local_time, &m.zone)?;
                Ok(vec![
                    MakeUpPunchApproved {
                        approval_id: approval_id.clone(),
                        person_id: m.person_id.clone(),
                        approver: approver.clone(),
                        punch: Punch {
                            punch_id: PunchId::for_make_up(approval_id),
                            source: PunchSource::MakeUp {
                                approval_id: approval_id.clone(),
                            },
                            person_id: Some(m.person_id.clone()),
                            device_sn: None,
                            badge_number: None,
                            local_time: m.local_time,
                            zone: m.zone.clone(),
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
                        },
                    }
                    .into(),
                ])
            }
            Self::RejectMakeUp {
                approval_id,
                approver,
                reason,
            } => {
                let m = pending(s, approval_id)?;
                Ok(vec![
                    MakeUpPunchRejected {
                        approval_id: approval_id.clone(),
                        person_id: m.person_id.clone(),
                        approver: approver.clone(),
                        reason: reason_required(reason)?,
                    }
                    .into(),
                ])
            }
            Self::Calibrate {
                calibration_id,
                person_id,
                date,
                target,
                status,
                reason,
            } => {
                valid_id("calibration", calibration_id.as_str())?;
                if s.calibration_ids.contains(calibration_id) {
                    return Err(Rejection::Conflict(format!(
                        "calibration {calibration_id} already exists"
                    )));
                }
                s.employed(person_id, *date)?;
                let reason = reason_required(reason)?;
                // The event's index, from 0 (a day has at most three sections).
                if let CalibrationTarget::Slot { section, .. } = target
                    && *section > 2
                {
                    return Err(Rejection::Invalid(format!(
                        "section {section}: a slot's section is counted from 0 (the first) to 2 (the third)"
                    )));
                }
                let replaces = s
                    .calibrations
                    .get(&(person_id.clone(), *date, target_key(target)))
                    .cloned();
                Ok(vec![
                    CalibrationApplied {
                        calibration_id: calibration_id.clone(),
                        person_id: person_id.clone(),
                        date: *date,
                        target: target.clone(),
                        status: *status,
                        reason,
                        replaces,
                    }
                    .into(),
                ])
            }
        }
    }
}

fn pending<'a>(s: &'a Requests, id: &ApprovalId) -> Result<&'a MakeUp, Rejection> {
    let m = s
        .make_ups
        .get(id)
        .ok_or_else(|| Rejection::Unknown(format!("there is no make-up request {id}")))?;
    match m.decided {
        None => Ok(m),
        Some(true) => Err(Rejection::Conflict(format!(
            "make-up {id} was approved already"
        ))),
        Some(false) => Err(Rejection::Conflict(format!(
            "make-up {id} was rejected; it cannot be decided again"
        ))),
    }
}
