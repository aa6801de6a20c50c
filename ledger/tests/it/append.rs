use ledger::{Expected, LedgerError};
use schemas::Event;

use crate::*;

#[tokio::test]
async fn appended_events_read_back_in_order_and_unchanged() {
    let w = world().await;
    let acme = tenant("acme");
    let events: Vec<_> = (0..300).map(|i| punch(&acme, "SN1", i)).collect();
    let acks = w.ledger.append_many(&events).await.unwrap();
    assert_eq!(acks.len(), 300);
    assert!(
        acks.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "stream keeps batch order"
    );
    assert!(acks.iter().all(|a| !a.duplicate));

    let read = read_all(&w.ledger, &acme).await;
    let back: Vec<_> = read.iter().map(|r| r.envelope.clone()).collect();
    assert_eq!(back, events);
    assert_eq!(
        read[0].subject,
        format!("lc.ev.p{}.acme.punch.SN1", w.ledger.partitions().of(&acme))
    );
}

#[tokio::test]
async fn the_same_event_id_twice_is_one_message() {
    let w = world().await;
    let acme = tenant("acme");
    let event = punch(&acme, "SN1", 7);
    let first = w.ledger.append(&event, Expected::Any).await.unwrap();
    let second = w.ledger.append(&event, Expected::Any).await.unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.sequence, second.sequence);

    // And inside one pipelined batch.
    let again: Vec<_> = (0..3)
        .map(|_| event.clone())
        .chain([punch(&acme, "SN1", 8)])
        .collect();
    let acks = w.ledger.append_many(&again).await.unwrap();
    assert!(
        acks[..3]
            .iter()
            .all(|a| a.duplicate && a.sequence == first.sequence)
    );
    assert_eq!(read_all(&w.ledger, &acme).await.len(), 2);
}

