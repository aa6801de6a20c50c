//! The handshake reply (`GET /iclock/cdata?SN=..&options=all`): the options block that
//! tells a device how and when to push.

use chrono::{DateTime, Offset, Utc};
use chrono_tz::Tz;

/// Renders the options block for device `sn` in `zone` at `now`.
///
/// `ATTLOGStamp=None` asks for every record the device has not yet sent to this server;
/// devices keep their own cursor per server and many re-send everything anyway, which is
/// harmless here (punch ids). `TimeZone` is the zone's current offset in hours, which
/// firmware uses to set its clock; `Realtime=1` pushes each punch as it happens.
pub fn render(sn: &str, zone: Tz, now: DateTime<Utc>) -> String {
    let offset_s = now.with_timezone(&zone).offset().fix().local_minus_utc();
    let hours = f64::from(offset_s) / 3600.0;
    let time_zone = if offset_s % 3600 == 0 {
        format!("{}", offset_s / 3600)
    } else {
        format!("{hours}")
    };
    [
        format!("GET OPTION FROM: {sn}"),
        "ATTLOGStamp=None".into(),
        "OPERLOGStamp=9999".into(),
        "ATTPHOTOStamp=None".into(),
        "ErrorDelay=30".into(),
        "Delay=10".into(),
        "TransTimes=00:00;14:05".into(),
        "TransInterval=1".into(),
        "TransFlag=TransData AttLog\tOpLog\tEnrollUser\tChgUser\tEnrollFP\tChgFP".into(),
        format!("TimeZone={time_zone}"),
        "Realtime=1".into(),
        "Encrypt=None".into(),
        String::new(),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_is_the_current_offset() {
        let now: DateTime<Utc> = "2026-01-15T00:00:00Z".parse().unwrap();
        assert!(render("X", chrono_tz::Asia::Shanghai, now).contains("\nTimeZone=8\n"));
        assert!(render("X", chrono_tz::America::New_York, now).contains("\nTimeZone=-5\n"));
        assert!(render("X", chrono_tz::Asia::Kolkata, now).contains("\nTimeZone=5.5\n"));
        assert!(render("SN1", chrono_tz::UTC, now).starts_with("GET OPTION FROM: SN1\n"));
    }
}
