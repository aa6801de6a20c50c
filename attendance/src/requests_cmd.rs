//! `attendance admin leave|trip|outing|overtime|makeup|calibrate`: requests and
//! approvals as commands (the `commands` crate's requests family). A refusal says why
//! and stores nothing (exit 65).

use chrono::{NaiveDate, NaiveDateTime};
use clap::{Args, Subcommand, ValueEnum};
use commands::requests::{AbsenceKind, RequestCommand};
use schemas::events::{AttendanceStatus, CalibrationTarget, OvertimeCompensation, SlotEnd};
use schemas::ids::{UserId, ZoneName};

use crate::command_cli::Caller;
use crate::rules_cmd::BadArgument;

/// An approved absence or overtime over a span.
#[derive(Debug, Args)]
pub struct SpanArgs {
    #[command(flatten)]
    common: Caller,
    /// The approval's id (e.g. the workflow's form number).
    #[arg(long)]
    id: String,
    #[arg(long)]
    person: String,
    /// Start, local time: "YYYY-MM-DD HH:MM".
    #[arg(long)]
    from: String,
    /// End, local time: "YYYY-MM-DD HH:MM".
    #[arg(long)]
    to: String,
    /// The zone the times are in. Default: the zone of the person's rule that day.
    #[arg(long)]
    zone: Option<String>,
    #[arg(long)]
    note: Option<String>,
}

#[derive(Debug, Args)]
pub struct LeaveArgs {
    #[command(flatten)]
    span: SpanArgs,
    /// The kind of leave (annual, sick, personal, marriage, ...).
    #[arg(long = "type")]
    leave_type: String,
}

#[derive(Debug, Args)]
pub struct TripArgs {
    #[command(flatten)]
    span: SpanArgs,
    #[arg(long)]
    destination: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Compensation {
    Pay,
    TimeOff,
}

#[derive(Debug, Args)]
pub struct OvertimeArgs {
    #[command(flatten)]
    span: SpanArgs,
    #[arg(long, value_enum, default_value = "pay")]
    compensation: Compensation,
}

#[derive(Debug, Subcommand)]
pub enum MakeUpCommand {
    /// Ask for a missed punch (补卡); the rule's limits (per month, days after the day)
    /// are checked now.
    Request(MakeUpRequestArgs),
    /// Approve a request: the punch counts from now on, marked as a make-up.
    Approve(MakeUpDecisionArgs),
    /// Reject a request, with the reason.
    Reject(MakeUpRejectArgs),
}

#[derive(Debug, Args)]
pub struct MakeUpRequestArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    id: String,
    #[arg(long)]
    person: String,
    /// The punch's local time, in the zone of the person's rule: "YYYY-MM-DD HH:MM".
    #[arg(long)]
    at: String,
    #[arg(long)]
    reason: String,
}

#[derive(Debug, Args)]
pub struct MakeUpDecisionArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    id: String,
}

#[derive(Debug, Args)]
pub struct MakeUpRejectArgs {
    #[command(flatten)]
    common: Caller,
    #[arg(long)]
    id: String,
    #[arg(long)]
    reason: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Status {
    Normal,
    Late,
    EarlyLeave,
    MissingPunch,
    Absent,
    LocationException,
    DeviceException,
    FieldWork,
    OnLeave,
    Rest,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    common: Caller,
    /// The calibration's id.
    #[arg(long)]
    id: String,
    #[arg(long)]
    person: String,
    #[arg(long)]
    date: NaiveDate,
    /// A slot instead of the whole day: SECTION:on or SECTION:off, sections counted from
    /// 1 (1:on is the first on punch, 2:off the second section's off punch).
    #[arg(long)]
    slot: Option<String>,
    #[arg(long, value_enum)]
    status: Status,
    /// Why (required; shown beside the calibrated status).
    #[arg(long)]
    reason: String,
}

fn bad(s: impl Into<String>) -> anyhow::Error {
    BadArgument(s.into()).into()
}

fn local(s: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| bad(format!("{s:?} is not a local time \"YYYY-MM-DD HH:MM\"")))
}

