//! Organisation commands through `execute`, against a real nats-server.

use commands::organisation::{DepartmentCommand, PersonCommand};
use commands::{CommandError, Outcome, Rejection};
use ledger::LedgerConfig;
use schemas::Event;

use crate::*;

fn req<C>(id: &str, command: C) -> commands::Request<C> {
    commands::Request {
        tenant: tenant(),
        actor: schemas::Actor::User {
            user_id: "hr-wang".into(),
        },
        command_id: id.into(),
        command,
    }
}

fn hire(id: &str, badge: &str) -> PersonCommand {
    PersonCommand::Hire {
        person_id: id.into(),
        name: format!("person {id}"),
        department_id: "prod".into(),
        badge: Some(badge.into()),
        hired_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
    }
}

/// Two clients hire two people with the same badge number at the same moment, round
/// after round: one hire wins, the other is refused naming the holder.
#[tokio::test]
async fn racing_hires_cannot_share_a_badge_number() {
    let w = world().await;
    organisation(&w, &[]).await;
    let second = Ledger::connect(&w.server.url(), LedgerConfig::default())
        .await
        .unwrap();
    for round in 0..10 {
        let badge = format!("{}", 5000 + round);
        let (a, b) = (
            req(&format!("a-{round}"), hire(&format!("a{round}"), &badge)),
            req(&format!("b-{round}"), hire(&format!("b{round}"), &badge)),
        );
        let (ra, rb) = tokio::join!(
            commands::execute(&w.ledger, &a, now()),
            commands::execute(&second, &b, now())
        );
        assert_eq!(
            [&ra, &rb].iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {ra:?} {rb:?}"
        );
        let lost = if ra.is_err() { ra } else { rb };
        assert!(
            matches!(&lost, Err(CommandError::Refused(Rejection::Conflict(r))) if r.contains(&format!("badge number {badge} already belongs to"))),
            "{lost:?}"
        );
    }
    let hires = stream(&w)
        .await
        .into_iter()
        .filter(|(_, e)| matches!(e.event, Event::PersonHired(_)))
        .count();
    assert_eq!(hires, 10);
}

#[tokio::test]
async fn a_transfer_takes_effect_from_its_date_and_a_retry_stores_it_once() {
    let w = world().await;
    organisation(&w, &["p1"]).await;
    let transfer = req(
        "t-1",
        PersonCommand::Transfer {
            person_id: "p1".into(),
            department_id: "office".into(),
            effective_from: chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
        },
    );
    let first = commands::execute(&w.ledger, &transfer, now())
        .await
        .unwrap();
    let again = commands::execute(&w.ledger, &transfer, now())
        .await
        .unwrap();
    assert_eq!(again, Outcome::AlreadyDone(first.events().to_vec()));
    let (_, e) = stream(&w)
        .await
        .into_iter()
        .find(|(_, e)| matches!(e.event, Event::PersonUpdated(_)))
        .expect("the transfer is stored");
    assert_eq!(
        e.occurred_at,
        "2027-01-01T00:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    let same = commands::execute(
        &w.ledger,
        &req(
            "t-2",
            PersonCommand::Transfer {
                person_id: "p1".into(),
                department_id: "office".into(),
                effective_from: chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            },
        ),
        now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(same, CommandError::Refused(Rejection::Invalid(ref r)) if r.contains("nothing to change")),
        "{same}"
    );
}

#[tokio::test]
async fn departments_form_a_tree_without_cycles() {
    let w = world().await;
    let define = |id: &str, parent: Option<&str>| DepartmentCommand::Define {
        department_id: id.into(),
        name: format!("dept {id}"),
        parent: parent.map(Into::into),
    };
    for (id, parent) in [
        ("hq", None),
        ("plant", Some("hq")),
        ("line-1", Some("plant")),
    ] {
        commands::execute(
            &w.ledger,
            &req(&format!("d-{id}"), define(id, parent)),
            now(),
        )
        .await
        .unwrap();
    }
    let before = stream(&w).await.len();
    for (i, c) in [
        define("hq", None),
        define("x", Some("nowhere")),
        DepartmentCommand::Move {
            department_id: "hq".into(),
            parent: Some("line-1".into()),
        },
        DepartmentCommand::Rename {
            department_id: "hq".into(),
            name: "dept hq".into(),
        },
    ]
    .into_iter()
    .enumerate()
    {
        let e = commands::execute(&w.ledger, &req(&format!("bad-{i}"), c), now())
            .await
            .unwrap_err();
        assert!(matches!(e, CommandError::Refused(_)), "{i}: {e}");
    }
    assert_eq!(stream(&w).await.len(), before, "refusals store nothing");
    commands::execute(
        &w.ledger,
        &req(
            "mv",
            DepartmentCommand::Move {
                department_id: "line-1".into(),
                parent: Some("hq".into()),
            },
        ),
        now(),
    )
    .await
    .unwrap();
}

fn sheet(rows: &[&[&str]]) -> commands::schedules::Sheet {
    commands::schedules::Sheet {
        rows: rows
            .iter()
            .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
            .collect(),
    }
}

/// A sheet of departments and one of people: every bad cell named, nothing applied
/// until the whole sheet is good; rows see the rows above them (a parent defined
/// higher up, a badge taken higher up).
#[tokio::test]
async fn people_and_departments_import_whole_or_not_at_all() {
    let w = world().await;
    let departments = sheet(&[
        &["部门ID", "部门名称", "上级部门"],
        &["hq", "Head office", ""],
        &["plant", "Plant", "hq"],
        &["line-1", "Line 1", "plant"],
    ]);
    commands::execute(
        &w.ledger,
        &req("deps", DepartmentCommand::Import { sheet: departments }),
        now(),
    )
    .await
    .unwrap();
    let bad = sheet(&[
        &["账号", "姓名", "部门", "工号", "入职日期"],
        &["p1", "Li Wei", "plant", "1001", "2026-11-01"],
        &["p2", "Wang Fang", "nowhere", "1002", "2026-11-01"],
        &["p3", "Zhang Min", "plant", "1001", "2026-11-01"],
        &["p4", "", "plant", "", "2026-11-01"],
        &["p5", "Chen Jie", "line-1", "12345678901", "soon"],
    ]);
    let before = stream(&w).await.len();
    let e = commands::execute(
        &w.ledger,
        &req("bad", PersonCommand::Import { sheet: bad }),
        now(),
    )
    .await
    .unwrap_err();
    let CommandError::Refused(Rejection::Invalid(reason)) = &e else {
        panic!("{e}")
    };
    for cell in [
        "C3: department nowhere does not exist",
        "D4: badge number 1001 already belongs to p1",
        "B5: a person's name must not be empty",
        "E6: \"soon\" is not a date",
    ] {
        assert!(reason.contains(cell), "{reason} should name {cell}");
    }
    assert!(reason.contains("4 bad cell(s)"), "{reason}");
    assert_eq!(stream(&w).await.len(), before, "nothing applied");
    let good = sheet(&[
        &["账号", "姓名", "部门", "工号", "入职日期"],
        &["p1", "Li Wei", "plant", "1001", "2026-11-01"],
        &["p2", "Wang Fang", "line-1", "1002", "2026/11/02"],
    ]);
    let done = commands::execute(
        &w.ledger,
        &req("good", PersonCommand::Import { sheet: good }),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(done.events().len(), 2);
}
