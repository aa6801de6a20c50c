//! `attendance bench polls`: thousands of bound devices polling `getrequest` on their
//! schedule (every 5 s by default, each at its own phase) against the gateway as its own
//! process, while an administrator queues commands for some of them. It prints the poll
//! latency, how many polls delivered commands, and the CPU the gateway and nats-server
//! spent; beside it, in the same run, the raw JetStream figure of what a poll used to
//! cost: reading the device's command subject from the stream (direct gets) per poll,
//! at the same rate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use clap::Args;
use futures::StreamExt;
use gateway::simulator::Device;
use ledger::{Ledger, NatsServer, ServerOptions};
use schemas::Actor;
use schemas::events::DeviceCommand;
use schemas::ids::{DeviceSn, TenantId, ZoneName};

use crate::cli::LedgerArgs;

#[derive(Debug, Args)]
pub struct PollsBench {
    /// Devices polling.
    #[arg(long, default_value_t = 5_000)]
    pub devices: usize,
    /// Seconds between one device's polls.
    #[arg(long, default_value_t = 5)]
    pub every: u64,
    /// Seconds of polling measured (after one warm-up round).
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Commands an administrator queues per second, each for a random device.
    #[arg(long, default_value_t = 20)]
    pub commands_per_second: usize,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

/// CPU seconds a process has used so far (user + system), from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    // In USER_HZ, which Linux fixes at 100 for /proc whatever the kernel's tick.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn sn(i: usize) -> DeviceSn {
    DeviceSn::from(format!("POLL{i:06}").as_str())
}

