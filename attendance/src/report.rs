//! `attendance report`: asks the running query service (NATS request-reply, subject
//! `lc.q.v1.<tenant>.<query>`) and prints or exports what it answers. Nothing is
//! replayed here; `attendance replay` does that.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use projections::render::duration;
use projections::table::Table;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// NATS server or cluster (comma-separated seeds).
    #[arg(
        long,
        global = true,
        env = "LEDGERCLOCK_NATS",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats: String,
    /// The tenant (company).
    #[arg(
        long,
        global = true,
        env = "LEDGERCLOCK_TENANT",
        default_value = "demo"
    )]
    tenant: String,
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of standard output (needed for xlsx at a terminal).
    #[arg(long, short = 'o', global = true)]
    output: Option<PathBuf>,
    /// While the service says "rebuilding" (a worker starting or taking a partition
    /// over), ask again for up to this many seconds before giving up (exit 75).
    #[arg(long, global = true, default_value_t = 15)]
    wait: u64,
    #[command(subcommand)]
    report: Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object a line, every field the service answered.
    Json,
    /// Comma-separated, with a BOM so that Excel on a Chinese Windows reads UTF-8.
    Csv,
    /// An Excel workbook, one sheet named as WeCom names its export, header frozen.
    Xlsx,
}

#[derive(Debug, Subcommand)]
pub enum Report {
    /// Daily report (每日统计): each person's days, in progress until they end.
    Daily {
        /// Only these people (repeatable).
        #[arg(long = "person")]
        people: Vec<String>,
        /// This department and the ones under it.
        #[arg(long)]
        department: Option<String>,
        /// First date (default: each person's today, in their rule's zone).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last date, inclusive (default: --from).
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Each day in full (sections slot by slot, punches with their roles,
        /// calibrations), for `--format json`; the table's columns are the same.
        #[arg(long)]
        detail: bool,
    },
    /// Monthly report (月度汇总): WeCom's month data for each person.
    Monthly {
        /// YYYY-MM (default: the month of each person's today, in their rule's zone).
        #[arg(long)]
        month: Option<String>,
        #[arg(long = "person")]
        people: Vec<String>,
        #[arg(long)]
        department: Option<String>,
    },
    /// Raw records (原始记录) of a device or a person, and a device's rejected lines.
    Raw {
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        person: Option<String>,
        /// First local date (default: today where the device stands, or in the
        /// person's rule's zone).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last local date, inclusive (default: --from).
        #[arg(long)]
        to: Option<NaiveDate>,
    },
    /// Devices: binding, online or offline, firmware, counts, commands pending.
    Devices,
    /// People, with their departments and badge numbers.
    People,
    /// One person-day: the verdict slot by slot and every event that made it.
    Explain {
        #[arg(long)]
        person: String,
        #[arg(long)]
        date: NaiveDate,
    },
    /// The daily report as it stood at a past time (events recorded by then).
    AsOf {
        #[arg(long)]
        at: DateTime<Utc>,
        #[arg(long = "person", required = true)]
        people: Vec<String>,
        #[arg(long)]
        from: NaiveDate,
        #[arg(long)]
        to: Option<NaiveDate>,
    },
    /// What changed in the daily report between two times, and the events recorded
    /// between them.
    Diff {
        #[arg(long)]
        since: DateTime<Utc>,
        /// Default: now.
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        #[arg(long = "person", required = true)]
        people: Vec<String>,
        #[arg(long)]
        from: NaiveDate,
        #[arg(long)]
        to: Option<NaiveDate>,
    },
}

/// The service refused or could not answer: its code and reason.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ServiceError {
    pub code: u16,
    pub reason: String,
}

impl ServiceError {
    /// sysexits: 64 bad request, 65 unknown tenant, person, department or device,
    /// 75 rebuilding (try again), 69 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self.code {
            400 => 64,
            404 => 65,
            503 => 75,
            _ => 69,
        }
    }
}

