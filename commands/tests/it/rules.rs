//! Rule commands through `execute`: what is stored, what is refused, retries and races.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use commands::rules::{ChangeRule, CopyRule, Effective, RuleCommand};
use commands::{CommandError, Outcome, Rejection};
use ledger::LedgerConfig;
use schemas::Event;
use schemas::events::RuleKind;

use crate::*;

#[tokio::test]
async fn a_rule_is_created_once_however_often_its_command_is_sent() {
    let w = world().await;
    let first = run(&w, "c-1", create("office")).await.unwrap();
    let Outcome::Applied(stored) = &first else {
        panic!("first run applies: {first:?}");
    };
    assert_eq!(stored.len(), 1);
    let again = run(&w, "c-1", create("office")).await.unwrap();
    assert_eq!(again, Outcome::AlreadyDone(stored.clone()));

    let events = stream(&w).await;
    assert_eq!(events.len(), 1, "one fact for two sends");
    let (_, e) = &events[0];
    assert_eq!(e.command_id.as_ref().map(|c| c.as_str()), Some("c-1"));
    assert_eq!(e.event_id, stored[0].event_id);
    let Event::RuleVersionDefined(v) = &e.event else {
        panic!("a rule version: {e:?}");
    };
    assert_eq!(v.version, 1);
    // 09:30 in Shanghai on 3 December: effective now is that day.
    assert_eq!(
        v.effective_from,
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    );
    assert_eq!(v.kind, office_day());
    assert!(
        matches!(e.actor, schemas::Actor::User { ref user_id } if user_id.as_str() == "hr-wang")
    );

    // Another command id for the same rule is a different command, refused by the state.
    let other = run(&w, "c-2", create("office")).await.unwrap_err();
    assert!(
        matches!(&other, CommandError::Refused(Rejection::Conflict(r)) if r.contains("already exists")),
        "{other}"
    );
    assert_eq!(stream(&w).await.len(), 1);
}

#[tokio::test]
async fn a_command_sent_again_after_the_duplicate_window_is_recognised() {
    let w = world_with(LedgerConfig {
        duplicate_window: std::time::Duration::from_secs(1),
        ..LedgerConfig::default()
    })
    .await;
    organisation(&w, &["p1"]).await;
    run(&w, "c-1", create("office")).await.unwrap();
    run(&w, "m-1", members("office", &["p1"], &[]))
        .await
        .unwrap();
    // JetStream forgets the ids; the state still knows the command.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let before = stream(&w).await.len();
    let again = run(&w, "m-1", members("office", &["p1"], &[]))
        .await
        .unwrap();
    assert!(
        matches!(again, Outcome::AlreadyDone(ref e) if e.len() == 1),
        "{again:?}"
    );
    assert_eq!(stream(&w).await.len(), before);
}

