//! Rules: create, change (a new version, effective now or from tomorrow), copy, and who
//! follows them. One person follows one rule at a time: a membership that would put a
//! person or department under a second rule is refused, naming the rule that has them.
//! The check spans every rule of the tenant, so the append expects no rule to have
//! changed since the state was read (`guards` = [`AggregateKind::Rule`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use schemas::events::{
    CalendarDay, Flex, Geofence, HolidayCalendarPublished, RuleKind, RuleMembershipSet,
    RuleOptions, RuleVersionDefined, Section, SpecialDate, SpecialDateKind, SpecialDatesSet,
    WorkDay, WorkTime,
};
use schemas::ids::{CalendarId, DepartmentId, PersonId, RuleId, ShiftId, ZoneName};
use schemas::{AggregateKind, Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::{Command, Decided, Rejection, State, valid_id, valid_name};

/// From when a rule version or membership holds, in the rule's zone.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Effective {
    /// From today: today's days are judged again by it.
    #[default]
    Now,
    /// From tomorrow: today keeps what it had.
    Tomorrow,
    /// From a date in the rule's zone, past or future. Backdated, every day since is
    /// judged again: for setting up a company whose devices upload their history.
    From(NaiveDate),
}

impl Effective {
    pub fn date(self, zone: &ZoneName, now: DateTime<Utc>) -> NaiveDate {
        let today = now.with_timezone(&zone.tz()).date_naive();
        match self {
            Self::Now => today,
            Self::Tomorrow => today + Duration::days(1),
            Self::From(date) => date,
        }
    }
}

/// A new rule, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    pub rule_id: RuleId,
    pub name: String,
    pub zone: ZoneName,
    pub kind: RuleKind,
    #[serde(default)]
    pub options: RuleOptions,
    #[serde(default)]
    pub effective: Effective,
}

/// A new version of a rule: what is given replaces the current version's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRule {
    pub rule_id: RuleId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub zone: Option<ZoneName>,
    #[serde(default)]
    pub kind: Option<RuleKind>,
    #[serde(default)]
    pub options: Option<RuleOptions>,
    #[serde(default)]
    pub effective: Effective,
}

/// A new rule with another's current times and options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyRule {
    pub from: RuleId,
    pub rule_id: RuleId,
    pub name: String,
    #[serde(default)]
    pub effective: Effective,
}

/// Who follows a rule from the effective date: these people and departments (with
/// their sub-departments), less the exclusions. It replaces the rule's membership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMembers {
    pub rule_id: RuleId,
    #[serde(default)]
    pub people: Vec<PersonId>,
    #[serde(default)]
    pub departments: Vec<DepartmentId>,
    #[serde(default)]
    pub excluded_people: Vec<PersonId>,
    #[serde(default)]
    pub effective: Effective,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleCommand {
    Create(CreateRule),
    Change(ChangeRule),
    Copy(CopyRule),
    SetMembers(SetMembers),
    /// Must-punch and no-punch dates of a rule (特殊日期), replacing its earlier entries
    /// for the dates named.
    SetSpecialDates {
        rule_id: RuleId,
        dates: Vec<SpecialDate>,
    },
    /// A year of a national holiday calendar (holidays and swapped workdays, 调休) that
    /// rules can follow; a later publication of the same year replaces it.
    PublishCalendar {
        calendar_id: CalendarId,
        year: i32,
        days: Vec<CalendarDay>,
    },
}

/// A tenant's rules, who follows them, and what a rule can name.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Each rule's versions, in version order.
    pub rules: BTreeMap<RuleId, Vec<RuleVersionDefined>>,
    /// Each rule's memberships, in stream order.
    pub memberships: BTreeMap<RuleId, Vec<RuleMembershipSet>>,
    /// People, with the day they left (if they did).
    pub people: BTreeMap<PersonId, Option<NaiveDate>>,
    pub departments: BTreeSet<DepartmentId>,
    pub shifts: BTreeSet<ShiftId>,
    pub calendars: BTreeSet<CalendarId>,
}

