//! `attendance bench`: throughput figures beside a raw JetStream baseline measured in the
//! same run, on the same server. Figures, not pass/fail: nothing here is a test.

use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use clap::{Args, Subcommand};
use ledger::{Expected, Ledger, NatsServer, ServerOptions};
use schemas::events::{Punch, PunchRecorded, VerifyMode};
use schemas::ids::{BadgeNumber, DeviceSn, EventId, TenantId, ZoneName};
use schemas::{Actor, Envelope};

use crate::cli::LedgerArgs;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append throughput: one event at a time, pipelined, against raw JetStream publish.
    Append(AppendBench),
    /// Device ingest over HTTP: the real device records in 128-line POSTs, from 1 and
    /// from 50 devices at once, acknowledged end to end, against raw JetStream publish.
    Ingest(IngestBench),
    /// Offline replay: a JSON-lines file of punch events (1 million by default) folded
    /// and judged into daily reports, against a raw JetStream read of as many messages
    /// of the same size.
    Replay(ReplayBench),
    /// Projection workers on a generated company (10,000 people x 730 days): rebuild,
    /// re-judge after a rule change, query latency, punch-to-visible; each beside a raw
    /// JetStream or NATS figure of the same run.
    Projections(crate::bench_projections::ProjectionsBench),
    /// The gateway, as its own process, against a hostile client: 20,000 idle and slow
    /// connections, huge bodies from an unknown SN, a whole history in one body; its
    /// descriptors and memory, and whether devices are still answered.
    Abuse(crate::bench_abuse::AbuseBench),
    /// Devices polling getrequest (5,000 every 5 s): poll latency and the CPU of the
    /// gateway and nats-server, against reading each poll's commands from the stream.
    Polls(crate::bench_polls::PollsBench),
    /// Holds connections open for `bench abuse` (a helper process).
    #[command(hide = true)]
    Hold(crate::bench_abuse::HoldArgs),
}

#[derive(Debug, Args)]
pub struct ReplayBench {
    /// Punch events in the generated file.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// People punching (four punches a workday each).
    #[arg(long, default_value_t = 1_000)]
    pub people: u64,
    /// Keep the generated file here instead of a temporary folder.
    #[arg(long)]
    pub keep: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

#[derive(Debug, Args)]
pub struct IngestBench {
    /// Folder of `*_attlog.dat` device exports [default: the real device exports
    /// committed in gateway/testdata/real-devices].
    #[arg(long)]
    records: Option<std::path::PathBuf>,
    /// Device counts to run, one scenario each.
    #[arg(long, value_delimiter = ',', default_value = "1,50")]
    devices: Vec<usize>,
    /// Lines per POST (firmware sends at most 128).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Send only the first N records (a quick run).
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    ledger: LedgerArgs,
}

#[derive(Debug, Args)]
pub struct AppendBench {
    /// Events for the pipelined and raw runs.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Events for the one-at-a-time run (it is slow by nature).
    #[arg(long, default_value_t = 5_000)]
    single: u64,
    /// Events per `append_many` call.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Benchmark against this server instead of a fresh temporary one (events go to a
    /// throwaway tenant and stay: streams deny purges).
    #[arg(long)]
    nats: Option<String>,
    #[command(flatten)]
    ledger: LedgerArgs,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Append(args) => append(args).await,
        BenchCommand::Ingest(args) => ingest(args).await,
        BenchCommand::Replay(args) => crate::bench_replay::run(args).await,
        BenchCommand::Abuse(args) => crate::bench_abuse::run(args).await,
        BenchCommand::Projections(args) => crate::bench_projections::run(args).await,
        BenchCommand::Polls(args) => crate::bench_polls::run(args).await,
        BenchCommand::Hold(args) => crate::bench_abuse::hold(args).await,
    }
}

