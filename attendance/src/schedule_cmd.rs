//! `attendance admin shift|schedule`: named shifts, schedules by date, and the schedule
//! sheet (XLSX or CSV, one row a person, one column a date, a shift's name or 休 in a
//! cell) imported whole or not at all, and exported in the same shape.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use commands::State;
use commands::schedules::{ScheduleCommand, Schedules, Sheet};
use futures::StreamExt;
use ledger::Ledger;
use schemas::events::ScheduledDay;
use schemas::ids::{RuleId, TenantId};

use crate::command_cli::Caller;
use crate::rules_cmd::{BadArgument, DayArgs, work_day};

#[derive(Debug, Subcommand)]
pub enum ShiftCommand {
    /// A named shift (班次), e.g. --section 22:00-06:00 for a night shift. A shift is
    /// defined once: past days keep the shift they were judged by.
    Define(DefineShiftArgs),
}

#[derive(Debug, Args)]
pub struct DefineShiftArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    id: String,
    /// The name schedule sheets use for it.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    day: DayArgs,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleArgs {
    /// A person's shifts on dates: --day 2026-12-07=day --day 2026-12-08=休.
    Set(SetArgs),
    /// A schedule sheet (.xlsx or .csv): the first column the person (账号), optional
    /// 姓名 / 部门 columns, then a column a date; a cell a shift's name or id, 休 for
    /// rest, empty to leave the day as it is. Every bad cell is reported by row and
    /// column, and nothing is applied unless the whole sheet is valid.
    Import(ImportArgs),
    /// The schedule of a shift rule over dates, as a sheet (.xlsx or .csv) to edit and
    /// import again.
    Export(ExportArgs),
    /// Each person's schedule of one month again in another, day of month for day of
    /// month (复制上月排班).
    CopyMonth(CopyMonthArgs),
    /// A repeating cycle of shifts (两班倒, 三班倒): --days day,night,休.
    DefineCycle(DefineCycleArgs),
    /// A person follows a cycle from a date (the cycle's first day) on.
    AssignCycle(AssignCycleArgs),
    /// An approved shift swap (调班) with another person on a date, or with another of
    /// one's own days.
    Swap(SwapArgs),
}

#[derive(Debug, Args)]
pub struct CopyMonthArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    rule: String,
    /// YYYY-MM
    #[arg(long)]
    from: String,
    /// YYYY-MM
    #[arg(long)]
    to: String,
}

#[derive(Debug, Args)]
pub struct DefineCycleArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    id: String,
    #[arg(long)]
    rule: String,
    #[arg(long)]
    name: String,
    /// Shift ids or 休, comma-separated, one a day of the cycle.
    #[arg(long, value_delimiter = ',')]
    days: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AssignCycleArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    cycle: String,
    #[arg(long)]
    person: String,
    #[arg(long)]
    from: NaiveDate,
    #[arg(long)]
    until: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct SwapArgs {
    #[command(flatten)]
    common: Caller,
    /// The approval's id.
    #[arg(long)]
    id: String,
    #[arg(long)]
    rule: String,
    #[arg(long)]
    person: String,
    #[arg(long)]
    date: NaiveDate,
    /// Swap with this person's shift that day.
    #[arg(
        long,
        conflicts_with = "with_date",
        required_unless_present = "with_date"
    )]
    with_person: Option<String>,
    /// Swap with one's own shift of this date.
    #[arg(long)]
    with_date: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    common: Caller,
    /// The shift rule.
    #[arg(long)]
    rule: String,
    #[arg(long)]
    person: String,
    /// DATE=SHIFT (or DATE=休 / DATE=rest); repeatable.
    #[arg(long = "day", required = true)]
    days: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    rule: String,
    #[arg(long)]
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    rule: String,
    #[arg(long)]
    from: NaiveDate,
    #[arg(long)]
    to: NaiveDate,
    /// .xlsx or .csv
    #[arg(long)]
    output: PathBuf,
}

fn bad(s: impl Into<String>) -> anyhow::Error {
    BadArgument(s.into()).into()
}