#[tokio::test]
async fn a_wrong_expected_sequence_is_a_conflict_and_appends_nothing() {
    let w = world().await;
    let acme = tenant("acme");
    let bound = device_bound(&acme, "SN1");
    let aggregate = bound.event.aggregate();
    assert_eq!(w.ledger.last_sequence(&acme, &aggregate).await.unwrap(), 0);

    let first = w.ledger.append(&bound, Expected::Empty).await.unwrap();
    assert_eq!(
        w.ledger.last_sequence(&acme, &aggregate).await.unwrap(),
        first.sequence
    );

    // A second writer that decided on the empty aggregate loses.
    let rival = device_bound(&acme, "SN1");
    let err = w.ledger.append(&rival, Expected::Empty).await.unwrap_err();
    assert!(
        matches!(err, LedgerError::Conflict { expected: 0, .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 75);

    // Stale sequence: conflict. Current sequence: accepted.
    let stale = w
        .ledger
        .append(
            &device_bound(&acme, "SN1"),
            Expected::LastSequence(first.sequence + 5),
        )
        .await;
    assert!(matches!(stale, Err(LedgerError::Conflict { .. })));
    let ok = w
        .ledger
        .append(
            &device_bound(&acme, "SN1"),
            Expected::LastSequence(first.sequence),
        )
        .await
        .unwrap();

    let read = read_all(&w.ledger, &acme).await;
    assert_eq!(read.len(), 2, "conflicting appends stored nothing");
    assert_eq!(read[1].sequence, ok.sequence);
    assert!(
        read.iter()
            .all(|r| matches!(r.envelope.event, Event::DeviceBound(_)))
    );
}

#[tokio::test]
async fn expectations_are_per_aggregate_not_per_stream() {
    let w = world().await;
    let acme = tenant("acme");
    let a = w
        .ledger
        .append(&device_bound(&acme, "A"), Expected::Empty)
        .await
        .unwrap();
    // Another aggregate's appends do not move A's last sequence.
    w.ledger
        .append_many(&(0..10).map(|i| punch(&acme, "A", i)).collect::<Vec<_>>())
        .await
        .unwrap();
    w.ledger
        .append(&device_bound(&acme, "B"), Expected::Empty)
        .await
        .unwrap();
    w.ledger
        .append(
            &device_bound(&acme, "A"),
            Expected::LastSequence(a.sequence),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_conflict_inside_a_batch_is_reported_with_its_subject() {
    let w = world().await;
    let acme = tenant("acme");
    w.ledger
        .append(&device_bound(&acme, "SN9"), Expected::Any)
        .await
        .unwrap();
    let p = punch(&acme, "SN9", 1);
    let d = device_bound(&acme, "SN9");
    let err = w
        .ledger
        .append_expecting(&[(&p, Expected::Any), (&d, Expected::Empty)])
        .await
        .unwrap_err();
    match err {
        LedgerError::Conflict { subject, expected } => {
            assert!(subject.ends_with(".acme.device.SN9"), "{subject}");
            assert_eq!(expected, 0);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn tenants_do_not_see_each_other() {
    let w = world().await;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    w.ledger
        .append_many(&[
            punch(&acme, "S", 1),
            punch(&globex, "S", 1),
            punch(&acme, "S", 2),
        ])
        .await
        .unwrap();
    let a = read_all(&w.ledger, &acme).await;
    let g = read_all(&w.ledger, &globex).await;
    assert_eq!(a.len(), 2);
    assert_eq!(g.len(), 1);
    assert!(a.iter().all(|r| r.envelope.tenant == acme));
    assert!(g.iter().all(|r| r.envelope.tenant == globex));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_sharing_ack_slots_do_not_deadlock() {
    // Regression: two append_many calls on clones of one Ledger each held ack slots
    // while waiting for the other's, forever.
    let w = world().await;
    let acme = tenant("acme");
    let batch = |sn: &str| (0..8_000).map(|i| punch(&acme, sn, i)).collect::<Vec<_>>();
    let (a, b) = (batch("A"), batch("B"));
    let (la, lb) = (w.ledger.clone(), w.ledger.clone());
    let both = async move { tokio::join!(la.append_many(&a), lb.append_many(&b)) };
    // A liveness bound, not a speed target: a deadlock fails here instead of hanging CI.
    let (ra, rb) = tokio::time::timeout(std::time::Duration::from_secs(120), both)
        .await
        .expect("appenders deadlocked");
    assert_eq!(ra.unwrap().len() + rb.unwrap().len(), 16_000);
    assert_eq!(read_all(&w.ledger, &acme).await.len(), 16_000);
}

#[tokio::test]
async fn a_retried_append_with_an_expectation_is_a_duplicate_not_a_conflict() {
    // Regression: the server checks the expected sequence before de-duplication, so a
    // retry after a lost ack said Conflict for an event that was stored.
    let w = world().await;
    let acme = tenant("acme");
    let bound = device_bound(&acme, "SN1");
    let first = w.ledger.append(&bound, Expected::Empty).await.unwrap();
    let retry = w.ledger.append(&bound, Expected::Empty).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.sequence, first.sequence);
    assert_eq!(read_all(&w.ledger, &acme).await.len(), 1);
}

#[tokio::test]
async fn a_conflict_in_a_batch_stores_what_came_before_it_and_nothing_after() {
    let w = world().await;
    let acme = tenant("acme");
    w.ledger
        .append(&device_bound(&acme, "SN1"), Expected::Any)
        .await
        .unwrap();
    let (p1, rival, p2) = (
        punch(&acme, "SN1", 1),
        device_bound(&acme, "SN1"),
        punch(&acme, "SN1", 2),
    );
    let err = w
        .ledger
        .append_expecting(&[
            (&p1, Expected::Any),
            (&rival, Expected::Empty),
            (&p2, Expected::Any),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Conflict { .. }));
    let ids: Vec<_> = read_all(&w.ledger, &acme)
        .await
        .iter()
        .map(|r| r.envelope.event_id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        ids[1], p1.event_id,
        "the event before the conflict is stored"
    );
    assert!(
        !ids.contains(&p2.event_id),
        "nothing after the conflict is sent"
    );
}

/// An atomic append stores its events together or not at all: a stale expectation, or
/// a batch repeating an event already stored, stores none of them.
#[tokio::test]
async fn an_atomic_append_stores_all_of_its_events_or_none() {
    let w = world().await;
    let acme = tenant("acme");
    let first = w
        .ledger
        .append(&punch(&acme, "SN1", 0), Expected::Any)
        .await
        .unwrap();
    let batch: Vec<_> = (1..4).map(|i| punch(&acme, &format!("SN{i}"), i)).collect();
    let kind = schemas::AggregateKind::Punches;
    let stale = w
        .ledger
        .append_atomic(&batch, Expected::LastOfKind(kind, 0))
        .await
        .unwrap_err();
    assert!(matches!(stale, LedgerError::Conflict { .. }), "{stale}");
    assert_eq!(
        read_all(&w.ledger, &acme).await.len(),
        1,
        "none of a refused batch"
    );

    let stored = w
        .ledger
        .append_atomic(&batch, Expected::LastOfKind(kind, first.sequence))
        .await
        .unwrap();
    let seqs: Vec<u64> = stored.iter().map(|a| a.sequence).collect();
    assert_eq!(
        seqs,
        [first.sequence + 1, first.sequence + 2, first.sequence + 3]
    );
    let read = read_all(&w.ledger, &acme).await;
    assert_eq!(read.len(), 4);
    assert_eq!(
        read[1..]
            .iter()
            .map(|r| r.envelope.clone())
            .collect::<Vec<_>>(),
        batch
    );

    // The same batch again: its ids are stored, so it is refused whole.
    let again = w
        .ledger
        .append_atomic(&batch, Expected::LastOfKind(kind, first.sequence + 3))
        .await
        .unwrap_err();
    assert!(matches!(again, LedgerError::Conflict { .. }), "{again}");
    assert_eq!(read_all(&w.ledger, &acme).await.len(), 4);
}
