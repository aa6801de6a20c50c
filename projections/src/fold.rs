//! The projection fold: events and the clock in, view changes out. Pure: it reads a
//! store through [`Through`], keeps each tenant's facts (a [`Book`] without punches) in
//! memory, and returns the [`Changes`] a batch makes, checkpoint included, for the
//! caller to commit atomically. A worker runs it over sled; the laws run it over
//! [`crate::store::MemStore`].
//!
//! What an event re-judges (and nothing else):
//! - a punch: its person's days from two before its date to one after (a day's plan
//!   reaches its neighbours' boundaries and a self-scheduled shift's morning);
//! - an approval: the days its span touches; a calibration: its day; a schedule or swap:
//!   its dates and their neighbours; a cycle assignment: the person from its start;
//! - a hire, leave, rejoin or transfer: the person from its date; a badge number: every
//!   holder of it (punches filed under it may change hands);
//! - a rule version or membership: whom the rule can apply to (named by one of its
//!   memberships, in a department one names, or scheduled under it) from two days
//!   before it takes effect; a special date or holiday calendar: whom its rules can
//!   apply to, from then; a shift: whoever is scheduled on it, on a cycle naming it,
//!   or under a rule naming it, all time; a cycle: whoever it is assigned to, from the
//!   assignment; a department defined or moved: whoever was ever under it, all time
//!   (and whoever swapped a day with one of these, on the swapped dates).
//!
//! and then, day by day, whatever a re-judged day passes on: when a day's late-out
//! changes, the next day is judged again. Days exist from a person's first day under a
//! rule up to today in their rule's zone; today is in progress until its owned span
//! ends, and [`Fold::tick`] judges it again when it does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use schemas::events::{
    DepartmentDefined, DepartmentMoved, Punch, RuleMembershipSet, RuleVersionDefined,
};
use schemas::ids::{DepartmentId, Month, PersonId, TenantId};
use schemas::{Actor, Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::book::{Book, DayOutcome, Holder, Origin};
use crate::store::{Changes, Read, StoreError, Through, decode, encode, key};
use crate::time;
use crate::views::{
    Adjustment, ClosedDay, DeviceRow, MonthRow, RawEntry, RejectedEntry, RosterEntry, StoredDay,
};

/// The views a store holds, each with its checkpoint.
pub const VIEWS: [&str; 5] = ["daily", "monthly", "raw", "devices", "people"];

/// Bumped whenever what the fold writes changes: a store of another version is rebuilt.
pub const PROJECTION_VERSION: u32 = 7;

/// Every date of a person's history.
const ALL: NaiveDate = NaiveDate::MIN;

/// What one tenant's store remembers about time: for each zone, the last date
/// materialised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TenantMeta {
    through: BTreeMap<String, NaiveDate>,
}

#[derive(Debug)]
struct Tenant {
    book: Book,
    meta: Option<TenantMeta>,
    zones: Option<Zones>,
    /// Each person's zone when days were last materialised (`None` after a restart):
    /// a person whose zone has changed since was materialised through their old zone's
    /// date, not their new one's.
    settled: Option<HashMap<PersonId, chrono_tz::Tz>>,
}

/// Everyone's zone around a date, as of a book revision: (date, revision, zones).
/// With the names of the zones met, in order.
type Zones = (
    NaiveDate,
    u64,
    Vec<(PersonId, chrono_tz::Tz)>,
    BTreeSet<&'static str>,
);

impl Tenant {
    fn new() -> Self {
        Self {
            book: Book::new(),
            meta: None,
            zones: None,
            settled: None,
        }
    }

    /// Each person's zone around `date` (`Book::zone_near`: their rule's), computed
    /// again only when the date or the facts changed.
    fn zones(&mut self, date: NaiveDate) -> &[(PersonId, chrono_tz::Tz)] {
        let revision = self.book.revision();
        if self
            .zones
            .as_ref()
            .is_none_or(|(d, r, _, _)| *d != date || *r != revision)
        {
            let zones: Vec<(PersonId, chrono_tz::Tz)> = self
                .book
                .person_ids()
                .map(|p| (p.clone(), self.book.zone_near(p, date)))
                .collect();
            let names = zones.iter().map(|(_, z)| z.name()).collect();
            self.zones = Some((date, revision, zones, names));
        }
        &self.zones.as_ref().expect("just computed").2
    }
}

/// Which of a tenant's person-days a batch must judge again.
#[derive(Debug, Default)]
struct Dirty {
    people: BTreeMap<PersonId, PersonDirty>,
}

#[derive(Debug, Default)]
struct PersonDirty {
    from: Option<NaiveDate>,
    dates: BTreeSet<NaiveDate>,
}

impl Dirty {
    fn from(&mut self, p: &PersonId, from: NaiveDate) {
        let d = self.people.entry(p.clone()).or_default();
        d.from = Some(d.from.map_or(from, |f| f.min(from)));
    }

    fn dates(&mut self, p: &PersonId, dates: impl IntoIterator<Item = NaiveDate>) {
        self.people
            .entry(p.clone())
            .or_default()
            .dates
            .extend(dates);
    }

    /// Adds what `later` names (an earlier batch's days stay named).
    fn merge(&mut self, later: Dirty) {
        for (p, d) in later.people {
            let mine = self.people.entry(p).or_default();
            if let Some(f) = d.from {
                mine.from = Some(mine.from.map_or(f, |m| m.min(f)));
            }
            mine.dates.extend(d.dates);
        }
    }

    /// The days swapped with one of the people `is_one` names, for both parties.
    fn swapped(&mut self, book: &Book, is_one: impl Fn(&PersonId) -> bool) {
        for (p, d) in book.swap_partners(is_one) {
            self.around(&p, d, d);
        }
    }

    fn around(&mut self, p: &PersonId, lo: NaiveDate, hi: NaiveDate) {
        let lo = lo - Duration::days(2);
        let hi = hi + Duration::days(1);
        self.dates(p, lo.iter_days().take_while(|d| *d <= hi));
    }
}

/// What a batch adds to its devices' counters, written once at its end (a device's row
/// is not decoded and encoded again for every punch).
#[derive(Debug, Default)]
struct DeviceDeltas(BTreeMap<(TenantId, schemas::ids::DeviceSn), DeviceDelta>);

#[derive(Debug, Default)]
struct DeviceDelta {
    punches: u64,
    rejected: u64,
    last_seen: Option<DateTime<Utc>>,
}

