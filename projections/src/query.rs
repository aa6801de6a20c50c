//! Queries over the views: what `daily`, `monthly`, `raw`, `devices`, `people` and
//! `explain` answer, as pure functions of a tenant's facts, the store and the clock.
//! The worker (`crate::worker`) routes requests here; the CLI and any NATS client send
//! the JSON these types describe (`schemas/json/queries/`).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use schemas::ids::{DepartmentId, DeviceSn, PersonId, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// A row of an answer, as JSON text: a stored report is spliced in as it is stored, not
/// parsed and printed again.
pub type Row = Box<RawValue>;

pub fn row(v: &Value) -> Row {
    raw(v)
}

fn raw(v: &Value) -> Row {
    RawValue::from_string(v.to_string()).expect("a JSON value is JSON")
}

pub(crate) fn typed<T: Serialize>(v: &T) -> Row {
    serde_json::value::to_raw_value(v).expect("a row is JSON")
}

/// A row of `raw`: a record a device or phone sent (deduplicated: `received` counts the
/// events that carried it), or a device line that was rejected, with its reason.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawAnswerRow {
    Punch(RawRow),
    Rejected(RejectedRow),
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RawRow {
    /// Local date and time as the device or phone recorded them.
    pub date: String,
    pub time: String,
    /// Who the badge number named on that date; `null` for a badge nobody held.
    pub person_id: Option<PersonId>,
    pub person: Option<String>,
    pub department: Option<String>,
    pub badge_number: Option<String>,
    pub device_sn: Option<DeviceSn>,
    pub device_name: Option<String>,
    pub verify_mode: Option<schemas::events::VerifyMode>,
    pub source: schemas::events::PunchSource,
    /// How many stored events carried this record (a re-upload counts once here).
    pub received: u32,
    pub punch_id: String,
    /// The stream sequence of the event that first brought it.
    pub sequence: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RejectedRow {
    /// The date it was received (a rejected line may have no readable date).
    pub date: String,
    pub device_sn: DeviceSn,
    /// The line as the device sent it.
    pub rejected: String,
    pub reason: schemas::events::RejectionReason,
    pub detail: Option<String>,
    pub received: u32,
    pub sequence: u64,
}

/// A row of `devices`: the stored device and what is derived from it at the query's
/// time.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeviceAnswerRow {
    #[serde(flatten)]
    pub device: DeviceRow,
    /// Heard from within two status periods (10 minutes) of the query's time.
    pub online: bool,
    pub roster_size: usize,
    /// People with at least one biometric enrolled on the device.
    pub enrolled_people: usize,
}

/// A row of `people`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PersonRow {
    pub person_id: PersonId,
    pub person: String,
    pub badge_number: Option<String>,
    pub department_id: DepartmentId,
    pub department: String,
    pub hired_on: String,
    pub left_on: Option<String>,
}

use crate::book::{Book, DayOutcome, PersonInfo};
use crate::fold::{DepartmentRow, punches_of};
use crate::store::{Read, StoreError, Through, decode, key};
use crate::time;
use crate::views::{
    Adjustment, ClosedDay, DeviceRow, MonthRow, RawEntry, RejectedEntry, StoredDay,
};

/// Rows an answer carries at most before it is paged (NATS' default message limit is
/// 1 MB; a row is a few KB at most).
pub const PAGE_BYTES: usize = 512 * 1024;
/// Dates a daily or raw query may span.
pub const MAX_DAYS: i64 = 400;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyRequest {
    /// Only these people; empty: everyone (or the department's).
    #[serde(default)]
    pub people: Vec<PersonId>,
    /// This department and the ones under it.
    #[serde(default)]
    pub department: Option<DepartmentId>,
    /// First date, inclusive (default: each person's today, in their rule's zone).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last date, inclusive (default: `from`).
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// Each day in full: its sections slot by slot, its punches with their roles and its
    /// calibration trail (default: the day data a daily report's columns show, a tenth
    /// of the size).
    #[serde(default)]
    pub detail: bool,
    /// Rows to skip: the `next_offset` of the previous page.
    #[serde(default)]
    pub offset: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonthlyRequest {
    /// `YYYY-MM` (default: the month of each person's today, in their rule's zone).
    #[serde(default)]
    pub month: Option<String>,
    #[serde(default)]
    pub people: Vec<PersonId>,
    #[serde(default)]
    pub department: Option<DepartmentId>,
    #[serde(default)]
    pub offset: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// Punches of this device (and its rejected lines).
    #[serde(default)]
    pub device: Option<DeviceSn>,
    /// Punches resolved to this person.
    #[serde(default)]
    pub person: Option<PersonId>,
    /// First local date, inclusive (default: today where the device stands, or in the
    /// person's rule's zone).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last local date, inclusive (default: `from`).
    #[serde(default)]
    pub to: Option<NaiveDate>,
    #[serde(default)]
    pub offset: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    #[serde(default)]
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    pub person: PersonId,
    pub date: NaiveDate,
}

/// An answer: rows, what they reflect, and where the next page starts.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Answer {
    pub tenant: TenantId,
    /// The stream sequence the views reflect.
    pub sequence: u64,
    /// The worker is still catching up with the stream: rows may be behind.
    pub rebuilding: bool,
    #[schemars(with = "Vec<Value>")]
    pub rows: Vec<Row>,
    /// More rows: ask again with this offset.
    pub next_offset: Option<usize>,
}

