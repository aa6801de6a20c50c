//! A tenant's book: every fact the judge needs, folded from the stream, and the daily
//! reports it makes. The fold is idempotent for punches (a punch id counts once however
//! often it arrives) and keeps every correction beside what it corrects.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use schemas::events::{
    CalendarDayKind, HolidayCalendarPublished, Punch, RuleKind, RuleMembershipSet,
    RuleVersionDefined, ScheduleCycleAssigned, ScheduleCycleDefined, ShiftDefined,
    ShiftSwapApproved, SpecialDate, SpecialDateKind, Unscheduled, Weekday,
};
use schemas::ids::{
    BadgeNumber, CalendarId, CycleId, DepartmentId, Month, PersonId, RuleId, ShiftId, TenantId,
};
use schemas::{Actor, Envelope, Event};
use serde::Serialize;

use crate::calendar;
use crate::judge::{
    self, Approval, ApprovalKind, Calibration, Day, DayPlan, DayType, Judged, RuleRef, ShiftRef,
    Work,
};
use crate::raw::RawRecords;
use crate::time::{self, Span};

#[derive(Debug, Clone)]
struct Department {
    name: String,
    parent: Option<DepartmentId>,
}

#[derive(Debug, Clone)]
struct Person {
    name: String,
    /// Departments with the date each applies from (a transfer is dated by when it was
    /// recorded): a day is judged with the department, and so the rule, of its date.
    departments: Vec<(NaiveDate, DepartmentId)>,
    hired_on: NaiveDate,
    left_on: Option<NaiveDate>,
}

/// Everything known about one tenant, in the order the stream said it.
/// A rule membership, with its people as sets: a rule may name thousands of people
/// directly, and every judged day asks whether it names one.
#[derive(Debug)]
struct Membership {
    set: RuleMembershipSet,
    people: HashSet<PersonId>,
    excluded_people: HashSet<PersonId>,
}

impl Membership {
    fn of(set: &RuleMembershipSet) -> Self {
        Self {
            people: set.people.iter().cloned().collect(),
            excluded_people: set.excluded_people.iter().cloned().collect(),
            set: set.clone(),
        }
    }
}

impl std::ops::Deref for Membership {
    type Target = RuleMembershipSet;
    fn deref(&self) -> &RuleMembershipSet {
        &self.set
    }
}

#[derive(Debug, Default)]
pub struct Book {
    order: u64,
    /// Counts the facts folded (punches not): what was computed from the facts alone
    /// still holds while it stays the same.
    revision: u64,
    departments: HashMap<DepartmentId, Department>,
    people: BTreeMap<PersonId, Person>,
    /// Everyone a department was ever listed for (a superset: a department a person's
    /// history no longer names stays here; [`Book::people_ever_in`] checks).
    department_people: HashMap<DepartmentId, BTreeSet<PersonId>>,
    /// Who held a badge number from when: (from, order, person).
    badges: HashMap<BadgeNumber, Vec<(DateTime<Utc>, u64, PersonId)>>,
    /// The other way round: each person's badge numbers, (from, order, badge).
    badges_of: HashMap<PersonId, Vec<(DateTime<Utc>, u64, BadgeNumber)>>,
    rules: HashMap<RuleId, Vec<RuleVersionDefined>>,
    memberships: Vec<(u64, Membership)>,
    shifts: HashMap<ShiftId, ShiftDefined>,
    /// (person, date) → (order, rule, shift).
    schedule: HashMap<(PersonId, NaiveDate), (u64, RuleId, Option<ShiftId>)>,
    cycles: HashMap<CycleId, ScheduleCycleDefined>,
    cycle_assignments: HashMap<PersonId, Vec<(u64, ScheduleCycleAssigned)>>,
    swaps: Vec<ShiftSwapApproved>,
    calendars: HashMap<(CalendarId, i32), HolidayCalendarPublished>,
    special: HashMap<(RuleId, NaiveDate), SpecialDate>,
    approvals: HashMap<PersonId, Vec<Approval>>,
    calibrations: HashMap<PersonId, Vec<Calibration>>,
    raw: RawRecords,
    /// Where each fact came from, by stream sequence, for explanations.
    origins: HashMap<u64, Origin>,
    /// (rule, version) → the sequence that defined it.
    rule_origins: HashMap<(RuleId, u32), u64>,
    /// A person's own events (hire, updates, badge numbers, leaving), by sequence.
    person_origins: HashMap<PersonId, Vec<u64>>,
    /// Months closed for payroll, with the event that closed each.
    closed: BTreeMap<Month, ClosedPeriod>,
}

/// A month closed for payroll: who closed it, when, and with which event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ClosedPeriod {
    pub month: Month,
    pub sequence: u64,
    pub closed_at: DateTime<Utc>,
    pub closed_by: String,
    pub note: Option<String>,
}

/// The event a fact came from: what an explanation names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Origin {
    pub sequence: u64,
    pub event_id: String,
    pub kind: String,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
}

impl Origin {
    pub fn of(sequence: u64, envelope: &Envelope) -> Self {
        Self {
            sequence,
            event_id: envelope.event_id.to_string(),
            kind: envelope.event.kind().to_string(),
            actor: actor_label(&envelope.actor),
            recorded_at: envelope.recorded_at,
        }
    }
}

/// What a person's date is: outside employment, employed with no rule, or judged.
#[derive(Debug, Clone, PartialEq)]
pub enum DayOutcome {
    NotEmployed,
    NoRule {
        department_id: DepartmentId,
    },
    Judged {
        department_id: DepartmentId,
        judged: Box<Judged>,
    },
}

/// Who a stored punch may belong to: a badge number's holders, or a named person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holder {
    Badge(BadgeNumber),
    Person(PersonId),
}

impl Holder {
    /// The holder a punch is filed under.
    pub fn of(p: &Punch) -> Option<Holder> {
        match (&p.person_id, &p.badge_number) {
            (Some(id), _) => Some(Holder::Person(id.clone())),
            (None, Some(b)) => Some(Holder::Badge(b.clone())),
            (None, None) => None,
        }
    }
}

/// A person as rows show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PersonInfo {
    pub person_id: PersonId,
    pub name: String,
    pub department_id: DepartmentId,
    pub badge_number: Option<BadgeNumber>,
    pub hired_on: NaiveDate,
    pub left_on: Option<NaiveDate>,
}

