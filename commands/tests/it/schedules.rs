//! Shifts and schedule sheets through `execute`, against a real nats-server.

use chrono::NaiveDate;
use commands::rules::{CreateRule, Effective, RuleCommand};
use commands::schedules::{ScheduleCommand, Sheet, export};
use commands::{CommandError, Rejection, State};
use schemas::Event;
use schemas::events::{RuleKind, Section, ShiftRule, WorkDay};

use crate::*;

fn req(id: &str, command: ScheduleCommand) -> commands::Request<ScheduleCommand> {
    commands::Request {
        tenant: tenant(),
        actor: schemas::Actor::User {
            user_id: "hr-wang".into(),
        },
        command_id: id.into(),
        command,
    }
}

fn day(on: &str, off: &str) -> WorkDay {
    WorkDay {
        sections: vec![Section {
            on: hm(on),
            on_next_day: false,
            off: hm(off),
            off_next_day: hm(off) <= hm(on),
            on_window: Default::default(),
            off_window: Default::default(),
        }],
        rests: Vec::new(),
        flex: Default::default(),
        late_out_late_in: Vec::new(),
        off_punch_required: true,
    }
}

/// A day shift, a night shift, a shift rule over both, p1 and p2 in prod.
async fn setup(w: &World) {
    organisation(w, &["p1", "p2"]).await;
    for (id, name, on, off) in [
        ("d", "Day", "08:00", "17:00"),
        ("n", "Night", "22:00", "06:00"),
    ] {
        commands::execute(
            &w.ledger,
            &req(
                &format!("s-{id}"),
                ScheduleCommand::DefineShift {
                    shift_id: id.into(),
                    name: name.into(),
                    day: day(on, off),
                },
            ),
            now(),
        )
        .await
        .unwrap();
    }
    run(
        w,
        "rule",
        RuleCommand::Create(CreateRule {
            rule_id: "plant".into(),
            name: "Plant".into(),
            zone: schemas::ids::ZoneName::parse("Asia/Shanghai").unwrap(),
            kind: RuleKind::Shifts(ShiftRule {
                shifts: vec!["d".into(), "n".into()],
                unscheduled: Default::default(),
            }),
            options: Default::default(),
            effective: Effective::Now,
        }),
    )
    .await
    .unwrap();
}

fn sheet(rows: &[&[&str]]) -> Sheet {
    Sheet {
        rows: rows
            .iter()
            .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
            .collect(),
    }
}

async fn load(w: &World) -> commands::schedules::Schedules {
    let mut s = commands::schedules::Schedules::default();
    for (seq, e) in stream(w).await {
        s.apply(seq, &e);
    }
    s
}

#[tokio::test]
async fn a_sheet_with_bad_cells_applies_nothing_and_names_each_cell() {
    let w = world().await;
    setup(&w).await;
    let before = stream(&w).await.len();
    let bad = sheet(&[
        &["账号", "姓名", "2026-12-07", "2026-12-08", "someday"],
        &["p1", "person p1", "Day", "Evening", ""],
        &["ghost", "", "Day", "", ""],
        &["p2", "person p2", "Night", "休", ""],
        &["p2", "again", "Day", "", ""],
    ]);
    let e = commands::execute(
        &w.ledger,
        &req(
            "imp-bad",
            ScheduleCommand::Import {
                rule_id: "plant".into(),
                sheet: bad,
            },
        ),
        now(),
    )
    .await
    .unwrap_err();
    let CommandError::Refused(Rejection::Invalid(reason)) = &e else {
        panic!("refused: {e}");
    };
    for cell in [
        "E1: \"someday\" is not a date",
        "D2: \"Evening\" is not one of the rule's shifts",
        "A3: person ghost does not exist",
        "A5: person p2 has a row already",
    ] {
        assert!(reason.contains(cell), "{reason} should name {cell}");
    }
    assert!(
        reason.contains("4 bad cell(s); nothing was applied"),
        "{reason}"
    );
    assert_eq!(stream(&w).await.len(), before);
}