pub async fn shift(c: ShiftCommand) -> anyhow::Result<()> {
    let ShiftCommand::Define(a) = c;
    let cmd = ScheduleCommand::DefineShift {
        shift_id: a.id.as_str().into(),
        name: a.name.clone(),
        day: work_day(&a.day)?,
    };
    a.common.send(cmd).await
}

pub async fn schedule(c: ScheduleArgs) -> anyhow::Result<()> {
    match c {
        ScheduleArgs::Set(a) => {
            let days = a
                .days
                .iter()
                .map(|d| {
                    let (date, shift) = d
                        .split_once('=')
                        .ok_or_else(|| bad(format!("--day {d:?}: DATE=SHIFT")))?;
                    let date = date
                        .trim()
                        .parse::<NaiveDate>()
                        .map_err(|_| bad(format!("--day {d:?}: the date is YYYY-MM-DD")))?;
                    let shift = shift.trim();
                    Ok(ScheduledDay {
                        date,
                        shift: (!commands::schedules::REST.contains(&shift)).then(|| shift.into()),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let cmd = ScheduleCommand::Assign {
                rule_id: a.rule.as_str().into(),
                person_id: a.person.as_str().into(),
                days,
            };
            a.common.send(cmd).await
        }
        ScheduleArgs::Import(a) => {
            let sheet = read_sheet(&a.file)?;
            let cmd = ScheduleCommand::Import {
                rule_id: a.rule.as_str().into(),
                sheet,
            };
            a.common.send(cmd).await
        }
        ScheduleArgs::CopyMonth(a) => {
            let cmd = ScheduleCommand::CopyMonth {
                rule_id: a.rule.as_str().into(),
                from: a.from.clone(),
                to: a.to.clone(),
            };
            a.common.send(cmd).await
        }
        ScheduleArgs::DefineCycle(a) => {
            let cmd = ScheduleCommand::DefineCycle {
                cycle_id: a.id.as_str().into(),
                rule_id: a.rule.as_str().into(),
                name: a.name.clone(),
                days: a
                    .days
                    .iter()
                    .map(|d| {
                        let d = d.trim();
                        (!commands::schedules::REST.contains(&d)).then(|| d.into())
                    })
                    .collect(),
            };
            a.common.send(cmd).await
        }
        ScheduleArgs::AssignCycle(a) => {
            let cmd = ScheduleCommand::AssignCycle {
                cycle_id: a.cycle.as_str().into(),
                person_id: a.person.as_str().into(),
                from: a.from,
                until: a.until,
            };
            a.common.send(cmd).await
        }
        ScheduleArgs::Swap(a) => {
            let cmd = ScheduleCommand::ApproveSwap {
                approval_id: a.id.as_str().into(),
                rule_id: a.rule.as_str().into(),
                person_id: a.person.as_str().into(),
                date: a.date,
                with_person: a.with_person.as_deref().map(Into::into),
                with_date: a.with_date,
            };
            a.common.send(cmd).await
        }
        ScheduleArgs::Export(a) => {
            let tenant = TenantId::parse(&a.common.tenant).map_err(|e| bad(e.to_string()))?;
            let ledger =
                Ledger::connect(&a.common.nats.nats, a.common.nats.ledger.config()).await?;
            let state = load(&ledger, &tenant).await?;
            let rule = RuleId::from(a.rule.as_str());
            if state.rules.latest(&rule).is_none() {
                return Err(
                    commands::CommandError::Refused(commands::Rejection::Unknown(format!(
                        "rule {rule} does not exist"
                    )))
                    .into(),
                );
            }
            let sheet = commands::schedules::export(&state, &rule, a.from, a.to);
            write_sheet(&sheet, &a.output)?;
            println!(
                "{} people x {} days written to {}",
                sheet.rows.len() - 1,
                sheet.rows[0].len() - 2,
                a.output.display()
            );
            ledger.drain().await?;
            Ok(())
        }
    }
}

async fn load(ledger: &Ledger, tenant: &TenantId) -> anyhow::Result<Schedules> {
    let p = ledger.partitions();
    let filters = [
        schemas::AggregateKind::Rule,
        schemas::AggregateKind::Shift,
        schemas::AggregateKind::Schedule,
        schemas::AggregateKind::Person,
    ]
    .iter()
    .map(|k| p.kind_filter(tenant, *k))
    .collect();
    let mut events = ledger
        .read(tenant, ledger::ReadFrom::any_of(filters))
        .await?;
    let mut state = Schedules::default();
    while let Some(r) = events.next().await {
        let r = r?;
        state.apply(r.sequence, &r.envelope);
    }
    Ok(state)
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// A sheet's cells as text: CSV (UTF-8, a BOM allowed) or the first worksheet of an
/// XLSX workbook (dates as YYYY-MM-DD, whole numbers without ".0").
pub fn read_sheet(path: &Path) -> anyhow::Result<Sheet> {
    match extension(path).as_str() {
        "csv" => {
            let bytes = std::fs::read(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| bad(format!("{}: not UTF-8 text", path.display())))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            let rows = reader
                .records()
                .map(|r| {
                    r.map(|r| r.iter().map(str::to_owned).collect())
                        .map_err(|e| bad(format!("{}: {e}", path.display())))
                })
                .collect::<anyhow::Result<Vec<Vec<String>>>>()?;
            Ok(Sheet { rows })
        }
        "xlsx" | "xlsm" | "xls" => {
            use calamine::{Data, Reader, open_workbook_auto};
            let mut book =
                open_workbook_auto(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            let range = book
                .worksheet_range_at(0)
                .ok_or_else(|| bad(format!("{}: the workbook has no sheet", path.display())))?
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            let rows = range
                .rows()
                .map(|row| {
                    row.iter()
                        .map(|c| match c {
                            Data::DateTime(d) => d
                                .as_datetime()
                                .map(|t| t.date().format("%Y-%m-%d").to_string())
                                .unwrap_or_else(|| c.to_string()),
                            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                                format!("{}", *f as i64)
                            }
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect();
            Ok(Sheet { rows })
        }
        other => Err(bad(format!(
            "{}: a sheet is .xlsx or .csv, not {other:?}",
            path.display()
        ))),
    }
}

/// A sheet as CSV (with a BOM, so Excel on a Chinese Windows reads it) or XLSX (sheet
/// 排班, header row frozen).
pub fn write_sheet(sheet: &Sheet, path: &Path) -> anyhow::Result<()> {
    match extension(path).as_str() {
        "csv" => {
            let mut out = Vec::from("\u{feff}".as_bytes());
            {
                let mut w = csv::Writer::from_writer(&mut out);
                for row in &sheet.rows {
                    w.write_record(row)?;
                }
                w.flush()?;
            }
            std::fs::write(path, out)?;
            Ok(())
        }
        "xlsx" => {
            let mut book = rust_xlsxwriter::Workbook::new();
            let ws = book.add_worksheet();
            ws.set_name("排班")?;
            for (r, row) in sheet.rows.iter().enumerate() {
                for (c, cell) in row.iter().enumerate() {
                    ws.write_string(r as u32, c as u16, cell)?;
                }
            }
            ws.set_freeze_panes(1, 2)?;
            book.save(path)?;
            Ok(())
        }
        other => Err(bad(format!(
            "{}: a sheet is .xlsx or .csv, not {other:?}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sheet_written_as_csv_or_xlsx_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let sheet = Sheet {
            rows: vec![
                vec![
                    "账号".into(),
                    "姓名".into(),
                    "2026-12-01".into(),
                    "2026-12-02".into(),
                ],
                vec!["1001".into(), "李伟".into(), "Day".into(), "休".into()],
                vec!["p-2".into(), "Wang, Fang".into(), "".into(), "Night".into()],
            ],
        };
        for ext in ["csv", "xlsx"] {
            let path = dir.path().join(format!("s.{ext}"));
            write_sheet(&sheet, &path).unwrap();
            let back = read_sheet(&path).unwrap();
            assert_eq!(back, sheet, "{ext}");
        }
        assert!(read_sheet(&dir.path().join("s.txt")).is_err());
    }
}
