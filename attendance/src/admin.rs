//! `attendance admin`: administrative commands, validated and appended as events; a
//! refusal says why and appends nothing (exit 65).

use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand};
use commands::devices::{self, Bind, DeviceAct};
use gateway::admin;
use ledger::Ledger;
use schemas::Actor;
use schemas::ids::{TenantId, UserId, ZoneName};

use crate::cli::NatsArgs;
use crate::command_cli::Caller;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Devices: bind, rename, unbind, scope, privilege, commands, re-upload, USB import.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// People: hire, update, remove (badge numbers: 1-9 digits, unique in the tenant).
    #[command(subcommand)]
    Person(PersonCommand),
    /// Departments: define, rename, move under another.
    #[command(subcommand)]
    Department(DepartmentArgs),
    /// An approved leave (请假) over a span of local time.
    Leave(Box<crate::requests_cmd::LeaveArgs>),
    /// An approved business trip (出差).
    Trip(Box<crate::requests_cmd::TripArgs>),
    /// An approved outing (外出).
    Outing(Box<crate::requests_cmd::TripArgs>),
    /// Approved overtime (加班), paid or as time off.
    Overtime(Box<crate::requests_cmd::OvertimeArgs>),
    /// Make-up punches (补卡): request, approve, reject.
    #[command(subcommand)]
    Makeup(Box<crate::requests_cmd::MakeUpCommand>),
    /// Calibrate a day or a slot (校准) with a reason; an earlier calibration of the
    /// same day and slot is replaced, not erased.
    Calibrate(Box<crate::requests_cmd::CalibrateArgs>),
    /// Shifts (班次) for shift rules.
    #[command(subcommand)]
    Shift(Box<crate::schedule_cmd::ShiftCommand>),
    /// Schedules (排班): by date, or a whole sheet imported or exported (XLSX, CSV).
    #[command(subcommand)]
    Schedule(Box<crate::schedule_cmd::ScheduleArgs>),
    /// Any command in its JSON form (`--family rules --file cmd.json`), exactly as the
    /// command service on NATS takes it.
    Send(Box<crate::rules_cmd::SendArgs>),
    /// Attendance rules: create, change, copy, who follows them, show.
    #[command(subcommand)]
    Rule(Box<crate::rules_cmd::RuleCommandArgs>),
    /// Payroll periods (月结): close a month once it has ended.
    #[command(subcommand)]
    Period(PeriodArgs),
}

#[derive(Debug, Subcommand)]
pub enum PeriodArgs {
    /// Close a month for payroll. Its days keep the verdicts they have now: anything
    /// recorded later that changes one (a late upload, a calibration, a rule fixed
    /// after the fact) shows beside the day as a pending adjustment, and the next month
    /// to close carries it. Months close in order, once each, from 12:00 UTC on the 2nd
    /// of the next month; a closed month is not reopened.
    Close(PeriodCloseArgs),
}

