//! Commands against a real nats-server (one per test, on a free loopback port with a
//! temporary store, killed on drop).

mod agreement;
mod devices;
mod given;
mod organisation;
mod periods;
mod requests;
mod rules;
mod schedules;
mod service;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use commands::rules::{CreateRule, Effective, RuleCommand, SetMembers};
use commands::{Outcome, Request};
use futures::StreamExt;
use ledger::{Ledger, LedgerConfig, NatsServer, ReadFrom, ServerOptions};
use schemas::events::{
    DepartmentDefined, FixedRule, Flex, PersonHired, RestPeriod, RuleKind, Section, Weekday,
    WorkDay,
};
use schemas::ids::{CommandId, TenantId, UserId, ZoneName};
use schemas::{Actor, Envelope, Event};

#[derive(Debug)]
pub struct World {
    pub server: NatsServer,
    pub ledger: Ledger,
}

pub async fn world_with(config: LedgerConfig) -> World {
    let server = NatsServer::start(ServerOptions::default())
        .await
        .expect("nats-server starts");
    let ledger = Ledger::connect(&server.url(), config).await.unwrap();
    ledger.provision().await.unwrap();
    World { server, ledger }
}

pub async fn world() -> World {
    world_with(LedgerConfig::default()).await
}

pub fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// 2026-12-03 09:30 in Shanghai.
pub fn now() -> DateTime<Utc> {
    "2026-12-03T01:30:00Z".parse().unwrap()
}

pub fn hm(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

/// 08:30-17:30 Monday to Friday with lunch 12:00-13:00 and 10 minutes' grace: the rule
/// an HR administrator moving off WeCom asks for first.
pub fn office_day() -> RuleKind {
    RuleKind::Fixed(FixedRule {
        workdays: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        day: WorkDay {
            sections: vec![Section {
                on: hm("08:30"),
                on_next_day: false,
                off: hm("17:30"),
                off_next_day: false,
                on_window: Default::default(),
                off_window: Default::default(),
            }],
            rests: vec![RestPeriod {
                start: hm("12:00"),
                end: hm("13:00"),
                next_day: false,
            }],
            flex: Flex::Allowance {
                late_s: 600,
                early_s: 0,
            },
            late_out_late_in: Vec::new(),
            off_punch_required: true,
        },
    })
}

pub fn create(id: &str) -> RuleCommand {
    RuleCommand::Create(CreateRule {
        rule_id: id.into(),
        name: format!("rule {id}"),
        zone: ZoneName::parse("Asia/Shanghai").unwrap(),
        kind: office_day(),
        options: Default::default(),
        effective: Effective::Now,
    })
}

pub fn members(rule: &str, people: &[&str], departments: &[&str]) -> RuleCommand {
    RuleCommand::SetMembers(SetMembers {
        rule_id: rule.into(),
        people: people.iter().map(|p| (*p).into()).collect(),
        departments: departments.iter().map(|d| (*d).into()).collect(),
        excluded_people: Vec::new(),
        effective: Effective::Now,
    })
}

pub fn request(command_id: &str, command: RuleCommand) -> Request<RuleCommand> {
    Request {
        tenant: tenant(),
        actor: Actor::User {
            user_id: UserId::from("hr-wang"),
        },
        command_id: CommandId::from(command_id),
        command,
    }
}

pub async fn run(
    w: &World,
    command_id: &str,
    command: RuleCommand,
) -> Result<Outcome, commands::CommandError> {
    commands::execute(&w.ledger, &request(command_id, command), now()).await
}

/// Hires `people` into department `prod` (defined first), as plain events.
pub async fn organisation(w: &World, people: &[&str]) {
    let mut events: Vec<Event> = vec![
        DepartmentDefined {
            department_id: "prod".into(),
            name: "Production".into(),
            parent: None,
        }
        .into(),
        DepartmentDefined {
            department_id: "office".into(),
            name: "Office".into(),
            parent: None,
        }
        .into(),
    ];
    for p in people {
        events.push(
            PersonHired {
                person_id: (*p).into(),
                name: format!("person {p}"),
                department_id: "prod".into(),
                hired_on: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                badge_number: None,
                title: None,
            }
            .into(),
        );
    }
    let envelopes: Vec<Envelope> = events
        .into_iter()
        .map(|e| {
            Envelope::new(
                tenant(),
                Actor::System {
                    component: "test".into(),
                },
                e,
                now(),
            )
        })
        .collect();
    w.ledger.append_many(&envelopes).await.unwrap();
}

/// Every event of the tenant, in stream order.
pub async fn stream(w: &World) -> Vec<(u64, Envelope)> {
    let mut events = w.ledger.read(&tenant(), ReadFrom::start()).await.unwrap();
    let mut out = Vec::new();
    while let Some(r) = events.next().await {
        let r = r.unwrap();
        out.push((r.sequence, r.envelope));
    }
    out
}
