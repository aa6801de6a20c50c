//! `as_of` and `diff`: the report as it stood at a past time, and what changed between
//! two times, answered by replay on demand, bounded to the people asked for.
//!
//! A past report is the events *recorded* by then, judged as the clock stood then. The
//! replay reads the tenant's fact subjects (organisation, rules, schedules, approvals,
//! calibrations), then only the punches filed under the asked people's badge numbers and
//! ids, by direct gets (nothing is left on the server). Its cost is in the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use ledger::{Ledger, ReadFrom};
use schemas::ids::{PersonId, TenantId};
use schemas::{AggregateKind, Envelope, Event};

use crate::book::{Book, DailyQuery, Holder};
use crate::query::{
    AsOfAnswer, DiffAnswer, DiffChange, DiffRow, MAX_DAYS, NamedEvent, QueryError, ReplayCost, Row,
    page, replayed_row, typed,
};
use crate::worker::{AsOfRequest, DiffRequest};

/// People an `as_of` or `diff` may name.
pub const MAX_PEOPLE: usize = 50;

fn ledger_error(e: ledger::LedgerError) -> QueryError {
    QueryError::Rebuilding(format!("the stream cannot be read now ({e}); retry in 2 s"))
}

/// The books as of each time in `at` (ascending), for `people`.
async fn books(
    ledger: &Ledger,
    tenant: &TenantId,
    people: &[PersonId],
    at: &[DateTime<Utc>],
) -> Result<(Vec<Book>, Vec<(u64, Envelope)>, u64), QueryError> {
    let p = ledger.partitions();
    let facts: Vec<String> = AggregateKind::ALL
        .into_iter()
        .filter(|k| k.holds_facts())
        .map(|k| p.kind_filter(tenant, k))
        .collect();
    let mut books: Vec<Book> = at.iter().map(|_| Book::new()).collect();
    let mut seen: Vec<(u64, Envelope)> = Vec::new();
    let mut read = 0u64;
    let mut events = ledger
        .read(tenant, ReadFrom::any_of(facts))
        .await
        .map_err(ledger_error)?;
    while let Some(r) = events.next().await {
        let r = r.map_err(ledger_error)?;
        read += 1;
        for (book, t) in books.iter_mut().zip(at) {
            if r.envelope.recorded_at <= *t {
                book.apply(r.sequence, &r.envelope);
            }
        }
        seen.push((r.sequence, r.envelope));
    }
    drop(events);
    let last = books.last().expect("at least one time");
    for person in people {
        if last.person(person).is_none() {
            return Err(QueryError::UnknownPerson(person.clone()));
        }
    }
    let holders: BTreeSet<Holder> = people.iter().flat_map(|p| last.holders(p)).collect();
    let mut events = ledger
        .read(
            tenant,
            ReadFrom::only(p.kind_filter(tenant, AggregateKind::Punches)),
        )
        .await
        .map_err(ledger_error)?;
    while let Some(r) = events.next().await {
        let r = r.map_err(ledger_error)?;
        read += 1;
        let mut envelope = r.envelope;
        if let Event::PunchesRecorded(e) = &mut envelope.event {
            e.punches
                .retain(|p| Holder::of(p).is_some_and(|h| holders.contains(&h)));
            if e.punches.is_empty() {
                continue;
            }
        }
        if let Event::PunchRecorded(e) = &envelope.event
            && !Holder::of(&e.punch).is_some_and(|h| holders.contains(&h))
        {
            continue;
        }
        for (book, t) in books.iter_mut().zip(at) {
            if envelope.recorded_at <= *t {
                book.apply(r.sequence, &envelope);
            }
        }
        seen.push((r.sequence, envelope));
    }
    seen.sort_by_key(|(s, _)| *s);
    Ok((books, seen, read))
}

