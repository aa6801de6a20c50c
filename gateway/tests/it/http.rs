//! The gateway over real HTTP into a real nats-server.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use futures::TryStreamExt;
use gateway::http::Gateway;
use ledger::{Ledger, LedgerConfig, NatsServer, ReadFrom, ServerOptions};
use projections::raw::RawRecords;
use schemas::Actor;
use schemas::events::RejectionReason;
use schemas::ids::{DeviceSn, TenantId, ZoneName};

use gateway::simulator::Device;

pub struct Harness {
    pub server: NatsServer,
    pub ledger: Ledger,
    pub addr: SocketAddr,
    pub gateway: Gateway,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Harness {
    /// Waits until the gateway's view holds what the test wrote to the ledger behind
    /// its back (bindings, commands, people and rules of `tenant`).
    pub async fn settled(&self, tenant: &TenantId) {
        use schemas::AggregateKind::*;
        let view = self.gateway.view();
        view.sync(&TenantId::system(), &[Device]).await.unwrap();
        view.sync(tenant, &[DeviceCommands, Department, Person, Rule])
            .await
            .unwrap();
    }
}

pub async fn harness(config: LedgerConfig) -> Harness {
    harness_at(config, Arc::new(Utc::now)).await
}

/// A harness whose gateway reads `clock`.
pub async fn harness_at(config: LedgerConfig, clock: gateway::http::Clock) -> Harness {
    harness_with(config, clock, gateway::http::Limits::default()).await
}

/// A harness whose gateway reads `clock` and holds to `limits`.
pub async fn harness_with(
    config: LedgerConfig,
    clock: gateway::http::Clock,
    limits: gateway::http::Limits,
) -> Harness {
    let server = NatsServer::start(ServerOptions::default()).await.unwrap();
    let ledger = Ledger::connect(&server.url(), config).await.unwrap();
    ledger.provision().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = Gateway::with_config(
        ledger.clone(),
        clock,
        gateway::http::GatewayConfig { limits },
    );
    tokio::spawn(gateway::http::run(gateway.clone(), listener, async {
        let _ = stopped.await;
    }));
    Harness {
        server,
        ledger,
        addr,
        gateway,
        _stop: stop,
    }
}

pub fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

pub async fn bind(ledger: &Ledger, tenant: &TenantId, sn: &str, records_from: Option<NaiveDate>) {
    bind_in(ledger, tenant, sn, records_from, "Asia/Manila").await;
}

/// Binds `sn` with its local times read in `zone`.
pub async fn bind_in(
    ledger: &Ledger,
    tenant: &TenantId,
    sn: &str,
    records_from: Option<NaiveDate>,
    zone: &str,
) {
    let cmd = commands::devices::Bind {
        sn: DeviceSn::from(sn),
        name: format!("Device {sn}"),
        model: None,
        zone: ZoneName::parse(zone).unwrap(),
        records_from,
    };
    let actor = Actor::System {
        component: "test".into(),
    };
    commands::devices::bind(
        ledger,
        &commands::Request::new(tenant.clone(), actor, cmd),
        Utc::now(),
    )
    .await
    .unwrap();
}

/// Every event of the tenant, as stored.
pub async fn events(ledger: &Ledger, tenant: &TenantId) -> Vec<ledger::Recorded> {
    ledger
        .read(tenant, ReadFrom::start())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

pub async fn raw_records(ledger: &Ledger, tenant: &TenantId) -> RawRecords {
    let mut raw = RawRecords::default();
    for recorded in &events(ledger, tenant).await {
        raw.apply(recorded.sequence, &recorded.envelope);
    }
    raw
}

fn since_2019() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2019, 1, 1)
}

#[tokio::test]
async fn an_unknown_device_writes_nothing_but_one_sighting() {
    let h = harness(LedgerConfig::default()).await;
    let device = Device::new(h.addr, "NOBODY0001");
    for _ in 0..3 {
        let answer = device
            .push(&["1\t2024-01-02 09:00:00\t0\t1\t0\t0"])
            .await
            .unwrap();
        assert_eq!(answer.status, 403);
        assert_eq!(device.handshake().await.unwrap().status, 403);
    }
    let system = raw_events(&h.ledger, &TenantId::system()).await;
    assert_eq!(
        system,
        ["UnknownDeviceSeen"],
        "one sighting an hour, nothing else"
    );
}

async fn raw_events(ledger: &Ledger, tenant: &TenantId) -> Vec<&'static str> {
    let events = events(ledger, tenant).await;
    events.iter().map(|r| r.envelope.event.kind()).collect()
}

