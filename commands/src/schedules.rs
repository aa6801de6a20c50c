//! Shifts and schedules: named shifts (班次), a person's shifts by date under a shift
//! rule, and the schedule sheet in the shape WeCom's template has (one row a person, one
//! column a date, a shift's name or 休 in a cell), imported whole or not at all with
//! every bad cell named by row and column, and exported in the same shape.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use schemas::events::{
    RuleKind, ScheduleAssigned, ScheduleCycleAssigned, ScheduleCycleDefined, ScheduledDay,
    ShiftDefined, ShiftSwapApproved, WorkDay,
};
use schemas::ids::{ApprovalId, CycleId, PersonId, RuleId, ShiftId};
use schemas::{AggregateKind, Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::organisation::Organisation;
use crate::rules::{Rules, valid_day};
use crate::{Command, Decided, Rejection, State, valid_id};

/// What a sheet's cell may say for a rest day.
pub const REST: [&str; 3] = ["休", "rest", "-"];

#[derive(Debug, Clone, Default)]
pub struct Schedules {
    pub org: Organisation,
    pub rules: Rules,
    pub shifts: BTreeMap<ShiftId, ShiftDefined>,
    /// Each rule's people's shifts by date, as scheduled (`None`: rest).
    pub days: BTreeMap<(RuleId, PersonId), BTreeMap<NaiveDate, Option<ShiftId>>>,
    pub cycles: BTreeMap<CycleId, ScheduleCycleDefined>,
    pub approvals: BTreeSet<ApprovalId>,
}

impl State for Schedules {
    fn apply(&mut self, sequence: u64, envelope: &Envelope) {
        self.org.apply_event(&envelope.event);
        self.rules.apply(sequence, envelope);
        match &envelope.event {
            Event::ShiftDefined(e) => {
                self.shifts.insert(e.shift_id.clone(), e.clone());
            }
            Event::ScheduleCycleDefined(e) => {
                self.cycles.insert(e.cycle_id.clone(), e.clone());
            }
            Event::ShiftSwapApproved(e) => {
                self.approvals.insert(e.approval_id.clone());
            }
            Event::ScheduleAssigned(e) => {
                let days = self
                    .days
                    .entry((e.rule_id.clone(), e.person_id.clone()))
                    .or_default();
                for d in &e.days {
                    days.insert(d.date, d.shift.clone());
                }
            }
            _ => {}
        }
    }
}

impl Schedules {
    /// A shift by id, or by its name among the rule's shifts (a sheet names shifts as
    /// people read them).
    fn shift_named<'a>(&'a self, rule_shifts: &'a [ShiftId], text: &str) -> Option<&'a ShiftId> {
        rule_shifts
            .iter()
            .find(|id| id.as_str() == text)
            .or_else(|| {
                rule_shifts
                    .iter()
                    .find(|id| self.shifts.get(*id).is_some_and(|s| s.name.trim() == text))
            })
    }

    fn shift_rule(&self, rule: &RuleId) -> Result<Vec<ShiftId>, Rejection> {
        let r = self
            .rules
            .latest(rule)
            .ok_or_else(|| Rejection::Unknown(format!("rule {rule} does not exist")))?;
        match &r.kind {
            RuleKind::Shifts(s) => Ok(s.shifts.clone()),
            _ => Err(Rejection::Invalid(format!(
                "rule {rule} is not a shift rule: its days are fixed, there is nothing to schedule"
            ))),
        }
    }
}

/// A sheet read into cells (row 1 is the header); where it came from is the caller's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sheet {
    pub rows: Vec<Vec<String>>,
}

/// A cell at fault: 1-based row, column letter(s) as a spreadsheet shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    pub row: usize,
    pub column: usize,
    pub reason: String,
}

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}: {}",
            column_name(self.column),
            self.row,
            self.reason
        )
    }
}