/// A `daily` row (the schema of what the service answers; rows are written as JSON text).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DailyRow {
    pub person_id: PersonId,
    pub person: String,
    pub badge_number: Option<schemas::ids::BadgeNumber>,
    pub department_id: DepartmentId,
    pub department: String,
    pub date: NaiveDate,
    /// WeCom's summary status (状态), or `no_rule`.
    pub summary: String,
    pub summary_label: String,
    /// The judged day (in full with `detail`, else its day data); `null` on a date with
    /// no rule.
    pub day: Option<DailyDay>,
    /// The date's month is closed for payroll: the row is the day as payroll has it,
    /// and what it is now, if that differs, is the pending adjustment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<ClosedMark>,
}

/// A closed date's mark on its daily row.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClosedMark {
    /// The month, `YYYY-MM`.
    pub period: String,
    pub closed_at: DateTime<Utc>,
    pub closed_by: String,
    /// The day as it is judged now, where that differs from the row: reported as an
    /// adjustment in the next period to close.
    pub pending: Option<PendingDay>,
}

/// A closed day as it is judged now.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingDay {
    /// `none`: no day any more (e.g. a leave dated back before the hire).
    pub summary: String,
    pub summary_label: String,
    pub day: Option<DailyDay>,
}

/// A month's closing, on its monthly rows.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClosedInfo {
    pub closed_at: DateTime<Utc>,
    pub closed_by: String,
    pub sequence: u64,
    pub note: Option<String>,
}

/// A closed day that changed after its month closed: carried into the month it is
/// listed under (the next month to close after the change), or pending in the open one.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdjustmentRow {
    pub date: NaiveDate,
    /// The closed month the day belongs to.
    pub period: String,
    /// `carried`: a close took it into this month's figures; `pending`: the next close
    /// will.
    pub state: String,
    /// As payroll had it (`null`: no day).
    pub before: Option<AdjustedDay>,
    /// As it is now (`null`: no day).
    pub after: Option<AdjustedDay>,
    /// `after` less `before`: the seconds payroll has to add (negative: take back).
    pub work_s_change: i64,
    pub overtime_s_change: i64,
}

/// A day's figures in an adjustment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdjustedDay {
    pub summary: crate::views::Summary,
    pub summary_label: String,
    pub work_s: i64,
    pub standard_s: i64,
    pub overtime_s: i64,
    /// Exceptions after approvals, make-up punches and calibrations.
    pub exceptions: crate::views::Tallies,
}

impl AdjustedDay {
    fn of(d: &StoredDay) -> Self {
        Self {
            summary: d.summary,
            summary_label: d.summary.label().to_owned(),
            work_s: d.totals.work_s,
            standard_s: d.totals.standard_s,
            overtime_s: d.totals.overtime_s,
            exceptions: d.totals.calibrated,
        }
    }
}

impl AdjustmentRow {
    fn of(
        date: NaiveDate,
        state: &str,
        before: &Option<StoredDay>,
        after: &Option<StoredDay>,
    ) -> Self {
        let s = |d: &Option<StoredDay>, f: fn(&StoredDay) -> i64| d.as_ref().map_or(0, f);
        Self {
            date,
            period: schemas::ids::Month::of(date).as_str(),
            state: state.to_owned(),
            before: before.as_ref().map(AdjustedDay::of),
            after: after.as_ref().map(AdjustedDay::of),
            work_s_change: s(after, |d| d.totals.work_s) - s(before, |d| d.totals.work_s),
            overtime_s_change: s(after, |d| d.totals.overtime_s)
                - s(before, |d| d.totals.overtime_s),
        }
    }
}

/// A `daily` row as written (`DailyRow` is its schema).
#[derive(Serialize)]
struct DailyOut<'a> {
    person_id: &'a PersonId,
    person: &'a str,
    badge_number: Option<&'a schemas::ids::BadgeNumber>,
    department_id: &'a DepartmentId,
    department: &'a str,
    date: NaiveDate,
    summary: SummaryOut,
    summary_label: &'a str,
    day: Option<DayOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed: Option<ClosedOut>,
}

