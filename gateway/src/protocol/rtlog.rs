//! Security-PUSH access records: `table=rtlog` (real time), `table=transaction` and the
//! `transaction` lines of `querydata` (a backlog), as access firmware (SpeedFace,
//! ProFace, SenseFace in access mode) sends them.
//!
//! ```text
//! time=2026-02-23 14:13:48 \t pin=2 \t cardno=0 \t eventaddr=1 \t event=3 \t inoutstatus=0 \t verifytype=15 \t index=140 ...
//! transaction cardno=0 \t pin=7 \t verified=15 \t doorid=1 \t eventtype=0 \t inoutstate=0 \t time_second=583080894 \t index=92 ...
//! ```
//!
//! Fields are `key=value` in any order (devices do not keep the document's order). A
//! record is a punch when it names a person (`pin` other than 0) and its event is one
//! of the verification grants of the protocol's event table (appendix 2): a person was
//! identified at the device. Door, system and alarm events, denials and door-state rows
//! are not punches: they are answered for, counted, and not stored as punches.

use chrono::NaiveDateTime;
use schemas::events::RejectionReason;

use super::attlog::{LineRejected, MAX_BADGE_DIGITS, MAX_LINE_BYTES};

/// Events of the protocol's appendix 2 that mean "a person was verified": 0 normal
/// verification, 1 in a normally-open period, 2 first user, 3 multi-user (what real
/// SpeedFace and SenseFace units send for an ordinary face or finger punch), 4
/// emergency password, 14-19 the same in other door modes, 203 multi-user verified,
/// 207 password, 208 super user, 215/216/218 identity card, 222 remote identification,
/// 232 verification passed.
pub const VERIFIED_EVENTS: [u16; 19] = [
    0, 1, 2, 3, 4, 14, 15, 16, 17, 18, 19, 203, 207, 208, 215, 216, 218, 222, 232,
];

/// An access record that is a punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPunch<'a> {
    pub pin: &'a str,
    /// Device local time.
    pub local_time: NaiveDateTime,
    pub event: u16,
    /// `verifytype`: 1 fingerprint, 3 password, 4 card, 15 face, 25-29 palm, ...
    pub verify_code: Option<u16>,
    /// `inoutstatus`: 0 in, 1 out.
    pub in_out: Option<u16>,
    /// `index`: the record's own id on the device.
    pub index: Option<u64>,
    pub door: Option<&'a str>,
}

/// What one access line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessRecord<'a> {
    Punch(AccessPunch<'a>),
    /// Understood and not a punch, with why.
    NotAPunch(&'static str),
}

/// Parses one `rtlog` or `transaction` line.
pub fn parse_line(line: &str) -> Result<AccessRecord<'_>, LineRejected> {
    if line.len() > MAX_LINE_BYTES {
        return Err(rejected(
            RejectionReason::LineTooLong,
            format!("{} bytes, at most {MAX_LINE_BYTES} expected", line.len()),
        ));
    }
    let line = line.trim_start();
    // `transaction cardno=..`: a table tag before the fields.
    let body = match line.split_once([' ', '\t']) {
        Some((tag, rest)) if !tag.contains('=') => rest,
        _ => line,
    };
    let fields: Vec<(&str, &str)> = body
        .split('\t')
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |keys: &[&str]| {
        keys.iter().find_map(|key| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| *v)
        })
    };
    let Some(pin) = get(&["pin"]) else {
        if get(&["sensor", "relay", "alarm", "door"]).is_some() {
            return Ok(AccessRecord::NotAPunch("a door-state row"));
        }
        return Err(rejected(RejectionReason::TooFewFields, "no pin field"));
    };
    let number = |keys: &[&str]| get(keys).and_then(|v| v.parse::<u16>().ok());
    let event = match get(&["event", "eventtype"]) {
        None => return Err(rejected(RejectionReason::TooFewFields, "no event field")),
        Some(v) => v
            .parse::<u16>()
            .map_err(|_| rejected(RejectionReason::Other, format!("event {v:?}")))?,
    };
    let local_time = match (get(&["time"]), get(&["time_second"])) {
        (Some(text), _) => super::time::parse_local(text).ok_or_else(|| {
            rejected(
                RejectionReason::UnparsableTime,
                format!("{text:?} is not a date and time"),
            )
        })?,
        (None, Some(encoded)) => encoded
            .parse::<i64>()
            .ok()
            .and_then(super::time::zk_decode)
            .ok_or_else(|| {
                rejected(
                    RejectionReason::UnparsableTime,
                    format!("time_second={encoded:?}"),
                )
            })?,
        (None, None) => return Err(rejected(RejectionReason::TooFewFields, "no time field")),
    };
    if pin.is_empty() || pin.bytes().all(|b| b == b'0') {
        return Ok(AccessRecord::NotAPunch("no person: a door or system event"));
    }
    if pin.len() > MAX_BADGE_DIGITS || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(rejected(
            RejectionReason::UnparsableBadgeNumber,
            format!("pin {pin:?}"),
        ));
    }
    if !VERIFIED_EVENTS.contains(&event) {
        return Ok(AccessRecord::NotAPunch(match event {
            20..=99 => "access denied: not a punch",
            100..=199 => "an alarm: not a punch",
            _ => "a door or system event: not a punch",
        }));
    }
    Ok(AccessRecord::Punch(AccessPunch {
        pin,
        local_time,
        event,
        verify_code: number(&["verifytype", "verified"]),
        in_out: number(&["inoutstatus", "inoutstate"]),
        index: get(&["index"]).and_then(|v| v.parse().ok()),
        door: get(&["eventaddr", "doorid"]).filter(|v| !v.is_empty()),
    }))
}

