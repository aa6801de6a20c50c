//! The query service's contract: its JSON Schemas are checked in under
//! `schemas/json/queries/` (`LEDGERCLOCK_BLESS=1` regenerates them), and what it answers
//! for each replay fixture is a reviewed snapshot, computed by the fold and the queries
//! themselves over an in-memory store.

use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use projections::book::load_jsonl;
use projections::fold::Fold;
use projections::query::{DailyRequest, MonthlyRequest, Scope};
use projections::store::MemStore;
use schemas::Envelope;

#[test]
fn checked_in_query_schemas_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/json/queries");
    let bless = std::env::var_os("LEDGERCLOCK_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, schema) in projections::query::schemas() {
        let mut text = serde_json::to_string_pretty(&schema).unwrap();
        text.push('\n');
        let file = dir.join(format!("{name}.schema.json"));
        if std::fs::read_to_string(&file).unwrap_or_default() != text {
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, text).unwrap();
            } else {
                stale.push(file.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale query schemas (LEDGERCLOCK_BLESS=1 cargo test -p projections): {stale:?}"
    );
}

/// A fixture file's events.
fn events_of(text: &str) -> Vec<Envelope> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| Envelope::from_json(l).unwrap())
        .collect()
}

/// The views of `events` folded in one batch, then caught up to `now`.
fn fold_at(events: &[Envelope], now: DateTime<Utc>) -> (Fold, MemStore) {
    let mut store = MemStore::default();
    let mut fold = Fold::new();
    let batch: Vec<(u64, &Envelope)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u64 + 1, e))
        .collect();
    let (changes, _) = fold.apply(&store, &batch, now).unwrap();
    store.commit(changes);
    let (changes, _) = fold.tick(&store, now).unwrap();
    store.commit(changes);
    (fold, store)
}

#[test]
fn query_answers_for_the_replay_fixtures() {
    insta::glob!("../../../replay-fixtures", "*.jsonl", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let events = events_of(&text);
        let (book, _) = load_jsonl(std::io::BufReader::new(text.as_bytes()), None).unwrap();
        let Some((from, to)) = book.punch_dates() else {
            return;
        };
        // The clock: a week after the last punch, so every day has closed.
        let now: DateTime<Utc> = (to + Duration::days(7))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let (fold, store) = fold_at(&events, now);
        let tenant = events[0].tenant.clone();
        let scope = Scope {
            tenant: &tenant,
            book: fold.book(&tenant).unwrap(),
            store: &store,
            now,
        };
        let (daily, _) = scope
            .daily(&DailyRequest {
                from: Some(from),
                to: Some(to),
                detail: true,
                ..DailyRequest::default()
            })
            .unwrap();
        // Without `detail`, each day is the same day less its detail (decoded apart, from
        // the same stored bytes).
        let (data, _) = scope
            .daily(&DailyRequest {
                from: Some(from),
                to: Some(to),
                ..DailyRequest::default()
            })
            .unwrap();
        assert_eq!(data.len(), daily.len());
        for (d, full) in data.iter().zip(&daily) {
            let d: serde_json::Value = serde_json::from_str(d.get()).unwrap();
            let mut full: serde_json::Value = serde_json::from_str(full.get()).unwrap();
            if let Some(day) = full["day"].as_object_mut() {
                for k in ["sections", "punches", "calibrations"] {
                    assert!(day.remove(k).is_some(), "{k} is detail");
                }
            }
            assert_eq!(d, full, "{}", path.display());
        }
        let month = |d: NaiveDate| d.format("%Y-%m").to_string();
        let (monthly, _) = scope
            .monthly(&MonthlyRequest {
                month: Some(month(from)),
                ..MonthlyRequest::default()
            })
            .unwrap();
        let rows = |rows: Vec<projections::query::Row>| -> Vec<serde_json::Value> {
            rows.iter()
                .map(|r| serde_json::from_str(r.get()).unwrap())
                .collect()
        };
        let answer = serde_json::json!({
            "daily": rows(daily),
            "monthly": rows(monthly),
        });
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../../../replay-fixtures/snapshots/queries");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_description("the query service's daily and monthly answers (views folded at a week past the last punch)");
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_json_snapshot!(answer));
    });
}