#[derive(Serialize)]
struct ClosedOut {
    period: String,
    closed_at: DateTime<Utc>,
    closed_by: String,
    pending: Option<PendingOut>,
}

#[derive(Serialize)]
struct PendingOut {
    summary: &'static str,
    summary_label: &'static str,
    day: Option<DayOut>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SummaryOut {
    Day(crate::views::Summary),
    NoRule(&'static str),
}

#[derive(Serialize)]
#[serde(untagged)]
enum DayOut {
    Detail(crate::judge::Judged),
    Data(crate::judge::DayData),
}

/// A `daily` row's day.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum DailyDay {
    Detail(Box<crate::judge::Judged>),
    Data(Box<crate::judge::DayData>),
}

/// A row of `as_of` (and a day of `diff`): a daily row, its day in full, judged again
/// from the events recorded by then.
pub(crate) fn replayed_row(book: &Book, r: crate::book::DailyReport) -> Row {
    let badge = book.person(&r.person_id).and_then(|i| i.badge_number);
    let summary = crate::views::Summary::of(&r.day);
    typed(&DailyOut {
        person_id: &r.person_id,
        person: &r.person,
        badge_number: badge.as_ref(),
        department_id: &r.department_id,
        department: &r.department,
        date: r.day.date,
        summary: SummaryOut::Day(summary),
        summary_label: summary.label(),
        day: Some(DayOut::Detail(r.day)),
        closed: None,
    })
}

/// An event an answer names: where it stands in the stream, what it is, who caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NamedEvent {
    pub sequence: u64,
    pub event_id: String,
    pub kind: String,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
    /// A punch: its local time and what the judge made of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<String>,
    /// A punch: how many stored events carried it (a re-upload counts again here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<u32>,
}

impl From<&crate::book::Origin> for NamedEvent {
    fn from(o: &crate::book::Origin) -> Self {
        Self {
            sequence: o.sequence,
            event_id: o.event_id.clone(),
            kind: o.kind.clone(),
            actor: o.actor.clone(),
            recorded_at: o.recorded_at,
            fact: None,
            received: None,
        }
    }
}

/// The `explain` row: one person-day judged again slot by slot, and every event that
/// made it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExplainRow {
    pub person_id: PersonId,
    pub person: String,
    pub badge_number: Option<schemas::ids::BadgeNumber>,
    /// The department the day belongs to (`null` without a day).
    pub department_id: Option<DepartmentId>,
    pub department: Option<String>,
    pub date: NaiveDate,
    /// WeCom's summary status (`null` without a day).
    pub summary: Option<crate::views::Summary>,
    pub summary_label: Option<String>,
    /// Whether the stored report equals the day judged again here (`null`: none is
    /// stored for the date).
    pub stored_matches: Option<bool>,
    /// The day in full; `null` when there is none, and `verdict` says why.
    pub day: Option<Box<crate::judge::Judged>>,
    pub verdict: Option<String>,
    /// The punches and facts that made the day, in stream order.
    pub events: Vec<NamedEvent>,
}

/// What a replay cost (`as_of`, `diff`): events read and time taken, for this page.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReplayCost {
    pub events_read: u64,
    pub millis: u64,
}

/// The `as_of` answer: daily rows as they stood at `at`, paged like every answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AsOfAnswer {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    #[schemars(with = "Vec<DailyRow>")]
    pub rows: Vec<Row>,
    pub next_offset: Option<usize>,
    pub cost: ReplayCost,
}

/// A `diff` row: a person-day that changed, or an event recorded in the interval.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "row", rename_all = "snake_case")]
pub enum DiffRow {
    Changed(DiffChange),
    Event(NamedEvent),
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DiffChange {
    pub person_id: PersonId,
    pub date: NaiveDate,
    /// The day as it stood at `since` (`null`: there was none).
    #[schemars(with = "Option<DailyRow>")]
    pub before: Option<Row>,
    #[schemars(with = "Option<DailyRow>")]
    pub after: Option<Row>,
}

/// The `diff` answer: the changed person-days, then every event recorded in
/// (`since`, `until`] that the asked people's days read (the tenant's facts and their
/// punches), in stream order; paged like every answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DiffAnswer {
    pub tenant: TenantId,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    #[schemars(with = "Vec<DiffRow>")]
    pub rows: Vec<Row>,
    pub next_offset: Option<usize>,
    pub cost: ReplayCost,
}

/// A `monthly` row.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MonthlyRow {
    pub person_id: PersonId,
    pub person: String,
    pub badge_number: Option<schemas::ids::BadgeNumber>,
    pub department_id: DepartmentId,
    pub department: String,
    #[serde(flatten)]
    pub month: MonthRow,
    /// Set when the month is closed for payroll: its figures are then the month as
    /// closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<ClosedInfo>,
    /// A closed month: the earlier closed days its close carried. The open month (the
    /// one after the latest closed): the closed days that differ now, pending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<AdjustmentRow>,
}