impl DeviceDeltas {
    fn of(&mut self, t: &TenantId, sn: &schemas::ids::DeviceSn) -> &mut DeviceDelta {
        self.0.entry((t.clone(), sn.clone())).or_default()
    }

    fn flush<S: Read>(self, view: &mut Through<'_, S>) -> Result<(), StoreError> {
        for ((t, sn), d) in self.0 {
            update_device(view, &t, &sn, |row| {
                row.punches += d.punches;
                row.rejected += d.rejected;
                if let Some(seen) = d.last_seen {
                    row.last_seen = Some(row.last_seen.map_or(seen, |s| s.max(seen)));
                }
            })?;
        }
        Ok(())
    }
}

/// Figures of one fold call, for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    pub events: u64,
    pub punches: u64,
    /// Person-days judged.
    pub judged: u64,
    /// Person-days whose stored report changed.
    pub written: u64,
}

impl std::ops::AddAssign for Folded {
    fn add_assign(&mut self, o: Self) {
        self.events += o.events;
        self.punches += o.punches;
        self.judged += o.judged;
        self.written += o.written;
    }
}

/// The fold of one partition's stream: every tenant in it.
#[derive(Debug)]
pub struct Fold {
    tenants: BTreeMap<TenantId, Tenant>,
    /// Only this tenant (a `rebuild --tenant`); others' events are skipped.
    only: Option<TenantId>,
    threads: Threads,
    /// Days folded events made dirty and not judged yet ([`Fold::absorb`]), by tenant.
    pending: BTreeMap<TenantId, Dirty>,
    /// When the latest event folded since the last judging was recorded.
    horizon: Option<DateTime<Utc>>,
}

impl Default for Fold {
    fn default() -> Self {
        Self {
            tenants: BTreeMap::new(),
            only: None,
            threads: Threads::machine(),
            pending: BTreeMap::new(),
            horizon: None,
        }
    }
}

/// How a batch's person-days are judged: on up to `threads` cores, once at least
/// `from_people` people have days to judge (fewer are not worth a thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads {
    pub threads: usize,
    pub from_people: usize,
}

impl Threads {
    /// Every core of this machine (or `LEDGERCLOCK_JUDGE_THREADS`), for batches of 64
    /// people or more.
    pub fn machine() -> Self {
        let threads = std::env::var("LEDGERCLOCK_JUDGE_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Self {
            threads,
            from_people: 64,
        }
    }
}

fn actor_label(actor: &Actor) -> String {
    match actor {
        Actor::System { component } => format!("system:{component}"),
        Actor::Device { sn } => format!("device:{sn}"),
        Actor::User { user_id } => format!("user:{user_id}"),
        Actor::Person { person_id } => format!("person:{person_id}"),
    }
}

impl Fold {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fold that keeps only `tenant`'s views.
    pub fn only(tenant: TenantId) -> Self {
        Self {
            only: Some(tenant),
            ..Self::default()
        }
    }

    /// The same fold, judging on `threads` (the views it writes do not depend on it).
    pub fn judging_on(mut self, threads: Threads) -> Self {
        self.threads = threads;
        self
    }

    pub fn tenants(&self) -> impl Iterator<Item = &TenantId> {
        self.tenants.keys()
    }

    pub fn book(&self, tenant: &TenantId) -> Option<&Book> {
        self.tenants.get(tenant).map(|t| &t.book)
    }

    /// Knows `tenant` (it has views in the store), facts or none.
    pub fn know(&mut self, tenant: TenantId) {
        if self.only.as_ref().is_none_or(|t| t == &tenant) {
            self.tenants.entry(tenant).or_insert_with(Tenant::new);
        }
    }

    /// Folds an already-applied fact again after a restart (the store has its views;
    /// memory needs the facts back): no views are written.
    pub fn restore(&mut self, sequence: u64, envelope: &Envelope) {
        if self.only.as_ref().is_some_and(|t| t != &envelope.tenant) {
            return;
        }
        self.tenant(&envelope.tenant)
            .book
            .apply_facts(sequence, envelope);
    }

    fn tenant(&mut self, t: &TenantId) -> &mut Tenant {
        self.tenants.entry(t.clone()).or_insert_with(Tenant::new)
    }

    /// Folds a batch of events in stream order, then judges what they made dirty, as the
    /// clock stands at `now`. The changes include every view's checkpoint (the last
    /// sequence of the batch).
    pub fn apply<S: Read>(
        &mut self,
        store: &S,
        events: &[(u64, &Envelope)],
        now: DateTime<Utc>,
    ) -> Result<(Changes, Folded), StoreError> {
        let mut view = Through::new(store);
        let mut folded = self.absorb_into(&mut view, events, now)?;
        folded += self.judge_into(&mut view, now)?;
        // A one-tenant rebuild leaves the partition's checkpoints as they are.
        if let Some((last, _)) = events.last().filter(|_| self.only.is_none()) {
            for v in VIEWS {
                view.put(key::checkpoint(v), last.to_be_bytes().to_vec())?;
            }
        }
        Ok((view.into_changes(), folded))
    }

    /// Folds a batch's own rows (raw records, devices, people) and remembers the days it
    /// made dirty without judging them: a rebuild judges a week of history at once
    /// ([`Fold::judge_pending`]), each day once after its punches have come, instead of
    /// a person's window of days at every batch that brings one of their punches. The
    /// changes carry no checkpoint: the views are whole only after the judging.
    pub fn absorb<S: Read>(
        &mut self,
        store: &S,
        events: &[(u64, &Envelope)],
        now: DateTime<Utc>,
    ) -> Result<(Changes, Folded), StoreError> {
        let mut view = Through::new(store);
        let folded = self.absorb_into(&mut view, events, now)?;
        Ok((view.into_changes(), folded))
    }

    /// Judges the days absorbed batches made dirty, as one batch of them all would.
    pub fn judge_pending<S: Read>(
        &mut self,
        store: &S,
        now: DateTime<Utc>,
    ) -> Result<(Changes, Folded), StoreError> {
        let mut view = Through::new(store);
        let folded = self.judge_into(&mut view, now)?;
        Ok((view.into_changes(), folded))
    }

    /// The stream's clock over what was absorbed and not judged yet (`None`: nothing).
    pub fn pending_horizon(&self) -> Option<DateTime<Utc>> {
        self.horizon
    }

