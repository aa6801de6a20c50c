//! Laws of the projection fold over generated histories: views folded incrementally (any
//! prefix, any batch sizes, clock moving forward, a restart from the facts in between)
//! equal, byte for byte, the views of one rebuild at the same clock; and every stored
//! day equals what the replay judge makes of the same events.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use projections::book::{Book, DailyQuery};
use projections::fold::{Fold, Threads};
use projections::store::{MemStore, decode, key};
use projections::views::StoredDay;
use proptest::prelude::*;
use schemas::events::*;
use schemas::ids::*;
use schemas::{Actor, Envelope, Event};

const ZONE: &str = "Asia/Shanghai";

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn start() -> NaiveDate {
    // Late in a month, so that histories cross into the next and months close.
    NaiveDate::from_ymd_opt(2026, 3, 26).unwrap()
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// The `seq`th event, recorded five hours after the one before: a stream's clock
/// crosses the days its events are about, so days open and close between batches.
fn envelope(event: impl Into<Event>, seq: usize) -> Envelope {
    let at = Utc.from_utc_datetime(&(start() - Duration::days(1)).and_time(NaiveTime::MIN))
        + Duration::hours(5 * seq as i64);
    Envelope::new(
        tenant(),
        Actor::User {
            user_id: "hr".into(),
        },
        event,
        at,
    )
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

fn rule(id: &str, version: u32, from: NaiveDate, night: bool, on_hour: u32) -> RuleVersionDefined {
    let kind = if night {
        RuleKind::Shifts(ShiftRule {
            shifts: vec![ShiftId::new("night"), ShiftId::new("day")],
            unscheduled: Unscheduled::SelfSchedule,
        })
    } else {
        RuleKind::Fixed(FixedRule {
            workdays: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            day: WorkDay {
                sections: vec![section(t(on_hour, 0), t(18, 0))],
                rests: vec![RestPeriod {
                    start: t(12, 0),
                    end: t(13, 0),
                    next_day: false,
                }],
                flex: Flex::Allowance {
                    late_s: 300,
                    early_s: 0,
                },
                late_out_late_in: vec![LateOutTier {
                    off_after_s: 7200,
                    next_on_later_by_s: 3600,
                }],
                off_punch_required: true,
            },
        })
    };
    RuleVersionDefined {
        rule_id: RuleId::new(id),
        version,
        name: "R".into(),
        zone: ZoneName::parse(ZONE).unwrap(),
        effective_from: from,
        kind,
        options: RuleOptions {
            holiday_calendar: Some(CalendarId::new("cn")),
            ..RuleOptions::default()
        },
    }
}

fn workday(on: NaiveTime, off: NaiveTime) -> WorkDay {
    WorkDay {
        sections: vec![section(on, off)],
        rests: Vec::new(),
        flex: Flex::None,
        late_out_late_in: Vec::new(),
        off_punch_required: true,
    }
}

fn setup(night: bool) -> Vec<Event> {
    let d = DepartmentId::new("d");
    let hired = start() - Duration::days(1);
    let mut events: Vec<Event> = vec![
        DepartmentDefined {
            department_id: d.clone(),
            name: "D".into(),
            parent: None,
        }
        .into(),
        ShiftDefined {
            shift_id: ShiftId::new("night"),
            name: "Night".into(),
            day: workday(t(22, 0), t(6, 0)),
        }
        .into(),
        ShiftDefined {
            shift_id: ShiftId::new("day"),
            name: "Day".into(),
            day: workday(t(8, 0), t(17, 0)),
        }
        .into(),
    ];
    for (i, badge) in ["1", "2"].iter().enumerate() {
        events.push(
            PersonHired {
                person_id: PersonId::new(format!("p{i}")),
                name: format!("P{i}"),
                department_id: d.clone(),
                hired_on: hired,
                badge_number: Some(BadgeNumber::new(*badge)),
                title: None,
            }
            .into(),
        );
    }
    events.push(
        RuleMembershipSet {
            rule_id: RuleId::new("r"),
            people: Vec::new(),
            departments: vec![d],
            excluded_people: Vec::new(),
            effective_from: hired,
        }
        .into(),
    );
    events.push(rule("r", 1, hired, night, 9).into());
    // A second rule, nobody's until a membership names someone.
    events.push(rule("r2", 1, hired, false, 8).into());
    events
}

#[derive(Debug, Clone)]
enum Act {
    Punch {
        badge: u8,
        day: u8,
        minute: u16,
    },
    Leave {
        person: u8,
        day: u8,
    },
    Calibrate {
        person: u8,
        day: u8,
    },
    Rule {
        day: u8,
        on_hour: u32,
    },
    Badge,
    Leaves {
        day: u8,
    },
    Schedule {
        person: u8,
        day: u8,
        night: bool,
    },
    /// p1 follows the second rule from this day (or, `back`, the first again).
    Move {
        day: u8,
        back: bool,
    },
    /// A version of the second rule.
    Rule2 {
        day: u8,
        on_hour: u32,
    },
    /// The day or the night shift's times change.
    Shift {
        night: bool,
        on_hour: u32,
    },
    /// The first rule's cycle is (re)defined, its pattern turned by `turn`.
    Cycle {
        turn: u8,
    },
    CycleAssign {
        person: u8,
        day: u8,
    },
    /// p0 swaps a day with p1 (or, `other_day`, with another of p0's days).
    Swap {
        day: u8,
        other_day: Option<u8>,
    },
    Special {
        day: u8,
        no_punch: bool,
    },
    Calendar {
        day: u8,
        holiday: bool,
    },
    /// The sub-department d2 is defined (or moved) under d, or at the top.
    SubDepartment {
        under: bool,
        moved: bool,
    },
    /// A person moves to d2, or back to d.
    Transfer {
        person: u8,
        sub: bool,
    },
    /// A month is closed for payroll: February (before anyone was hired), March or
    /// April (whether or not it has ended; the command refuses that, the fold takes
    /// what the stream holds).
    Close {
        month: u8,
    },
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        10 => (0u8..2, 0u8..10, prop_oneof![0u16..1440, 480u16..600, 1020u16..1200, 1290u16..1440, 240u16..400])
            .prop_map(|(badge, day, minute)| Act::Punch { badge, day, minute }),
        1 => (0u8..2, 0u8..10).prop_map(|(person, day)| Act::Leave { person, day }),
        1 => (0u8..2, 0u8..10).prop_map(|(person, day)| Act::Calibrate { person, day }),
        1 => (0u8..10, 7u32..11).prop_map(|(day, on_hour)| Act::Rule { day, on_hour }),
        1 => Just(Act::Badge),
        1 => (0u8..10).prop_map(|day| Act::Leaves { day }),
        1 => (0u8..2, 0u8..10, any::<bool>()).prop_map(|(person, day, night)| Act::Schedule { person, day, night }),
        1 => (0u8..10, any::<bool>()).prop_map(|(day, back)| Act::Move { day, back }),
        1 => (0u8..10, 7u32..11).prop_map(|(day, on_hour)| Act::Rule2 { day, on_hour }),
        1 => (any::<bool>(), 6u32..10).prop_map(|(night, on_hour)| Act::Shift { night, on_hour }),
        1 => (0u8..3).prop_map(|turn| Act::Cycle { turn }),
        1 => (0u8..2, 0u8..10).prop_map(|(person, day)| Act::CycleAssign { person, day }),
        1 => (0u8..10, proptest::option::of(0u8..10)).prop_map(|(day, other_day)| Act::Swap { day, other_day }),
        1 => (0u8..10, any::<bool>()).prop_map(|(day, no_punch)| Act::Special { day, no_punch }),
        1 => (0u8..10, any::<bool>()).prop_map(|(day, holiday)| Act::Calendar { day, holiday }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(under, moved)| Act::SubDepartment { under, moved }),
        1 => (0u8..2, any::<bool>()).prop_map(|(person, sub)| Act::Transfer { person, sub }),
        2 => (0u8..3).prop_map(|month| Act::Close { month }),
    ]
}

fn events_of(night: bool, acts: &[Act]) -> Vec<Envelope> {
    let mut events = setup(night);
    let mut version = 1;
    let mut version2 = 1;
    for (i, a) in acts.iter().enumerate() {
        let date = |d: u8| start() + Duration::days(i64::from(d));
        let person = |p: u8| PersonId::new(format!("p{p}"));
        let e: Event = match a {
            Act::Punch { badge, day, minute } => {
                let local: NaiveDateTime =
                    date(*day).and_time(NaiveTime::MIN) + Duration::minutes(i64::from(*minute));
                let zone = ZoneName::parse(ZONE).unwrap();
                let instant = projections::time::instant(zone.tz(), local);
                let punch = Punch::from_device(
                    DeviceSn::new("DEV1"),
                    BadgeNumber::new((badge + 1).to_string()),
                    local,
                    zone,
                    instant,
                );
                PunchesRecorded {
                    sn: DeviceSn::new("DEV1"),
                    punches: vec![punch],
                }
                .into()
            }
            Act::Leave { person: p, day } => {
                let zone = ZoneName::parse(ZONE).unwrap().tz();
                let s = projections::time::at(zone, date(*day), t(9, 0));
                LeaveApproved {
                    approval_id: ApprovalId::new(format!("a{i}")),
                    person_id: person(*p),
                    leave_type: "annual".into(),
                    span: ApprovedSpan {
                        start: s,
                        end: s + Duration::hours(4),
                    },
                    note: None,
                }
                .into()
            }
            Act::Calibrate { person: p, day } => CalibrationApplied {
                calibration_id: CalibrationId::new(format!("c{i}")),
                person_id: person(*p),
                date: date(*day),
                target: CalibrationTarget::Slot {
                    section: 0,
                    end: SlotEnd::On,
                },
                status: AttendanceStatus::Normal,
                reason: "forgot".into(),
                replaces: None,
            }
            .into(),
            Act::Rule { day, on_hour } => {
                version += 1;
                rule("r", version, date(*day), night, *on_hour).into()
            }
            Act::Rule2 { day, on_hour } => {
                version2 += 1;
                rule("r2", version2, date(*day), false, *on_hour).into()
            }
            Act::Move { day, back } => RuleMembershipSet {
                rule_id: RuleId::new("r2"),
                people: if *back { Vec::new() } else { vec![person(1)] },
                departments: Vec::new(),
                excluded_people: Vec::new(),
                effective_from: date(*day),
            }
            .into(),
            Act::Badge => BadgeNumberAssigned {
                person_id: person(1),
                badge_number: BadgeNumber::new("1"),
                previous: Some(BadgeNumber::new("2")),
            }
            .into(),
            Act::Leaves { day } => PersonLeft {
                person_id: person(0),
                left_on: date(*day),
                reason: None,
            }
            .into(),
            Act::Schedule {
                person: p,
                day,
                night: n,
            } => ScheduleAssigned {
                rule_id: RuleId::new("r"),
                person_id: person(*p),
                days: vec![ScheduledDay {
                    date: date(*day),
                    shift: Some(ShiftId::new(if *n { "night" } else { "day" })),
                }],
            }
            .into(),
            Act::Shift { night: n, on_hour } => {
                let (id, on, off) = if *n {
                    ("night", t(on_hour + 14, 0), t(on_hour - 2, 0))
                } else {
                    ("day", t(*on_hour, 0), t(on_hour + 9, 0))
                };
                ShiftDefined {
                    shift_id: ShiftId::new(id),
                    name: id.into(),
                    day: workday(on, off),
                }
                .into()
            }
            Act::Cycle { turn } => {
                let mut days = vec![Some(ShiftId::new("day")), Some(ShiftId::new("night")), None];
                days.rotate_left(usize::from(*turn));
                ScheduleCycleDefined {
                    cycle_id: CycleId::new("c"),
                    rule_id: RuleId::new("r"),
                    name: "C".into(),
                    days,
                }
                .into()
            }
            Act::CycleAssign { person: p, day } => ScheduleCycleAssigned {
                cycle_id: CycleId::new("c"),
                rule_id: RuleId::new("r"),
                person_id: person(*p),
                from: date(*day),
                until: None,
            }
            .into(),
            Act::Swap { day, other_day } => ShiftSwapApproved {
                approval_id: ApprovalId::new(format!("s{i}")),
                rule_id: RuleId::new("r"),
                person_id: person(0),
                date: date(*day),
                with_person: other_day.is_none().then(|| person(1)),
                with_date: other_day.map(date),
            }
            .into(),
            Act::Special { day, no_punch } => SpecialDatesSet {
                rule_id: RuleId::new("r"),
                dates: vec![SpecialDate {
                    date: date(*day),
                    kind: if *no_punch {
                        SpecialDateKind::NoPunch
                    } else {
                        SpecialDateKind::MustPunch {
                            shift: night.then(|| ShiftId::new("day")),
                        }
                    },
                    note: Some("special".into()),
                }],
            }
            .into(),
            Act::Calendar { day, holiday } => HolidayCalendarPublished {
                calendar_id: CalendarId::new("cn"),
                year: date(*day).year(),
                days: vec![CalendarDay {
                    date: date(*day),
                    kind: if *holiday {
                        CalendarDayKind::Holiday
                    } else {
                        CalendarDayKind::SwappedWorkday
                    },
                    name: "holiday".into(),
                }],
            }
            .into(),
            Act::SubDepartment { under, moved } => {
                let parent = under.then(|| DepartmentId::new("d"));
                if *moved {
                    DepartmentMoved {
                        department_id: DepartmentId::new("d2"),
                        parent,
                    }
                    .into()
                } else {
                    DepartmentDefined {
                        department_id: DepartmentId::new("d2"),
                        name: "D2".into(),
                        parent,
                    }
                    .into()
                }
            }
            Act::Transfer { person: p, sub } => PersonUpdated {
                person_id: person(*p),
                name: None,
                department_id: Some(DepartmentId::new(if *sub { "d2" } else { "d" })),
                title: None,
            }
            .into(),
            Act::Close { month } => PeriodClosed {
                month: Month::parse(["2026-02", "2026-03", "2026-04"][usize::from(*month)])
                    .unwrap(),
                note: None,
            }
            .into(),
        };
        events.push(e);
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| envelope(e, i))
        .collect()
}

/// The keys two stores disagree on, readable: what a failing law prints.
fn differences(got: &MemStore, want: &MemStore) -> String {
    let show = |k: &[u8]| String::from_utf8_lossy(k).replace('\0', " ");
    let keys: std::collections::BTreeSet<&Vec<u8>> = got.0.keys().chain(want.0.keys()).collect();
    let mut out = String::new();
    for k in keys {
        match (got.0.get(k), want.0.get(k)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => out.push_str(&format!(
                "{}: incremental {} / rebuild {}\n",
                show(k),
                a.map_or("none".into(), |v| show(v)),
                b.map_or("none".into(), |v| show(v))
            )),
        }
    }
    out
}

fn at(day: u8, hour: u32) -> DateTime<Utc> {
    projections::time::at(
        ZoneName::parse(ZONE).unwrap().tz(),
        start() + Duration::days(i64::from(day)),
        t(hour, 0),
    )
}

/// `events[from..from + n]` with their stream sequences (the first event is 1).
fn numbered(events: &[Envelope], from: usize, n: usize) -> Vec<(u64, &Envelope)> {
    events[from..from + n]
        .iter()
        .enumerate()
        .map(|(j, e)| ((from + j) as u64 + 1, e))
        .collect()
}

fn rebuild(events: &[Envelope], now: DateTime<Utc>) -> MemStore {
    let mut store = MemStore::default();
    let mut fold = Fold::new().judging_on(Threads {
        threads: 1,
        from_people: 1,
    });
    let batch: Vec<(u64, &Envelope)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u64 + 1, e))
        .collect();
    let (changes, _) = fold.apply(&store, &batch, now).unwrap();
    store.commit(changes);
    // Caught up: time has come to `now`.
    let (changes, _) = fold.tick(&store, now).unwrap();
    store.commit(changes);
    store
}

