//! A hostile client on the same network, against a gateway held to small, configurable
//! limits: idle and slow connections, oversized bodies, a ledger that goes away. The
//! same against a real process with a lowered descriptor limit is in the binary's tests;
//! the 20,000-connection figures are `attendance bench abuse`'s.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gateway::simulator::Device;
use ledger::LedgerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{acme, bind, harness, harness_with};

fn small_limits() -> gateway::http::Limits {
    gateway::http::Limits {
        max_connections: 32,
        head_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(400),
        body_idle_timeout: Duration::from_secs(2),
        ..gateway::http::Limits::default()
    }
}

fn line(badge: &str) -> String {
    let at = Utc::now()
        .with_timezone(&chrono_tz::Asia::Manila)
        .format("%Y-%m-%d %H:%M:%S");
    format!("{badge}\t{at}\t0\t1\t0\t0")
}

async fn health(addr: std::net::SocketAddr) -> (u16, serde_json::Value) {
    let answer = Device::new(addr, "-")
        .request("GET", "/health", b"")
        .await
        .unwrap();
    (answer.status, serde_json::from_str(&answer.body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_do_not_keep_devices_out() {
    // Regression: 19,995 idle half-open connections used every descriptor and the
    // gateway stopped answering.
    let h = harness_with(LedgerConfig::default(), Arc::new(Utc::now), small_limits()).await;
    bind(&h.ledger, &acme(), "CQZIDLE", None).await;
    let mut held = Vec::new();
    for i in 0..300 {
        let Ok(mut stream) = TcpStream::connect(h.addr).await else {
            continue;
        };
        if i % 3 == 0 {
            // Slow loris: a head that never ends.
            let _ = stream.write_all(b"GET /iclock/cdata?SN=").await;
        }
        held.push(stream);
    }
    let device = Device::new(h.addr, "CQZIDLE");
    let body = format!("{}\n", line("1"));
    // Refused while every slot is young, a device tries again a moment later, as
    // firmware does.
    let mut answer = None;
    for _ in 0..20 {
        match device.push_raw(body.as_bytes()).await {
            Ok(a) if a.status == 200 => {
                answer = Some(a.body);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
    assert_eq!(answer.as_deref(), Some("OK: 1\n"));
    let (status, health) = health(h.addr).await;
    assert_eq!(status, 200);
    let connections = &health["connections"];
    let open = connections["open"].as_u64().unwrap();
    assert!(open <= 33, "the gateway holds at most its limit: {health}");
    let turned_away =
        connections["shed"].as_u64().unwrap() + connections["refused"].as_u64().unwrap();
    assert!(turned_away >= 260, "{health}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_from_an_unknown_device_is_refused_before_it_is_read() {
    // Regression: eight 60 MB bodies from an unknown SN were buffered whole (398 MB).
    let h = harness_with(LedgerConfig::default(), Arc::new(Utc::now), small_limits()).await;
    let sixty_mb = 60 * 1024 * 1024;
    let mut sends = Vec::new();
    for _ in 0..8 {
        let addr = h.addr;
        sends.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /iclock/cdata?SN=INTRUDER1&table=ATTLOG HTTP/1.1\r\nHost: x\r\nContent-Length: {sixty_mb}\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![b'1'; 64 * 1024];
            let mut written = 0usize;
            while written < sixty_mb {
                match stream.write_all(&chunk).await {
                    Ok(()) => written += chunk.len(),
                    Err(_) => break,
                }
            }
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            (written, String::from_utf8_lossy(&answer).into_owned())
        }));
    }
    for send in sends {
        let (written, answer) = send.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(
            written < sixty_mb,
            "the gateway stopped reading: {written} bytes taken"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ping_and_uploads_say_unavailable_while_nats_is_down() {
    // Regression: `/iclock/ping` answered 200 while every upload got 503.
    let mut h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZDOWN", None).await;
    let device = Device::new(h.addr, "CQZDOWN");
    assert_eq!(health(h.addr).await.0, 200);
    let ping = device
        .request("GET", "/iclock/ping?SN=CQZDOWN", b"")
        .await
        .unwrap();
    assert_eq!((ping.status, ping.body.as_str()), (200, "OK\n"));

    h.server.kill();
    let mut down = None;
    for _ in 0..200 {
        let (status, body) = health(h.addr).await;
        if status == 503 {
            down = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let down = down.expect("health turns unhealthy");
    assert_eq!(down["status"], "unhealthy");
    let ping = device
        .request("GET", "/iclock/ping?SN=CQZDOWN", b"")
        .await
        .unwrap();
    assert_eq!(ping.status, 503);
    let body = format!("{}\n", line("1"));
    let upload = device.push_raw(body.as_bytes()).await.unwrap();
    assert_eq!(
        upload.status, 503,
        "not stored, so not OK: the device keeps it"
    );

    h.server.restart().await.unwrap();
    let mut answer = None;
    for _ in 0..200 {
        let upload = device.push_raw(body.as_bytes()).await.unwrap();
        if upload.status == 200 {
            answer = Some(upload.body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer.as_deref(), Some("OK: 1\n"));
    assert_eq!(health(h.addr).await.0, 200);
}
