//! The organisation: departments (define, rename, move under another) and people (hire,
//! update, transfer from a date, leave, rejoin under a new account), with the rules
//! devices impose on badge numbers (numeric, at most 9 digits, unique among the tenant's
//! current people).
//!
//! Uniqueness spans aggregates: a badge number is checked against every person of the
//! tenant, so a person command guards the whole Person kind, and two hires racing for
//! one badge cannot both pass. A department's move is checked against the whole tree
//! (no cycles), so department commands guard the Department kind.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use schemas::events::{
    BadgeNumberAssigned, DepartmentDefined, DepartmentMoved, DepartmentRenamed, PersonHired,
    PersonLeft, PersonRejoined, PersonUpdated,
};
use schemas::ids::{BadgeNumber, DepartmentId, PersonId};
use schemas::{AggregateKind, Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::schedules::{CellError, Sheet, sheet_refused};
use crate::{Command, Decided, Rejection, State, valid_id, valid_name};

/// Badge numbers on devices: digits only, at most this many.
pub const MAX_BADGE_DIGITS: usize = 9;

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub name: String,
    pub department: DepartmentId,
    pub badge: Option<BadgeNumber>,
    pub hired_on: NaiveDate,
    pub left_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Department {
    pub name: String,
    pub parent: Option<DepartmentId>,
}

/// A tenant's people and departments as their events say: the one fold of who is on
/// the payroll that the command side, the device rosters and the projections' `Book`
/// agree on (a rejoin ends the old account the day before the new one starts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Organisation {
    pub people: BTreeMap<PersonId, Person>,
    pub departments: BTreeMap<DepartmentId, Department>,
}

impl State for Organisation {
    fn apply(&mut self, _sequence: u64, envelope: &Envelope) {
        self.apply_event(&envelope.event);
    }
}

impl Organisation {
    /// Folds one event; events that are not about people or departments change nothing.
    pub fn apply_event(&mut self, event: &Event) {
        match event {
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
                    d.name.clone_from(&e.name);
                }
            }
            Event::DepartmentMoved(e) => {
                if let Some(d) = self.departments.get_mut(&e.department_id) {
                    d.parent.clone_from(&e.parent);
                }
            }
            Event::PersonHired(e) => {
                self.people.insert(
                    e.person_id.clone(),
                    Person {
                        name: e.name.clone(),
                        department: e.department_id.clone(),
                        badge: e.badge_number.clone(),
                        hired_on: e.hired_on,
                        left_on: None,
                    },
                );
            }
            Event::PersonUpdated(e) => {
                if let Some(p) = self.people.get_mut(&e.person_id) {
                    if let Some(name) = &e.name {
                        p.name.clone_from(name);
                    }
                    if let Some(department) = &e.department_id {
                        p.department = department.clone();
                    }
                }
            }
            Event::BadgeNumberAssigned(e) => {
                if let Some(p) = self.people.get_mut(&e.person_id) {
                    p.badge = Some(e.badge_number.clone());
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
            _ => {}
        }
    }

    /// `person` exists and works on `date` (hired, not left).
    pub fn employed(&self, person: &PersonId, date: NaiveDate) -> Result<(), Rejection> {
        let p = self
            .people
            .get(person)
            .ok_or_else(|| Rejection::Unknown(format!("person {person} does not exist")))?;
        if date < p.hired_on || p.left_on.is_some_and(|l| date > l) {
            return Err(Rejection::Invalid(format!(
                "person {person} is not employed on {date}"
            )));
        }
        Ok(())
    }

    /// Whether `p` is on the payroll (not left).
    pub fn is_current(p: &Person) -> bool {
        p.left_on.is_none()
    }

    /// Who holds `badge` among current people.
    pub fn badge_holder(&self, badge: &str) -> Option<&PersonId> {
        self.people
            .iter()
            .find(|(_, p)| {
                Self::is_current(p) && p.badge.as_ref().is_some_and(|b| b.as_str() == badge)
            })
            .map(|(id, _)| id)
    }

