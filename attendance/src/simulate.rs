//! `attendance simulate`: a firmware-like device against a running gateway, telling its
//! story as it goes: it handshakes, punches live, goes offline and keeps punching,
//! catches up, sends its whole history again three times, and polls for commands.

use chrono::{Duration, NaiveDateTime, Utc};
use clap::Args;
use gateway::simulator::{Device, FIRMWARE_BATCH, Firmware};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The gateway's address (what a device is given as its server).
    #[arg(long, env = "LEDGERCLOCK_GATEWAY", default_value = "127.0.0.1:8080")]
    gateway: String,
    /// The device's serial number; bind it first (`attendance admin device bind`).
    #[arg(long)]
    sn: String,
    /// Badge numbers punching on the device, comma-separated (default: the demo's people).
    #[arg(long, value_delimiter = ',', default_value = "1001,1002,1003,1004")]
    badges: Vec<String>,
    /// Days of punches, ending yesterday; the device is offline for the middle ones.
    #[arg(long, default_value_t = 5)]
    days: i64,
    /// The device's time zone, to date its punches (as the binding's).
    #[arg(long, default_value = "Asia/Shanghai")]
    zone: String,
    /// Fields per ATTLOG line, as firmware variants send: 5, 6, 7, 10 or 11.
    #[arg(long, default_value_t = 7)]
    fields: usize,
    /// Which firmware: attendance PUSH, or Security PUSH of access-control terminals
    /// (registers, pushes each punch as it happens as `rtlog`, answers queries).
    #[arg(long, value_enum, default_value = "attendance")]
    firmware: FirmwareKind,
    /// Only punch these badge numbers now (the device's clock, in --zone) and upload
    /// them, as a person at the machine would.
    #[arg(long = "punch", value_delimiter = ',', conflicts_with = "days")]
    punch_now: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FirmwareKind {
    Attendance,
    Access,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    use std::net::ToSocketAddrs;
    let host = args
        .gateway
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let addr = host
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))?;
    let zone = schemas::ids::ZoneName::parse(&args.zone)
        .map_err(|e| anyhow::anyhow!("--zone {}: {e}", args.zone))?
        .tz();
    if args.days < 1 {
        anyhow::bail!("--days must be at least 1");
    }
    if let FirmwareKind::Access = args.firmware {
        return access(&args, addr, zone).await;
    }
    let mut device = Firmware::new(Device::new(addr, &args.sn), args.fields);

    let hello = device.handshake().await?;
    if hello.status != 200 {
        anyhow::bail!(
            "handshake refused ({} {}): is {} bound? `attendance admin device bind --tenant demo --sn {} --name ... --zone {}`",
            hello.status,
            hello.body.trim(),
            args.sn,
            args.sn,
            args.zone
        );
    }
    let tz_line = hello.body.lines().find(|l| l.starts_with("TimeZone="));
    println!(
        "handshake: {} answered with its options ({})",
        args.sn,
        tz_line.unwrap_or("no TimeZone")
    );

    if !args.punch_now.is_empty() {
        let now = Utc::now().with_timezone(&zone).naive_local();
        let now = now - Duration::nanoseconds(i64::from(now.and_utc().timestamp_subsec_nanos()));
        for badge in &args.punch_now {
            device.punch(badge, now, 0, 15);
        }
        let sent = device.sync().await?;
        println!(
            "{}: {} punched at {now}; sent {sent} record(s), stored",
            args.sn,
            args.punch_now.join(", ")
        );
        return Ok(());
    }
    let today = Utc::now().with_timezone(&zone).date_naive();
    for n in (1..=args.days).rev() {
        let date = today - Duration::days(n);
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        device.online = !offline(n, args.days);
        let before = device.records.len();
        workday(&mut device, &args.badges, midnight);
        let punched = device.records.len() - before;
        let sent = device.sync().await?;
        if device.online && sent > punched {
            println!(
                "{date}: {punched} punches; back online, caught up: sent {sent} records \
                 ({} from the days offline) in {}",
                sent - punched,
                match sent.div_ceil(FIRMWARE_BATCH) {
                    1 => "1 POST".to_owned(),
                    n => format!("{n} POSTs"),
                }
            );
        } else if device.online {
            println!("{date}: {punched} punches; online, sent {sent} records");
        } else {
            println!(
                "{date}: {punched} punches; offline, {} records waiting on the device",
                device.records.len() - device.sent
            );
        }
    }

    let history = device.records.len();
    device.resend_all(history.max(1)).await?;
    device.resend_all(7).await?;
    let mut reversed: Vec<&str> = device.records.iter().map(String::as_str).collect();
    reversed.reverse();
    device.device.push_all(&reversed, FIRMWARE_BATCH).await?;
    println!(
        "re-sent the whole history of {history} records 3 times (in 1 POST, in 7-line POSTs, \
         newest first), ignoring the stamp"
    );

    let polled = device.poll().await?;
    if polled.commands.is_empty() {
        println!("polled for commands: none waiting");
    }
    for command in &polled.commands {
        println!("polled and carried out: {}", command.replace('\t', " "));
    }
    if polled.resent > 0 {
        println!("re-uploaded {} records on request", polled.resent);
    }
    println!(
        "done: {history} punches on the device; every one should appear once in \
         `attendance replay --nats ... --tenant <tenant> raw --device {}`",
        args.sn
    );
    Ok(())
}