async fn append(args: AppendBench) -> anyhow::Result<()> {
    let _server;
    let url = match &args.nats {
        Some(url) => url.clone(),
        None => {
            let server = NatsServer::start(ServerOptions::default()).await?;
            let url = server.url();
            _server = server;
            url
        }
    };
    let ledger = Ledger::connect(&url, args.ledger.config()).await?;
    ledger.provision().await?;
    let tenant = TenantId::parse(&format!("bench-{}", Utc::now().timestamp_millis()))?;

    let events: Vec<Envelope> = (0..args.events).map(|i| punch(&tenant, i)).collect();
    let size = events[0].to_msgpack()?.len();
    println!(
        "append benchmark: {} events of ~{size} bytes (MessagePack PunchRecorded), file storage, server {url}",
        args.events
    );

    let raw = ledger::baseline::raw_publish(
        ledger.jetstream(),
        args.events,
        size,
        ledger.config().max_ack_inflight,
        false,
    )
    .await?;
    let raw_rate = raw.per_second();
    let raw_ids = ledger::baseline::raw_publish(
        ledger.jetstream(),
        args.events,
        size,
        ledger.config().max_ack_inflight,
        true,
    )
    .await?;

    let started = Instant::now();
    for event in events.iter().take(args.single as usize) {
        ledger.append(event, Expected::Any).await?;
    }
    let single_n = args.single.min(args.events);
    let single_rate = single_n as f64 / started.elapsed().as_secs_f64();

    let rest = &events[single_n as usize..];
    let started = Instant::now();
    for chunk in rest.chunks(args.batch.max(1)) {
        ledger.append_many(chunk).await?;
    }
    let piped_rate = rest.len() as f64 / started.elapsed().as_secs_f64();

    println!();
    println!("{:<42} {:>12} {:>10}", "mode", "events/s", "vs raw");
    let row = |name: &str, rate: f64| {
        println!("{name:<42} {rate:>12.0} {:>9.2}x", rate / raw_rate);
    };
    row("raw JetStream publish (4096 acks in flight)", raw_rate);
    row(
        "raw publish with Nats-Msg-Id (dedupe on)",
        raw_ids.per_second(),
    );
    row("ledger append, one at a time", single_rate);
    row(
        &format!("ledger append_many, {} per call", args.batch),
        piped_rate,
    );
    ledger.drain().await?;
    Ok(())
}

fn punch(tenant: &TenantId, i: u64) -> Envelope {
    let sn = DeviceSn::from(format!("BENCH{:04}", i % 50).as_str());
    let badge = BadgeNumber::from(format!("{}", 1000 + i % 500).as_str());
    let local = NaiveDate::from_ymd_opt(2026, 1, 5)
        .and_then(|d| d.and_hms_opt(8, 0, 0))
        .unwrap_or_default()
        + Duration::seconds(i as i64);
    let instant = local.and_utc() - Duration::hours(8);
    let punch = Punch {
        verify_mode: Some(VerifyMode::Face),
        punch_state: Some(0),
        device_seq: Some(i),
        ..Punch::from_device(
            sn.clone(),
            badge,
            local,
            ZoneName::parse("Asia/Shanghai").unwrap_or_else(|_| unreachable!()),
            instant,
        )
    };
    let id = punch.punch_id;
    Envelope::new(
        tenant.clone(),
        Actor::Device { sn },
        PunchRecorded { punch },
        Utc::now(),
    )
    .occurred_at(instant)
    .with_id(EventId(id.0))
}

async fn ingest(args: IngestBench) -> anyhow::Result<()> {
    let records = args
        .records
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(gateway::simulator::REAL_DEVICE_EXPORTS));
    let mut lines = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&records)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", records.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("attlog.dat"))
        .collect();
    files.sort();
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        lines.extend(gateway::protocol::attlog::lines(&text).map(str::to_owned));
    }
    anyhow::ensure!(!lines.is_empty(), "no records under {}", records.display());

    println!(
        "ingest benchmark: {} real records from {} files, {}-line POSTs over HTTP, file storage",
        lines.len(),
        files.len(),
        args.batch
    );
    let mut rates = Vec::new();
    for (sync_always, what) in [
        (false, "nats-server's default sync (fsync every 2 minutes)"),
        (
            true,
            "sync_interval: always (fsync before every ack, as `up` runs it)",
        ),
    ] {
        println!("\n{what}");
        rates.push(ingest_run(&args, &lines, sync_always).await?);
    }
    println!();
    for (i, &count) in args.devices.iter().enumerate() {
        let (default, always) = (rates[0][i], rates[1][i]);
        println!(
            "fsync before every ack costs {:.0}% of throughput with {count} device(s) ({default:.0} -> {always:.0} punches/s)",
            100.0 * (1.0 - always / default)
        );
    }
    println!(
        "peak memory (whole process: gateway, simulated devices, client): {}",
        peak_memory()
    );
    Ok(())
}

