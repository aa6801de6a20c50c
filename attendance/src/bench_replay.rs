//! `attendance bench replay`: how fast the replay CLI's path (parse, fold, judge,
//! render) runs on a large history, beside a raw JetStream read of as many messages.

use std::io::{BufWriter, Write};
use std::time::Instant;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use ledger::{Ledger, NatsServer, ServerOptions};
use projections::book::{DailyQuery, load_jsonl};
use projections::render::{self, DailyArgs, Format};
use schemas::events::*;
use schemas::ids::*;
use schemas::{Actor, Envelope, Event};

use crate::bench::{ReplayBench, peak_memory};

fn envelope(tenant: &TenantId, event: impl Into<Event>, at: chrono::DateTime<Utc>) -> Envelope {
    Envelope::new(
        tenant.clone(),
        Actor::System {
            component: "bench".into(),
        },
        event,
        at,
    )
}

/// Writes the setup (a department, people, a 09:00-18:00 rule with lunch) and then
/// `events` punch events: four a workday per person, on, lunch out, lunch in, off, with
/// minutes of jitter. Returns the average line length.
fn generate(path: &std::path::Path, args: &ReplayBench) -> anyhow::Result<usize> {
    let tenant = TenantId::parse("bench")?;
    let zone = ZoneName::parse("Asia/Shanghai")?;
    let tz = zone.tz();
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut setup = vec![envelope(
        &tenant,
        DepartmentDefined {
            department_id: DepartmentId::new("d"),
            name: "Plant".into(),
            parent: None,
        },
        start,
    )];
    for p in 0..args.people {
        setup.push(envelope(
            &tenant,
            PersonHired {
                person_id: PersonId::new(format!("p{p:05}")),
                name: format!("Person {p}"),
                department_id: DepartmentId::new("d"),
                hired_on: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default(),
                badge_number: Some(BadgeNumber::new(format!("{}", 1000 + p))),
                title: None,
            },
            start,
        ));
    }
    let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
    let day = WorkDay {
        sections: vec![Section {
            on: t(9, 0),
            on_next_day: false,
            off: t(18, 0),
            off_next_day: false,
            on_window: PunchWindow::default(),
            off_window: PunchWindow::default(),
        }],
        rests: vec![RestPeriod {
            start: t(12, 0),
            end: t(13, 0),
            next_day: false,
        }],
        flex: Flex::Allowance {
            late_s: 300,
            early_s: 0,
        },
        late_out_late_in: Vec::new(),
        off_punch_required: true,
    };
    setup.push(envelope(
        &tenant,
        RuleVersionDefined {
            rule_id: RuleId::new("r"),
            version: 1,
            name: "Plant hours".into(),
            zone: zone.clone(),
            effective_from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default(),
            kind: RuleKind::Fixed(FixedRule {
                workdays: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ],
                day,
            }),
            options: RuleOptions::default(),
        },
        start,
    ));
    setup.push(envelope(
        &tenant,
        RuleMembershipSet {
            rule_id: RuleId::new("r"),
            people: Vec::new(),
            departments: vec![DepartmentId::new("d")],
            excluded_people: Vec::new(),
            effective_from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default(),
        },
        start,
    ));
    for e in &setup {
        writeln!(out, "{}", e.to_json()?)?;
    }

    let sn = DeviceSn::new("GATE0001");
    let mut written = 0u64;
    let mut bytes = 0usize;
    let mut date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
    'days: loop {
        if date.weekday().number_from_monday() <= 5 {
            for p in 0..args.people {
                let badge = BadgeNumber::new(format!("{}", 1000 + p));
                let jitter = ((p * 7919 + u64::from(date.ordinal())) % 23) as i64 - 8;
                for (h, m) in [(8, 55), (12, 1), (12, 58), (18, 3)] {
                    if written == args.events {
                        break 'days;
                    }
                    let local = date.and_time(t(h, m)) + Duration::minutes(jitter);
                    let instant = projections::time::instant(tz, local);
                    let punch = Punch {
                        verify_mode: Some(VerifyMode::Face),
                        punch_state: Some(0),
                        device_seq: Some(written),
                        ..Punch::from_device(
                            sn.clone(),
                            badge.clone(),
                            local,
                            zone.clone(),
                            instant,
                        )
                    };
                    let line = envelope(&tenant, PunchRecorded { punch }, instant).to_json()?;
                    bytes += line.len() + 1;
                    writeln!(out, "{line}")?;
                    written += 1;
                }
            }
        }
        date = date.succ_opt().unwrap_or(date);
    }
    out.flush()?;
    Ok(bytes / written.max(1) as usize)
}

pub async fn run(args: ReplayBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = args
        .keep
        .clone()
        .unwrap_or_else(|| dir.path().join("events.jsonl"));
    let started = Instant::now();
    let line = generate(&path, &args)?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "replay benchmark: {} punch events ({} people, ~{line} bytes a line, {:.0} MB) written in {:.1}s to {}",
        args.events,
        args.people,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        path.display()
    );

    let server = NatsServer::start(ServerOptions::default()).await?;
    let ledger = Ledger::connect(&server.url(), args.ledger.config()).await?;
    let raw = ledger::baseline::raw_read(
        ledger.jetstream(),
        args.events,
        line,
        ledger.config().max_ack_inflight,
    )
    .await?;
    drop(ledger);
    drop(server);

    let started = Instant::now();
    let file = std::fs::File::open(&path)?;
    let (book, events) = load_jsonl(std::io::BufReader::with_capacity(1 << 20, file), None)?;
    let loaded = started.elapsed();
    let judged_at = Instant::now();
    let days = book.daily(&DailyQuery::default());
    let judged = judged_at.elapsed();
    let rendered_at = Instant::now();
    let mut sink = std::io::sink();
    render::daily(&book, &DailyArgs::default(), Format::Csv, &mut sink)?;
    let rendered = rendered_at.elapsed();
    let total = started.elapsed();

    let rate = |n: u64, d: std::time::Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let raw_rate = raw.per_second();
    println!();
    println!("{:<52} {:>12} {:>10}", "step", "per second", "vs raw");
    println!(
        "{:<52} {:>12.0} {:>9.2}x",
        "raw JetStream read (ordered consumer), messages", raw_rate, 1.0
    );
    println!(
        "{:<52} {:>12.0} {:>9.2}x",
        "parse + fold the file, events",
        rate(events, loaded),
        rate(events, loaded) / raw_rate
    );
    println!(
        "{:<52} {:>12.0}",
        format!("judge {} person-days", days.len()),
        rate(days.len() as u64, judged)
    );
    println!(
        "{:<52} {:>12.0}",
        "render daily CSV, rows (computed again)",
        rate(days.len() as u64, rendered)
    );
    println!(
        "{:<52} {:>12.0} {:>9.2}x",
        "whole replay (parse, fold, judge), events",
        rate(events, loaded + judged),
        rate(events, loaded + judged) / raw_rate
    );
    println!(
        "\nfold {:.1}s, judge {:.1}s, render {:.1}s, total {:.1}s; peak memory {}",
        loaded.as_secs_f64(),
        judged.as_secs_f64(),
        rendered.as_secs_f64(),
        total.as_secs_f64(),
        peak_memory()
    );
    Ok(())
}
