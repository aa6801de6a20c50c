//! Demo data for `attendance up`: a small company set up through the command service's
//! commands (departments, people, a fixed rule, a shift rule with a night shift and a
//! week of schedule, a leave, a make-up, a calibration) and one device's punches from the
//! last weekday, so the first report a new user sees has every column filled.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday as ChronoWeekday};
use ledger::Ledger;
use schemas::events::*;
use schemas::ids::*;
use schemas::{Actor, Aggregate, AggregateKind, Envelope};

use commands::organisation::{DepartmentCommand, PersonCommand};
use commands::requests::RequestCommand;
use commands::rules::RuleCommand;
use commands::schedules::ScheduleCommand;

const DEVICE: &str = "DEMO0000000001";
const ZONE: &str = "Asia/Shanghai";

/// Sets the demo company up through the command service's commands, as an administrator
/// would, then appends the device's punches, unless the tenant has them already. Returns
/// how many events it stored. The check is on the punches, stored last: a load
/// interrupted before them is completed next time, and the commands' fixed ids keep the
/// rest from doubling (each is found done).
pub async fn load(ledger: &Ledger, tenant: &TenantId, now: DateTime<Utc>) -> anyhow::Result<usize> {
    claim_device(ledger, tenant, now).await?;
    let punches = Aggregate::new(AggregateKind::Punches, DEVICE);
    if ledger.last_sequence(tenant, &punches).await? > 0 {
        return Ok(0);
    }
    let zone = ZoneName::parse(ZONE)?;
    let day = last_weekday_before(now.with_timezone(&zone.tz()).date_naive());
    let mut stored = 0;
    for step in setup(day) {
        stored += step.execute(ledger, tenant, now).await?;
    }
    let events = punch_events(tenant, day, now);
    ledger.append_many(&events).await?;
    Ok(stored + events.len())
}

