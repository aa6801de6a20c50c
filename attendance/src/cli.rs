//! Command-line surface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ledger::LedgerConfig;

#[derive(Debug, Parser)]
#[command(
    name = "attendance",
    version,
    about = "Ledgerclock: an event-sourced attendance ledger on NATS JetStream",
    long_about = None,
)]
pub struct Cli {
    /// More logging (-v debug, -vv trace). LEDGERCLOCK_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the system: an embedded NATS server (unless --nats), the streams, demo data.
    Up(crate::up::UpArgs),
    /// Run the device gateway alone (ZKTeco PUSH / iclock over HTTP), for scale-out.
    Gateway(crate::serve::GatewayArgs),
    /// Administration: devices, people, departments, rules, shifts and schedules, requests
    /// and calibrations, payroll periods.
    #[command(subcommand)]
    Admin(crate::admin::AdminCommand),
    /// Show the event streams and how many events each holds.
    Streams(NatsArgs),
    /// Append events from a JSON-lines file, or print a tenant's events.
    #[command(subcommand)]
    Events(crate::events::EventsCommand),
    /// The projection workers alone (for scale-out): fold the streams into views in
    /// sled and answer queries over NATS; `rebuild` rebuilds views from sequence 0.
    Projections(crate::projections_cmd::ProjectionsArgs),
    /// The command service alone (for scale-out): administrative commands over NATS
    /// request-reply on `lc.cmd.v1.<tenant>.<family>`; `attendance up` includes it.
    Commands(NatsArgs),
    /// Reports from the running query service: daily, monthly, raw, devices, people,
    /// explain, as-of, diff; as a table, JSON, CSV or XLSX.
    Report(crate::report::ReportArgs),
    /// Rebuild and print reports from events: daily or raw, from a JSON-lines file
    /// (no server needed) or a tenant's stream. Auditors use it to explain any report.
    Replay(crate::replay::ReplayArgs),
    /// Measure throughput against a raw JetStream baseline from the same run.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// A simulated attendance machine against a running gateway: punches, goes offline,
    /// catches up, re-sends its history, polls for commands.
    Simulate(crate::simulate::SimulateArgs),
}

// The ledger's NATS server and stream settings, shared by every command that talks to
// it. (A `///` here would become the help text of the commands that flatten it.)
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server or cluster (comma-separated seeds).
    #[arg(
        long,
        env = "LEDGERCLOCK_NATS",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats: String,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

// Stream settings; they must match across every process of a deployment.
#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    /// Partition streams (fixed for the life of a deployment).
    #[arg(long, env = "LEDGERCLOCK_PARTITIONS", default_value_t = 8)]
    pub partitions: u16,
    /// Stream replicas: 1 on a single server, 3 on a 3-node cluster.
    #[arg(long, env = "LEDGERCLOCK_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
}

impl LedgerArgs {
    pub fn config(&self) -> LedgerConfig {
        LedgerConfig {
            partitions: self.partitions,
            replicas: self.replicas,
            ..LedgerConfig::default()
        }
    }
}

pub fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => crate::up::run(args).await,
        Command::Gateway(args) => crate::serve::gateway(args).await,
        Command::Admin(command) => crate::admin::run(command).await,
        Command::Streams(args) => streams(args).await,
        Command::Events(command) => crate::events::run(command).await,
        Command::Replay(args) => crate::replay::run(args).await,
        Command::Projections(args) => crate::projections_cmd::run(args).await,
        Command::Commands(args) => commands_service(args).await,
        Command::Report(args) => crate::report::run(args).await,
        Command::Bench(command) => crate::bench::run(command).await,
        Command::Simulate(args) => crate::simulate::run(args).await,
    }
}

async fn commands_service(args: NatsArgs) -> anyhow::Result<()> {
    let shutdown = crate::up::shutdown_signal();
    let ledger = ledger::Ledger::connect(&args.nats, args.ledger.config()).await?;
    ledger.provision().await?;
    let (service, mut tasks) =
        commands::service::start(ledger.clone(), commands::service::system_clock()).await?;
    // Daily at 00:00 in each device's zone, on one instance of all that run.
    tasks.push(tokio::spawn(commands::jobs::run_scopes(
        ledger.clone(),
        commands::service::system_clock(),
        commands::jobs::JobOptions::new(projections::worker::default_instance()),
        std::future::pending(),
    )));
    println!(
        "command service on {}: {}.<tenant>.<family> (families: {}). Press Ctrl-C to stop.",
        args.nats,
        commands::service::COMMAND_PREFIX,
        commands::service::FAMILIES.join(", ")
    );
    shutdown.await;
    for t in tasks {
        t.abort();
    }
    let _ = service.stop().await;
    ledger.drain().await?;
    Ok(())
}

async fn streams(args: NatsArgs) -> anyhow::Result<()> {
    let ledger = ledger::Ledger::connect(&args.nats, args.ledger.config()).await?;
    crate::up::print_streams(&ledger).await?;
    ledger.drain().await?;
    Ok(())
}
