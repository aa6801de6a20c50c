//! What every `attendance admin` command that goes through the `commands` crate shares:
//! who asks, for which tenant, under which command id, and one way to execute.

use chrono::{DateTime, Utc};
use clap::Args;
use commands::{Command, Outcome, Request};
use ledger::Ledger;
use schemas::Actor;
use schemas::ids::{CommandId, TenantId, UserId};

use crate::cli::NatsArgs;

#[derive(Debug, Args)]
pub struct Caller {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The tenant (company).
    #[arg(long)]
    pub tenant: String,
    /// Who is acting, recorded on the events.
    #[arg(long, env = "LEDGERCLOCK_USER", default_value = "admin")]
    pub user: String,
    /// This command's id: run again with the same id and it is stored once. Default: a
    /// fresh one.
    #[arg(long)]
    pub command_id: Option<String>,
}

/// A command executed (what it stored printed), with what the caller may still need
/// (a roster sync).
pub struct Executed {
    pub ledger: Ledger,
    pub command_id: CommandId,
    pub tenant: TenantId,
    pub actor: Actor,
    pub now: DateTime<Utc>,
}

impl Caller {
    pub fn tenant_id(&self) -> anyhow::Result<TenantId> {
        TenantId::parse(&self.tenant)
            .map_err(|e| crate::rules_cmd::BadArgument(e.to_string()).into())
    }

    pub fn actor(&self) -> Actor {
        Actor::User {
            user_id: UserId::from(self.user.as_str()),
        }
    }

    /// The caller's command id, or a fresh one; `part` tells apart the commands one
    /// invocation sends.
    pub fn command_id(&self, part: Option<usize>) -> CommandId {
        let base = self
            .command_id
            .as_deref()
            .map(CommandId::from)
            .unwrap_or_else(commands::mint_command_id);
        match part {
            None => base,
            Some(i) => CommandId::from(format!("{base}-{i}").as_str()),
        }
    }

    pub async fn connect(&self) -> anyhow::Result<Ledger> {
        let ledger = Ledger::connect(&self.nats.nats, self.nats.ledger.config()).await?;
        ledger.provision().await?;
        Ok(ledger)
    }

    /// Executes `command` and prints what it stored.
    pub async fn execute<C: Command>(&self, command: C) -> anyhow::Result<Executed> {
        let tenant = self.tenant_id()?;
        let ledger = self.connect().await?;
        let command_id = self.command_id(None);
        let now = Utc::now();
        let actor = self.actor();
        let outcome = commands::execute(
            &ledger,
            &Request {
                tenant: tenant.clone(),
                actor: actor.clone(),
                command_id: command_id.clone(),
                command,
            },
            now,
        )
        .await?;
        print_outcome(&command_id, &outcome);
        Ok(Executed {
            ledger,
            command_id,
            tenant,
            actor,
            now,
        })
    }

    /// Executes `command`, prints what it stored, and closes the connection.
    pub async fn send<C: Command>(&self, command: C) -> anyhow::Result<()> {
        let done = self.execute(command).await?;
        done.ledger.drain().await?;
        Ok(())
    }
}

pub fn print_outcome(command_id: &CommandId, outcome: &Outcome) {
    let (said, events) = match outcome {
        Outcome::Applied(e) => ("done", e),
        Outcome::AlreadyDone(e) => ("already done (nothing new stored)", e),
    };
    println!("command {command_id}: {said}");
    for e in events {
        println!("  {} at sequence {} ({})", e.kind, e.sequence, e.event_id);
    }
}
