//! Attendance PUSH as real firmware speaks it, over real HTTP into a real nats-server:
//! every way a device heard OK while its records vanished, the framing firmware gets
//! wrong, cursors, zones, the tables and commands users rely on. Each test is named
//! after what broke.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use gateway::simulator::{Device, Firmware, Variant};
use ledger::LedgerConfig;
use schemas::Event;
use schemas::events::{DeviceCommand, RejectionReason};
use schemas::ids::DeviceSn;

use crate::http::{acme, bind, bind_in, events, harness, harness_at, raw_records};

fn actor() -> schemas::Actor {
    schemas::Actor::System {
        component: "test".into(),
    }
}

fn since() -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
}

/// A line punched `minutes` ago (Manila local time, the binding's zone).
fn line(badge: &str, minutes: i64) -> String {
    let at = (Utc::now() - Duration::minutes(minutes))
        .with_timezone(&chrono_tz::Asia::Manila)
        .format("%Y-%m-%d %H:%M:%S");
    format!("{badge}\t{at}\t0\t1\t0\t0")
}

/// A clock the test moves.
fn settable(start: &str) -> (Arc<AtomicI64>, gateway::http::Clock) {
    let start: DateTime<Utc> = start.parse().unwrap();
    let seconds = Arc::new(AtomicI64::new(start.timestamp()));
    let read = seconds.clone();
    let clock: gateway::http::Clock =
        Arc::new(move || DateTime::from_timestamp(read.load(Ordering::SeqCst), 0).unwrap());
    (seconds, clock)
}

fn kinds(events: &[ledger::Recorded]) -> Vec<&'static str> {
    events.iter().map(|r| r.envelope.event.kind()).collect()
}

#[tokio::test]
async fn a_table_nobody_knows_is_kept_not_answered_ok_and_dropped() {
    // Regression: `table=FOOLOG` was answered `OK: 2` and nothing was stored, so the
    // device dropped its records.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ1", since()).await;
    let device = Device::new(h.addr, "CQZ1");
    let answer = device
        .push_table("FOOLOG", b"a=1\tb=2\nsomething else\n")
        .await
        .unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "OK: 2\n"));
    let kept: Vec<_> = events(&h.ledger, &acme())
        .await
        .into_iter()
        .filter_map(|r| match r.envelope.event {
            Event::DeviceUploadUnrecognised(u) => Some((u.table, u.lines)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kept,
        [(
            "FOOLOG".to_owned(),
            vec!["a=1\tb=2".to_owned(), "something else".to_owned()]
        )]
    );
}

#[tokio::test]
async fn a_table_name_in_another_case_is_the_same_table() {
    // Regression: `table=attlog` was answered OK and stored nothing.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ2", since()).await;
    let device = Device::new(h.addr, "CQZ2");
    let body = format!("{}\n{}\n", line("1", 5), line("2", 4));
    for table in ["attlog", "AttLog"] {
        let answer = device.push_table(table, body.as_bytes()).await.unwrap();
        assert_eq!(answer.body, "OK: 2\n", "{table}");
    }
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 2);
}

#[tokio::test]
async fn a_body_longer_than_its_content_length_is_stored_whole() {
    // Regression: `Content-Length` covering 2 of 3 lines got `OK: 2`; the third line
    // was parsed as a second request and the record lost.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ3", since()).await;
    let device = Device::new(h.addr, "CQZ3");
    let lines = [line("1", 9), line("2", 8), line("3", 7)];
    let declared = lines[0].len() + 1 + lines[1].len() + 1;
    let body = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]);
    let request = format!(
        "POST /iclock/cdata?SN=CQZ3&table=ATTLOG&Stamp=1 HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n{body}"
    );
    let answers = device.raw(request.as_bytes(), false).await.unwrap();
    assert_eq!(answers.len(), 1, "one request, one answer: {answers:?}");
    assert_eq!(answers[0].body, "OK: 3\n");
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 3);

    // Declared length ending inside the last line: the rest of the line is read too.
    let lines = [line("4", 6), line("5", 5)];
    let body = format!("{}\n{}\n", lines[0], lines[1]);
    let request = format!(
        "POST /iclock/cdata?SN=CQZ3&table=ATTLOG&Stamp=2 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len() - 10
    );
    let answers = device.raw(request.as_bytes(), false).await.unwrap();
    assert_eq!(answers[0].body, "OK: 2\n");
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 5);
}

