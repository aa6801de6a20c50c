//! `attendance admin rule`: attendance rules as commands (create, change, copy,
//! members, show), decided by the `commands` crate and appended with optimistic
//! concurrency. A refusal says why and stores nothing (exit 65).

use chrono::NaiveTime;
use clap::{Args, Subcommand};
use commands::rules::{
    ChangeRule, CopyRule, CreateRule, Effective, RuleCommand, Rules, SetMembers,
};

use ledger::Ledger;

use schemas::events::{
    FixedRule, Flex, FreeRule, RestPeriod, RuleKind, RuleOptions, Section, ShiftRule, Weekday,
    WorkDay, WorkTime,
};
use schemas::ids::{CalendarId, RuleId, TenantId, ZoneName};

use crate::cli::NatsArgs;
use crate::command_cli::Caller;

#[derive(Debug, Subcommand)]
pub enum RuleCommandArgs {
    /// Create a rule: a fixed rule from its times (the default), a shift rule
    /// (--shifts) or a free rule (--free); every other option from --spec FILE.
    Create(CreateArgs),
    /// A new version of a rule: what is given replaces the current version's; what is
    /// not given is kept. Effective now (today is judged again) or --from-tomorrow.
    Change(ChangeArgs),
    /// A new rule with another rule's times and options.
    Copy(CopyArgs),
    /// Who follows a rule: people and departments (with sub-departments), less
    /// exclusions; replaces the rule's membership. A person follows one rule at a time.
    Members(MembersArgs),
    /// A rule's versions and who follows it.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct RuleCommon {
    #[command(flatten)]
    caller: Caller,
    /// The rule's id (letters, digits, '-', '_').
    #[arg(long)]
    id: String,
    /// Effective from tomorrow in the rule's zone (today keeps what it had). Default:
    /// effective now.
    #[arg(long, conflicts_with = "effective_from")]
    from_tomorrow: bool,
    /// Effective from this date (YYYY-MM-DD). Backdated, every day since is judged
    /// again: for a company set up with devices that upload their history.
    #[arg(long)]
    effective_from: Option<chrono::NaiveDate>,
}

