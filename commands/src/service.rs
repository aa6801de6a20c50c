//! The command service over NATS request-reply (the NATS service API, queue group
//! `lc-commands`, so instances share the load): `lc.cmd.v1.<tenant>.<family>` with a
//! JSON [`Envelope`] of the family's command. The answer is JSON [`Answer`]; a refusal
//! or failure is a service error (`Nats-Service-Error-Code`, `Nats-Service-Error`) with
//! the reason, and nothing is stored.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ledger::{Ledger, LedgerError};
use schemas::Actor;
use schemas::ids::{CommandId, TenantId, UserId};
use serde::{Deserialize, Serialize};

use crate::devices::{self, DeviceAct};
use crate::organisation::{DepartmentCommand, PersonCommand};
use crate::periods::PeriodCommand;
use crate::requests::RequestCommand;
use crate::rules::RuleCommand;
use crate::schedules::ScheduleCommand;
use crate::{CommandError, Outcome, Request, Stored, execute};

pub const COMMAND_PREFIX: &str = "lc.cmd.v1";
pub const SERVICE_NAME: &str = "ledgerclock-commands";
pub const SERVICE_VERSION: &str = "0.1.0";
/// The command families, each an endpoint `lc.cmd.v1.*.<family>`.
pub const FAMILIES: [&str; 7] = [
    "rules",
    "departments",
    "people",
    "requests",
    "schedules",
    "periods",
    "devices",
];