#[tokio::test]
async fn a_body_without_content_length_runs_to_the_end_of_the_connection() {
    // Regression: `Connection: close` and no length was read as an empty body: `OK: 0`
    // for 3 lines.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ4", since()).await;
    let device = Device::new(h.addr, "CQZ4");
    let body = format!("{}\n{}\n{}\n", line("1", 9), line("2", 8), line("3", 7));
    let request = format!(
        "POST /iclock/cdata?SN=CQZ4&table=ATTLOG&Stamp=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n{body}"
    );
    let answers = device.raw(request.as_bytes(), true).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].body, "OK: 3\n");
    // And one that keeps the connection open: the body ends when it stops sending.
    let body = format!("{}\n", line("4", 6));
    let request = format!(
        "POST /iclock/cdata?SN=CQZ4&table=ATTLOG&Stamp=2 HTTP/1.1\r\nHost: x\r\n\r\n{body}"
    );
    let answers = device.raw(request.as_bytes(), false).await.unwrap();
    assert_eq!(answers[0].body, "OK: 1\n");
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 4);
}

#[tokio::test]
async fn bytes_after_an_answered_body_are_its_rest_and_requests_are_requests() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ5", since()).await;
    let device = Device::new(h.addr, "CQZ5");
    // Two requests in one write, kept alive: two answers, nothing mixed up.
    let one = format!("{}\n", line("1", 9));
    let two = format!("{}\n", line("2", 8));
    let request = |body: &str, close: bool| {
        format!(
            "POST /iclock/cdata?SN=CQZ5&table=ATTLOG HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
    };
    let both = format!("{}{}", request(&one, false), request(&two, true));
    let answers = device.raw(both.as_bytes(), false).await.unwrap();
    assert_eq!(
        answers.iter().map(|a| a.body.as_str()).collect::<Vec<_>>(),
        ["OK: 1\n", "OK: 1\n"]
    );
    // A request answered, then more lines on the same connection: stored, not a 400.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let three = format!("{}\n", line("3", 7));
    stream
        .write_all(request(&three, false).as_bytes())
        .await
        .unwrap();
    let mut first = vec![0u8; 4096];
    let n = stream.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).ends_with("OK: 1\n"));
    stream
        .write_all(format!("{}\n", line("4", 6)).as_bytes())
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "no answer to the rest: {rest:?}");
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 4);
}

#[tokio::test]
async fn expect_100_continue_is_honoured() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ6", since()).await;
    let device = Device::new(h.addr, "CQZ6");
    let body = format!("{}\n", line("1", 9));
    let request = format!(
        "POST /iclock/cdata?SN=CQZ6&table=ATTLOG HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answers = device.raw(request.as_bytes(), false).await.unwrap();
    assert_eq!(answers.last().unwrap().body, "OK: 1\n");
}

#[tokio::test]
async fn routes_parameters_and_tables_in_any_spelling() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ7", since()).await;
    let device = Device::new(h.addr, "CQZ7");
    for path in [
        "/iclock/cdata.aspx?SN=CQZ7&options=all",
        "/iclock/cdata/?SN=CQZ7&options=all",
        "/iClock/CData?sn=CQZ7&Options=all",
        "/adms/iclock/cdata?SN=CQZ7&options=all",
    ] {
        let answer = device.request("GET", path, b"").await.unwrap();
        assert_eq!(answer.status, 200, "{path}");
        assert!(answer.body.starts_with("GET OPTION FROM: CQZ7"), "{path}");
    }
    let body = format!("{}\n", line("1", 3));
    let answer = device
        .request(
            "POST",
            "/iclock/cdata.aspx?sn=CQZ7&TABLE=attlog&stamp=5",
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(answer.body, "OK: 1\n");
    let poll = device
        .request("GET", "/iclock/getrequest.aspx?SN=CQZ7", b"")
        .await
        .unwrap();
    assert_eq!((poll.status, poll.body.as_str()), (200, "OK\n"));
}