    fn absorb_into<S: Read>(
        &mut self,
        view: &mut Through<'_, S>,
        events: &[(u64, &Envelope)],
        now: DateTime<Utc>,
    ) -> Result<Folded, StoreError> {
        let mut folded = Folded::default();
        let mut dirty: BTreeMap<TenantId, Dirty> = BTreeMap::new();
        let mut devices = DeviceDeltas::default();
        for (sequence, envelope) in events {
            folded.events += 1;
            if self.only.as_ref().is_some_and(|t| t != &envelope.tenant) {
                continue;
            }
            let tenant_id = envelope.tenant.clone();
            let closing = match &envelope.event {
                Event::PeriodClosed(e)
                    if self
                        .tenants
                        .get(&tenant_id)
                        .is_none_or(|t| t.book.closed_period(e.month.first_day()).is_none()) =>
                {
                    Some(e.month)
                }
                _ => None,
            };
            if let Some(month) = closing {
                // A close freezes what the stream says before it: whatever came before
                // is judged first (so how the stream was batched does not matter), then
                // every day of the month as ended (so neither does the clock).
                if let Some(d) = dirty.remove(&tenant_id) {
                    self.pending.entry(tenant_id.clone()).or_default().merge(d);
                }
                let before = self.pending.remove(&tenant_id).unwrap_or_default();
                let horizon = envelope.recorded_at.min(now);
                folded += self.settle(view, &tenant_id, before, now, horizon)?;
                folded += self.end_month(view, &tenant_id, month, now)?;
            }
            let tenant = self
                .tenants
                .entry(tenant_id.clone())
                .or_insert_with(Tenant::new);
            let d = dirty.entry(tenant_id.clone()).or_default();
            // What an event replaces is known only before it is folded.
            match &envelope.event {
                Event::PersonLeft(e) => {
                    if let Some(before) = tenant.book.person(&e.person_id).and_then(|p| p.left_on) {
                        d.from(&e.person_id, before - Duration::days(1));
                    }
                }
                Event::RuleVersionDefined(e) => {
                    if let Some(before) = tenant.book.version_from(&e.rule_id, e.version) {
                        for p in tenant.book.members_ever(&e.rule_id) {
                            d.from(&p, before - Duration::days(2));
                        }
                    }
                }
                _ => {}
            }
            tenant.book.apply_facts(*sequence, envelope);
            if let Some(month) = closing {
                carry_adjustments(view, &tenant_id, &month, *sequence)?;
            }
            folded.punches += fold_event(
                view,
                tenant,
                &tenant_id,
                *sequence,
                envelope,
                d,
                &mut devices,
            )?;
        }
        devices.flush(view)?;
        // The stream's clock: when its latest event was recorded (never past `now`).
        let horizon = events
            .iter()
            .map(|(_, e)| e.recorded_at)
            .max()
            .map_or(now, |r| r.min(now));
        self.horizon = Some(self.horizon.map_or(horizon, |h| h.max(horizon)));
        for (t, d) in dirty {
            self.pending.entry(t).or_default().merge(d);
        }
        Ok(folded)
    }

    fn judge_into<S: Read>(
        &mut self,
        view: &mut Through<'_, S>,
        now: DateTime<Utc>,
    ) -> Result<Folded, StoreError> {
        let mut folded = Folded::default();
        let horizon = self.horizon.take().map_or(now, |h| h.min(now));
        for (tenant_id, d) in std::mem::take(&mut self.pending) {
            folded += self.settle(view, &tenant_id, d, now, horizon)?;
        }
        Ok(folded)
    }

    /// Judges every day through a month's end as ended, before the month closes: a
    /// closed day's verdict is final, whatever the clock said when it closed, and a
    /// closed month has all its days (a close recorded early, by hand, judges the days
    /// to come as they stand). Days stored and over are not judged again (the same
    /// verdict); days not stored are looked for from the earliest date any zone had
    /// reached (before it every day is stored) or the month's first day.
    fn end_month<S: Read>(
        &mut self,
        view: &mut Through<'_, S>,
        tenant_id: &TenantId,
        month: Month,
        now: DateTime<Utc>,
    ) -> Result<Folded, StoreError> {
        let Some(tenant) = self.tenants.get(tenant_id) else {
            return Ok(Folded::default());
        };
        let (lo, hi) = key::open_until(tenant_id, DateTime::<Utc>::MAX_UTC);
        let mut work: BTreeMap<PersonId, BTreeSet<NaiveDate>> = BTreeMap::new();
        for (k, _) in view.range(&lo, &hi)? {
            if let Some((person, date)) = key::parse_open(&k)
                && date <= month.last_day()
                && tenant.book.closed_period(date).is_none()
            {
                work.entry(person).or_default().insert(date);
            }
        }
        let reached = tenant
            .meta
            .as_ref()
            .and_then(|m| m.through.values().min().copied());
        let after_closed = tenant
            .book
            .closed_periods()
            .map(|c| c.month.last_day() + Duration::days(1))
            .max();
        for person in tenant.book.person_ids() {
            let Some(first) = tenant.book.first_day(person) else {
                continue;
            };
            let mut from = reached.map_or(first, |r| r.min(month.first_day()).max(first));
            if let Some(after) = after_closed {
                from = from.max(after);
            }
            for date in from.iter_days().take_while(|d| *d <= month.last_day()) {
                if view.get(&key::day(tenant_id, person, date))?.is_none() {
                    work.entry(person.clone()).or_default().insert(date);
                }
            }
        }
        let mut folded = Folded::default();
        for (person, dates) in work {
            // The days after the month that exist are judged again if a late-out into
            // them changes; none is made.
            let mut today = month.last_day();
            for d in (1..=7).map(|n| month.last_day() + Duration::days(n)) {
                if view.get(&key::day(tenant_id, &person, d))?.is_none() {
                    break;
                }
                today = d;
            }
            folded += judge_person(
                view,
                &tenant.book,
                tenant_id,
                &person,
                None,
                dates,
                today,
                now,
                Some(month),
            )?;
        }
        Ok(folded)
    }

    /// Time passing without events: days that closed since (a workday nobody punched
    /// becomes absent) and new days that began, for every tenant.
    pub fn tick<S: Read>(
        &mut self,
        store: &S,
        now: DateTime<Utc>,
    ) -> Result<(Changes, Folded), StoreError> {
        let mut view = Through::new(store);
        let mut folded = Folded::default();
        let tenants: Vec<TenantId> = self.tenants.keys().cloned().collect();
        for t in tenants {
            folded += self.settle(&mut view, &t, Dirty::default(), now, now)?;
        }
        Ok((view.into_changes(), folded))
    }

