//! `attendance admin`: administrative commands, validated and appended as events; a
//! refusal says why and appends nothing (exit 65).

use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand};
use gateway::admin::{self, BindDevice};
use ledger::Ledger;
use schemas::Actor;
use schemas::ids::{TenantId, UserId, ZoneName};

use crate::cli::NatsArgs;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Devices: bind, rename, unbind, commands, re-upload.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// People: hire, update, remove (badge numbers: 1-9 digits, unique in the tenant).
    #[command(subcommand)]
    Person(PersonCommand),
}

#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Hire a person into a department, with the badge number devices know them by.
    Hire(HireArgs),
    /// Change a person's name, department or badge number; devices follow.
    Update(UpdateArgs),
    /// The person leaves; their history stays.
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct PersonCommon {
    #[command(flatten)]
    nats: NatsArgs,
    /// The tenant (company) the person belongs to.
    #[arg(long)]
    tenant: String,
    /// The person's id in the tenant (e.g. the HR system's).
    #[arg(long)]
    id: String,
    /// Who is acting, recorded on the events.
    #[arg(long, env = "LEDGERCLOCK_USER", default_value = "admin")]
    user: String,
}

#[derive(Debug, Args)]
pub struct HireArgs {
    #[command(flatten)]
    common: PersonCommon,
    /// Full name, as devices show it.
    #[arg(long)]
    name: String,
    /// Department id.
    #[arg(long)]
    department: String,
    /// Badge number (工号) on the devices: 1 to 9 digits, unique among current people.
    #[arg(long)]
    badge: Option<String>,
    /// First working day (YYYY-MM-DD). Default: today.
    #[arg(long)]
    hired_on: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    common: PersonCommon,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// New department id.
    #[arg(long)]
    department: Option<String>,
    /// New badge number (the old one is deleted from devices first).
    #[arg(long)]
    badge: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    common: PersonCommon,
    /// The last working day. Default: today.
    #[arg(long)]
    on: Option<NaiveDate>,
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Bind a device to a tenant by serial number. An SN bound elsewhere is refused.
    Bind(BindArgs),
    /// Rename a bound device.
    Rename(RenameArgs),
    /// Unbind a device: it may be bound again; `CLEAR DATA` is queued for it.
    Unbind(UnbindArgs),
    /// Queue a command for the device's next poll: info, check, reboot, or users (the
    /// device sends back who it holds).
    Command(CommandArgs),
    /// The device's commands: id, state (queued, delivered, done, failed, expired,
    /// superseded) and what they say.
    Commands(CommandsArgs),
    /// Queue a command that failed or expired again (the new one names the old).
    Retry(RetryArgs),
    /// Ask the device to send a range of its records again (re-upload attendance data).
    Reupload(ReuploadArgs),
    /// Who the device holds (可用范围): people and departments, with exclusions. The
    /// device's roster follows: people entering the scope are pushed to it, people
    /// leaving it are deleted, and later hires, renames and removals follow too.
    Scope(ScopeArgs),
}

#[derive(Debug, Args)]
pub struct ScopeArgs {
    #[command(flatten)]
    common: Common,
    /// Person ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    people: Vec<String>,
    /// Department ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    departments: Vec<String>,
    /// A department includes the departments under it.
    #[arg(long)]
    include_sub_departments: bool,
    #[arg(long, value_delimiter = ',')]
    exclude_people: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    exclude_departments: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SimpleCommand {
    /// `INFO`: the device reports firmware and counts.
    Info,
    /// `CHECK`: the device reads its options again and uploads what is new.
    Check,
    /// `REBOOT`: delivered after everything else queued.
    Reboot,
    /// `DATA QUERY USERINFO`: the device uploads the users it holds.
    Users,
}

#[derive(Debug, Args)]
pub struct CommandsArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub struct CommandArgs {
    #[command(flatten)]
    common: Common,
    #[arg(value_enum)]
    command: SimpleCommand,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    common: Common,
    /// The id of the failed or expired command.
    #[arg(long)]
    id: u64,
}

#[derive(Debug, Args)]
pub struct ReuploadArgs {
    #[command(flatten)]
    common: Common,
    /// First day to send again (device local date, YYYY-MM-DD).
    #[arg(long)]
    from: NaiveDate,
    /// Last day to send again, inclusive.
    #[arg(long)]
    to: NaiveDate,
}

#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    nats: NatsArgs,
    /// The tenant (company) the device belongs to.
    #[arg(long)]
    tenant: String,
    /// The device's serial number.
    #[arg(long)]
    sn: String,
    /// Who is acting, recorded on the events.
    #[arg(long, env = "LEDGERCLOCK_USER", default_value = "admin")]
    user: String,
}