/// Why a person cannot punch on a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPunching {
    #[error("person {0} does not exist")]
    UnknownPerson(PersonId),
    #[error("{0} is not employed on {1}")]
    NotEmployed(PersonId, NaiveDate),
    #[error("{0} is in no attendance rule on {1}")]
    NoRule(PersonId, NaiveDate),
}

/// Which days to report.
#[derive(Debug, Clone, Default)]
pub struct DailyQuery {
    /// Empty: everyone.
    pub people: Vec<PersonId>,
    /// This department and the ones under it.
    pub department: Option<DepartmentId>,
    /// Inclusive; default: the dates of the first and last punch.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The clock: days not over by then are in progress. `None`: every day is over.
    pub now: Option<DateTime<Utc>>,
}

/// A daily report row: who, and their judged day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyReport {
    pub person_id: PersonId,
    pub person: String,
    pub department_id: DepartmentId,
    pub department: String,
    #[serde(flatten)]
    pub day: Judged,
}

/// A raw punch with the person it resolves to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawRow<'a> {
    pub punch: &'a Punch,
    pub person_id: Option<&'a PersonId>,
    pub person: Option<&'a str>,
    pub received: u32,
}

fn actor_label(actor: &Actor) -> String {
    match actor {
        Actor::System { component } => format!("system:{component}"),
        Actor::Device { sn } => format!("device:{sn}"),
        Actor::User { user_id } => format!("user:{user_id}"),
        Actor::Person { person_id } => format!("person:{person_id}"),
    }
}

fn weekday(d: NaiveDate) -> Weekday {
    match d.weekday() {
        chrono::Weekday::Mon => Weekday::Mon,
        chrono::Weekday::Tue => Weekday::Tue,
        chrono::Weekday::Wed => Weekday::Wed,
        chrono::Weekday::Thu => Weekday::Thu,
        chrono::Weekday::Fri => Weekday::Fri,
        chrono::Weekday::Sat => Weekday::Sat,
        chrono::Weekday::Sun => Weekday::Sun,
    }
}

impl Book {
    pub fn new() -> Self {
        let mut book = Self::default();
        for cal in calendar::shipped() {
            book.calendars
                .insert((cal.calendar_id.clone(), cal.year), cal);
        }
        book
    }

    pub fn raw(&self) -> &RawRecords {
        &self.raw
    }

    /// Folds one event (`sequence` is its stream sequence, the checkpoint).
    pub fn apply(&mut self, sequence: u64, envelope: &Envelope) {
        self.raw.apply(sequence, envelope);
        self.apply_facts(sequence, envelope);
    }