pub async fn run(args: PollsBench) -> anyhow::Result<()> {
    let server = NatsServer::start(ServerOptions::default()).await?;
    let nats_pid = server
        .pid()
        .ok_or_else(|| anyhow::anyhow!("nats-server has no pid"))?;
    let ledger = Ledger::connect(&server.url(), args.ledger.config()).await?;
    ledger.provision().await?;
    let tenant = TenantId::parse("polls")?;
    let actor = Actor::System {
        component: "bench".into(),
    };
    let started = Instant::now();
    futures::stream::iter(0..args.devices)
        .map(|i| {
            let ledger = ledger.clone();
            let tenant = tenant.clone();
            let actor = actor.clone();
            async move {
                let bind = commands::devices::Bind {
                    sn: sn(i),
                    name: format!("door {i}"),
                    model: None,
                    zone: ZoneName::parse("Asia/Shanghai")?,
                    records_from: NaiveDate::from_ymd_opt(2024, 1, 1),
                };
                commands::devices::bind(
                    &ledger,
                    &commands::Request::new(tenant, actor, bind),
                    Utc::now(),
                )
                .await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    println!(
        "polls benchmark: {} devices bound in {:.1} s; each polls getrequest every {} s ({:.0} polls/s); the gateway as its own process, a real nats-server",
        args.devices,
        started.elapsed().as_secs_f64(),
        args.every,
        args.devices as f64 / args.every as f64
    );

    let (mut gateway, addr) = crate::bench_abuse::spawn_gateway(&server.url(), &[])?;
    let result = measure(&args, &ledger, &tenant, addr, gateway.id(), nats_pid).await;
    let _ = gateway.kill();
    let _ = gateway.wait();
    ledger.drain().await?;
    drop(server);
    result
}

#[derive(Default)]
struct Polled {
    empty: Vec<Duration>,
    delivering: Vec<Duration>,
    failed: usize,
}

async fn measure(
    args: &PollsBench,
    ledger: &Ledger,
    tenant: &TenantId,
    addr: SocketAddr,
    gateway_pid: u32,
    nats_pid: u32,
) -> anyhow::Result<()> {
    crate::bench_abuse::wait_healthy(addr).await;
    let every = Duration::from_secs(args.every.max(1));
    let measured = Duration::from_secs(args.seconds.max(1));
    // Two rounds to warm up (first polls record each device's status and dialect), then
    // two measured windows: polls alone, then polls while an administrator queues
    // commands.
    let begin = tokio::time::Instant::now() + Duration::from_millis(200);
    let quiet_start = begin + every * 2;
    let busy_start = quiet_start + measured;
    let end = busy_start + measured;
    let polled = Arc::new(std::sync::Mutex::new([
        Polled::default(),
        Polled::default(),
    ]));

    let admin = {
        let ledger = ledger.clone();
        let tenant = tenant.clone();
        let devices = args.devices;
        let rate = args.commands_per_second;
        tokio::spawn(async move {
            tokio::time::sleep_until(busy_start).await;
            let mut queued = 0usize;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            while tokio::time::Instant::now() < end {
                tick.tick().await;
                for _ in 0..rate.div_ceil(10) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let device = sn(seed as usize % devices);
                    let command = DeviceCommand::QueryUsers { badge_number: None };
                    let actor = Actor::System {
                        component: "bench".into(),
                    };
                    if commands::devices::send(
                        &ledger,
                        &tenant,
                        &device,
                        command,
                        actor,
                        Utc::now(),
                    )
                    .await
                    .is_ok()
                    {
                        queued += 1;
                    }
                }
            }
            queued
        })
    };
    let cpu = tokio::spawn(async move {
        let mut at = Vec::new();
        for instant in [quiet_start, busy_start, end] {
            tokio::time::sleep_until(instant).await;
            at.push((
                cpu_seconds(gateway_pid),
                cpu_seconds(nats_pid),
                Instant::now(),
            ));
        }
        at
    });

    let devices: Vec<_> = (0..args.devices)
        .map(|i| {
            let polled = polled.clone();
            let phase = every.mul_f64(i as f64 / args.devices as f64);
            tokio::spawn(async move {
                let device = Device::new(addr, sn(i).as_str());
                let path = format!("/iclock/getrequest?SN={}", sn(i));
                let mut next = begin + phase;
                while next < end {
                    tokio::time::sleep_until(next).await;
                    let sent = Instant::now();
                    let answer = device.request("GET", &path, b"").await;
                    let took = sent.elapsed();
                    let window = if next >= busy_start {
                        1
                    } else if next >= quiet_start {
                        0
                    } else {
                        next += every;
                        continue;
                    };
                    let mut polled = polled.lock().expect("not poisoned");
                    let polled = &mut polled[window];
                    match answer {
                        Ok(a) if a.status == 200 && a.body.starts_with("C:") => {
                            polled.delivering.push(took)
                        }
                        Ok(a) if a.status == 200 => polled.empty.push(took),
                        _ => polled.failed += 1,
                    }
                    next += every;
                }
            })
        })
        .collect();
    for device in devices {
        device.await?;
    }
    let at = cpu.await?;
    let queued = admin.await?;
    let mut polled = std::mem::take(&mut *polled.lock().expect("not poisoned"));
    println!(
        "\ngetrequest over HTTP, a new connection per poll as firmware does; {} s per window:",
        args.seconds
    );
    let mut nats_quiet = 0.0;
    let mut all = Vec::new();
    for (window, polled) in polled.iter_mut().enumerate() {
        let (gw0, nats0, t0) = at[window];
        let (gw1, nats1, t1) = at[window + 1];
        let wall = (t1 - t0).as_secs_f64();
        let nats = (nats1 - nats0) / wall;
        if window == 0 {
            nats_quiet = nats;
        }
        polled.empty.sort();
        polled.delivering.sort();
        let mut both: Vec<Duration> = polled
            .empty
            .iter()
            .chain(&polled.delivering)
            .copied()
            .collect();
        both.sort();
        println!(
            "  {}: {} polls ({:.0}/s), {} failed",
            if window == 0 {
                "polls alone"
            } else {
                "with an administrator queueing commands"
            },
            both.len(),
            both.len() as f64 / wall,
            polled.failed
        );
        println!(
            "    all polls p50 {}, p99 {}, max {}",
            ms(percentile(&both, 0.50)),
            ms(percentile(&both, 0.99)),
            ms(percentile(&both, 1.0))
        );
        if !polled.delivering.is_empty() {
            println!(
                "    nothing to deliver ({}): p50 {}, p99 {}; delivering commands ({}, stored as delivered before the answer): p50 {}, p99 {}",
                polled.empty.len(),
                ms(percentile(&polled.empty, 0.50)),
                ms(percentile(&polled.empty, 0.99)),
                polled.delivering.len(),
                ms(percentile(&polled.delivering, 0.50)),
                ms(percentile(&polled.delivering, 0.99))
            );
        }
        if window == 1 {
            println!("    {queued} commands queued meanwhile");
        }
        println!(
            "    CPU: gateway {:.1}% of a core, nats-server {:.1}% of a core",
            (gw1 - gw0) / wall * 100.0,
            nats * 100.0
        );
        if window == 0 {
            all = both;
        }
    }
    let polled_p99 = percentile(&all, 0.99);

    // The raw JetStream figure: what serving each poll from the stream costs, a read of
    // the device's command subject per poll at the same rate.
    let baseline = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let begin = tokio::time::Instant::now() + Duration::from_millis(200);
    let end = begin + measured.min(Duration::from_secs(10)).max(every);
    let readers: Vec<_> = (0..args.devices)
        .map(|i| {
            let ledger = ledger.clone();
            let tenant = tenant.clone();
            let baseline = baseline.clone();
            let phase = every.mul_f64(i as f64 / args.devices as f64);
            tokio::spawn(async move {
                let mut next = begin + phase;
                while next < end {
                    tokio::time::sleep_until(next).await;
                    let sent = Instant::now();
                    if read_queue(&ledger, &tenant, &sn(i)).await.is_ok() {
                        baseline.lock().expect("not poisoned").push(sent.elapsed());
                    }
                    next += every;
                }
            })
        })
        .collect();
    tokio::time::sleep_until(begin).await;
    let (nats0, wall0) = (cpu_seconds(nats_pid), Instant::now());
    for reader in readers {
        reader.await?;
    }
    let (nats1, wall) = (cpu_seconds(nats_pid), wall0.elapsed().as_secs_f64());
    let mut baseline = std::mem::take(&mut *baseline.lock().expect("not poisoned"));
    baseline.sort();
    let nats_reads = (nats1 - nats0) / wall;
    println!(
        "\nraw JetStream, same run: each poll's command subject read from the stream (batched direct get), {:.0}/s for {:.0} s:",
        baseline.len() as f64 / wall,
        wall
    );
    println!(
        "  latency p50 {}, p99 {} (the read alone, before any HTTP); nats-server {:.1}% of a core",
        ms(percentile(&baseline, 0.50)),
        ms(percentile(&baseline, 0.99)),
        nats_reads * 100.0
    );
    println!(
        "\nratio, polls alone against the stream read: nats-server CPU {:.2}x; poll p99 (with HTTP) {:.2}x the read's p99",
        nats_quiet / nats_reads.max(f64::EPSILON),
        polled_p99.as_secs_f64() / percentile(&baseline, 0.99).as_secs_f64().max(f64::EPSILON)
    );
    Ok(())
}

/// What serving a poll from the stream costs: the device's command subject read whole
/// (direct gets) and folded.
async fn read_queue(
    ledger: &Ledger,
    tenant: &TenantId,
    sn: &DeviceSn,
) -> anyhow::Result<commands::devices::queue::CommandQueue> {
    let aggregate = schemas::Aggregate::new(schemas::AggregateKind::DeviceCommands, sn.as_str());
    let filter = ledger.partitions().event_subject(tenant, &aggregate);
    let mut events = ledger.read(tenant, ledger::ReadFrom::only(filter)).await?;
    let mut queue = commands::devices::queue::CommandQueue::default();
    while let Some(recorded) = events.next().await {
        let recorded = recorded?;
        queue.apply(&recorded.envelope.event, recorded.envelope.recorded_at);
    }
    Ok(queue)
}
