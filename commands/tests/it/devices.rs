//! Device commands against a real nats-server: whole rounds, racing writers, dated
//! transfers and leaves reaching devices at their midnight, and binds cut short.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use commands::devices::{self, Bind, DeviceAct, Scope};
use commands::organisation::PersonCommand;
use commands::{CommandError, Outcome, Rejection, Request};
use ledger::{Expected, LedgerConfig};
use schemas::events::{DeviceClaimed, DeviceCommand, PersonHired, RosterMemberPushed};
use schemas::ids::{BadgeNumber, CommandId, DeviceSn, TenantId};
use schemas::{Actor, Envelope, Event};

use crate::*;

fn admin() -> Actor {
    Actor::User {
        user_id: "it-zhao".into(),
    }
}

fn req<C>(id: &str, command: C) -> Request<C> {
    Request {
        tenant: tenant(),
        actor: admin(),
        command_id: id.into(),
        command,
    }
}

fn sn() -> DeviceSn {
    DeviceSn::from("CQZ7224460246")
}

fn door() -> Bind {
    Bind {
        sn: sn(),
        name: "Front door".into(),
        model: None,
        zone: ZoneName::parse("Asia/Shanghai").unwrap(),
        records_from: None,
    }
}

/// `n` people in production with badge numbers 1001.., hired as events.
async fn staff(w: &World, n: u32) {
    organisation(w, &[]).await;
    let hires: Vec<Envelope> = (0..n)
        .map(|i| {
            Envelope::new(
                tenant(),
                admin(),
                PersonHired {
                    person_id: format!("p{i:04}").as_str().into(),
                    name: format!("Worker {i}"),
                    department_id: "prod".into(),
                    hired_on: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                    badge_number: Some(BadgeNumber::from(format!("{}", 1001 + i).as_str())),
                    title: None,
                },
                now(),
            )
        })
        .collect();
    for chunk in hires.chunks(500) {
        w.ledger.append_many(chunk).await.unwrap();
    }
}

fn production() -> DeviceAct {
    DeviceAct::Scope {
        sn: sn(),
        scope: Scope {
            departments: vec!["prod".into()],
            ..Scope::default()
        },
    }
}

fn count(events: &[(u64, Envelope)], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|(_, e)| pred(&e.event)).count()
}

/// Each device command queued, by id; panics on a repeated id.
fn queued_ids(events: &[(u64, Envelope)]) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    for (_, e) in events {
        if let Event::DeviceCommandQueued(q) = &e.event {
            assert!(
                ids.insert(q.command_id),
                "command id {} queued twice",
                q.command_id
            );
        }
    }
    ids
}