fn approve(span: &SpanArgs, kind: AbsenceKind) -> anyhow::Result<RequestCommand> {
    Ok(RequestCommand::Approve {
        approval_id: span.id.as_str().into(),
        person_id: span.person.as_str().into(),
        kind,
        start: local(&span.from)?,
        end: local(&span.to)?,
        zone: span
            .zone
            .as_deref()
            .map(|z| ZoneName::parse(z).map_err(|e| bad(format!("zone {z:?}: {e}"))))
            .transpose()?,
        note: span.note.clone(),
    })
}

pub async fn leave(a: LeaveArgs) -> anyhow::Result<()> {
    let cmd = approve(
        &a.span,
        AbsenceKind::Leave {
            leave_type: a.leave_type.clone(),
        },
    )?;
    a.span.common.send(cmd).await
}

pub async fn trip(a: TripArgs, outing: bool) -> anyhow::Result<()> {
    let destination = a.destination.clone();
    let kind = if outing {
        AbsenceKind::Outing { destination }
    } else {
        AbsenceKind::BusinessTrip { destination }
    };
    let cmd = approve(&a.span, kind)?;
    a.span.common.send(cmd).await
}

pub async fn overtime(a: OvertimeArgs) -> anyhow::Result<()> {
    let compensation = match a.compensation {
        Compensation::Pay => OvertimeCompensation::Pay,
        Compensation::TimeOff => OvertimeCompensation::TimeOff,
    };
    let cmd = approve(&a.span, AbsenceKind::Overtime { compensation })?;
    a.span.common.send(cmd).await
}

pub async fn make_up(c: MakeUpCommand) -> anyhow::Result<()> {
    match c {
        MakeUpCommand::Request(a) => {
            let cmd = RequestCommand::RequestMakeUp {
                approval_id: a.id.as_str().into(),
                person_id: a.person.as_str().into(),
                local_time: local(&a.at)?,
                reason: a.reason.clone(),
            };
            a.common.send(cmd).await
        }
        MakeUpCommand::Approve(a) => {
            let cmd = RequestCommand::ApproveMakeUp {
                approval_id: a.id.as_str().into(),
                approver: Some(UserId::from(a.common.user.as_str())),
            };
            a.common.send(cmd).await
        }
        MakeUpCommand::Reject(a) => {
            let cmd = RequestCommand::RejectMakeUp {
                approval_id: a.id.as_str().into(),
                approver: Some(UserId::from(a.common.user.as_str())),
                reason: a.reason.clone(),
            };
            a.common.send(cmd).await
        }
    }
}

pub async fn calibrate(a: CalibrateArgs) -> anyhow::Result<()> {
    let target = match a.slot.as_deref() {
        None => CalibrationTarget::Day,
        Some(s) => {
            let (section, end) = s
                .split_once(':')
                .ok_or_else(|| bad(format!("--slot {s:?}: SECTION:on or SECTION:off")))?;
            // Counted from 1 here, as a report shows sections; the event counts from 0.
            let section: u8 = section
                .parse::<u8>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .ok_or_else(|| bad(format!("--slot {s:?}: the section is 1, 2 or 3")))?;
            let end = match end {
                "on" => SlotEnd::On,
                "off" => SlotEnd::Off,
                _ => return Err(bad(format!("--slot {s:?}: on or off"))),
            };
            CalibrationTarget::Slot { section, end }
        }
    };
    let status = match a.status {
        Status::Normal => AttendanceStatus::Normal,
        Status::Late => AttendanceStatus::Late,
        Status::EarlyLeave => AttendanceStatus::EarlyLeave,
        Status::MissingPunch => AttendanceStatus::MissingPunch,
        Status::Absent => AttendanceStatus::Absent,
        Status::LocationException => AttendanceStatus::LocationException,
        Status::DeviceException => AttendanceStatus::DeviceException,
        Status::FieldWork => AttendanceStatus::FieldWork,
        Status::OnLeave => AttendanceStatus::OnLeave,
        Status::Rest => AttendanceStatus::Rest,
    };
    let cmd = RequestCommand::Calibrate {
        calibration_id: a.id.as_str().into(),
        person_id: a.person.as_str().into(),
        date: a.date,
        target,
        status,
        reason: a.reason.clone(),
    };
    a.common.send(cmd).await
}