/// Binds the demo device as an administrator would (its SN claimed for the tenant, so
/// it can upload and no other tenant can take it); already bound to it is fine.
async fn claim_device(
    ledger: &Ledger,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    use commands::devices::{self, Bind};
    let bind = Bind {
        sn: DeviceSn::from(DEVICE),
        name: "Front door".into(),
        model: Some("SpeedFace-V5L".into()),
        zone: ZoneName::parse(ZONE)?,
        records_from: NaiveDate::from_ymd_opt(2024, 1, 1),
    };
    let admin = Actor::User {
        user_id: UserId::from("demo-admin"),
    };
    let request = commands::Request {
        tenant: tenant.clone(),
        actor: admin,
        command_id: schemas::ids::CommandId::from("demo-bind"),
        command: bind,
    };
    match devices::bind(ledger, &request, now).await {
        Ok(_) => Ok(()),
        Err(commands::CommandError::Refused(r)) => {
            tracing::warn!(sn = DEVICE, reason = %r, "the demo device cannot be bound here; the demo goes on without it");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// One administrative act of the demo, under a fixed command id.
enum Step {
    Department(&'static str, DepartmentCommand),
    Person(&'static str, PersonCommand),
    Rule(&'static str, RuleCommand),
    Schedule(&'static str, ScheduleCommand),
    Request(&'static str, RequestCommand),
}

impl Step {
    async fn execute(
        self,
        ledger: &Ledger,
        tenant: &TenantId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        async fn run<C: commands::Command>(
            ledger: &Ledger,
            tenant: &TenantId,
            id: &str,
            command: C,
            now: DateTime<Utc>,
        ) -> anyhow::Result<usize> {
            let request = commands::Request {
                tenant: tenant.clone(),
                actor: Actor::User {
                    user_id: UserId::from("demo-admin"),
                },
                command_id: CommandId::from(format!("demo-{id}").as_str()),
                command,
            };
            Ok(match commands::execute(ledger, &request, now).await? {
                commands::Outcome::Applied(e) => e.len(),
                commands::Outcome::AlreadyDone(_) => 0,
            })
        }
        match self {
            Self::Department(id, c) => run(ledger, tenant, id, c, now).await,
            Self::Person(id, c) => run(ledger, tenant, id, c, now).await,
            Self::Rule(id, c) => run(ledger, tenant, id, c, now).await,
            Self::Schedule(id, c) => run(ledger, tenant, id, c, now).await,
            Self::Request(id, c) => run(ledger, tenant, id, c, now).await,
        }
    }
}

fn since() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date")
}

fn at(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("a time")
}

fn section(on: NaiveTime, off: NaiveTime) -> Section {
    Section {
        on,
        on_next_day: false,
        off,
        off_next_day: off <= on,
        on_window: PunchWindow::default(),
        off_window: PunchWindow::default(),
    }
}

/// The company: three departments, five people, a fixed office rule (the four worked
/// examples of the domain brief follow it), a shift rule with a day and a night shift
/// and a week of schedule for the night worker, one leave, one make-up, one calibration.
fn setup(day: NaiveDate) -> Vec<Step> {
    use commands::rules::{CreateRule, Effective};
    let zone = ZoneName::parse(ZONE).expect("a known zone");
    let mut steps = Vec::new();
    for (id, name) in [
        ("eng", "Engineering"),
        ("ops", "Operations"),
        ("plant", "Plant"),
    ] {
        steps.push(Step::Department(
            id,
            DepartmentCommand::Define {
                department_id: DepartmentId::from(id),
                name: name.into(),
                parent: None,
            },
        ));
    }
    for (id, name, dept, badge) in [
        ("p-1001", "Li Wei", "eng", "1001"),
        ("p-1002", "Wang Fang", "eng", "1002"),
        ("p-1003", "Zhang Min", "ops", "1003"),
        ("p-1004", "Chen Jie", "ops", "1004"),
        ("p-1005", "Zhao Lei", "plant", "1005"),
    ] {
        steps.push(Step::Person(
            id,
            PersonCommand::Hire {
                person_id: PersonId::from(id),
                name: name.into(),
                department_id: DepartmentId::from(dept),
                badge: Some(badge.into()),
                hired_on: NaiveDate::from_ymd_opt(2024, 1, 2).expect("a date"),
            },
        ));
    }
    let office = RuleKind::Fixed(FixedRule {
        workdays: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        day: WorkDay {
            sections: vec![section(at(9, 0), at(18, 0))],
            rests: vec![RestPeriod {
                start: at(12, 0),
                end: at(13, 0),
                next_day: false,
            }],
            flex: Flex::Allowance {
                late_s: 300,
                early_s: 0,
            },
            late_out_late_in: vec![],
            off_punch_required: true,
        },
    });
    // Phones punch within 200 m of the office or on its Wi-Fi; elsewhere the punch is
    // kept and the day shows a location exception. Work time as the domain brief's
    // worked examples count it: inside the scheduled hours.
    let office_options = RuleOptions {
        geofences: vec![Geofence::Circle {
            name: "Office".into(),
            center: LatLon {
                latitude: 31.2304,
                longitude: 121.4737,
            },
            radius_m: 200,
        }],
        wifi: vec![WifiAccessPoint {
            ssid: Some("office".into()),
            bssid: "a4:5e:60:00:00:01".into(),
        }],
        work_time: Some(WorkTime::InsideSchedule),
        ..RuleOptions::default()
    };
    steps.push(Step::Rule(
        "rule-office",
        RuleCommand::Create(CreateRule {
            rule_id: RuleId::from("office"),
            name: "Office hours".into(),
            zone: zone.clone(),
            kind: office,
            options: office_options,
            effective: Effective::From(since()),
        }),
    ));
    steps.push(Step::Rule(
        "rule-office-members",
        RuleCommand::SetMembers(commands::rules::SetMembers {
            rule_id: RuleId::from("office"),
            people: vec![],
            departments: vec![DepartmentId::from("eng"), DepartmentId::from("ops")],
            excluded_people: vec![],
            effective: Effective::From(since()),
        }),
    ));
    for (id, name, on, off) in [
        ("day", "Day", at(8, 0), at(17, 0)),
        ("night", "Night", at(22, 0), at(6, 0)),
    ] {
        steps.push(Step::Schedule(
            if id == "day" {
                "shift-day"
            } else {
                "shift-night"
            },
            ScheduleCommand::DefineShift {
                shift_id: ShiftId::from(id),
                name: name.into(),
                day: WorkDay {
                    sections: vec![section(on, off)],
                    rests: vec![],
                    flex: Flex::None,
                    late_out_late_in: vec![],
                    off_punch_required: true,
                },
            },
        ));
    }
    steps.push(Step::Rule(
        "rule-plant",
        RuleCommand::Create(CreateRule {
            rule_id: RuleId::from("plant"),
            name: "Plant shifts".into(),
            zone: zone.clone(),
            kind: RuleKind::Shifts(ShiftRule {
                shifts: vec![ShiftId::from("day"), ShiftId::from("night")],
                unscheduled: Unscheduled::Rest,
            }),
            options: RuleOptions::default(),
            effective: Effective::From(since()),
        }),
    ));
    steps.push(Step::Rule(
        "rule-plant-members",
        RuleCommand::SetMembers(commands::rules::SetMembers {
            rule_id: RuleId::from("plant"),
            people: vec![],
            departments: vec![DepartmentId::from("plant")],
            excluded_people: vec![],
            effective: Effective::From(since()),
        }),
    ));
    // The week up to the demo day: two day shifts, then nights (the last one, starting
    // the evening before the demo day, is the night the device saw), one rest.
    let week: Vec<ScheduledDay> = (0..7)
        .map(|i| {
            let date = day - Duration::days(6 - i);
            let shift = match i {
                0 | 1 => Some("day"),
                2 => None,
                _ => Some("night"),
            };
            ScheduledDay {
                date,
                shift: shift.map(ShiftId::from),
            }
        })
        .collect();
    steps.push(Step::Schedule(
        "schedule-week",
        ScheduleCommand::Assign {
            rule_id: RuleId::from("plant"),
            person_id: PersonId::from("p-1005"),
            days: week,
        },
    ));
    // The worked examples' original verdicts stay as the brief has them; the calibrated
    // column shows what an administrator did about them.
    steps.push(Step::Request(
        "leave",
        RequestCommand::Approve {
            approval_id: ApprovalId::from("demo-leave-1"),
            person_id: PersonId::from("p-1004"),
            kind: commands::requests::AbsenceKind::Leave {
                leave_type: "annual".into(),
            },
            start: day.and_time(at(9, 0)),
            end: day.and_time(at(18, 0)),
            zone: None,
            note: Some("family visit".into()),
        },
    ));
    steps.push(Step::Request(
        "make-up",
        RequestCommand::RequestMakeUp {
            approval_id: ApprovalId::from("demo-make-up-1"),
            person_id: PersonId::from("p-1002"),
            local_time: day.and_time(at(18, 2)),
            reason: "left without punching out".into(),
        },
    ));
    steps.push(Step::Request(
        "make-up-approved",
        RequestCommand::ApproveMakeUp {
            approval_id: ApprovalId::from("demo-make-up-1"),
            approver: Some(UserId::from("demo-admin")),
        },
    ));
    steps.push(Step::Request(
        "calibration",
        RequestCommand::Calibrate {
            calibration_id: CalibrationId::from("demo-calibration-1"),
            person_id: PersonId::from("p-1003"),
            date: day,
            target: CalibrationTarget::Day,
            status: AttendanceStatus::Normal,
            reason: "client visit in the morning, confirmed by the manager".into(),
        },
    ));
    steps
}

/// The device's punches of the demo day (and the night worker's night before it).
fn punch_events(tenant: &TenantId, day: NaiveDate, now: DateTime<Utc>) -> Vec<Envelope> {
    let zone = ZoneName::parse(ZONE).expect("a known zone");
    let tz = zone.tz();
    let sn = DeviceSn::from(DEVICE);
    let device = Actor::Device { sn: sn.clone() };
    let mut punches = Vec::new();
    // The four worked examples of the domain brief, one person each, and the night
    // worker's night shift from the evening before.
    let night_before = day - Duration::days(1);
    let times: Vec<(&str, NaiveDate, (u32, u32, u32))> = vec![
        ("1001", day, (9, 0, 0)),
        ("1001", day, (18, 0, 0)),
        ("1002", day, (14, 25, 0)),
        ("1002", day, (14, 25, 8)),
        ("1003", day, (16, 27, 0)),
        ("1003", day, (19, 59, 0)),
        ("1005", night_before, (21, 52, 0)),
        ("1005", day, (6, 4, 0)),
    ];
    for (badge, date, (h, m, s)) in times {
        let local = date.and_time(NaiveTime::from_hms_opt(h, m, s).expect("a time"));
        let badge = BadgeNumber::from(badge);
        let instant = local
            .and_local_timezone(tz)
            .single()
            .expect("no DST in Asia/Shanghai")
            .with_timezone(&Utc);
        punches.push(Punch {
            verify_mode: Some(VerifyMode::Face),
            punch_state: Some(0),
            raw_line: Some(format!(
                "{badge}\t{}\t0\t15\t0\t0",
                local.format("%Y-%m-%d %H:%M:%S")
            )),
            ..Punch::from_device(sn.clone(), badge.clone(), local, zone.clone(), instant)
        });
    }
    let occurred = punches.last().map_or(now, |p| p.instant);
    vec![
        Envelope::new(tenant.clone(), device, PunchesRecorded { sn, punches }, now)
            .occurred_at(occurred)
            .with_id(EventId::derived(&[
                "demo",
                tenant.as_str(),
                &format!("punches-{day}"),
            ])),
    ]
}

fn last_weekday_before(today: NaiveDate) -> NaiveDate {
    let mut day = today - Duration::days(1);
    while matches!(day.weekday(), ChronoWeekday::Sat | ChronoWeekday::Sun) {
        day -= Duration::days(1);
    }
    day
}
