//! Device status from what devices say of themselves, over real HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use ledger::LedgerConfig;
use schemas::Event;
use schemas::events::DeviceStatusReported;

use crate::http::{acme, bind, events, harness_at};
use gateway::simulator::Device;

async fn statuses(ledger: &ledger::Ledger) -> Vec<(DateTime<Utc>, DeviceStatusReported)> {
    events(ledger, &acme())
        .await
        .into_iter()
        .filter_map(|r| match r.envelope.event {
            Event::DeviceStatusReported(s) => Some((r.envelope.recorded_at, s)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn status_is_recorded_when_it_changes_and_once_a_period_while_seen() {
    let start: DateTime<Utc> = "2026-11-21T08:00:00Z".parse().unwrap();
    let seconds = Arc::new(AtomicI64::new(start.timestamp()));
    let clock = {
        let seconds = seconds.clone();
        Arc::new(move || DateTime::from_timestamp(seconds.load(Ordering::SeqCst), 0).unwrap())
    };
    let h = harness_at(LedgerConfig::default(), clock).await;
    bind(&h.ledger, &acme(), "CQZ9", None).await;
    let device = Device::new(h.addr, "CQZ9");
    assert_eq!(device.handshake().await.unwrap().status, 200);
    let info = "/iclock/getrequest?SN=CQZ9&INFO=Ver%208.0.4.2-20191022,7,3,12345,192.168.1.201,10,7,12,3,111";
    for _ in 0..3 {
        device.request("GET", info, b"").await.unwrap();
    }
    let s = statuses(&h.ledger).await;
    assert_eq!(
        s.len(),
        2,
        "the handshake, then what INFO added; repeats add nothing"
    );
    assert_eq!(s[0].1.push_version.as_deref(), Some("2.4.1"));
    let latest = &s[1].1;
    assert_eq!(latest.firmware.as_deref(), Some("Ver 8.0.4.2-20191022"));
    assert_eq!(latest.push_version.as_deref(), Some("2.4.1"), "merged");
    assert_eq!(
        (latest.user_count, latest.record_count, latest.face_count),
        (Some(7), Some(12345), Some(3))
    );

    // Six minutes on: the same poll is a sign of life in a new period.
    seconds.fetch_add(6 * 60, Ordering::SeqCst);
    device.request("GET", info, b"").await.unwrap();
    device.request("GET", info, b"").await.unwrap();
    let s = statuses(&h.ledger).await;
    assert_eq!(s.len(), 3);
    assert_eq!(s[2].0, start + chrono::Duration::minutes(6));

    // An INFO reply with a new count is recorded at once.
    let reply =
        "ID=1&Return=0&CMD=INFO\n~DeviceName=MB10-VL\nUserCount=8\nTransactionCount=12346\n";
    device
        .request("POST", "/iclock/devicecmd?SN=CQZ9", reply.as_bytes())
        .await
        .unwrap();
    let s = statuses(&h.ledger).await;
    assert_eq!(s.len(), 4);
    assert_eq!(s[3].1.user_count, Some(8));
    assert_eq!(s[3].1.firmware.as_deref(), Some("Ver 8.0.4.2-20191022"));
}