/// A request: the command, under the caller's id for it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandEnvelope<C> {
    /// The caller's id for this command: send the same id again to retry safely.
    pub command_id: CommandId,
    /// Who is acting. Until identity is in place this is the caller's word.
    pub actor: UserId,
    pub command: C,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Done {
    /// Stored now.
    Applied,
    /// This command id was executed before; nothing new was stored.
    AlreadyDone,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Answer {
    pub outcome: Done,
    pub command_id: CommandId,
    pub events: Vec<Stored>,
    /// What bringing the devices in line stored after the command (a hire, a
    /// transfer, a scope: the people each scoped device is sent or loses), in rounds
    /// of whole changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Stored>,
}

impl Answer {
    pub fn of(command_id: CommandId, outcome: Outcome) -> Self {
        let (outcome, events) = match outcome {
            Outcome::Applied(events) => (Done::Applied, events),
            Outcome::AlreadyDone(events) => (Done::AlreadyDone, events),
        };
        Self {
            outcome,
            command_id,
            events,
            devices: Vec::new(),
        }
    }
}

/// The clock commands are decided at (tests pass their own).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

fn error(code: usize, status: impl Into<String>) -> async_nats::service::error::Error {
    // A reason of several lines (a sheet's bad cells) must still fit one header.
    async_nats::service::error::Error {
        code,
        status: ledger::subjects::header_value(&status.into()),
    }
}

fn command_error(e: &CommandError) -> async_nats::service::error::Error {
    match e {
        CommandError::Refused(r) => error(r.code(), r.to_string()),
        CommandError::Contended => error(409, e.to_string()),
        CommandError::Ledger(l) => match l {
            LedgerError::Unavailable(_) => error(503, l.to_string()),
            LedgerError::Rejected(_) => error(400, l.to_string()),
            _ => error(500, l.to_string()),
        },
    }
}

/// Executes one request for `family` on `subject` (`lc.cmd.v1.<tenant>.<family>`).
pub async fn handle(
    ledger: &Ledger,
    family: &str,
    subject: &str,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<Bytes, async_nats::service::error::Error> {
    let tenant = subject
        .strip_prefix(COMMAND_PREFIX)
        .and_then(|s| s.strip_prefix('.'))
        .and_then(|s| s.split('.').next())
        .ok_or_else(|| error(400, format!("not a command subject: {subject}")))?;
    let tenant =
        TenantId::parse(tenant).map_err(|e| error(400, format!("tenant {tenant:?}: {e}")))?;
    if tenant.as_str() == TenantId::SYSTEM {
        return Err(error(400, "no commands for _system"));
    }
    let answer = match family {
        "rules" => {
            let request: CommandEnvelope<RuleCommand> = serde_json::from_slice(payload)
                .map_err(|e| error(400, format!("not a rules command: {e}")))?;
            run(ledger, tenant, request, now).await?
        }
        "departments" => {
            let request: CommandEnvelope<DepartmentCommand> = serde_json::from_slice(payload)
                .map_err(|e| error(400, format!("not a departments command: {e}")))?;
            let answer = run(ledger, tenant.clone(), request, now).await?;
            devices_follow(ledger, &tenant, answer, now).await
        }
        "people" => {
            let request: CommandEnvelope<PersonCommand> = serde_json::from_slice(payload)
                .map_err(|e| error(400, format!("not a people command: {e}")))?;
            let answer = run(ledger, tenant.clone(), request, now).await?;
            devices_follow(ledger, &tenant, answer, now).await
        }
        "devices" => {
            let request: CommandEnvelope<DeviceAct> = serde_json::from_slice(payload)
                .map_err(|e| error(400, format!("not a devices command: {e}")))?;
            if request.command_id.as_str().is_empty() || request.command_id.as_str().len() > 128 {
                return Err(error(400, "command_id: 1 to 128 characters"));
            }
            let command_id = request.command_id.clone();
            let executed = devices::execute(
                ledger,
                &Request {
                    tenant: tenant.clone(),
                    actor: Actor::User {
                        user_id: request.actor,
                    },
                    command_id: request.command_id,
                    command: request.command,
                },
                now,
            )
            .await
            .map_err(|e| {
                tracing::info!(%tenant, %command_id, error = %e, "command refused");
                command_error(&e)
            })?;
            Answer {
                devices: executed.followed,
                ..Answer::of(command_id, executed.outcome)
            }
        }
        "requests" => {
            let request: CommandEnvelope<RequestCommand> = serde_json::from_slice(payload)
                .map_err(|e| error(400, format!("not a requests command: {e}")))?;
            run(ledger, tenant, request, now).await?
        }
        "schedules" => {
            let request: CommandEnvelope<ScheduleCommand> = serde_json::from_slice(payload)
                .map_err(|e| error(400, format!("not a schedules command: {e}")))?;
            run(ledger, tenant, request, now).await?
        }
        "periods" => {
            let request: CommandEnvelope<PeriodCommand> = serde_json::from_slice(payload)
                .map_err(|e| error(400, format!("not a periods command: {e}")))?;
            run(ledger, tenant, request, now).await?
        }
        other => return Err(error(404, format!("no command family {other:?}"))),
    };
    Ok(Bytes::from(
        serde_json::to_vec(&answer).expect("an answer is JSON"),
    ))
}

/// Devices follow a change of people or departments: the rounds that bring every
/// scoped device in line, under ids derived from the command's. The command stands
/// whatever happens here; a device left behind is brought in line by the next change
/// or by the daily scope job.
async fn devices_follow(
    ledger: &Ledger,
    tenant: &TenantId,
    mut answer: Answer,
    now: DateTime<Utc>,
) -> Answer {
    let actor = Actor::System {
        component: "commands".into(),
    };
    match devices::sync(ledger, tenant, &actor, &answer.command_id, None, now).await {
        Ok(synced) => answer.devices = synced.stored,
        Err(e) => {
            tracing::warn!(%tenant, command_id = %answer.command_id, error = %e, "devices not brought in line; the next sync will")
        }
    }
    answer
}

async fn run<C: crate::Command>(
    ledger: &Ledger,
    tenant: TenantId,
    request: CommandEnvelope<C>,
    now: DateTime<Utc>,
) -> Result<Answer, async_nats::service::error::Error> {
    if request.command_id.as_str().is_empty() || request.command_id.as_str().len() > 128 {
        return Err(error(400, "command_id: 1 to 128 characters"));
    }
    let command_id = request.command_id.clone();
    let outcome = execute(
        ledger,
        &Request {
            tenant: tenant.clone(),
            actor: Actor::User {
                user_id: request.actor,
            },
            command_id: request.command_id,
            command: request.command,
        },
        now,
    )
    .await
    .map_err(|e| {
        tracing::info!(%tenant, %command_id, error = %e, "command refused");
        command_error(&e)
    })?;
    Ok(Answer::of(command_id, outcome))
}

/// Starts the command service on `ledger`'s connection; it runs until the returned
/// service is dropped or stopped.
pub async fn start(
    ledger: Ledger,
    clock: Clock,
) -> Result<
    (
        async_nats::service::Service,
        Vec<tokio::task::JoinHandle<()>>,
    ),
    LedgerError,
> {
    use async_nats::service::ServiceExt;
    let nats = |e: async_nats::Error| LedgerError::Unavailable(e.to_string());
    let service = ledger
        .client()
        .service_builder()
        .description(
            "Ledgerclock commands: rules, departments, people, requests, schedules, periods",
        )
        .queue_group("lc-commands")
        .start(SERVICE_NAME, SERVICE_VERSION)
        .await
        .map_err(nats)?;
    let group = service.group(COMMAND_PREFIX);
    let mut tasks = Vec::new();
    for family in FAMILIES {
        let mut endpoint = group
            .endpoint_builder()
            .name(family)
            .add(format!("*.{family}"))
            .await
            .map_err(nats)?;
        let ledger = ledger.clone();
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                let ledger = ledger.clone();
                let now = clock();
                tokio::spawn(async move {
                    let m = &request.message;
                    let answer = handle(&ledger, family, m.subject.as_str(), &m.payload, now).await;
                    let _ = request.respond(answer).await;
                });
            }
        }));
    }
    Ok((service, tasks))
}

/// The JSON Schemas of what the service takes and answers, checked in under
/// `schemas/json/commands/` for clients in any language.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        (
            "rules.request",
            schemars::schema_for!(CommandEnvelope<RuleCommand>),
        ),
        (
            "departments.request",
            schemars::schema_for!(CommandEnvelope<DepartmentCommand>),
        ),
        (
            "people.request",
            schemars::schema_for!(CommandEnvelope<PersonCommand>),
        ),
        (
            "requests.request",
            schemars::schema_for!(CommandEnvelope<RequestCommand>),
        ),
        (
            "schedules.request",
            schemars::schema_for!(CommandEnvelope<ScheduleCommand>),
        ),
        (
            "periods.request",
            schemars::schema_for!(CommandEnvelope<PeriodCommand>),
        ),
        (
            "devices.request",
            schemars::schema_for!(CommandEnvelope<DeviceAct>),
        ),
        ("answer", schemars::schema_for!(Answer)),
    ]
}