/// Every pushed person has the `DATA UPDATE USERINFO` that carries them, and no more.
fn pushes_match_commands(events: &[(u64, Envelope)]) {
    let pushed: BTreeSet<String> = events
        .iter()
        .filter_map(|(_, e)| match &e.event {
            Event::RosterMemberPushed(RosterMemberPushed { badge_number, .. }) => {
                Some(badge_number.to_string())
            }
            _ => None,
        })
        .collect();
    let sent: BTreeSet<String> = events
        .iter()
        .filter_map(|(_, e)| match &e.event {
            Event::DeviceCommandQueued(q) => match &q.command {
                DeviceCommand::UpdateUser { badge_number, .. } => Some(badge_number.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(pushed, sent);
}

#[tokio::test]
async fn a_scope_of_a_thousand_people_is_stored_in_whole_rounds_once() {
    let w = world().await;
    staff(&w, 1000).await;
    devices::execute(&w.ledger, &req("bind", DeviceAct::Bind(door())), now())
        .await
        .unwrap();
    let done = devices::execute(&w.ledger, &req("scope", production()), now())
        .await
        .unwrap();
    assert_eq!(done.changes.len(), 1000);
    let events = stream(&w).await;
    assert_eq!(
        count(&events, |e| matches!(e, Event::RosterMemberPushed(_))),
        1000
    );
    assert_eq!(queued_ids(&events), (1..=1000).collect());
    pushes_match_commands(&events);
    // Each round is one atomic batch: its events are consecutive in the stream, and no
    // round holds more than MAX_CHANGES changes.
    let mut rounds: Vec<(String, Vec<u64>)> = Vec::new();
    for (seq, e) in &events {
        let Some(id) = e.command_id.as_ref().map(|c| c.to_string()) else {
            continue;
        };
        match rounds.last_mut() {
            Some((last, seqs)) if *last == id => seqs.push(*seq),
            _ => rounds.push((id, vec![*seq])),
        }
    }
    let scope_rounds: Vec<_> = rounds
        .iter()
        .filter(|(id, _)| id.starts_with("scope"))
        .collect();
    assert_eq!(
        scope_rounds
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["scope", "scope.sync1", "scope.sync2"],
        "the act with its first {} changes, then rounds",
        devices::MAX_CHANGES
    );
    for (id, seqs) in scope_rounds {
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{id} is not one batch"
        );
        assert!(
            seqs.len() <= 2 * devices::MAX_CHANGES + 1,
            "{id}: {}",
            seqs.len()
        );
    }
    // The same command again stores nothing; a sync finds nothing to do.
    let again = devices::execute(&w.ledger, &req("scope", production()), now())
        .await
        .unwrap();
    assert!(matches!(again.outcome, Outcome::AlreadyDone(_)));
    assert!(again.changes.is_empty());
    let synced = devices::sync(&w.ledger, &tenant(), &admin(), &"s".into(), None, now())
        .await
        .unwrap();
    assert!(synced.changes.is_empty());
    assert_eq!(stream(&w).await.len(), events.len());
}

/// Two administrators' tools sync the same tenant at once, and two more queue
/// commands for the device meanwhile: every person is pushed once, every command id
/// is taken once.
#[tokio::test]
async fn racing_writers_never_push_twice_or_share_a_command_id() {
    let w = world().await;
    staff(&w, 300).await;
    devices::execute(&w.ledger, &req("bind", DeviceAct::Bind(door())), now())
        .await
        .unwrap();
    // The scope alone (a tool that stored it, then died before sending anyone).
    w.ledger
        .append(
            &Envelope::new(
                tenant(),
                admin(),
                schemas::events::DeviceScopeSet {
                    sn: sn(),
                    people: vec![],
                    departments: vec!["prod".into()],
                    include_sub_departments: false,
                    excluded_people: vec![],
                    excluded_departments: vec![],
                    on_leaving_scope: Default::default(),
                },
                now(),
            ),
            Expected::Any,
        )
        .await
        .unwrap();
    let second = Ledger::connect(&w.server.url(), LedgerConfig::default())
        .await
        .unwrap();
    let sync = |ledger: Ledger, id: &'static str| async move {
        devices::sync(&ledger, &tenant(), &admin(), &id.into(), None, now()).await
    };
    let send = |ledger: Ledger| async move {
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(
                devices::send(
                    &ledger,
                    &tenant(),
                    &sn(),
                    DeviceCommand::Info,
                    admin(),
                    now(),
                )
                .await
                .unwrap(),
            );
        }
        ids
    };
    let (a, b, c, d) = tokio::join!(
        sync(w.ledger.clone(), "tool-a"),
        sync(second.clone(), "tool-b"),
        send(w.ledger.clone()),
        send(second.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.changes.len() + b.changes.len(), 300, "each person once");
    let events = stream(&w).await;
    assert_eq!(
        count(&events, |e| matches!(e, Event::RosterMemberPushed(_))),
        300
    );
    pushes_match_commands(&events);
    let ids = queued_ids(&events);
    assert_eq!(ids, (1..=320).collect());
    let sent: BTreeSet<u64> = c.into_iter().chain(d).collect();
    assert_eq!(sent.len(), 20, "every send answered its own id");
}

fn transfer_tomorrow(person: &str) -> PersonCommand {
    PersonCommand::Transfer {
        person_id: person.into(),
        department_id: "office".into(),
        effective_from: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
    }
}

fn leave_today(person: &str) -> PersonCommand {
    PersonCommand::Leave {
        person_id: person.into(),
        left_on: NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
        reason: None,
    }
}

/// 2026-12-04 00:00:30 in Shanghai, the device's zone.
fn shanghai_midnight() -> DateTime<Utc> {
    "2026-12-03T16:00:30Z".parse().unwrap()
}

fn removed(events: &[(u64, Envelope)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match &e.event {
            Event::RosterMemberRemoved(r) => r.person_id.as_ref().map(|p| p.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_transfer_or_a_leave_reaches_the_device_at_its_midnight_not_before() {
    let w = world().await;
    staff(&w, 3).await;
    devices::execute(&w.ledger, &req("bind", DeviceAct::Bind(door())), now())
        .await
        .unwrap();
    devices::execute(&w.ledger, &req("scope", production()), now())
        .await
        .unwrap();
    // Recorded today (Dec 3): p0000 moves to the office from tomorrow, p0001's last
    // day is today.
    for (id, command) in [
        ("t", transfer_tomorrow("p0000")),
        ("l", leave_today("p0001")),
    ] {
        commands::execute(&w.ledger, &req(id, command), now())
            .await
            .unwrap();
        let synced = devices::sync(&w.ledger, &tenant(), &admin(), &id.into(), None, now())
            .await
            .unwrap();
        assert!(synced.changes.is_empty(), "{id}: {:?}", synced.changes);
    }
    // A second before midnight nothing changes; at 00:00 in Shanghai both leave the device.
    let before = shanghai_midnight() - chrono::Duration::seconds(31);
    let synced = devices::sync(&w.ledger, &tenant(), &admin(), &"b".into(), None, before)
        .await
        .unwrap();
    assert!(synced.changes.is_empty());
    let synced = devices::sync(
        &w.ledger,
        &tenant(),
        &admin(),
        &"m".into(),
        None,
        shanghai_midnight(),
    )
    .await
    .unwrap();
    assert_eq!(synced.changes.len(), 2, "{:?}", synced.changes);
    assert_eq!(removed(&stream(&w).await), ["p0000", "p0001"]);
}

/// The daily job, on two instances at once with the clock moved past midnight: one
/// holds the lease, and the day's changes are stored once.
#[tokio::test]
async fn the_daily_scope_job_runs_on_one_instance_at_the_devices_midnight() {
    let w = world().await;
    staff(&w, 2).await;
    devices::execute(&w.ledger, &req("bind", DeviceAct::Bind(door())), now())
        .await
        .unwrap();
    devices::execute(&w.ledger, &req("scope", production()), now())
        .await
        .unwrap();
    commands::execute(&w.ledger, &req("t", transfer_tomorrow("p0000")), now())
        .await
        .unwrap();
    let clock_at = Arc::new(std::sync::Mutex::new(now()));
    let clock: commands::service::Clock = {
        let at = clock_at.clone();
        Arc::new(move || *at.lock().unwrap())
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut jobs = Vec::new();
    for name in ["cmd-a", "cmd-b"] {
        let mut options = commands::jobs::JobOptions::new(name);
        options.every = Duration::from_millis(100);
        let mut stopped = stopped.clone();
        jobs.push(tokio::spawn(commands::jobs::run_scopes(
            w.ledger.clone(),
            clock.clone(),
            options,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        )));
    }
    // Both instances look for a while in the day: nothing to do yet.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(removed(&stream(&w).await).is_empty());
    let holder = w
        .ledger
        .jetstream()
        .get_key_value(commands::jobs::JOBS_BUCKET)
        .await
        .unwrap()
        .get(commands::jobs::SCOPES_KEY)
        .await
        .unwrap()
        .expect("one instance holds the job");
    assert!(["cmd-a".as_bytes(), "cmd-b".as_bytes()].contains(&holder.as_ref()));
    *clock_at.lock().unwrap() = shanghai_midnight();
    let mut waited = 0;
    while removed(&stream(&w).await).is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
        assert!(waited < 300, "the midnight sync never came");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(removed(&stream(&w).await), ["p0000"], "stored once");
    stop.send(true).unwrap();
    for j in jobs {
        j.await.unwrap();
    }
}

#[tokio::test]
async fn a_bind_or_unbind_cut_short_is_finished_by_its_retry() {
    let w = world().await;
    organisation(&w, &[]).await;
    // A bind that stored its claim and died before the tenant's half.
    let claim = Envelope::new(
        TenantId::system(),
        admin(),
        DeviceClaimed {
            sn: sn(),
            tenant: tenant(),
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        },
        now(),
    )
    .of_command(&CommandId::from("bind-1"), 0);
    w.ledger.append(&claim, Expected::Empty).await.unwrap();
    let bind = req("bind-1", door());
    let finished = devices::bind(&w.ledger, &bind, now()).await.unwrap();
    assert!(
        matches!(&finished, Outcome::Applied(e) if e.len() == 1),
        "{finished:?}"
    );
    let bound = stream(&w)
        .await
        .into_iter()
        .find_map(|(_, e)| match e.event {
            Event::DeviceBound(b) => Some(b),
            _ => None,
        })
        .expect("bound in the tenant");
    assert_eq!(bound.records_from, NaiveDate::from_ymd_opt(2026, 12, 1));
    assert!(matches!(
        devices::bind(&w.ledger, &bind, now()).await.unwrap(),
        Outcome::AlreadyDone(_)
    ));
    let other = devices::bind(&w.ledger, &req("bind-2", door()), now()).await;
    assert!(
        matches!(&other, Err(CommandError::Refused(Rejection::Conflict(r))) if r.contains("already bound")),
        "{other:?}"
    );
    // An unbind that released the claim and died: the retry unbinds and wipes.
    let release = Envelope::new(
        TenantId::system(),
        admin(),
        schemas::events::DeviceReleased {
            sn: sn(),
            tenant: tenant(),
        },
        now(),
    )
    .of_command(&CommandId::from("unbind-1"), 0);
    w.ledger.append(&release, Expected::Any).await.unwrap();
    let unbind = req("unbind-1", sn());
    devices::unbind(&w.ledger, &unbind, now()).await.unwrap();
    let events = stream(&w).await;
    assert_eq!(count(&events, |e| matches!(e, Event::DeviceUnbound(_))), 1);
    assert!(events.iter().any(|(_, e)| matches!(
        &e.event,
        Event::DeviceCommandQueued(q) if q.command == DeviceCommand::ClearData
    )));
    assert!(matches!(
        devices::unbind(&w.ledger, &unbind, now()).await.unwrap(),
        Outcome::AlreadyDone(_)
    ));
    let again = devices::unbind(&w.ledger, &req("unbind-2", sn()), now()).await;
    assert!(
        matches!(&again, Err(CommandError::Refused(Rejection::Unknown(r))) if r.contains("not bound")),
        "{again:?}"
    );
}

/// A hire over the NATS command service reaches the scoped device, as one from the
/// CLI does.
#[tokio::test]
async fn a_hire_over_the_service_reaches_scoped_devices() {
    let w = world().await;
    staff(&w, 1).await;
    devices::execute(&w.ledger, &req("bind", DeviceAct::Bind(door())), now())
        .await
        .unwrap();
    devices::execute(&w.ledger, &req("scope", production()), now())
        .await
        .unwrap();
    let body = serde_json::json!({
        "command_id": "hire-9",
        "actor": "hr-wang",
        "command": {"hire": {
            "person_id": "p9", "name": "Li Wei", "department_id": "prod",
            "badge": "9009", "hired_on": "2026-12-03"
        }}
    });
    let answer = commands::service::handle(
        &w.ledger,
        "people",
        "lc.cmd.v1.acme.people",
        &serde_json::to_vec(&body).unwrap(),
        now(),
    )
    .await
    .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let kinds: Vec<&str> = answer["devices"]
        .as_array()
        .expect("what the devices were sent")
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["RosterMemberPushed", "DeviceCommandQueued"]);
}
