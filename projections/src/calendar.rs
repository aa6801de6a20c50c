//! National calendars shipped with the product, as the events that would publish them.
//! A `HolidayCalendarPublished` event for the same calendar and year replaces the
//! shipped one, so a correction by the State Council is an event, not a release.

use schemas::events::HolidayCalendarPublished;

const SHIPPED: &[&str] = &[
    include_str!("../data/holidays/cn-2024.json"),
    include_str!("../data/holidays/cn-2025.json"),
    include_str!("../data/holidays/cn-2026.json"),
];

/// China's official holidays and swapped workdays (放假调休), 2024-2026, calendar `cn`.
pub fn shipped() -> Vec<HolidayCalendarPublished> {
    SHIPPED
        .iter()
        .map(|text| serde_json::from_str(text).expect("shipped calendars are checked by tests"))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate, Weekday};
    use schemas::events::CalendarDayKind;

    use super::*;

    #[test]
    fn shipped_calendars_parse_and_swaps_fall_on_weekends() {
        let all = shipped();
        assert_eq!(
            all.iter().map(|c| c.year).collect::<Vec<_>>(),
            [2024, 2025, 2026]
        );
        for cal in &all {
            for day in &cal.days {
                assert_eq!(day.date.year(), cal.year);
                if day.kind == CalendarDayKind::SwappedWorkday {
                    assert!(
                        matches!(day.date.weekday(), Weekday::Sat | Weekday::Sun),
                        "{day:?}"
                    );
                }
            }
        }
        let spring_2026 = all[2]
            .days
            .iter()
            .filter(|d| d.kind == CalendarDayKind::Holiday && d.name.contains("Spring"))
            .count();
        assert_eq!(spring_2026, 9, "2026 Spring Festival is 9 days");
        let d = NaiveDate::from_ymd_opt(2026, 2, 14).unwrap();
        assert!(
            all[2]
                .days
                .iter()
                .any(|x| x.date == d && x.kind == CalendarDayKind::SwappedWorkday)
        );
    }
}