fn rejected(reason: RejectionReason, detail: impl Into<String>) -> LineRejected {
    LineRejected {
        reason,
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_records_in_any_field_order() {
        let line = "time=2026-02-23 14:13:48\tpin=2\tcardno=0\teventaddr=1\tevent=3\tinoutstatus=0\tverifytype=15\tindex=140\tsitecode=0\tlinkid=0\tmaskflag=0\ttemperature=0\tconvtemperature=0";
        let AccessRecord::Punch(p) = parse_line(line).unwrap() else {
            panic!("not a punch")
        };
        assert_eq!(p.pin, "2");
        assert_eq!(p.local_time.to_string(), "2026-02-23 14:13:48");
        assert_eq!(
            (p.event, p.verify_code, p.in_out, p.index),
            (3, Some(15), Some(0), Some(140))
        );
        let reordered = "pin=445966\tevent=0\tverifytype=1\tindex=40\ttime=2026-09-09 12:09:10\r";
        assert!(matches!(parse_line(reordered), Ok(AccessRecord::Punch(_))));
    }

    #[test]
    fn a_backlog_transaction_line_with_encoded_time() {
        let line = "transaction cardno=0\tpin=7\tverified=15\tdoorid=1\teventtype=0\tinoutstate=1\ttime_second=583080894\tindex=92\tsitecode=0\tdevid=1\tsn=3383154200002";
        let AccessRecord::Punch(p) = parse_line(line).unwrap() else {
            panic!("not a punch")
        };
        assert_eq!(p.local_time.to_string(), "2018-02-22 14:54:54");
        assert_eq!(
            (p.verify_code, p.in_out, p.door),
            (Some(15), Some(1), Some("1"))
        );
    }

    #[test]
    fn door_events_denials_alarms_and_state_rows_are_not_punches() {
        for line in [
            "time=2026-02-23 14:13:48\tpin=0\tcardno=0\teventaddr=1\tevent=206\tinoutstatus=2\tverifytype=200\tindex=1",
            "time=2026-02-23 14:13:48\tpin=5\tcardno=0\teventaddr=1\tevent=27\tinoutstatus=0\tverifytype=15\tindex=2",
            "time=2026-02-23 14:13:48\tpin=5\tcardno=0\teventaddr=1\tevent=102\tinoutstatus=0\tverifytype=200\tindex=3",
            "time=2026-02-23 14:13:48\tpin=5\tevent=201\tindex=4",
            "time=2026-02-23 14:13:48\tsensor=02\trelay=00\talarm=0100000000000000\tdoor=01",
        ] {
            assert!(
                matches!(parse_line(line), Ok(AccessRecord::NotAPunch(_))),
                "{line}"
            );
        }
    }

    #[test]
    fn unreadable_records_are_rejected_with_a_reason() {
        use RejectionReason::*;
        for (line, reason) in [
            ("time=2026-02-23 14:13:48\tpin=5\tcard", TooFewFields),
            (
                "time=1971--10--29 -23:-27:-54\tpin=5\tevent=0",
                UnparsableTime,
            ),
            (
                "time=2026-02-23 14:13:48\tpin=A5\tevent=0",
                UnparsableBadgeNumber,
            ),
            ("time=2026-02-23 14:13:48\tpin=5\tevent=x", Other),
            ("pin=5\tevent=0", TooFewFields),
            ("garbage", TooFewFields),
        ] {
            assert_eq!(parse_line(line).unwrap_err().reason, reason, "{line}");
        }
    }
}
