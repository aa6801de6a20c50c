//! Where a day's sections fall in time, and which instants a day owns.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use schemas::events::{PunchWindow, WorkDay};

use super::{DayPlan, Work};
use crate::time::{self, Span};

/// How far past its end a shift reaches into a following rest day, when no off-punch
/// window says otherwise (a 22:00-06:00 shift owns punches until 10:00).
pub const REACH: Duration = Duration::hours(4);

/// A section placed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub on: DateTime<Utc>,
    pub off: DateTime<Utc>,
    pub on_window: PunchWindow,
    pub off_window: PunchWindow,
}

impl Placed {
    pub fn span(&self) -> Span {
        Span::new(self.on, self.off)
    }
}

fn day_offset(date: NaiveDate, next_day: bool) -> NaiveDate {
    if next_day {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    }
}

/// The sections of `day` on `date`, in order. An end at or before its start is read as
/// the next day's (22:00-06:00 works without the flag), and a section that would start
/// before the previous one ended moves to the next day too.
pub fn place(zone: Tz, date: NaiveDate, day: &WorkDay) -> Vec<Placed> {
    let mut out: Vec<Placed> = Vec::with_capacity(day.sections.len());
    for s in &day.sections {
        let mut on = time::at(zone, day_offset(date, s.on_next_day), s.on);
        if let Some(prev) = out.last()
            && on < prev.off
        {
            on = time::at(zone, date.succ_opt().unwrap_or(date), s.on);
        }
        let mut off = time::at(zone, day_offset(date, s.off_next_day), s.off);
        if off <= on {
            let on_date = time::local(zone, on).date();
            off = time::at(zone, on_date.succ_opt().unwrap_or(on_date), s.off);
        }
        out.push(Placed {
            on,
            off,
            on_window: s.on_window,
            off_window: s.off_window,
        });
    }
    out
}

/// The rest periods of `day` on `date`, as spans.
pub fn rests(zone: Tz, date: NaiveDate, day: &WorkDay) -> Vec<Span> {
    day.rests
        .iter()
        .map(|r| {
            let d = day_offset(date, r.next_day);
            let start = time::at(zone, d, r.start);
            let mut end = time::at(zone, d, r.end);
            if end <= start {
                end = time::at(zone, d.succ_opt().unwrap_or(d), r.end);
            }
            Span::new(start, end)
        })
        .collect()
}

/// Where a plan's working time starts and ends, when it has sections.
fn core(zone: Tz, plan: &DayPlan) -> Option<(Placed, Placed)> {
    match &plan.work {
        Work::Sections { day, .. } => {
            let placed = place(zone, plan.date, day);
            Some((*placed.first()?, *placed.last()?))
        }
        Work::Off | Work::Free { .. } => None,
    }
}

fn calendar_start(zone: Tz, plan: &DayPlan) -> DateTime<Utc> {
    time::at(zone, plan.date, plan.starts_at)
}

fn secs(s: Option<u32>) -> Option<Duration> {
    s.map(|s| Duration::seconds(i64::from(s)))
}

/// The instant where day `a` ends and the next day `b` begins.
///
/// By default it is `b`'s calendar start (midnight), unless a shift crosses it: then the
/// midpoint between `a`'s last off and `b`'s first on, or, next to a day with no times,
/// [`REACH`] past the shift's end (before: its start). An explicit off window of `a`
/// reaches as far as it says (up to `b`'s first on); an explicit on window of `b` reaches
/// back as far as it says (down to `a`'s last off); when both reach, `a` wins.
pub fn boundary(zone: Tz, a: &DayPlan, b: &DayPlan) -> DateTime<Utc> {
    let midnight = calendar_start(zone, b);
    match (core(zone, a), core(zone, b)) {
        (None, None) => midnight,
        (Some((_, a_last)), None) => {
            let end = a_last.off;
            let base = if end <= midnight {
                midnight
            } else {
                end + REACH
            };
            match secs(a_last.off_window.after_s) {
                Some(after) => base.max(end + after),
                None => base,
            }
        }
        (None, Some((b_first, _))) => {
            let start = b_first.on;
            let base = if start >= midnight {
                midnight
            } else {
                start - REACH
            };
            match secs(b_first.on_window.before_s) {
                Some(before) => base.min(start - before),
                None => base,
            }
        }
        (Some((_, a_last)), Some((b_first, _))) => {
            let (end, start) = (a_last.off, b_first.on);
            if end >= start {
                return start;
            }
            let mut at = if end <= midnight && midnight <= start {
                midnight
            } else {
                end + (start - end) / 2
            };
            if let Some(before) = secs(b_first.on_window.before_s) {
                at = at.min((start - before).max(end));
            }
            if let Some(after) = secs(a_last.off_window.after_s) {
                at = at.max((end + after).min(start));
            }
            at
        }
    }
}

/// The instants `this` day owns, between its neighbours.
pub fn owned_span(zone: Tz, previous: &DayPlan, this: &DayPlan, next: &DayPlan) -> Span {
    Span::new(boundary(zone, previous, this), boundary(zone, this, next))
}

/// The boundary between sections `a` and `b` of one day, by the same reasoning as
/// between days: the midpoint, moved by explicit windows.
pub fn between_sections(a: &Placed, b: &Placed) -> DateTime<Utc> {
    let (end, start) = (a.off, b.on);
    if end >= start {
        return start;
    }
    let mut at = end + (start - end) / 2;
    if let Some(before) = secs(b.on_window.before_s) {
        at = at.min((start - before).max(end));
    }
    if let Some(after) = secs(a.off_window.after_s) {
        at = at.max((end + after).min(start));
    }
    at
}

/// Whether `t` is inside `window` around `at` (`None` sides are unbounded).
pub fn in_window(window: &PunchWindow, at: DateTime<Utc>, t: DateTime<Utc>) -> bool {
    let after_ok = secs(window.after_s).is_none_or(|a| t <= at + a);
    let before_ok = secs(window.before_s).is_none_or(|b| t >= at - b);
    after_ok && before_ok
}