#[tokio::test]
async fn a_month_imported_from_a_sheet_exports_as_the_same_sheet() {
    let w = world().await;
    setup(&w).await;
    let dates: Vec<NaiveDate> = NaiveDate::from_ymd_opt(2026, 12, 1)
        .unwrap()
        .iter_days()
        .take(31)
        .collect();
    let mut header = vec!["账号".to_owned(), "姓名".to_owned()];
    header.extend(dates.iter().map(|d| d.to_string()));
    let mut rows = vec![header];
    for (p, first) in [("p1", 0), ("p2", 1)] {
        let mut row = vec![p.to_owned(), format!("person {p}")];
        for (i, _) in dates.iter().enumerate() {
            row.push(
                match (i + first) % 3 {
                    0 => "Day",
                    1 => "Night",
                    _ => "休",
                }
                .to_owned(),
            );
        }
        rows.push(row);
    }
    let sheet = Sheet { rows };
    commands::execute(
        &w.ledger,
        &req(
            "imp",
            ScheduleCommand::Import {
                rule_id: "plant".into(),
                sheet: sheet.clone(),
            },
        ),
        now(),
    )
    .await
    .unwrap();
    let stored: Vec<_> = stream(&w)
        .await
        .into_iter()
        .filter_map(|(_, e)| match e.event {
            Event::ScheduleAssigned(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 2, "one event a person");
    assert_eq!(stored[0].days.len(), 31);
    let out = export(&load(&w).await, &"plant".into(), dates[0], dates[30]);
    assert_eq!(out, sheet, "export, edit, import: the same sheet");
}

#[tokio::test]
async fn shifts_are_defined_once_and_schedules_only_use_the_rules_shifts() {
    let w = world().await;
    setup(&w).await;
    let again = commands::execute(
        &w.ledger,
        &req(
            "s-again",
            ScheduleCommand::DefineShift {
                shift_id: "d".into(),
                name: "Day 2".into(),
                day: day("09:00", "18:00"),
            },
        ),
        now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&again, CommandError::Refused(Rejection::Conflict(r)) if r.contains("already exists")),
        "{again}"
    );
    let assign = |shift: &str| ScheduleCommand::Assign {
        rule_id: "plant".into(),
        person_id: "p1".into(),
        days: vec![schemas::events::ScheduledDay {
            date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            shift: Some(shift.into()),
        }],
    };
    let foreign = commands::execute(&w.ledger, &req("a1", assign("x")), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&foreign, CommandError::Refused(Rejection::Invalid(r)) if r.contains("not one of rule plant's shifts")),
        "{foreign}"
    );
    commands::execute(&w.ledger, &req("a2", assign("n")), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn cycles_swaps_and_a_copied_month() {
    let w = world().await;
    setup(&w).await;
    let exec = |id: &str, c: ScheduleCommand| {
        let r = req(id, c);
        let l = w.ledger.clone();
        async move { commands::execute(&l, &r, now()).await }
    };
    exec(
        "cy",
        ScheduleCommand::DefineCycle {
            cycle_id: "two-shift".into(),
            rule_id: "plant".into(),
            name: "两班倒".into(),
            days: vec![Some("d".into()), Some("n".into()), None],
        },
    )
    .await
    .unwrap();
    let foreign = exec(
        "cy2",
        ScheduleCommand::DefineCycle {
            cycle_id: "bad".into(),
            rule_id: "plant".into(),
            name: "bad".into(),
            days: vec![Some("x".into())],
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(foreign, CommandError::Refused(Rejection::Invalid(_))),
        "{foreign}"
    );
    let d = |day| NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
    exec(
        "as",
        ScheduleCommand::AssignCycle {
            cycle_id: "two-shift".into(),
            person_id: "p1".into(),
            from: d(1),
            until: Some(d(31)),
        },
    )
    .await
    .unwrap();
    let both = exec(
        "sw0",
        ScheduleCommand::ApproveSwap {
            approval_id: "sw".into(),
            rule_id: "plant".into(),
            person_id: "p1".into(),
            date: d(7),
            with_person: Some("p2".into()),
            with_date: Some(d(8)),
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(both, CommandError::Refused(Rejection::Invalid(ref r)) if r.contains("one of the two")),
        "{both}"
    );
    exec(
        "sw1",
        ScheduleCommand::ApproveSwap {
            approval_id: "sw".into(),
            rule_id: "plant".into(),
            person_id: "p1".into(),
            date: d(7),
            with_person: Some("p2".into()),
            with_date: None,
        },
    )
    .await
    .unwrap();
    // November's schedule, copied into December day for day.
    let nov = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let days: Vec<_> = [(nov(2), Some("d")), (nov(3), None), (nov(30), Some("n"))]
        .into_iter()
        .map(|(date, shift)| schemas::events::ScheduledDay {
            date,
            shift: shift.map(Into::into),
        })
        .collect();
    exec(
        "nov",
        ScheduleCommand::Assign {
            rule_id: "plant".into(),
            person_id: "p2".into(),
            days,
        },
    )
    .await
    .unwrap();
    exec(
        "copy",
        ScheduleCommand::CopyMonth {
            rule_id: "plant".into(),
            from: "2026-11".into(),
            to: "2026-12".into(),
        },
    )
    .await
    .unwrap();
    let state = load(&w).await;
    let p2 = &state.days[&("plant".into(), "p2".into())];
    assert_eq!(p2.get(&d(2)), Some(&Some("d".into())));
    assert_eq!(p2.get(&d(3)), Some(&None));
    assert_eq!(p2.get(&d(30)), Some(&Some("n".into())));
    let empty = exec(
        "copy2",
        ScheduleCommand::CopyMonth {
            rule_id: "plant".into(),
            from: "2026-10".into(),
            to: "2026-12".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(empty, CommandError::Refused(Rejection::Invalid(ref r)) if r.contains("nobody is scheduled")),
        "{empty}"
    );
}