    /// Judges what `dirty` names, the days that closed by `now`, and the days that began
    /// up to `horizon` (at most `now`: how far the stream's own clock has come; a
    /// rebuild does not materialise two years of empty days before their punches
    /// arrive). Days already materialised are never taken back.
    fn settle<S: Read>(
        &mut self,
        view: &mut Through<'_, S>,
        tenant_id: &TenantId,
        mut dirty: Dirty,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
    ) -> Result<Folded, StoreError> {
        let tenant = self
            .tenants
            .entry(tenant_id.clone())
            .or_insert_with(Tenant::new);
        let meta = match &tenant.meta {
            Some(m) => m.clone(),
            None => view
                .get(&key::tenant(tenant_id))?
                .map(|b| decode::<TenantMeta>(&b))
                .transpose()?
                .unwrap_or_default(),
        };

        // Days that closed by now.
        let (lo, hi) = key::open_until(tenant_id, now);
        for (k, _) in view.range(&lo, &hi)? {
            if let Some((person, date)) = key::parse_open(&k) {
                dirty.dates(&person, [date]);
            }
        }

        // Nothing dirty, nothing closed, no zone's date moved on, and people's todays
        // told by the same zones as when the dates were written: nothing to judge.
        tenant.zones(horizon.date_naive());
        let (_, _, zones_now, names_now) = tenant.zones.as_ref().expect("just computed");
        let unmoved = |p: &PersonId, z: &chrono_tz::Tz| {
            tenant.settled.as_ref().is_some_and(|s| s.get(p) == Some(z))
        };
        let same_zones = tenant
            .settled
            .as_ref()
            .is_some_and(|s| s.len() == zones_now.len())
            && zones_now.iter().all(|(p, z)| unmoved(p, z));
        let quiet = tenant.meta.is_some()
            && same_zones
            && dirty.people.is_empty()
            && !meta.through.is_empty()
            && meta.through.iter().all(|(zone, date)| {
                zone.parse::<chrono_tz::Tz>()
                    .is_ok_and(|tz| time::local(tz, horizon).date() <= *date)
            })
            && names_now
                .iter()
                .copied()
                .eq(meta.through.keys().map(String::as_str));
        if quiet {
            return Ok(Folded::default());
        }

        // Each person's today, and the days that began since the last call.
        let mut through = BTreeMap::new();
        let mut work = Vec::new();
        let book = &tenant.book;
        let zones = &tenant.zones.as_ref().expect("computed above").2;
        // (the zone's date before, its today) for each zone met.
        let mut todays: HashMap<chrono_tz::Tz, (Option<NaiveDate>, NaiveDate)> = HashMap::new();
        // A person whose zone changed since the last time (or is not known, after a
        // restart) has days through the earliest zone's date at least.
        let floor = meta.through.values().min().copied();
        for (person, zone) in zones {
            let (before, today) = *todays.entry(*zone).or_insert_with(|| {
                let before = meta.through.get(zone.name()).copied();
                let today = time::local(*zone, horizon)
                    .date()
                    .max(before.unwrap_or(NaiveDate::MIN));
                through.insert(zone.name().to_owned(), today);
                (before, today)
            });
            let before = match (before, floor) {
                (Some(b), Some(f)) if !unmoved(person, zone) => Some(b.min(f)),
                (b, _) => b,
            };
            let from = match before {
                None => Some(ALL),
                Some(b) if b < today => Some(b + Duration::days(1)),
                Some(_) => None,
            };
            let mine = dirty.people.remove(person);
            let from = match (from, mine.as_ref().and_then(|m| m.from)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let dates = mine.map(|m| m.dates).unwrap_or_default();
            if from.is_none() && dates.is_empty() {
                continue;
            }
            work.push(PersonWork {
                person,
                from,
                dates,
                today,
            });
        }
        let folded = judge_people(view, book, tenant_id, work, now, self.threads)?;
        tenant.settled = Some(zones.iter().cloned().collect());
        let meta = TenantMeta { through };
        view.put(key::tenant(tenant_id), encode(&meta))?;
        tenant.meta = Some(meta);
        Ok(folded)
    }
}

/// Folds one event's own rows (raw records, devices, people) and marks the days it can
/// change. Returns how many punches it carried.
#[allow(clippy::too_many_arguments)]
fn fold_event<S: Read>(
    view: &mut Through<'_, S>,
    tenant: &Tenant,
    t: &TenantId,
    sequence: u64,
    envelope: &Envelope,
    dirty: &mut Dirty,
    devices: &mut DeviceDeltas,
) -> Result<u64, StoreError> {
    let book = &tenant.book;
    let date_of = |at: DateTime<Utc>| at.date_naive();
    if let Actor::Device { sn } = &envelope.actor {
        let d = devices.of(t, sn);
        d.last_seen = Some(
            d.last_seen
                .map_or(envelope.recorded_at, |s| s.max(envelope.recorded_at)),
        );
    }
    let mut punches = 0;
    match &envelope.event {
        Event::PunchRecorded(e) => {
            punches += 1;
            punch(view, book, t, sequence, envelope, &e.punch, dirty, devices)?;
        }
        Event::PunchesRecorded(e) => {
            for p in &e.punches {
                punches += 1;
                punch(view, book, t, sequence, envelope, p, dirty, devices)?;
            }
        }
        Event::MakeUpPunchApproved(e) => {
            punches += 1;
            let mut p = e.punch.clone();
            if p.person_id.is_none() {
                p.person_id = Some(e.person_id.clone());
            }
            punch(view, book, t, sequence, envelope, &p, dirty, devices)?;
        }
        Event::DeviceRecordRejected(e) => {
            let k = key::rejected(t, &e.sn, &e.raw);
            let entry = match view.get(&k)? {
                Some(b) => {
                    let mut r: RejectedEntry = decode(&b)?;
                    r.received += 1;
                    r
                }
                None => RejectedEntry {
                    record: e.clone(),
                    received: 1,
                    first_sequence: sequence,
                    recorded_at: envelope.recorded_at,
                },
            };
            view.put(k, encode(&entry))?;
            devices.of(t, &e.sn).rejected += 1;
        }
        // A department's place in the tree decides which rules reach the people under
        // it (undated: the tree has no history), and nobody else's.
        Event::DepartmentDefined(DepartmentDefined { department_id, .. })
        | Event::DepartmentMoved(DepartmentMoved { department_id, .. }) => {
            write_department(view, book, t, department_id)?;
            for p in book.people_ever_in(department_id) {
                dirty.from(&p, ALL);
            }
        }
        Event::DepartmentRenamed(e) => write_department(view, book, t, &e.department_id)?,
        Event::PersonHired(e) => {
            write_person(view, book, t, &e.person_id)?;
            dirty.from(&e.person_id, ALL);
            if let Some(b) = &e.badge_number {
                for p in book.badge_holders(b) {
                    write_person(view, book, t, &p)?;
                    dirty.from(&p, ALL);
                }
            }
        }
        Event::PersonUpdated(e) => {
            write_person(view, book, t, &e.person_id)?;
            if e.department_id.is_some() {
                dirty.from(&e.person_id, ALL);
            }
        }
        Event::PersonLeft(e) => {
            write_person(view, book, t, &e.person_id)?;
            dirty.from(&e.person_id, e.left_on - Duration::days(1));
        }
        Event::PersonRejoined(e) => {
            write_person(view, book, t, &e.previous_person_id)?;
            dirty.from(&e.previous_person_id, ALL);
        }
        Event::BadgeNumberAssigned(e) => {
            for p in book.badge_holders(&e.badge_number) {
                write_person(view, book, t, &p)?;
                dirty.from(&p, ALL);
            }
        }
        // A rule's change reaches only whom the rule can apply to (a membership's, after
        // it is folded: whom it names now and whom its rule named before).
        Event::RuleVersionDefined(RuleVersionDefined {
            rule_id,
            effective_from,
            ..
        })
        | Event::RuleMembershipSet(RuleMembershipSet {
            rule_id,
            effective_from,
            ..
        }) => {
            for p in book.members_ever(rule_id) {
                dirty.from(&p, *effective_from - Duration::days(2));
            }
        }
        Event::SpecialDatesSet(e) => {
            if let Some(first) = e.dates.iter().map(|d| d.date).min() {
                for p in book.members_ever(&e.rule_id) {
                    dirty.from(&p, first - Duration::days(2));
                }
            }
        }
        // A shift's times reach every day that can be judged by it: undated, as the
        // shift has no versions.
        Event::ShiftDefined(e) => {
            let people = book.people_using_shift(&e.shift_id);
            dirty.swapped(book, |p| people.contains(p));
            for p in people {
                dirty.from(&p, ALL);
            }
        }
        Event::ScheduleCycleDefined(e) => {
            let people = book.people_on_cycle(&e.cycle_id);
            dirty.swapped(book, |p| people.contains_key(p));
            for (p, from) in people {
                dirty.from(&p, from - Duration::days(2));
            }
        }
        Event::HolidayCalendarPublished(e) => {
            if let Some(first) = NaiveDate::from_ymd_opt(e.year, 1, 1) {
                for r in book.rules_following(&e.calendar_id) {
                    for p in book.members_ever(&r) {
                        dirty.from(&p, first - Duration::days(2));
                    }
                }
            }
        }
        // A schedule reaches whoever swapped a day with the person too (they take the
        // person's shift on it).
        Event::ScheduleAssigned(e) => {
            for d in &e.days {
                dirty.around(&e.person_id, d.date, d.date);
            }
            dirty.swapped(book, |p| p == &e.person_id);
        }
        Event::ScheduleCycleAssigned(e) => {
            dirty.from(&e.person_id, e.from - Duration::days(2));
            dirty.swapped(book, |p| p == &e.person_id);
        }
        Event::ShiftSwapApproved(e) => {
            let mut dates = vec![e.date];
            dates.extend(e.with_date);
            for d in dates {
                dirty.around(&e.person_id, d, d);
                if let Some(o) = &e.with_person {
                    dirty.around(o, d, d);
                }
            }
        }
        Event::CalibrationApplied(e) => dirty.dates(&e.person_id, [e.date]),
        Event::LeaveApproved(e) => dirty.around(
            &e.person_id,
            date_of(e.span.start) - Duration::days(1),
            date_of(e.span.end) + Duration::days(1),
        ),
        Event::BusinessTripApproved(e) => dirty.around(
            &e.person_id,
            date_of(e.span.start) - Duration::days(1),
            date_of(e.span.end) + Duration::days(1),
        ),
        Event::OutingApproved(e) => dirty.around(
            &e.person_id,
            date_of(e.span.start) - Duration::days(1),
            date_of(e.span.end) + Duration::days(1),
        ),
        Event::OvertimeApproved(e) => dirty.around(
            &e.person_id,
            date_of(e.span.start) - Duration::days(1),
            date_of(e.span.end) + Duration::days(1),
        ),
        Event::DeviceBound(e) => update_device(view, t, &e.sn, |d| {
            d.sn = Some(e.sn.clone());
            d.bound = true;
            d.name = e.name.clone();
            d.model = e.model.clone();
            d.zone = Some(e.zone.to_string());
            d.records_from = e.records_from;
            d.bound_at = Some(envelope.recorded_at);
            d.roster.clear();
            d.enrolled.clear();
        })?,
        Event::DeviceUnbound(e) => update_device(view, t, &e.sn, |d| {
            d.sn = Some(e.sn.clone());
            d.bound = false;
        })?,
        Event::DeviceRenamed(e) => update_device(view, t, &e.sn, |d| d.name = e.name.clone())?,
        Event::DeviceScopeSet(e) => update_device(view, t, &e.sn, |d| d.scope = Some(e.clone()))?,
        Event::RosterMemberPushed(e) => update_device(view, t, &e.sn, |d| {
            d.roster.insert(
                e.badge_number.clone(),
                RosterEntry {
                    person_id: Some(e.person_id.clone()),
                    name: e.name.clone(),
                    privilege: format!("{:?}", e.privilege).to_lowercase(),
                    disabled: false,
                },
            );
        })?,
        Event::RosterMemberRemoved(e) => update_device(view, t, &e.sn, |d| {
            d.roster.remove(&e.badge_number);
        })?,
        Event::RosterMemberDisabled(e) => update_device(view, t, &e.sn, |d| {
            if let Some(r) = d.roster.get_mut(&e.badge_number) {
                r.disabled = true;
            }
        })?,
        Event::DevicePrivilegeSet(e) => update_device(view, t, &e.sn, |d| {
            for r in d.roster.values_mut() {
                if r.person_id.as_ref() == Some(&e.person_id) {
                    r.privilege = format!("{:?}", e.privilege).to_lowercase();
                }
            }
        })?,
        Event::BiometricEnrolled(e) => update_device(view, t, &e.sn, |d| {
            d.enrolled
                .entry(e.badge_number.clone())
                .or_default()
                .insert(crate::views::biometric_label(&e.biometric));
        })?,
        Event::BiometricRemoved(e) => update_device(view, t, &e.sn, |d| {
            if let Some(set) = d.enrolled.get_mut(&e.badge_number) {
                set.remove(&crate::views::biometric_label(&e.biometric));
            }
        })?,
        Event::DeviceCommandQueued(e) => update_device(view, t, &e.sn, |d| {
            d.commands_pending.insert(e.command_id);
            d.commands_failed.remove(&e.command_id);
        })?,
        Event::DeviceCommandAcknowledged(e) => update_device(view, t, &e.sn, |d| {
            if d.commands_pending.remove(&e.command_id) {
                d.commands_acknowledged += 1;
            }
            d.commands_failed.remove(&e.command_id);
        })?,
        Event::DeviceCommandFailed(e) => update_device(view, t, &e.sn, |d| {
            d.commands_pending.remove(&e.command_id);
            d.commands_failed.insert(e.command_id);
        })?,
        Event::DeviceCommandExpired(e) => update_device(view, t, &e.sn, |d| {
            d.commands_pending.remove(&e.command_id);
            d.commands_failed.insert(e.command_id);
        })?,
        Event::DeviceCommandSuperseded(e) => update_device(view, t, &e.sn, |d| {
            d.commands_pending.remove(&e.command_id);
        })?,
        Event::DeviceStatusReported(e) => update_device(view, t, &e.sn, |d| {
            d.sn = Some(e.sn.clone());
            d.status = Some(e.clone());
            d.status_at = Some(envelope.recorded_at);
        })?,
        // Listed, not wildcarded: a new event kind must be considered here.
        Event::DeviceCommandDelivered(_)
        | Event::UnknownDeviceSeen(_)
        | Event::DeviceClaimed(_)
        | Event::DeviceReleased(_)
        | Event::DeviceUserReported(_)
        | Event::DeviceOperationLogged(_)
        | Event::DeviceRegistered(_)
        | Event::DeviceStampRecorded(_)
        | Event::DeviceUploadUnrecognised(_)
        | Event::MobilePunchRefused(_)
        | Event::MakeUpPunchRequested(_)
        | Event::MakeUpPunchRejected(_)
        | Event::ReuploadRequested(_)
        // Closing a month is folded by `Fold::absorb_into` around the fact.
        | Event::PeriodClosed(_) => {}
    }
    Ok(punches)
}

fn update_device<S: Read>(
    view: &mut Through<'_, S>,
    t: &TenantId,
    sn: &schemas::ids::DeviceSn,
    f: impl FnOnce(&mut DeviceRow),
) -> Result<(), StoreError> {
    let k = key::device(t, sn);
    let mut row: DeviceRow = match view.get(&k)? {
        Some(b) => decode(&b)?,
        None => DeviceRow {
            sn: Some(sn.clone()),
            ..DeviceRow::default()
        },
    };
    f(&mut row);
    view.put(k, encode(&row))?;
    Ok(())
}

fn write_person<S: Read>(
    view: &mut Through<'_, S>,
    book: &Book,
    t: &TenantId,
    p: &PersonId,
) -> Result<(), StoreError> {
    if let Some(info) = book.person(p) {
        view.put(key::person(t, p), encode(&info))?;
    }
    Ok(())
}

/// A department as the people view keeps it, and a row of `departments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DepartmentRow {
    pub department_id: DepartmentId,
    pub name: String,
    pub parent: Option<DepartmentId>,
}