    fn check_badge(&self, badge: &str, for_person: &PersonId) -> Result<BadgeNumber, Rejection> {
        if badge.is_empty()
            || badge.len() > MAX_BADGE_DIGITS
            || !badge.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Rejection::Invalid(format!(
                "badge number {badge:?} must be 1 to {MAX_BADGE_DIGITS} digits"
            )));
        }
        match self.badge_holder(badge) {
            Some(holder) if holder != for_person => Err(Rejection::Conflict(format!(
                "badge number {badge} already belongs to {holder}"
            ))),
            _ => Ok(BadgeNumber::from(badge)),
        }
    }

    fn current(&self, id: &PersonId) -> Result<&Person, Rejection> {
        let person = self
            .people
            .get(id)
            .ok_or_else(|| Rejection::Unknown(format!("person {id} does not exist")))?;
        if let Some(left) = person.left_on {
            return Err(Rejection::Conflict(format!("person {id} left on {left}")));
        }
        Ok(person)
    }

    fn department(&self, id: &DepartmentId) -> Result<&Department, Rejection> {
        self.departments
            .get(id)
            .ok_or_else(|| Rejection::Unknown(format!("department {id} does not exist")))
    }

    /// Whether `d` is `ancestor` or under it.
    fn is_under(&self, d: &DepartmentId, ancestor: &DepartmentId) -> bool {
        let mut at = Some(d);
        let mut steps = 0;
        while let Some(x) = at {
            if x == ancestor {
                return true;
            }
            steps += 1;
            if steps > self.departments.len() {
                return false;
            }
            at = self.departments.get(x).and_then(|x| x.parent.as_ref());
        }
        false
    }
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::Invalid(reason.into())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DepartmentCommand {
    Define {
        department_id: DepartmentId,
        name: String,
        #[serde(default)]
        parent: Option<DepartmentId>,
    },
    Rename {
        department_id: DepartmentId,
        name: String,
    },
    /// Under another department, or to the top (`parent` absent).
    Move {
        department_id: DepartmentId,
        #[serde(default)]
        parent: Option<DepartmentId>,
    },
    /// A sheet of departments: 部门ID (id), 部门名称 (name), 上级部门 (parent: an
    /// existing department or one defined above it in the sheet). All or nothing.
    Import { sheet: Sheet },
}

impl Command for DepartmentCommand {
    type State = Organisation;

    fn reads(&self) -> &'static [AggregateKind] {
        &[AggregateKind::Department]
    }

    fn guards(&self) -> Option<AggregateKind> {
        Some(AggregateKind::Department)
    }

    fn decide(&self, org: &Organisation, now: DateTime<Utc>) -> Result<Vec<Decided>, Rejection> {
        match self {
            Self::Define {
                department_id,
                name,
                parent,
            } => {
                valid_id("department", department_id.as_str())?;
                if org.departments.contains_key(department_id) {
                    return Err(Rejection::Conflict(format!(
                        "department {department_id} already exists"
                    )));
                }
                if let Some(p) = parent {
                    org.department(p)?;
                }
                Ok(vec![
                    DepartmentDefined {
                        department_id: department_id.clone(),
                        name: valid_name("a department", name)?,
                        parent: parent.clone(),
                    }
                    .into(),
                ])
            }
            Self::Rename {
                department_id,
                name,
            } => {
                let d = org.department(department_id)?;
                let name = valid_name("a department", name)?;
                if d.name == name {
                    return Err(invalid(format!(
                        "nothing to change: department {department_id} is already called {name:?}"
                    )));
                }
                Ok(vec![
                    DepartmentRenamed {
                        department_id: department_id.clone(),
                        name,
                    }
                    .into(),
                ])
            }
            Self::Move {
                department_id,
                parent,
            } => {
                let d = org.department(department_id)?;
                if &d.parent == parent {
                    return Err(invalid(format!(
                        "nothing to change: department {department_id} is already there"
                    )));
                }
                if let Some(p) = parent {
                    org.department(p)?;
                    if org.is_under(p, department_id) {
                        return Err(invalid(format!(
                            "department {department_id} cannot move under {p}: {p} is {department_id} or under it"
                        )));
                    }
                }
                Ok(vec![
                    DepartmentMoved {
                        department_id: department_id.clone(),
                        parent: parent.clone(),
                    }
                    .into(),
                ])
            }
            Self::Import { sheet } => import_departments(org, sheet, now),
        }
    }
}