/// The incremental law on one history: its first `length` events folded in batches of
/// `sizes` at the `clock`s, the facts restored at `restart_at`, equal a rebuild at `end`.
fn incremental_law(
    night: bool,
    acts: &[Act],
    length: usize,
    sizes: &[usize],
    clock: &[(u8, u32)],
    restart_at: usize,
    end: (u8, u32),
) -> Result<(), TestCaseError> {
    let events = events_of(night, acts);
    let prefix = &events[..length];
    let now = at(end.0, end.1);
    let expected = rebuild(prefix, now);
    prop_assert!(prefix.len() < 7 || expected.0.keys().any(|k| k[0] == b'd'));

    // Incrementally: random batch sizes, the clock moving forward (never past `now`),
    // one restart from the facts at a random point.
    let mut clocks: Vec<DateTime<Utc>> = clock.iter().map(|(d, h)| at(*d, *h).min(now)).collect();
    clocks.sort();
    // Judged on two threads, one person each, against a rebuild judged on one.
    let two = Threads {
        threads: 2,
        from_people: 1,
    };
    let mut store = MemStore::default();
    let mut fold = Fold::new().judging_on(two);
    let mut i = 0;
    let mut step = 0;
    while i < prefix.len() {
        if i >= restart_at && restart_at > 0 {
            // A new worker on the same store: the facts folded again, no views.
            fold = Fold::new().judging_on(two);
            for (j, e) in prefix[..i].iter().enumerate() {
                fold.restore(j as u64 + 1, e);
            }
        }
        let n = sizes[step % sizes.len()].min(prefix.len() - i);
        let batch = numbered(prefix, i, n);
        let clock = clocks[step.min(clocks.len() - 1)];
        let (changes, _) = fold.apply(&store, &batch, clock).unwrap();
        store.commit(changes);
        if step % 3 == 0 {
            let (changes, _) = fold.tick(&store, clock).unwrap();
            store.commit(changes);
        }
        i += n;
        step += 1;
    }
    let (changes, _) = fold.tick(&store, now).unwrap();
    store.commit(changes);
    prop_assert!(store == expected, "{}", differences(&store, &expected));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn incremental_views_equal_a_rebuild(
        night in any::<bool>(),
        acts in prop::collection::vec(act(), 0..40),
        cut in any::<prop::sample::Index>(),
        sizes in prop::collection::vec(1usize..12, 1..20),
        clock in prop::collection::vec((0u8..12, 0u32..24), 1..20),
        restart in any::<prop::sample::Index>(),
        end in (2u8..12, 0u32..24),
    ) {
        let length = cut.index(events_of(night, &acts).len() + 1);
        incremental_law(night, &acts, length, &sizes, &clock, restart.index(length + 1), end)?;
    }

    /// A rebuild absorbs batches and judges what they made dirty only now and then
    /// (`projections rebuild` judges a week of history at once): the same views.
    #[test]
    fn judging_absorbed_batches_later_equals_judging_each(
        night in any::<bool>(),
        acts in prop::collection::vec(act(), 0..40),
        cut in any::<prop::sample::Index>(),
        sizes in prop::collection::vec(1usize..12, 1..20),
        judge_after in prop::collection::vec(any::<bool>(), 1..20),
        end in (2u8..12, 0u32..24),
    ) {
        let events = events_of(night, &acts);
        let prefix = &events[..cut.index(events.len() + 1)];
        let now = at(end.0, end.1);
        let expected = rebuild(prefix, now);

        let mut store = MemStore::default();
        let mut fold = Fold::new().judging_on(Threads { threads: 2, from_people: 1 });
        let (mut i, mut step) = (0, 0);
        while i < prefix.len() {
            let n = sizes[step % sizes.len()].min(prefix.len() - i);
            let batch = numbered(prefix, i, n);
            let (changes, _) = fold.absorb(&store, &batch, now).unwrap();
            store.commit(changes);
            if judge_after[step % judge_after.len()] {
                let (changes, _) = fold.judge_pending(&store, now).unwrap();
                store.commit(changes);
            }
            i += n;
            step += 1;
        }
        let (mut changes, _) = fold.judge_pending(&store, now).unwrap();
        if !prefix.is_empty() {
            for v in projections::fold::VIEWS {
                changes.put(key::checkpoint(v), (prefix.len() as u64).to_be_bytes().to_vec());
            }
        }
        store.commit(changes);
        let (changes, _) = fold.tick(&store, now).unwrap();
        store.commit(changes);
        prop_assert!(store == expected, "{}", differences(&store, &expected));
    }

    #[test]
    fn stored_days_are_what_the_replay_judge_says(
        night in any::<bool>(),
        acts in prop::collection::vec(act(), 0..40),
        end in (2u8..12, 0u32..24),
    ) {
        let now = at(end.0, end.1);
        // A month closed before all its days ended has them judged as ended (a closed
        // day's verdict is final), which a replay at an earlier clock does not: only
        // closes of months over by `now` are compared.
        let mut events = events_of(night, &acts);
        events.retain(|e| match &e.event {
            Event::PeriodClosed(c) => {
                now >= Utc.from_utc_datetime(&(c.month.last_day() + Duration::days(3)).and_time(NaiveTime::MIN))
            }
            _ => true,
        });
        let store = rebuild(&events, now);
        let mut book = Book::new();
        for (i, e) in events.iter().enumerate() {
            book.apply(i as u64 + 1, e);
        }
        let replay = book.daily(&DailyQuery {
            from: Some(start() - Duration::days(1)),
            to: Some(now.with_timezone(&ZoneName::parse(ZONE).unwrap().tz()).date_naive()),
            now: Some(now),
            ..DailyQuery::default()
        });
        let mut stored = Vec::new();
        for person in ["p0", "p1"] {
            let last = now.with_timezone(&ZoneName::parse(ZONE).unwrap().tz()).date_naive();
            for date in (start() - Duration::days(1)).iter_days().take_while(|d| *d <= last) {
                let k = key::day(&tenant(), &PersonId::new(person), date);
                if let Some(v) = projections::store::Read::get(&store, &k).unwrap() {
                    let d: StoredDay = decode(&v).unwrap();
                    stored.push(d.report_json().unwrap());
                }
            }
        }
        let replayed: Vec<String> = replay
            .iter()
            .map(|r| serde_json::to_string(&r.day).unwrap())
            .collect();
        // The hire's day at least, for both people (one may leave, both may move to a
        // department no rule names).
        prop_assert!(stored.len() >= 2, "{} days stored", stored.len());
        prop_assert_eq!(stored, replayed);
    }
}