fn write_department<S: Read>(
    view: &mut Through<'_, S>,
    book: &Book,
    t: &TenantId,
    d: &DepartmentId,
) -> Result<(), StoreError> {
    if let Some((name, parent)) = book.department(d) {
        let row = DepartmentRow {
            department_id: d.clone(),
            name: name.to_owned(),
            parent: parent.cloned(),
        };
        view.put(key::department(t, d), encode(&row))?;
    }
    Ok(())
}

/// Files a punch once (another receipt only counts), under its holder and its device,
/// and marks the days it can change.
#[allow(clippy::too_many_arguments)]
fn punch<S: Read>(
    view: &mut Through<'_, S>,
    book: &Book,
    t: &TenantId,
    sequence: u64,
    envelope: &Envelope,
    p: &Punch,
    dirty: &mut Dirty,
    devices: &mut DeviceDeltas,
) -> Result<(), StoreError> {
    let Some(holder) = Holder::of(p) else {
        return Ok(());
    };
    let k = key::punch(t, &holder, p.instant, &p.punch_id);
    let (entry, new) = match view.get(&k)? {
        Some(b) => {
            let mut e: RawEntry = decode(&b)?;
            e.received += 1;
            (e, false)
        }
        None => (
            RawEntry {
                punch: p.clone(),
                received: 1,
                first_sequence: sequence,
                event_id: envelope.event_id.to_string(),
                kind: envelope.event.kind().to_owned(),
                actor: actor_label(&envelope.actor),
                recorded_at: envelope.recorded_at,
            },
            true,
        ),
    };
    if new && let Some(sn) = &p.device_sn {
        // The device's index holds where the record is, not a second copy of it.
        view.put(
            key::device_punch(t, sn, p.local_time, &p.punch_id),
            k.clone(),
        )?;
        devices.of(t, sn).punches += 1;
    }
    view.put(k, encode(&entry))?;
    if new {
        let people = match &holder {
            Holder::Person(id) => vec![id.clone()],
            Holder::Badge(b) => book.badge_holders(b),
        };
        for person in people {
            let zone = book.zone_of(&person, p.local_time.date());
            let date = time::local(zone, p.instant).date();
            dirty.around(&person, date, date);
        }
    }
    Ok(())
}

