//! Time on the wire: the `TimeZone` option, `ServerTZ`, ZKTeco's encoded seconds, and
//! the local-time layouts firmware writes.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// The `TimeZone=` value of the attendance handshake for a UTC offset: whole hours in
/// hours (`8`, `-5`), any other offset in minutes (`330` for +5:30, `345` for +5:45,
/// `-210` for -3:30), as the PUSH protocol documents it.
pub fn time_zone_option(offset_seconds: i32) -> String {
    if offset_seconds % 3600 == 0 {
        (offset_seconds / 3600).to_string()
    } else {
        (offset_seconds / 60).to_string()
    }
}

/// `ServerTZ=` of a time answer: `+0800`, `-0330`, `+0545`.
pub fn server_tz(offset_seconds: i32) -> String {
    let sign = if offset_seconds < 0 { '-' } else { '+' };
    let minutes = offset_seconds.abs() / 60;
    format!("{sign}{:02}{:02}", minutes / 60, minutes % 60)
}

/// ZKTeco's encoded time (Security PUSH appendix 5): seconds in a calendar of 12
/// months of 31 days from 2000-01-01.
pub fn zk_encode(t: NaiveDateTime) -> i64 {
    let days = (i64::from(t.year()) - 2000) * 12 * 31
        + (i64::from(t.month()) - 1) * 31
        + i64::from(t.day())
        - 1;
    days * 86_400 + i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second())
}

/// The time `zk_encode` made, if it is a real date.
pub fn zk_decode(encoded: i64) -> Option<NaiveDateTime> {
    if encoded < 0 {
        return None;
    }
    let (days, secs) = (encoded / 86_400, encoded % 86_400);
    let year = 2000 + days / (12 * 31);
    let month = (days / 31) % 12 + 1;
    let day = days % 31 + 1;
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32, day as u32)?
        .and_time(NaiveTime::from_num_seconds_from_midnight_opt(
            secs as u32,
            0,
        )?)
        .into()
}

/// A local date and time as firmware writes it: `2026-01-05 08:30:00`, with `/` for
/// `-` (`2026/01/05`), `T` for the space, one-digit fields (`2026/1/5 8:30:00`), or
/// without seconds (`2026-01-05 08:30`). Nothing else: a time that could be read two
/// ways is not a time.
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split(['-', '/']);
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || y.len() != 4 || m.len() > 2 || day.len() > 2 {
        return None;
    }
    let mut t = time.trim().split(':');
    let (h, min, s) = (t.next()?, t.next()?, t.next().unwrap_or("0"));
    if t.next().is_some() || h.len() > 2 || min.len() != 2 || s.len() > 2 {
        return None;
    }
    let number = |v: &str| -> Option<u32> {
        (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse().ok())
            .flatten()
    };
    NaiveDate::from_ymd_opt(number(y)? as i32, number(m)?, number(day)?)?.and_hms_opt(
        number(h)?,
        number(min)?,
        number(s)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_that_are_not_whole_hours_are_minutes() {
        assert_eq!(time_zone_option(8 * 3600), "8");
        assert_eq!(time_zone_option(-5 * 3600), "-5");
        assert_eq!(time_zone_option(0), "0");
        assert_eq!(time_zone_option(5 * 3600 + 1800), "330");
        assert_eq!(time_zone_option(5 * 3600 + 45 * 60), "345");
        assert_eq!(time_zone_option(-(3 * 3600 + 1800)), "-210");
        assert_eq!(server_tz(8 * 3600), "+0800");
        assert_eq!(server_tz(-(3 * 3600 + 1800)), "-0330");
        assert_eq!(server_tz(5 * 3600 + 45 * 60), "+0545");
    }

    #[test]
    fn encoded_seconds_round_trip() {
        let t = NaiveDate::from_ymd_opt(2018, 2, 22)
            .unwrap()
            .and_hms_opt(14, 54, 54)
            .unwrap();
        // The protocol document's own example.
        assert_eq!(zk_encode(t), 583_080_894);
        assert_eq!(zk_decode(583_080_894), Some(t));
        assert_eq!(zk_decode(-1), None);
    }

    #[test]
    fn layouts_firmware_writes() {
        let t = NaiveDate::from_ymd_opt(2026, 1, 5)
            .unwrap()
            .and_hms_opt(8, 3, 9)
            .unwrap();
        for text in [
            "2026-01-05 08:03:09",
            "2026/01/05 08:03:09",
            "2026-01-05T08:03:09",
            "2026/1/5 8:03:09",
            " 2026-01-05 08:03:09 ",
        ] {
            assert_eq!(parse_local(text), Some(t), "{text}");
        }
        assert_eq!(
            parse_local("2026-01-05 08:03"),
            Some(t.with_second(0).unwrap())
        );
        for bad in [
            "2026-02-30 08:00:00",
            "26-01-05 08:00:00",
            "2026-01-05",
            "2026-01-05 8:3:9",
            "2026-01-05 08:00:00:00",
            "2026-01-05 +8:00:00",
            "1971--10--29 -23:-27:-54",
            "2026-01-05 08:00:00 extra",
        ] {
            assert_eq!(parse_local(bad), None, "{bad}");
        }
    }
}