#[tokio::test]
async fn a_reconnecting_device_sends_what_is_new_not_its_whole_history() {
    // Regression: the handshake said `ATTLOGStamp=None` every time, and a simulator
    // honouring it re-sent all 600 records at each of 3 reconnects.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMSTAMP", since()).await;
    let mut device = Firmware::new(Device::new(h.addr, "SIMSTAMP"), 6);
    let start = Utc::now()
        .with_timezone(&chrono_tz::Asia::Manila)
        .naive_local()
        - Duration::days(3);
    for i in 0..600 {
        device.punch(&(i % 30).to_string(), start + Duration::minutes(i), 0, 15);
    }
    device.handshake().await.unwrap();
    assert_eq!(device.sync().await.unwrap(), 600);
    for _ in 0..3 {
        device.handshake().await.unwrap();
        assert_eq!(device.options["ATTLOGStamp"], "600");
        assert_eq!(device.sync().await.unwrap(), 0, "nothing new");
    }
    for i in 600..610 {
        device.punch("1", start + Duration::minutes(i), 0, 15);
    }
    device.handshake().await.unwrap();
    assert_eq!(device.sync().await.unwrap(), 10);
    assert_eq!(device.lines_sent, 610, "every record sent once");
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 610);

    // Old firmware knows its cursor as `Stamp`.
    bind(&h.ledger, &acme(), "SIMOLD", since()).await;
    let mut old = Firmware::of(Device::new(h.addr, "SIMOLD"), Variant::Legacy);
    old.punch("7", start, 0, 1);
    old.handshake().await.unwrap();
    assert_eq!(old.options.get("Stamp").map(String::as_str), Some("None"));
    old.sync().await.unwrap();
    old.handshake().await.unwrap();
    assert_eq!(old.options.get("Stamp").map(String::as_str), Some("1"));
    assert!(!old.options.contains_key("ServerVer"));
}

#[tokio::test]
async fn a_device_bound_again_starts_from_no_stamp() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMREBIND", since()).await;
    let mut device = Firmware::new(Device::new(h.addr, "SIMREBIND"), 6);
    let start = Utc::now()
        .with_timezone(&chrono_tz::Asia::Manila)
        .naive_local()
        - Duration::days(1);
    device.punch("1", start, 0, 1);
    device.handshake().await.unwrap();
    device.sync().await.unwrap();
    crate::unbind(
        &h.ledger,
        &acme(),
        &DeviceSn::from("SIMREBIND"),
        actor(),
        Utc::now(),
    )
    .await
    .unwrap();
    bind(&h.ledger, &acme(), "SIMREBIND", since()).await;
    h.settled(&acme()).await;
    device.handshake().await.unwrap();
    assert_eq!(device.options["ATTLOGStamp"], "None");
}