/// A person's punches with instants in `[from, to)`, from every holder they had.
pub fn punches_of<S: Read>(
    view: &Through<'_, S>,
    book: &Book,
    t: &TenantId,
    person: &PersonId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RawEntry>, StoreError> {
    let mut out = Vec::new();
    for h in book.holders(person) {
        for (lo, hi) in key::punches(t, &h, from, to) {
            for (_, v) in view.range(&lo, &hi)? {
                let e: RawEntry = decode(&v)?;
                if e.punch.instant >= from
                    && e.punch.instant < to
                    && book.person_of(&e.punch) == Some(person)
                {
                    out.push(e);
                }
            }
        }
    }
    out.sort_by_key(|e| (e.punch.instant, e.punch.punch_id));
    Ok(out)
}

/// One person's days to judge in a batch.
struct PersonWork<'a> {
    person: &'a PersonId,
    from: Option<NaiveDate>,
    dates: BTreeSet<NaiveDate>,
    today: NaiveDate,
}

/// Judges each person's days. People are independent (each writes only their own day,
/// open-day and month keys), so they are dealt out round-robin to `threads.threads`
/// cores, each reading the batch's changes so far and writing its own, and the parts are
/// added back: the same changes as judging them one after another.
fn judge_people<S: Read>(
    view: &mut Through<'_, S>,
    book: &Book,
    t: &TenantId,
    work: Vec<PersonWork<'_>>,
    now: DateTime<Utc>,
    threads: Threads,
) -> Result<Folded, StoreError> {
    let mut folded = Folded::default();
    let n = threads.threads.max(1);
    if n == 1 || work.len() < threads.from_people.max(2) {
        for w in work {
            folded += judge_person(view, book, t, w.person, w.from, w.dates, w.today, now, None)?;
        }
        return Ok(folded);
    }
    let mut parts: Vec<Vec<PersonWork<'_>>> = (0..n).map(|_| Vec::new()).collect();
    for (i, w) in work.into_iter().enumerate() {
        parts[i % n].push(w);
    }
    let base: &Through<'_, S> = view;
    let results: Vec<Result<(Changes, Folded), StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    let mut mine = Through::new(base);
                    let mut folded = Folded::default();
                    for w in part {
                        folded += judge_person(
                            &mut mine, book, t, w.person, w.from, w.dates, w.today, now, None,
                        )?;
                    }
                    Ok((mine.into_changes(), folded))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    for r in results {
        let (changes, f) = r?;
        view.changes.extend(changes);
        folded += f;
    }
    Ok(folded)
}