#[tokio::test]
async fn a_bound_device_handshakes_and_its_good_lines_survive_bad_ones() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ1", since_2019()).await;
    let device = Device::new(h.addr, "CQZ1");
    let hello = device.handshake().await.unwrap();
    assert_eq!(hello.status, 200);
    assert!(
        hello.body.starts_with("GET OPTION FROM: CQZ1\n"),
        "{}",
        hello.body
    );
    assert!(hello.body.contains("\nTimeZone=8\n"));

    // CRLF, a clock reset, a corrupted PIN, and a last line cut mid-field.
    let body = "    5\t2020-02-24 10:52:43\t1\t0\t0\t0\r\n\
                \x20   5\t2000-01-01 00:00:12\t1\t0\t0\t0\r\n\
                ZZZZZZZZZZ\t2047-02-30 19:13:30\t1\t90\t90\t1515870810\r\n\
                \x20  17\t2020-02-24 10:54:18\t1\t0\t0\t0\r\n\
                \x20   7\t2020-02-24 10:5";
    let answer = device.push_raw(body.as_bytes()).await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "OK: 5\n"));

    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 2);
    let mut reasons: Vec<_> = raw.rejected.values().map(|r| r.record.reason).collect();
    reasons.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        reasons,
        [
            RejectionReason::BeforeBinding,
            RejectionReason::TooFewFields,
            RejectionReason::UnparsableBadgeNumber
        ]
    );
    let cut = ("CQZ1".to_owned(), "    7\t2020-02-24 10:5".to_owned());
    assert!(raw.rejected.contains_key(&cut), "the raw text is kept");
}