/// Asks one query, following pages; returns the rows (and the last answer's fields).
pub async fn ask(
    client: &async_nats::Client,
    tenant: &str,
    query: &str,
    mut body: Value,
) -> anyhow::Result<(Vec<Value>, Value)> {
    let subject = format!("lc.q.v1.{tenant}.{query}");
    let mut rows = Vec::new();
    loop {
        let request = async_nats::Request::new()
            .payload(serde_json::to_vec(&body)?.into())
            .timeout(Some(Duration::from_secs(60)));
        let reply = client.send_request(subject.clone(), request).await.map_err(|e| {
            let reason = match e.kind() {
                async_nats::client::RequestErrorKind::NoResponders => {
                    "no query service answers on NATS: start `attendance up` (or `attendance projections`)".to_owned()
                }
                async_nats::client::RequestErrorKind::TimedOut => {
                    "the query service did not answer within 60 s".to_owned()
                }
                _ => format!("cannot ask the query service: {e}"),
            };
            ServiceError { code: 503, reason }
        })?;
        if let Some(h) = &reply.headers
            && let Some(code) = h.get(async_nats::service::NATS_SERVICE_ERROR_CODE)
        {
            return Err(ServiceError {
                code: code.as_str().parse().unwrap_or(500),
                reason: h
                    .get(async_nats::service::NATS_SERVICE_ERROR)
                    .map(|v| ledger::subjects::header_text(v.as_str()))
                    .unwrap_or_default(),
            }
            .into());
        }
        let answer: Value = serde_json::from_slice(&reply.payload)
            .context("the query service answered something that is not JSON")?;
        if let Some(r) = answer.get("rows").and_then(Value::as_array) {
            rows.extend(r.iter().cloned());
        } else {
            return Ok((vec![answer.clone()], answer));
        }
        match answer.get("next_offset").and_then(Value::as_u64) {
            Some(next) => body["offset"] = json!(next),
            None => return Ok((rows, answer)),
        }
    }
}

pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    schemas::ids::TenantId::parse(&args.tenant)?;
    let client = async_nats::ConnectOptions::new()
        .name("attendance report")
        .connection_timeout(Duration::from_secs(5))
        .connect(
            args.nats
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .as_slice(),
        )
        .await
        .map_err(|e| {
            ledger::LedgerError::Unavailable(format!("cannot connect to {}: {e}", args.nats))
        })?;
    let (query, body, kind) = match &args.report {
        Report::Daily {
            people,
            department,
            from,
            to,
            detail,
        } => (
            "daily",
            json!({"people": people, "department": department, "from": from, "to": to, "detail": detail}),
            Kind::Daily,
        ),
        Report::Monthly {
            month,
            people,
            department,
        } => (
            "monthly",
            json!({"month": month, "people": people, "department": department}),
            Kind::Monthly,
        ),
        Report::Raw {
            device,
            person,
            from,
            to,
        } => (
            "raw",
            json!({"device": device, "person": person, "from": from, "to": to}),
            Kind::Raw,
        ),
        Report::Devices => ("devices", json!({}), Kind::Devices),
        Report::People => ("people", json!({}), Kind::People),
        Report::Explain { person, date } => (
            "explain",
            json!({"person": person, "date": date}),
            Kind::Explain,
        ),
        Report::AsOf {
            at,
            people,
            from,
            to,
        } => (
            "as_of",
            json!({"at": at, "people": people, "from": from, "to": to}),
            Kind::AsOf,
        ),
        Report::Diff {
            since,
            until,
            people,
            from,
            to,
        } => (
            "diff",
            json!({"since": since, "until": until, "people": people, "from": from, "to": to}),
            Kind::Diff,
        ),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(args.wait);
    let (rows, answer) = loop {
        match ask(&client, &args.tenant, query, body.clone()).await {
            Err(e)
                if e.downcast_ref::<ServiceError>()
                    .is_some_and(|s| s.code == 503)
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => break other?,
        }
    };
    if answer.get("rebuilding") == Some(&json!(true)) {
        eprintln!(
            "attendance: the views are still being rebuilt (they reflect stream sequence {}); rows may be missing",
            answer["sequence"]
        );
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => {
            if args.format == Format::Xlsx && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!(ledger::LedgerError::Rejected(
                    "an xlsx workbook is binary: give --output FILE.xlsx".into()
                ));
            }
            Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
        }
    };
    match (args.format, kind) {
        (Format::Json, Kind::Explain) => {
            serde_json::to_writer_pretty(&mut out, &rows.first().cloned().unwrap_or(Value::Null))?;
            writeln!(out)?;
        }
        (Format::Json, Kind::Diff) => {
            // Every page's rows under the answer's own fields, as one document.
            let mut whole = answer.clone();
            whole["rows"] = Value::Array(rows.clone());
            whole["next_offset"] = Value::Null;
            serde_json::to_writer_pretty(&mut out, &whole)?;
            writeln!(out)?;
        }
        (Format::Json, _) => {
            for r in &rows {
                serde_json::to_writer(&mut out, r)?;
                writeln!(out)?;
            }
        }
        (_, Kind::Explain) => explain(&rows, &mut out)?,
        (_, Kind::Diff) => diff(&rows, &answer, &mut out)?,
        (format, kind) => {
            let (header, cells) = columns(kind, &rows);
            match format {
                Format::Table => {
                    let mut short: Vec<usize> = kind.table_columns(&header);
                    // Columns only a closed month fills are shown where some row has one.
                    for name in kind.when_filled() {
                        if let Some(i) = header.iter().position(|h| h == name)
                            && cells.iter().any(|row| !row[i].to_text().is_empty())
                        {
                            short.push(i);
                        }
                    }
                    let mut t = Table::new(
                        &short
                            .iter()
                            .map(|i| header[*i].as_str())
                            .collect::<Vec<_>>(),
                    );
                    for row in &cells {
                        t.row(short.iter().map(|i| row[*i].to_text()).collect());
                    }
                    t.write(&mut out)?;
                }
                Format::Csv => {
                    out.write_all("\u{feff}".as_bytes())?;
                    let mut w = csv::Writer::from_writer(&mut out);
                    w.write_record(&header)?;
                    for row in &cells {
                        w.write_record(row.iter().map(Cell::to_text))?;
                    }
                    w.flush()?;
                }
                Format::Xlsx => {
                    let bytes = xlsx(kind, &header, &cells)?;
                    out.write_all(&bytes)?;
                }
                Format::Json => unreachable!("handled above"),
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Daily,
    Monthly,
    Raw,
    Devices,
    People,
    Explain,
    AsOf,
    Diff,
}

impl Kind {
    /// WeCom's export sheet names.
    fn sheet(self) -> &'static str {
        match self {
            Kind::Daily | Kind::AsOf => "每日统计",
            Kind::Monthly => "月度汇总",
            Kind::Raw => "原始记录",
            Kind::Devices => "设备",
            Kind::People => "人员",
            Kind::Explain | Kind::Diff => "说明",
        }
    }

    /// Columns a terminal table adds when some row fills them.
    fn when_filled(self) -> &'static [&'static str] {
        match self {
            Kind::Daily | Kind::AsOf => &["closed period", "pending adjustment"],
            Kind::Monthly => &["closed at", "adjustments", "work adjustment (s)"],
            _ => &[],
        }
    }

    /// The columns a terminal table shows (all go to CSV and XLSX).
    fn table_columns(self, header: &[String]) -> Vec<usize> {
        let want: &[&str] = match self {
            Kind::Daily | Kind::AsOf => &[
                "date",
                "person",
                "department",
                "rule",
                "day type",
                "earliest",
                "latest",
                "punches",
                "work",
                "summary",
                "original status",
                "calibrated status",
            ],
            Kind::Monthly => &[
                "person",
                "department",
                "workdays",
                "normal days",
                "exception days",
                "rest days",
                "work",
                "standard",
                "calibrated late",
                "calibrated missing punches",
                "calibrated absent",
                "overtime (workdays)",
            ],
            Kind::Raw => &[
                "date",
                "time",
                "person",
                "department",
                "device",
                "device SN",
                "verify mode",
                "source",
                "received",
                "rejected line",
                "reason",
            ],
            Kind::Devices => &[
                "SN",
                "name",
                "bound",
                "online",
                "last seen",
                "firmware",
                "users",
                "fingerprints",
                "faces",
                "records",
                "roster",
                "pending commands",
                "failed commands",
            ],
            Kind::People => &[
                "person id",
                "person",
                "badge number",
                "department",
                "hired on",
                "left on",
            ],
            Kind::Explain | Kind::Diff => &[],
        };
        want.iter()
            .filter_map(|w| header.iter().position(|h| h == w))
            .collect()
    }
}

