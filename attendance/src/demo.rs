//! Demo data for `attendance up`: a small company with one device, one fixed rule and a
//! few punches from the last weekday, so a new user sees real events at once.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday as ChronoWeekday};
use ledger::Ledger;
use schemas::events::*;
use schemas::ids::*;
use schemas::{Actor, Aggregate, AggregateKind, Envelope};

const DEVICE: &str = "DEMO0000000001";
const ZONE: &str = "Asia/Shanghai";

/// Appends the demo events unless the tenant has them already. Returns how many it
/// appended. The check is on the punches, the batch's last event: a load interrupted
/// before them is completed next time, and derived ids keep the rest from doubling.
pub async fn load(ledger: &Ledger, tenant: &TenantId, now: DateTime<Utc>) -> anyhow::Result<usize> {
    claim_device(ledger, tenant, now).await?;
    let punches = Aggregate::new(AggregateKind::Punches, DEVICE);
    if ledger.last_sequence(tenant, &punches).await? > 0 {
        return Ok(0);
    }
    let events = events(tenant, now);
    ledger.append_many(&events).await?;
    Ok(events.len())
}

/// Binds the demo device as an administrator would (its SN claimed for the tenant, so
/// it can upload and no other tenant can take it); already bound to it is fine.
async fn claim_device(
    ledger: &Ledger,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    use gateway::admin::{self, AdminError, BindDevice, Refusal};
    let bind = BindDevice {
        tenant: tenant.clone(),
        sn: DeviceSn::from(DEVICE),
        name: "Front door".into(),
        model: Some("SpeedFace-V5L".into()),
        zone: ZoneName::parse(ZONE)?,
        records_from: NaiveDate::from_ymd_opt(2024, 1, 1),
    };
    let admin = Actor::User {
        user_id: UserId::from("demo-admin"),
    };
    match admin::bind(ledger, &bind, admin, now).await {
        Ok(()) | Err(AdminError::Refused(Refusal::AlreadyBound(_))) => Ok(()),
        Err(AdminError::Refused(Refusal::BoundElsewhere(sn))) => {
            tracing::warn!(%sn, "the demo device is bound to another tenant; the demo goes on without it");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn events(tenant: &TenantId, now: DateTime<Utc>) -> Vec<Envelope> {
    let admin = Actor::User {
        user_id: UserId::from("demo-admin"),
    };
    let zone = ZoneName::parse(ZONE).expect("a known zone");
    let tz = zone.tz();
    let today = now.with_timezone(&tz).date_naive();
    let day = last_weekday_before(today);
    let mut out = Vec::new();
    let mut push = |actor: &Actor, key: &str, event: Event, occurred: DateTime<Utc>| {
        out.push(
            Envelope::new(tenant.clone(), actor.clone(), event, now)
                .occurred_at(occurred)
                .with_id(EventId::derived(&["demo", tenant.as_str(), key])),
        );
    };

    for (id, name) in [("eng", "Engineering"), ("ops", "Operations")] {
        let event = DepartmentDefined {
            department_id: DepartmentId::from(id),
            name: name.into(),
            parent: None,
        };
        push(&admin, &format!("dept-{id}"), event.into(), now);
    }
    let people = [
        ("p-1001", "Li Wei", "eng", "1001"),
        ("p-1002", "Wang Fang", "eng", "1002"),
        ("p-1003", "Zhang Min", "ops", "1003"),
        ("p-1004", "Chen Jie", "ops", "1004"),
    ];
    for (id, name, dept, badge) in people {
        let event = PersonHired {
            person_id: PersonId::from(id),
            name: name.into(),
            department_id: DepartmentId::from(dept),
            hired_on: NaiveDate::from_ymd_opt(2024, 1, 2).expect("a date"),
            badge_number: Some(BadgeNumber::from(badge)),
            title: None,
        };
        push(&admin, &format!("hire-{id}"), event.into(), now);
    }
    let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("a time");
    let rule = RuleVersionDefined {
        rule_id: RuleId::from("office"),
        version: 1,
        name: "Office hours".into(),
        zone: zone.clone(),
        effective_from: NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date"),
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
                    on: at(9, 0),
                    on_next_day: false,
                    off: at(18, 0),
                    off_next_day: false,
                    on_window: PunchWindow::default(),
                    off_window: PunchWindow::default(),
                }],
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
        }),
        // Phones punch within 200 m of the office or on its Wi-Fi; elsewhere the punch is
        // kept and the day shows a location exception.
        options: RuleOptions {
            holiday_calendar: Some(CalendarId::from("CN")),
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
            ..RuleOptions::default()
        },
    };
    push(&admin, "rule-office-v1", rule.into(), now);
    let membership = RuleMembershipSet {
        rule_id: RuleId::from("office"),
        people: vec![],
        departments: vec![DepartmentId::from("eng"), DepartmentId::from("ops")],
        excluded_people: vec![],
        effective_from: NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date"),
    };
    push(&admin, "rule-office-members", membership.into(), now);

    // The four worked examples of the domain brief, one person each.
    let sn = DeviceSn::from(DEVICE);
    let device = Actor::Device { sn: sn.clone() };
    let mut punches = Vec::new();
    for (badge, times) in [
        ("1001", vec![(9, 0, 0), (18, 0, 0)]),
        ("1002", vec![(14, 25, 0), (14, 25, 8)]),
        ("1003", vec![(16, 27, 0), (19, 59, 0)]),
        ("1004", vec![]),
    ] {
        for (h, m, s) in times {
            let local = day.and_time(NaiveTime::from_hms_opt(h, m, s).expect("a time"));
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
    }
    let occurred = punches.last().map_or(now, |p| p.instant);
    push(
        &device,
        &format!("punches-{day}"),
        PunchesRecorded { sn, punches }.into(),
        occurred,
    );
    out
}

fn last_weekday_before(today: NaiveDate) -> NaiveDate {
    let mut day = today - Duration::days(1);
    while matches!(day.weekday(), ChronoWeekday::Sat | ChronoWeekday::Sun) {
        day -= Duration::days(1);
    }
    day
}
