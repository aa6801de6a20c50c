//! Firmware-like devices over real HTTP into a real nats-server: live punches, an
//! offline backlog and its catch-up, whole-history re-sends ignoring the stamp, a body
//! cut mid-line, and the command round trip (re-upload, roster, INFO, CLEAR DATA).

use chrono::{Duration, NaiveDateTime, Utc};
use gateway::simulator::{Device, Firmware};
use ledger::LedgerConfig;
use schemas::Actor;
use schemas::events::{DeviceCommand, RejectionReason};
use schemas::ids::DeviceSn;

use crate::http::{acme, bind, events, harness, raw_records};

fn actor() -> Actor {
    Actor::System {
        component: "test".into(),
    }
}

/// Local midnight `days` before today (in Manila, the binding's zone).
fn day(days: i64) -> NaiveDateTime {
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Manila)
        .date_naive();
    (today - Duration::days(days)).and_hms_opt(0, 0, 0).unwrap()
}

/// Twenty people punching in and out (two taps each way) on one day.
fn workday(device: &mut Firmware, midnight: NaiveDateTime) {
    for person in 1..=20u32 {
        let badge = person.to_string();
        let m = i64::from(person);
        for (minutes, state) in [
            (8 * 60 + m, 0),
            (8 * 60 + m + 1, 0),
            (18 * 60 + m, 1),
            (18 * 60 + m + 2, 1),
        ] {
            device.punch(&badge, midnight + Duration::minutes(minutes), state, 15);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_backlog_catch_up_and_three_whole_history_resends_count_once() {
    let h = harness(LedgerConfig::default()).await;
    let since = Some(day(30).date());
    let mut devices = Vec::new();
    for (sn, fields) in [("SIM5", 5), ("SIM7", 7), ("SIM11", 11)] {
        bind(&h.ledger, &acme(), sn, since).await;
        devices.push(Firmware::new(Device::new(h.addr, sn), fields));
    }
    for device in &mut devices {
        assert_eq!(device.handshake().await.unwrap().status, 200);
        // Ten days: online for three, offline for five, back for two.
        for d in (1..=10).rev() {
            device.online = !(4..=8).contains(&d);
            workday(device, day(d));
            let sent = device.sync().await.unwrap();
            match d {
                4..=8 => assert_eq!(sent, 0, "offline: nothing leaves the device"),
                3 => assert_eq!(sent, 6 * 80, "the backlog of five days, then today"),
                _ => assert_eq!(sent, 80),
            }
        }
        assert_eq!(device.sent, 800);
    }
    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 3 * 800);
    assert!(raw.punches.values().all(|p| p.received == 1));

    // The whole history again, three times, in other batchings and another order.
    for device in &mut devices {
        device.resend_all(1000).await.unwrap();
        device.resend_all(7).await.unwrap();
        let mut reversed: Vec<&str> = device.records.iter().map(String::as_str).collect();
        reversed.reverse();
        device.device.push_all(&reversed, 128).await.unwrap();
    }
    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 3 * 800, "no punch twice");
    assert!(raw.rejected.is_empty());
    assert!(raw.punches.values().all(|p| p.received >= 2));
    let seqs = raw
        .punches
        .values()
        .filter(|p| {
            p.punch
                .device_sn
                .as_ref()
                .is_some_and(|s| s.as_str() == "SIM11")
        })
        .filter(|p| p.punch.device_seq.is_some())
        .count();
    assert_eq!(seqs, 800, "the 11th field is kept as the device's sequence");
}

#[tokio::test]
async fn a_body_cut_mid_line_keeps_the_rest_and_the_resend_completes_it() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMCUT", Some(day(30).date())).await;
    let mut device = Firmware::new(Device::new(h.addr, "SIMCUT"), 7);
    workday(&mut device, day(1));
    let mut body = device.records[..10].join("\n");
    body.truncate(body.len() - 12);
    let answer = device.device.push_raw(body.as_bytes()).await.unwrap();
    assert_eq!(answer.body, "OK: 10\n", "every line is answered for");
    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 9);
    let cut: Vec<_> = raw.rejected.values().map(|r| r.record.reason).collect();
    assert_eq!(cut, [RejectionReason::TooFewFields]);

    device.resend_all(128).await.unwrap();
    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 80, "the cut record arrived whole");
    assert_eq!(
        raw.rejected.len(),
        1,
        "what was received cut stays on record"
    );
}

