//! Projection workers killed with SIGKILL at random points during a real-device ingest,
//! 20 times: their views then equal, row for row, those of a clean rebuild. A test
//! binary of its own, so the load it makes does not share the machine with the
//! timing-sensitive gateway tests.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration as StdDuration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_attendance");

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn interrupt(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

/// The organisation and uploads of a real-device ingest: the three exports' badge
/// numbers hired on 2022-01-01 under a 08:00-17:00 rule, and each export as the
/// 128-line uploads its device sent.
fn real_ingest(now: DateTime<Utc>) -> (Vec<schemas::Envelope>, Vec<schemas::Envelope>) {
    use schemas::events::*;
    use schemas::ids::*;
    let tenant = TenantId::parse("plant").unwrap();
    let at: DateTime<Utc> = "2021-12-31T00:00:00Z".parse().unwrap();
    let e = |event: Event| {
        schemas::Envelope::new(
            tenant.clone(),
            schemas::Actor::User {
                user_id: "hr".into(),
            },
            event,
            at,
        )
    };
    let from = NaiveDate::from_ymd_opt(2022, 1, 1).unwrap();
    let zone = ZoneName::parse("Asia/Manila").unwrap();
    let mut org = vec![e(DepartmentDefined {
        department_id: DepartmentId::new("plant"),
        name: "Plant".into(),
        parent: None,
    }
    .into())];
    let dir = Path::new(gateway::simulator::REAL_DEVICE_EXPORTS);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("attlog.dat"))
        .collect();
    files.sort();
    let mut badges = std::collections::BTreeSet::new();
    let mut uploads = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = gateway::protocol::attlog::lines(&text).collect();
        let binding = gateway::ingest::Binding {
            tenant: tenant.clone(),
            sn: DeviceSn::new(format!("REAL{i}")),
            zone: zone.clone(),
            records_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
            claim_sequence: 1,
        };
        for chunk in lines.chunks(128) {
            let body = chunk.join("\n");
            let upload = gateway::ingest::read_attlog(&binding, &body, now);
            for l in &upload.punches {
                if let Some(b) = &l.badge_number {
                    badges.insert(b.clone());
                }
            }
            uploads.extend(gateway::ingest::upload_events(&binding, &upload, now));
        }
    }
    for b in badges.iter().take(40) {
        org.push(e(PersonHired {
            person_id: PersonId::new(format!("e{}", b.as_str())),
            name: format!("Worker {}", b.as_str()),
            department_id: DepartmentId::new("plant"),
            hired_on: from,
            badge_number: Some(b.clone()),
            title: None,
        }
        .into()));
    }
    org.push(e(RuleMembershipSet {
        rule_id: RuleId::new("day"),
        people: Vec::new(),
        departments: vec![DepartmentId::new("plant")],
        excluded_people: Vec::new(),
        effective_from: from,
    }
    .into()));
    let on = chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap();
    let off = chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap();
    org.push(e(RuleVersionDefined {
        rule_id: RuleId::new("day"),
        version: 1,
        name: "Day shift".into(),
        zone,
        effective_from: from,
        kind: RuleKind::Fixed(FixedRule {
            workdays: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
            ],
            day: WorkDay {
                sections: vec![Section {
                    on,
                    on_next_day: false,
                    off,
                    off_next_day: false,
                    on_window: PunchWindow::default(),
                    off_window: PunchWindow::default(),
                }],
                rests: Vec::new(),
                flex: Flex::None,
                late_out_late_in: Vec::new(),
                off_punch_required: true,
            },
        }),
        options: RuleOptions::default(),
    }
    .into()));
    (org, uploads)
}