#[tokio::test]
async fn the_handshake_names_the_server_and_protocol_versions_and_asks_for_options() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ8", since()).await;
    let mut device = Firmware::new(Device::new(h.addr, "CQZ8"), 6);
    device.handshake().await.unwrap();
    assert_eq!(device.options["ServerVer"], "2.4.1");
    assert_eq!(device.options["PushProtVer"], "2.4.1");
    assert_eq!(device.options["PushOptionsFlag"], "1");
    assert!(device.options["PushOptions"].contains("FWVersion"));
    // The options it pushes back are its status.
    let answer = device
        .device
        .push_table(
            "options",
            b"~DeviceName=MB10-VL,FWVersion=Ver 8.0.4.6-20230217,UserCount=12,FPCount=9,FaceCount=4,TransactionCount=321,IPAddress=10.0.0.7,MAC=00:17:61:aa:bb:cc,FingerFunOn=1",
        )
        .await
        .unwrap();
    assert_eq!(answer.body, "OK\n");
    let status = events(&h.ledger, &acme())
        .await
        .into_iter()
        .rev()
        .find_map(|r| match r.envelope.event {
            Event::DeviceStatusReported(s) => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(status.device_name.as_deref(), Some("MB10-VL"));
    assert_eq!(status.firmware.as_deref(), Some("Ver 8.0.4.6-20230217"));
    assert_eq!(
        (status.user_count, status.face_count, status.record_count),
        (Some(12), Some(4), Some(321))
    );
    assert_eq!(status.mac.as_deref(), Some("00:17:61:aa:bb:cc"));
    assert_eq!(
        status.options.get("FingerFunOn").map(String::as_str),
        Some("1")
    );
}

#[tokio::test]
async fn time_zones_that_are_not_whole_hours_are_told_in_minutes() {
    // Regression: Kolkata was told `TimeZone=5.5`, Kathmandu `5.75`, St John's `-3.5`.
    let (_, clock) = settable("2026-01-15T12:00:00Z");
    let h = harness_at(LedgerConfig::default(), clock).await;
    for (sn, zone, expected) in [
        ("TZKOL", "Asia/Kolkata", "330"),
        ("TZKTM", "Asia/Kathmandu", "345"),
        ("TZSTJ", "America/St_Johns", "-210"),
        ("TZSHA", "Asia/Shanghai", "8"),
    ] {
        bind_in(&h.ledger, &acme(), sn, since(), zone).await;
        let mut device = Firmware::new(Device::new(h.addr, sn), 6);
        device.handshake().await.unwrap();
        assert_eq!(device.time_zone.as_deref(), Some(expected), "{zone}");
    }
    let device = Device::new(h.addr, "TZKOL");
    let time = device
        .request("GET", "/iclock/cdata?SN=TZKOL&type=time", b"")
        .await
        .unwrap();
    assert_eq!(
        time.body,
        "Time=2026-01-15T17:30:00\nTimeZone=330\nServerTZ=+0530\n"
    );
}

#[tokio::test]
async fn a_device_in_a_dst_zone_is_told_its_new_offset_once() {
    // New York changes from -5 to -4 at 2026-03-08 07:00 UTC.
    let (seconds, clock) = settable("2026-03-08T05:00:00Z");
    let h = harness_at(LedgerConfig::default(), clock).await;
    bind_in(&h.ledger, &acme(), "TZNYC", since(), "America/New_York").await;
    let mut device = Firmware::new(Device::new(h.addr, "TZNYC"), 6);
    device.handshake().await.unwrap();
    assert_eq!(device.time_zone.as_deref(), Some("-5"));
    assert!(device.poll().await.unwrap().commands.is_empty());
    seconds.fetch_add(3 * 3600, Ordering::SeqCst);
    let polled = device.poll().await.unwrap();
    assert_eq!(polled.commands, ["C:1:SET OPTION TimeZone=-4"]);
    assert_eq!(device.time_zone.as_deref(), Some("-4"));
    assert!(
        device.poll().await.unwrap().commands.is_empty(),
        "told once"
    );
    // The status records what it was told, for the devices view and for a gateway
    // started later.
    let told = events(&h.ledger, &acme())
        .await
        .into_iter()
        .rev()
        .find_map(|r| match r.envelope.event {
            Event::DeviceStatusReported(s) => s.utc_offset_told_minutes,
            _ => None,
        });
    assert_eq!(told, Some(-240));
}

#[tokio::test]
async fn the_time_and_the_device_clock_drift() {
    let (_, clock) = settable("2026-06-01T00:00:00Z");
    let h = harness_at(LedgerConfig::default(), clock).await;
    bind_in(&h.ledger, &acme(), "DRIFT1", since(), "Asia/Shanghai").await;
    let device = Device::new(h.addr, "DRIFT1");
    // Two minutes fast (08:02:00 local against 08:00:00).
    let poll = device
        .request(
            "GET",
            "/iclock/getrequest?SN=DRIFT1&DeviceTime=2026-06-01%2008:02:00",
            b"",
        )
        .await
        .unwrap();
    assert_eq!(poll.status, 200);
    let drift = events(&h.ledger, &acme())
        .await
        .into_iter()
        .find_map(|r| match r.envelope.event {
            Event::DeviceStatusReported(s) => s.clock_drift_seconds,
            _ => None,
        });
    assert_eq!(drift, Some(120));
    for kind in ["time", "rttime"] {
        let time = device
            .request("GET", &format!("/iclock/rtdata?SN=DRIFT1&type={kind}"), b"")
            .await
            .unwrap();
        let expected = gateway::protocol::time::zk_encode(
            "2026-06-01T00:00:00".parse::<NaiveDateTime>().unwrap(),
        );
        assert_eq!(time.body, format!("DateTime={expected},ServerTZ=+0800\n"));
    }
}

#[tokio::test]
async fn users_and_fingerprints_come_back_for_data_query_userinfo() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMUSERS", since()).await;
    let sn = DeviceSn::from("SIMUSERS");
    let mut device = Firmware::new(Device::new(h.addr, "SIMUSERS"), 6);
    device.users.insert("1001".into(), "Li Wei".into());
    device.users.insert("1002".into(), "Wang Fang".into());
    commands::devices::send(
        &h.ledger,
        &acme(),
        &sn,
        DeviceCommand::QueryUsers { badge_number: None },
        actor(),
        Utc::now(),
    )
    .await
    .unwrap();
    h.settled(&acme()).await;
    let polled = device.poll().await.unwrap();
    assert_eq!(polled.commands, ["C:1:DATA QUERY USERINFO"]);
    let fingers = device
        .device
        .push_table(
            "FINGERTMP",
            b"PIN=1001\tFID=5\tSize=4\tValid=1\tTMP=QUJD\nFP PIN=1002\tFID=6\tSize=4\tValid=1\tTMP=QUJD\n",
        )
        .await
        .unwrap();
    assert_eq!(fingers.body, "OK: 2\n");
    let events = events(&h.ledger, &acme()).await;
    let users: Vec<_> = events
        .iter()
        .filter_map(|r| match &r.envelope.event {
            Event::DeviceUserReported(u) => Some((u.badge_number.to_string(), u.name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        users,
        [
            ("1001".to_owned(), "Li Wei".to_owned()),
            ("1002".to_owned(), "Wang Fang".to_owned())
        ]
    );
    let fingers: Vec<_> = events
        .iter()
        .filter_map(|r| match &r.envelope.event {
            Event::BiometricEnrolled(b) => Some(b.biometric.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        fingers,
        [
            schemas::events::Biometric::Fingerprint { finger: 5 },
            schemas::events::Biometric::Fingerprint { finger: 6 }
        ]
    );
    assert!(kinds(&events).contains(&"DeviceCommandAcknowledged"));
}

#[tokio::test]
async fn tft_lines_legacy_spaces_and_other_time_layouts_are_punches() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMTFT", since()).await;
    let mut tft = Firmware::of(Device::new(h.addr, "SIMTFT"), Variant::Tft16);
    let at = Utc::now()
        .with_timezone(&chrono_tz::Asia::Manila)
        .naive_local()
        - Duration::hours(2);
    for i in 0..20 {
        tft.punch("42", at + Duration::minutes(i), 0, 15);
    }
    tft.handshake().await.unwrap();
    assert_eq!(tft.sync().await.unwrap(), 20);
    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 20);
    for punch in raw.punches.values() {
        assert_eq!(punch.punch.job_code.as_deref(), Some("8"));
        assert_eq!(
            punch.punch.device_seq, None,
            "the 11th field is not a sequence here"
        );
    }
    let stamp = |minutes: i64, layout: &str| {
        (Utc::now() - Duration::minutes(minutes))
            .with_timezone(&chrono_tz::Asia::Manila)
            .format(layout)
            .to_string()
    };
    let body = format!(
        "43 {} 0 1 0 0\n44\t{}\t0\t1\t0\t0\n45\t{}\t0\t1\t0\t0\n",
        stamp(30, "%Y-%m-%d %H:%M:%S"),
        stamp(31, "%Y/%m/%d %H:%M:%S"),
        stamp(32, "%Y-%m-%dT%H:%M:%S"),
    );
    let answer = tft.device.push_raw(body.as_bytes()).await.unwrap();
    assert_eq!(answer.body, "OK: 3\n");
    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 23);
    assert!(raw.rejected.is_empty(), "{:?}", raw.rejected);
}

#[tokio::test]
async fn one_line_too_large_for_an_event_is_rejected_alone_and_its_batch_stored() {
    // Regression: one 2 MB line made every re-send of its batch a 503, so the device's
    // backlog never drained.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZBIG", since()).await;
    let device = Device::new(h.addr, "CQZBIG");
    let huge = format!("{}\t{}", line("1", 20), "9".repeat(2 << 20));
    let body = format!(
        "{}\n{huge}\n{}\n{}\n",
        line("2", 9),
        line("3", 8),
        line("4", 7)
    );
    for _ in 0..2 {
        let answer = device.push_raw(body.as_bytes()).await.unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (200, "OK: 4\n"));
    }
    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 3);
    let rejected: Vec<_> = raw.rejected.values().collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].record.reason, RejectionReason::LineTooLong);
    assert!(rejected[0].record.raw.len() < 1024, "kept cut short");
}

