//! Approvals, make-ups and calibrations through `execute`, against a real nats-server.

use chrono::{NaiveDate, NaiveDateTime};
use commands::requests::{AbsenceKind, RequestCommand};
use commands::rules::{ChangeRule, RuleCommand};
use commands::{CommandError, Rejection};
use schemas::Event;
use schemas::events::{AttendanceStatus, CalibrationTarget, MakeUpLimits, PunchSource};

use crate::*;

fn req(id: &str, command: RequestCommand) -> commands::Request<RequestCommand> {
    commands::Request {
        tenant: tenant(),
        actor: schemas::Actor::User {
            user_id: "hr-wang".into(),
        },
        command_id: id.into(),
        command,
    }
}

async fn ask(w: &World, id: &str, c: RequestCommand) -> Result<commands::Outcome, CommandError> {
    commands::execute(&w.ledger, &req(id, c), now()).await
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

/// p1 in prod, following rule "office" (08:30-17:30, Shanghai) from 3 December, with at
/// most 2 make-ups a month, each within 5 days of the day.
async fn setup(w: &World) {
    organisation(w, &["p1"]).await;
    run(w, "r1", create("office")).await.unwrap();
    run(
        w,
        "r2",
        RuleCommand::Change(ChangeRule {
            rule_id: "office".into(),
            name: None,
            zone: None,
            kind: None,
            options: Some(schemas::events::RuleOptions {
                make_up: MakeUpLimits {
                    per_month: Some(2),
                    within_days: Some(5),
                },
                ..Default::default()
            }),
            effective: commands::rules::Effective::Now,
        }),
    )
    .await
    .unwrap();
    run(w, "r3", members("office", &[], &["prod"]))
        .await
        .unwrap();
}

fn make_up(id: &str, at: &str) -> RequestCommand {
    RequestCommand::RequestMakeUp {
        approval_id: id.into(),
        person_id: "p1".into(),
        local_time: local(at),
        reason: "forgot to punch".into(),
    }
}

#[tokio::test]
async fn a_make_up_is_requested_within_its_limits_then_approved_as_a_punch() {
    let w = world().await;
    setup(&w).await;
    // 09:30 on 3 December in Shanghai: the rule holds from today.
    ask(&w, "m1", make_up("mu-1", "2026-12-03 08:31"))
        .await
        .unwrap();
    let future = ask(&w, "m2", make_up("mu-2", "2026-12-03 17:30"))
        .await
        .unwrap_err();
    assert!(
        matches!(&future, CommandError::Refused(Rejection::Invalid(r)) if r.contains("future")),
        "{future}"
    );
    let before_rule = ask(&w, "m3", make_up("mu-3", "2026-12-01 08:30"))
        .await
        .unwrap_err();
    assert!(
        matches!(&before_rule, CommandError::Refused(Rejection::Invalid(r)) if r.contains("follows no rule")),
        "{before_rule}"
    );
    ask(&w, "m4", make_up("mu-4", "2026-12-03 08:32"))
        .await
        .unwrap();
    let third = ask(&w, "m5", make_up("mu-5", "2026-12-03 08:33"))
        .await
        .unwrap_err();
    assert!(
        matches!(&third, CommandError::Refused(Rejection::Conflict(r)) if r.contains("used 2 of 2")),
        "{third}"
    );

    ask(
        &w,
        "a1",
        RequestCommand::ApproveMakeUp {
            approval_id: "mu-1".into(),
            approver: Some("boss".into()),
        },
    )
    .await
    .unwrap();
    let twice = ask(
        &w,
        "a2",
        RequestCommand::ApproveMakeUp {
            approval_id: "mu-1".into(),
            approver: None,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&twice, CommandError::Refused(Rejection::Conflict(r)) if r.contains("approved already")),
        "{twice}"
    );
    ask(
        &w,
        "a3",
        RequestCommand::RejectMakeUp {
            approval_id: "mu-4".into(),
            approver: None,
            reason: "was not there".into(),
        },
    )
    .await
    .unwrap();
    // A rejected make-up gives its place in the month back.
    ask(&w, "m6", make_up("mu-6", "2026-12-03 08:34"))
        .await
        .unwrap();

    let approved = stream(&w)
        .await
        .into_iter()
        .find_map(|(_, e)| match e.event {
            Event::MakeUpPunchApproved(a) => Some(a),
            _ => None,
        })
        .expect("stored");
    assert_eq!(approved.punch.local_time, local("2026-12-03 08:31"));
    assert_eq!(
        approved.punch.instant,
        "2026-12-03T00:31:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert!(
        matches!(approved.punch.source, PunchSource::MakeUp { ref approval_id } if approval_id.as_str() == "mu-1")
    );
}

#[tokio::test]
async fn leave_and_calibrations_are_stored_and_a_recalibration_names_what_it_replaces() {
    let w = world().await;
    setup(&w).await;
    ask(
        &w,
        "l1",
        RequestCommand::Approve {
            approval_id: "leave-1".into(),
            person_id: "p1".into(),
            kind: AbsenceKind::Leave {
                leave_type: "annual".into(),
            },
            start: local("2026-12-04 08:30"),
            end: local("2026-12-04 17:30"),
            zone: None,
            note: None,
        },
    )
    .await
    .unwrap();
    for (i, c) in [
        RequestCommand::Approve {
            approval_id: "leave-1".into(),
            person_id: "p1".into(),
            kind: AbsenceKind::Leave {
                leave_type: "sick".into(),
            },
            start: local("2026-12-05 08:30"),
            end: local("2026-12-05 17:30"),
            zone: None,
            note: None,
        },
        RequestCommand::Approve {
            approval_id: "leave-2".into(),
            person_id: "p1".into(),
            kind: AbsenceKind::Leave {
                leave_type: "sick".into(),
            },
            start: local("2026-12-05 17:30"),
            end: local("2026-12-05 08:30"),
            zone: None,
            note: None,
        },
        RequestCommand::Approve {
            approval_id: "leave-3".into(),
            person_id: "ghost".into(),
            kind: AbsenceKind::Leave {
                leave_type: "sick".into(),
            },
            start: local("2026-12-05 08:30"),
            end: local("2026-12-05 17:30"),
            zone: None,
            note: None,
        },
    ]
    .into_iter()
    .enumerate()
    {
        assert!(ask(&w, &format!("bad-{i}"), c).await.is_err(), "case {i}");
    }
    let calibrate = |id: &str, status, reason: &str| RequestCommand::Calibrate {
        calibration_id: id.into(),
        person_id: "p1".into(),
        date: NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
        target: CalibrationTarget::Day,
        status,
        reason: reason.into(),
    };
    let no_reason = ask(&w, "c0", calibrate("cal-0", AttendanceStatus::Normal, " "))
        .await
        .unwrap_err();
    assert!(
        matches!(&no_reason, CommandError::Refused(Rejection::Invalid(r)) if r.contains("reason")),
        "{no_reason}"
    );
    ask(
        &w,
        "c1",
        calibrate("cal-1", AttendanceStatus::Normal, "badge reader broken"),
    )
    .await
    .unwrap();
    ask(
        &w,
        "c2",
        calibrate("cal-2", AttendanceStatus::Late, "checked the camera"),
    )
    .await
    .unwrap();
    let cals: Vec<(String, Option<String>)> = stream(&w)
        .await
        .into_iter()
        .filter_map(|(_, e)| match e.event {
            Event::CalibrationApplied(c) => Some((
                c.calibration_id.to_string(),
                c.replaces.map(|r| r.to_string()),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        cals,
        [
            ("cal-1".to_owned(), None),
            ("cal-2".to_owned(), Some("cal-1".to_owned()))
        ]
    );
}

/// A slot calibration names the slot the judge reads: the first section's on punch of a
/// day nobody punched turns from absent to calibrated, its off punch stays missing.
#[tokio::test]
async fn a_slot_calibration_reaches_the_slot_it_names() {
    let w = world().await;
    setup(&w).await;
    let date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    let slot = |id: &str, section| RequestCommand::Calibrate {
        calibration_id: id.into(),
        person_id: "p1".into(),
        date,
        target: CalibrationTarget::Slot {
            section,
            end: schemas::events::SlotEnd::On,
        },
        status: AttendanceStatus::Normal,
        reason: "the reader was broken".into(),
    };
    let beyond = ask(&w, "s3", slot("cal-3", 3)).await.unwrap_err();
    assert!(
        matches!(&beyond, CommandError::Refused(Rejection::Invalid(r)) if r.contains("from 0")),
        "{beyond}"
    );
    ask(&w, "s0", slot("cal-1", 0)).await.unwrap();

    let mut book = projections::book::Book::new();
    for (sequence, e) in stream(&w).await {
        book.apply(sequence, &e);
    }
    let rows = book.daily(&projections::book::DailyQuery {
        people: vec!["p1".into()],
        from: Some(date),
        to: Some(date),
        now: Some("2026-12-04T12:00:00Z".parse().unwrap()),
        ..Default::default()
    });
    let day = serde_json::to_value(&rows[0].day).unwrap();
    assert_eq!(
        day["original"]["status"],
        serde_json::json!(["absent"]),
        "{day}"
    );
    assert_eq!(
        day["calibrated"]["status"],
        serde_json::json!(["missing_punch"]),
        "{day}"
    );
}