/// Judges a person's dirty days (every date from `from`, and `dates`) up to `today`,
/// carrying late-out, late-in forward while it changes; rewrites their months.
#[allow(clippy::too_many_arguments)]
fn judge_person<S: Read>(
    view: &mut Through<'_, S>,
    book: &Book,
    t: &TenantId,
    person: &PersonId,
    from: Option<NaiveDate>,
    mut dates: BTreeSet<NaiveDate>,
    today: NaiveDate,
    now: DateTime<Utc>,
    ending: Option<Month>,
) -> Result<Folded, StoreError> {
    let mut folded = Folded::default();
    let first = book.first_day(person);
    // The days of a closed month (or of the one closing): all stored, begun or not,
    // and judged as ended.
    let closed =
        |d: NaiveDate| book.closed_period(d).is_some() || ending.is_some_and(|m| d <= m.last_day());
    // A day stored past `today` (a person whose today was told by another zone when it
    // was made, e.g. before a transfer) is judged again, not dropped: days are never
    // taken back.
    let mut today = today;
    // Days stored from `from` on, among them those that no longer should be (a later
    // first day): the months that hold any are the person's month rows.
    if let Some(from) = from {
        let (lo, hi) = key::months_from(t, person, from);
        for (k, _) in view.range(&lo, &hi)? {
            let Some(first_of) =
                key::parse_month(&k).and_then(|(y, m)| NaiveDate::from_ymd_opt(y, m, 1))
            else {
                continue;
            };
            for d in first_of
                .iter_days()
                .take_while(|d| d.month() == first_of.month())
            {
                if d >= from && view.get(&key::day(t, person, d))?.is_some() {
                    dates.insert(d);
                    // (A closed month's days are all stored, begun or not: they tell
                    // nothing of the person's today.)
                    if !closed(d) {
                        today = today.max(d);
                    }
                }
            }
        }
        if let Some(first) = first {
            let start = if from == ALL { first } else { from.max(first) };
            // A closed month has all its days, begun or not.
            let through = book
                .closed_periods()
                .map(|c| c.month)
                .chain(ending)
                .map(|m| m.last_day())
                .max()
                .map_or(today, |closed| closed.max(today));
            dates.extend(start.iter_days().take_while(|d| *d <= through));
        }
    }
    let beyond: Vec<NaiveDate> = dates.range(today + Duration::days(2)..).copied().collect();
    for d in beyond {
        if !closed(d) && view.get(&key::day(t, person, d))?.is_some() {
            today = today.max(d);
        }
    }
    dates.retain(|d| *d <= today + Duration::days(1) || closed(*d));
    if dates.is_empty() {
        return Ok(folded);
    }
    let lo_date = *dates.first().expect("not empty");
    let hi_date = *dates.last().expect("not empty");
    // One read of the person's punches over every dirty date's window.
    let zone = book.zone_of(person, lo_date);
    let window_lo = time::at(zone, lo_date - Duration::days(3), chrono::NaiveTime::MIN);
    let window_hi = time::at(zone, hi_date + Duration::days(4), chrono::NaiveTime::MIN);
    let mut entries = punches_of(view, book, t, person, window_lo, window_hi)?;
    let mut loaded = (window_lo, window_hi);

    // Per month touched: the totals of the days taken out and put in.
    let mut months: BTreeMap<(i32, u32), MonthDelta> = BTreeMap::new();
    let mut carried: HashMap<NaiveDate, Option<i64>> = HashMap::new();
    while let Some(date) = dates.pop_first() {
        let k = key::day(t, person, date);
        let old: Option<StoredDay> = view.get(&k)?.map(|b| decode(&b)).transpose()?;
        let begun = date <= today || closed(date);
        let new = if !begun || first.is_none_or(|f| date < f) {
            None
        } else {
            match book.punch_window(person, date) {
                None => None,
                Some(window) => {
                    if window.start < loaded.0 || window.end > loaded.1 {
                        let lo = window.start.min(loaded.0);
                        let hi = window.end.max(loaded.1);
                        entries = punches_of(view, book, t, person, lo, hi)?;
                        loaded = (lo, hi);
                    }
                    let a = entries.partition_point(|e| e.punch.instant < window.start);
                    let b = entries.partition_point(|e| e.punch.instant < window.end);
                    let punches: Vec<&Punch> = entries[a..b].iter().map(|e| &e.punch).collect();
                    let late_out = match carried.get(&(date - Duration::days(1))) {
                        Some(l) => *l,
                        None => view
                            .get(&key::day(t, person, date - Duration::days(1)))?
                            .map(|b| decode::<LateOut>(&b))
                            .transpose()?
                            .and_then(|d| d.late_out_s),
                    };
                    folded.judged += 1;
                    // A closed month's days are final: judged as ended whatever this
                    // worker's clock says, so what a later close carries of them does
                    // not depend on when it was folded.
                    let now = if closed(date) {
                        now.max(month_over(Month::of(date)))
                    } else {
                        now
                    };
                    match book.judge_day(person, date, &punches, late_out, Some(now)) {
                        DayOutcome::Judged {
                            department_id,
                            judged,
                        } => Some(StoredDay::of(department_id, &judged)),
                        DayOutcome::NotEmployed | DayOutcome::NoRule { .. } => None,
                    }
                }
            }
        };
        carried.insert(date, new.as_ref().and_then(|d| d.late_out_s));
        if new == old {
            continue;
        }
        folded.written += 1;
        if book.closed_period(date).is_some() {
            keep_closed(view, t, person, date, &old, &new)?;
        }
        let delta = months.entry((date.year(), date.month())).or_default();
        delta.out.extend(old.as_ref().map(|o| o.totals.clone()));
        delta.put.extend(new.as_ref().map(|n| n.totals.clone()));
        if let Some(c) = old.as_ref().and_then(|o| o.closes_at) {
            view.delete(key::open(t, c, person, date))?;
        }
        match &new {
            Some(n) => {
                if let Some(c) = n.closes_at {
                    view.put(key::open(t, c, person, date), Vec::new())?;
                }
                view.put(k, encode(n))?;
            }
            None => {
                view.delete(k)?;
            }
        }
        let late_old = old.as_ref().and_then(|o| o.late_out_s);
        let late_new = new.as_ref().and_then(|n| n.late_out_s);
        let next = date + Duration::days(1);
        if late_old != late_new && next <= today {
            dates.insert(next);
        }
    }
    for ((y, m), delta) in months {
        write_month(view, t, person, y, m, delta)?;
    }
    Ok(folded)
}