#[derive(Debug, Args)]
pub struct BindArgs {
    #[command(flatten)]
    common: Common,
    /// What people call it ("Front door").
    #[arg(long)]
    name: String,
    /// IANA zone of the device's local time, e.g. Asia/Shanghai.
    #[arg(long)]
    zone: String,
    /// The device model, if known (e.g. SpeedFace-V5L).
    #[arg(long)]
    model: Option<String>,
    /// Accept records dated from this day (YYYY-MM-DD), e.g. the history of a device
    /// used before; default: today. Earlier records are kept as rejected.
    #[arg(long)]
    records_from: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[command(flatten)]
    common: Common,
    /// The new name.
    #[arg(long)]
    name: String,
}

#[derive(Debug, Args)]
pub struct UnbindArgs {
    #[command(flatten)]
    common: Common,
}

pub async fn run(command: AdminCommand) -> anyhow::Result<()> {
    let command = match command {
        AdminCommand::Device(command) => command,
        AdminCommand::Person(command) => return person(command).await,
    };
    match command {
        DeviceCommand::Bind(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let cmd = BindDevice {
                tenant,
                sn: admin::valid_sn(&args.common.sn).map_err(admin::AdminError::from)?,
                name: args.name,
                model: args.model,
                zone: ZoneName::parse(&args.zone)?,
                records_from: args.records_from,
            };
            admin::bind(&ledger, &cmd, actor, Utc::now()).await?;
            println!("bound {} to {} ({})", cmd.sn, cmd.tenant, cmd.zone);
            ledger.drain().await?;
        }
        DeviceCommand::Rename(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let sn = admin::valid_sn(&args.common.sn).map_err(admin::AdminError::from)?;
            admin::rename(&ledger, &tenant, &sn, &args.name, actor, Utc::now()).await?;
            println!("renamed {sn} to {:?}", args.name.trim());
            ledger.drain().await?;
        }
        DeviceCommand::Unbind(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let sn = admin::valid_sn(&args.common.sn).map_err(admin::AdminError::from)?;
            admin::unbind(&ledger, &tenant, &sn, actor, Utc::now()).await?;
            println!("unbound {sn} from {tenant}; CLEAR DATA queued for the device");
            ledger.drain().await?;
        }
        DeviceCommand::Command(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let sn = bound_sn(&ledger, &tenant, &args.common.sn).await?;
            let command = match args.command {
                SimpleCommand::Info => schemas::events::DeviceCommand::Info,
                SimpleCommand::Check => schemas::events::DeviceCommand::Check,
                SimpleCommand::Reboot => schemas::events::DeviceCommand::Reboot,
                SimpleCommand::Users => {
                    schemas::events::DeviceCommand::QueryUsers { badge_number: None }
                }
            };
            let id =
                gateway::commands::queue(&ledger, &tenant, &sn, command, None, actor, Utc::now())
                    .await?;
            println!("queued command {id} for {sn}");
            ledger.drain().await?;
        }
        DeviceCommand::Commands(args) => {
            let (ledger, tenant, _) = open(&args.common).await?;
            let sn = admin::valid_sn(&args.common.sn).map_err(admin::AdminError::from)?;
            let (queue, _) = gateway::commands::load(&ledger, &tenant, &sn).await?;
            println!("{:>4}  {:<22}  command", "id", "state");
            for command in queue.commands.values() {
                use gateway::commands::CommandState;
                let state = match &command.state {
                    CommandState::Queued => "queued".to_owned(),
                    CommandState::Delivered { at } => {
                        format!("delivered {}", at.format("%H:%M:%S"))
                    }
                    CommandState::Done { return_code } => format!("done ({return_code})"),
                    CommandState::Failed => "failed".to_owned(),
                    CommandState::Expired => "expired".to_owned(),
                    CommandState::Superseded { by } => format!("superseded by {by}"),
                };
                let text = gateway::protocol::commands::render(
                    &command.command,
                    gateway::protocol::Dialect::Attendance,
                )
                .replace('\t', " ");
                println!("{:>4}  {state:<22}  {text}", command.id);
            }
            ledger.drain().await?;
        }
        DeviceCommand::Retry(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let sn = bound_sn(&ledger, &tenant, &args.common.sn).await?;
            let id =
                gateway::commands::retry(&ledger, &tenant, &sn, args.id, actor, Utc::now()).await?;
            println!("queued command {id} for {sn}, retrying command {}", args.id);
            ledger.drain().await?;
        }
        DeviceCommand::Scope(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let sn = admin::valid_sn(&args.common.sn).map_err(admin::AdminError::from)?;
            let scope = gateway::roster::Scope {
                people: ids(&args.people),
                departments: ids(&args.departments),
                include_sub_departments: args.include_sub_departments,
                excluded_people: ids(&args.exclude_people),
                excluded_departments: ids(&args.exclude_departments),
            };
            let changes =
                gateway::roster::set_scope(&ledger, &tenant, &sn, &scope, actor, Utc::now())
                    .await?;
            println!("scope of {sn} set");
            print_changes(changes.iter().map(|c| (&sn, c)));
            ledger.drain().await?;
        }
        DeviceCommand::Reupload(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let sn = bound_sn(&ledger, &tenant, &args.common.sn).await?;
            if args.to < args.from {
                return Err(ledger::LedgerError::Rejected(format!(
                    "--to {} is before --from {}",
                    args.to, args.from
                ))
                .into());
            }
            let (start, end) = (
                args.from.and_time(chrono::NaiveTime::MIN),
                args.to.and_hms_opt(23, 59, 59).unwrap_or_default(),
            );
            let now = Utc::now();
            let request = schemas::events::ReuploadRequested {
                request_id: schemas::ids::RequestId::from(
                    format!("reupload-{}-{}", sn, now.timestamp_millis()).as_str(),
                ),
                sns: vec![sn.clone()],
                start,
                end,
                badge_numbers: vec![],
            };
            ledger
                .append(
                    &schemas::Envelope::new(tenant.clone(), actor.clone(), request, now),
                    ledger::Expected::Any,
                )
                .await?;
            let command = schemas::events::DeviceCommand::QueryAttendance {
                start,
                end,
                badge_numbers: vec![],
            };
            let id =
                gateway::commands::queue(&ledger, &tenant, &sn, command, None, actor, now).await?;
            println!(
                "queued re-upload of {} to {} as command {id} for {sn}",
                args.from, args.to
            );
            ledger.drain().await?;
        }
    }
    Ok(())
}