#[tokio::test]
async fn a_change_is_a_new_version_effective_now_or_from_tomorrow() {
    let w = world().await;
    run(&w, "c-1", create("office")).await.unwrap();
    let change = |effective, name: &str| {
        RuleCommand::Change(ChangeRule {
            rule_id: "office".into(),
            name: Some(name.into()),
            zone: None,
            kind: None,
            options: None,
            effective,
        })
    };
    run(
        &w,
        "c-2",
        change(Effective::Tomorrow, "office from tomorrow"),
    )
    .await
    .unwrap();
    run(&w, "c-3", change(Effective::Now, "office now"))
        .await
        .unwrap();
    let versions: Vec<(u32, NaiveDate, String)> = stream(&w)
        .await
        .into_iter()
        .filter_map(|(_, e)| match e.event {
            Event::RuleVersionDefined(v) => Some((v.version, v.effective_from, v.name)),
            _ => None,
        })
        .collect();
    let d = |day| NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
    assert_eq!(
        versions,
        vec![
            (1, d(3), "rule office".to_owned()),
            (2, d(4), "office from tomorrow".to_owned()),
            (3, d(3), "office now".to_owned()),
        ]
    );
    // What the rule already says is not a change.
    let same = run(&w, "c-4", change(Effective::Now, "office now"))
        .await
        .unwrap_err();
    assert!(
        matches!(same, CommandError::Refused(Rejection::Invalid(ref r)) if r.contains("nothing to change")),
        "{same}"
    );
    let unknown = run(
        &w,
        "c-5",
        RuleCommand::Change(ChangeRule {
            rule_id: "nope".into(),
            name: Some("x".into()),
            zone: None,
            kind: None,
            options: None,
            effective: Effective::Now,
        }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(unknown, CommandError::Refused(Rejection::Unknown(_))),
        "{unknown}"
    );
    assert_eq!(stream(&w).await.len(), 3);
}

#[tokio::test]
async fn a_copy_takes_the_sources_current_times() {
    let w = world().await;
    run(&w, "c-1", create("office")).await.unwrap();
    run(
        &w,
        "c-2",
        RuleCommand::Copy(CopyRule {
            from: "office".into(),
            rule_id: "office-2".into(),
            name: "Second office".into(),
            effective: Effective::Now,
        }),
    )
    .await
    .unwrap();
    let copied = stream(&w)
        .await
        .into_iter()
        .find_map(|(_, e)| match e.event {
            Event::RuleVersionDefined(v) if v.rule_id.as_str() == "office-2" => Some(v),
            _ => None,
        })
        .expect("the copy is stored");
    assert_eq!(copied.kind, office_day());
    assert_eq!(copied.name, "Second office");
}

#[tokio::test]
async fn bad_rules_are_refused_with_a_reason_and_store_nothing() {
    let w = world().await;
    organisation(&w, &["p1"]).await;
    let before = stream(&w).await.len();
    let with = |f: &dyn Fn(&mut commands::rules::CreateRule)| {
        let RuleCommand::Create(mut c) = create("bad") else {
            unreachable!()
        };
        f(&mut c);
        RuleCommand::Create(c)
    };
    let cases: Vec<(RuleCommand, &str)> = vec![
        (
            with(&|c| {
                let RuleKind::Fixed(f) = &mut c.kind else {
                    unreachable!()
                };
                f.day.sections[0].off = hm("08:00");
            }),
            "is not after on",
        ),
        (
            with(&|c| {
                let RuleKind::Fixed(f) = &mut c.kind else {
                    unreachable!()
                };
                f.day.rests[0].start = hm("18:00");
                f.day.rests[0].end = hm("19:00");
            }),
            "outside the working time",
        ),
        (
            with(&|c| {
                let RuleKind::Fixed(f) = &mut c.kind else {
                    unreachable!()
                };
                f.workdays.clear();
            }),
            "at least one workday",
        ),
        (with(&|c| c.name = "  ".into()), "must not be empty"),
        (with(&|c| c.rule_id = "a b".into()), "invalid rule id"),
        (
            with(&|c| c.options.holiday_calendar = Some("cn".into())),
            "has not been published",
        ),
        (
            with(&|c| {
                c.kind = RuleKind::Shifts(schemas::events::ShiftRule {
                    shifts: vec!["night".into()],
                    unscheduled: Default::default(),
                })
            }),
            "shift night does not exist",
        ),
        (members("nope", &["p1"], &[]), "rule nope does not exist"),
    ];
    for (i, (command, reason)) in cases.into_iter().enumerate() {
        let e = run(&w, &format!("bad-{i}"), command).await.unwrap_err();
        assert!(
            matches!(&e, CommandError::Refused(r) if r.to_string().contains(reason)),
            "case {i}: {e} should say {reason:?}"
        );
    }
    run(&w, "ok", create("office")).await.unwrap();
    for (i, (command, reason)) in [
        (
            members("office", &["ghost"], &[]),
            "person ghost does not exist",
        ),
        (
            members("office", &[], &["nowhere"]),
            "department nowhere does not exist",
        ),
        (members("office", &["p1", "p1"], &[]), "named twice"),
    ]
    .into_iter()
    .enumerate()
    {
        let e = run(&w, &format!("bad-m-{i}"), command).await.unwrap_err();
        assert!(
            matches!(&e, CommandError::Refused(r) if r.to_string().contains(reason)),
            "member case {i}: {e} should say {reason:?}"
        );
    }
    assert_eq!(
        stream(&w).await.len(),
        before + 1,
        "only the good rule is stored"
    );
}

#[tokio::test]
async fn a_person_or_department_follows_one_rule_at_a_time() {
    let w = world().await;
    organisation(&w, &["p1", "p2"]).await;
    run(&w, "a", create("day")).await.unwrap();
    run(&w, "b", create("night")).await.unwrap();
    run(&w, "m1", members("day", &["p1"], &["prod"]))
        .await
        .unwrap();
    let person = run(&w, "m2", members("night", &["p1"], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&person, CommandError::Refused(Rejection::Conflict(r)) if r.contains("person p1 already follows rule day")),
        "{person}"
    );
    let dept = run(&w, "m3", members("night", &[], &["prod"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&dept, CommandError::Refused(Rejection::Conflict(r)) if r.contains("department prod already follows rule day")),
        "{dept}"
    );
    // Out of one, into the other.
    run(&w, "m4", members("day", &[], &["prod"])).await.unwrap();
    run(&w, "m5", members("night", &["p1"], &[])).await.unwrap();
}

/// Two administrators put the same person under two rules at the same moment: the
/// guard on every rule of the tenant lets exactly one of them win, every round.
#[tokio::test]
async fn racing_memberships_leave_each_person_under_one_rule() {
    let w = world().await;
    let people: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = people.iter().map(String::as_str).collect();
    organisation(&w, &refs).await;
    run(&w, "a", create("day")).await.unwrap();
    run(&w, "b", create("night")).await.unwrap();
    let second = Ledger::connect(&w.server.url(), LedgerConfig::default())
        .await
        .unwrap();
    for p in &people {
        let (r1, r2) = (
            request(&format!("day-{p}"), members("day", &[p], &[])),
            request(&format!("night-{p}"), members("night", &[p], &[])),
        );
        let one = commands::execute(&w.ledger, &r1, now());
        let other = commands::execute(&second, &r2, now());
        let (a, b) = tokio::join!(one, other);
        let won = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{p}: exactly one wins: {a:?} {b:?}");
        let lost = if a.is_err() { a } else { b };
        assert!(
            matches!(&lost, Err(CommandError::Refused(Rejection::Conflict(r))) if r.contains("already follows")),
            "{p}: the loser is told who has them: {lost:?}"
        );
    }
    // At every point of the stream, no person is named by both rules' memberships in
    // force (each membership replaces its rule's previous one).
    let mut latest: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    let mut checked = 0;
    for (_, e) in stream(&w).await {
        if let Event::RuleMembershipSet(m) = e.event {
            latest.insert(
                m.rule_id.to_string(),
                m.people.iter().map(|p| p.to_string()).collect(),
            );
            let day = latest.get("day").cloned().unwrap_or_default();
            let night = latest.get("night").cloned().unwrap_or_default();
            assert!(day.is_disjoint(&night), "{day:?} {night:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, people.len(), "one membership stored a round");
}

/// Loading a command's state reads by direct gets: a stream holds at most 1,000
/// consumers, and reads that each left one behind once made the 261st consecutive
/// update fail. 300 commands in a row leave none.
#[tokio::test]
async fn three_hundred_commands_leave_no_consumer_behind() {
    let w = world().await;
    run(&w, "c-0", create("office")).await.unwrap();
    for i in 1..=300 {
        let change = RuleCommand::Change(ChangeRule {
            rule_id: "office".into(),
            name: Some(format!("office {i}")),
            zone: None,
            kind: None,
            options: None,
            effective: Effective::Tomorrow,
        });
        run(&w, &format!("c-{i}"), change).await.unwrap();
    }
    let stream = w.ledger.partitions().stream_of(&tenant());
    let mut info = w.ledger.jetstream().get_stream(&stream).await.unwrap();
    let info = info.info().await.unwrap();
    assert_eq!(info.state.consumer_count, 0);
    assert_eq!(info.state.messages, 301);
}

#[tokio::test]
async fn a_published_calendar_can_be_followed_and_special_dates_name_real_shifts() {
    use schemas::events::{CalendarDay, CalendarDayKind, SpecialDate, SpecialDateKind};
    let w = world().await;
    let with_calendar = |id: &str| {
        let RuleCommand::Create(mut c) = create(id) else {
            unreachable!()
        };
        c.options.holiday_calendar = Some("cn".into());
        RuleCommand::Create(c)
    };
    assert!(
        run(&w, "r0", with_calendar("office")).await.is_err(),
        "not published yet"
    );
    let d = |m, day| NaiveDate::from_ymd_opt(2027, m, day).unwrap();
    let publish = |days: Vec<CalendarDay>| RuleCommand::PublishCalendar {
        calendar_id: "cn".into(),
        year: 2027,
        days,
    };
    let wrong_year = run(
        &w,
        "cal0",
        publish(vec![CalendarDay {
            date: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            kind: CalendarDayKind::Holiday,
            name: "国庆节".into(),
        }]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(wrong_year, CommandError::Refused(Rejection::Invalid(ref r)) if r.contains("not in 2027")),
        "{wrong_year}"
    );
    run(
        &w,
        "cal1",
        publish(vec![
            CalendarDay {
                date: d(1, 1),
                kind: CalendarDayKind::Holiday,
                name: "元旦".into(),
            },
            CalendarDay {
                date: d(2, 7),
                kind: CalendarDayKind::SwappedWorkday,
                name: "春节调休".into(),
            },
        ]),
    )
    .await
    .unwrap();
    run(&w, "r1", with_calendar("office")).await.unwrap();
    let special = |shift: Option<&str>| RuleCommand::SetSpecialDates {
        rule_id: "office".into(),
        dates: vec![SpecialDate {
            date: d(3, 6),
            kind: SpecialDateKind::MustPunch {
                shift: shift.map(Into::into),
            },
            note: Some("stocktaking".into()),
        }],
    };
    let unknown = run(&w, "sp0", special(Some("night"))).await.unwrap_err();
    assert!(
        matches!(unknown, CommandError::Refused(Rejection::Unknown(_))),
        "{unknown}"
    );
    run(&w, "sp1", special(None)).await.unwrap();
}