/// A cell: text, or a number (durations are seconds, with a readable column beside).
#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

impl Cell {
    fn to_text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Number(n) => {
                if n.fract() == 0.0 {
                    format!("{}", *n as i64)
                } else {
                    format!("{n}")
                }
            }
            Cell::Empty => String::new(),
        }
    }
}

fn text(v: &Value) -> Cell {
    match v {
        Value::Null => Cell::Empty,
        Value::String(s) => Cell::Text(s.clone()),
        Value::Bool(b) => Cell::Text(if *b { "yes".into() } else { "no".into() }),
        Value::Number(n) => Cell::Number(n.as_f64().unwrap_or_default()),
        other => Cell::Text(other.to_string()),
    }
}

fn num(v: &Value) -> Cell {
    v.as_f64().map_or(Cell::Empty, Cell::Number)
}

fn readable(v: &Value) -> Cell {
    v.as_i64().map_or(Cell::Empty, |s| Cell::Text(duration(s)))
}

fn time_of(v: &Value) -> Cell {
    // "2026-11-16T08:55:00" → "08:55:00"
    v.as_str().map_or(Cell::Empty, |s| {
        Cell::Text(s.split('T').nth(1).unwrap_or(s).to_owned())
    })
}

fn status_label(s: &str) -> &str {
    match s {
        "pending" => "in progress",
        "early_leave" => "early leave",
        "missing_punch" => "missing punch",
        "location_exception" => "location exception",
        "device_exception" => "device exception",
        "field_work" => "field work",
        "on_leave" => "on leave",
        "business_trip" => "business trip",
        other => other,
    }
}

/// A verdict in words, as `attendance replay` prints it: `late 5h25m, absent 9h`.
fn verdict(v: &Value) -> String {
    let e = &v["exceptions"];
    let parts: Vec<String> = v["status"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| {
            let key = match s {
                "late" => "late",
                "early_leave" => "early_leave",
                "absent" => "absent",
                "missing_punch" => "missing_punch",
                _ => "",
            };
            let t = &e[key];
            match key {
                "missing_punch" if t["count"].as_u64() > Some(1) => {
                    format!("missing punch x{}", t["count"])
                }
                "late" | "early_leave" | "absent" => {
                    format!(
                        "{} {}",
                        status_label(s),
                        duration(t["seconds"].as_i64().unwrap_or(0))
                    )
                }
                _ => status_label(s).to_owned(),
            }
        })
        .collect();
    parts.join(", ")
}

fn tally(cells: &mut Vec<Cell>, header: &mut Vec<String>, first: bool, name: &str, t: &Value) {
    if first {
        header.push(format!("{name} count"));
        header.push(format!("{name} (s)"));
        header.push(name.to_owned());
    }
    cells.push(num(&t["count"]));
    cells.push(num(&t["seconds"]));
    cells.push(readable(&t["seconds"]));
}

