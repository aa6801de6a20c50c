//! Laws of the judge over generated histories: the order punches arrive in does not
//! matter, an exact duplicate changes nothing, and a day depends only on the events
//! around it.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use projections::book::{Book, DailyQuery, DailyReport};
use proptest::prelude::*;
use schemas::events::*;
use schemas::ids::*;
use schemas::{Actor, Envelope, Event};

const ZONE: &str = "Asia/Shanghai";

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

fn envelope(event: impl Into<Event>) -> Envelope {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Envelope::new(
        TenantId::parse("acme").unwrap(),
        Actor::System {
            component: "test".into(),
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

fn workday(sections: Vec<Section>) -> WorkDay {
    WorkDay {
        sections,
        rests: Vec::new(),
        flex: Flex::None,
        late_out_late_in: Vec::new(),
        off_punch_required: true,
    }
}

const WEEK: [Weekday; 5] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
];

/// The rule templates the laws are checked under.
fn setup(template: u8, merge_gap_s: Option<u32>) -> Vec<Envelope> {
    let rule = RuleId::new("r");
    let options = RuleOptions {
        merge_gap_s,
        ..RuleOptions::default()
    };
    let mut events = vec![
        envelope(DepartmentDefined {
            department_id: DepartmentId::new("d"),
            name: "D".into(),
            parent: None,
        }),
        envelope(PersonHired {
            person_id: PersonId::new("p"),
            name: "P".into(),
            department_id: DepartmentId::new("d"),
            hired_on: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            badge_number: Some(BadgeNumber::new("1")),
            title: None,
        }),
        envelope(RuleMembershipSet {
            rule_id: rule.clone(),
            people: vec![PersonId::new("p")],
            departments: Vec::new(),
            excluded_people: Vec::new(),
            effective_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        }),
    ];
    let kind = match template % 4 {
        0 => {
            let mut day = workday(vec![section(t(9, 0), t(18, 0))]);
            day.rests.push(RestPeriod {
                start: t(12, 0),
                end: t(13, 0),
                next_day: false,
            });
            day.flex = Flex::Allowance {
                late_s: 300,
                early_s: 300,
            };
            day.late_out_late_in = vec![LateOutTier {
                off_after_s: 7200,
                next_on_later_by_s: 3600,
            }];
            RuleKind::Fixed(FixedRule {
                workdays: WEEK.to_vec(),
                day,
            })
        }
        1 => {
            let mut day = workday(vec![
                section(t(8, 0), t(12, 0)),
                section(t(13, 30), t(17, 30)),
            ]);
            day.flex = Flex::ArriveLateLeaveLate {
                max_late_s: 3600,
                max_early_s: 1800,
            };
            day.sections[0].on_window = PunchWindow {
                before_s: Some(3 * 3600),
                after_s: Some(2 * 3600),
            };
            RuleKind::Fixed(FixedRule {
                workdays: WEEK.to_vec(),
                day,
            })
        }
        2 => {
            let shift = ShiftId::new("night");
            events.push(envelope(ShiftDefined {
                shift_id: shift.clone(),
                name: "Night".into(),
                day: workday(vec![section(t(22, 0), t(6, 0))]),
            }));
            events.push(envelope(ScheduleAssigned {
                rule_id: rule.clone(),
                person_id: PersonId::new("p"),
                days: (0..8)
                    .map(|i| ScheduledDay {
                        date: monday() + Duration::days(i),
                        shift: (i % 3 != 2).then(|| shift.clone()),
                    })
                    .collect(),
            }));
            RuleKind::Shifts(ShiftRule {
                shifts: vec![shift],
                unscheduled: Unscheduled::Rest,
            })
        }
        _ => RuleKind::Free(FreeRule {
            workdays: WEEK.to_vec(),
            day_starts_at: t(4, 0),
            standard_work_s: 28800,
        }),
    };
    events.push(envelope(RuleVersionDefined {
        rule_id: rule,
        version: 1,
        name: "R".into(),
        zone: ZoneName::parse(ZONE).unwrap(),
        effective_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        kind,
        options,
    }));
    events
}

fn punch(day: u8, minute: u16) -> Punch {
    let local: NaiveDateTime = (monday() + Duration::days(i64::from(day))).and_time(NaiveTime::MIN)
        + Duration::minutes(i64::from(minute));
    let zone = ZoneName::parse(ZONE).unwrap();
    let sn = DeviceSn::new("DEV1");
    let badge = BadgeNumber::new("1");
    let instant = projections::time::instant(zone.tz(), local);
    Punch {
        verify_mode: Some(VerifyMode::Face),
        ..Punch::from_device(sn, badge, local, zone, instant)
    }
}

fn uploads(punches: &[Punch], batch: usize) -> Vec<Envelope> {
    punches
        .chunks(batch.max(1))
        .map(|c| {
            envelope(PunchesRecorded {
                sn: DeviceSn::new("DEV1"),
                punches: c.to_vec(),
            })
        })
        .collect()
}

fn daily(events: &[Envelope], from: NaiveDate, to: NaiveDate) -> Vec<DailyReport> {
    let mut book = Book::new();
    for (i, e) in events.iter().enumerate() {
        book.apply(i as u64 + 1, e);
    }
    book.daily(&DailyQuery {
        from: Some(from),
        to: Some(to),
        ..DailyQuery::default()
    })
}

fn history() -> impl Strategy<Value = (u8, Option<u32>, Vec<(u8, u16)>)> {
    (
        0u8..4,
        prop_oneof![Just(None), (1u32..600).prop_map(Some)],
        // Punches clustered around working hours, over a week.
        prop::collection::vec(
            (
                0u8..7,
                prop_oneof![
                    0u16..1440,
                    420u16..600,
                    1020u16..1200,
                    1290u16..1440,
                    300u16..420
                ],
            ),
            0..40,
        ),
    )
}

fn dedup(raw: &[(u8, u16)]) -> Vec<Punch> {
    let mut seen = std::collections::BTreeSet::new();
    raw.iter()
        .filter(|p| seen.insert(**p))
        .map(|(d, m)| punch(*d, *m))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn punch_order_and_batching_do_not_matter(
        (template, gap, raw) in history(),
        seed in any::<u64>(),
        batch in 1usize..8,
    ) {
        let punches = dedup(&raw);
        let mut shuffled = punches.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut a = setup(template, gap);
        a.extend(uploads(&punches, 128));
        let mut b = setup(template, gap);
        b.extend(uploads(&shuffled, batch));
        let (from, to) = (monday(), monday() + Duration::days(6));
        prop_assert_eq!(daily(&a, from, to), daily(&b, from, to));
    }

    #[test]
    fn an_exact_duplicate_changes_nothing(
        (template, gap, raw) in history(),
        pick in any::<prop::sample::Index>(),
    ) {
        let punches = dedup(&raw);
        prop_assume!(!punches.is_empty());
        let mut a = setup(template, gap);
        a.extend(uploads(&punches, 16));
        let mut b = a.clone();
        b.extend(uploads(&[pick.get(&punches).clone()], 1));
        let (from, to) = (monday(), monday() + Duration::days(6));
        prop_assert_eq!(daily(&a, from, to), daily(&b, from, to));
    }

    #[test]
    fn a_day_depends_only_on_the_events_around_it(
        (template, gap, raw) in history(),
        day in 2u8..5,
    ) {
        let punches = dedup(&raw);
        let near: Vec<Punch> = punches
            .iter()
            .filter(|p| {
                let d = (p.local_time.date() - monday()).num_days();
                (i64::from(day) - 1..=i64::from(day) + 1).contains(&d)
            })
            .cloned()
            .collect();
        let date = monday() + Duration::days(i64::from(day));
        let mut all = setup(template, gap);
        all.extend(uploads(&punches, 16));
        let mut only_near = setup(template, gap);
        only_near.extend(uploads(&near, 16));
        prop_assert_eq!(daily(&all, date, date), daily(&only_near, date, date));
    }
}

/// 08:52 to 18:03 on a 09:00-18:00 day with lunch 12:00-13:00: 9 h 11 min less the
/// hour's rest when work time counts the punched time, 8 h when only the scheduled hours
/// count, as every rule version stored before the option existed does; a day missing its
/// off punch has no work time either way.
#[test]
fn work_time_counts_the_punched_time_or_only_the_scheduled_hours() {
    let cases = [
        (None, 8 * 3600),
        (Some(WorkTime::InsideSchedule), 8 * 3600),
        (Some(WorkTime::Punched), 8 * 3600 + 11 * 60),
    ];
    for (work_time, expected) in cases {
        let mut events = setup(0, None);
        let Some(Event::RuleVersionDefined(v)) = events.last_mut().map(|e| &mut e.event) else {
            panic!("the rule is the last setup event");
        };
        v.options.work_time = work_time;
        v.kind = RuleKind::Fixed(FixedRule {
            workdays: WEEK.to_vec(),
            day: WorkDay {
                rests: vec![RestPeriod {
                    start: t(12, 0),
                    end: t(13, 0),
                    next_day: false,
                }],
                ..workday(vec![section(t(9, 0), t(18, 0))])
            },
        });
        let both = [
            events.clone(),
            uploads(&[punch(0, 8 * 60 + 52), punch(0, 18 * 60 + 3)], 8),
        ]
        .concat();
        let day = &daily(&both, monday(), monday())[0].day;
        assert_eq!(day.work_s, expected, "{work_time:?}");
        let on_only = [events, uploads(&[punch(0, 8 * 60 + 52)], 8)].concat();
        assert_eq!(
            daily(&on_only, monday(), monday())[0].day.work_s,
            0,
            "{work_time:?}"
        );
    }
}