impl State for Rules {
    fn apply(&mut self, _sequence: u64, envelope: &Envelope) {
        match &envelope.event {
            Event::RuleVersionDefined(e) => {
                let versions = self.rules.entry(e.rule_id.clone()).or_default();
                versions.push(e.clone());
                versions.sort_by_key(|v| v.version);
            }
            Event::RuleMembershipSet(e) => {
                self.memberships
                    .entry(e.rule_id.clone())
                    .or_default()
                    .push(e.clone());
            }
            Event::PersonHired(e) => {
                self.people.insert(e.person_id.clone(), None);
            }
            Event::PersonRejoined(e) => {
                self.people.insert(e.person_id.clone(), None);
            }
            Event::PersonLeft(e) => {
                self.people.insert(e.person_id.clone(), Some(e.left_on));
            }
            Event::DepartmentDefined(e) => {
                self.departments.insert(e.department_id.clone());
            }
            Event::ShiftDefined(e) => {
                self.shifts.insert(e.shift_id.clone());
            }
            Event::HolidayCalendarPublished(e) => {
                self.calendars.insert(e.calendar_id.clone());
            }
            _ => {}
        }
    }
}

impl Rules {
    /// A rule's latest version.
    pub fn latest(&self, rule: &RuleId) -> Option<&RuleVersionDefined> {
        self.rules.get(rule).and_then(|v| v.last())
    }

    /// A rule's membership that holds last: the one with the latest effective date
    /// (the later one in the stream on a tie), as the projections resolve it.
    pub fn membership(&self, rule: &RuleId) -> Option<&RuleMembershipSet> {
        self.memberships
            .get(rule)?
            .iter()
            .enumerate()
            .max_by_key(|(i, m)| (m.effective_from, *i))
            .map(|(_, m)| m)
    }
}

impl Command for RuleCommand {
    type State = Rules;

    fn reads(&self) -> &'static [AggregateKind] {
        &[
            AggregateKind::Rule,
            AggregateKind::Person,
            AggregateKind::Department,
            AggregateKind::Shift,
            AggregateKind::Calendar,
        ]
    }

    fn guards(&self) -> Option<AggregateKind> {
        Some(match self {
            Self::PublishCalendar { .. } => AggregateKind::Calendar,
            _ => AggregateKind::Rule,
        })
    }

    fn decide(&self, state: &Rules, now: DateTime<Utc>) -> Result<Vec<Decided>, Rejection> {
        match self {
            Self::Create(c) => decide_create(state, c, now).map(|e| vec![e.into()]),
            Self::Change(c) => decide_change(state, c, now).map(|e| vec![e.into()]),
            Self::Copy(c) => decide_copy(state, c, now).map(|e| vec![e.into()]),
            Self::SetMembers(c) => decide_members(state, c, now).map(|e| vec![e.into()]),
            Self::SetSpecialDates { rule_id, dates } => {
                if state.latest(rule_id).is_none() {
                    return Err(Rejection::Unknown(format!("rule {rule_id} does not exist")));
                }
                if dates.is_empty() {
                    return Err(invalid("no dates given"));
                }
                let mut seen = BTreeSet::new();
                for d in dates {
                    if !seen.insert(d.date) {
                        return Err(invalid(format!("{} is named twice", d.date)));
                    }
                    if let SpecialDateKind::MustPunch { shift: Some(x) } = &d.kind
                        && !state.shifts.contains(x)
                    {
                        return Err(Rejection::Unknown(format!("shift {x} does not exist")));
                    }
                }
                Ok(vec![
                    SpecialDatesSet {
                        rule_id: rule_id.clone(),
                        dates: dates.clone(),
                    }
                    .into(),
                ])
            }
            Self::PublishCalendar {
                calendar_id,
                year,
                days,
            } => {
                valid_id("calendar", calendar_id.as_str())?;
                if !(1970..=2100).contains(year) {
                    return Err(invalid(format!("{year} is not a year of this calendar")));
                }
                let mut seen = BTreeSet::new();
                for d in days {
                    if d.date.year() != *year {
                        return Err(invalid(format!("{} is not in {year}", d.date)));
                    }
                    if !seen.insert(d.date) {
                        return Err(invalid(format!("{} is named twice", d.date)));
                    }
                    if d.name.trim().is_empty() {
                        return Err(invalid(format!("{}: a calendar day has a name", d.date)));
                    }
                }
                Ok(vec![
                    HolidayCalendarPublished {
                        calendar_id: calendar_id.clone(),
                        year: *year,
                        days: days.clone(),
                    }
                    .into(),
                ])
            }
        }
    }
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::Invalid(reason.into())
}

pub fn decide_create(
    state: &Rules,
    c: &CreateRule,
    now: DateTime<Utc>,
) -> Result<RuleVersionDefined, Rejection> {
    first_version(state, c, now, None)
}

