//! `attendance bench abuse`: the gateway, as its own process, against a hostile client
//! on the same network: tens of thousands of idle and slow connections, huge bodies from
//! an unknown SN, a whole history in one body. It prints what the gateway process held
//! (descriptors, memory) and whether devices were still answered: figures, not a test.
//!
//! The idle connections are held by helper processes (`attendance bench hold`, hidden),
//! so that they count against their descriptor limits, not this one's; the gateway runs
//! with head and idle timeouts of 300 s so that they are all held at once.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use clap::Args;
use gateway::simulator::Device;
use ledger::{Ledger, NatsServer, ServerOptions};
use schemas::Actor;
use schemas::ids::{DeviceSn, TenantId, ZoneName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::LedgerArgs;

#[derive(Debug, Args)]
pub struct AbuseBench {
    /// Idle connections held open against the gateway at once.
    #[arg(long, default_value_t = 20_000)]
    pub idle: usize,
    /// Processes holding them.
    #[arg(long, default_value_t = 4)]
    pub holders: usize,
    /// Bodies sent at once from an unknown SN.
    #[arg(long, default_value_t = 8)]
    pub unknown_bodies: usize,
    /// Size of each, in MB.
    #[arg(long, default_value_t = 60)]
    pub unknown_body_mb: usize,
    /// Lines of the one large legal body (1.3 million is about 43 MB).
    #[arg(long, default_value_t = 1_300_000)]
    pub history_lines: usize,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[arg(long)]
    pub addr: SocketAddr,
    #[arg(long)]
    pub connections: usize,
}

/// Opens `connections` to `addr`, a third of them sending a head that never ends;
/// prints how many it holds, and keeps them until its stdin closes.
pub async fn hold(args: HoldArgs) -> anyhow::Result<()> {
    use futures::StreamExt;
    let held: Vec<_> = futures::stream::iter(0..args.connections)
        .map(|i| async move {
            let mut stream = tokio::net::TcpStream::connect(args.addr).await.ok()?;
            if i % 3 == 0 {
                let _ = stream.write_all(b"GET /iclock/cdata?SN=SLOW").await;
            }
            Some(stream)
        })
        .buffer_unordered(256)
        .filter_map(std::future::ready)
        .collect()
        .await;
    println!("held {}", held.len());
    let mut line = String::new();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let _ = tokio::io::AsyncBufReadExt::read_line(&mut stdin, &mut line).await;
    drop(held);
    Ok(())
}

/// `attendance gateway` as a process of its own on a free loopback port, logging only
/// warnings (to nowhere): what the benchmarks measure the gateway as.
pub fn spawn_gateway(nats: &str, extra: &[&str]) -> anyhow::Result<(Child, SocketAddr)> {
    let port = ledger::nats_server::free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["gateway", "--nats", nats, "--listen", &addr.to_string()])
        .args(extra)
        .env("LEDGERCLOCK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok((child, addr))
}

/// Waits (at most 10 s) until the gateway at `addr` answers its health check.
pub async fn wait_healthy(addr: SocketAddr) {
    for _ in 0..200 {
        if health(addr).await.starts_with("200") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What `/proc` says of a process: open descriptors, resident and peak memory.
fn process_figures(pid: u32) -> String {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "{fds} descriptors, RSS {}, peak {}",
        field("VmRSS:"),
        field("VmHWM:")
    )
}

async fn health(addr: SocketAddr) -> String {
    match Device::new(addr, "-").request("GET", "/health", b"").await {
        Ok(answer) => format!("{} {}", answer.status, answer.body.trim()),
        Err(e) => format!("no answer: {e}"),
    }
}

pub async fn run(args: AbuseBench) -> anyhow::Result<()> {
    let server = NatsServer::start(ServerOptions::default()).await?;
    let ledger = Ledger::connect(&server.url(), args.ledger.config()).await?;
    ledger.provision().await?;
    let tenant = TenantId::parse("abuse")?;
    let sn = DeviceSn::from("ABUSE0001");
    let bind = commands::devices::Bind {
        sn: sn.clone(),
        name: "abused".into(),
        model: None,
        zone: ZoneName::parse("Asia/Shanghai")?,
        records_from: NaiveDate::from_ymd_opt(2000, 1, 1),
    };
    let actor = Actor::System {
        component: "bench".into(),
    };
    commands::devices::bind(
        &ledger,
        &commands::Request::new(tenant.clone(), actor, bind),
        Utc::now(),
    )
    .await?;
    // Timeouts long enough that every idle connection is held at once: the worst case,
    // with the descriptor limit and shedding alone keeping devices served.
    let (mut gateway, addr) = spawn_gateway(
        &server.url(),
        &["--head-timeout", "300", "--idle-timeout", "300"],
    )?;
    let exe = std::env::current_exe()?;
    let pid = gateway.id();
    let result = abuse(&args, &exe, addr, pid, &sn).await;
    let _ = gateway.kill();
    let _ = gateway.wait();
    ledger.drain().await?;
    drop(server);
    result
}

async fn abuse(
    args: &AbuseBench,
    exe: &std::path::Path,
    addr: SocketAddr,
    pid: u32,
    sn: &DeviceSn,
) -> anyhow::Result<()> {
    wait_healthy(addr).await;
    let device = Device::new(addr, sn.as_str());
    let line = |i: usize| {
        let at = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap_or_default()
            .and_hms_opt(8, 0, 0)
            .unwrap_or_default()
            + chrono::Duration::seconds(i as i64);
        format!(
            "{}\t{}\t0\t15\t0\t0\n",
            1000 + i % 500,
            at.format("%Y-%m-%d %H:%M:%S")
        )
    };
    println!("abuse benchmark: the gateway as its own process (pid {pid}), a real nats-server");
    println!("at rest: {}", process_figures(pid));

    // 1. One large legal body.
    let body: String = (0..args.history_lines).map(line).collect();
    let started = Instant::now();
    let answer = device.push_raw(body.as_bytes()).await?;
    println!(
        "\none body of {} lines ({:.1} MB) from the bound device: {} {:?} in {:.1} s",
        args.history_lines,
        body.len() as f64 / 1e6,
        answer.status,
        answer.body.trim(),
        started.elapsed().as_secs_f64()
    );
    println!("gateway: {}", process_figures(pid));
    // 2. Huge bodies from an unknown SN.
    let size = args.unknown_body_mb * 1024 * 1024;
    let sends = (0..args.unknown_bodies).map(|i| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let head = format!(
            "POST /iclock/cdata?SN=INTRUDER{i}&table=ATTLOG HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await?;
        let chunk = vec![b'7'; 64 * 1024];
        let mut written = 0;
        while written < size && stream.write_all(&chunk).await.is_ok() {
            written += chunk.len();
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let status = String::from_utf8_lossy(&answer).split(' ').nth(1).unwrap_or("-").to_owned();
        Ok::<_, std::io::Error>((status, written))
    });
    let results = futures::future::join_all(sends).await;
    let taken: usize = results.iter().flatten().map(|(_, w)| w).sum();
    let statuses: Vec<String> = results.iter().flatten().map(|(s, _)| s.clone()).collect();
    println!(
        "\n{} bodies of {} MB from an unknown SN at once: answered {statuses:?}, {:.1} MB of {} MB written before the gateway stopped reading",
        args.unknown_bodies,
        args.unknown_body_mb,
        taken as f64 / 1e6,
        args.unknown_bodies * args.unknown_body_mb
    );
    println!("gateway: {}", process_figures(pid));

    // 3. Idle and slow connections.
    let per = args.idle.div_ceil(args.holders.max(1));
    let mut holders: Vec<Child> = Vec::new();
    let mut held = 0;
    for _ in 0..args.holders.max(1) {
        let mut child = Command::new(exe)
            .args([
                "bench",
                "hold",
                "--addr",
                &addr.to_string(),
                "--connections",
                &per.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut reply = String::new();
        BufReader::new(stdout).read_line(&mut reply)?;
        held += reply
            .trim()
            .strip_prefix("held ")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        holders.push(child);
    }
    println!("\n{held} connections opened and held (a third with a head that never ends)");
    println!("gateway: {}", process_figures(pid));
    let started = Instant::now();
    let answer = device.push(&[line(0).trim_end()]).await;
    let took = started.elapsed();
    match answer {
        Ok(answer) => println!(
            "a device upload meanwhile: {} {:?} in {:.1} ms",
            answer.status,
            answer.body.trim(),
            took.as_secs_f64() * 1000.0
        ),
        Err(e) => println!("a device upload meanwhile: failed: {e}"),
    }
    println!("health: {}", health(addr).await);
    for mut child in holders {
        drop(child.stdin.take());
        let _ = child.wait();
    }

    Ok(())
}
