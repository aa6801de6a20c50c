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