#[derive(Debug, Args)]
pub struct PeriodCloseArgs {
    #[command(flatten)]
    caller: Caller,
    /// The month, YYYY-MM.
    #[arg(long)]
    month: String,
    /// Why, or the payroll run it is for.
    #[arg(long)]
    note: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Hire a person into a department, with the badge number devices know them by.
    Hire(HireArgs),
    /// Change a person's name, department (a transfer from today) or badge number;
    /// devices follow.
    Update(UpdateArgs),
    /// Move a person to another department from a date on; earlier days keep the old.
    Transfer(TransferArgs),
    /// Hire everyone of a sheet (.xlsx or .csv): 账号, 姓名, 部门, 工号 (optional),
    /// 入职日期. Every bad cell is reported by row and column; nothing is applied unless
    /// the whole sheet is valid.
    Import(SheetArgs),
    /// A former employee comes back under a new account (the old one keeps its
    /// history and stops the day before); name, department and badge default to the
    /// old account's.
    Rejoin(RejoinArgs),
    /// The person leaves; their history stays.
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct PersonCommon {
    #[command(flatten)]
    caller: Caller,
    /// The person's id in the tenant (e.g. the HR system's).
    #[arg(long)]
    id: String,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    #[command(flatten)]
    common: PersonCommon,
    /// The department they move to.
    #[arg(long)]
    department: String,
    /// First day in the new department (YYYY-MM-DD). Default: today.
    #[arg(long)]
    from: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct RejoinArgs {
    #[command(flatten)]
    common: PersonCommon,
    /// The old account's id.
    #[arg(long)]
    previous: String,
    /// First day back (YYYY-MM-DD). Default: today.
    #[arg(long)]
    on: Option<NaiveDate>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    department: Option<String>,
    #[arg(long)]
    badge: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DepartmentArgs {
    /// A new department, at the top or under `--parent`.
    Define(DefineDepartmentArgs),
    Rename(RenameDepartmentArgs),
    /// Define every department of a sheet (.xlsx or .csv): 部门ID, 部门名称, 上级部门
    /// (an existing department or one above in the sheet). All or nothing.
    Import(SheetArgs),
    /// Under another department (`--parent`), or to the top (no `--parent`). People,
    /// rules and device scopes that name it follow it.
    Move(MoveDepartmentArgs),
}

#[derive(Debug, Args)]
pub struct SheetArgs {
    #[command(flatten)]
    caller: Caller,
    #[arg(long)]
    file: std::path::PathBuf,
}

/// Executes an import read from `a.file`; devices follow.
async fn import<C: commands::Command>(
    a: &SheetArgs,
    command: impl FnOnce(commands::schedules::Sheet) -> C,
) -> anyhow::Result<()> {
    let sheet = crate::schedule_cmd::read_sheet(&a.file)?;
    let done = a.caller.execute(command(sheet)).await?;
    sync_rosters(done).await
}

/// Devices follow a change of people or departments.
async fn sync_rosters(done: crate::command_cli::Executed) -> anyhow::Result<()> {
    let changes = devices::sync(
        &done.ledger,
        &done.tenant,
        &done.actor,
        &done.command_id,
        None,
        done.now,
    )
    .await?;
    print_changes(changes.changes.iter().map(|(sn, c)| (sn, c)));
    done.ledger.drain().await?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct DepartmentCommon {
    #[command(flatten)]
    caller: Caller,
    /// The department's id (letters, digits, '-', '_').
    #[arg(long)]
    id: String,
}

#[derive(Debug, Args)]
pub struct DefineDepartmentArgs {
    #[command(flatten)]
    common: DepartmentCommon,
    #[arg(long)]
    name: String,
    #[arg(long)]
    parent: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenameDepartmentArgs {
    #[command(flatten)]
    common: DepartmentCommon,
    #[arg(long)]
    name: String,
}

#[derive(Debug, Args)]
pub struct MoveDepartmentArgs {
    #[command(flatten)]
    common: DepartmentCommon,
    #[arg(long)]
    parent: Option<String>,
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
    /// Import a device's own export from its USB stick (`<SN>_attlog.dat`), for a device
    /// that was offline: records count once whether uploaded, imported, or both, so
    /// importing a file again adds nothing; bad lines are rejected alone and counted.
    Import(ImportArgs),
    /// What a person may do on the device: user (punch only), registrar (enrol and
    /// delete people) or admin (everything, the device's menu included). The person must
    /// be in the device's scope; the device is sent the change, and later pushes of the
    /// person keep it.
    Privilege(PrivilegeArgs),
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
    /// What becomes of someone who leaves the scope (or the company): deleted from the
    /// device, or kept there disabled (they can no longer punch on it; coming back into
    /// the scope enables them).
    #[arg(long, value_enum, default_value = "delete")]
    on_leaving_scope: OnLeaving,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OnLeaving {
    Delete,
    Disable,
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
    /// Only these people's records (person ids, comma-separated), recorded on the
    /// request. Firmware queries its log by time only, so the device sends the whole
    /// range; what others punched counts once, as always.
    #[arg(long, value_delimiter = ',')]
    people: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PrivilegeArgs {
    #[command(flatten)]
    common: Common,
    /// The person's id.
    #[arg(long)]
    person: String,
    #[arg(long, value_enum)]
    privilege: Privilege,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Privilege {
    User,
    Registrar,
    Admin,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    common: Common,
    /// The export: ATTLOG lines as the device writes them (badge number, local time,
    /// state, verify mode, ... separated by TABs).
    #[arg(long)]
    file: std::path::PathBuf,
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
    /// This command's id: run again with the same id and it is stored once. Default: a
    /// fresh one.
    #[arg(long)]
    command_id: Option<String>,
}

impl Common {
    fn request<C>(&self, tenant: TenantId, actor: Actor, command: C) -> commands::Request<C> {
        commands::Request {
            tenant,
            actor,
            command_id: self
                .command_id
                .as_deref()
                .map(schemas::ids::CommandId::from)
                .unwrap_or_else(commands::mint_command_id),
            command,
        }
    }
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
        AdminCommand::Rule(command) => return crate::rules_cmd::run(*command).await,
        AdminCommand::Department(command) => return department(command).await,
        AdminCommand::Leave(a) => return crate::requests_cmd::leave(*a).await,
        AdminCommand::Trip(a) => return crate::requests_cmd::trip(*a, false).await,
        AdminCommand::Outing(a) => return crate::requests_cmd::trip(*a, true).await,
        AdminCommand::Overtime(a) => return crate::requests_cmd::overtime(*a).await,
        AdminCommand::Makeup(c) => return crate::requests_cmd::make_up(*c).await,
        AdminCommand::Calibrate(a) => return crate::requests_cmd::calibrate(*a).await,
        AdminCommand::Shift(c) => return crate::schedule_cmd::shift(*c).await,
        AdminCommand::Send(a) => return crate::rules_cmd::send_file(*a).await,
        AdminCommand::Schedule(c) => return crate::schedule_cmd::schedule(*c).await,
        AdminCommand::Period(PeriodArgs::Close(a)) => {
            let month = schemas::ids::Month::parse(&a.month)
                .map_err(|e| crate::rules_cmd::BadArgument(format!("--month: {e}")))?;
            return a
                .caller
                .send(commands::periods::PeriodCommand::Close {
                    month,
                    note: a.note,
                })
                .await;
        }
    };
    match command {
        DeviceCommand::Bind(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let bind = Bind {
                sn: valid_sn(&args.common.sn)?,
                name: args.name,
                model: args.model,
                zone: ZoneName::parse(&args.zone)?,
                records_from: args.records_from,
            };
            let request = args.common.request(tenant, actor, bind);
            let outcome = devices::bind(&ledger, &request, Utc::now()).await?;
            let bind = &request.command;
            match outcome {
                commands::Outcome::AlreadyDone(_) => println!(
                    "already done (command {}): {} is bound to {}",
                    request.command_id, bind.sn, request.tenant
                ),
                commands::Outcome::Applied(_) => {
                    println!("bound {} to {} ({})", bind.sn, request.tenant, bind.zone)
                }
            }
            ledger.drain().await?;
        }
        DeviceCommand::Rename(args) => {
            let sn = valid_sn(&args.common.sn)?;
            let name = args.name.trim().to_owned();
            device_act(
                &args.common,
                DeviceAct::Rename {
                    sn: sn.clone(),
                    name: name.clone(),
                },
            )
            .await?;
            println!("renamed {sn} to {name:?}");
        }
        DeviceCommand::Unbind(args) => {
            let (ledger, tenant, actor) = open(&args.common).await?;
            let sn = valid_sn(&args.common.sn)?;
            let request = args.common.request(tenant.clone(), actor, sn.clone());
            devices::unbind(&ledger, &request, Utc::now()).await?;
            println!("unbound {sn} from {tenant}; CLEAR DATA queued for the device");
            ledger.drain().await?;
        }
        DeviceCommand::Command(args) => {
            let command = match args.command {
                SimpleCommand::Info => schemas::events::DeviceCommand::Info,
                SimpleCommand::Check => schemas::events::DeviceCommand::Check,
                SimpleCommand::Reboot => schemas::events::DeviceCommand::Reboot,
                SimpleCommand::Users => {
                    schemas::events::DeviceCommand::QueryUsers { badge_number: None }
                }
            };
            let sn = valid_sn(&args.common.sn)?;
            let act = DeviceAct::Send {
                sn: sn.clone(),
                command,
                expires_at: None,
            };
            let id = queue_act(&args.common, act).await?;
            println!("queued command {id} for {sn}");
        }
        DeviceCommand::Commands(args) => {
            let (ledger, tenant, _) = open(&args.common).await?;
            let sn = valid_sn(&args.common.sn)?;
            let state = load_devices(&ledger, &tenant).await?;
            let empty = devices::Queue::default();
            let queue = state.queues.get(&sn).unwrap_or(&empty);
            println!("{:>4}  {:<22}  command", "id", "state");
            for command in queue.commands.commands.values() {
                use devices::queue::CommandState;
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
            let sn = valid_sn(&args.common.sn)?;
            let act = DeviceAct::Retry {
                sn: sn.clone(),
                command_id: args.id,
            };
            let id = queue_act(&args.common, act).await?;
            println!("queued command {id} for {sn}, retrying command {}", args.id);
        }
        DeviceCommand::Scope(args) => {
            let sn = valid_sn(&args.common.sn)?;
            let scope = devices::Scope {
                people: ids(&args.people),
                departments: ids(&args.departments),
                include_sub_departments: args.include_sub_departments,
                excluded_people: ids(&args.exclude_people),
                excluded_departments: ids(&args.exclude_departments),
                on_leaving_scope: match args.on_leaving_scope {
                    OnLeaving::Delete => schemas::events::LeavingScope::Delete,
                    OnLeaving::Disable => schemas::events::LeavingScope::Disable,
                },
            };
            let done = device_act(
                &args.common,
                DeviceAct::Scope {
                    sn: sn.clone(),
                    scope,
                },
            )
            .await?;
            println!("scope of {sn} set");
            print_changes(done.changes.iter().map(|(sn, c)| (sn, c)));
        }
        DeviceCommand::Import(args) => import_export(args).await?,
        DeviceCommand::Privilege(args) => {
            let sn = valid_sn(&args.common.sn)?;
            let privilege = match args.privilege {
                Privilege::User => schemas::events::DevicePrivilege::User,
                Privilege::Registrar => schemas::events::DevicePrivilege::Registrar,
                Privilege::Admin => schemas::events::DevicePrivilege::Admin,
            };
            let person = schemas::ids::PersonId::from(args.person.trim());
            let act = DeviceAct::Privilege {
                sn: sn.clone(),
                person_id: person.clone(),
                privilege,
            };
            let done = device_act(&args.common, act).await?;
            println!("{person} is {privilege:?} on {sn}");
            print_changes(done.changes.iter().map(|(sn, c)| (sn, c)));
        }
        DeviceCommand::Reupload(args) => {
            let sn = valid_sn(&args.common.sn)?;
            let people: Vec<schemas::ids::PersonId> = ids(&args.people);
            let act = DeviceAct::Reupload {
                sn: sn.clone(),
                from: args.from,
                to: args.to,
                people: people.clone(),
            };
            let id = queue_act(&args.common, act).await?;
            let whose = if people.is_empty() {
                String::new()
            } else {
                let list: Vec<&str> = people.iter().map(|p| p.as_str()).collect();
                format!(" for {}", list.join(", "))
            };
            println!(
                "queued re-upload of {} to {}{whose} as command {id} for {sn}",
                args.from, args.to
            );
        }
    }
    Ok(())
}

fn valid_sn(sn: &str) -> anyhow::Result<schemas::ids::DeviceSn> {
    devices::valid_sn(sn.trim()).map_err(|r| commands::CommandError::Refused(r).into())
}

/// Executes a device act (and the roster rounds after it), says if it was done before.
async fn device_act(common: &Common, act: DeviceAct) -> anyhow::Result<devices::Executed> {
    let (ledger, tenant, actor) = open(common).await?;
    let request = common.request(tenant, actor, act);
    let done = devices::execute(&ledger, &request, Utc::now()).await?;
    if let commands::Outcome::AlreadyDone(_) = done.outcome {
        println!(
            "already done (command {}): nothing new stored",
            request.command_id
        );
    }
    ledger.drain().await?;
    Ok(done)
}

/// Executes a device act that queues one command; the id it took on the device.
async fn queue_act(common: &Common, act: DeviceAct) -> anyhow::Result<u64> {
    let (ledger, tenant, actor) = open(common).await?;
    let request = common.request(tenant, actor, act);
    let (id, _) = devices::execute_queueing(&ledger, &request, Utc::now()).await?;
    ledger.drain().await?;
    Ok(id)
}

/// The tenant's devices as the write side folds them (direct gets: nothing is left on
/// the server).
async fn load_devices(ledger: &Ledger, tenant: &TenantId) -> anyhow::Result<devices::Devices> {
    use commands::State;
    use futures::StreamExt;
    let p = ledger.partitions();
    let filters = [
        schemas::AggregateKind::Department,
        schemas::AggregateKind::Person,
        schemas::AggregateKind::Device,
        schemas::AggregateKind::DeviceCommands,
    ]
    .map(|kind| p.kind_filter(tenant, kind));
    let mut events = ledger
        .read(tenant, ledger::ReadFrom::any_of(filters.into()))
        .await?;
    let mut state = devices::Devices::default();
    while let Some(r) = events.next().await {
        let r = r?;
        state.apply(r.sequence, &r.envelope);
    }
    Ok(state)
}

/// Imports a device's USB export in pieces, each stored before the next is read.
async fn import_export(args: ImportArgs) -> anyhow::Result<()> {
    use futures::StreamExt;
    let (ledger, tenant, actor) = open(&args.common).await?;
    let sn = valid_sn(&args.common.sn)?;
    let binding = match admin::lookup(&ledger, &sn).await? {
        Some(binding) if binding.tenant == tenant => binding,
        _ => {
            return Err(
                commands::CommandError::Refused(commands::Rejection::Unknown(format!(
                    "device {sn} is not bound to this tenant"
                )))
                .into(),
            );
        }
    };
    let bytes = std::fs::read(&args.file).map_err(|e| {
        ledger::LedgerError::Rejected(format!("--file {}: {e}", args.file.display()))
    })?;
    // Exports are ASCII; a stray byte spoils its line only, which is then rejected.
    let text = String::from_utf8_lossy(&bytes);
    // What the ledger holds of this device already (direct gets: nothing is left on
    // the server).
    let subject = ledger.partitions().event_subject(
        &tenant,
        &schemas::events::Aggregate {
            kind: schemas::events::AggregateKind::Punches,
            id: sn.as_str().to_owned(),
        },
    );
    let mut held = gateway::ingest::Held::default();
    let mut stored = ledger
        .read(&tenant, ledger::ReadFrom::only(subject))
        .await?;
    while let Some(recorded) = stored.next().await {
        held.of(&recorded?.envelope.event);
    }
    let now = Utc::now();
    let mut found = gateway::ingest::Imported::default();
    let lines: Vec<&str> = gateway::protocol::attlog::lines(&text).collect();
    for piece in lines.chunks(gateway::ingest::LINES_PER_PIECE) {
        let body = piece.join("\n");
        let (events, f) =
            gateway::ingest::import_events(&binding, &body, &mut held, actor.clone(), now);
        ledger.append_many(&events).await?;
        found += f;
    }
    let rejected: usize = found.rejected.values().sum();
    println!(
        "imported {} punches from {} for {sn} ({} already stored; {rejected} lines rejected{}, {} of them stored before)",
        found.punches,
        args.file.display(),
        found.held,
        if found.rejected.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                found
                    .rejected
                    .iter()
                    .map(|(reason, n)| format!("{n} {reason}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        found.rejected_held
    );
    ledger.drain().await?;
    Ok(())
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
    use commands::organisation::PersonCommand as Cmd;
    use schemas::ids::{DepartmentId, PersonId};

    if let PersonCommand::Import(a) = &command {
        return import(a, |sheet| Cmd::Import { sheet }).await;
    }
    let common = match &command {
        PersonCommand::Hire(a) => &a.common,
        PersonCommand::Update(a) => &a.common,
        PersonCommand::Transfer(a) => &a.common,
        PersonCommand::Remove(a) => &a.common,
        PersonCommand::Rejoin(a) => &a.common,
        PersonCommand::Import(_) => unreachable!("imported above"),
    };
    let caller = &common.caller;
    let tenant = caller.tenant_id()?;
    let ledger = caller.connect().await?;
    let actor = caller.actor();
    let id = PersonId::from(common.id.as_str());
    let now = Utc::now();
    let today = now.date_naive();
    let (cmds, said): (Vec<Cmd>, String) = match &command {
        PersonCommand::Hire(a) => (
            vec![Cmd::Hire {
                person_id: id.clone(),
                name: a.name.clone(),
                department_id: DepartmentId::from(a.department.as_str()),
                badge: a.badge.clone(),
                hired_on: a.hired_on.unwrap_or(today),
            }],
            format!("hired {id}"),
        ),
        PersonCommand::Update(a) => {
            let mut cmds = Vec::new();
            if a.name.is_some() || a.badge.is_some() {
                cmds.push(Cmd::Update {
                    person_id: id.clone(),
                    name: a.name.clone(),
                    badge: a.badge.clone(),
                });
            }
            if let Some(d) = &a.department {
                cmds.push(Cmd::Transfer {
                    person_id: id.clone(),
                    department_id: DepartmentId::from(d.as_str()),
                    effective_from: today,
                });
            }
            if cmds.is_empty() {
                return Err(
                    commands::CommandError::Refused(commands::Rejection::Invalid(
                        "nothing to change: give --name, --badge or --department".into(),
                    ))
                    .into(),
                );
            }
            (cmds, format!("updated {id}"))
        }
        PersonCommand::Transfer(a) => (
            vec![Cmd::Transfer {
                person_id: id.clone(),
                department_id: DepartmentId::from(a.department.as_str()),
                effective_from: a.from.unwrap_or(today),
            }],
            format!("{id} moves to {}", a.department),
        ),
        PersonCommand::Remove(a) => (
            vec![Cmd::Leave {
                person_id: id.clone(),
                left_on: a.on.unwrap_or(today),
                reason: a.reason.clone(),
            }],
            format!("{id} left"),
        ),
        PersonCommand::Rejoin(a) => (
            vec![Cmd::Rejoin {
                person_id: id.clone(),
                previous_person_id: PersonId::from(a.previous.as_str()),
                rejoined_on: a.on.unwrap_or(today),
                name: a.name.clone(),
                department_id: a.department.as_deref().map(DepartmentId::from),
                badge: a.badge.clone(),
            }],
            format!("{id} rejoined (formerly {})", a.previous),
        ),
        PersonCommand::Import(_) => unreachable!("imported above"),
    };
    let base = caller.command_id(None);
    let many = cmds.len() > 1;
    for (i, cmd) in cmds.into_iter().enumerate() {
        let command_id = if many {
            schemas::ids::CommandId::from(format!("{base}-{i}").as_str())
        } else {
            base.clone()
        };
        let outcome = commands::execute(
            &ledger,
            &commands::Request {
                tenant: tenant.clone(),
                actor: actor.clone(),
                command_id,
                command: cmd,
            },
            now,
        )
        .await?;
        if let commands::Outcome::AlreadyDone(_) = outcome {
            println!("already done (command {base}): nothing new stored");
        }
    }
    println!("{said}");
    let changes = devices::sync(&ledger, &tenant, &actor, &base, None, now).await?;
    print_changes(changes.changes.iter().map(|(sn, c)| (sn, c)));
    ledger.drain().await?;
    Ok(())
}

async fn department(command: DepartmentArgs) -> anyhow::Result<()> {
    use commands::organisation::DepartmentCommand as Cmd;
    use schemas::ids::DepartmentId;

    if let DepartmentArgs::Import(a) = &command {
        return import(a, |sheet| Cmd::Import { sheet }).await;
    }
    let (common, cmd, said) = match &command {
        DepartmentArgs::Define(a) => (
            &a.common,
            Cmd::Define {
                department_id: DepartmentId::from(a.common.id.as_str()),
                name: a.name.clone(),
                parent: a.parent.as_deref().map(DepartmentId::from),
            },
            format!("department {} defined", a.common.id),
        ),
        DepartmentArgs::Rename(a) => (
            &a.common,
            Cmd::Rename {
                department_id: DepartmentId::from(a.common.id.as_str()),
                name: a.name.clone(),
            },
            format!("department {} renamed", a.common.id),
        ),
        DepartmentArgs::Move(a) => (
            &a.common,
            Cmd::Move {
                department_id: DepartmentId::from(a.common.id.as_str()),
                parent: a.parent.as_deref().map(DepartmentId::from),
            },
            format!(
                "department {} moved under {}",
                a.common.id,
                a.parent.as_deref().unwrap_or("the top")
            ),
        ),
        DepartmentArgs::Import(_) => unreachable!("imported above"),
    };
    let done = common.caller.execute(cmd).await?;
    println!("{said}");
    // A department moved in or out of a device's scope changes who the device holds.
    sync_rosters(done).await
}

/// Ids from a comma-separated argument, trimmed.
fn ids<T: for<'a> From<&'a str>>(values: &[String]) -> Vec<T> {
    values.iter().map(|v| T::from(v.trim())).collect()
}

/// One line per roster command queued.
fn print_changes<'a>(
    changes: impl Iterator<Item = (&'a schemas::ids::DeviceSn, &'a devices::Change)>,
) {
    use devices::Change;
    for (sn, change) in changes {
        match change {
            Change::Push {
                person,
                badge,
                name,
                privilege,
            } => println!(
                "  {sn}: queued DATA UPDATE USERINFO PIN={badge} ({person}, {name}, {privilege:?})"
            ),
            Change::Remove { person, badge } => {
                println!("  {sn}: queued DATA DELETE USERINFO PIN={badge} ({person})");
            }
            Change::Disable { person, badge, .. } => {
                println!("  {sn}: queued DATA UPDATE USERINFO PIN={badge} disabled ({person})");
            }
        }
    }
}