/// The laws above prove a re-judge reaches far enough; this, that an organisational act
/// reaches no further than the people it concerns: after a week of history, a new
/// department, a shift or cycle nobody uses, a calendar or special date no rule follows
/// judge nothing, and moving a department judges only the people under it.
#[test]
fn organisational_acts_judge_only_whom_they_reach() {
    let now = at(7, 12);
    let mut events: Vec<Envelope> = events_of(false, &[]);
    // Every act below is recorded with the last of the setup: the stream's clock stands
    // still, so no day begins between batches.
    let still = events.len() - 1;
    let judged_by = |events: &mut Vec<Envelope>, e: Event| {
        let mut fold = Fold::new();
        let mut store = MemStore::default();
        let all = numbered(events, 0, events.len());
        let (changes, _) = fold.apply(&store, &all, now).unwrap();
        store.commit(changes);
        events.push(envelope(e, still));
        let last = numbered(events, events.len() - 1, 1);
        let (changes, folded) = fold.apply(&store, &last, now).unwrap();
        store.commit(changes);
        folded.judged
    };
    let nothing: Vec<Event> = vec![
        DepartmentDefined {
            department_id: DepartmentId::new("new"),
            name: "New".into(),
            parent: Some(DepartmentId::new("d")),
        }
        .into(),
        ShiftDefined {
            shift_id: ShiftId::new("unused"),
            name: "Unused".into(),
            day: workday(t(7, 0), t(15, 0)),
        }
        .into(),
        ScheduleCycleDefined {
            cycle_id: CycleId::new("unassigned"),
            rule_id: RuleId::new("r"),
            name: "C".into(),
            days: vec![Some(ShiftId::new("day")), None],
        }
        .into(),
        HolidayCalendarPublished {
            calendar_id: CalendarId::new("elsewhere"),
            year: 2026,
            days: vec![CalendarDay {
                date: start() + Duration::days(2),
                kind: CalendarDayKind::Holiday,
                name: "Holiday".into(),
            }],
        }
        .into(),
        SpecialDatesSet {
            rule_id: RuleId::new("r2"),
            dates: vec![SpecialDate {
                date: start() + Duration::days(2),
                kind: SpecialDateKind::NoPunch,
                note: None,
            }],
        }
        .into(),
    ];
    for e in nothing {
        let kind = e.kind();
        assert_eq!(judged_by(&mut events, e), 0, "{kind:?} judged days");
    }
    // The calendar the rule follows: both people's days so far (two each, as the
    // stream's clock stands on the setup's second day).
    let judged = judged_by(
        &mut events,
        HolidayCalendarPublished {
            calendar_id: CalendarId::new("cn"),
            year: 2026,
            days: Vec::new(),
        }
        .into(),
    );
    assert!(judged >= 4, "{judged} days judged for a followed calendar");
    // d2 holds p1 only; moving it under d judges p1's days, not p0's.
    events.push(envelope(
        DepartmentDefined {
            department_id: DepartmentId::new("d2"),
            name: "D2".into(),
            parent: None,
        },
        still,
    ));
    events.push(envelope(
        PersonUpdated {
            person_id: PersonId::new("p1"),
            name: None,
            department_id: Some(DepartmentId::new("d2")),
            title: None,
        },
        still,
    ));
    let judged = judged_by(
        &mut events,
        DepartmentMoved {
            department_id: DepartmentId::new("d2"),
            parent: Some(DepartmentId::new("d")),
        }
        .into(),
    );
    assert!(
        (1..4).contains(&judged),
        "{judged} days judged for one person's two"
    );
}

/// A person gains a rule by membership on a day that began in the zone before the
/// membership was folded (the zone's materialised date had already passed it).
#[test]
fn a_rule_gained_on_a_begun_day_judges_that_day() {
    let p = || Act::Punch {
        badge: 0,
        day: 0,
        minute: 0,
    };
    let r2 = || Act::Rule2 { day: 0, on_hour: 7 };
    let acts = vec![
        p(),
        p(),
        r2(),
        r2(),
        p(),
        r2(),
        r2(),
        Act::Transfer {
            person: 1,
            sub: false,
        },
        p(),
        p(),
        r2(),
        Act::Transfer {
            person: 1,
            sub: true,
        },
        p(),
        p(),
        Act::Move {
            day: 5,
            back: false,
        },
    ];
    let n = events_of(false, &acts).len();
    incremental_law(false, &acts, n, &[5, 1, 1], &[(5, 0)], 0, (5, 0)).unwrap();
}