#[tokio::test]
async fn no_ok_unless_stored_and_the_resend_after_an_outage_is_kept() {
    let mut h = harness(LedgerConfig {
        retry_for: std::time::Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    bind(&h.ledger, &acme(), "CQZ2", since_2019()).await;
    let device = Device::new(h.addr, "CQZ2");
    let lines = [
        "1\t2021-05-06 08:59:00\t0\t1\t0\t0",
        "2\t2021-05-06 09:01:00\t0\t1\t0\t0",
    ];
    // Make sure the binding is cached, so the outage is met by the append itself.
    assert_eq!(device.handshake().await.unwrap().status, 200);

    h.server.kill();
    let refused = device.push(&lines).await.unwrap();
    assert_ne!(
        refused.status, 200,
        "a device must not hear OK for records that were not stored"
    );
    assert!(!refused.body.starts_with("OK"));

    h.server.restart().await.unwrap();
    let mut answer = device.push(&lines).await.unwrap();
    for _ in 0..100 {
        if answer.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        answer = device.push(&lines).await.unwrap();
    }
    assert_eq!(answer.body, "OK: 2\n");
    assert_eq!(raw_records(&h.ledger, &acme()).await.punches.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_device_histories_sent_four_times_count_once() {
    let h = harness(LedgerConfig::default()).await;
    let files = [
        "caoka_1_attlog.dat",
        "clockwork_1_attlog.dat",
        "clockwork_2_attlog.dat",
    ];
    let mut bodies = Vec::new();
    for file in files {
        bind(
            &h.ledger,
            &acme(),
            file.split('_')
                .take(2)
                .collect::<Vec<_>>()
                .join("")
                .as_str(),
            since_2019(),
        )
        .await;
        bodies.push(std::fs::read_to_string(crate::real_devices_dir().join(file)).unwrap());
    }
    let devices: Vec<_> = files
        .iter()
        .map(|f| Device::new(h.addr, &f.split('_').take(2).collect::<Vec<_>>().join("")))
        .collect();

    // First, as the machines would drain a backlog: 128 lines a POST, all three at once.
    let sends = devices.iter().zip(&bodies).map(|(d, body)| {
        let lines: Vec<&str> = gateway::protocol::attlog::lines(body).collect();
        async move { d.push_all(&lines, 128).await.unwrap() }
    });
    futures::future::join_all(sends).await;
    let once = raw_records(&h.ledger, &acme()).await;
    let ids: HashSet<_> = once.punches.keys().copied().collect();
    assert_eq!(once.punches.len(), 10_585 + 11_902 + 32_848);
    // caoka's 358 bad lines are 33 distinct ones; the same corrupted record repeats, and
    // its rejection's id derives from the line, so it is stored once.
    assert_eq!(once.rejected.len(), 33);
    assert!(once.rejected.values().all(|r| r.received == 1));

    // Then the whole history again, three times, in other batchings and orders: one
    // body, 50-line batches backwards, 97-line batches of an interleaved order.
    for (device, body) in devices.iter().zip(&bodies) {
        let lines: Vec<&str> = gateway::protocol::attlog::lines(body).collect();
        assert_eq!(
            device.push_raw(body.as_bytes()).await.unwrap().body.trim(),
            format!("OK: {}", lines.len())
        );
        let backwards: Vec<&str> = lines.iter().rev().copied().collect();
        device.push_all(&backwards, 50).await.unwrap();
        let mut interleaved: Vec<&str> = lines.iter().step_by(2).copied().collect();
        interleaved.extend(lines.iter().skip(1).step_by(2));
        device.push_all(&interleaved, 97).await.unwrap();
    }
    let four = raw_records(&h.ledger, &acme()).await;
    let again: HashSet<_> = four.punches.keys().copied().collect();
    assert_eq!(again, ids, "no punch added, none lost");
    assert_eq!(four.rejected.len(), once.rejected.len());
    assert!(four.rejected.values().all(|r| r.received == 1));
    // Every record was received at least four times (twice as often when the file
    // itself holds it twice).
    // The re-sends were stored as new messages (other batchings, other ids) and folded
    // by punch id; only a batch identical to an earlier one (the files' last 126 and 81
    // lines, whole-body chunks of 256 meeting POSTs of 128) was dropped by JetStream.
    let receipts = |raw: &RawRecords| {
        raw.punches
            .values()
            .map(|p| u64::from(p.received))
            .sum::<u64>()
    };
    assert!(
        receipts(&four) > 3 * receipts(&once),
        "re-sends reached the stream"
    );
    assert!(four.punches.values().all(|p| p.received >= 3));
}

#[tokio::test]
async fn commands_are_served_from_events_by_any_gateway_and_their_results_recorded() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ3", since_2019()).await;
    let sn = DeviceSn::from("CQZ3");
    let actor = || Actor::System {
        component: "test".into(),
    };
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let info = commands::devices::send(
        &h.ledger,
        &acme(),
        &sn,
        schemas::events::DeviceCommand::Info,
        actor(),
        Utc::now(),
    )
    .await
    .unwrap();
    let reupload = schemas::events::DeviceCommand::QueryAttendance {
        start: day.and_hms_opt(0, 0, 0).unwrap(),
        end: day.and_hms_opt(23, 59, 59).unwrap(),
        badge_numbers: vec![],
    };
    let query = commands::devices::send(&h.ledger, &acme(), &sn, reupload, actor(), Utc::now())
        .await
        .unwrap();
    assert_eq!((info, query), (1, 2));

    // A second gateway instance on the same ledger serves the device: nothing is kept
    // in a gateway's memory.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = listener.local_addr().unwrap();
    tokio::spawn(gateway::http::run(
        Gateway::new(h.ledger.clone(), Arc::new(Utc::now)),
        listener,
        std::future::pending(),
    ));

    let device = Device::new(other, "CQZ3");
    let poll = device
        .request("GET", "/iclock/getrequest?SN=CQZ3", b"")
        .await
        .unwrap();
    assert_eq!(
        poll.body,
        "C:1:INFO\nC:2:DATA QUERY ATTLOG StartTime=2026-11-01 00:00:00\tEndTime=2026-11-01 23:59:59\n"
    );
    let again = Device::new(h.addr, "CQZ3")
        .request("GET", "/iclock/getrequest?SN=CQZ3", b"")
        .await
        .unwrap();
    assert_eq!(
        again.body, "OK\n",
        "delivered commands are not handed over again at once"
    );

    let results = device
        .request(
            "POST",
            "/iclock/devicecmd?SN=CQZ3",
            b"ID=1&Return=0&CMD=INFO\nID=2&Return=-1002&CMD=DATA\n",
        )
        .await
        .unwrap();
    assert_eq!(results.body, "OK\n");
    let kinds = raw_events(&h.ledger, &acme()).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.starts_with("DeviceCommand"))
            .copied()
            .collect::<Vec<_>>(),
        [
            "DeviceCommandQueued",
            "DeviceCommandQueued",
            "DeviceCommandDelivered",
            "DeviceCommandDelivered",
            "DeviceCommandAcknowledged",
            "DeviceCommandFailed"
        ]
    );
}

#[tokio::test]
async fn an_unbound_device_gets_its_clear_data_but_may_not_upload() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "CQZ4", since_2019()).await;
    let sn = DeviceSn::from("CQZ4");
    crate::unbind(
        &h.ledger,
        &acme(),
        &sn,
        Actor::System {
            component: "test".into(),
        },
        Utc::now(),
    )
    .await
    .unwrap();
    let device = Device::new(h.addr, "CQZ4");
    let poll = device
        .request("GET", "/iclock/getrequest?SN=CQZ4", b"")
        .await
        .unwrap();
    assert_eq!(poll.body, "C:1:CLEAR DATA\n");
    let upload = device
        .push(&["1\t2024-01-02 09:00:00\t0\t1\t0\t0"])
        .await
        .unwrap();
    assert_eq!(upload.status, 403);
    assert!(
        !raw_events(&h.ledger, &acme())
            .await
            .contains(&"PunchesRecorded")
    );
}