#[tokio::test]
async fn a_large_legal_body_is_stored_in_pieces() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZHIST", since()).await;
    let device = Device::new(h.addr, "CQZHIST");
    let start = Utc::now()
        .with_timezone(&chrono_tz::Asia::Manila)
        .naive_local()
        - Duration::days(60);
    let body: String = (0..20_000)
        .map(|i| {
            format!(
                "{}\t{}\t0\t1\t0\t0\n",
                i % 97,
                (start + Duration::minutes(i)).format("%Y-%m-%d %H:%M:%S")
            )
        })
        .collect();
    let answer = device.push_raw(body.as_bytes()).await.unwrap();
    assert_eq!(answer.body, "OK: 20000\n");
    let events = events(&h.ledger, &acme()).await;
    let batches = events
        .iter()
        .filter(|r| matches!(r.envelope.event, Event::PunchesRecorded(_)))
        .count();
    assert!(batches >= 20_000 / 256, "{batches} events");
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 20_000);
    // The same body again is the same events: nothing new.
    let again = device.push_raw(body.as_bytes()).await.unwrap();
    assert_eq!(again.body, "OK: 20000\n");
    assert_eq!(
        crate::http::events(&h.ledger, &acme())
            .await
            .iter()
            .filter(|r| matches!(r.envelope.event, Event::PunchesRecorded(_)))
            .count(),
        batches
    );
}