fn first_version(
    state: &Rules,
    c: &CreateRule,
    now: DateTime<Utc>,
    kept: Option<&CalendarId>,
) -> Result<RuleVersionDefined, Rejection> {
    valid_id("rule", c.rule_id.as_str())?;
    if state.rules.contains_key(&c.rule_id) {
        return Err(Rejection::Conflict(format!(
            "rule {} already exists; change it or choose another id",
            c.rule_id
        )));
    }
    let name = valid_name("a rule", &c.name)?;
    validate(state, &c.kind, &c.options, kept)?;
    let mut options = c.options.clone();
    // Rules created from now on count work time as the products users compare with do:
    // from the on punch to the off punch.
    options.work_time.get_or_insert(WorkTime::Punched);
    Ok(RuleVersionDefined {
        rule_id: c.rule_id.clone(),
        version: 1,
        name,
        zone: c.zone.clone(),
        effective_from: c.effective.date(&c.zone, now),
        kind: c.kind.clone(),
        options,
    })
}

pub fn decide_change(
    state: &Rules,
    c: &ChangeRule,
    now: DateTime<Utc>,
) -> Result<RuleVersionDefined, Rejection> {
    let Some(current) = state.latest(&c.rule_id) else {
        return Err(Rejection::Unknown(format!(
            "rule {} does not exist",
            c.rule_id
        )));
    };
    let name = match &c.name {
        Some(n) => valid_name("a rule", n)?,
        None => current.name.clone(),
    };
    let zone = c.zone.clone().unwrap_or_else(|| current.zone.clone());
    let kind = c.kind.clone().unwrap_or_else(|| current.kind.clone());
    let mut options = c.options.clone().unwrap_or_else(|| current.options.clone());
    // New options that do not say how work time counts keep what the rule said, in the
    // words it was recorded with (absent: inside the scheduled hours).
    if options.work_time.is_none() {
        options.work_time = current.options.work_time;
    }
    validate(
        state,
        &kind,
        &options,
        current.options.holiday_calendar.as_ref(),
    )?;
    let effective_from = c.effective.date(&zone, now);
    if name == current.name
        && zone == current.zone
        && kind == current.kind
        && options == current.options
        && effective_from >= current.effective_from
    {
        return Err(invalid(format!(
            "nothing to change: rule {} version {} already says this",
            c.rule_id, current.version
        )));
    }
    Ok(RuleVersionDefined {
        rule_id: c.rule_id.clone(),
        version: current.version + 1,
        name,
        zone,
        effective_from,
        kind,
        options,
    })
}

pub fn decide_copy(
    state: &Rules,
    c: &CopyRule,
    now: DateTime<Utc>,
) -> Result<RuleVersionDefined, Rejection> {
    let Some(source) = state.latest(&c.from) else {
        return Err(Rejection::Unknown(format!(
            "rule {} does not exist",
            c.from
        )));
    };
    first_version(
        state,
        &CreateRule {
            rule_id: c.rule_id.clone(),
            name: c.name.clone(),
            zone: source.zone.clone(),
            kind: source.kind.clone(),
            options: RuleOptions {
                // A copy counts work time as its source does, said explicitly.
                work_time: Some(source.options.work_time.unwrap_or(WorkTime::InsideSchedule)),
                ..source.options.clone()
            },
            effective: c.effective,
        },
        now,
        source.options.holiday_calendar.as_ref(),
    )
}

