//! `attendance projections`: the projection workers alone (for scale-out), and
//! `attendance projections rebuild` (from sequence 0, with progress).

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use ledger::Ledger;
use projections::worker::{self, WorkerOptions};
use schemas::ids::TenantId;

use crate::cli::NatsArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProjectionsArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    command: Option<ProjectionsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild views from sequence 0 (every partition, or one tenant's), with progress.
    /// Stop the worker that uses the store first; a running worker rebuilds by itself
    /// when its store is deleted, corrupted or of another version.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Where the projection store lives. Disposable: deleting it loses nothing (the
    /// views are rebuilt from the stream).
    #[arg(
        long = "store",
        env = "LEDGERCLOCK_STORE",
        default_value = "data/projections"
    )]
    pub dir: PathBuf,
    /// sled's page cache, in MiB (its default alone would be 1 GiB).
    #[arg(long, env = "LEDGERCLOCK_STORE_CACHE_MB", default_value_t = 128)]
    pub cache_mb: u64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// This worker's name, unique among live workers (default: host and pid). A worker
    /// started again under its name takes its own leases back at once.
    #[arg(long, env = "LEDGERCLOCK_INSTANCE")]
    instance: Option<String>,
    #[command(flatten)]
    clock: ClockArgs,
}

// The clock days are judged by: the system's, or (for tests and demonstrations of time
// passing) a given instant from which it runs on.
#[derive(Debug, Clone, Args)]
pub struct ClockArgs {
    #[arg(long, hide = true, env = "LEDGERCLOCK_CLOCK_AT")]
    clock_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ClockArgs {
    pub fn clock(&self) -> worker::Clock {
        match self.clock_at {
            None => worker::Clock::system(),
            Some(at) => {
                let started = Instant::now();
                worker::Clock::from_fn(move || {
                    at + chrono::Duration::from_std(started.elapsed()).unwrap_or_default()
                })
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Only this tenant's views (the others are left as they are).
    #[arg(long)]
    tenant: Option<String>,
    #[command(flatten)]
    clock: ClockArgs,
}

pub fn options(store: &StoreArgs, instance: Option<String>) -> WorkerOptions {
    let mut o = WorkerOptions::new(store.dir.clone());
    o.cache_bytes = store.cache_mb << 20;
    if let Some(i) = instance {
        o.instance = i;
    }
    o
}

pub async fn run(args: ProjectionsArgs) -> anyhow::Result<()> {
    match args.command {
        Some(ProjectionsCommand::Rebuild(r)) => rebuild(r).await,
        None => {
            let a = args.run;
            let ledger = Ledger::connect(&a.nats.nats, a.nats.ledger.config()).await?;
            let mut options = options(&a.store, a.instance);
            options.clock = a.clock.clock();
            println!(
                "projection worker {} on {} (store {}); answering lc.q.v1.<tenant>.<query>. Press Ctrl-C to stop.",
                options.instance,
                a.nats.nats,
                options.store_dir.display()
            );
            worker::run(ledger.clone(), options, crate::up::shutdown_signal()).await?;
            ledger.drain().await?;
            Ok(())
        }
    }
}

async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    let ledger = Ledger::connect(&args.nats.nats, args.nats.ledger.config()).await?;
    let tenant = args.tenant.as_deref().map(TenantId::parse).transpose()?;
    let db = sled::Config::new()
        .path(&args.store.dir)
        .cache_capacity(args.store.cache_mb << 20)
        .mode(sled::Mode::HighThroughput)
        .open()
        .map_err(|e| {
            ledger::LedgerError::Setup(format!(
                "cannot open the projection store {}: {e} (is a worker or `attendance up` using it? stop it first)",
                args.store.dir.display()
            ))
        })?;
    let partitions: Vec<u16> = match &tenant {
        Some(t) => vec![ledger.partitions().of(t)],
        None => (0..ledger.partitions().count()).collect(),
    };
    let now = args.clock.clock().now();
    let started = Instant::now();
    let mut totals = worker::Rebuilt::default();
    for p in partitions {
        let tree = db.open_tree(format!("p{p}"))?;
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "partition {prefix}: [{bar:30}] {pos}/{len} events, {per_sec}, ETA {eta}",
            )?
            .progress_chars("=> "),
        );
        bar.set_prefix(p.to_string());
        let (r, _) = worker::rebuild(
            &ledger,
            &tree,
            p,
            tenant.as_ref(),
            now,
            worker::BATCH,
            |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            },
        )
        .await?;
        bar.finish_and_clear();
        totals.events += r.events;
        totals.folded += r.folded;
        println!(
            "partition {p}: {} events folded, {} person-days judged, {} written",
            r.events, r.folded.judged, r.folded.written
        );
    }
    db.flush_async().await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rebuilt{}: {} events in {secs:.1} s ({:.0} events/s, {:.0} person-days/s); store {}",
        tenant.map(|t| format!(" {t}")).unwrap_or_default(),
        totals.events,
        totals.events as f64 / secs.max(1e-9),
        totals.folded.judged as f64 / secs.max(1e-9),
        args.store.dir.display()
    );
    Ok(())
}