/// `A`, `B`, ... `Z`, `AA`, ... for a 1-based column.
pub fn column_name(mut column: usize) -> String {
    let mut s = Vec::new();
    while column > 0 {
        column -= 1;
        s.push(b'A' + (column % 26) as u8);
        column /= 26;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII")
}

fn header_is_person(h: &str) -> bool {
    matches!(
        h.trim().to_lowercase().as_str(),
        "person" | "person_id" | "id" | "账号" | "工号" | "人员id"
    )
}

fn header_is_name(h: &str) -> bool {
    matches!(
        h.trim().to_lowercase().as_str(),
        "name" | "姓名" | "department" | "部门"
    )
}

fn parse_date(h: &str) -> Option<NaiveDate> {
    let h = h.trim();
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(h, f).ok())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleCommand {
    /// A named shift. Shifts have no versions (a change would rewrite every day judged
    /// by it), so an id is defined once; define a new shift to change times.
    DefineShift {
        shift_id: ShiftId,
        name: String,
        day: WorkDay,
    },
    /// A person's shifts (or rest) on dates, under a shift rule.
    Assign {
        rule_id: RuleId,
        person_id: PersonId,
        days: Vec<ScheduledDay>,
    },
    /// A whole sheet: the first column the person's id, optionally name and department
    /// columns, then one column a date; a cell a shift's name or id, 休 (rest), or empty
    /// (left as it is).
    Import { rule_id: RuleId, sheet: Sheet },
    /// A repeating pattern (两班倒, 三班倒...): a shift or rest (`null`) a day.
    DefineCycle {
        cycle_id: CycleId,
        rule_id: RuleId,
        name: String,
        days: Vec<Option<ShiftId>>,
    },
    /// A person follows a cycle from `from` (its first day) until `until` inclusive.
    AssignCycle {
        cycle_id: CycleId,
        person_id: PersonId,
        from: NaiveDate,
        #[serde(default)]
        until: Option<NaiveDate>,
    },
    /// An approved swap (调班): the person works `with_person`'s shift on `date`, or
    /// their own shift of `with_date`, and the other side takes theirs.
    ApproveSwap {
        approval_id: ApprovalId,
        rule_id: RuleId,
        person_id: PersonId,
        date: NaiveDate,
        #[serde(default)]
        with_person: Option<PersonId>,
        #[serde(default)]
        with_date: Option<NaiveDate>,
    },
    /// Each person's schedule of month `from` (`YYYY-MM`) again in month `to`, day of
    /// month for day of month (a day the target month lacks is left out).
    CopyMonth {
        rule_id: RuleId,
        from: String,
        to: String,
    },
}

fn month(s: &str) -> Result<NaiveDate, Rejection> {
    NaiveDate::parse_from_str(&format!("{}-01", s.trim()), "%Y-%m-%d")
        .map_err(|_| Rejection::Invalid(format!("{s:?} is not a month YYYY-MM")))
}

impl Command for ScheduleCommand {
    type State = Schedules;

    fn reads(&self) -> &'static [AggregateKind] {
        &[
            AggregateKind::Rule,
            AggregateKind::Shift,
            AggregateKind::Schedule,
            AggregateKind::Cycle,
            AggregateKind::Person,
            AggregateKind::Department,
        ]
    }

    fn guards(&self) -> Option<AggregateKind> {
        Some(match self {
            Self::DefineShift { .. } => AggregateKind::Shift,
            Self::DefineCycle { .. } => AggregateKind::Cycle,
            _ => AggregateKind::Schedule,
        })
    }

    fn decide(&self, s: &Schedules, _now: DateTime<Utc>) -> Result<Vec<Decided>, Rejection> {
        match self {
            Self::DefineShift {
                shift_id,
                name,
                day,
            } => {
                valid_id("shift", shift_id.as_str())?;
                if s.shifts.contains_key(shift_id) {
                    return Err(Rejection::Conflict(format!(
                        "shift {shift_id} already exists; shifts are not changed in place (past days keep theirs): define a new one"
                    )));
                }
                let name = name.trim();
                if name.is_empty() || REST.contains(&name) {
                    return Err(Rejection::Invalid(format!(
                        "a shift's name must not be empty or {REST:?}"
                    )));
                }
                if s.shifts.values().any(|x| x.name.trim() == name) {
                    return Err(Rejection::Conflict(format!(
                        "a shift is called {name:?} already: schedule sheets name shifts, so names are unique"
                    )));
                }
                valid_day(day, &format!("shift {shift_id}"))?;
                Ok(vec![
                    ShiftDefined {
                        shift_id: shift_id.clone(),
                        name: name.to_owned(),
                        day: day.clone(),
                    }
                    .into(),
                ])
            }
            Self::Assign {
                rule_id,
                person_id,
                days,
            } => {
                let shifts = s.shift_rule(rule_id)?;
                if days.is_empty() {
                    return Err(Rejection::Invalid("no days to schedule".into()));
                }
                let mut seen = BTreeSet::new();
                for d in days {
                    if !seen.insert(d.date) {
                        return Err(Rejection::Invalid(format!("{} is scheduled twice", d.date)));
                    }
                    if let Some(shift) = &d.shift
                        && !shifts.contains(shift)
                    {
                        return Err(Rejection::Invalid(format!(
                            "{}: shift {shift} is not one of rule {rule_id}'s shifts ({})",
                            d.date,
                            shifts
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    employed(s, person_id, d.date)?;
                }
                Ok(vec![
                    ScheduleAssigned {
                        rule_id: rule_id.clone(),
                        person_id: person_id.clone(),
                        days: days.clone(),
                    }
                    .into(),
                ])
            }
            Self::DefineCycle {
                cycle_id,
                rule_id,
                name,
                days,
            } => {
                let shifts = s.shift_rule(rule_id)?;
                if s.cycles.contains_key(cycle_id) {
                    return Err(Rejection::Conflict(format!(
                        "cycle {cycle_id} already exists; define a new one"
                    )));
                }
                if days.is_empty() || days.len() > 62 {
                    return Err(Rejection::Invalid("a cycle has 1 to 62 days".into()));
                }
                if let Some(x) = days.iter().flatten().find(|x| !shifts.contains(*x)) {
                    return Err(Rejection::Invalid(format!(
                        "shift {x} is not one of rule {rule_id}'s shifts"
                    )));
                }
                if name.trim().is_empty() {
                    return Err(Rejection::Invalid(
                        "a cycle's name must not be empty".into(),
                    ));
                }
                Ok(vec![
                    ScheduleCycleDefined {
                        cycle_id: cycle_id.clone(),
                        rule_id: rule_id.clone(),
                        name: name.trim().to_owned(),
                        days: days.clone(),
                    }
                    .into(),
                ])
            }
            Self::AssignCycle {
                cycle_id,
                person_id,
                from,
                until,
            } => {
                let cycle = s.cycles.get(cycle_id).ok_or_else(|| {
                    Rejection::Unknown(format!("cycle {cycle_id} does not exist"))
                })?;
                employed(s, person_id, *from)?;
                if until.is_some_and(|u| u < *from) {
                    return Err(Rejection::Invalid(format!(
                        "the cycle ends before it starts ({from})"
                    )));
                }
                Ok(vec![
                    ScheduleCycleAssigned {
                        cycle_id: cycle_id.clone(),
                        rule_id: cycle.rule_id.clone(),
                        person_id: person_id.clone(),
                        from: *from,
                        until: *until,
                    }
                    .into(),
                ])
            }
            Self::ApproveSwap {
                approval_id,
                rule_id,
                person_id,
                date,
                with_person,
                with_date,
            } => {
                s.shift_rule(rule_id)?;
                if s.approvals.contains(approval_id) {
                    return Err(Rejection::Conflict(format!(
                        "approval {approval_id} already exists"
                    )));
                }
                employed(s, person_id, *date)?;
                match (with_person, with_date) {
                    (Some(other), None) => {
                        if other == person_id {
                            return Err(Rejection::Invalid("a swap is with someone else".into()));
                        }
                        employed(s, other, *date)?;
                    }
                    (None, Some(d)) => {
                        if d == date {
                            return Err(Rejection::Invalid("a swap is with another day".into()));
                        }
                        employed(s, person_id, *d)?;
                    }
                    _ => {
                        return Err(Rejection::Invalid(
                            "a swap is with another person (with_person) or another day (with_date), one of the two".into(),
                        ));
                    }
                }
                Ok(vec![
                    ShiftSwapApproved {
                        approval_id: approval_id.clone(),
                        rule_id: rule_id.clone(),
                        person_id: person_id.clone(),
                        date: *date,
                        with_person: with_person.clone(),
                        with_date: *with_date,
                    }
                    .into(),
                ])
            }
            Self::CopyMonth { rule_id, from, to } => {
                s.shift_rule(rule_id)?;
                let (a, b) = (month(from)?, month(to)?);
                if a == b {
                    return Err(Rejection::Invalid(
                        "a month is copied to another month".into(),
                    ));
                }
                let last_of = |m: NaiveDate| {
                    m.checked_add_months(chrono::Months::new(1))
                        .and_then(|n| n.pred_opt())
                        .expect("a month has a last day")
                };
                let mut out = Vec::new();
                for ((r, person), days) in &s.days {
                    if r != rule_id {
                        continue;
                    }
                    let copied: Vec<ScheduledDay> = days
                        .range(a..=last_of(a))
                        .filter_map(|(d, shift)| {
                            let day = b.with_day(d.day())?;
                            employed(s, person, day).ok()?;
                            Some(ScheduledDay {
                                date: day,
                                shift: shift.clone(),
                            })
                        })
                        .collect();
                    if !copied.is_empty() {
                        out.push(
                            ScheduleAssigned {
                                rule_id: rule_id.clone(),
                                person_id: person.clone(),
                                days: copied,
                            }
                            .into(),
                        );
                    }
                }
                if out.is_empty() {
                    return Err(Rejection::Invalid(format!(
                        "nobody is scheduled under rule {rule_id} in {from}"
                    )));
                }
                Ok(out)
            }
            Self::Import { rule_id, sheet } => {
                let shifts = s.shift_rule(rule_id)?;
                let rows = read_sheet(s, &shifts, sheet)?;
                Ok(rows
                    .into_iter()
                    .map(|(person_id, days)| {
                        ScheduleAssigned {
                            rule_id: rule_id.clone(),
                            person_id,
                            days,
                        }
                        .into()
                    })
                    .collect())
            }
        }
    }
}

fn employed(s: &Schedules, person: &PersonId, date: NaiveDate) -> Result<(), Rejection> {
    s.org.employed(person, date)
}

/// A sheet refused: its bad cells, the first 50 of them named.
pub(crate) fn sheet_refused(errors: &[CellError]) -> Rejection {
    let shown: Vec<String> = errors.iter().take(50).map(|e| e.to_string()).collect();
    let more = errors.len().saturating_sub(shown.len());
    Rejection::Invalid(format!(
        "the sheet has {} bad cell(s); nothing was applied:\n{}{}",
        errors.len(),
        shown.join("\n"),
        if more > 0 {
            format!("\n... and {more} more")
        } else {
            String::new()
        }
    ))
}

/// Every row's days, or every cell at fault (all of them, not the first).
fn read_sheet(
    s: &Schedules,
    shifts: &[ShiftId],
    sheet: &Sheet,
) -> Result<Vec<(PersonId, Vec<ScheduledDay>)>, Rejection> {
    let mut errors: Vec<CellError> = Vec::new();
    let Some(header) = sheet.rows.first() else {
        return Err(Rejection::Invalid("the sheet is empty".into()));
    };
    let mut person_col = None;
    let mut dates: Vec<(usize, NaiveDate)> = Vec::new();
    let mut seen_dates = BTreeSet::new();
    for (c, h) in header.iter().enumerate() {
        let col = c + 1;
        if h.trim().is_empty() {
            continue;
        }
        if person_col.is_none() && header_is_person(h) {
            person_col = Some(c);
        } else if header_is_name(h) {
        } else if let Some(d) = parse_date(h) {
            if !seen_dates.insert(d) {
                errors.push(CellError {
                    row: 1,
                    column: col,
                    reason: format!("{d} is a column twice"),
                });
            }
            dates.push((c, d));
        } else {
            errors.push(CellError {
                row: 1,
                column: col,
                reason: format!(
                    "{h:?} is not a date (YYYY-MM-DD), a person column (账号, person) or a name column (姓名, name)"
                ),
            });
        }
    }
    let Some(person_col) = person_col else {
        return Err(Rejection::Invalid(
            "the header has no person column (账号, 工号 or person)".into(),
        ));
    };
    if dates.is_empty() {
        errors.push(CellError {
            row: 1,
            column: header.len().max(1),
            reason: "no date columns".into(),
        });
    }
    let mut out = Vec::new();
    let mut seen_people = BTreeSet::new();
    for (r, row) in sheet.rows.iter().enumerate().skip(1) {
        let row_n = r + 1;
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell = |c: usize| row.get(c).map(|x| x.trim()).unwrap_or("");
        let id = cell(person_col);
        let person = PersonId::from(id);
        let known = s.org.people.get(&person);
        if id.is_empty() {
            errors.push(CellError {
                row: row_n,
                column: person_col + 1,
                reason: "no person".into(),
            });
            continue;
        }
        if known.is_none() {
            errors.push(CellError {
                row: row_n,
                column: person_col + 1,
                reason: format!("person {id} does not exist"),
            });
            continue;
        }
        if !seen_people.insert(person.clone()) {
            errors.push(CellError {
                row: row_n,
                column: person_col + 1,
                reason: format!("person {id} has a row already"),
            });
            continue;
        }
        let mut days = Vec::new();
        for (c, date) in &dates {
            let text = cell(*c);
            if text.is_empty() {
                continue;
            }
            let shift = if REST.contains(&text) {
                None
            } else {
                match s.shift_named(shifts, text) {
                    Some(id) => Some(id.clone()),
                    None => {
                        errors.push(CellError {
                            row: row_n,
                            column: c + 1,
                            reason: format!("{text:?} is not one of the rule's shifts or 休"),
                        });
                        continue;
                    }
                }
            };
            if let Err(e) = employed(s, &person, *date) {
                errors.push(CellError {
                    row: row_n,
                    column: c + 1,
                    reason: e.to_string(),
                });
                continue;
            }
            days.push(ScheduledDay { date: *date, shift });
        }
        if !days.is_empty() {
            out.push((person, days));
        }
    }
    if !errors.is_empty() {
        return Err(sheet_refused(&errors));
    }
    if out.is_empty() {
        return Err(Rejection::Invalid("the sheet schedules nobody".into()));
    }
    Ok(out)
}

/// The sheet of a shift rule's schedule over `from..=to`: a row a person scheduled in
/// it, a column a date, the shift's name or 休 (empty: not scheduled).
pub fn export(s: &Schedules, rule: &RuleId, from: NaiveDate, to: NaiveDate) -> Sheet {
    let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let mut header = vec!["账号".to_owned(), "姓名".to_owned()];
    header.extend(dates.iter().map(|d| d.format("%Y-%m-%d").to_string()));
    let mut rows = vec![header];
    for ((r, person), days) in &s.days {
        if r != rule || !days.range(from..=to).any(|_| true) {
            continue;
        }
        let name = s
            .org
            .people
            .get(person)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let mut row = vec![person.to_string(), name];
        for d in &dates {
            row.push(match days.get(d) {
                None => String::new(),
                Some(None) => REST[0].to_owned(),
                Some(Some(shift)) => s
                    .shifts
                    .get(shift)
                    .map_or_else(|| shift.to_string(), |x| x.name.clone()),
            });
        }
        rows.push(row);
    }
    Sheet { rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_as_spreadsheets_name_them() {
        assert_eq!(column_name(1), "A");
        assert_eq!(column_name(26), "Z");
        assert_eq!(column_name(27), "AA");
        assert_eq!(column_name(53), "BA");
    }
}