#[tokio::test]
async fn a_262_person_roster_goes_out_in_replies_the_device_can_take() {
    // Regression: a 262-person roster went out in one 16.8 KB reply.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMROSTER", since()).await;
    let sn = DeviceSn::from("SIMROSTER");
    for badge in 1..=262u32 {
        let command = DeviceCommand::UpdateUser {
            badge_number: schemas::ids::BadgeNumber::from(badge.to_string().as_str()),
            name: format!("Person number {badge} with a longer name"),
            privilege: schemas::events::DevicePrivilege::User,
            card: None,
            disabled: false,
        };
        commands::devices::send(&h.ledger, &acme(), &sn, command, actor(), Utc::now())
            .await
            .unwrap();
    }
    // Added, removed and added again before the device polled: one command.
    for command in [
        DeviceCommand::DeleteUser {
            badge_number: schemas::ids::BadgeNumber::from("7"),
        },
        DeviceCommand::UpdateUser {
            badge_number: schemas::ids::BadgeNumber::from("7"),
            name: "Seven again".into(),
            privilege: schemas::events::DevicePrivilege::User,
            card: None,
            disabled: false,
        },
    ] {
        commands::devices::send(&h.ledger, &acme(), &sn, command, actor(), Utc::now())
            .await
            .unwrap();
    }
    h.settled(&acme()).await;
    let mut device = Firmware::new(Device::new(h.addr, "SIMROSTER"), 6);
    let mut polls = 0;
    loop {
        let polled = device.poll().await.unwrap();
        if polled.commands.is_empty() {
            break;
        }
        let bytes: usize = polled.commands.iter().map(|c| c.len() + 1).sum();
        assert!(
            polled.commands.len() <= 20 && bytes <= 16 * 1024,
            "{} commands, {bytes} bytes",
            polled.commands.len()
        );
        polls += 1;
    }
    assert_eq!(device.users.len(), 262);
    assert_eq!(device.users["7"], "Seven again");
    assert_eq!(polls, 262_usize.div_ceil(20));
}

#[tokio::test]
async fn a_reboot_is_delivered_after_everything_else() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMBOOT", since()).await;
    let sn = DeviceSn::from("SIMBOOT");
    let queue = |command| {
        let ledger = h.ledger.clone();
        let sn = sn.clone();
        async move {
            commands::devices::send(&ledger, &acme(), &sn, command, actor(), Utc::now())
                .await
                .unwrap()
        }
    };
    queue(DeviceCommand::Reboot).await;
    queue(DeviceCommand::Info).await;
    queue(DeviceCommand::Check).await;
    h.settled(&acme()).await;
    let mut device = Firmware::new(Device::new(h.addr, "SIMBOOT"), 6);
    let polled = device.poll().await.unwrap();
    assert_eq!(polled.commands, ["C:2:INFO", "C:3:CHECK", "C:1:REBOOT"]);
    assert_eq!(device.reboots, 1);
}

#[tokio::test]
async fn biodata_firmware_enrols_fingers_by_their_number_not_their_template_index() {
    // Regression: fingers 5 and 6 came out as 0 and 1.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMBIO", since()).await;
    let mut device = Firmware::new(Device::new(h.addr, "SIMBIO"), 7);
    device.handshake().await.unwrap();
    assert_eq!(device.options["BIODATAStamp"], "None");
    for (finger, template) in [(5, 0), (6, 1)] {
        let answer = device
            .enroll_finger("1001", finger, template)
            .await
            .unwrap();
        assert_eq!(answer.body, "OK: 1\n");
    }
    let fingers: Vec<_> = events(&h.ledger, &acme())
        .await
        .into_iter()
        .filter_map(|r| match r.envelope.event {
            Event::BiometricEnrolled(b) => Some(b.biometric),
            _ => None,
        })
        .collect();
    assert_eq!(
        fingers,
        [
            schemas::events::Biometric::Fingerprint { finger: 5 },
            schemas::events::Biometric::Fingerprint { finger: 6 }
        ]
    );
    device.handshake().await.unwrap();
    assert_eq!(device.options["BIODATAStamp"], "9999", "its cursor is kept");
}