/// A day's shape from flags.
#[derive(Debug, Args)]
pub struct DayArgs {
    /// Workdays: mon,tue,... or ranges like mon-fri.
    #[arg(long)]
    workdays: Option<String>,
    /// One working section ON-OFF, e.g. 09:00-18:00, or 22:00-06:00+1 for a night
    /// shift; repeat for up to three sections.
    #[arg(long = "section")]
    sections: Vec<String>,
    /// A rest period excluded from work time, e.g. 12:00-13:00; repeatable.
    #[arg(long = "rest")]
    rests: Vec<String>,
    /// Late up to this is not late (e.g. 10m).
    #[arg(long)]
    late_grace: Option<String>,
    /// Leaving up to this early is not early (e.g. 10m).
    #[arg(long)]
    early_grace: Option<String>,
    /// Arrive late, leave late: the off time moves with the arrival, by at most this.
    #[arg(long, conflicts_with_all = ["late_grace", "early_grace"])]
    arrive_late_leave_late: Option<String>,
    /// A missing off punch is not an exception (下班不需打卡).
    #[arg(long)]
    off_punch_optional: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    common: RuleCommon,
    #[arg(long)]
    name: String,
    /// The rule's time zone (IANA name).
    #[arg(long, default_value = "Asia/Shanghai")]
    zone: String,
    #[command(flatten)]
    day: DayArgs,
    /// A shift rule over these shift ids (comma-separated).
    #[arg(long, value_delimiter = ',', conflicts_with = "free")]
    shifts: Vec<String>,
    /// A free rule (自由上下班): no times, work time is first to last punch.
    #[arg(long)]
    free: bool,
    /// A free rule's day starts at this local time.
    #[arg(long, default_value = "04:00")]
    day_starts: String,
    /// The national holiday calendar that applies (e.g. cn).
    #[arg(long)]
    holidays: Option<String>,
    /// Punches of one person closer than this are merged (e.g. 5m).
    #[arg(long)]
    merge_gap: Option<String>,
    /// How a day's work time counts: from the on punch to the off punch, less rests
    /// (punched, the default), or only the punched time inside the scheduled hours.
    #[arg(long, value_enum)]
    work_time: Option<WorkTimeArg>,
    /// A JSON file with "kind" and/or "options" as the events spell them, for every
    /// option the flags do not cover (geofences, Wi-Fi, punch windows, late-out-late-in
    /// tiers, overtime, make-up limits, devices).
    #[arg(long)]
    spec: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    common: RuleCommon,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    zone: Option<String>,
    #[command(flatten)]
    day: DayArgs,
    #[arg(long)]
    holidays: Option<String>,
    #[arg(long)]
    merge_gap: Option<String>,
    #[arg(long, value_enum)]
    work_time: Option<WorkTimeArg>,
    #[arg(long)]
    spec: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WorkTimeArg {
    Punched,
    InsideSchedule,
}

impl From<WorkTimeArg> for WorkTime {
    fn from(w: WorkTimeArg) -> Self {
        match w {
            WorkTimeArg::Punched => WorkTime::Punched,
            WorkTimeArg::InsideSchedule => WorkTime::InsideSchedule,
        }
    }
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    #[command(flatten)]
    common: RuleCommon,
    /// The rule to copy.
    #[arg(long)]
    from: String,
    #[arg(long)]
    name: String,
}

#[derive(Debug, Args)]
pub struct MembersArgs {
    #[command(flatten)]
    common: RuleCommon,
    /// Person ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    people: Vec<String>,
    /// Department ids, comma-separated (their sub-departments follow too).
    #[arg(long, value_delimiter = ',')]
    departments: Vec<String>,
    /// People of those departments who do not follow the rule.
    #[arg(long, value_delimiter = ',')]
    exclude_people: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[arg(long)]
    tenant: String,
    /// The rule's id; without it, every rule.
    #[arg(long)]
    id: Option<String>,
}

/// A command-line value that is not what it should be.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadArgument(pub String);

fn bad(s: impl Into<String>) -> anyhow::Error {
    BadArgument(s.into()).into()
}

pub async fn run(command: RuleCommandArgs) -> anyhow::Result<()> {
    if let RuleCommandArgs::Show(args) = command {
        return show(args).await;
    }
    let common = match &command {
        RuleCommandArgs::Create(a) => &a.common,
        RuleCommandArgs::Change(a) => &a.common,
        RuleCommandArgs::Copy(a) => &a.common,
        RuleCommandArgs::Members(a) => &a.common,
        RuleCommandArgs::Show(_) => unreachable!("answered above"),
    };
    let tenant = common.caller.tenant_id()?;
    let rule_id = RuleId::from(common.id.as_str());
    let effective = match (common.from_tomorrow, common.effective_from) {
        (_, Some(date)) => Effective::From(date),
        (true, None) => Effective::Tomorrow,
        (false, None) => Effective::Now,
    };
    let cmd = match &command {
        RuleCommandArgs::Create(a) => {
            let (kind, options) = create_spec(a)?;
            RuleCommand::Create(CreateRule {
                rule_id,
                name: a.name.clone(),
                zone: zone(&a.zone)?,
                kind,
                options,
                effective,
            })
        }
        RuleCommandArgs::Change(a) => {
            let spec = read_spec(a.spec.as_deref())?;
            let mut options = spec.options;
            if a.holidays.is_some() || a.merge_gap.is_some() || a.work_time.is_some() {
                // Flags on top of the current options need the current options: the
                // decision keeps them when `options` is absent, so read them here.
                let ledger = common.caller.connect().await?;
                let current = load_rules(&ledger, &tenant).await?;
                let base = options
                    .clone()
                    .or_else(|| current.latest(&rule_id).map(|r| r.options.clone()));
                let mut o = base.unwrap_or_default();
                apply_option_flags(&mut o, a.holidays.as_deref(), a.merge_gap.as_deref())?;
                if let Some(w) = a.work_time {
                    o.work_time = Some(w.into());
                }
                options = Some(o);
            }
            let kind = match (spec.kind, a.day.given()) {
                (Some(k), false) => Some(k),
                (None, true) => Some(RuleKind::Fixed(fixed(&a.day)?)),
                (None, false) => None,
                (Some(_), true) => {
                    return Err(bad("give the rule's times by flags or in --spec, not both"));
                }
            };
            RuleCommand::Change(ChangeRule {
                rule_id,
                name: a.name.clone(),
                zone: a.zone.as_deref().map(zone).transpose()?,
                kind,
                options,
                effective,
            })
        }
        RuleCommandArgs::Copy(a) => RuleCommand::Copy(CopyRule {
            from: RuleId::from(a.from.as_str()),
            rule_id,
            name: a.name.clone(),
            effective,
        }),
        RuleCommandArgs::Members(a) => RuleCommand::SetMembers(SetMembers {
            rule_id,
            people: a.people.iter().map(|p| p.as_str().into()).collect(),
            departments: a.departments.iter().map(|d| d.as_str().into()).collect(),
            excluded_people: a.exclude_people.iter().map(|p| p.as_str().into()).collect(),
            effective,
        }),
        RuleCommandArgs::Show(_) => unreachable!("answered above"),
    };
    common.caller.send(cmd).await
}

async fn connect(nats: &NatsArgs) -> anyhow::Result<Ledger> {
    let ledger = Ledger::connect(&nats.nats, nats.ledger.config()).await?;
    ledger.provision().await?;
    Ok(ledger)
}

async fn load_rules(ledger: &Ledger, tenant: &TenantId) -> anyhow::Result<Rules> {
    use commands::State;
    use futures::StreamExt;
    let p = ledger.partitions();
    let filters = [
        schemas::AggregateKind::Rule,
        schemas::AggregateKind::Person,
        schemas::AggregateKind::Department,
    ]
    .iter()
    .map(|k| p.kind_filter(tenant, *k))
    .collect();
    let mut events = ledger
        .read(tenant, ledger::ReadFrom::any_of(filters))
        .await?;
    let mut rules = Rules::default();
    while let Some(r) = events.next().await {
        let r = r?;
        rules.apply(r.sequence, &r.envelope);
    }
    Ok(rules)
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant).map_err(|e| bad(e.to_string()))?;
    let ledger = connect(&args.nats).await?;
    let rules = load_rules(&ledger, &tenant).await?;
    let ids: Vec<RuleId> = match &args.id {
        Some(id) => {
            let id = RuleId::from(id.as_str());
            if !rules.rules.contains_key(&id) {
                return Err(
                    commands::CommandError::Refused(commands::Rejection::Unknown(format!(
                        "rule {id} does not exist"
                    )))
                    .into(),
                );
            }
            vec![id]
        }
        None => rules.rules.keys().cloned().collect(),
    };
    if ids.is_empty() {
        println!("tenant {tenant} has no rules");
    }
    for id in ids {
        for v in &rules.rules[&id] {
            println!(
                "{id} v{} {:?} ({}) from {}: {}",
                v.version,
                v.name,
                v.zone.as_str(),
                v.effective_from,
                describe(&v.kind)
            );
        }
        match rules.membership(&id) {
            Some(m) => println!(
                "  followed from {} by people [{}], departments [{}], except [{}]",
                m.effective_from,
                join(&m.people),
                join(&m.departments),
                join(&m.excluded_people)
            ),
            None => println!("  followed by nobody yet"),
        }
    }
    ledger.drain().await?;
    Ok(())
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(kind: &RuleKind) -> String {
    let day = |d: &WorkDay| {
        d.sections
            .iter()
            .map(|s| {
                format!(
                    "{}-{}{}",
                    s.on.format("%H:%M"),
                    s.off.format("%H:%M"),
                    if s.off_next_day { "+1" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        RuleKind::Fixed(f) => format!("fixed {} on {:?}", day(&f.day), f.workdays),
        RuleKind::Shifts(s) => format!("shifts {}", join(&s.shifts)),
        RuleKind::Free(f) => format!("free on {:?}", f.workdays),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default)]
    kind: Option<RuleKind>,
    #[serde(default)]
    options: Option<RuleOptions>,
}

fn read_spec(path: Option<&std::path::Path>) -> anyhow::Result<Spec> {
    let Some(path) = path else {
        return Ok(Spec::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("--spec {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("--spec {}: {e}", path.display())))
}

fn create_spec(a: &CreateArgs) -> anyhow::Result<(RuleKind, RuleOptions)> {
    let spec = read_spec(a.spec.as_deref())?;
    let kind = match spec.kind {
        Some(k) => {
            if a.day.given() || a.free || !a.shifts.is_empty() {
                return Err(bad("give the rule's times by flags or in --spec, not both"));
            }
            k
        }
        None if a.free => RuleKind::Free(FreeRule {
            workdays: weekdays(a.day.workdays.as_deref().unwrap_or("mon-fri"))?,
            day_starts_at: time(&a.day_starts)?,
            standard_work_s: 8 * 3600,
        }),
        None if !a.shifts.is_empty() => RuleKind::Shifts(ShiftRule {
            shifts: a.shifts.iter().map(|s| s.as_str().into()).collect(),
            unscheduled: Default::default(),
        }),
        None => RuleKind::Fixed(fixed(&a.day)?),
    };
    let mut options = spec.options.unwrap_or_default();
    apply_option_flags(&mut options, a.holidays.as_deref(), a.merge_gap.as_deref())?;
    if let Some(w) = a.work_time {
        options.work_time = Some(w.into());
    }
    Ok((kind, options))
}

fn apply_option_flags(
    options: &mut RuleOptions,
    holidays: Option<&str>,
    merge_gap: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(h) = holidays {
        options.holiday_calendar = Some(CalendarId::from(h));
    }
    if let Some(g) = merge_gap {
        options.merge_gap_s = Some(duration_s(g)?);
    }
    Ok(())
}

impl DayArgs {
    fn given(&self) -> bool {
        self.workdays.is_some()
            || !self.sections.is_empty()
            || !self.rests.is_empty()
            || self.late_grace.is_some()
            || self.early_grace.is_some()
            || self.arrive_late_leave_late.is_some()
            || self.off_punch_optional
    }
}

fn fixed(day: &DayArgs) -> anyhow::Result<FixedRule> {
    Ok(FixedRule {
        workdays: weekdays(day.workdays.as_deref().unwrap_or("mon-fri"))?,
        day: work_day(day)?,
    })
}

/// A day's sections, rests and allowances from flags (a fixed rule's workday, a shift).
pub fn work_day(day: &DayArgs) -> anyhow::Result<WorkDay> {
    if day.sections.is_empty() {
        return Err(bad(
            "the working time is needed: --section 09:00-18:00 (a rule may also be --free, --shifts or --spec)",
        ));
    }
    let sections = day
        .sections
        .iter()
        .map(|s| {
            let (on, on_next, off, off_next) = span(s)?;
            Ok(Section {
                on,
                on_next_day: on_next,
                off,
                off_next_day: off_next,
                on_window: Default::default(),
                off_window: Default::default(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rests = day
        .rests
        .iter()
        .map(|r| {
            let (start, next, end, end_next) = span(r)?;
            if next != end_next {
                return Err(bad(format!("rest {r:?}: both ends on the same day")));
            }
            Ok(RestPeriod {
                start,
                end,
                next_day: next,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let flex = match (
        &day.late_grace,
        &day.early_grace,
        &day.arrive_late_leave_late,
    ) {
        (None, None, None) => Flex::None,
        (_, _, Some(m)) => Flex::ArriveLateLeaveLate {
            max_late_s: duration_s(m)?,
            max_early_s: 0,
        },
        (late, early, None) => Flex::Allowance {
            late_s: late.as_deref().map(duration_s).transpose()?.unwrap_or(0),
            early_s: early.as_deref().map(duration_s).transpose()?.unwrap_or(0),
        },
    };
    Ok(WorkDay {
        sections,
        rests,
        flex,
        late_out_late_in: Vec::new(),
        off_punch_required: !day.off_punch_optional,
    })
}

fn zone(z: &str) -> anyhow::Result<ZoneName> {
    ZoneName::parse(z).map_err(|e| bad(format!("zone {z:?}: {e}")))
}

/// `HH:MM`.
fn time(s: &str) -> anyhow::Result<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| bad(format!("{s:?} is not a time of day HH:MM")))
}

/// `HH:MM-HH:MM`, either end with `+1` for the next day (an off time before the on time
/// is taken as the next day's).
fn span(s: &str) -> anyhow::Result<(NaiveTime, bool, NaiveTime, bool)> {
    let Some((a, b)) = s.split_once('-') else {
        return Err(bad(format!("{s:?} is not a time span HH:MM-HH:MM")));
    };
    let end = |x: &str| -> anyhow::Result<(NaiveTime, bool)> {
        match x.trim().strip_suffix("+1") {
            Some(t) => Ok((time(t)?, true)),
            None => Ok((time(x)?, false)),
        }
    };
    let (on, on_next) = end(a)?;
    let (off, mut off_next) = end(b)?;
    if !on_next && !off_next && off <= on {
        off_next = true;
    }
    Ok((on, on_next, off, off_next))
}

/// `90s`, `10m`, `1h`, `1h30m`, or plain minutes.
fn duration_s(s: &str) -> anyhow::Result<u32> {
    let t = s.trim();
    if let Ok(m) = t.parse::<u32>() {
        return Ok(m * 60);
    }
    let mut total: u64 = 0;
    let mut n = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            n.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => {
                return Err(bad(format!(
                    "{s:?} is not a duration like 10m, 1h30m or 90s"
                )));
            }
        };
        let v: u64 = n
            .parse()
            .map_err(|_| bad(format!("{s:?} is not a duration like 10m, 1h30m or 90s")))?;
        total += v * unit;
        n.clear();
    }
    if !n.is_empty() || total > u64::from(u32::MAX) {
        return Err(bad(format!(
            "{s:?} is not a duration like 10m, 1h30m or 90s"
        )));
    }
    Ok(total as u32)
}

fn weekdays(s: &str) -> anyhow::Result<Vec<Weekday>> {
    const ALL: [(&str, Weekday); 7] = [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ];
    let index = |d: &str| {
        let d = d.trim().to_ascii_lowercase();
        ALL.iter()
            .position(|(n, _)| d.starts_with(n) && n.len() <= d.len())
            .ok_or_else(|| bad(format!("{d:?} is not a weekday (mon, tue, ... sun)")))
    };
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                if b < a {
                    return Err(bad(format!("{part:?}: a range runs forward, e.g. mon-fri")));
                }
                out.extend((a..=b).map(|i| ALL[i].1));
            }
            None => out.push(ALL[index(part)?].1),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_durations_and_weekdays_read_as_people_write_them() {
        let t = |s| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert_eq!(
            span("08:30-17:30").unwrap(),
            (t("08:30"), false, t("17:30"), false)
        );
        assert_eq!(
            span("22:00-06:00").unwrap(),
            (t("22:00"), false, t("06:00"), true)
        );
        assert_eq!(
            span("22:00-06:00+1").unwrap(),
            (t("22:00"), false, t("06:00"), true)
        );
        assert!(span("0830-1730").is_err());
        assert_eq!(duration_s("10m").unwrap(), 600);
        assert_eq!(duration_s("1h30m").unwrap(), 5400);
        assert_eq!(duration_s("90s").unwrap(), 90);
        assert_eq!(duration_s("15").unwrap(), 900);
        assert!(duration_s("10x").is_err());
        assert!(duration_s("1h3").is_err());
        assert_eq!(
            weekdays("mon-fri").unwrap(),
            vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
        assert_eq!(
            weekdays("sat,sun").unwrap(),
            vec![Weekday::Sat, Weekday::Sun]
        );
        assert!(weekdays("fri-mon").is_err());
        assert!(weekdays("funday").is_err());
    }
}

/// Any command in its JSON form, as the command service takes it.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    caller: Caller,
    /// rules, departments, people, requests, schedules or periods.
    #[arg(long)]
    family: String,
    /// The command as JSON (`{"create": {...}}`; schemas/json/commands/ spells every
    /// field); `-` reads standard input.
    #[arg(long)]
    file: std::path::PathBuf,
}

pub async fn send_file(a: SendArgs) -> anyhow::Result<()> {
    use commands::organisation::{DepartmentCommand, PersonCommand};
    use commands::requests::RequestCommand;
    use commands::schedules::ScheduleCommand;

    let text = if a.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&a.file)
            .map_err(|e| bad(format!("--file {}: {e}", a.file.display())))?
    };
    let parse = |family: &str, e: serde_json::Error| bad(format!("not a {family} command: {e}"));
    match a.family.as_str() {
        "rules" => {
            let c: RuleCommand = serde_json::from_str(&text).map_err(|e| parse("rules", e))?;
            a.caller.send(c).await
        }
        "departments" => {
            let c: DepartmentCommand =
                serde_json::from_str(&text).map_err(|e| parse("departments", e))?;
            a.caller.send(c).await
        }
        "people" => {
            let c: PersonCommand = serde_json::from_str(&text).map_err(|e| parse("people", e))?;
            a.caller.send(c).await
        }
        "requests" => {
            let c: RequestCommand =
                serde_json::from_str(&text).map_err(|e| parse("requests", e))?;
            a.caller.send(c).await
        }
        "schedules" => {
            let c: ScheduleCommand =
                serde_json::from_str(&text).map_err(|e| parse("schedules", e))?;
            a.caller.send(c).await
        }
        "periods" => {
            let c: commands::periods::PeriodCommand =
                serde_json::from_str(&text).map_err(|e| parse("periods", e))?;
            a.caller.send(c).await
        }
        other => Err(bad(format!(
            "--family {other:?}: rules, departments, people, requests, schedules or periods"
        ))),
    }
}