/// Whether day `n` (days before today) falls in the middle of the story, when the
/// device cannot reach the server: never the first or the last day.
fn offline(n: i64, days: i64) -> bool {
    days >= 3 && (2..days).contains(&n)
}

/// Each badge in around 08:55 and out around 18:05, a second tap on the way in for some.
fn workday(device: &mut Firmware, badges: &[String], midnight: NaiveDateTime) {
    for (i, badge) in badges.iter().enumerate() {
        let i = i as i64;
        let arrive = midnight + Duration::minutes(8 * 60 + 50 + i * 3);
        device.punch(badge, arrive, 0, 15);
        if i % 2 == 0 {
            device.punch(badge, arrive + Duration::seconds(20), 0, 15);
        }
        device.punch(
            badge,
            midnight + Duration::minutes(18 * 60 + 2 + i * 4),
            1,
            15,
        );
    }
}

/// The Security-PUSH story: registration, configuration, a day's punches pushed live,
/// door events that are not punches, a poll.
async fn access(
    args: &SimulateArgs,
    addr: std::net::SocketAddr,
    zone: chrono_tz::Tz,
) -> anyhow::Result<()> {
    use gateway::simulator::AccessFirmware;
    let mut device = AccessFirmware::new(Device::new(addr, &args.sn));
    let registered = device.register().await?;
    let Some(code) = device.registry_code.clone() else {
        anyhow::bail!(
            "registration refused ({} {}): is {} bound? `attendance admin device bind --tenant demo --sn {} --name ... --zone {}`",
            registered.status,
            registered.body.trim(),
            args.sn,
            args.sn,
            args.zone
        );
    };
    println!("registered: {} was given RegistryCode={code}", args.sn);
    device.fetch_config().await?;
    println!(
        "configuration: SessionID={}",
        device.session_id.as_deref().unwrap_or("-")
    );
    let handshake = device.handshake().await?;
    println!(
        "handshake: {}",
        handshake.body.lines().next().unwrap_or("no answer")
    );
    let yesterday = Utc::now().with_timezone(&zone).date_naive() - Duration::days(1);
    let midnight = yesterday.and_hms_opt(0, 0, 0).expect("midnight exists");
    device.door_event(midnight + Duration::hours(7), "0", 206);
    for (i, badge) in args.badges.iter().enumerate() {
        let i = i as i64;
        device.punch(badge, midnight + Duration::minutes(8 * 60 + 50 + i * 3));
        device.punch(badge, midnight + Duration::minutes(18 * 60 + 2 + i * 4));
    }
    device.door_event(midnight + Duration::hours(19), "9999", 27);
    let sent = device.sync().await?;
    println!(
        "{yesterday}: pushed {sent} rtlog records one by one ({} punches, a device start and a refused stranger that are not), each answered OK",
        args.badges.len() * 2
    );
    let commands = device.poll().await?;
    if commands.is_empty() {
        println!("polled for commands: none waiting");
    }
    for command in commands {
        println!("polled and carried out: {}", command.replace('\t', " "));
    }
    let time = device.time().await?;
    println!("time: {}", time.body.trim());
    Ok(())
}