/// A day of a closed month is rewritten: its closed verdict is kept beside it while
/// they differ (or once a later close has carried it).
fn keep_closed<S: Read>(
    view: &mut Through<'_, S>,
    t: &TenantId,
    person: &PersonId,
    date: NaiveDate,
    old: &Option<StoredDay>,
    new: &Option<StoredDay>,
) -> Result<(), StoreError> {
    let k = key::closed_day(t, person, date);
    match view.get(&k)?.map(|b| decode::<ClosedDay>(&b)).transpose()? {
        None => {
            let closed = ClosedDay {
                closed: old.clone(),
                paid: None,
            };
            view.put(k, encode(&closed))?;
        }
        Some(c) if c.paid.is_none() && &c.closed == new => {
            view.delete(k)?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// When every owned span of a month's days has ended, in any zone (a night shift's
/// owns into the day after the next).
fn month_over(month: Month) -> DateTime<Utc> {
    time::at(
        chrono_tz::UTC,
        month.last_day() + Duration::days(3),
        chrono::NaiveTime::MIN,
    )
}

/// A month closes: every closed day of an earlier month that now differs from what
/// payroll has is carried into it as an adjustment, and payroll has it from then on.
fn carry_adjustments<S: Read>(
    view: &mut Through<'_, S>,
    t: &TenantId,
    month: &Month,
    sequence: u64,
) -> Result<(), StoreError> {
    let (lo, hi) = key::closed_days(t, None);
    for (k, bytes) in view.range(&lo, &hi)? {
        let Some((person, date)) = key::parse_closed_day(&k) else {
            continue;
        };
        if date >= month.first_day() {
            // Only earlier months' days are carried (a stream may hold closes out of
            // order, though the command refuses them).
            continue;
        }
        let mut closed: ClosedDay = decode(&bytes)?;
        let now: Option<StoredDay> = view
            .get(&key::day(t, &person, date))?
            .map(|b| decode(&b))
            .transpose()?;
        if closed.baseline() == &now {
            continue;
        }
        let adjustment = Adjustment {
            before: closed.baseline().clone(),
            after: now.clone(),
            sequence,
        };
        view.put(
            key::adjustment(t, &month.as_str(), &person, date),
            encode(&adjustment),
        )?;
        closed.paid = Some(now);
        view.put(k, encode(&closed))?;
    }
    Ok(())
}

/// Only a stored day's late-out (the rest skipped, not copied): `StoredDay`'s fields
/// in its order, as it is stored by position.
#[derive(Deserialize)]
struct LateOut {
    _department_id: serde::de::IgnoredAny,
    _summary: serde::de::IgnoredAny,
    late_out_s: Option<i64>,
    _closes_at: serde::de::IgnoredAny,
    _totals: serde::de::IgnoredAny,
    _report: serde::de::IgnoredAny,
}

/// What a month's re-judged days took out of it and put into it.
#[derive(Default)]
struct MonthDelta {
    out: Vec<crate::views::DayTotals>,
    put: Vec<crate::views::DayTotals>,
}

/// Rewrites a month row as the stored row less the days re-judged and plus what they
/// are now: the month's other days are not read.
fn write_month<S: Read>(
    view: &mut Through<'_, S>,
    t: &TenantId,
    person: &PersonId,
    year: i32,
    month: u32,
    delta: MonthDelta,
) -> Result<(), StoreError> {
    let k = key::month(t, person, year, month);
    let mut row: MonthRow = match view.get(&k)? {
        Some(bytes) => decode(&bytes)?,
        None => MonthRow {
            month: format!("{year:04}-{month:02}"),
            ..MonthRow::default()
        },
    };
    for totals in &delta.out {
        row.remove(totals);
    }
    for totals in &delta.put {
        row.add(totals);
    }
    if row.days == 0 {
        view.delete(k)?;
    } else {
        view.put(k, encode(&row))?;
    }
    Ok(())
}

/// The facts behind a day, for explanations.
pub fn origins(book: &Book, person: &PersonId, judged: &crate::judge::Judged) -> Vec<Origin> {
    book.origins_of(person, judged)
        .into_iter()
        .cloned()
        .collect()
}