/// A daily query without dates asks for each person's today where their rule counts
/// days: at 00:30 in Shanghai (16:30 UTC the day before), that is the Shanghai date.
#[test]
fn daily_without_dates_is_today_in_each_persons_zone() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../replay-fixtures/allowed-lateness.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let events = events_of(&text);
    let (book, _) = load_jsonl(std::io::BufReader::new(text.as_bytes()), None).unwrap();
    let (_, last) = book.punch_dates().unwrap();
    let now: DateTime<Utc> = last.and_hms_opt(16, 30, 0).unwrap().and_utc();
    let (fold, store) = fold_at(&events, now);
    let tenant = events[0].tenant.clone();
    let scope = Scope {
        tenant: &tenant,
        book: fold.book(&tenant).unwrap(),
        store: &store,
        now,
    };
    let (daily, _) = scope.daily(&DailyRequest::default()).unwrap();
    assert!(!daily.is_empty());
    let shanghai = last + Duration::days(1);
    for row in daily {
        let row: serde_json::Value = serde_json::from_str(row.get()).unwrap();
        assert_eq!(
            row["date"],
            serde_json::json!(shanghai.to_string()),
            "{row}"
        );
    }
    // And a month without one is the month of that today.
    let (monthly, _) = scope.monthly(&MonthlyRequest::default()).unwrap();
    assert!(!monthly.is_empty());
    for row in monthly {
        let row: serde_json::Value = serde_json::from_str(row.get()).unwrap();
        assert_eq!(
            row["month"],
            serde_json::json!(shanghai.format("%Y-%m").to_string()),
            "{row}"
        );
    }
}

/// A device's rejected lines are dated where the device stands, as its punches are.
#[test]
fn rejected_lines_are_dated_in_the_devices_zone() {
    use schemas::events::{DeviceBound, DeviceRecordRejected, RejectionReason};
    use schemas::ids::{DeviceSn, TenantId, ZoneName};
    let tenant = TenantId::parse("acme").unwrap();
    let sn = DeviceSn::new("CQZ7224460246");
    let envelope = |event: schemas::Event, at: DateTime<Utc>| {
        Envelope::new(
            tenant.clone(),
            schemas::Actor::System {
                component: "test".into(),
            },
            event,
            at,
        )
    };
    let bound: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    // 17:30 UTC on the 5th is 01:30 on the 6th in Shanghai.
    let received: DateTime<Utc> = "2026-01-05T17:30:00Z".parse().unwrap();
    let events = vec![
        envelope(
            DeviceBound {
                sn: sn.clone(),
                name: "Door".into(),
                model: None,
                zone: ZoneName::parse("Asia/Shanghai").unwrap(),
                records_from: None,
            }
            .into(),
            bound,
        ),
        envelope(
            DeviceRecordRejected {
                sn: sn.clone(),
                raw: "1001\t2000-01-01 08:00:00\t0\t1".into(),
                reason: RejectionReason::BeforeBinding,
                detail: None,
            }
            .into(),
            received,
        ),
    ];
    let now = received + Duration::days(1);
    let (fold, store) = fold_at(&events, now);
    let scope = Scope {
        tenant: &tenant,
        book: fold.book(&tenant).unwrap(),
        store: &store,
        now,
    };
    let on = |date: &str| {
        let date: NaiveDate = date.parse().unwrap();
        let (rows, _) = scope
            .raw(&projections::query::RawRequest {
                device: Some(sn.clone()),
                from: Some(date),
                to: Some(date),
                ..projections::query::RawRequest::default()
            })
            .unwrap();
        rows.iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(r.get()).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(on("2026-01-05"), Vec::<serde_json::Value>::new());
    let rows = on("2026-01-06");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["date"], serde_json::json!("2026-01-06"));
    assert_eq!(rows[0]["reason"], serde_json::json!("BeforeBinding"));
}

