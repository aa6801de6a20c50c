//! `attendance replay`: rebuild reports from events, offline from a JSON-lines file or
//! from a tenant's stream, with the same fold the projection workers run.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt;
use ledger::{Ledger, ReadFrom};
use projections::book::{self, Book};
use projections::render;
use schemas::ids::TenantId;

use crate::cli::LedgerArgs;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Read events from this JSON-lines file (one envelope a line; `#` lines are
    /// comments). No server needed.
    #[arg(long, global = true, conflicts_with = "nats")]
    events: Option<PathBuf>,
    /// Read the tenant's events from this NATS server instead.
    #[arg(long, global = true)]
    nats: Option<String>,
    /// The tenant (required with --nats; with --events, needed only when the file holds several).
    #[arg(long, global = true)]
    tenant: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    ledger: LedgerArgs,
    #[command(subcommand)]
    report: Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object a line, every field.
    Json,
    /// Comma-separated values with a header, for spreadsheets.
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Report {
    /// Daily report (日报): each person's days as the rules in force judged them.
    Daily(DailyArgs),
    /// Raw records (原始记录): every punch once, how often it was received, and every
    /// device record that could not be a punch.
    Raw(RawArgs),
}

#[derive(Debug, Args)]
pub struct DailyArgs {
    /// Only these people (repeatable).
    #[arg(long = "person")]
    people: Vec<String>,
    /// Only this department and the ones under it.
    #[arg(long)]
    department: Option<String>,
    /// First date (YYYY-MM-DD); default: the first punch's date.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last date, inclusive; default: the last punch's date.
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Table format: add each day's punches and calibrations under its row.
    #[arg(long)]
    explain: bool,
}

#[derive(Debug, Args)]
pub struct RawArgs {
    /// Only punches of this device (repeatable).
    #[arg(long = "device")]
    devices: Vec<String>,
    /// Only punches resolved to this person (repeatable).
    #[arg(long = "person")]
    people: Vec<String>,
    /// First local date.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last local date, inclusive.
    #[arg(long)]
    to: Option<NaiveDate>,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let tenant = args.tenant.as_deref().map(TenantId::parse).transpose()?;
    let (book, events) = match (&args.events, &args.nats) {
        (Some(path), _) => load_file(path, tenant.as_ref())?,
        (None, nats) => {
            let Some(tenant) = tenant else {
                bail!(ledger::LedgerError::Rejected(
                    "give --events FILE, or --tenant T to read a tenant's stream from NATS".into()
                ));
            };
            let url = nats
                .clone()
                .or_else(|| std::env::var("LEDGERCLOCK_NATS").ok())
                .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
            load_nats(&url, &args.ledger, &tenant).await?
        }
    };
    tracing::debug!(events, "replayed");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let format = match args.format {
        Format::Table => render::Format::Table,
        Format::Json => render::Format::Json,
        Format::Csv => render::Format::Csv,
    };
    match args.report {
        Report::Daily(d) => render::daily(
            &book,
            &render::DailyArgs {
                people: d.people,
                department: d.department,
                from: d.from,
                to: d.to,
                explain: d.explain,
                // Today's days are in progress, as the clock stands.
                now: Some(chrono::Utc::now()),
            },
            format,
            &mut out,
        )?,
        Report::Raw(r) => render::raw(
            &book,
            &render::RawArgs {
                devices: r.devices,
                people: r.people,
                from: r.from,
                to: r.to,
            },
            format,
            &mut out,
        )?,
    }
    out.flush()?;
    Ok(())
}

/// Folds a JSON-lines file into a book.
pub fn load_file(path: &PathBuf, tenant: Option<&TenantId>) -> anyhow::Result<(Book, u64)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    book::load_jsonl(reader, tenant).map_err(|e| {
        let hint = if matches!(e, book::LoadError::SeveralTenants { .. }) {
            " with --tenant"
        } else {
            ""
        };
        ledger::LedgerError::Rejected(format!("{}: {e}{hint}", path.display())).into()
    })
}

async fn load_nats(url: &str, args: &LedgerArgs, tenant: &TenantId) -> anyhow::Result<(Book, u64)> {
    let ledger = Ledger::connect(url, args.config()).await?;
    let mut events = ledger.read(tenant, ReadFrom::start()).await?;
    let mut book = Book::new();
    let mut count = 0u64;
    while let Some(recorded) = events.next().await {
        let recorded = recorded?;
        book.apply(recorded.sequence, &recorded.envelope);
        count += 1;
    }
    drop(events);
    ledger.drain().await?;
    Ok((book, count))
}