fn rows(
    book: &Book,
    people: &[PersonId],
    from: NaiveDate,
    to: NaiveDate,
    at: DateTime<Utc>,
) -> BTreeMap<(PersonId, NaiveDate), Row> {
    book.daily(&DailyQuery {
        people: people.to_vec(),
        from: Some(from),
        to: Some(to),
        now: Some(at),
        ..DailyQuery::default()
    })
    .into_iter()
    .map(|r| ((r.person_id.clone(), r.day.date), replayed_row(book, r)))
    .collect()
}

fn check(people: &[PersonId], from: NaiveDate, to: NaiveDate) -> Result<(), QueryError> {
    if people.is_empty() || people.len() > MAX_PEOPLE {
        return Err(QueryError::BadRequest(format!(
            "name 1 to {MAX_PEOPLE} people: as-of and diff replay their history"
        )));
    }
    if to < from || (to - from).num_days() >= MAX_DAYS {
        return Err(QueryError::BadRequest(format!(
            "dates {from}..{to}: at most {MAX_DAYS} days, in order"
        )));
    }
    Ok(())
}

pub async fn answer(
    ledger: &Ledger,
    tenant: &TenantId,
    name: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Bytes, QueryError> {
    let started = Instant::now();
    let bad = |e: serde_json::Error| QueryError::BadRequest(e.to_string());
    let cost = |read: u64| ReplayCost {
        events_read: read,
        millis: started.elapsed().as_millis() as u64,
    };
    let answer = match name {
        "as_of" => {
            let q: AsOfRequest = serde_json::from_slice(body).map_err(bad)?;
            let to = q.to.unwrap_or(q.from);
            check(&q.people, q.from, to)?;
            let (books, _, read) = books(ledger, tenant, &q.people, &[q.at]).await?;
            let rows = rows(&books[0], &q.people, q.from, to, q.at);
            let (rows, next_offset) = page(rows.into_values().collect(), q.offset);
            serde_json::to_vec(&AsOfAnswer {
                tenant: tenant.clone(),
                at: q.at,
                rows,
                next_offset,
                cost: cost(read),
            })
        }
        "diff" => {
            let q: DiffRequest = serde_json::from_slice(body).map_err(bad)?;
            let until = q.until.unwrap_or(now);
            if until < q.since {
                return Err(QueryError::BadRequest("until is before since".into()));
            }
            let to = q.to.unwrap_or(q.from);
            check(&q.people, q.from, to)?;
            let (books, seen, read) = books(ledger, tenant, &q.people, &[q.since, until]).await?;
            let mut before = rows(&books[0], &q.people, q.from, to, q.since);
            let mut after = rows(&books[1], &q.people, q.from, to, until);
            let keys: BTreeSet<(PersonId, NaiveDate)> =
                before.keys().chain(after.keys()).cloned().collect();
            let mut out = Vec::new();
            for k in keys {
                let (b, a) = (before.remove(&k), after.remove(&k));
                if b.as_ref().map(|r| r.get()) != a.as_ref().map(|r| r.get()) {
                    out.push(typed(&DiffRow::Changed(DiffChange {
                        person_id: k.0,
                        date: k.1,
                        before: b,
                        after: a,
                    })));
                }
            }
            out.extend(
                seen.iter()
                    .filter(|(_, e)| q.since < e.recorded_at && e.recorded_at <= until)
                    .map(|(s, e)| {
                        typed(&DiffRow::Event(NamedEvent {
                            sequence: *s,
                            event_id: e.event_id.to_string(),
                            kind: e.event.kind().to_string(),
                            actor: crate::book::Origin::of(*s, e).actor,
                            recorded_at: e.recorded_at,
                            fact: None,
                            received: None,
                        }))
                    }),
            );
            let (rows, next_offset) = page(out, q.offset);
            serde_json::to_vec(&DiffAnswer {
                tenant: tenant.clone(),
                since: q.since,
                until,
                rows,
                next_offset,
                cost: cost(read),
            })
        }
        other => return Err(QueryError::BadRequest(format!("no query {other:?}"))),
    };
    Ok(Bytes::from(answer.expect("an answer is JSON")))
}