/// The header's columns named by any of `names`, by position.
fn columns(
    header: &[String],
    wanted: &[(&'static str, &[&str])],
) -> Result<BTreeMap<&'static str, usize>, Vec<CellError>> {
    let mut found = BTreeMap::new();
    let mut errors = Vec::new();
    for (c, h) in header.iter().enumerate() {
        let h = h.trim().to_lowercase();
        if h.is_empty() {
            continue;
        }
        match wanted.iter().find(|(_, names)| names.contains(&h.as_str())) {
            Some((key, _)) => {
                if found.insert(*key, c).is_some() {
                    errors.push(CellError {
                        row: 1,
                        column: c + 1,
                        reason: format!("{h:?} is a column twice"),
                    });
                }
            }
            None => errors.push(CellError {
                row: 1,
                column: c + 1,
                reason: format!(
                    "{h:?} is not a column of this sheet ({})",
                    wanted
                        .iter()
                        .map(|(_, n)| n.join(" / "))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// Reads every row through the same decision a single command takes, on a state that
/// grows with the rows before it; a refusal becomes the row's error at `column`.
fn rows_through<C: Command<State = Organisation>>(
    org: &Organisation,
    sheet: &Sheet,
    read: impl Fn(&dyn Fn(&str) -> String) -> Result<C, Unreadable>,
    column_of: impl Fn(&Rejection) -> &'static str,
    cols: &BTreeMap<&'static str, usize>,
    now: DateTime<Utc>,
) -> Result<Vec<Decided>, Rejection> {
    let mut state = org.clone();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (r, row) in sheet.rows.iter().enumerate().skip(1) {
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let row_n = r + 1;
        let cell = |key: &str| {
            cols.get(key)
                .and_then(|c| row.get(*c))
                .map(|x| x.trim().to_owned())
                .unwrap_or_default()
        };
        let col = |key: &str| cols.get(key).map_or(1, |c| c + 1);
        let command = match read(&cell) {
            Ok(c) => c,
            Err(Unreadable { key, reason }) => {
                errors.push(CellError {
                    row: row_n,
                    column: col(key),
                    reason,
                });
                continue;
            }
        };
        match command.decide(&state, now) {
            Ok(decided) => {
                for d in &decided {
                    state.apply_event(&d.event);
                }
                out.extend(decided);
            }
            Err(e) => errors.push(CellError {
                row: row_n,
                column: col(column_of(&e)),
                reason: e.to_string(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(sheet_refused(&errors));
    }
    if out.is_empty() {
        return Err(Rejection::Invalid("the sheet has no rows".into()));
    }
    Ok(out)
}

/// A cell that cannot be read: which column, why.
#[derive(Debug)]
struct Unreadable {
    key: &'static str,
    reason: String,
}

fn import_departments(
    org: &Organisation,
    sheet: &Sheet,
    now: DateTime<Utc>,
) -> Result<Vec<Decided>, Rejection> {
    let header = sheet
        .rows
        .first()
        .ok_or_else(|| Rejection::Invalid("the sheet is empty".into()))?;
    let cols = columns(
        header,
        &[
            ("id", &["部门id", "department_id", "id"]),
            ("name", &["部门名称", "名称", "name"]),
            ("parent", &["上级部门", "parent"]),
        ],
    )
    .map_err(|e| sheet_refused(&e))?;
    for key in ["id", "name"] {
        if !cols.contains_key(key) {
            return Err(Rejection::Invalid(format!(
                "the header has no {key} column (部门ID, 部门名称)"
            )));
        }
    }
    rows_through(
        org,
        sheet,
        |cell| {
            let parent = cell("parent");
            Ok(DepartmentCommand::Define {
                department_id: cell("id").as_str().into(),
                name: cell("name"),
                parent: (!parent.is_empty()).then(|| parent.as_str().into()),
            })
        },
        |e| match e {
            Rejection::Unknown(_) => "parent",
            Rejection::Invalid(r) if r.contains("name") => "name",
            _ => "id",
        },
        &cols,
        now,
    )
}

fn import_people(
    org: &Organisation,
    sheet: &Sheet,
    now: DateTime<Utc>,
) -> Result<Vec<Decided>, Rejection> {
    let header = sheet
        .rows
        .first()
        .ok_or_else(|| Rejection::Invalid("the sheet is empty".into()))?;
    let cols = columns(
        header,
        &[
            ("id", &["账号", "person_id", "person", "id"]),
            ("name", &["姓名", "name"]),
            (
                "department",
                &["部门", "部门id", "department", "department_id"],
            ),
            ("badge", &["工号", "考勤号", "badge"]),
            ("hired_on", &["入职日期", "hired_on"]),
        ],
    )
    .map_err(|e| sheet_refused(&e))?;
    for key in ["id", "name", "department", "hired_on"] {
        if !cols.contains_key(key) {
            return Err(Rejection::Invalid(format!(
                "the header has no {key} column (账号, 姓名, 部门, 入职日期; 工号 optional)"
            )));
        }
    }
    rows_through(
        org,
        sheet,
        |cell| {
            let hired = cell("hired_on");
            let hired_on = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(&hired, f).ok())
                .ok_or(Unreadable {
                    key: "hired_on",
                    reason: format!("{hired:?} is not a date (YYYY-MM-DD)"),
                })?;
            let badge = cell("badge");
            Ok(PersonCommand::Hire {
                person_id: cell("id").as_str().into(),
                name: cell("name"),
                department_id: cell("department").as_str().into(),
                badge: (!badge.is_empty()).then_some(badge),
                hired_on,
            })
        },
        |e| match e {
            Rejection::Unknown(_) => "department",
            Rejection::Invalid(r) | Rejection::Conflict(r) if r.contains("badge") => "badge",
            Rejection::Invalid(r) if r.contains("name") => "name",
            _ => "id",
        },
        &cols,
        now,
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PersonCommand {
    Hire {
        person_id: PersonId,
        name: String,
        department_id: DepartmentId,
        #[serde(default)]
        badge: Option<String>,
        hired_on: NaiveDate,
    },
    /// Name and badge number; a change of department is a transfer.
    Update {
        person_id: PersonId,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        badge: Option<String>,
    },
    /// Into another department from a date on (earlier days keep the old one).
    Transfer {
        person_id: PersonId,
        department_id: DepartmentId,
        effective_from: NaiveDate,
    },
    /// The person leaves after `left_on`, their last working day; their history stays.
    Leave {
        person_id: PersonId,
        left_on: NaiveDate,
        #[serde(default)]
        reason: Option<String>,
    },
    /// A sheet of new people: 账号 (id), 姓名 (name), 部门 (department id), 工号
    /// (badge number, optional), 入职日期 (first day). All or nothing.
    Import { sheet: Sheet },
    /// A former employee comes back under a new account (seed 003: a rejoin is a new
    /// person to devices and reports; the old account keeps its history).
    Rejoin {
        person_id: PersonId,
        previous_person_id: PersonId,
        rejoined_on: NaiveDate,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        department_id: Option<DepartmentId>,
        #[serde(default)]
        badge: Option<String>,
    },
}

/// The instant a fact dated `date` takes effect from, as the projections read a
/// person's department change (the UTC date of its `occurred_at`).
fn from_date(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

impl Command for PersonCommand {
    type State = Organisation;

    fn reads(&self) -> &'static [AggregateKind] {
        &[AggregateKind::Person, AggregateKind::Department]
    }

    fn guards(&self) -> Option<AggregateKind> {
        Some(AggregateKind::Person)
    }

    fn decide(&self, org: &Organisation, now: DateTime<Utc>) -> Result<Vec<Decided>, Rejection> {
        match self {
            Self::Hire {
                person_id,
                name,
                department_id,
                badge,
                hired_on,
            } => {
                valid_id("person", person_id.as_str())?;
                if org.people.contains_key(person_id) {
                    return Err(Rejection::Conflict(format!(
                        "person {person_id} already exists"
                    )));
                }
                org.department(department_id)?;
                let badge_number = badge
                    .as_deref()
                    .map(|b| org.check_badge(b, person_id))
                    .transpose()?;
                Ok(vec![
                    PersonHired {
                        person_id: person_id.clone(),
                        name: valid_name("a person", name)?,
                        department_id: department_id.clone(),
                        hired_on: *hired_on,
                        badge_number,
                        title: None,
                    }
                    .into(),
                ])
            }
            Self::Update {
                person_id,
                name,
                badge,
            } => {
                let person = org.current(person_id)?;
                let mut events: Vec<Decided> = Vec::new();
                let name = name
                    .as_deref()
                    .map(|n| valid_name("a person", n))
                    .transpose()?
                    .filter(|n| *n != person.name);
                if name.is_some() {
                    events.push(
                        PersonUpdated {
                            person_id: person_id.clone(),
                            name,
                            department_id: None,
                            title: None,
                        }
                        .into(),
                    );
                }
                if let Some(badge) = badge {
                    let badge = org.check_badge(badge, person_id)?;
                    if person.badge.as_ref() != Some(&badge) {
                        events.push(
                            BadgeNumberAssigned {
                                person_id: person_id.clone(),
                                badge_number: badge,
                                previous: person.badge.clone(),
                            }
                            .into(),
                        );
                    }
                }
                if events.is_empty() {
                    return Err(invalid(format!(
                        "nothing to change: person {person_id} already has this name and badge number"
                    )));
                }
                Ok(events)
            }
            Self::Transfer {
                person_id,
                department_id,
                effective_from,
            } => {
                let person = org.current(person_id)?;
                org.department(department_id)?;
                if &person.department == department_id {
                    return Err(invalid(format!(
                        "nothing to change: person {person_id} is in {department_id} already"
                    )));
                }
                if *effective_from < person.hired_on {
                    return Err(invalid(format!(
                        "person {person_id} was hired on {}: a transfer cannot take effect before",
                        person.hired_on
                    )));
                }
                Ok(vec![Decided {
                    event: PersonUpdated {
                        person_id: person_id.clone(),
                        name: None,
                        department_id: Some(department_id.clone()),
                        title: None,
                    }
                    .into(),
                    occurred_at: Some(from_date(*effective_from)),
                    expect_last: None,
                }])
            }
            Self::Leave {
                person_id,
                left_on,
                reason,
            } => {
                let person = org.current(person_id)?;
                if *left_on < person.hired_on - Duration::days(1) {
                    return Err(invalid(format!(
                        "person {person_id} was hired on {}: they cannot leave before",
                        person.hired_on
                    )));
                }
                Ok(vec![
                    PersonLeft {
                        person_id: person_id.clone(),
                        left_on: *left_on,
                        reason: reason.clone(),
                    }
                    .into(),
                ])
            }
            Self::Import { sheet } => import_people(org, sheet, now),
            Self::Rejoin {
                person_id,
                previous_person_id,
                rejoined_on,
                name,
                department_id,
                badge,
            } => {
                valid_id("person", person_id.as_str())?;
                let Some(previous) = org.people.get(previous_person_id) else {
                    return Err(Rejection::Unknown(format!(
                        "person {previous_person_id} does not exist"
                    )));
                };
                if org.people.contains_key(person_id) {
                    return Err(Rejection::Conflict(format!(
                        "person {person_id} already exists: a rejoin is a new account"
                    )));
                }
                if previous.left_on.is_some_and(|l| l >= *rejoined_on) {
                    return Err(invalid(format!(
                        "person {previous_person_id} works until {}: they rejoin after that",
                        previous.left_on.expect("checked")
                    )));
                }
                let department = department_id.as_ref().unwrap_or(&previous.department);
                org.department(department)?;
                // The old account stops the day before; its badge number is free for the
                // new account from then on.
                let mut after = org.clone();
                after.apply_event(&Event::PersonRejoined(PersonRejoined {
                    person_id: person_id.clone(),
                    previous_person_id: previous_person_id.clone(),
                    rejoined_on: *rejoined_on,
                }));
                let badge = match badge {
                    Some(b) => Some(b.clone()),
                    None => previous.badge.as_ref().map(|b| b.as_str().to_owned()),
                };
                let badge_number = badge
                    .as_deref()
                    .map(|b| after.check_badge(b, person_id))
                    .transpose()?;
                let name = match name {
                    Some(n) => valid_name("a person", n)?,
                    None => previous.name.clone(),
                };
                Ok(vec![
                    PersonHired {
                        person_id: person_id.clone(),
                        name,
                        department_id: department.clone(),
                        hired_on: *rejoined_on,
                        badge_number,
                        title: None,
                    }
                    .into(),
                    PersonRejoined {
                        person_id: person_id.clone(),
                        previous_person_id: previous_person_id.clone(),
                        rejoined_on: *rejoined_on,
                    }
                    .into(),
                ])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-21T02:00:00Z".parse().unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    fn hire(id: &str, badge: Option<&str>) -> PersonCommand {
        PersonCommand::Hire {
            person_id: PersonId::from(id),
            name: "Li Wei".into(),
            department_id: DepartmentId::from("eng"),
            badge: badge.map(str::to_owned),
            hired_on: day(),
        }
    }

    fn given(events: &[Event]) -> Organisation {
        let mut org = Organisation::default();
        org.apply_event(&Event::DepartmentDefined(DepartmentDefined {
            department_id: "eng".into(),
            name: "Engineering".into(),
            parent: None,
        }));
        events.iter().for_each(|e| org.apply_event(e));
        org
    }

    fn decide(org: &Organisation, c: &PersonCommand) -> Result<Vec<Event>, Rejection> {
        c.decide(org, now())
            .map(|d| d.into_iter().map(|d| d.event).collect())
    }

    #[test]
    fn badge_numbers_are_numeric_and_at_most_nine_digits() {
        let org = given(&[]);
        assert!(decide(&org, &hire("p1", Some("123456789"))).is_ok());
        for bad in ["1234567890", "12a", "", " 1", "-1"] {
            let e = decide(&org, &hire("p1", Some(bad))).unwrap_err();
            assert!(
                matches!(e, Rejection::Invalid(ref r) if r.contains("1 to 9 digits")),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn given_a_current_holder_when_hiring_with_the_same_badge_then_refused() {
        let first = decide(&given(&[]), &hire("p1", Some("1001"))).unwrap();
        let org = given(&first);
        let e = decide(&org, &hire("p2", Some("1001"))).unwrap_err();
        assert_eq!(
            e,
            Rejection::Conflict("badge number 1001 already belongs to p1".into())
        );
        assert!(matches!(
            decide(&org, &hire("p1", None)),
            Err(Rejection::Conflict(_))
        ));
        let unknown = PersonCommand::Hire {
            person_id: "p3".into(),
            name: "x".into(),
            department_id: "nowhere".into(),
            badge: None,
            hired_on: day(),
        };
        assert!(matches!(decide(&org, &unknown), Err(Rejection::Unknown(_))));
    }

    #[test]
    fn given_the_holder_left_when_hiring_with_their_badge_then_allowed() {
        let mut events = decide(&given(&[]), &hire("p1", Some("1001"))).unwrap();
        let leave = PersonCommand::Leave {
            person_id: "p1".into(),
            left_on: day(),
            reason: None,
        };
        events.extend(decide(&given(&events), &leave).unwrap());
        let org = given(&events);
        assert!(decide(&org, &hire("p2", Some("1001"))).is_ok());
        assert!(
            matches!(decide(&org, &leave), Err(Rejection::Conflict(ref r)) if r.contains("left"))
        );
    }

    #[test]
    fn updates_record_only_what_changed() {
        let org = given(&decide(&given(&[]), &hire("p1", Some("1001"))).unwrap());
        let update = |name: Option<&str>, badge: Option<&str>| PersonCommand::Update {
            person_id: "p1".into(),
            name: name.map(str::to_owned),
            badge: badge.map(str::to_owned),
        };
        assert!(matches!(
            decide(&org, &update(Some("Li Wei"), None)),
            Err(Rejection::Invalid(ref r)) if r.contains("nothing to change")
        ));
        let events = decide(&org, &update(None, Some("2002"))).unwrap();
        assert!(
            matches!(&events[..], [Event::BadgeNumberAssigned(b)] if b.previous.as_ref().map(BadgeNumber::as_str) == Some("1001"))
        );
    }

    #[test]
    fn a_rejoin_is_a_new_account_that_may_keep_the_old_badge() {
        let mut events = decide(&given(&[]), &hire("p1", Some("1001"))).unwrap();
        let org = given(&events);
        let rejoin = PersonCommand::Rejoin {
            person_id: "p1-b".into(),
            previous_person_id: "p1".into(),
            rejoined_on: day() + Duration::days(30),
            name: None,
            department_id: None,
            badge: None,
        };
        let back = decide(&org, &rejoin).unwrap();
        assert!(
            matches!(&back[..], [Event::PersonHired(h), Event::PersonRejoined(_)]
                if h.badge_number.as_ref().map(BadgeNumber::as_str) == Some("1001") && h.name == "Li Wei")
        );
        events.extend(back);
        let org = given(&events);
        assert_eq!(
            org.people[&PersonId::from("p1")].left_on,
            Some(day() + Duration::days(29))
        );
        assert_eq!(org.badge_holder("1001"), Some(&PersonId::from("p1-b")));
        assert!(matches!(decide(&org, &rejoin), Err(Rejection::Conflict(_))));
    }

    #[test]
    fn a_department_cannot_move_under_itself() {
        let dept = |id: &str, parent: Option<&str>| {
            Event::DepartmentDefined(DepartmentDefined {
                department_id: id.into(),
                name: id.into(),
                parent: parent.map(DepartmentId::from),
            })
        };
        let org = given(&[dept("a", None), dept("b", Some("a")), dept("c", Some("b"))]);
        let mv = |id: &str, parent: Option<&str>| DepartmentCommand::Move {
            department_id: id.into(),
            parent: parent.map(DepartmentId::from),
        };
        for (id, to) in [("a", "c"), ("a", "a"), ("b", "c")] {
            assert!(
                matches!(mv(id, Some(to)).decide(&org, now()), Err(Rejection::Invalid(ref r)) if r.contains("cannot move under")),
                "{id} under {to}"
            );
        }
        assert!(mv("c", Some("a")).decide(&org, now()).is_ok());
        assert!(mv("c", None).decide(&org, now()).is_ok());
        assert!(matches!(
            mv("c", Some("b")).decide(&org, now()),
            Err(Rejection::Invalid(_))
        ));
        assert!(matches!(
            mv("zz", None).decide(&org, now()),
            Err(Rejection::Unknown(_))
        ));
    }
}