/// Payroll closes October; a backlog recorded afterwards completes a closed day. The
/// day keeps its closed verdict with the change pending beside it, October's figures
/// stay as closed, November lists the adjustment as pending, and closing November
/// carries it (October still as closed).
#[test]
fn a_closed_month_keeps_its_figures_and_a_late_change_is_carried_into_the_next() {
    use chrono::{NaiveTime, TimeZone};
    use schemas::events::*;
    use schemas::ids::*;
    use schemas::{Actor, Event};

    let tenant = TenantId::parse("acme").unwrap();
    let zone = ZoneName::parse("Asia/Shanghai").unwrap();
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    let date = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let recorded = |m, d, h| Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap();
    let envelope = |e: Event, at: DateTime<Utc>| {
        Envelope::new(
            tenant.clone(),
            Actor::User {
                user_id: "hr-wang".into(),
            },
            e,
            at,
        )
    };
    let punch = |day: NaiveDate, at: NaiveTime| -> Event {
        let local = day.and_time(at);
        PunchesRecorded {
            sn: DeviceSn::new("GATE1"),
            punches: vec![Punch::from_device(
                DeviceSn::new("GATE1"),
                BadgeNumber::new("7"),
                local,
                zone.clone(),
                projections::time::instant(zone.tz(), local),
            )],
        }
        .into()
    };
    let start = date(10, 26);
    let section = Section {
        on: hm(9, 0),
        on_next_day: false,
        off: hm(18, 0),
        off_next_day: false,
        on_window: PunchWindow::default(),
        off_window: PunchWindow::default(),
    };
    let setup: Vec<Event> = vec![
        DepartmentDefined {
            department_id: DepartmentId::new("d"),
            name: "Production".into(),
            parent: None,
        }
        .into(),
        PersonHired {
            person_id: PersonId::new("li"),
            name: "Li Wei".into(),
            department_id: DepartmentId::new("d"),
            hired_on: start,
            badge_number: Some(BadgeNumber::new("7")),
            title: None,
        }
        .into(),
        RuleVersionDefined {
            rule_id: RuleId::new("office"),
            version: 1,
            name: "Office".into(),
            zone: zone.clone(),
            effective_from: start,
            kind: RuleKind::Fixed(FixedRule {
                workdays: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ],
                day: WorkDay {
                    sections: vec![section],
                    rests: Vec::new(),
                    flex: Flex::None,
                    late_out_late_in: Vec::new(),
                    off_punch_required: true,
                },
            }),
            options: RuleOptions::default(),
        }
        .into(),
        RuleMembershipSet {
            rule_id: RuleId::new("office"),
            people: Vec::new(),
            departments: vec![DepartmentId::new("d")],
            excluded_people: Vec::new(),
            effective_from: start,
        }
        .into(),
    ];
    let mut events: Vec<Envelope> = setup
        .into_iter()
        .map(|e| envelope(e, recorded(10, 25, 0)))
        .collect();
    // Friday 30 October: an on punch only, so far.
    events.push(envelope(
        punch(date(10, 30), hm(8, 55)),
        recorded(10, 30, 1),
    ));
    events.push(envelope(
        PeriodClosed {
            month: Month::parse("2026-10").unwrap(),
            note: Some("October payroll".into()),
        }
        .into(),
        recorded(11, 2, 13),
    ));
    // The device's backlog arrives a week late: the off punch of the 30th.
    events.push(envelope(punch(date(10, 30), hm(18, 5)), recorded(11, 6, 2)));

    let ask = |events: &[Envelope], now: DateTime<Utc>| {
        let (fold, store) = fold_at(events, now);
        let scope = Scope {
            tenant: &tenant,
            book: fold.book(&tenant).unwrap(),
            store: &store,
            now,
        };
        let json = |rows: Vec<projections::query::Row>| -> Vec<serde_json::Value> {
            rows.iter()
                .map(|r| serde_json::from_str(r.get()).unwrap())
                .collect()
        };
        let day = json(
            scope
                .daily(&DailyRequest {
                    from: Some(date(10, 30)),
                    to: Some(date(10, 30)),
                    ..DailyRequest::default()
                })
                .unwrap()
                .0,
        )
        .remove(0);
        let month = |m: &str| {
            json(
                scope
                    .monthly(&MonthlyRequest {
                        month: Some(m.into()),
                        ..MonthlyRequest::default()
                    })
                    .unwrap()
                    .0,
            )
            .remove(0)
        };
        (day, month("2026-10"), month("2026-11"))
    };

    let (day, october, november) = ask(&events, recorded(11, 10, 0));
    // The day as closed: a missing off punch; what it is now, pending beside it.
    assert_eq!(day["summary"], "missing_punch", "{day:#}");
    assert_eq!(day["closed"]["period"], "2026-10", "{day:#}");
    assert_eq!(day["closed"]["pending"]["summary"], "normal", "{day:#}");
    // October as closed: one day missing a punch, and no adjustment of its own.
    assert_eq!(october["closed"]["note"], "October payroll", "{october:#}");
    assert_eq!(
        october["calibrated"]["missing_punch"]["count"], 1,
        "{october:#}"
    );
    assert!(october.get("adjustments").is_none(), "{october:#}");
    // November, the open period: the change to the 30th, pending.
    let adjustments = november["adjustments"].as_array().expect("listed");
    assert_eq!(adjustments.len(), 1, "{november:#}");
    let a = &adjustments[0];
    assert_eq!(a["date"], "2026-10-30");
    assert_eq!(a["period"], "2026-10");
    assert_eq!(a["state"], "pending");
    assert_eq!(a["before"]["summary"], "missing_punch");
    assert_eq!(a["after"]["summary"], "normal");
    assert!(a["work_s_change"].as_i64().unwrap() > 0, "{a:#}");

    // November closes: the adjustment is carried into it, and October is unchanged.
    events.push(envelope(
        PeriodClosed {
            month: Month::parse("2026-11").unwrap(),
            note: None,
        }
        .into(),
        recorded(12, 2, 13),
    ));
    let (day, october_after, november) = ask(&events, recorded(12, 5, 0));
    let figures = |m: &serde_json::Value| {
        let mut m = m.clone();
        m.as_object_mut().unwrap().remove("closed");
        m
    };
    assert_eq!(figures(&october_after), figures(&october));
    let adjustments = november["adjustments"].as_array().expect("carried");
    assert_eq!(adjustments.len(), 1, "{november:#}");
    assert_eq!(adjustments[0]["state"], "carried");
    assert_eq!(adjustments[0]["after"]["summary"], "normal");
    // Payroll has the day as it is now: nothing pending any more.
    assert_eq!(day["closed"]["period"], "2026-10", "{day:#}");
    assert!(day["closed"]["pending"].is_null(), "{day:#}");
}