#[tokio::test]
async fn commands_round_trip_through_a_polling_device() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMCMD", Some(day(30).date())).await;
    let sn = DeviceSn::from("SIMCMD");
    let mut device = Firmware::new(Device::new(h.addr, "SIMCMD"), 7);
    workday(&mut device, day(2));
    workday(&mut device, day(1));
    // The device believes it sent everything, but the server lost day 2 (it never
    // arrived): an administrator asks for that day again.
    device.sent = device.records.len();
    let day2 = day(2);
    let query = DeviceCommand::QueryAttendance {
        start: day2,
        end: day2 + Duration::seconds(86_399),
        badge_numbers: vec![],
    };
    commands::devices::send(&h.ledger, &acme(), &sn, query, actor(), Utc::now())
        .await
        .unwrap();
    commands::devices::send(
        &h.ledger,
        &acme(),
        &sn,
        DeviceCommand::Info,
        actor(),
        Utc::now(),
    )
    .await
    .unwrap();
    h.settled(&acme()).await;
    let polled = device.poll().await.unwrap();
    assert_eq!(polled.commands.len(), 2);
    assert!(polled.commands[0].starts_with("C:1:DATA QUERY ATTLOG StartTime="));
    assert_eq!(polled.resent, 80);
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 80);
    assert!(
        device.poll().await.unwrap().commands.is_empty(),
        "done is done"
    );

    // Unbinding wipes the device.
    crate::unbind(&h.ledger, &acme(), &sn, actor(), Utc::now())
        .await
        .unwrap();
    h.settled(&acme()).await;
    let polled = device.poll().await.unwrap();
    assert_eq!(polled.commands, ["C:3:CLEAR DATA"]);
    assert!(device.records.is_empty());

    let events = events(&h.ledger, &acme()).await;
    let outcomes: Vec<String> = events
        .iter()
        .filter_map(|r| match &r.envelope.event {
            schemas::Event::DeviceCommandAcknowledged(a) => {
                Some(format!("{} {:?} {}", a.command_id, a.verb, a.return_code))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "1 Some(\"DATA\") 0",
            "2 Some(\"INFO\") 0",
            "3 Some(\"CLEAR\") 0"
        ]
    );
    let status = events.iter().rev().find_map(|r| match &r.envelope.event {
        schemas::Event::DeviceStatusReported(s) => Some(s.clone()),
        _ => None,
    });
    let status = status.expect("the INFO reply is the device's status");
    assert_eq!(status.record_count, Some(160));
    assert_eq!(status.firmware.as_deref(), Some("Ver 8.0.4.2-sim"));
}

#[tokio::test]
async fn operation_logs_with_gbk_names_become_events_once() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMOP", Some(day(30).date())).await;
    let device = Device::new(h.addr, "SIMOP");
    let (mut body, _, _) =
        encoding_rs::GBK.encode("USER PIN=1001\tName=张三\tPri=0\tPasswd=\tCard=\tGrp=1\n");
    body.to_mut().extend_from_slice(
        b"FP PIN=1001\tFID=6\tSize=8\tValid=1\tTMP=QUJDREVGR0g=\n\
          OPLOG 30\t0\t2026-11-20 09:00:01\t1001\t0\t0\t0\n\
          USERPIC PIN=1001\tFileName=1001.jpg\tSize=4\tContent=QUJD\n\
          USER PIN=12a\tName=broken",
    );
    for _ in 0..2 {
        let answer = device.push_table("OPERLOG", &body).await.unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (200, "OK: 5\n"));
    }
    let photo = device
        .push_table("ATTPHOTO", b"PIN=1001\tSN=SIMOP\tsize=3\tCMD=uploadphoto\n")
        .await
        .unwrap();
    assert_eq!(
        photo.body, "OK\n",
        "a photo is answered as the protocol says, counted, not kept"
    );
    let events = events(&h.ledger, &acme()).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|r| r.envelope.event.kind())
        .filter(|k| {
            !matches!(
                *k,
                "DeviceBound" | "DeviceStatusReported" | "DeviceStampRecorded"
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "DeviceUserReported",
            "BiometricEnrolled",
            "DeviceOperationLogged",
            "DeviceRecordRejected"
        ],
        "sent twice, stored once; the photo is not kept"
    );
    let name = events.iter().find_map(|r| match &r.envelope.event {
        schemas::Event::DeviceUserReported(u) => Some(u.name.clone()),
        _ => None,
    });
    assert_eq!(name.as_deref(), Some("张三"));
}

#[tokio::test]
async fn an_expired_command_is_retried_under_a_new_id() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "SIMRETRY", Some(day(30).date())).await;
    let sn = DeviceSn::from("SIMRETRY");
    let mut device = Firmware::new(Device::new(h.addr, "SIMRETRY"), 7);
    let past = Utc::now() - Duration::minutes(1);
    // Queued two minutes ago to expire a minute ago.
    let act = commands::devices::DeviceAct::Send {
        sn: sn.clone(),
        command: DeviceCommand::Info,
        expires_at: Some(past),
    };
    let request = commands::Request::new(acme(), actor(), act);
    commands::devices::execute_queueing(&h.ledger, &request, past - Duration::minutes(1))
        .await
        .unwrap();
    h.settled(&acme()).await;
    assert!(device.poll().await.unwrap().commands.is_empty(), "expired");
    let id = commands::devices::retry(&h.ledger, &acme(), &sn, 1, actor(), Utc::now())
        .await
        .unwrap();
    assert_eq!(id, 2);
    h.settled(&acme()).await;
    assert_eq!(device.poll().await.unwrap().commands, ["C:2:INFO"]);
    let again = commands::devices::retry(&h.ledger, &acme(), &sn, 2, actor(), Utc::now()).await;
    assert_eq!(
        again.unwrap_err().to_string(),
        "refused: command 2 cannot be retried: it is Done { return_code: 0 }"
    );
}
