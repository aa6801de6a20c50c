use futures::StreamExt;
use ledger::ReadFrom;
use schemas::AggregateKind;

use crate::*;

#[tokio::test]
async fn reading_an_empty_tenant_ends_at_once() {
    let w = world().await;
    assert!(read_all(&w.ledger, &tenant("nobody")).await.is_empty());
}

#[tokio::test]
async fn reading_from_a_checkpoint_gives_only_what_follows() {
    let w = world().await;
    let acme = tenant("acme");
    let acks = w
        .ledger
        .append_many(&(0..20).map(|i| punch(&acme, "SN1", i)).collect::<Vec<_>>())
        .await
        .unwrap();
    let checkpoint = acks[9].sequence;
    let rest: Vec<_> = w
        .ledger
        .read(&acme, ReadFrom::after(checkpoint))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(rest.len(), 10);
    assert_eq!(rest[0].as_ref().unwrap().sequence, acks[10].sequence);
}

#[tokio::test]
async fn a_kind_filter_reads_only_that_kind() {
    let w = world().await;
    let acme = tenant("acme");
    w.ledger
        .append_many(&[
            device_bound(&acme, "SN1"),
            punch(&acme, "SN1", 1),
            punch(&acme, "SN1", 2),
        ])
        .await
        .unwrap();
    let from = ReadFrom {
        sequence: 1,
        filters: vec![
            w.ledger
                .partitions()
                .kind_filter(&acme, AggregateKind::Punches),
        ],
    };
    let punches: Vec<_> = w.ledger.read(&acme, from).await.unwrap().collect().await;
    assert_eq!(punches.len(), 2);
}

#[tokio::test]
async fn several_filters_read_their_union_in_stream_order() {
    let w = world().await;
    let acme = tenant("acme");
    w.ledger
        .append_many(&[
            punch(&acme, "SN1", 1),
            device_bound(&acme, "SN1"),
            punch(&acme, "SN2", 2),
        ])
        .await
        .unwrap();
    let p = w.ledger.partitions();
    let only = |kinds: &[AggregateKind]| {
        ReadFrom::any_of(kinds.iter().map(|k| p.kind_filter(&acme, *k)).collect())
    };
    let kinds = |from: ReadFrom| {
        let ledger = w.ledger.clone();
        let acme = acme.clone();
        async move {
            ledger
                .read(&acme, from)
                .await
                .unwrap()
                .map(|r| r.unwrap().envelope.event.kind())
                .collect::<Vec<_>>()
                .await
        }
    };
    assert_eq!(
        kinds(only(&[AggregateKind::Punches, AggregateKind::Device])).await,
        ["PunchRecorded", "DeviceBound", "PunchRecorded"]
    );
    assert_eq!(
        kinds(only(&[AggregateKind::Device, AggregateKind::Rule])).await,
        ["DeviceBound"]
    );
}

#[tokio::test]
async fn tail_delivers_what_is_appended_after_it_started() {
    let w = world().await;
    let acme = tenant("acme");
    w.ledger
        .append(&punch(&acme, "SN1", 0), ledger::Expected::Any)
        .await
        .unwrap();
    let mut live = w.ledger.tail(&acme, ReadFrom::start()).await.unwrap();
    let first = live.next().await.unwrap().unwrap();
    assert_eq!(first.sequence, 1);

    let later = punch(&acme, "SN1", 1);
    let ack = w
        .ledger
        .append(&later, ledger::Expected::Any)
        .await
        .unwrap();
    let next = live.next().await.unwrap().unwrap();
    assert_eq!(next.sequence, ack.sequence);
    assert_eq!(next.envelope, later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ends_at_what_was_stored_when_it_was_called_while_writers_go_on() {
    // Regression: read stopped only when nothing was pending, so a writer that stayed
    // ahead kept it going, and it returned events stored after the call.
    let w = world().await;
    let acme = tenant("acme");
    w.ledger
        .append_many(
            &(0..2_000)
                .map(|i| punch(&acme, "SN1", i))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let writer = {
        let ledger = w.ledger.clone();
        let acme = acme.clone();
        tokio::spawn(async move {
            for chunk in 0..40u32 {
                let events: Vec<_> = (0..500)
                    .map(|i| punch(&acme, "SN2", chunk * 500 + i))
                    .collect();
                ledger.append_many(&events).await.unwrap();
            }
        })
    };
    let stream = w.ledger.partitions().stream_of(&acme);
    let last_before = w
        .ledger
        .jetstream()
        .get_stream(&stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    let events: Vec<_> = w
        .ledger
        .read(&acme, ReadFrom::start())
        .await
        .unwrap()
        .collect()
        .await;
    let last_after = w
        .ledger
        .jetstream()
        .get_stream(&stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    assert!(events.len() as u64 >= last_before.min(2_000));
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e.as_ref().unwrap().sequence)
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] + 1 == w[1]),
        "in order, none skipped"
    );
    assert!(*sequences.last().unwrap() <= last_after);
    writer.await.unwrap();
    let total = read_all(&w.ledger, &acme).await.len();
    assert_eq!(total, 22_000);
    assert!(
        events.len() < total,
        "read did not wait for the writer to finish"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_reads_in_a_burst_leave_no_consumer_behind() {
    // Regression: every read opened an ordered consumer that lingered for 30 s; a stream
    // holds at most 1,000, so a burst of small reads (device polls, phone punches,
    // `person update`) made every later read fail until they expired.
    let w = world().await;
    let acme = tenant("acme");
    w.ledger
        .append_many(&(0..30).map(|i| punch(&acme, "SN1", i)).collect::<Vec<_>>())
        .await
        .unwrap();
    let filter = w
        .ledger
        .partitions()
        .kind_filter(&acme, AggregateKind::Punches);
    let counts: Vec<usize> = futures::stream::iter(0..5_000)
        .map(|i| {
            let ledger = w.ledger.clone();
            let acme = acme.clone();
            let from = if i % 2 == 0 {
                ReadFrom::start()
            } else {
                ReadFrom::only(filter.clone())
            };
            async move {
                let events: Vec<_> = ledger.read(&acme, from).await.unwrap().collect().await;
                events.into_iter().map(Result::unwrap).count()
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    assert_eq!(counts.len(), 5_000);
    assert!(
        counts.iter().all(|&n| n == 30),
        "every read saw every event"
    );
    let stream = w.ledger.partitions().stream_of(&acme);
    let mut stream = w.ledger.jetstream().get_stream(&stream).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.consumer_count, 0);
}

#[tokio::test]
async fn a_read_dropped_half_way_and_a_read_past_the_end_are_fine() {
    let w = world().await;
    let acme = tenant("acme");
    w.ledger
        .append_many(
            &(0..3_000)
                .map(|i| punch(&acme, "SN1", i))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let mut events = w.ledger.read(&acme, ReadFrom::start()).await.unwrap();
    for _ in 0..1_500 {
        events.next().await.unwrap().unwrap();
    }
    drop(events);
    let after: Vec<_> = w
        .ledger
        .read(&acme, ReadFrom::after(10_000))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(after.is_empty());
    assert_eq!(
        read_all(&w.ledger, &acme).await.len(),
        3_000,
        "batches join up"
    );
}