    /// Folds one event into the facts the judge reads, leaving punches out (a projection
    /// worker keeps those in its store). Facts are ordered by stream sequence, so folding
    /// only the fact subjects of a stream gives the same book as folding all of it.
    pub fn apply_facts(&mut self, sequence: u64, envelope: &Envelope) {
        self.order = self.order.max(sequence);
        let order = sequence;
        let at = envelope.occurred_at;
        if envelope.event.aggregate().kind.holds_facts() {
            self.revision += 1;
            self.origins
                .insert(sequence, Origin::of(sequence, envelope));
        }
        match &envelope.event {
            Event::DepartmentDefined(e) => {
                self.departments.insert(
                    e.department_id.clone(),
                    Department {
                        name: e.name.clone(),
                        parent: e.parent.clone(),
                    },
                );
            }
            Event::DepartmentRenamed(e) => {
                if let Some(d) = self.departments.get_mut(&e.department_id) {
                    d.name = e.name.clone();
                }
            }
            Event::DepartmentMoved(e) => {
                if let Some(d) = self.departments.get_mut(&e.department_id) {
                    d.parent = e.parent.clone();
                }
            }
            Event::PersonHired(e) => {
                self.department_people
                    .entry(e.department_id.clone())
                    .or_default()
                    .insert(e.person_id.clone());
                self.people.insert(
                    e.person_id.clone(),
                    Person {
                        name: e.name.clone(),
                        departments: vec![(e.hired_on, e.department_id.clone())],
                        hired_on: e.hired_on,
                        left_on: None,
                    },
                );
                if let Some(b) = &e.badge_number {
                    // A hire names the badge the person had from their first day.
                    let from =
                        time::at(chrono_tz::UTC, e.hired_on, NaiveTime::MIN) - Duration::days(1);
                    self.badges.entry(b.clone()).or_default().push((
                        from.min(at),
                        order,
                        e.person_id.clone(),
                    ));
                    self.badges_of
                        .entry(e.person_id.clone())
                        .or_default()
                        .push((from.min(at), order, b.clone()));
                }
            }
            Event::PersonUpdated(e) => {
                if let Some(p) = self.people.get_mut(&e.person_id) {
                    if let Some(n) = &e.name {
                        p.name = n.clone();
                    }
                    if let Some(d) = &e.department_id {
                        self.department_people
                            .entry(d.clone())
                            .or_default()
                            .insert(e.person_id.clone());
                        let from = at.date_naive();
                        p.departments.retain(|(f, _)| *f < from);
                        p.departments.push((from, d.clone()));
                    }
                }
            }
            Event::PersonLeft(e) => {
                if let Some(p) = self.people.get_mut(&e.person_id) {
                    p.left_on = Some(e.left_on);
                }
            }
            Event::PersonRejoined(e) => {
                if let Some(p) = self.people.get_mut(&e.previous_person_id)
                    && p.left_on.is_none()
                {
                    p.left_on = e.rejoined_on.pred_opt();
                }
            }
            Event::BadgeNumberAssigned(e) => {
                self.badges
                    .entry(e.badge_number.clone())
                    .or_default()
                    .push((at, order, e.person_id.clone()));
                self.badges_of
                    .entry(e.person_id.clone())
                    .or_default()
                    .push((at, order, e.badge_number.clone()));
            }
            Event::RuleVersionDefined(e) => {
                self.rule_origins
                    .insert((e.rule_id.clone(), e.version), sequence);
                let versions = self.rules.entry(e.rule_id.clone()).or_default();
                versions.retain(|v| v.version != e.version);
                versions.push(e.clone());
                versions.sort_by_key(|v| v.version);
            }
            Event::RuleMembershipSet(e) => self.memberships.push((order, Membership::of(e))),
            Event::ShiftDefined(e) => {
                self.shifts.insert(e.shift_id.clone(), e.clone());
            }
            Event::ScheduleAssigned(e) => {
                for d in &e.days {
                    self.schedule.insert(
                        (e.person_id.clone(), d.date),
                        (order, e.rule_id.clone(), d.shift.clone()),
                    );
                }
            }
            Event::ScheduleCycleDefined(e) => {
                self.cycles.insert(e.cycle_id.clone(), e.clone());
            }
            Event::ScheduleCycleAssigned(e) => {
                self.cycle_assignments
                    .entry(e.person_id.clone())
                    .or_default()
                    .push((order, e.clone()));
            }
            Event::ShiftSwapApproved(e) => self.swaps.push(e.clone()),
            Event::HolidayCalendarPublished(e) => {
                self.calendars
                    .insert((e.calendar_id.clone(), e.year), e.clone());
            }
            Event::SpecialDatesSet(e) => {
                for d in &e.dates {
                    self.special.insert((e.rule_id.clone(), d.date), d.clone());
                }
            }
            Event::CalibrationApplied(e) => {
                self.calibrations
                    .entry(e.person_id.clone())
                    .or_default()
                    .push(Calibration {
                        calibration: e.clone(),
                        actor: actor_label(&envelope.actor),
                        at: envelope.recorded_at,
                        sequence,
                    });
            }
            Event::LeaveApproved(e) => self.approve(
                sequence,
                &e.person_id,
                &e.approval_id,
                ApprovalKind::Leave {
                    leave_type: e.leave_type.clone(),
                },
                &e.span,
            ),
            Event::BusinessTripApproved(e) => self.approve(
                sequence,
                &e.person_id,
                &e.approval_id,
                ApprovalKind::BusinessTrip,
                &e.span,
            ),
            Event::OutingApproved(e) => {
                self.approve(
                    sequence,
                    &e.person_id,
                    &e.approval_id,
                    ApprovalKind::Outing,
                    &e.span,
                )
            }
            Event::OvertimeApproved(e) => self.approve(
                sequence,
                &e.person_id,
                &e.approval_id,
                ApprovalKind::Overtime,
                &e.span,
            ),
            Event::PeriodClosed(e) => {
                // The first close of a month counts; so does a later close before it.
                if self.closed_period(e.month.first_day()).is_none() {
                    self.closed.insert(
                        e.month,
                        ClosedPeriod {
                            month: e.month,
                            sequence,
                            closed_at: envelope.recorded_at,
                            closed_by: actor_label(&envelope.actor),
                            note: e.note.clone(),
                        },
                    );
                }
            }
            // Punches are kept once, by id, in the raw records folded above.
            Event::PunchRecorded(_) | Event::PunchesRecorded(_) | Event::MakeUpPunchApproved(_) => {
            }
            // Listed, not wildcarded: a new event kind must be considered here.
            Event::DeviceRecordRejected(_)
            | Event::DeviceBound(_)
            | Event::DeviceUnbound(_)
            | Event::DeviceRenamed(_)
            | Event::DeviceScopeSet(_)
            | Event::RosterMemberPushed(_)
            | Event::RosterMemberRemoved(_)
            | Event::RosterMemberDisabled(_)
            | Event::DevicePrivilegeSet(_)
            | Event::BiometricEnrolled(_)
            | Event::BiometricRemoved(_)
            | Event::DeviceCommandQueued(_)
            | Event::DeviceCommandDelivered(_)
            | Event::DeviceCommandAcknowledged(_)
            | Event::DeviceCommandFailed(_)
            | Event::DeviceCommandExpired(_)
            | Event::UnknownDeviceSeen(_)
            | Event::DeviceStatusReported(_)
            | Event::DeviceClaimed(_)
            | Event::DeviceReleased(_)
            | Event::DeviceUserReported(_)
            | Event::DeviceOperationLogged(_)
            | Event::DeviceCommandSuperseded(_)
            | Event::DeviceRegistered(_)
            | Event::DeviceStampRecorded(_)
            | Event::DeviceUploadUnrecognised(_)
            // A refused phone punch is not a punch; it stays in the ledger for audit.
            | Event::MobilePunchRefused(_)
            | Event::MakeUpPunchRequested(_)
            | Event::MakeUpPunchRejected(_)
            | Event::ReuploadRequested(_) => {}
        }
    }

    /// The months closed for payroll, oldest first.
    pub fn closed_periods(&self) -> impl Iterator<Item = &ClosedPeriod> {
        self.closed.values()
    }

    /// The close that made a date final: its month's, or a later month's (closing a
    /// month closes everything before it; the command refuses gaps, a stream may hold
    /// one).
    pub fn closed_period(&self, date: NaiveDate) -> Option<&ClosedPeriod> {
        self.closed.range(Month::of(date)..).next().map(|(_, c)| c)
    }

    /// The period adjustments are reported in: the month after the latest closed one.
    pub fn open_period(&self) -> Option<Month> {
        self.closed.keys().next_back().map(|m| m.next())
    }

    fn approve(
        &mut self,
        sequence: u64,
        person: &PersonId,
        id: &schemas::ids::ApprovalId,
        kind: ApprovalKind,
        span: &schemas::events::ApprovedSpan,
    ) {
        let list = self.approvals.entry(person.clone()).or_default();
        if !list.iter().any(|a| &a.approval_id == id) {
            list.push(Approval {
                approval_id: id.clone(),
                kind,
                span: Span::new(span.start, span.end),
                sequence,
            });
        }
    }

    fn punches(&self) -> impl Iterator<Item = &Punch> {
        self.raw.punches.values().map(|r| &r.punch)
    }

    /// The person a punch is for: named, or who held its badge number at the time.
    pub fn person_of<'a>(&'a self, p: &'a Punch) -> Option<&'a PersonId> {
        if let Some(id) = &p.person_id {
            return Some(id);
        }
        let holders = self.badges.get(p.badge_number.as_ref()?)?;
        holders
            .iter()
            .filter(|(from, _, _)| *from <= p.instant)
            .max_by_key(|(from, order, _)| (*from, *order))
            .or_else(|| {
                holders
                    .iter()
                    .min_by_key(|(from, order, _)| (*from, *order))
            })
            .map(|(_, _, person)| person)
    }