fn worker(url: &str, store: &Path, instance: &str, clock: &str) -> Child {
    Command::new(BIN)
        .args([
            "projections",
            "--nats",
            url,
            "--instance",
            instance,
            "--store",
        ])
        .arg(store)
        .env("LEDGERCLOCK_CLOCK_AT", clock)
        .env("LEDGERCLOCK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Every view of the tenant, as the service answers (current: not rebuilding, at the
/// stream's last sequence).
async fn views(client: &async_nats::Client, last: u64) -> Vec<Value> {
    let ask = |query: &'static str, body: Value| async move {
        'again: for _ in 0..600 {
            let mut rows = Vec::new();
            let mut body = body.clone();
            loop {
                let reply = client
                    .request(
                        format!("lc.q.v1.plant.{query}"),
                        serde_json::to_vec(&body).unwrap().into(),
                    )
                    .await;
                let current = reply
                    .ok()
                    .filter(|r| r.headers.is_none())
                    .map(|r| serde_json::from_slice::<Value>(&r.payload).unwrap());
                match current {
                    Some(v)
                        if v["rebuilding"] == json!(false)
                            && v["sequence"].as_u64() == Some(last) =>
                    {
                        rows.extend(v["rows"].as_array().unwrap().iter().cloned());
                        match v["next_offset"].as_u64() {
                            Some(next) => body["offset"] = json!(next),
                            None => return Value::Array(rows),
                        }
                    }
                    _ => {
                        tokio::time::sleep(StdDuration::from_millis(50)).await;
                        continue 'again;
                    }
                }
            }
        }
        panic!("no current answer to {query}");
    };
    let mut out = Vec::new();
    for m in ["2022-01", "2022-02", "2022-03"] {
        out.push(ask("monthly", json!({"month": m})).await);
    }
    for (from, to) in [
        ("2022-01-01", "2022-01-31"),
        ("2022-02-01", "2022-02-28"),
        ("2022-03-01", "2022-03-31"),
    ] {
        out.push(ask("daily", json!({"from": from, "to": to})).await);
    }
    for d in ["REAL0", "REAL1", "REAL2"] {
        out.push(
            ask(
                "raw",
                json!({"device": d, "from": "2021-06-01", "to": "2022-03-31"}),
            )
            .await,
        );
    }
    out.push(ask("devices", json!({})).await);
    out
}

#[test]
fn workers_killed_during_a_real_device_ingest_leave_views_equal_to_a_clean_rebuild() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let clock = "2022-04-01T02:00:00Z";
    let now: DateTime<Utc> = clock.parse().unwrap();
    let (org, uploads) = real_ingest(now);
    let dir = tempfile::tempdir().unwrap();
    let server = rt
        .block_on(ledger::NatsServer::start(ledger::ServerOptions::default()))
        .unwrap();
    let url = server.url();
    let ledger = rt
        .block_on(ledger::Ledger::connect(
            &url,
            ledger::LedgerConfig::default(),
        ))
        .unwrap();
    rt.block_on(ledger.provision()).unwrap();
    rt.block_on(ledger.append_many(&org)).unwrap();

    // The ingest goes on while workers are killed at random points.
    let ingest = {
        let ledger = ledger.clone();
        rt.spawn(async move {
            for chunk in uploads.chunks(4) {
                ledger.append_many(chunk).await.unwrap();
                tokio::time::sleep(StdDuration::from_millis(15)).await;
            }
        })
    };
    let store = dir.path().join("killed");
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill points seeded with {seed}");
    for _ in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut w = worker(&url, &store, "victim", clock);
        std::thread::sleep(StdDuration::from_millis(100 + seed % 600));
        w.kill().unwrap(); // SIGKILL
        w.wait().unwrap();
    }
    rt.block_on(ingest).unwrap();
    let tenant = schemas::ids::TenantId::parse("plant").unwrap();
    let partition = ledger.partitions().of(&tenant);
    let last = rt
        .block_on(ledger.partition_last_sequence(partition))
        .unwrap();

    let mut w = worker(&url, &store, "victim", clock);
    let killed = rt.block_on(views(ledger.client(), last));
    interrupt(&w);
    w.wait().unwrap();

    // A clean rebuild of another store, then a worker on it.
    let clean = dir.path().join("clean");
    let out = Command::new(BIN)
        .args(["projections", "rebuild", "--nats", &url, "--store"])
        .arg(&clean)
        .env("LEDGERCLOCK_CLOCK_AT", clock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("rebuilt"), "{}", stdout(&out));
    let mut w = worker(&url, &clean, "clean", clock);
    let rebuilt = rt.block_on(views(ledger.client(), last));
    interrupt(&w);
    w.wait().unwrap();

    assert!(
        killed
            .iter()
            .all(|v| v.as_array().is_some_and(|a| !a.is_empty())),
        "every view has rows"
    );
    for (a, b) in killed.iter().zip(&rebuilt) {
        assert_eq!(a, b);
    }
}
