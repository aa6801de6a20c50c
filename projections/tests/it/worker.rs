//! Projection workers against a real nats-server and sled on disk: views kept current,
//! days closing as a test-moved clock passes, queries over NATS request-reply, two
//! workers dividing partitions and one taking over from the other.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use ledger::{Ledger, LedgerConfig, NatsServer, ServerOptions};
use projections::worker::{self, Clock, WorkerOptions};
use schemas::events::*;
use schemas::ids::*;
use schemas::{Actor, Envelope, Event};
use serde_json::{Value, json};

pub const ZONE: &str = "Asia/Shanghai";

pub fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

pub fn zone() -> chrono_tz::Tz {
    ZoneName::parse(ZONE).unwrap().tz()
}

/// A Monday.
pub fn day0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 16).unwrap()
}

pub fn local(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    projections::time::at(zone(), date, NaiveTime::from_hms_opt(h, m, 0).unwrap())
}

pub fn envelope(event: impl Into<Event>, at: DateTime<Utc>) -> Envelope {
    Envelope::new(
        tenant(),
        Actor::User {
            user_id: "hr".into(),
        },
        event,
        at,
    )
}

pub fn rule(version: u32, on_hour: u32, from: NaiveDate) -> RuleVersionDefined {
    RuleVersionDefined {
        rule_id: RuleId::new("office"),
        version,
        name: "Office".into(),
        zone: ZoneName::parse(ZONE).unwrap(),
        effective_from: from,
        kind: RuleKind::Fixed(FixedRule {
            workdays: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            day: WorkDay {
                sections: vec![Section {
                    on: NaiveTime::from_hms_opt(on_hour, 0, 0).unwrap(),
                    on_next_day: false,
                    off: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
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
}

/// A department, two people (badges 1 and 2) hired on `day0`, and the 09:00 rule.
pub fn organisation() -> Vec<Envelope> {
    let at = local(day0(), 0, 0) - Duration::days(1);
    let d = DepartmentId::new("ops");
    let mut out = vec![envelope(
        DepartmentDefined {
            department_id: d.clone(),
            name: "Operations".into(),
            parent: None,
        },
        at,
    )];
    for (id, name, badge) in [("li", "Li Wei", "1"), ("wang", "Wang Fang", "2")] {
        out.push(envelope(
            PersonHired {
                person_id: PersonId::new(id),
                name: name.into(),
                department_id: d.clone(),
                hired_on: day0(),
                badge_number: Some(BadgeNumber::new(badge)),
                title: None,
            },
            at,
        ));
    }
    out.push(envelope(
        RuleMembershipSet {
            rule_id: RuleId::new("office"),
            people: Vec::new(),
            departments: vec![d],
            excluded_people: Vec::new(),
            effective_from: day0(),
        },
        at,
    ));
    out.push(envelope(rule(1, 9, day0()), at));
    out
}

pub fn upload(badge: &str, times: &[DateTime<Utc>]) -> Envelope {
    let sn = DeviceSn::new("CQZ1");
    let zone_name = ZoneName::parse(ZONE).unwrap();
    let punches = times
        .iter()
        .map(|t| {
            let local = projections::time::local(zone(), *t);
            Punch::from_device(
                sn.clone(),
                BadgeNumber::new(badge),
                local,
                zone_name.clone(),
                *t,
            )
        })
        .collect();
    let mut e = envelope(
        PunchesRecorded {
            sn: sn.clone(),
            punches,
        },
        *times.last().unwrap(),
    );
    e.actor = Actor::Device { sn };
    e
}

#[derive(Debug, Clone)]
pub struct TestClock(pub Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
    pub fn clock(&self) -> Clock {
        let c = self.0.clone();
        Clock::from_fn(move || *c.lock().unwrap())
    }
}

pub struct World {
    pub _server: NatsServer,
    pub url: String,
    pub ledger: Ledger,
    pub dir: tempfile::TempDir,
}

pub async fn world() -> World {
    let server = NatsServer::start(ServerOptions::default()).await.unwrap();
    let ledger = Ledger::connect(&server.url(), LedgerConfig::default())
        .await
        .unwrap();
    ledger.provision().await.unwrap();
    World {
        url: server.url(),
        _server: server,
        ledger,
        dir: tempfile::tempdir().unwrap(),
    }
}

pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
    ledger: Ledger,
}

impl Running {
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.await.unwrap();
    }

    /// Gone without a word, as a killed process would be: its connection closes, it
    /// renews no lease and hears no request.
    pub async fn abort(self) {
        self.handle.abort();
        let _ = self.ledger.drain().await;
    }
}

pub async fn start_worker(world: &World, name: &str, clock: &TestClock) -> Running {
    let mut options = WorkerOptions::new(world.dir.path().join(name));
    options.instance = name.to_owned();
    options.clock = clock.clock();
    options.lease_ttl = StdDuration::from_secs(3);
    options.tick = StdDuration::from_millis(100);
    let ledger = Ledger::connect(&world.url, LedgerConfig::default())
        .await
        .unwrap();
    let own = ledger.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        worker::run(ledger, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        stop: Some(tx),
        handle,
        ledger: own,
    }
}

/// Asks a query; `Err((code, reason))` for a service error.
pub async fn ask(ledger: &Ledger, query: &str, body: Value) -> Result<Value, (u16, String)> {
    let reply = ledger
        .client()
        .request(
            format!("lc.q.v1.{}.{query}", tenant()),
            serde_json::to_vec(&body).unwrap().into(),
        )
        .await
        .map_err(|e| (0, e.to_string()))?;
    if let Some(h) = &reply.headers
        && let Some(code) = h.get("Nats-Service-Error-Code")
    {
        let reason = h
            .get("Nats-Service-Error")
            .map(|v| ledger::subjects::header_text(v.as_str()))
            .unwrap_or_default();
        return Err((code.as_str().parse().unwrap(), reason));
    }
    Ok(serde_json::from_slice(&reply.payload).unwrap())
}

/// Asks until the answer is current (not rebuilding, at least `sequence`) and `ok` holds.
pub async fn ask_until(
    ledger: &Ledger,
    query: &str,
    body: Value,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = None;
    for _ in 0..300 {
        match ask(ledger, query, body.clone()).await {
            Ok(v) if v["rebuilding"] == json!(false) && ok(&v) => return v,
            other => last = Some(other),
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("no satisfying answer to {query} {body}; last: {last:?}");
}

fn status_of(answer: &Value, person: &str, date: NaiveDate) -> Option<Value> {
    answer["rows"]
        .as_array()?
        .iter()
        .find(|r| r["person_id"] == json!(person) && r["date"] == json!(date.to_string()))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_is_in_progress_then_closes_and_a_backlog_undoes_absence() {
    let w = world().await;
    let clock = TestClock::new(local(day0(), 10, 0));
    w.ledger.append_many(&organisation()).await.unwrap();
    w.ledger
        .append_many(&[upload("1", &[local(day0(), 8, 55)])])
        .await
        .unwrap();
    let running = start_worker(&w, "a", &clock).await;

    // 10:00: Li Wei punched in; his off slot waits. Wang Fang has not punched: not
    // absent yet.
    let q = json!({"from": day0(), "to": day0(), "detail": true});
    let a = ask_until(&w.ledger, "daily", q.clone(), |a| {
        status_of(a, "li", day0()).is_some()
    })
    .await;
    // Without `detail`, the same day as its report columns show it.
    let data = ask(&w.ledger, "daily", json!({"from": day0(), "to": day0()}))
        .await
        .unwrap();
    let data = status_of(&data, "li", day0()).unwrap();
    assert_eq!(data["day"]["punch_count"], json!(1), "{data}");
    assert_eq!(
        data["day"]["original"],
        status_of(&a, "li", day0()).unwrap()["day"]["original"]
    );
    assert!(data["day"].get("sections").is_none(), "{data}");
    let li = status_of(&a, "li", day0()).unwrap();
    assert_eq!(li["summary"], json!("in_progress"), "{li}");
    assert_eq!(li["day"]["in_progress"], json!(true));
    assert_eq!(
        li["day"]["sections"][0]["on"]["original"]["status"],
        json!("normal")
    );
    assert_eq!(
        li["day"]["sections"][0]["off"]["original"]["status"],
        json!("pending")
    );
    assert_eq!(li["person"], json!("Li Wei"));
    assert_eq!(li["department"], json!("Operations"));
    assert_eq!(li["badge_number"], json!("1"));
    let wang = status_of(&a, "wang", day0()).unwrap();
    assert_eq!(wang["summary"], json!("in_progress"));
    assert_eq!(
        wang["day"]["calibrated"]["exceptions"]["absent"]["count"],
        json!(0)
    );

    // The day ends with no event: Wang Fang is absent (summary 缺卡), Li Wei missed
    // his off punch.
    clock.set(local(day0() + Duration::days(1), 0, 30));
    let a = ask_until(&w.ledger, "daily", q.clone(), |a| {
        status_of(a, "wang", day0()).is_some_and(|r| r["summary"] == json!("missing_punch"))
    })
    .await;
    let wang = status_of(&a, "wang", day0()).unwrap();
    assert_eq!(wang["summary_label"], json!("缺卡"));
    assert_eq!(wang["day"]["calibrated"]["status"], json!(["absent"]));
    assert_eq!(
        wang["day"]["calibrated"]["exceptions"]["absent"]["seconds"],
        json!(9 * 3600)
    );
    let li = status_of(&a, "li", day0()).unwrap();
    assert_eq!(li["day"]["original"]["status"], json!(["missing_punch"]));
    // The next day exists, in progress.
    let next = ask_until(
        &w.ledger,
        "daily",
        json!({"from": day0() + Duration::days(1)}),
        |a| a["rows"].as_array().is_some_and(|r| r.len() == 2),
    )
    .await;
    assert_eq!(next["rows"][0]["summary"], json!("in_progress"));

    // Two days late, the device's backlog arrives: Wang Fang worked.
    clock.set(local(day0() + Duration::days(2), 12, 0));
    w.ledger
        .append_many(&[upload("2", &[local(day0(), 8, 50), local(day0(), 18, 5)])])
        .await
        .unwrap();
    let a = ask_until(&w.ledger, "daily", q.clone(), |a| {
        status_of(a, "wang", day0()).is_some_and(|r| r["summary"] == json!("normal"))
    })
    .await;
    let wang = status_of(&a, "wang", day0()).unwrap();
    assert_eq!(wang["day"]["work_s"], json!(9 * 3600));

    // The month so far.
    // (Today, day0 + 2, appears with the clock's next tick.)
    let m = ask_until(&w.ledger, "monthly", json!({"month": "2026-11"}), |a| {
        a["rows"]
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|r| r["workdays"] == json!(3)))
    })
    .await;
    let wang = m["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["person_id"] == json!("wang"))
        .unwrap();
    assert_eq!(wang["workdays"], json!(3));
    assert_eq!(wang["normal_days"], json!(1));
    assert_eq!(wang["exception_days"], json!(1), "{wang}");
    assert_eq!(wang["in_progress_days"], json!(1));

    // Explain names the events that made the day, with sequences.
    let e = ask(
        &w.ledger,
        "explain",
        json!({"person": "wang", "date": day0()}),
    )
    .await
    .unwrap();
    let events = e["rows"][0]["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"PunchesRecorded"), "{kinds:?}");
    assert!(kinds.contains(&"RuleVersionDefined"), "{kinds:?}");
    assert!(kinds.contains(&"RuleMembershipSet"), "{kinds:?}");
    assert!(events.iter().all(|e| e["sequence"].as_u64().unwrap() > 0));
    assert_eq!(e["rows"][0]["stored_matches"], json!(true));

    // Refusals: an unknown person, a bad body, an unknown department.
    let err = ask(&w.ledger, "daily", json!({"people": ["nobody"]}))
        .await
        .unwrap_err();
    assert_eq!(err.0, 404, "{err:?}");
    let err = ask(&w.ledger, "daily", json!({"from": "yesterday"}))
        .await
        .unwrap_err();
    assert_eq!(err.0, 400, "{err:?}");
    let err = ask(&w.ledger, "daily", json!({"department": "nowhere"}))
        .await
        .unwrap_err();
    assert_eq!(err.0, 404, "{err:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_changed_now_rejudges_today_and_leaves_yesterday_alone() {
    let w = world().await;
    let tuesday = day0() + Duration::days(1);
    let clock = TestClock::new(local(tuesday, 12, 0));
    w.ledger.append_many(&organisation()).await.unwrap();
    w.ledger
        .append_many(&[upload(
            "1",
            &[
                local(day0(), 9, 20),
                local(day0(), 18, 0),
                local(tuesday, 9, 20),
            ],
        )])
        .await
        .unwrap();
    let running = start_worker(&w, "a", &clock).await;
    let q = json!({"people": ["li"], "from": day0(), "to": tuesday, "detail": true});
    let late = |a: &Value, d: NaiveDate| {
        status_of(a, "li", d).map(|r| r["day"]["sections"][0]["on"]["original"]["status"].clone())
    };
    let a = ask_until(&w.ledger, "daily", q.clone(), |a| {
        late(a, tuesday).is_some()
    })
    .await;
    assert_eq!(late(&a, day0()), Some(json!("late")));
    assert_eq!(late(&a, tuesday), Some(json!("late")));

    // 09:30 from today: today is on time, yesterday stays late under version 1.
    w.ledger
        .append_many(&[envelope(rule(2, 10, tuesday), local(tuesday, 12, 0))])
        .await
        .unwrap();
    let a = ask_until(&w.ledger, "daily", q.clone(), |a| {
        late(a, tuesday) == Some(json!("normal"))
    })
    .await;
    assert_eq!(late(&a, day0()), Some(json!("late")));
    assert_eq!(
        status_of(&a, "li", day0()).unwrap()["day"]["rule"]["version"],
        json!(1)
    );
    assert_eq!(
        status_of(&a, "li", tuesday).unwrap()["day"]["rule"]["version"],
        json!(2)
    );

    // From tomorrow: today is untouched.
    let wednesday = tuesday + Duration::days(1);
    w.ledger
        .append_many(&[envelope(rule(3, 8, wednesday), local(tuesday, 12, 5))])
        .await
        .unwrap();
    let before = a["sequence"].as_u64().unwrap();
    let a = ask_until(&w.ledger, "daily", q.clone(), |a| {
        a["sequence"].as_u64().unwrap() > before
    })
    .await;
    assert_eq!(late(&a, tuesday), Some(json!("normal")));
    assert_eq!(
        status_of(&a, "li", tuesday).unwrap()["day"]["rule"]["version"],
        json!(2)
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_divide_the_partitions_and_one_takes_over_from_the_other() {
    let w = world().await;
    let clock = TestClock::new(local(day0() + Duration::days(1), 3, 0));
    w.ledger.append_many(&organisation()).await.unwrap();
    w.ledger
        .append_many(&[upload("1", &[local(day0(), 8, 55), local(day0(), 18, 1)])])
        .await
        .unwrap();
    let a = start_worker(&w, "a", &clock).await;
    let b = start_worker(&w, "b", &clock).await;
    // Both hold partitions: four each.
    let mut counts = (0, 0);
    for _ in 0..200 {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        let Ok(kv) = w
            .ledger
            .jetstream()
            .get_key_value(worker::OWNERS_BUCKET)
            .await
        else {
            continue;
        };
        counts = (0, 0);
        for k in 0..8 {
            if let Ok(Some(v)) = kv.get(format!("p{k}")).await {
                match v.as_ref() {
                    b"a" => counts.0 += 1,
                    b"b" => counts.1 += 1,
                    _ => {}
                }
            }
        }
        if counts == (4, 4) {
            break;
        }
    }
    assert_eq!(counts, (4, 4), "two workers divide eight partitions");
    // Any worker answers (forwarding to the owner).
    let q = json!({"people": ["li"], "from": day0()});
    let before = ask_until(&w.ledger, "daily", q.clone(), |a| {
        status_of(a, "li", day0()).is_some_and(|r| r["summary"] == json!("normal"))
    })
    .await;

    // The owner of acme's partition dies without a word; the other takes it over.
    let p = w.ledger.partitions().of(&tenant());
    let kv = w
        .ledger
        .jetstream()
        .get_key_value(worker::OWNERS_BUCKET)
        .await
        .unwrap();
    let owner = kv.get(format!("p{p}")).await.unwrap().unwrap();
    let survivor = if owner.as_ref() == b"a" {
        a.abort().await;
        b
    } else {
        b.abort().await;
        a
    };
    let started = std::time::Instant::now();
    let mut after = None;
    for _ in 0..400 {
        let holder = kv.get(format!("p{p}")).await.unwrap();
        if holder.is_some() && holder.as_ref() != Some(&owner) {
            after = Some(
                ask_until(&w.ledger, "daily", q.clone(), |a| {
                    status_of(a, "li", day0()).is_some()
                })
                .await,
            );
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let after = after.expect("the survivor takes the partition over");
    let took = started.elapsed();
    assert_eq!(before["rows"], after["rows"]);
    let owner_now = kv.get(format!("p{p}")).await.unwrap().unwrap();
    assert_ne!(owner_now, owner, "the survivor holds the partition");
    eprintln!("takeover answered after {took:?}");
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_corrupted_or_outdated_store_rebuilds_by_itself() {
    let w = world().await;
    let clock = TestClock::new(local(day0() + Duration::days(2), 12, 0));
    w.ledger.append_many(&organisation()).await.unwrap();
    w.ledger
        .append_many(&[upload(
            "1",
            &[
                local(day0(), 8, 55),
                local(day0(), 18, 3),
                local(day0() + Duration::days(1), 9, 30),
            ],
        )])
        .await
        .unwrap();
    let q = json!({"from": day0(), "to": day0() + Duration::days(2), "detail": true});
    let full = |a: &Value| a["rows"].as_array().is_some_and(|r| r.len() == 6);
    let running = start_worker(&w, "a", &clock).await;
    let expected = ask_until(&w.ledger, "daily", q.clone(), full).await;
    running.stop().await;
    let store = w.dir.path().join("a");
    let p = w.ledger.partitions().of(&tenant());

    // Deleted.
    std::fs::remove_dir_all(&store).unwrap();
    let running = start_worker(&w, "a", &clock).await;
    assert_eq!(
        ask_until(&w.ledger, "daily", q.clone(), full).await["rows"],
        expected["rows"]
    );
    running.stop().await;

    // A stored view overwritten with bytes that are not a view: the query that reads it
    // says "rebuilding", the worker rebuilds, the answer comes back whole.
    {
        let db = open_stopped(&store);
        let tree = db.open_tree(format!("p{p}")).unwrap();
        let k = projections::store::key::day(&tenant(), &PersonId::new("li"), day0());
        assert!(tree.get(&k).unwrap().is_some());
        tree.insert(k, b"\xc1 not a view".as_slice()).unwrap();
        db.flush().unwrap();
    }
    let running = start_worker(&w, "a", &clock).await;
    let mut saw_rebuilding = false;
    for _ in 0..300 {
        match ask(&w.ledger, "daily", q.clone()).await {
            Err((503, _)) => saw_rebuilding = true,
            Ok(a)
                if full(&a) && a["rebuilding"] == json!(false) && a["rows"] == expected["rows"] =>
            {
                break;
            }
            _ => {}
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert!(saw_rebuilding, "the corrupt view was noticed");
    assert_eq!(
        ask_until(&w.ledger, "daily", q.clone(), full).await["rows"],
        expected["rows"]
    );
    running.stop().await;

    // Another projection version, and a checkpoint past the stream's end.
    {
        let db = open_stopped(&store);
        let tree = db.open_tree(format!("p{p}")).unwrap();
        tree.insert(projections::store::key::VERSION, &999u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let running = start_worker(&w, "a", &clock).await;
    assert_eq!(
        ask_until(&w.ledger, "daily", q.clone(), full).await["rows"],
        expected["rows"]
    );
    running.stop().await;
    {
        let db = open_stopped(&store);
        let tree = db.open_tree(format!("p{p}")).unwrap();
        for v in projections::fold::VIEWS {
            tree.insert(
                projections::store::key::checkpoint(v),
                &1_000_000u64.to_be_bytes(),
            )
            .unwrap();
        }
        db.flush().unwrap();
    }
    let running = start_worker(&w, "a", &clock).await;
    let a = ask_until(&w.ledger, "daily", q.clone(), full).await;
    assert_eq!(a["rows"], expected["rows"]);
    assert!(a["sequence"].as_u64().unwrap() < 1_000_000);
    running.stop().await;

    // Files that are not a sled store at all.
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("conf"), b"garbage").unwrap();
    std::fs::write(store.join("db"), vec![0x5a; 4096]).unwrap();
    let running = start_worker(&w, "a", &clock).await;
    assert_eq!(
        ask_until(&w.ledger, "daily", q.clone(), full).await["rows"],
        expected["rows"]
    );
    running.stop().await;
}

/// Opens a stopped worker's store: sled's flusher thread lets the file lock go a moment
/// after the worker has dropped the store.
fn open_stopped(store: &std::path::Path) -> sled::Db {
    for _ in 0..200 {
        if let Ok(db) = sled::open(store) {
            return db;
        }
        std::thread::sleep(StdDuration::from_millis(50));
    }
    sled::open(store).unwrap()
}