/// The JSON Schemas of the queries and their answers: (file name, schema).
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("daily.request", schemars::schema_for!(DailyRequest)),
        ("daily.row", schemars::schema_for!(DailyRow)),
        ("monthly.request", schemars::schema_for!(MonthlyRequest)),
        ("monthly.row", schemars::schema_for!(MonthlyRow)),
        ("raw.request", schemars::schema_for!(RawRequest)),
        ("raw.row", schemars::schema_for!(RawAnswerRow)),
        ("devices.row", schemars::schema_for!(DeviceAnswerRow)),
        ("people.row", schemars::schema_for!(PersonRow)),
        ("departments.row", schemars::schema_for!(DepartmentRow)),
        ("list.request", schemars::schema_for!(ListRequest)),
        ("explain.request", schemars::schema_for!(ExplainRequest)),
        ("explain.row", schemars::schema_for!(ExplainRow)),
        (
            "as_of.request",
            schemars::schema_for!(crate::worker::AsOfRequest),
        ),
        ("as_of.answer", schemars::schema_for!(AsOfAnswer)),
        (
            "diff.request",
            schemars::schema_for!(crate::worker::DiffRequest),
        ),
        ("diff.answer", schemars::schema_for!(DiffAnswer)),
        ("answer", schemars::schema_for!(Answer)),
    ]
}

/// A refused query: NATS service error code and reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unknown tenant {0}")]
    UnknownTenant(TenantId),
    #[error("unknown person {0}")]
    UnknownPerson(PersonId),
    #[error("unknown department {0}")]
    UnknownDepartment(DepartmentId),
    #[error("unknown device {0}")]
    UnknownDevice(DeviceSn),
    #[error("rebuilding: {0}")]
    Rebuilding(String),
    #[error("store: {0}")]
    Store(String),
    /// A stored view does not decode: the worker rebuilds the partition.
    #[error("a stored view is corrupt ({0}); the partition is being rebuilt, retry in 2 s")]
    Corrupt(String),
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Decode(d) => QueryError::Corrupt(d),
            e => QueryError::Store(e.to_string()),
        }
    }
}

impl QueryError {
    /// The service error code (HTTP-like, as the NATS service API suggests).
    pub fn code(&self) -> usize {
        match self {
            QueryError::BadRequest(_) => 400,
            QueryError::UnknownTenant(_)
            | QueryError::UnknownPerson(_)
            | QueryError::UnknownDepartment(_)
            | QueryError::UnknownDevice(_) => 404,
            QueryError::Rebuilding(_) | QueryError::Corrupt(_) => 503,
            QueryError::Store(_) => 500,
        }
    }
}

/// What one query may read: the tenant's facts and the partition's store.
#[derive(Debug)]
pub struct Scope<'a, S: Read> {
    pub tenant: &'a TenantId,
    pub book: &'a Book,
    pub store: &'a S,
    pub now: DateTime<Utc>,
}

pub(crate) fn page(rows: Vec<Row>, offset: usize) -> (Vec<Row>, Option<usize>) {
    let mut out = Vec::new();
    let mut bytes = 0;
    for (i, row) in rows.into_iter().enumerate().skip(offset) {
        let size = row.get().len();
        if !out.is_empty() && bytes + size > PAGE_BYTES {
            return (out, Some(i));
        }
        bytes += size;
        out.push(row);
    }
    (out, None)
}

fn range(from: NaiveDate, to: NaiveDate) -> Result<(), QueryError> {
    if to < from {
        return Err(QueryError::BadRequest(format!(
            "to {to} is before from {from}"
        )));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(QueryError::BadRequest(format!(
            "at most {MAX_DAYS} days a query; ask by month or page by dates"
        )));
    }
    Ok(())
}