fn columns(kind: Kind, rows: &[Value]) -> (Vec<String>, Vec<Vec<Cell>>) {
    let mut header: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let first = i == 0;
        let mut c: Vec<Cell> = Vec::new();
        let mut h: Vec<String> = Vec::new();
        let col = |h: &mut Vec<String>, c: &mut Vec<Cell>, name: &str, cell: Cell| {
            if first {
                h.push(name.to_owned());
            }
            c.push(cell);
        };
        match kind {
            Kind::Daily | Kind::AsOf => {
                let d = &r["day"];
                col(&mut h, &mut c, "date", text(&r["date"]));
                col(&mut h, &mut c, "person id", text(&r["person_id"]));
                col(&mut h, &mut c, "person", text(&r["person"]));
                col(&mut h, &mut c, "badge number", text(&r["badge_number"]));
                col(&mut h, &mut c, "department", text(&r["department"]));
                let rule = if d.is_null() {
                    Cell::Text("none".into())
                } else {
                    Cell::Text(format!(
                        "{} v{}",
                        d["rule"]["name"].as_str().unwrap_or(""),
                        d["rule"]["version"]
                    ))
                };
                col(&mut h, &mut c, "rule", rule);
                col(&mut h, &mut c, "day type", text(&d["day_type"]));
                col(&mut h, &mut c, "shift", text(&d["shift"]["name"]));
                col(&mut h, &mut c, "earliest", time_of(&d["earliest"]));
                col(&mut h, &mut c, "latest", time_of(&d["latest"]));
                col(&mut h, &mut c, "punches", num(&d["punch_count"]));
                col(&mut h, &mut c, "work (s)", num(&d["work_s"]));
                col(&mut h, &mut c, "work", readable(&d["work_s"]));
                col(&mut h, &mut c, "standard (s)", num(&d["standard_work_s"]));
                col(&mut h, &mut c, "standard", readable(&d["standard_work_s"]));
                let summary = r.get("summary_label").map_or(Cell::Empty, text);
                col(&mut h, &mut c, "summary", summary);
                for which in ["original", "calibrated"] {
                    let status = if d.is_null() {
                        Cell::Empty
                    } else {
                        Cell::Text(verdict(&d[which]))
                    };
                    col(&mut h, &mut c, &format!("{which} status"), status);
                }
                for (which, v) in [
                    ("original", &d["original"]),
                    ("calibrated", &d["calibrated"]),
                ] {
                    for (name, key) in [
                        ("late", "late"),
                        ("early leave", "early_leave"),
                        ("missing punches", "missing_punch"),
                        ("absent", "absent"),
                    ] {
                        tally(
                            &mut c,
                            &mut h,
                            first,
                            &format!("{which} {name}"),
                            &v["exceptions"][key],
                        );
                    }
                }
                let approvals: Vec<String> = d["approvals"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        let kind = a["kind"].as_str().map(str::to_owned).unwrap_or_else(|| {
                            a["kind"]
                                .as_object()
                                .and_then(|o| o.keys().next().cloned())
                                .unwrap_or_default()
                        });
                        format!(
                            "{} {}",
                            kind.replace('_', " "),
                            duration(a["seconds"].as_i64().unwrap_or(0))
                        )
                    })
                    .collect();
                col(
                    &mut h,
                    &mut c,
                    "approvals",
                    Cell::Text(approvals.join("; ")),
                );
                col(
                    &mut h,
                    &mut c,
                    "overtime (s)",
                    num(&d["overtime"]["seconds"]),
                );
                col(&mut h, &mut c, "in progress", text(&d["in_progress"]));
                // A day of a month closed for payroll: the row is the day as payroll has
                // it; a change since is the pending adjustment.
                col(
                    &mut h,
                    &mut c,
                    "closed period",
                    text(&r["closed"]["period"]),
                );
                col(
                    &mut h,
                    &mut c,
                    "pending adjustment",
                    text(&r["closed"]["pending"]["summary_label"]),
                );
            }
            Kind::Monthly => {
                col(&mut h, &mut c, "month", text(&r["month"]));
                col(&mut h, &mut c, "person id", text(&r["person_id"]));
                col(&mut h, &mut c, "person", text(&r["person"]));
                col(&mut h, &mut c, "badge number", text(&r["badge_number"]));
                col(&mut h, &mut c, "department", text(&r["department"]));
                for (name, key) in [
                    ("days", "days"),
                    ("workdays", "workdays"),
                    ("normal days", "normal_days"),
                    ("exception days", "exception_days"),
                    ("rest days", "rest_days"),
                    ("holidays", "holidays"),
                    ("days in progress", "in_progress_days"),
                ] {
                    col(&mut h, &mut c, name, num(&r[key]));
                }
                col(&mut h, &mut c, "work (s)", num(&r["work_s"]));
                col(&mut h, &mut c, "work", readable(&r["work_s"]));
                col(&mut h, &mut c, "standard (s)", num(&r["standard_s"]));
                col(&mut h, &mut c, "standard", readable(&r["standard_s"]));
                for which in ["original", "calibrated"] {
                    for (name, key) in [
                        ("late", "late"),
                        ("early leave", "early_leave"),
                        ("missing punches", "missing_punch"),
                        ("absent", "absent"),
                        ("location exceptions", "location"),
                        ("device exceptions", "device"),
                    ] {
                        tally(
                            &mut c,
                            &mut h,
                            first,
                            &format!("{which} {name}"),
                            &r[which][key],
                        );
                    }
                }
                for (name, key) in [
                    ("leave", "leave"),
                    ("business trips", "business_trip"),
                    ("outings", "outing"),
                    ("make-up punches", "make_up"),
                    ("field work", "field_work"),
                    ("overtime approvals", "overtime"),
                ] {
                    col(
                        &mut h,
                        &mut c,
                        &format!("{name} count"),
                        num(&r["approvals"][key]["count"]),
                    );
                    col(
                        &mut h,
                        &mut c,
                        &format!("{name} (s)"),
                        num(&r["approvals"][key]["seconds"]),
                    );
                }
                for (name, key) in [
                    ("overtime (workdays)", "overtime_workday_s"),
                    ("overtime (rest days)", "overtime_rest_day_s"),
                    ("overtime (holidays)", "overtime_holiday_s"),
                ] {
                    col(&mut h, &mut c, &format!("{name} (s)"), num(&r[key]));
                    col(&mut h, &mut c, name, readable(&r[key]));
                }
                // A closed month's figures are the month as it closed; its adjustments
                // are earlier closed days carried into it, or (the open month) those
                // the next close will carry.
                col(&mut h, &mut c, "closed at", text(&r["closed"]["closed_at"]));
                let adjustments = r["adjustments"].as_array().map_or(&[][..], Vec::as_slice);
                let state = |a: &Value| a["state"].as_str().unwrap_or("").to_owned();
                let listed: Vec<String> = adjustments
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {}→{} ({})",
                            a["date"].as_str().unwrap_or(""),
                            a["before"]["summary_label"].as_str().unwrap_or("无"),
                            a["after"]["summary_label"].as_str().unwrap_or("无"),
                            state(a)
                        )
                    })
                    .collect();
                col(&mut h, &mut c, "adjustments", Cell::Text(listed.join("; ")));
                let work: i64 = adjustments
                    .iter()
                    .filter_map(|a| a["work_s_change"].as_i64())
                    .sum();
                let overtime: i64 = adjustments
                    .iter()
                    .filter_map(|a| a["overtime_s_change"].as_i64())
                    .sum();
                let sum = |n: i64| {
                    if adjustments.is_empty() {
                        Cell::Empty
                    } else {
                        num(&json!(n))
                    }
                };
                col(&mut h, &mut c, "work adjustment (s)", sum(work));
                col(&mut h, &mut c, "overtime adjustment (s)", sum(overtime));
            }
            Kind::Raw => {
                col(&mut h, &mut c, "date", text(&r["date"]));
                col(&mut h, &mut c, "time", text(&r["time"]));
                col(&mut h, &mut c, "person id", text(&r["person_id"]));
                col(&mut h, &mut c, "person", text(&r["person"]));
                col(&mut h, &mut c, "department", text(&r["department"]));
                col(&mut h, &mut c, "badge number", text(&r["badge_number"]));
                col(&mut h, &mut c, "device", text(&r["device_name"]));
                col(&mut h, &mut c, "device SN", text(&r["device_sn"]));
                col(&mut h, &mut c, "verify mode", text(&r["verify_mode"]));
                let source = r["source"].as_str().map(str::to_owned).or_else(|| {
                    r["source"]
                        .as_object()
                        .and_then(|o| o.keys().next().cloned())
                });
                col(
                    &mut h,
                    &mut c,
                    "source",
                    source.map_or(Cell::Empty, Cell::Text),
                );
                col(&mut h, &mut c, "received", num(&r["received"]));
                col(&mut h, &mut c, "rejected line", text(&r["rejected"]));
                col(&mut h, &mut c, "reason", text(&r["reason"]));
                col(&mut h, &mut c, "sequence", num(&r["sequence"]));
            }
            Kind::Devices => {
                let s = &r["status"];
                col(&mut h, &mut c, "SN", text(&r["sn"]));
                col(&mut h, &mut c, "name", text(&r["name"]));
                col(&mut h, &mut c, "bound", text(&r["bound"]));
                col(&mut h, &mut c, "online", text(&r["online"]));
                col(&mut h, &mut c, "last seen", text(&r["last_seen"]));
                col(&mut h, &mut c, "zone", text(&r["zone"]));
                col(&mut h, &mut c, "firmware", text(&s["firmware"]));
                col(&mut h, &mut c, "users", num(&s["user_count"]));
                col(&mut h, &mut c, "fingerprints", num(&s["fingerprint_count"]));
                col(&mut h, &mut c, "faces", num(&s["face_count"]));
                col(&mut h, &mut c, "records", num(&s["record_count"]));
                col(&mut h, &mut c, "roster", num(&r["roster_size"]));
                col(
                    &mut h,
                    &mut c,
                    "enrolled people",
                    num(&r["enrolled_people"]),
                );
                col(&mut h, &mut c, "punches", num(&r["punches"]));
                col(&mut h, &mut c, "rejected lines", num(&r["rejected"]));
                col(
                    &mut h,
                    &mut c,
                    "pending commands",
                    Cell::Number(r["commands_pending"].as_array().map_or(0, Vec::len) as f64),
                );
                col(
                    &mut h,
                    &mut c,
                    "failed commands",
                    Cell::Number(r["commands_failed"].as_array().map_or(0, Vec::len) as f64),
                );
            }
            Kind::People => {
                col(&mut h, &mut c, "person id", text(&r["person_id"]));
                col(&mut h, &mut c, "person", text(&r["person"]));
                col(&mut h, &mut c, "badge number", text(&r["badge_number"]));
                col(&mut h, &mut c, "department", text(&r["department"]));
                col(&mut h, &mut c, "hired on", text(&r["hired_on"]));
                col(&mut h, &mut c, "left on", text(&r["left_on"]));
            }
            Kind::Explain | Kind::Diff => {}
        }
        if first {
            header = h;
        }
        out.push(c);
    }
    if rows.is_empty() {
        // The header alone: compute it from an empty row.
        if let Some((h, _)) = Some(columns(kind, &[json!({})])) {
            header = h;
        }
    }
    (header, out)
}