pub fn decide_members(
    state: &Rules,
    c: &SetMembers,
    now: DateTime<Utc>,
) -> Result<RuleMembershipSet, Rejection> {
    let Some(rule) = state.latest(&c.rule_id) else {
        return Err(Rejection::Unknown(format!(
            "rule {} does not exist",
            c.rule_id
        )));
    };
    let effective_from = c.effective.date(&rule.zone, now);
    let mut seen = BTreeSet::new();
    for p in c.people.iter().chain(&c.excluded_people) {
        match state.people.get(p) {
            None => return Err(Rejection::Unknown(format!("person {p} does not exist"))),
            Some(Some(left)) if *left < effective_from => {
                return Err(invalid(format!("person {p} left on {left}")));
            }
            Some(_) => {}
        }
    }
    for p in &c.people {
        if !seen.insert(p) {
            return Err(invalid(format!("person {p} is named twice")));
        }
        if c.excluded_people.contains(p) {
            return Err(invalid(format!("person {p} is both named and excluded")));
        }
    }
    let mut seen = BTreeSet::new();
    for d in &c.departments {
        if !state.departments.contains(d) {
            return Err(Rejection::Unknown(format!("department {d} does not exist")));
        }
        if !seen.insert(d) {
            return Err(invalid(format!("department {d} is named twice")));
        }
    }
    // One person follows one rule at a time.
    for other in state.rules.keys() {
        if other == &c.rule_id {
            continue;
        }
        let Some(m) = state.membership(other) else {
            continue;
        };
        let name = state.latest(other).map_or("", |r| r.name.as_str());
        if let Some(p) = c
            .people
            .iter()
            .find(|p| m.people.contains(p) && !m.excluded_people.contains(p))
        {
            return Err(Rejection::Conflict(format!(
                "person {p} already follows rule {other} ({name}); a person follows one rule at a time: take them out of it first"
            )));
        }
        if let Some(d) = c.departments.iter().find(|d| m.departments.contains(d)) {
            return Err(Rejection::Conflict(format!(
                "department {d} already follows rule {other} ({name}); a person follows one rule at a time: take it out of that rule first"
            )));
        }
    }
    if let Some(current) = state.membership(&c.rule_id)
        && current.people == c.people
        && current.departments == c.departments
        && current.excluded_people == c.excluded_people
        && current.effective_from <= effective_from
    {
        return Err(invalid(format!(
            "nothing to change: rule {} already has these members",
            c.rule_id
        )));
    }
    Ok(RuleMembershipSet {
        rule_id: c.rule_id.clone(),
        people: c.people.clone(),
        departments: c.departments.clone(),
        excluded_people: c.excluded_people.clone(),
        effective_from,
    })
}

const DAY_S: u32 = 24 * 3600;

/// Seconds from the start of the day the section starts on.
fn at(t: NaiveTime, next_day: bool) -> u32 {
    t.num_seconds_from_midnight() + if next_day { DAY_S } else { 0 }
}

/// What a rule's times and options must satisfy to be judged as they read. `kept`: the
/// calendar the rule already follows, which a change may keep even if it was never
/// published (it then has no holidays, as before).
pub fn validate(
    state: &Rules,
    kind: &RuleKind,
    options: &RuleOptions,
    kept: Option<&CalendarId>,
) -> Result<(), Rejection> {
    match kind {
        RuleKind::Fixed(f) => {
            valid_weekdays(&f.workdays)?;
            valid_day(&f.day, "the workday")?;
        }
        RuleKind::Shifts(s) => {
            if s.shifts.is_empty() {
                return Err(invalid("a shift rule names at least one shift"));
            }
            if let Some(unknown) = s.shifts.iter().find(|id| !state.shifts.contains(*id)) {
                return Err(Rejection::Unknown(format!(
                    "shift {unknown} does not exist"
                )));
            }
        }
        RuleKind::Free(f) => {
            valid_weekdays(&f.workdays)?;
            if f.standard_work_s > DAY_S {
                return Err(invalid(
                    "a free rule's standard work time is at most 24 hours",
                ));
            }
        }
    }
    if options.merge_gap_s.is_some_and(|g| g > 3600) {
        return Err(invalid("the merge gap is at most 1 hour"));
    }
    for g in &options.geofences {
        match g {
            Geofence::Circle {
                name,
                center,
                radius_m,
            } => {
                if !(1..=100_000).contains(radius_m) {
                    return Err(invalid(format!(
                        "geofence {name:?}: the radius is 1 m to 100 km"
                    )));
                }
                valid_point(name, center)?;
            }
            Geofence::Polygon { name, points } => {
                if points.len() < 3 {
                    return Err(invalid(format!(
                        "geofence {name:?}: a polygon has at least 3 points"
                    )));
                }
                for p in points {
                    valid_point(name, p)?;
                }
            }
        }
    }
    for w in &options.wifi {
        let hex = w.bssid.split(':').collect::<Vec<_>>();
        if hex.len() != 6
            || !hex
                .iter()
                .all(|h| h.len() == 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(format!(
                "Wi-Fi BSSID {:?} is not six hex pairs (aa:bb:cc:dd:ee:ff)",
                w.bssid
            )));
        }
    }
    if let Some(c) = &options.holiday_calendar
        && !state.calendars.contains(c)
        && kept != Some(c)
    {
        return Err(Rejection::Unknown(format!(
            "holiday calendar {c} has not been published"
        )));
    }
    if options.make_up.within_days.is_some_and(|d| d > 366) {
        return Err(invalid(
            "make-up requests are allowed at most 366 days after the day",
        ));
    }
    if options.overtime.min_s > DAY_S {
        return Err(invalid("the minimum overtime is at most 24 hours"));
    }
    Ok(())
}

