//! `attendance events`: move events between JSON-lines files and the ledger.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use futures::StreamExt;
use ledger::{Ledger, ReadFrom};
use schemas::Envelope;
use schemas::ids::TenantId;

use crate::cli::NatsArgs;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Append every envelope of a JSON-lines file (one JSON envelope a line). The whole
    /// file is checked first: one bad line and nothing is appended.
    Append(AppendArgs),
    /// Print a tenant's events as JSON lines (re-appendable: ids are kept).
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// The JSON-lines file ("-" for standard input).
    #[arg(long)]
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[arg(long)]
    tenant: String,
    /// First stream sequence to print.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Keep printing new events as they are appended.
    #[arg(long, short)]
    follow: bool,
    /// Prefix each line with its stream sequence and a TAB.
    #[arg(long)]
    sequence: bool,
}

pub async fn run(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::Append(args) => append(args).await,
        EventsCommand::Tail(args) => tail(args).await,
    }
}

async fn append(args: AppendArgs) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let envelopes = parse_lines(reader, &args.file.display().to_string())?;
    let ledger = Ledger::connect(&args.nats.nats, args.nats.ledger.config()).await?;
    ledger.provision().await?;
    let acks = ledger.append_many(&envelopes).await?;
    let duplicates = acks.iter().filter(|a| a.duplicate).count();
    println!(
        "appended {} events ({} already present)",
        acks.len() - duplicates,
        duplicates
    );
    ledger.drain().await?;
    Ok(())
}

/// Every line must be an envelope; blank lines and lines starting with `#` are skipped.
fn parse_lines(reader: impl BufRead, name: &str) -> anyhow::Result<Vec<Envelope>> {
    let mut envelopes = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{name}: cannot read line {}", index + 1))?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let envelope = Envelope::from_json(trimmed).map_err(|e| {
            ledger::LedgerError::Rejected(format!(
                "{name}:{}: {e}; nothing was appended",
                index + 1
            ))
        })?;
        envelopes.push(envelope);
    }
    Ok(envelopes)
}

async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let ledger = Ledger::connect(&args.nats.nats, args.nats.ledger.config()).await?;
    let from = ReadFrom {
        sequence: args.from,
        filters: Vec::new(),
    };
    let mut events = if args.follow {
        ledger.tail(&tenant, from).await?
    } else {
        ledger.read(&tenant, from).await?
    };
    let mut out = std::io::stdout().lock();
    while let Some(recorded) = events.next().await {
        let recorded = recorded?;
        if args.sequence {
            write!(out, "{}\t", recorded.sequence)?;
        }
        writeln!(out, "{}", recorded.envelope.to_json()?)?;
        if args.follow {
            out.flush()?;
        }
    }
    Ok(())
}
