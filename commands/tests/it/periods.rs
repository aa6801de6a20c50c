//! Closing months for payroll through `execute`, against a real nats-server: in order,
//! once, only after they have ended; every refusal leaves the stream as it was.

use chrono::{DateTime, Utc};
use commands::periods::{PeriodCommand, closable_from};
use commands::{CommandError, Outcome, Rejection};
use schemas::Event;
use schemas::ids::Month;

use crate::*;

fn close(month: &str, note: Option<&str>) -> PeriodCommand {
    PeriodCommand::Close {
        month: Month::parse(month).unwrap(),
        note: note.map(str::to_owned),
    }
}

async fn at(
    w: &World,
    id: &str,
    c: PeriodCommand,
    now: DateTime<Utc>,
) -> Result<Outcome, CommandError> {
    let request = commands::Request {
        tenant: tenant(),
        actor: schemas::Actor::User {
            user_id: "hr-wang".into(),
        },
        command_id: id.into(),
        command: c,
    };
    commands::execute(&w.ledger, &request, now).await
}

fn refused(r: Result<Outcome, CommandError>) -> Rejection {
    match r {
        Err(CommandError::Refused(why)) => why,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn months_close_in_order_once_after_they_end() {
    let w = world().await;
    let november = closable_from(Month::parse("2026-11").unwrap());
    assert_eq!(november.to_rfc3339(), "2026-12-02T12:00:00+00:00");

    // Given nothing closed, when November is closed a minute before it may be: refused.
    let early = refused(
        at(
            &w,
            "c0",
            close("2026-11", None),
            november - chrono::Duration::minutes(1),
        )
        .await,
    );
    assert!(
        matches!(&early, Rejection::Invalid(r) if r.contains("2026-12-02 12:00")),
        "{early:?}"
    );
    assert!(stream(&w).await.is_empty(), "a refusal stores nothing");

    // When it is closed on time, with a note: one PeriodClosed, the note trimmed.
    let closed = at(
        &w,
        "c1",
        close("2026-11", Some(" payroll run 1 ")),
        november,
    )
    .await
    .unwrap();
    assert!(matches!(closed, Outcome::Applied(ref e) if e.len() == 1));
    let events = stream(&w).await;
    assert_eq!(events.len(), 1);
    match &events[0].1.event {
        Event::PeriodClosed(e) => {
            assert_eq!(e.month.as_str(), "2026-11");
            assert_eq!(e.note.as_deref(), Some("payroll run 1"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events[0].1.command_id.as_ref().map(|c| c.as_str()),
        Some("c1")
    );

    // The same command again (a retry): already done, nothing new.
    let again = at(&w, "c1", close("2026-11", Some(" payroll run 1 ")), now())
        .await
        .unwrap();
    assert!(matches!(again, Outcome::AlreadyDone(_)), "{again:?}");

    let later = closable_from(Month::parse("2027-01").unwrap());
    let refusals = [
        // November again, under a new command id: not reopened, not closed twice.
        ("c2", close("2026-11", None), now(), "closed already"),
        // October, before a closed month.
        ("c3", close("2026-10", None), now(), "months close in order"),
        // January, with December still open.
        (
            "c4",
            close("2027-01", None),
            later,
            "the next month to close is 2026-12",
        ),
        // December, while it runs.
        ("c5", close("2026-12", None), now(), "has not ended"),
        // A note longer than 500 characters.
        (
            "c6",
            close("2026-12", Some(&"月".repeat(501))),
            later,
            "at most 500",
        ),
    ];
    for (id, command, clock, why) in refusals {
        let r = refused(at(&w, id, command, clock).await);
        let text = match &r {
            Rejection::Invalid(t) | Rejection::Conflict(t) => t.clone(),
            other => format!("{other:?}"),
        };
        assert!(text.contains(why), "{id}: {text}");
    }
    assert_eq!(stream(&w).await.len(), 1, "refusals store nothing");

    // December, once it has ended: the second close.
    at(&w, "c7", close("2026-12", Some(&"月".repeat(500))), later)
        .await
        .unwrap();
    let months: Vec<String> = stream(&w)
        .await
        .iter()
        .filter_map(|(_, e)| match &e.event {
            Event::PeriodClosed(c) => Some(c.month.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(months, ["2026-11", "2026-12"]);
}