fn valid_point(name: &str, p: &schemas::events::LatLon) -> Result<(), Rejection> {
    if !(-90.0..=90.0).contains(&p.latitude) || !(-180.0..=180.0).contains(&p.longitude) {
        return Err(invalid(format!(
            "geofence {name:?}: ({}, {}) is not a latitude and longitude",
            p.latitude, p.longitude
        )));
    }
    Ok(())
}

fn valid_weekdays(days: &[schemas::events::Weekday]) -> Result<(), Rejection> {
    if days.is_empty() {
        return Err(invalid("a rule has at least one workday"));
    }
    let unique: BTreeSet<_> = days.iter().map(|d| *d as u8).collect();
    if unique.len() != days.len() {
        return Err(invalid("a weekday is named twice"));
    }
    Ok(())
}

/// Sections in order, each off after its on and within a day of it; rests inside the
/// day; allowances that leave a day its shape.
pub fn valid_day(day: &WorkDay, what: &str) -> Result<(), Rejection> {
    if day.sections.is_empty() {
        return Err(invalid(format!("{what} has no section (on and off times)")));
    }
    if day.sections.len() > 3 {
        return Err(invalid(format!("{what} has at most 3 sections")));
    }
    let mut previous_off: Option<u32> = None;
    for (i, s) in day.sections.iter().enumerate() {
        let Section { on, off, .. } = s;
        let (on_s, off_s) = (at(*on, s.on_next_day), at(*off, s.off_next_day));
        let n = i + 1;
        if off_s <= on_s {
            return Err(invalid(format!(
                "{what}, section {n}: off {} is not after on {} (a night shift's off is on the next day: off_next_day)",
                off.format("%H:%M"),
                on.format("%H:%M")
            )));
        }
        if off_s - on_s > DAY_S {
            return Err(invalid(format!(
                "{what}, section {n}: longer than 24 hours"
            )));
        }
        if let Some(p) = previous_off
            && on_s < p
        {
            return Err(invalid(format!(
                "{what}, section {n} starts before section {i} ends"
            )));
        }
        for (side, w) in [("on", s.on_window), ("off", s.off_window)] {
            if w.before_s.is_some_and(|x| x > DAY_S) || w.after_s.is_some_and(|x| x > DAY_S) {
                return Err(invalid(format!(
                    "{what}, section {n}: the {side} punch window reaches beyond 24 hours"
                )));
            }
        }
        previous_off = Some(off_s);
    }
    let first_on = at(day.sections[0].on, day.sections[0].on_next_day);
    let last_off = previous_off.expect("at least one section");
    for r in &day.rests {
        let (a, b) = (at(r.start, r.next_day), at(r.end, r.next_day));
        if b <= a {
            return Err(invalid(format!(
                "{what}: rest {}-{} ends before it starts",
                r.start.format("%H:%M"),
                r.end.format("%H:%M")
            )));
        }
        if a < first_on || b > last_off {
            return Err(invalid(format!(
                "{what}: rest {}-{} is outside the working time",
                r.start.format("%H:%M"),
                r.end.format("%H:%M")
            )));
        }
    }
    let span = last_off - first_on;
    match day.flex {
        Flex::None => {}
        Flex::Allowance { late_s, early_s } => {
            if late_s > span || early_s > span {
                return Err(invalid(format!(
                    "{what}: a flex allowance is longer than the working time"
                )));
            }
        }
        Flex::ArriveLateLeaveLate {
            max_late_s,
            max_early_s,
        } => {
            if max_late_s > span || max_early_s > span {
                return Err(invalid(format!(
                    "{what}: arrive-late-leave-late moves the day by more than its working time"
                )));
            }
        }
    }
    for t in &day.late_out_late_in {
        if t.off_after_s > DAY_S || t.next_on_later_by_s > span {
            return Err(invalid(format!(
                "{what}: a late-out-late-in tier reaches beyond the next day's working time"
            )));
        }
    }
    Ok(())
}