    /// Raw records: every punch once, with its person, ordered by local time.
    pub fn raw_rows(&self) -> Vec<RawRow<'_>> {
        let mut rows: Vec<RawRow<'_>> = self
            .raw
            .punches
            .values()
            .map(|r| {
                let person_id = self.person_of(&r.punch);
                RawRow {
                    punch: &r.punch,
                    person_id,
                    person: person_id
                        .and_then(|id| self.people.get(id))
                        .map(|p| p.name.as_str()),
                    received: r.received,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            (
                a.punch.local_time,
                &a.punch.device_sn,
                &a.punch.badge_number,
                a.punch.punch_id,
            )
                .cmp(&(
                    b.punch.local_time,
                    &b.punch.device_sn,
                    &b.punch.badge_number,
                    b.punch.punch_id,
                ))
        });
        rows
    }

    fn in_department<'a>(&'a self, mut dept: &'a DepartmentId, under: &DepartmentId) -> bool {
        for _ in 0..64 {
            if dept == under {
                return true;
            }
            match self.departments.get(dept).and_then(|d| d.parent.as_ref()) {
                Some(parent) => dept = parent,
                None => return false,
            }
        }
        false
    }

    /// The rule a person follows on `date`: among each rule's membership in force that
    /// day, one naming the person beats one naming their department; then the latest.
    fn rule_of(
        &self,
        person: &PersonId,
        dept: &DepartmentId,
        date: NaiveDate,
    ) -> Option<&RuleVersionDefined> {
        // Each rule's latest membership in force; rules are few, so a list (no map to
        // allocate on every call).
        let mut in_force: Vec<(NaiveDate, u64, &Membership)> = Vec::new();
        for (order, m) in &self.memberships {
            if m.effective_from > date {
                continue;
            }
            let key = (m.effective_from, *order);
            match in_force.iter_mut().find(|(_, _, f)| f.rule_id == m.rule_id) {
                Some(slot) => {
                    if key >= (slot.0, slot.1) {
                        *slot = (m.effective_from, *order, m);
                    }
                }
                None => in_force.push((m.effective_from, *order, m)),
            }
        }
        let best = in_force
            .iter()
            .filter_map(|(from, order, m)| {
                if m.excluded_people.contains(person) {
                    return None;
                }
                let direct = m.people.contains(person);
                let by_dept = m.departments.iter().any(|d| self.in_department(dept, d));
                (direct || by_dept).then_some((direct, *from, *order, &m.rule_id))
            })
            .max()?;
        self.version_on(best.3, date)
    }

    /// The version of a rule in force on `date`: the highest whose `effective_from` is
    /// on or before it.
    fn version_on(&self, rule: &RuleId, date: NaiveDate) -> Option<&RuleVersionDefined> {
        self.rules
            .get(rule)?
            .iter()
            .filter(|v| v.effective_from <= date)
            .max_by_key(|v| v.version)
    }

    fn shift_ref(&self, id: &ShiftId) -> Option<(ShiftRef, &schemas::events::WorkDay)> {
        let s = self.shifts.get(id)?;
        Some((
            ShiftRef {
                shift_id: s.shift_id.clone(),
                name: s.name.clone(),
            },
            &s.day,
        ))
    }

    /// The shift a schedule gives a person on a date, before swaps: `Some(None)` is an
    /// explicit rest day, `None` unscheduled.
    fn base_shift(
        &self,
        person: &PersonId,
        rule: &RuleId,
        date: NaiveDate,
    ) -> Option<Option<ShiftId>> {
        if let Some((_, r, shift)) = self.schedule.get(&(person.clone(), date))
            && r == rule
        {
            return Some(shift.clone());
        }
        let (_, assigned) = self
            .cycle_assignments
            .get(person)?
            .iter()
            .filter(|(_, a)| {
                &a.rule_id == rule && a.from <= date && a.until.is_none_or(|u| date <= u)
            })
            .max_by_key(|(order, _)| *order)?;
        let cycle = self.cycles.get(&assigned.cycle_id)?;
        if cycle.days.is_empty() {
            return None;
        }
        let n = cycle.days.len() as i64;
        let i = (date - assigned.from).num_days().rem_euclid(n) as usize;
        Some(cycle.days[i].clone())
    }

    fn scheduled_shift(
        &self,
        person: &PersonId,
        rule: &RuleId,
        date: NaiveDate,
    ) -> Option<Option<ShiftId>> {
        for swap in self.swaps.iter().rev() {
            if &swap.rule_id != rule {
                continue;
            }
            let mine = &swap.person_id == person;
            if let Some(other) = &swap.with_person {
                if swap.date == date && mine {
                    return self.base_shift(other, rule, date);
                }
                if swap.date == date && other == person {
                    return self.base_shift(&swap.person_id, rule, date);
                }
            }
            if let Some(other_date) = swap.with_date
                && mine
            {
                if swap.date == date {
                    return self.base_shift(person, rule, other_date);
                }
                if other_date == date {
                    return self.base_shift(person, rule, swap.date);
                }
            }
        }
        self.base_shift(person, rule, date)
    }

    /// What `date` is for a person under `rule`.
    fn plan(
        &self,
        person: &PersonId,
        rule: &RuleVersionDefined,
        date: NaiveDate,
        zone: Tz,
        punches: &[&Punch],
    ) -> DayPlan {
        let starts_at = match &rule.kind {
            RuleKind::Free(f) => f.day_starts_at,
            RuleKind::Fixed(_) | RuleKind::Shifts(_) => NaiveTime::MIN,
        };
        let mut plan = DayPlan {
            date,
            day_type: DayType::Rest,
            holiday: None,
            starts_at,
            work: Work::Off,
        };
        let usual = |plan: &mut DayPlan| {
            plan.day_type = DayType::Workday;
            plan.work = match &rule.kind {
                RuleKind::Fixed(f) => Work::Sections {
                    shift: None,
                    day: f.day.clone(),
                },
                RuleKind::Free(f) => Work::Free {
                    standard_work_s: f.standard_work_s,
                },
                RuleKind::Shifts(_) => Work::Off,
            };
        };

        if let Some(special) = self.special.get(&(rule.rule_id.clone(), date)) {
            plan.holiday = special.note.clone();
            match &special.kind {
                SpecialDateKind::NoPunch => return plan,
                SpecialDateKind::MustPunch { shift } => {
                    usual(&mut plan);
                    let shift = shift.clone().or_else(|| match &rule.kind {
                        RuleKind::Shifts(_) => {
                            self.scheduled_shift(person, &rule.rule_id, date).flatten()
                        }
                        RuleKind::Fixed(_) | RuleKind::Free(_) => None,
                    });
                    if let Some((r, day)) = shift.as_ref().and_then(|s| self.shift_ref(s)) {
                        plan.work = Work::Sections {
                            shift: Some(r),
                            day: day.clone(),
                        };
                    }
                    if plan.work == Work::Off {
                        // A shift rule's must-punch date with no shift to judge it by.
                        plan.day_type = DayType::Rest;
                    }
                    return plan;
                }
            }
        }

        match &rule.kind {
            RuleKind::Fixed(_) | RuleKind::Free(_) => {
                let workdays = match &rule.kind {
                    RuleKind::Fixed(f) => &f.workdays,
                    RuleKind::Free(f) => &f.workdays,
                    RuleKind::Shifts(_) => unreachable!("matched above"),
                };
                let calendar_day = rule.options.holiday_calendar.as_ref().and_then(|c| {
                    self.calendars
                        .get(&(c.clone(), date.year()))?
                        .days
                        .iter()
                        .find(|d| d.date == date)
                });
                match calendar_day {
                    Some(d) if d.kind == CalendarDayKind::Holiday => {
                        plan.day_type = DayType::Holiday;
                        plan.holiday = Some(d.name.clone());
                    }
                    Some(d) => {
                        plan.holiday = Some(d.name.clone());
                        usual(&mut plan);
                    }
                    None if workdays.contains(&weekday(date)) => usual(&mut plan),
                    None => {}
                }
            }
            RuleKind::Shifts(s) => match self.scheduled_shift(person, &rule.rule_id, date) {
                Some(Some(shift)) => {
                    if let Some((r, day)) = self.shift_ref(&shift) {
                        plan.day_type = DayType::Workday;
                        plan.work = Work::Sections {
                            shift: Some(r),
                            day: day.clone(),
                        };
                    }
                }
                Some(None) => {}
                None => {
                    if s.unscheduled == Unscheduled::SelfSchedule
                        && let Some((r, day)) = self.nearest_shift(punches, &s.shifts, date, zone)
                    {
                        plan.day_type = DayType::Workday;
                        plan.work = Work::Sections {
                            shift: Some(r),
                            day: day.clone(),
                        };
                    }
                }
            },
        }
        plan
    }

    /// Self-scheduling: the shift whose start is nearest the person's first punch of the
    /// calendar day.
    fn nearest_shift(
        &self,
        punches: &[&Punch],
        shifts: &[ShiftId],
        date: NaiveDate,
        zone: Tz,
    ) -> Option<(ShiftRef, &schemas::events::WorkDay)> {
        let start = time::at(zone, date, NaiveTime::MIN);
        let next = date.succ_opt()?;
        let end = time::at(zone, next, NaiveTime::MIN);
        // The person punched this calendar day; the next morning may hold a night
        // shift's off punch.
        if !punches
            .iter()
            .any(|p| start <= p.instant && p.instant < end)
        {
            return None;
        }
        let horizon = end + Duration::hours(12);
        let punched: Vec<_> = punches
            .iter()
            .filter(|p| start <= p.instant && p.instant < horizon)
            .map(|p| p.instant)
            .collect();
        let nearest =
            |t: chrono::DateTime<Utc>| punched.iter().map(|p| (t - *p).num_seconds().abs()).min();
        // The shift whose start and end both sit nearest the punches: a night worker's
        // 06:00 off punch of the night before does not make the day a morning shift.
        shifts
            .iter()
            .filter_map(|id| self.shift_ref(id))
            .filter_map(|(r, day)| {
                let first = day.sections.first()?;
                let last = day.sections.last()?;
                let on = time::at(zone, if first.on_next_day { next } else { date }, first.on);
                let mut off = time::at(zone, if last.off_next_day { next } else { date }, last.off);
                if off <= on {
                    off = time::at(zone, next, last.off);
                }
                Some((nearest(on)? + nearest(off)?, r, day))
            })
            .min_by_key(|(d, r, _)| (*d, r.shift_id.clone()))
            .map(|(_, r, day)| (r, day))
    }

    fn off_plan(date: NaiveDate) -> DayPlan {
        DayPlan {
            date,
            day_type: DayType::Rest,
            holiday: None,
            starts_at: NaiveTime::MIN,
            work: Work::Off,
        }
    }

    fn plan_for(
        &self,
        person: &PersonId,
        p: &Person,
        date: NaiveDate,
        punches: &[&Punch],
    ) -> DayPlan {
        match self.rule_of(person, Self::department_on(p, date), date) {
            Some(rule) if Self::employed(p, date) => {
                self.plan(person, rule, date, rule.zone.tz(), punches)
            }
            _ => Self::off_plan(date),
        }
    }

    fn department_on(p: &Person, date: NaiveDate) -> &DepartmentId {
        p.departments
            .iter()
            .rev()
            .find(|(from, _)| *from <= date)
            .or_else(|| p.departments.first())
            .map(|(_, d)| d)
            .expect("a person is hired into a department")
    }

    /// The rule version a person follows on `date` (for checking a punch as it arrives),
    /// with their name; else why they cannot punch that day.
    pub fn rule_for(
        &self,
        person: &PersonId,
        date: NaiveDate,
    ) -> Result<(&str, &RuleVersionDefined), NotPunching> {
        let p = self
            .people
            .get(person)
            .ok_or_else(|| NotPunching::UnknownPerson(person.clone()))?;
        if !Self::employed(p, date) {
            return Err(NotPunching::NotEmployed(person.clone(), date));
        }
        self.rule_of(person, Self::department_on(p, date), date)
            .map(|rule| (p.name.as_str(), rule))
            .ok_or_else(|| NotPunching::NoRule(person.clone(), date))
    }

    fn employed(p: &Person, date: NaiveDate) -> bool {
        p.hired_on <= date && p.left_on.is_none_or(|l| date <= l)
    }

    /// Each person's punches in time order.
    fn punches_by_person(&self) -> HashMap<&PersonId, Vec<&Punch>> {
        let mut by: HashMap<&PersonId, Vec<&Punch>> = HashMap::new();
        for p in self.punches() {
            if let Some(person) = self.person_of(p) {
                by.entry(person).or_default().push(p);
            }
        }
        for list in by.values_mut() {
            list.sort_by_key(|p| (p.instant, p.punch_id));
        }
        by
    }

    /// The first and last local date any punch was made on.
    pub fn punch_dates(&self) -> Option<(NaiveDate, NaiveDate)> {
        let dates = self.punches().map(|p| p.local_time.date());
        let (mut lo, mut hi) = (None::<NaiveDate>, None::<NaiveDate>);
        for d in dates {
            lo = Some(lo.map_or(d, |x| x.min(d)));
            hi = Some(hi.map_or(d, |x| x.max(d)));
        }
        Some((lo?, hi?))
    }

    /// The instants whose punches can bear on a person's `date` (the day's own, its
    /// neighbours' for where it begins and ends, a night shift's morning): what a caller
    /// hands [`Book::judge_day`]. `None` when the person has no rule that day.
    pub fn punch_window(&self, person: &PersonId, date: NaiveDate) -> Option<Span> {
        let p = self.people.get(person)?;
        let rule = self
            .rule_of(person, Self::department_on(p, date), date)
            .filter(|_| Self::employed(p, date))?;
        Some(Self::window(rule.zone.tz(), date))
    }

    fn window(zone: Tz, date: NaiveDate) -> Span {
        Span::new(
            time::at(zone, date - Duration::days(2), NaiveTime::MIN),
            time::at(zone, date + Duration::days(3), NaiveTime::MIN),
        )
    }

    /// Judges one person's date from the punches given (the person's, in
    /// [`Book::punch_window`]; any order) and the previous day's `late_out_s` (its
    /// [`Judged::late_out_s`], `None` if it had no rule): a day needs nothing else from
    /// its neighbours, so a stored neighbour is as good as a judged one.
    pub fn judge_day(
        &self,
        person: &PersonId,
        date: NaiveDate,
        punches: &[&Punch],
        late_out_s: Option<i64>,
        now: Option<DateTime<Utc>>,
    ) -> DayOutcome {
        let Some(p) = self.people.get(person) else {
            return DayOutcome::NotEmployed;
        };
        if !Self::employed(p, date) {
            return DayOutcome::NotEmployed;
        }
        let department_id = Self::department_on(p, date).clone();
        let Some(rule) = self.rule_of(person, &department_id, date) else {
            return DayOutcome::NoRule { department_id };
        };
        let mut punches: Vec<&Punch> = punches.to_vec();
        punches.sort_by_key(|p| (p.instant, p.punch_id));
        let zone = rule.zone.tz();
        let window = Self::window(zone, date);
        let lo = punches.partition_point(|p| p.instant < window.start);
        let hi = punches.partition_point(|p| p.instant < window.end);
        let punches = &punches[lo..hi];
        let (Some(yesterday), Some(tomorrow)) = (date.pred_opt(), date.succ_opt()) else {
            return DayOutcome::NotEmployed;
        };
        let previous = self.plan_for(person, p, yesterday, punches);
        let this = self.plan(person, rule, date, zone, punches);
        let next = self.plan_for(person, p, tomorrow, punches);
        let near_approvals: Vec<Approval> = self
            .approvals
            .get(person)
            .into_iter()
            .flatten()
            .filter(|a| a.span.overlap(&window).is_some())
            .cloned()
            .collect();
        let todays: Vec<Calibration> = self
            .calibrations
            .get(person)
            .into_iter()
            .flatten()
            .filter(|c| c.calibration.date == date)
            .cloned()
            .collect();
        let rule_ref = RuleRef {
            rule_id: rule.rule_id.clone(),
            version: rule.version,
            name: rule.name.clone(),
        };
        let judged = judge::judge(&Day {
            zone,
            rule: &rule_ref,
            options: &rule.options,
            previous: &previous,
            plan: &this,
            next: &next,
            punches,
            approvals: &near_approvals,
            calibrations: &todays,
            late_out_s,
            now,
        });
        DayOutcome::Judged {
            department_id,
            judged: Box::new(judged),
        }
    }

    /// The facts behind a judged day, by stream sequence: its rule version, the
    /// memberships and schedules in force, approvals and calibrations (punches name
    /// their own events).
    pub fn origins_of(&self, person: &PersonId, judged: &Judged) -> Vec<&Origin> {
        let mut seqs: Vec<u64> = self.person_origins.get(person).cloned().unwrap_or_default();
        if let Some(s) = self
            .rule_origins
            .get(&(judged.rule.rule_id.clone(), judged.rule.version))
        {
            seqs.push(*s);
        }
        for (order, m) in &self.memberships {
            if m.rule_id == judged.rule.rule_id && m.effective_from <= judged.date {
                seqs.push(*order);
            }
        }
        if let Some((order, _, _)) = self.schedule.get(&(person.clone(), judged.date)) {
            seqs.push(*order);
        }
        if let Some(list) = self.cycle_assignments.get(person) {
            seqs.extend(
                list.iter()
                    .filter(|(_, a)| {
                        a.from <= judged.date && a.until.is_none_or(|u| judged.date <= u)
                    })
                    .map(|(o, _)| *o),
            );
        }
        for a in self.approvals.get(person).into_iter().flatten() {
            if a.span.overlap(&judged.owned).is_some() {
                seqs.push(a.sequence);
            }
        }
        for c in self.calibrations.get(person).into_iter().flatten() {
            if c.calibration.date == judged.date {
                seqs.push(c.sequence);
            }
        }
        seqs.sort_unstable();
        seqs.dedup();
        seqs.iter().filter_map(|s| self.origins.get(s)).collect()
    }

    /// The holders a person's punches may be filed under: every badge number they ever
    /// held, and their own id.
    pub fn holders(&self, person: &PersonId) -> Vec<Holder> {
        let mut out = vec![Holder::Person(person.clone())];
        out.extend(
            self.badges_of
                .get(person)
                .into_iter()
                .flatten()
                .map(|(_, _, b)| Holder::Badge(b.clone())),
        );
        out.sort();
        out.dedup();
        out
    }

    /// The people who ever held `badge`.
    pub fn badge_holders(&self, badge: &BadgeNumber) -> Vec<PersonId> {
        let mut out: Vec<PersonId> = self
            .badges
            .get(badge)
            .into_iter()
            .flatten()
            .map(|(_, _, p)| p.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The people who were ever in `department` or one under it.
    pub fn people_ever_in(&self, department: &DepartmentId) -> Vec<PersonId> {
        let under = self
            .departments
            .keys()
            .filter(|d| self.in_department(d, department))
            .chain(std::iter::once(department));
        let candidates: BTreeSet<&PersonId> = under
            .filter_map(|d| self.department_people.get(d))
            .flatten()
            .collect();
        candidates
            .into_iter()
            .filter(|id| {
                self.people.get(*id).is_some_and(|p| {
                    p.departments
                        .iter()
                        .any(|(_, d)| self.in_department(d, department))
                })
            })
            .cloned()
            .collect()
    }

    /// Everyone a rule could ever apply to: named by one of its memberships, or ever in
    /// a department one names, or scheduled under it (exclusions and dates aside: a
    /// superset of whom a change to the rule can touch).
    pub fn members_ever(&self, rule: &RuleId) -> BTreeSet<PersonId> {
        let mut out = BTreeSet::new();
        for (_, m) in self.memberships.iter().filter(|(_, m)| &m.rule_id == rule) {
            out.extend(m.people.iter().cloned());
            for d in &m.departments {
                out.extend(self.people_ever_in(d));
            }
        }
        out.extend(
            self.schedule
                .iter()
                .filter(|(_, (_, r, _))| r == rule)
                .map(|((p, _), _)| p.clone()),
        );
        out
    }

    /// Everyone whose plan can use `shift`, from all time: scheduled on it, on a cycle
    /// naming it, following a rule that self-schedules it or names it on a special date
    /// (whoever swapped a day with one of them: [`Book::swap_partners`]).
    pub fn people_using_shift(&self, shift: &ShiftId) -> BTreeSet<PersonId> {
        let mut out: BTreeSet<PersonId> = self
            .schedule
            .iter()
            .filter(|(_, (_, _, s))| s.as_ref() == Some(shift))
            .map(|((p, _), _)| p.clone())
            .collect();
        for (p, assigned) in &self.cycle_assignments {
            let uses = assigned.iter().any(|(_, a)| {
                self.cycles
                    .get(&a.cycle_id)
                    .is_some_and(|c| c.days.iter().any(|d| d.as_ref() == Some(shift)))
            });
            if uses {
                out.insert(p.clone());
            }
        }
        let mut rules: BTreeSet<&RuleId> = self
            .special
            .iter()
            .filter(|(_, d)| matches!(&d.kind, SpecialDateKind::MustPunch { shift: Some(s) } if s == shift))
            .map(|((r, _), _)| r)
            .collect();
        for (id, versions) in &self.rules {
            if versions
                .iter()
                .any(|v| matches!(&v.kind, RuleKind::Shifts(s) if s.shifts.contains(shift)))
            {
                rules.insert(id);
            }
        }
        for r in rules {
            out.extend(self.members_ever(r));
        }
        out
    }

    /// Everyone a cycle is assigned to, each with the first day it applies.
    pub fn people_on_cycle(&self, cycle: &CycleId) -> BTreeMap<PersonId, NaiveDate> {
        let mut out: BTreeMap<PersonId, NaiveDate> = BTreeMap::new();
        for (p, assigned) in &self.cycle_assignments {
            for (_, a) in assigned.iter().filter(|(_, a)| &a.cycle_id == cycle) {
                let from = out.entry(p.clone()).or_insert(a.from);
                *from = (*from).min(a.from);
            }
        }
        out
    }

    /// The days a swap ties to one of `people`'s (who take each other's shift on them):
    /// both parties on both of its dates.
    pub fn swap_partners(&self, is_one: impl Fn(&PersonId) -> bool) -> Vec<(PersonId, NaiveDate)> {
        let mut out = Vec::new();
        for s in &self.swaps {
            let parties: Vec<&PersonId> = std::iter::once(&s.person_id)
                .chain(&s.with_person)
                .collect();
            if !parties.iter().any(|p| is_one(p)) {
                continue;
            }
            for p in parties {
                out.push((p.clone(), s.date));
                out.extend(s.with_date.map(|d| (p.clone(), d)));
            }
        }
        out
    }

    /// The rules any version of which follows `calendar`.
    pub fn rules_following(&self, calendar: &CalendarId) -> Vec<RuleId> {
        self.rules
            .iter()
            .filter(|(_, vs)| {
                vs.iter()
                    .any(|v| v.options.holiday_calendar.as_ref() == Some(calendar))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every person's id, in order.
    pub fn person_ids(&self) -> impl Iterator<Item = &PersonId> {
        self.people.keys()
    }

    /// Every person, by id.
    pub fn people(&self) -> impl Iterator<Item = PersonInfo> + '_ {
        self.people.keys().filter_map(|id| self.person(id))
    }

    pub fn person(&self, id: &PersonId) -> Option<PersonInfo> {
        let p = self.people.get(id)?;
        let badge = self
            .badges_of
            .get(id)
            .into_iter()
            .flatten()
            .max_by_key(|(from, order, _)| (*from, *order))
            .map(|(_, _, b)| b.clone());
        Some(PersonInfo {
            person_id: id.clone(),
            name: p.name.clone(),
            department_id: p
                .departments
                .last()
                .map(|(_, d)| d.clone())
                .expect("a person is hired into a department"),
            badge_number: badge,
            hired_on: p.hired_on,
            left_on: p.left_on,
        })
    }

    /// A department's name and parent.
    pub fn department(&self, id: &DepartmentId) -> Option<(&str, Option<&DepartmentId>)> {
        self.departments
            .get(id)
            .map(|d| (d.name.as_str(), d.parent.as_ref()))
    }

    pub fn departments(&self) -> impl Iterator<Item = &DepartmentId> {
        self.departments.keys()
    }

    pub fn department_name(&self, id: &DepartmentId) -> String {
        self.departments
            .get(id)
            .map_or_else(|| id.to_string(), |d| d.name.clone())
    }

    /// Whether `dept` is `under` or below it.
    pub fn is_under(&self, dept: &DepartmentId, under: &DepartmentId) -> bool {
        self.in_department(dept, under)
    }

    /// A person's department on a date.
    pub fn department_of(&self, person: &PersonId, date: NaiveDate) -> Option<&DepartmentId> {
        self.people
            .get(person)
            .map(|p| Self::department_on(p, date))
    }

    /// The first date a person is employed under some rule's membership (where their
    /// days begin), if any.
    pub fn first_day(&self, person: &PersonId) -> Option<NaiveDate> {
        let p = self.people.get(person)?;
        let first_rule = self
            .memberships
            .iter()
            .map(|(_, m)| m.effective_from)
            .min()?;
        Some(first_rule.max(p.hired_on))
    }

    /// The zone a person's days are counted in on `date` (their rule's), else UTC.
    pub fn zone_of(&self, person: &PersonId, date: NaiveDate) -> Tz {
        self.people
            .get(person)
            .and_then(|p| self.rule_of(person, Self::department_on(p, date), date))
            .map_or(chrono_tz::UTC, |r| r.zone.tz())
    }

    /// The zone that tells a person's today around a UTC date: their rule's the day
    /// after it, else on it, else the day before (someone with no rule today and a
    /// Shanghai rule from tomorrow gets tomorrow when Shanghai's day begins); UTC for
    /// someone with no rule in those three days.
    pub fn zone_near(&self, person: &PersonId, date: NaiveDate) -> Tz {
        let Some(p) = self.people.get(person) else {
            return chrono_tz::UTC;
        };
        [date + Duration::days(1), date, date - Duration::days(1)]
            .into_iter()
            .find_map(|d| self.rule_of(person, Self::department_on(p, d), d))
            .map_or(chrono_tz::UTC, |r| r.zone.tz())
    }

    /// When a rule version, if defined, takes effect.
    pub fn version_from(&self, rule: &RuleId, version: u32) -> Option<NaiveDate> {
        self.rules
            .get(rule)?
            .iter()
            .find(|v| v.version == version)
            .map(|v| v.effective_from)
    }

    /// Changes whenever a fact is folded (a punch is not a fact).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The latest sequence folded.
    pub fn sequence(&self) -> u64 {
        self.order
    }

    /// Judges every (person, date) the query names that falls under a rule, from the
    /// punches in this book. Late-out, late-in is carried from the day before `from`.
    pub fn daily(&self, q: &DailyQuery) -> Vec<DailyReport> {
        let Some((from, to)) = (match (q.from, q.to, self.punch_dates()) {
            (Some(f), Some(t), _) => Some((f, t)),
            (f, t, Some((lo, hi))) => Some((f.unwrap_or(lo), t.unwrap_or(hi))),
            (Some(f), None, None) => Some((f, f)),
            (None, Some(t), None) => Some((t, t)),
            (None, None, None) => None,
        }) else {
            return Vec::new();
        };
        let by_person = self.punches_by_person();
        let none: Vec<&Punch> = Vec::new();
        let mut out = Vec::new();
        for (id, person) in &self.people {
            if !q.people.is_empty() && !q.people.contains(id) {
                continue;
            }
            if let Some(d) = &q.department
                && !person
                    .departments
                    .iter()
                    .any(|(f, dept)| *f <= to && self.in_department(dept, d))
            {
                continue;
            }
            let punches = by_person.get(id).unwrap_or(&none);
            // Start a day early: its last off punch decides late-out, late-in.
            let Some(mut date) = from.pred_opt() else {
                continue;
            };
            let mut late_out_s = None;
            while date <= to {
                let window = self
                    .punch_window(id, date)
                    .unwrap_or_else(|| Self::window(chrono_tz::UTC, date));
                let lo = punches.partition_point(|p| p.instant < window.start);
                let hi = punches.partition_point(|p| p.instant < window.end);
                match self.judge_day(id, date, &punches[lo..hi], late_out_s, q.now) {
                    DayOutcome::Judged {
                        department_id,
                        judged,
                    } => {
                        late_out_s = judged.late_out_s;
                        let in_filter = q
                            .department
                            .as_ref()
                            .is_none_or(|d| self.in_department(&department_id, d));
                        if date >= from && in_filter {
                            out.push(DailyReport {
                                person_id: id.clone(),
                                person: person.name.clone(),
                                department: self.department_name(&department_id),
                                department_id,
                                day: *judged,
                            });
                        }
                    }
                    DayOutcome::NotEmployed | DayOutcome::NoRule { .. } => late_out_s = None,
                }
                let Some(next) = date.succ_opt() else {
                    break;
                };
                date = next;
            }
        }
        out
    }
}

/// Why a JSON-lines file could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("line {line}: {source}")]
    Read { line: usize, source: std::io::Error },
    #[error("line {line}: {message}")]
    NotAnEnvelope { line: usize, message: String },
    #[error("the events are of tenants {first} and {other}; choose one")]
    SeveralTenants { first: TenantId, other: TenantId },
}

/// Folds JSON lines of envelopes into a book: blank lines and `#` comments are skipped,
/// other tenants' events too when `tenant` is given. A line that is not an envelope stops
/// the load: a report from part of a history would mislead. Returns the events folded.
pub fn load_jsonl(
    reader: impl std::io::BufRead,
    tenant: Option<&TenantId>,
) -> Result<(Book, u64), LoadError> {
    let mut book = Book::new();
    let mut seen: Option<TenantId> = None;
    let mut count = 0u64;
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| LoadError::Read {
            line: index + 1,
            source,
        })?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let envelope = Envelope::from_json(trimmed).map_err(|e| LoadError::NotAnEnvelope {
            line: index + 1,
            message: e.to_string(),
        })?;
        match (tenant, &seen) {
            (Some(t), _) if &envelope.tenant != t => continue,
            (None, Some(first)) if first != &envelope.tenant => {
                return Err(LoadError::SeveralTenants {
                    first: first.clone(),
                    other: envelope.tenant,
                });
            }
            _ => {}
        }
        if seen.is_none() {
            seen = Some(envelope.tenant.clone());
        }
        count += 1;
        book.apply(count, &envelope);
    }
    Ok((book, count))
}
