//! Reports as people read them: aligned tables, CSV for spreadsheets, JSON lines for
//! programs. Pure: a book and a query in, text out.

use std::io::Write;

use chrono::NaiveDate;
use schemas::ids::{DepartmentId, PersonId};

use crate::book::{Book, DailyQuery, DailyReport, RawRow};
use crate::judge::{Exceptions, PunchUse, Status, Verdict};
use crate::table::Table;
use schemas::events::{CalibrationTarget, SlotEnd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object a line, every field.
    Json,
    /// Comma-separated values with a header, for spreadsheets.
    Csv,
}

#[derive(Debug, Clone, Default)]
pub struct DailyArgs {
    pub people: Vec<String>,
    pub department: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Table format: each day's slots, punches and calibrations under its row.
    pub explain: bool,
    /// The clock: days not over by then are in progress (`None`: all are over).
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawArgs {
    pub devices: Vec<String>,
    pub people: Vec<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Csv(#[from] csv::Error),
}

/// `7h27m`, `8s`, `-` for nothing.
pub fn duration(seconds: i64) -> String {
    if seconds == 0 {
        return "-".into();
    }
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.abs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::from(sign);
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if sec > 0 {
        out += &format!("{sec}s");
    }
    out
}

/// A verdict in words: `late 5h25m, early leave 3h34m52s`.
pub fn verdict_text(v: &Verdict) -> String {
    let e: &Exceptions = &v.exceptions;
    v.status
        .iter()
        .map(|s| {
            let tally = match s {
                Status::Late => Some(e.late),
                Status::EarlyLeave => Some(e.early_leave),
                Status::Absent => Some(e.absent),
                Status::MissingPunch if e.missing_punch.count > 1 => {
                    return format!("missing punch x{}", e.missing_punch.count);
                }
                _ => None,
            };
            match tally {
                Some(t) if t.seconds > 0 => format!("{} {}", s.label(), duration(t.seconds)),
                _ => s.label().to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A time relative to the day it belongs to: `06:02:00 (+1)` for the next morning.
fn clock(day: NaiveDate, t: Option<chrono::NaiveDateTime>) -> String {
    match t {
        None => "--".into(),
        Some(t) => {
            let offset = (t.date() - day).num_days();
            let time = t.format("%H:%M:%S");
            match offset {
                0 => time.to_string(),
                n => format!("{time} ({n:+})"),
            }
        }
    }
}

fn day_type(r: &DailyReport) -> String {
    let t = match r.day.day_type {
        crate::judge::DayType::Workday => "workday",
        crate::judge::DayType::Rest => "rest",
        crate::judge::DayType::Holiday => "holiday",
    };
    match &r.day.holiday {
        Some(name) => format!("{t} ({name})"),
        None => t.into(),
    }
}

fn approvals_text(r: &DailyReport) -> String {
    use crate::judge::NoteKind;
    let mut parts: Vec<String> = r
        .day
        .approvals
        .iter()
        .map(|a| match &a.kind {
            NoteKind::Leave { leave_type } => {
                format!("leave ({leave_type}) {}", duration(a.seconds))
            }
            NoteKind::BusinessTrip => format!("business trip {}", duration(a.seconds)),
            NoteKind::Outing => format!("outing {}", duration(a.seconds)),
            NoteKind::Overtime => format!("overtime {}", duration(a.seconds)),
            NoteKind::MakeUp => "make-up punch".into(),
        })
        .collect();
    if let Some(o) = &r.day.overtime
        && o.basis == crate::judge::OvertimeBasis::Punches
    {
        parts.push(format!("overtime {} (by punches)", duration(o.seconds)));
    }
    if r.day.field_work > 0 {
        parts.push(format!("field work x{}", r.day.field_work));
    }
    if parts.is_empty() {
        "--".into()
    } else {
        parts.join(", ")
    }
}

const DAILY_COLUMNS: [&str; 14] = [
    "date",
    "person",
    "department",
    "rule",
    "day",
    "shift",
    "earliest",
    "latest",
    "punches",
    "work",
    "standard",
    "approvals",
    "status",
    "calibrated",
];

fn daily_row(r: &DailyReport) -> Vec<String> {
    let d = &r.day;
    vec![
        d.date.to_string(),
        r.person.clone(),
        r.department.clone(),
        format!("{} v{}", d.rule.name, d.rule.version),
        day_type(r),
        d.shift
            .as_ref()
            .map_or_else(|| "--".into(), |s| s.name.clone()),
        clock(d.date, d.earliest),
        clock(d.date, d.latest),
        d.punch_count.to_string(),
        duration(d.work_s),
        duration(d.standard_work_s),
        approvals_text(r),
        verdict_text(&d.original),
        verdict_text(&d.calibrated),
    ]
}

pub fn daily(
    book: &Book,
    a: &DailyArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<(), RenderError> {
    let query = DailyQuery {
        people: a.people.iter().map(|p| PersonId::new(p.as_str())).collect(),
        department: a.department.as_deref().map(DepartmentId::new),
        from: a.from,
        to: a.to,
        now: a.now,
    };
    let reports = book.daily(&query);
    match format {
        Format::Json => {
            for r in &reports {
                serde_json::to_writer(&mut *out, r)?;
                writeln!(out)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let mut header = vec!["person_id"];
            header.extend(DAILY_COLUMNS);
            header.extend([
                "work_s",
                "standard_work_s",
                "late_s",
                "early_leave_s",
                "absent_s",
                "missing_punches",
            ]);
            w.write_record(&header)?;
            for r in &reports {
                let mut row = vec![r.person_id.to_string()];
                row.extend(daily_row(r));
                let e = &r.day.calibrated.exceptions;
                row.extend(
                    [
                        r.day.work_s,
                        r.day.standard_work_s,
                        e.late.seconds,
                        e.early_leave.seconds,
                        e.absent.seconds,
                        i64::from(e.missing_punch.count),
                    ]
                    .map(|n| n.to_string()),
                );
                w.write_record(&row)?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut t = Table::new(&DAILY_COLUMNS);
            for r in &reports {
                t.row(daily_row(r));
            }
            if a.explain {
                t.write_with(out, |i, out| explain(&reports[i], out))?;
            } else {
                t.write(out)?;
            }
            if reports.is_empty() {
                writeln!(out, "(no days: nobody follows a rule on these dates)")?;
            }
        }
    }
    Ok(())
}

/// The day's audit trail under its row: slots, punches, calibrations.
fn explain(r: &DailyReport, out: &mut impl Write) -> std::io::Result<()> {
    let d = &r.day;
    for (i, s) in d.sections.iter().enumerate() {
        for (end, slot) in [("on", &s.on), ("off", &s.off)] {
            let o = &slot.original;
            let c = &slot.calibrated;
            let mut line = format!(
                "    section {} {end:<3} scheduled {}, punch {}: {}",
                i + 1,
                clock(d.date, Some(slot.scheduled)),
                clock(d.date, c.punch),
                slot_text(o.status, o.seconds)
            );
            if c.status != o.status || c.punch != o.punch {
                line += &format!(" -> {}", slot_text(c.status, c.seconds));
            }
            if c.make_up {
                line += " (make-up punch)";
            }
            for f in &c.flags {
                line += &format!(" [{}]", f.label());
            }
            writeln!(out, "{line}")?;
        }
    }
    for p in &d.punches {
        let used = match p.used {
            PunchUse::On { section } => format!("on, section {}", section + 1),
            PunchUse::Off { section } => format!("off, section {}", section + 1),
            PunchUse::Unused if d.sections.is_empty() => "recorded (no slots on this day)".into(),
            PunchUse::Unused => {
                "not used (outside the windows, or between the on and off punch)".into()
            }
            PunchUse::Merged => "merged into the punch before (within the merge gap)".into(),
            PunchUse::Refused => "refused by the rule (out of range, or photo missing)".into(),
        };
        let place = match p.place {
            crate::geo::Place::InRange => "",
            crate::geo::Place::OutOfRange => " out of range",
        };
        let device = p
            .device_sn
            .as_ref()
            .map_or(String::new(), |sn| format!(" {sn}"));
        writeln!(
            out,
            "    punch {} {}{device}{place}: {used}",
            clock(d.date, Some(p.local_time)),
            p.source,
        )?;
    }
    for c in &d.calibrations {
        writeln!(
            out,
            "    calibration {} by {} at {}: {} -> {} ({}){}",
            c.calibration_id,
            c.actor,
            c.at.format("%Y-%m-%d %H:%M:%SZ"),
            match c.target {
                CalibrationTarget::Day => "day".to_string(),
                CalibrationTarget::Slot { section, end } => format!(
                    "section {} {}",
                    section + 1,
                    if end == SlotEnd::On { "on" } else { "off" }
                ),
            },
            c.status.label(),
            c.reason,
            if c.superseded { " [superseded]" } else { "" }
        )?;
    }
    Ok(())
}

fn slot_text(status: Status, seconds: i64) -> String {
    if seconds > 0 {
        format!("{} {}", status.label(), duration(seconds))
    } else {
        status.label().into()
    }
}

const RAW_COLUMNS: [&str; 9] = [
    "local time",
    "zone",
    "person",
    "badge",
    "device",
    "verify",
    "source",
    "received",
    "punch id",
];

fn raw_row(r: &RawRow<'_>) -> Vec<String> {
    let p = r.punch;
    vec![
        p.local_time.format("%Y-%m-%d %H:%M:%S").to_string(),
        p.zone.to_string(),
        r.person
            .map_or_else(|| "(unknown badge)".into(), str::to_string),
        p.badge_number
            .as_ref()
            .map_or_else(|| "--".into(), |b| b.to_string()),
        p.device_sn
            .as_ref()
            .map_or_else(|| "--".into(), |s| s.to_string()),
        p.verify_mode
            .as_ref()
            .map_or_else(|| "--".into(), |v| format!("{v:?}").to_lowercase()),
        match &p.source {
            schemas::events::PunchSource::Device => "device".into(),
            schemas::events::PunchSource::Mobile => "mobile".into(),
            schemas::events::PunchSource::Import => "import".into(),
            schemas::events::PunchSource::MakeUp { approval_id } => {
                format!("make-up ({approval_id})")
            }
        },
        r.received.to_string(),
        p.punch_id.0.to_string(),
    ]
}

pub fn raw(
    book: &Book,
    a: &RawArgs,
    format: Format,
    out: &mut impl Write,
) -> Result<(), RenderError> {
    let rows: Vec<RawRow<'_>> = book
        .raw_rows()
        .into_iter()
        .filter(|r| a.from.is_none_or(|f| r.punch.local_time.date() >= f))
        .filter(|r| a.to.is_none_or(|t| r.punch.local_time.date() <= t))
        .filter(|r| {
            a.devices.is_empty()
                || r.punch
                    .device_sn
                    .as_ref()
                    .is_some_and(|s| a.devices.iter().any(|d| d == s.as_str()))
        })
        .filter(|r| {
            a.people.is_empty()
                || r.person_id
                    .is_some_and(|p| a.people.iter().any(|x| x == p.as_str()))
        })
        .collect();
    let rejected: Vec<_> = book
        .raw()
        .rejected
        .values()
        .filter(|r| a.devices.is_empty() || a.devices.iter().any(|d| d == r.record.sn.as_str()))
        .filter(|_| a.people.is_empty())
        .collect();
    match format {
        Format::Json => {
            for r in &rows {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({"record": "punch", "punch": r.punch, "person_id": r.person_id, "person": r.person, "received": r.received}),
                )?;
                writeln!(out)?;
            }
            for r in &rejected {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({"record": "rejected", "rejected": r.record, "received": r.received}),
                )?;
                writeln!(out)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let mut header = vec!["record"];
            header.extend(RAW_COLUMNS);
            header.extend(["reason", "raw"]);
            w.write_record(&header)?;
            for r in &rows {
                let mut row = vec!["punch".to_string()];
                row.extend(raw_row(r));
                row.extend([String::new(), r.punch.raw_line.clone().unwrap_or_default()]);
                w.write_record(&row)?;
            }
            for r in &rejected {
                let mut row = vec!["rejected".to_string()];
                row.extend(vec![String::new(); 4]);
                row.push(r.record.sn.to_string());
                row.extend([
                    String::new(),
                    String::new(),
                    r.received.to_string(),
                    String::new(),
                ]);
                row.push(format!("{:?}", r.record.reason));
                row.push(r.record.raw.clone());
                w.write_record(&row)?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut t = Table::new(&RAW_COLUMNS);
            for r in &rows {
                t.row(raw_row(r));
            }
            t.write(out)?;
            writeln!(out, "{} punches", rows.len())?;
            if !rejected.is_empty() {
                writeln!(out, "\nrejected device records")?;
                let mut t = Table::new(&["device", "reason", "received", "raw line"]);
                for r in &rejected {
                    t.row(vec![
                        r.record.sn.to_string(),
                        format!("{:?}", r.record.reason),
                        r.received.to_string(),
                        r.record.raw.escape_debug().to_string(),
                    ]);
                }
                t.write(out)?;
                writeln!(out, "{} rejected", rejected.len())?;
            }
        }
    }
    Ok(())
}