/// The SN, if it is bound to `tenant`; refused otherwise.
async fn bound_sn(
    ledger: &Ledger,
    tenant: &TenantId,
    sn: &str,
) -> anyhow::Result<schemas::ids::DeviceSn> {
    let sn = admin::valid_sn(sn).map_err(admin::AdminError::from)?;
    match admin::lookup(ledger, &sn).await? {
        Some(binding) if &binding.tenant == tenant => Ok(sn),
        _ => Err(admin::AdminError::from(admin::Refusal::NotBound(sn)).into()),
    }
}

async fn open(common: &Common) -> anyhow::Result<(Ledger, TenantId, Actor)> {
    let tenant = TenantId::parse(&common.tenant)
        .map_err(|e| ledger::LedgerError::Rejected(e.to_string()))?;
    let ledger = Ledger::connect(&common.nats.nats, common.nats.ledger.config()).await?;
    ledger.provision().await?;
    let actor = Actor::User {
        user_id: UserId::from(common.user.as_str()),
    };
    Ok((ledger, tenant, actor))
}

async fn person(command: PersonCommand) -> anyhow::Result<()> {
    use gateway::people::{self, Hire, Update};
    use schemas::ids::{DepartmentId, PersonId};

    let common = match &command {
        PersonCommand::Hire(a) => &a.common,
        PersonCommand::Update(a) => &a.common,
        PersonCommand::Remove(a) => &a.common,
    };
    let tenant = TenantId::parse(&common.tenant)
        .map_err(|e| ledger::LedgerError::Rejected(e.to_string()))?;
    let ledger = Ledger::connect(&common.nats.nats, common.nats.ledger.config()).await?;
    ledger.provision().await?;
    let actor = Actor::User {
        user_id: UserId::from(common.user.as_str()),
    };
    let id = PersonId::from(common.id.as_str());
    let now = Utc::now();
    let roster = people::load(&ledger, &tenant).await?;
    let (events, said): (Vec<schemas::Event>, String) = match &command {
        PersonCommand::Hire(a) => {
            let hire = Hire {
                person_id: id.clone(),
                name: a.name.clone(),
                department: DepartmentId::from(a.department.as_str()),
                badge: a.badge.clone(),
                hired_on: a.hired_on.unwrap_or_else(|| now.date_naive()),
            };
            (
                vec![people::decide_hire(&roster, &hire)?.into()],
                format!("hired {id}"),
            )
        }
        PersonCommand::Update(a) => {
            let update = Update {
                name: a.name.clone(),
                department: a.department.as_deref().map(DepartmentId::from),
                badge: a.badge.clone(),
            };
            (
                people::decide_update(&roster, &id, &update)?,
                format!("updated {id}"),
            )
        }
        PersonCommand::Remove(a) => {
            let left = people::decide_remove(
                &roster,
                &id,
                a.on.unwrap_or_else(|| now.date_naive()),
                a.reason.clone(),
            )?;
            (vec![left.into()], format!("{id} left"))
        }
    };
    let envelopes: Vec<_> = events
        .into_iter()
        .map(|e| schemas::Envelope::new(tenant.clone(), actor.clone(), e, now))
        .collect();
    ledger.append_many(&envelopes).await?;
    println!("{said}");
    let changes = gateway::roster::sync(&ledger, &tenant, actor, now).await?;
    print_changes(changes.iter().map(|(sn, c)| (sn, c)));
    ledger.drain().await?;
    Ok(())
}

/// Ids from a comma-separated argument, trimmed.
fn ids<T: for<'a> From<&'a str>>(values: &[String]) -> Vec<T> {
    values.iter().map(|v| T::from(v.trim())).collect()
}

/// One line per roster command queued.
fn print_changes<'a>(
    changes: impl Iterator<Item = (&'a schemas::ids::DeviceSn, &'a gateway::roster::Change)>,
) {
    use gateway::roster::Change;
    for (sn, change) in changes {
        match change {
            Change::Push {
                person,
                badge,
                name,
            } => println!("  {sn}: queued DATA UPDATE USERINFO PIN={badge} ({person}, {name})"),
            Change::Remove { person, badge } => {
                println!("  {sn}: queued DATA DELETE USERINFO PIN={badge} ({person})");
            }
        }
    }
}
