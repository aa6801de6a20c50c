//! `attendance bench`: throughput figures beside a raw JetStream baseline measured in the
//! same run, on the same server. Figures, not pass/fail: nothing here is a test.

use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use clap::{Args, Subcommand};
use ledger::{Expected, Ledger, NatsServer, ServerOptions};
use schemas::events::{Punch, PunchRecorded, PunchSource, VerifyMode};
use schemas::ids::{BadgeNumber, DeviceSn, EventId, PunchId, TenantId, ZoneName};
use schemas::{Actor, Envelope};

use crate::cli::LedgerArgs;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append throughput: one event at a time, pipelined, against raw JetStream publish.
    Append(AppendBench),
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
    let punch_id = PunchId::for_device_record(&sn, &badge, local);
    let punch = Punch {
        punch_id,
        source: PunchSource::Device,
        person_id: None,
        device_sn: Some(sn.clone()),
        badge_number: Some(badge),
        local_time: local,
        zone: ZoneName::parse("Asia/Shanghai").unwrap_or_else(|_| unreachable!()),
        instant,
        verify_mode: Some(VerifyMode::Face),
        punch_state: Some(0),
        work_code: None,
        device_seq: Some(i),
        location: None,
        wifi_bssid: None,
        qr_token: None,
        photo_ref: None,
        raw_line: None,
    };
    Envelope::new(
        tenant.clone(),
        Actor::Device { sn },
        PunchRecorded { punch },
        Utc::now(),
    )
    .occurred_at(instant)
    .with_id(EventId(punch_id.0))
}