/// One server (synced as told), its raw baseline, then each device count; the rates.
async fn ingest_run(
    args: &IngestBench,
    lines: &[String],
    sync_always: bool,
) -> anyhow::Result<Vec<f64>> {
    use gateway::simulator::Device;

    let server = NatsServer::start(ServerOptions {
        sync_always,
        ..ServerOptions::default()
    })
    .await?;
    let ledger = Ledger::connect(&server.url(), args.ledger.config()).await?;
    ledger.provision().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let gw = gateway::http::Gateway::new(ledger.clone(), std::sync::Arc::new(Utc::now));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(gateway::http::run(gw, listener, async {
        let _ = stopped.await;
    }));

    // The size of one of these records as a one-punch event: the raw baseline publishes
    // that many messages of that size.
    let sample = {
        let binding = gateway::ingest::Binding {
            tenant: TenantId::parse("bench")?,
            sn: DeviceSn::from("BENCH"),
            zone: ZoneName::parse("Asia/Manila")?,
            records_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap_or_default(),
            claim_sequence: 0,
        };
        let upload = gateway::ingest::read_attlog(&binding, &lines[0], Utc::now());
        let punch = upload
            .punches
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("first record is not a punch"))?;
        Envelope::new(
            binding.tenant,
            Actor::Device { sn: binding.sn },
            PunchRecorded { punch },
            Utc::now(),
        )
        .to_msgpack()?
        .len()
    };
    let raw = ledger::baseline::raw_publish(
        ledger.jetstream(),
        lines.len() as u64,
        sample,
        ledger.config().max_ack_inflight,
        false,
    )
    .await?;
    println!("{:<44} {:>12} {:>10}", "scenario", "punches/s", "vs raw");
    println!(
        "{:<44} {:>12.0} {:>9.2}x",
        format!("raw JetStream publish, {sample}-byte messages"),
        raw.per_second(),
        1.0
    );

    let mut rates = Vec::new();
    for (run, &count) in args.devices.iter().enumerate() {
        let count = count.max(1);
        let tenant = TenantId::parse(&format!("bench-{}-{run}", Utc::now().timestamp_millis()))?;
        let mut devices = Vec::with_capacity(count);
        for d in 0..count {
            let sn = format!("BENCH{run:02}D{d:03}");
            let cmd = commands::devices::Bind {
                sn: DeviceSn::from(sn.as_str()),
                name: sn.clone(),
                model: None,
                zone: ZoneName::parse("Asia/Manila")?,
                records_from: NaiveDate::from_ymd_opt(2019, 1, 1),
            };
            let actor = Actor::System {
                component: "bench".into(),
            };
            commands::devices::bind(
                &ledger,
                &commands::Request::new(tenant.clone(), actor, cmd),
                Utc::now(),
            )
            .await?;
            devices.push(Device::new(addr, &sn));
        }
        // Each device sends its share of the records, all devices at once.
        let shares: Vec<Vec<&str>> = (0..count)
            .map(|d| {
                lines
                    .iter()
                    .skip(d)
                    .step_by(count)
                    .map(String::as_str)
                    .collect()
            })
            .collect();
        let started = Instant::now();
        let sends = devices
            .iter()
            .zip(&shares)
            .map(|(device, share)| device.push_all(share, args.batch));
        for result in futures::future::join_all(sends).await {
            result?;
        }
        let rate = lines.len() as f64 / started.elapsed().as_secs_f64();
        rates.push(rate);
        println!(
            "{:<44} {:>12.0} {:>9.2}x",
            format!("gateway, {count} device(s), acknowledged end to end"),
            rate,
            rate / raw.per_second()
        );
    }
    let _ = stop.send(());
    serving.await??;
    ledger.drain().await?;
    drop(server);
    Ok(rates)
}

/// VmHWM of this process, from /proc.
pub fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
