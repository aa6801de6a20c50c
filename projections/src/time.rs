//! Local days and instants. Rules speak local time in their zone; the judge works on
//! instants so that a 23-hour or 25-hour day has its true length.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant a local time names in `zone`. A time that occurs twice (the hour repeated
/// when clocks go back) is its first occurrence; a time that does not exist (the hour
/// skipped when clocks go forward) is read as the same wall time an hour later, as a
/// clock that was not moved would show it.
pub fn instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Gaps are an hour almost everywhere; a longer one is walked minute by minute.
            let mut probe = local + Duration::hours(1);
            for _ in 0..(24 * 60) {
                if let Some(t) = zone.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
                probe += Duration::minutes(1);
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

/// `date` at `time` in `zone`.
pub fn at(zone: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    instant(zone, date.and_time(time))
}

/// The wall time `instant` shows in `zone`.
pub fn local(zone: Tz, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&zone).naive_local()
}

/// The local date of `instant` in `zone`, for a day that starts at `day_starts_at`.
pub fn local_date(zone: Tz, instant: DateTime<Utc>, day_starts_at: NaiveTime) -> NaiveDate {
    let wall = local(zone, instant);
    if wall.time() < day_starts_at {
        wall.date().pred_opt().unwrap_or(wall.date())
    } else {
        wall.date()
    }
}

/// A half-open interval of instants.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Span {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    pub fn seconds(&self) -> i64 {
        (self.end - self.start).num_seconds()
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    pub fn overlap(&self, other: &Span) -> Option<Span> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Span { start, end })
    }

    pub fn overlap_seconds(&self, other: &Span) -> i64 {
        self.overlap(other).map_or(0, |s| s.seconds())
    }

    /// What is left of `self` once every span in `holes` is cut out, in order.
    pub fn minus(&self, holes: &[Span]) -> Vec<Span> {
        let mut parts = vec![*self];
        for hole in holes {
            parts = parts
                .into_iter()
                .flat_map(|p| {
                    let mut left = Vec::with_capacity(2);
                    if hole.end <= p.start || hole.start >= p.end {
                        left.push(p);
                    } else {
                        if hole.start > p.start {
                            left.push(Span {
                                start: p.start,
                                end: hole.start,
                            });
                        }
                        if hole.end < p.end {
                            left.push(Span {
                                start: hole.end,
                                end: p.end,
                            });
                        }
                    }
                    left
                })
                .collect();
        }
        parts
    }
}

/// Seconds of `span` not covered by any of `holes`.
pub fn seconds_outside(span: Span, holes: &[Span]) -> i64 {
    span.minus(holes).iter().map(Span::seconds).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> Tz {
        "America/New_York".parse().unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn spring_forward_day_has_23_hours() {
        let start = at(ny(), d(2026, 3, 8), t(0, 0));
        let end = at(ny(), d(2026, 3, 9), t(0, 0));
        assert_eq!((end - start).num_hours(), 23);
    }

    #[test]
    fn fall_back_day_has_25_hours() {
        let start = at(ny(), d(2026, 11, 1), t(0, 0));
        let end = at(ny(), d(2026, 11, 2), t(0, 0));
        assert_eq!((end - start).num_hours(), 25);
    }

    #[test]
    fn skipped_wall_time_reads_an_hour_later() {
        // 02:30 does not exist on 2026-03-08 in New York; it is 03:30 EDT (07:30 UTC).
        let got = at(ny(), d(2026, 3, 8), t(2, 30));
        assert_eq!(got.to_rfc3339(), "2026-03-08T07:30:00+00:00");
    }

    #[test]
    fn repeated_wall_time_is_its_first_occurrence() {
        // 01:30 happens twice on 2026-11-01; the first is EDT (05:30 UTC).
        let got = at(ny(), d(2026, 11, 1), t(1, 30));
        assert_eq!(got.to_rfc3339(), "2026-11-01T05:30:00+00:00");
    }

    #[test]
    fn minus_cuts_holes() {
        let base = at(ny(), d(2026, 1, 5), t(0, 0));
        let s = |a: i64, b: i64| Span::new(base + Duration::hours(a), base + Duration::hours(b));
        let left = s(9, 18).minus(&[s(12, 13), s(17, 20)]);
        assert_eq!(left, vec![s(9, 12), s(13, 17)]);
        assert_eq!(seconds_outside(s(9, 18), &[s(12, 13)]), 8 * 3600);
    }
}
