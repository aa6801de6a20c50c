//! A nats-server killed and restarted in the middle of a stream of appends loses and
//! doubles nothing: the client reconnects and unacknowledged appends go again with the
//! same ids, which JetStream de-duplicates.

use std::collections::HashSet;
use std::time::Duration;

use ledger::{Ledger, LedgerConfig};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_stream_loses_and_doubles_nothing() {
    let mut w = world_with(LedgerConfig {
        retry_for: Duration::from_secs(60),
        ..Default::default()
    })
    .await;
    let acme = tenant("acme");
    let all: Vec<_> = (0..20_000)
        .map(|i| punch(&acme, &format!("SN{}", i % 7), i))
        .collect();

    let writer = {
        let ledger: Ledger = w.ledger.clone();
        let all = all.clone();
        tokio::spawn(async move {
            let mut acked = 0;
            for chunk in all.chunks(500) {
                ledger
                    .append_many(chunk)
                    .await
                    .expect("append survives the restart");
                acked += chunk.len();
            }
            acked
        })
    };

    // Crash the server once some, but not all, batches are in.
    let stream = w.ledger.partitions().stream_of(&acme);
    loop {
        let mut s = w.ledger.jetstream().get_stream(&stream).await.unwrap();
        if s.info().await.unwrap().state.messages >= 3_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!writer.is_finished(), "the crash must land mid-stream");
    w.server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.server.restart().await.unwrap();

    assert_eq!(writer.await.unwrap(), all.len());
    let read = read_all(&w.ledger, &acme).await;
    let ids: HashSet<_> = read.iter().map(|r| r.envelope.event_id).collect();
    assert_eq!(ids.len(), read.len(), "an event was stored twice");
    assert_eq!(read.len(), all.len(), "an acknowledged event was lost");
    let expected: HashSet<_> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, expected);
}