impl<S: Read> Scope<'_, S> {
    fn person_json(
        &self,
        info: &PersonInfo,
        department: &DepartmentId,
    ) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("person_id".into(), Value::from(info.person_id.as_str()));
        m.insert("person".into(), Value::from(info.name.as_str()));
        m.insert(
            "badge_number".into(),
            info.badge_number
                .as_ref()
                .map_or(Value::Null, |b| Value::from(b.as_str())),
        );
        m.insert("department_id".into(), Value::from(department.as_str()));
        m.insert(
            "department".into(),
            Value::from(self.book.department_name(department)),
        );
        m
    }

    /// The people a query names: given ones (each must exist), a department's (it must
    /// exist), or everyone.
    fn people(
        &self,
        people: &[PersonId],
        department: Option<&DepartmentId>,
    ) -> Result<Vec<PersonInfo>, QueryError> {
        if let Some(d) = department
            && self.book.department(d).is_none()
        {
            return Err(QueryError::UnknownDepartment(d.clone()));
        }
        if !people.is_empty() {
            return people
                .iter()
                .map(|p| {
                    self.book
                        .person(p)
                        .ok_or_else(|| QueryError::UnknownPerson(p.clone()))
                })
                .collect();
        }
        if let Some(d) = department {
            // Rows are filtered by the department of their date; these are everyone
            // who could have one.
            return Ok(self
                .book
                .people_ever_in(d)
                .iter()
                .filter_map(|p| self.book.person(p))
                .collect());
        }
        Ok(self.book.people().collect())
    }

    /// A person's stored days from `from` to `to`: a read of each date's key.
    fn stored_days(
        &self,
        view: &Through<'_, S>,
        person: &PersonId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<std::collections::BTreeMap<NaiveDate, StoredDay>, QueryError> {
        let mut out = std::collections::BTreeMap::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            if let Some(v) = view.get(&key::day(self.tenant, person, date))? {
                out.insert(date, decode::<StoredDay>(&v)?);
            }
        }
        Ok(out)
    }

    pub fn daily(&self, q: &DailyRequest) -> Result<(Vec<Row>, Option<usize>), QueryError> {
        if let Some(from) = q.from {
            range(from, q.to.unwrap_or(from))?;
        }
        let view = Through::new(self.store);
        let mut rows = Vec::new();
        for info in self.people(&q.people, q.department.as_ref())? {
            // No date: each person's today where their rule counts days (not the
            // service's UTC date: at 00:30 in Shanghai, today there is already tomorrow).
            let from = q.from.unwrap_or_else(|| {
                let zone = self.book.zone_of(&info.person_id, self.now.date_naive());
                time::local(zone, self.now).date()
            });
            let to = q.to.unwrap_or(from);
            range(from, to)?;
            let mut stored = self.stored_days(&view, &info.person_id, from, to)?;
            for date in from.iter_days().take_while(|d| *d <= to) {
                let today = time::local(self.book.zone_of(&info.person_id, date), self.now).date();
                if date > today {
                    break;
                }
                let current = stored.remove(&date);
                // A closed date shows the day as payroll has it.
                let period = self.book.closed_period(date);
                let (shown, pending) = match period {
                    Some(_) => match view
                        .get(&key::closed_day(self.tenant, &info.person_id, date))?
                        .map(|b| decode::<ClosedDay>(&b))
                        .transpose()?
                    {
                        Some(c) if c.baseline() != &current => {
                            (c.baseline().clone(), Some(current))
                        }
                        _ => (current, None),
                    },
                    None => (current, None),
                };
                let (department, day) = match shown {
                    Some(d) => (d.department_id.clone(), Some(d)),
                    None => {
                        // Employed, and no rule that day: a row that says so.
                        match self
                            .book
                            .judge_day(&info.person_id, date, &[], None, Some(self.now))
                        {
                            DayOutcome::NoRule { department_id } => (department_id, None),
                            DayOutcome::Judged { department_id, .. } if pending.is_some() => {
                                (department_id, None)
                            }
                            _ => continue,
                        }
                    }
                };
                if let Some(d) = &q.department
                    && !self.book.is_under(&department, d)
                {
                    continue;
                }
                let day_out = |d: &StoredDay| -> Result<DayOut, QueryError> {
                    Ok(if q.detail {
                        DayOut::Detail(d.judged()?)
                    } else {
                        DayOut::Data(d.day_data()?)
                    })
                };
                let (summary, summary_label, day) = match &day {
                    Some(d) => (
                        SummaryOut::Day(d.summary),
                        d.summary.label(),
                        Some(day_out(d)?),
                    ),
                    None if pending.is_some() => (SummaryOut::NoRule("none"), "无记录", None),
                    None => (SummaryOut::NoRule("no_rule"), "无规则", None),
                };
                let closed = match period {
                    Some(p) => Some(ClosedOut {
                        period: p.month.as_str(),
                        closed_at: p.closed_at,
                        closed_by: p.closed_by.clone(),
                        pending: match pending {
                            Some(Some(d)) => Some(PendingOut {
                                summary: d.summary.token(),
                                summary_label: d.summary.label(),
                                day: Some(day_out(&d)?),
                            }),
                            Some(None) => Some(PendingOut {
                                summary: "none",
                                summary_label: "无记录",
                                day: None,
                            }),
                            None => None,
                        },
                    }),
                    None => None,
                };
                // One serialization, no parse: the row's text is ours.
                rows.push(typed(&DailyOut {
                    person_id: &info.person_id,
                    person: &info.name,
                    badge_number: info.badge_number.as_ref(),
                    department_id: &department,
                    department: &self.book.department_name(&department),
                    date,
                    summary,
                    summary_label,
                    day,
                    closed,
                }));
            }
        }
        Ok(page(rows, q.offset))
    }

    pub fn monthly(&self, q: &MonthlyRequest) -> Result<(Vec<Row>, Option<usize>), QueryError> {
        let given = q
            .month
            .as_ref()
            .map(|month| {
                NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
                    .map_err(|_| QueryError::BadRequest(format!("month {month:?} is not YYYY-MM")))
            })
            .transpose()?;
        let view = Through::new(self.store);
        let mut rows = Vec::new();
        for info in self.people(&q.people, q.department.as_ref())? {
            let first = given.unwrap_or_else(|| {
                let zone = self.book.zone_of(&info.person_id, self.now.date_naive());
                time::local(zone, self.now)
                    .date()
                    .with_day(1)
                    .expect("day 1")
            });
            let department = self
                .book
                .department_of(&info.person_id, first)
                .cloned()
                .unwrap_or_else(|| info.department_id.clone());
            if let Some(d) = &q.department
                && !self.book.is_under(&info.department_id, d)
                && !self.book.is_under(&department, d)
            {
                continue;
            }
            let k = key::month(self.tenant, &info.person_id, first.year(), first.month());
            let mut month: MonthRow = match view.get(&k)? {
                Some(b) => decode(&b)?,
                None => MonthRow {
                    month: first.format("%Y-%m").to_string(),
                    ..MonthRow::default()
                },
            };
            let period = schemas::ids::Month::of(first);
            let closed = self.book.closed_period(first);
            let mut adjustments = Vec::new();
            if closed.is_some() {
                // The month as it closed: its days as they were then (what changed
                // since is listed where it was carried, or pending).
                let (lo, hi) = key::closed_days_between(
                    self.tenant,
                    &info.person_id,
                    period.first_day(),
                    period.last_day(),
                );
                for (k, b) in view.range(&lo, &hi)? {
                    let Some((_, date)) = key::parse_closed_day(&k) else {
                        continue;
                    };
                    let c: ClosedDay = decode(&b)?;
                    let now: Option<StoredDay> = view
                        .get(&key::day(self.tenant, &info.person_id, date))?
                        .map(|b| decode(&b))
                        .transpose()?;
                    if let Some(d) = &now {
                        month.remove(&d.totals);
                    }
                    if let Some(d) = &c.closed {
                        month.add(&d.totals);
                    }
                }
                let (lo, hi) =
                    key::adjustments(self.tenant, &period.as_str(), Some(&info.person_id));
                for (k, b) in view.range(&lo, &hi)? {
                    let Some(date) = key::parse_adjustment_date(&k) else {
                        continue;
                    };
                    let a: Adjustment = decode(&b)?;
                    adjustments.push(AdjustmentRow::of(date, "carried", &a.before, &a.after));
                }
            } else if self.book.open_period() == Some(period) {
                let (lo, hi) = key::closed_days(self.tenant, Some(&info.person_id));
                for (k, b) in view.range(&lo, &hi)? {
                    let Some((_, date)) = key::parse_closed_day(&k) else {
                        continue;
                    };
                    let c: ClosedDay = decode(&b)?;
                    let now: Option<StoredDay> = view
                        .get(&key::day(self.tenant, &info.person_id, date))?
                        .map(|b| decode(&b))
                        .transpose()?;
                    if c.baseline() != &now {
                        adjustments.push(AdjustmentRow::of(date, "pending", c.baseline(), &now));
                    }
                }
            }
            let mut m = self.person_json(&info, &info.department_id);
            if let Value::Object(fields) = serde_json::to_value(&month).expect("json") {
                m.extend(fields);
            }
            if let Some(c) = closed {
                let info = ClosedInfo {
                    closed_at: c.closed_at,
                    closed_by: c.closed_by.clone(),
                    sequence: c.sequence,
                    note: c.note.clone(),
                };
                m.insert("closed".into(), serde_json::to_value(&info).expect("json"));
            }
            if !adjustments.is_empty() {
                m.insert(
                    "adjustments".into(),
                    serde_json::to_value(&adjustments).expect("json"),
                );
            }
            rows.push(raw(&Value::Object(m)));
        }
        Ok(page(rows, q.offset))
    }

    fn raw_row(&self, e: &RawEntry) -> RawRow {
        let person = self
            .book
            .person_of(&e.punch)
            .and_then(|p| self.book.person(p));
        let device_name = e.punch.device_sn.as_ref().and_then(|sn| {
            let view = Through::new(self.store);
            view.get(&key::device(self.tenant, sn))
                .ok()
                .flatten()
                .and_then(|b| decode::<DeviceRow>(&b).ok())
                .map(|d| d.name)
        });
        RawRow {
            date: key::date(e.punch.local_time.date()),
            time: e.punch.local_time.format("%H:%M:%S").to_string(),
            person_id: person.as_ref().map(|p| p.person_id.clone()),
            person: person.as_ref().map(|p| p.name.clone()),
            department: person
                .as_ref()
                .map(|p| self.book.department_name(&p.department_id).to_owned()),
            badge_number: e.punch.badge_number.as_ref().map(|b| b.as_str().to_owned()),
            device_sn: e.punch.device_sn.clone(),
            device_name,
            verify_mode: e.punch.verify_mode.clone(),
            source: e.punch.source.clone(),
            received: e.received,
            punch_id: e.punch.punch_id.to_string(),
            sequence: e.first_sequence,
        }
    }

    pub fn raw(&self, q: &RawRequest) -> Result<(Vec<Row>, Option<usize>), QueryError> {
        let view = Through::new(self.store);
        let mut rows = Vec::new();
        let dates = |zone: chrono_tz::Tz| -> Result<(NaiveDate, NaiveDate), QueryError> {
            let from = q.from.unwrap_or_else(|| time::local(zone, self.now).date());
            let to = q.to.unwrap_or(from);
            range(from, to)?;
            Ok((from, to))
        };
        match (&q.device, &q.person) {
            (Some(sn), person) => {
                let Some(device) = view.get(&key::device(self.tenant, sn))? else {
                    return Err(QueryError::UnknownDevice(sn.clone()));
                };
                let device: crate::views::DeviceRow = decode(&device)?;
                let zone = device
                    .zone
                    .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
                    .unwrap_or(chrono_tz::UTC);
                let (from, to) = dates(zone)?;
                if let Some(p) = person
                    && self.book.person(p).is_none()
                {
                    return Err(QueryError::UnknownPerson(p.clone()));
                }
                let mut index = Vec::new();
                for (lo, hi) in key::device_punches(self.tenant, sn, from, to) {
                    index.extend(view.range(&lo, &hi)?);
                }
                for (_, at) in index {
                    let Some(v) = view.get(&at)? else {
                        return Err(QueryError::Corrupt(
                            "a device's index names a record that is not stored".into(),
                        ));
                    };
                    let e: RawEntry = decode(&v)?;
                    if person
                        .as_ref()
                        .is_some_and(|p| self.book.person_of(&e.punch) != Some(p))
                    {
                        continue;
                    }
                    rows.push(typed(&self.raw_row(&e)));
                }
                let (lo, hi) = key::rejections(self.tenant, sn);
                for (_, v) in view.range(&lo, &hi)? {
                    let r: RejectedEntry = decode(&v)?;
                    // The date it was received where the device stands, as its
                    // punches' dates are.
                    let date = time::local(zone, r.recorded_at).date();
                    if person.is_none() && from <= date && date <= to {
                        rows.push(typed(&RejectedRow {
                            date: key::date(date),
                            device_sn: sn.clone(),
                            rejected: r.record.raw,
                            reason: r.record.reason,
                            detail: r.record.detail,
                            received: r.received,
                            sequence: r.first_sequence,
                        }));
                    }
                }
            }
            (None, Some(p)) => {
                if self.book.person(p).is_none() {
                    return Err(QueryError::UnknownPerson(p.clone()));
                }
                let (from, to) = dates(self.book.zone_of(p, self.now.date_naive()))?;
                let zone = self.book.zone_of(p, from);
                let lo = time::at(zone, from - Duration::days(1), chrono::NaiveTime::MIN);
                let hi = time::at(zone, to + Duration::days(2), chrono::NaiveTime::MIN);
                for e in punches_of(&view, self.book, self.tenant, p, lo, hi)? {
                    let d = e.punch.local_time.date();
                    if from <= d && d <= to {
                        rows.push(typed(&self.raw_row(&e)));
                    }
                }
            }
            (None, None) => {
                return Err(QueryError::BadRequest(
                    "name a device or a person".to_owned(),
                ));
            }
        }
        Ok(page(rows, q.offset))
    }

    pub fn devices(&self, q: &ListRequest) -> Result<(Vec<Row>, Option<usize>), QueryError> {
        let view = Through::new(self.store);
        let (lo, hi) = key::devices(self.tenant);
        let mut rows = Vec::new();
        for (_, v) in view.range(&lo, &hi)? {
            let d: DeviceRow = decode(&v)?;
            rows.push(typed(&DeviceAnswerRow {
                online: d.online(self.now),
                roster_size: d.roster.len(),
                enrolled_people: d.enrolled.values().filter(|s| !s.is_empty()).count(),
                device: d,
            }));
        }
        Ok(page(rows, q.offset))
    }

    pub fn people_list(&self, q: &ListRequest) -> Result<(Vec<Row>, Option<usize>), QueryError> {
        let mut rows = Vec::new();
        for info in self.book.people() {
            rows.push(typed(&PersonRow {
                person_id: info.person_id.clone(),
                person: info.name.clone(),
                badge_number: info.badge_number.as_ref().map(|b| b.as_str().to_owned()),
                department: self.book.department_name(&info.department_id).to_owned(),
                department_id: info.department_id.clone(),
                hired_on: key::date(info.hired_on),
                left_on: info.left_on.map(key::date),
            }));
        }
        Ok(page(rows, q.offset))
    }

    pub fn departments(&self) -> Result<Vec<Row>, QueryError> {
        let mut rows = Vec::new();
        for d in self.book.departments() {
            if let Some((name, parent)) = self.book.department(d) {
                rows.push(typed(&DepartmentRow {
                    department_id: d.clone(),
                    name: name.to_owned(),
                    parent: parent.cloned(),
                }));
            }
        }
        Ok(rows)
    }

    /// One person-day: the verdict slot by slot, judged again from the store as the fold
    /// judges it, and every event that made it.
    pub fn explain(&self, q: &ExplainRequest) -> Result<ExplainRow, QueryError> {
        let info = self
            .book
            .person(&q.person)
            .ok_or_else(|| QueryError::UnknownPerson(q.person.clone()))?;
        let view = Through::new(self.store);
        let stored: Option<StoredDay> = view
            .get(&key::day(self.tenant, &q.person, q.date))?
            .map(|b| decode(&b))
            .transpose()?;
        let mut row = ExplainRow {
            person_id: info.person_id.clone(),
            person: info.name.clone(),
            badge_number: info.badge_number.clone(),
            department_id: None,
            department: None,
            date: q.date,
            summary: None,
            summary_label: None,
            stored_matches: None,
            day: None,
            verdict: None,
            events: Vec::new(),
        };
        let Some(window) = self.book.punch_window(&q.person, q.date) else {
            row.verdict = Some("no rule on this date, or not employed".into());
            return Ok(row);
        };
        let entries = punches_of(
            &view,
            self.book,
            self.tenant,
            &q.person,
            window.start,
            window.end,
        )?;
        let punches: Vec<_> = entries.iter().map(|e| &e.punch).collect();
        let late_out = view
            .get(&key::day(
                self.tenant,
                &q.person,
                q.date - Duration::days(1),
            ))?
            .map(|b| decode::<StoredDay>(&b))
            .transpose()?
            .and_then(|d| d.late_out_s);
        let DayOutcome::Judged {
            department_id,
            judged,
        } = self
            .book
            .judge_day(&q.person, q.date, &punches, late_out, Some(self.now))
        else {
            return Err(QueryError::BadRequest(format!(
                "{} has no day on {}",
                q.person, q.date
            )));
        };
        for note in &judged.punches {
            if let Some(e) = entries.iter().find(|e| e.punch.punch_id == note.punch_id) {
                row.events.push(NamedEvent {
                    sequence: e.first_sequence,
                    event_id: e.event_id.clone(),
                    kind: e.kind.clone(),
                    actor: e.actor.clone(),
                    recorded_at: e.recorded_at,
                    fact: Some(format!(
                        "punch {}: {}",
                        e.punch.local_time.format("%Y-%m-%d %H:%M:%S"),
                        punch_use(note.used)
                    )),
                    received: Some(e.received),
                });
            }
        }
        row.events.extend(
            self.book
                .origins_of(&q.person, &judged)
                .into_iter()
                .map(NamedEvent::from),
        );
        row.events.sort_by_key(|e| e.sequence);
        let summary = crate::views::Summary::of(&judged);
        row.summary = Some(summary);
        row.summary_label = Some(summary.label().to_owned());
        row.stored_matches = stored.as_ref().map(|s| {
            s.judged().is_ok_and(|mut j| {
                // Not in the stored report: it is the stored day's own field.
                j.late_out_s = s.late_out_s;
                j == *judged
            })
        });
        row.department = Some(self.book.department_name(&department_id));
        row.department_id = Some(department_id);
        row.day = Some(judged);
        Ok(row)
    }
}

fn punch_use(u: crate::judge::PunchUse) -> String {
    use crate::judge::PunchUse;
    match u {
        PunchUse::On { section } => format!("on punch of section {}", section + 1),
        PunchUse::Off { section } => format!("off punch of section {}", section + 1),
        PunchUse::Unused => "not used".to_owned(),
        PunchUse::Merged => "merged with the one before".to_owned(),
        PunchUse::Refused => "refused by the rule".to_owned(),
    }
}
