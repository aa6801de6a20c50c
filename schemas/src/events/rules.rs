//! Attendance rules, shifts, schedules and calendars. The vocabulary follows WeCom's
//! `getcheckinoption`; durations are whole seconds, times of day are local to the rule's zone.

use chrono::{NaiveDate, NaiveTime};

use crate::ids::{
    CalendarId, CycleId, DepartmentId, DeviceSn, PersonId, RuleId, ShiftId, ZoneName,
};

domain_types! {
    /// A version of a rule. The version in force on a date is the highest version whose
    /// `effective_from` is on or before it: "effective now" is today's date, "from
    /// tomorrow" is tomorrow's; earlier days keep the version they had.
    pub struct RuleVersionDefined {
        pub rule_id: RuleId,
        /// 1 for the first version, then +1 each change.
        pub version: u32,
        pub name: String,
        pub zone: ZoneName,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub effective_from: NaiveDate,
        pub kind: RuleKind,
        #[serde(default)]
        pub options: RuleOptions,
    }

    pub enum RuleKind {
        /// 固定时间上下班: the same day every workday.
        Fixed(FixedRule),
        /// 按班次上下班: each person follows a schedule of shifts.
        Shifts(ShiftRule),
        /// 自由上下班: no times; work time is first to last punch; only absence counts.
        Free(FreeRule),
    }

    pub struct FixedRule {
        pub workdays: Vec<Weekday>,
        pub day: WorkDay,
    }

    pub struct ShiftRule {
        /// The shifts this rule's schedules may use.
        pub shifts: Vec<ShiftId>,
        /// What an unscheduled day is.
        #[serde(default)]
        pub unscheduled: Unscheduled,
    }

    pub struct FreeRule {
        pub workdays: Vec<Weekday>,
        /// When a free-rule day starts in local time (punches before it belong to the
        /// previous day).
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::time))]
        pub day_starts_at: NaiveTime,
        /// Work seconds a day is expected to have, for the report's standard work time.
        #[serde(default)]
        pub standard_work_s: u32,
    }

    /// One day's work: a shift's body, or a fixed rule's workday.
    pub struct WorkDay {
        /// One or more sections (on → off), in order.
        pub sections: Vec<Section>,
        /// Rest periods excluded from work time (lunch).
        #[serde(default)]
        pub rests: Vec<RestPeriod>,
        #[serde(default)]
        pub flex: Flex,
        /// 下班晚走，次日晚到: tiers, checked from the last.
        #[serde(default)]
        pub late_out_late_in: Vec<LateOutTier>,
        /// When false, a missing off punch is not an exception (下班不需打卡).
        #[serde(default = "yes")]
        pub off_punch_required: bool,
    }

    /// A section of a day. Times are local; `*_next_day` marks a time on the day after the
    /// day the section starts (a night shift 22:00 → 06:00 has `off_next_day`).
    pub struct Section {
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::time))]
        pub on: NaiveTime,
        #[serde(default)]
        pub on_next_day: bool,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::time))]
        pub off: NaiveTime,
        #[serde(default)]
        pub off_next_day: bool,
        /// When an on punch is accepted, around `on`.
        #[serde(default)]
        pub on_window: PunchWindow,
        /// When an off punch is accepted, around `off` (e.g. until 04:00 next day).
        #[serde(default)]
        pub off_window: PunchWindow,
    }

    /// Accepted from `before_s` before the time to `after_s` after it. `None`: no limit
    /// on that side (up to the neighbouring section).
    #[derive(Default, Eq, Copy)]
    pub struct PunchWindow {
        #[serde(default)]
        pub before_s: Option<u32>,
        #[serde(default)]
        pub after_s: Option<u32>,
    }

    pub struct RestPeriod {
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::time))]
        pub start: NaiveTime,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::time))]
        pub end: NaiveTime,
        #[serde(default)]
        pub next_day: bool,
    }

    /// 弹性上下班.
    #[derive(Default, Eq, Copy)]
    pub enum Flex {
        #[default]
        None,
        /// Late up to `late_s` is not late; leaving up to `early_s` early is not early.
        Allowance { late_s: u32, early_s: u32 },
        /// Arrive late, leave late: the off time moves with the arrival, by at most
        /// `max_late_s`; arriving early by up to `max_early_s` lets one leave that much earlier.
        ArriveLateLeaveLate { max_late_s: u32, #[serde(default)] max_early_s: u32 },
    }

    /// Leaving `off_after_s` or more after the off time lets the next workday's first
    /// on punch be `next_on_later_by_s` later without being late.
    #[derive(Eq, Copy)]
    pub struct LateOutTier {
        pub off_after_s: u32,
        pub next_on_later_by_s: u32,
    }

    #[derive(Eq, Copy, Hash)]
    pub enum Weekday { Mon, Tue, Wed, Thu, Fri, Sat, Sun }

    #[derive(Default, Eq, Copy)]
    pub enum Unscheduled {
        /// An unscheduled day is a rest day.
        #[default]
        Rest,
        /// The person may punch and the day is judged against the shift nearest their punch.
        SelfSchedule,
    }

    /// Options that every rule kind has.
    #[derive(Default)]
    pub struct RuleOptions {
        /// Punches closer than this to the previous kept punch are merged into it. Off
        /// by default: two taps are two punches.
        #[serde(default)]
        pub merge_gap_s: Option<u32>,
        #[serde(default)]
        pub out_of_range: OutOfRange,
        #[serde(default)]
        pub geofences: Vec<Geofence>,
        #[serde(default)]
        pub wifi: Vec<WifiAccessPoint>,
        /// Devices whose punches count for this rule; empty: every bound device.
        #[serde(default)]
        pub devices: Vec<DeviceSn>,
        #[serde(default)]
        pub photo_required: bool,
        /// The national calendar whose holidays and swapped workdays apply.
        #[serde(default)]
        pub holiday_calendar: Option<CalendarId>,
        #[serde(default)]
        pub make_up: MakeUpLimits,
        #[serde(default)]
        pub overtime: OvertimePolicy,
        /// How a day's work time is counted. Absent, as in every version stored before
        /// this option existed: only the punched time inside the scheduled hours, so no
        /// past day changes. Rules created by the command service say `Punched`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub work_time: Option<WorkTime>,
    }

    /// 工作时长 (DingTalk's 考勤组 setting, the choice WeCom users compare with).
    #[derive(Eq, Copy)]
    pub enum WorkTime {
        /// From each section's on punch to its off punch, less rest periods (arriving
        /// early or staying late counts); 0 for a section missing either punch.
        Punched,
        /// Only the punched time inside the scheduled hours.
        InsideSchedule,
    }

    /// What a punch outside every geofence and Wi-Fi becomes.
    #[derive(Default, Eq, Copy)]
    pub enum OutOfRange {
        /// Kept, and the day shows a location exception (地点异常).
        #[default]
        LocationException,
        /// Kept as field work (外勤), not an exception.
        FieldWork,
        /// Refused at the door with a reason.
        Refuse,
    }

    pub enum Geofence {
        Circle { name: String, center: LatLon, radius_m: u32 },
        Polygon { name: String, points: Vec<LatLon> },
    }

    pub struct LatLon {
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::latitude))]
        pub latitude: f64,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::longitude))]
        pub longitude: f64,
    }

    pub struct WifiAccessPoint {
        #[serde(default)]
        pub ssid: Option<String>,
        pub bssid: String,
    }

    /// 补卡 limits.
    #[derive(Default, Eq, Copy)]
    pub struct MakeUpLimits {
        #[serde(default)]
        pub per_month: Option<u32>,
        /// How many days after the day a make-up may still be requested.
        #[serde(default)]
        pub within_days: Option<u32>,
    }

    #[derive(Default, Eq, Copy)]
    pub struct OvertimePolicy {
        /// Overtime counts only when approved (the default); otherwise time past the
        /// last off time counts from `min_s`.
        #[serde(default)]
        pub by_punch: bool,
        #[serde(default)]
        pub min_s: u32,
    }

    /// Who follows a rule from a date on. One person follows one rule at a time: the
    /// latest membership naming a person wins.
    pub struct RuleMembershipSet {
        pub rule_id: RuleId,
        #[serde(default)]
        pub people: Vec<PersonId>,
        #[serde(default)]
        pub departments: Vec<DepartmentId>,
        #[serde(default)]
        pub excluded_people: Vec<PersonId>,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub effective_from: NaiveDate,
    }

    pub struct ShiftDefined {
        pub shift_id: ShiftId,
        pub name: String,
        pub day: WorkDay,
    }

    /// A person's shifts for some dates (`shift: None` is a rest day).
    pub struct ScheduleAssigned {
        pub rule_id: RuleId,
        pub person_id: PersonId,
        pub days: Vec<ScheduledDay>,
    }

    pub struct ScheduledDay {
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub date: NaiveDate,
        #[serde(default)]
        pub shift: Option<ShiftId>,
    }

    /// An approved shift swap (调班): the person works `with_person`'s shift of `date`,
    /// or their own shift of `with_date` on `date`, and the other side takes theirs.
    pub struct ShiftSwapApproved {
        pub approval_id: crate::ids::ApprovalId,
        pub rule_id: RuleId,
        pub person_id: PersonId,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub date: NaiveDate,
        #[serde(default)]
        pub with_person: Option<PersonId>,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::opt_date))]
        #[serde(default)]
        pub with_date: Option<NaiveDate>,
    }

    /// A repeating pattern of shifts and rest days (two-shift, three-shift, ...).
    pub struct ScheduleCycleDefined {
        pub cycle_id: CycleId,
        pub rule_id: RuleId,
        pub name: String,
        pub days: Vec<Option<ShiftId>>,
    }

    /// A person follows a cycle from `from` (day 0 of the cycle) until `until` inclusive.
    pub struct ScheduleCycleAssigned {
        pub cycle_id: CycleId,
        pub rule_id: RuleId,
        pub person_id: PersonId,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub from: NaiveDate,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::opt_date))]
        #[serde(default)]
        pub until: Option<NaiveDate>,
    }

    /// A year of a national calendar: holidays and the weekend days swapped to workdays (调休).
    pub struct HolidayCalendarPublished {
        pub calendar_id: CalendarId,
        pub year: i32,
        pub days: Vec<CalendarDay>,
    }

    pub struct CalendarDay {
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub date: NaiveDate,
        pub kind: CalendarDayKind,
        pub name: String,
    }

    #[derive(Eq, Copy)]
    pub enum CalendarDayKind {
        Holiday,
        /// A weekend day worked in exchange for a holiday.
        SwappedWorkday,
    }

    /// Must-punch and no-punch dates of a rule (特殊日期); replaces the rule's earlier list
    /// for the dates named.
    pub struct SpecialDatesSet {
        pub rule_id: RuleId,
        pub dates: Vec<SpecialDate>,
    }

    pub struct SpecialDate {
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub date: NaiveDate,
        pub kind: SpecialDateKind,
        #[serde(default)]
        pub note: Option<String>,
    }

    pub enum SpecialDateKind {
        /// A workday whatever the weekday; judged by `shift`, or the rule's usual day.
        MustPunch { #[serde(default)] shift: Option<ShiftId> },
        NoPunch,
    }
}

fn yes() -> bool {
    true
}

keyed_by! {
    RuleVersionDefined => Rule(rule_id),
    RuleMembershipSet => Rule(rule_id),
    SpecialDatesSet => Rule(rule_id),
    ShiftDefined => Shift(shift_id),
    ScheduleAssigned => Schedule(person_id),
    ScheduleCycleAssigned => Schedule(person_id),
    ShiftSwapApproved => Schedule(person_id),
    ScheduleCycleDefined => Cycle(cycle_id),
    HolidayCalendarPublished => Calendar(calendar_id),
}