fn xlsx(kind: Kind, header: &[String], rows: &[Vec<Cell>]) -> anyhow::Result<Vec<u8>> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(kind.sheet())?;
    let bold = XFormat::new().set_bold();
    for (i, h) in header.iter().enumerate() {
        sheet.write_string_with_format(0, i as u16, h, &bold)?;
        sheet.set_column_width(i as u16, (h.chars().count() as f64 + 2.0).max(10.0))?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (i, cell) in row.iter().enumerate() {
            match cell {
                Cell::Text(s) => {
                    sheet.write_string(r, i as u16, s)?;
                }
                Cell::Number(n) => {
                    sheet.write_number(r, i as u16, *n)?;
                }
                Cell::Empty => {}
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(book.save_to_buffer()?)
}

fn explain(rows: &[Value], out: &mut impl Write) -> anyhow::Result<()> {
    let Some(r) = rows.first() else {
        return Ok(());
    };
    let d = &r["day"];
    if d.is_null() {
        writeln!(
            out,
            "{} {} ({}): {}",
            r["date"].as_str().unwrap_or(""),
            r["person"].as_str().unwrap_or(""),
            r["person_id"].as_str().unwrap_or(""),
            r["verdict"].as_str().unwrap_or("no day"),
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{} {} ({}), {}: {} — rule {} v{}, {}",
        r["date"].as_str().unwrap_or(""),
        r["person"].as_str().unwrap_or(""),
        r["person_id"].as_str().unwrap_or(""),
        r["department"].as_str().unwrap_or(""),
        r["summary_label"].as_str().unwrap_or(""),
        d["rule"]["name"].as_str().unwrap_or(""),
        d["rule"]["version"],
        d["day_type"].as_str().unwrap_or(""),
    )?;
    writeln!(out, "  original:   {}", verdict(&d["original"]))?;
    writeln!(out, "  calibrated: {}", verdict(&d["calibrated"]))?;
    for (i, s) in d["sections"].as_array().into_iter().flatten().enumerate() {
        for slot in ["on", "off"] {
            let x = &s[slot];
            writeln!(
                out,
                "  section {} {slot:<3} scheduled {}  punch {}  original {}  calibrated {}",
                i + 1,
                time_of(&x["scheduled"]).to_text(),
                time_of(&x["original"]["punch"])
                    .to_text()
                    .chars()
                    .chain(std::iter::repeat(' '))
                    .take(8)
                    .collect::<String>(),
                status_label(x["original"]["status"].as_str().unwrap_or("")),
                status_label(x["calibrated"]["status"].as_str().unwrap_or("")),
            )?;
        }
    }
    writeln!(out, "  events:")?;
    let mut t = Table::new(&[
        "  sequence",
        "kind",
        "actor",
        "recorded at",
        "event id",
        "fact",
    ]);
    for e in r["events"].as_array().into_iter().flatten() {
        t.row(vec![
            format!("  {}", e["sequence"]),
            e["kind"].as_str().unwrap_or("").to_owned(),
            e["actor"].as_str().unwrap_or("").to_owned(),
            e["recorded_at"].as_str().unwrap_or("").to_owned(),
            e["event_id"].as_str().unwrap_or("").to_owned(),
            e["fact"].as_str().unwrap_or("").to_owned(),
        ]);
    }
    t.write(out)?;
    Ok(())
}

fn diff(rows: &[Value], answer: &Value, out: &mut impl Write) -> anyhow::Result<()> {
    let of = |kind: &str| -> Vec<&Value> { rows.iter().filter(|r| r["row"] == kind).collect() };
    let changed = of("changed");
    writeln!(
        out,
        "{} day(s) changed between {} and {}:",
        changed.len(),
        answer["since"].as_str().unwrap_or(""),
        answer["until"].as_str().unwrap_or("")
    )?;
    for c in &changed {
        let say = |v: &Value| {
            if v.is_null() {
                "(no day)".to_owned()
            } else {
                let d = &v["day"];
                format!(
                    "{} / calibrated {}",
                    verdict(&d["original"]),
                    verdict(&d["calibrated"])
                )
            }
        };
        writeln!(
            out,
            "  {} {}: {}  →  {}",
            c["date"].as_str().unwrap_or(""),
            c["person_id"].as_str().unwrap_or(""),
            say(&c["before"]),
            say(&c["after"])
        )?;
    }
    let events = of("event");
    writeln!(out, "{} event(s) recorded between them:", events.len())?;
    for e in &events {
        writeln!(
            out,
            "  {:>8}  {}  {}  {}  {}",
            e["sequence"],
            e["recorded_at"].as_str().unwrap_or(""),
            e["kind"].as_str().unwrap_or(""),
            e["actor"].as_str().unwrap_or(""),
            e["event_id"].as_str().unwrap_or("")
        )?;
    }
    writeln!(
        out,
        "(replayed {} events in {} ms for the last page)",
        answer["cost"]["events_read"], answer["cost"]["millis"]
    )?;
    Ok(())
}
