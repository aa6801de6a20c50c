//! `ATTLOG` lines: one attendance record each, TAB-separated, as firmware sends them in
//! `POST /iclock/cdata?table=ATTLOG` (and as USB exports write them).
//!
//! ```text
//! PIN \t YYYY-MM-DD HH:MM:SS \t state \t verify \t workcode \t reserved ... [\t seq]
//! ```
//!
//! Firmwares send 5, 6, 7, 10 or 11 fields; the 11th of an MB10-VL is its own record
//! sequence number. PINs may be left-padded with spaces. Parsing is pure and keeps the
//! raw line, so a rejected line is stored with exactly what the device said.

use chrono::NaiveDateTime;
use schemas::events::RejectionReason;

/// Fewer fields than this and the line is not from any known firmware: typically a body
/// cut mid-line.
pub const MIN_FIELDS: usize = 5;

/// Longer than any firmware's PIN field.
pub const MAX_BADGE_DIGITS: usize = 24;

/// The field index (0-based) of the record sequence number on 11-field firmwares.
const SEQ_FIELD: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttlogRecord<'a> {
    /// The PIN, trimmed of the padding some firmwares and exports add.
    pub badge: &'a str,
    /// Local time exactly as sent; the device binding's zone says what instant it is.
    pub local_time: NaiveDateTime,
    pub punch_state: Option<u16>,
    pub verify_code: Option<u16>,
    pub work_code: Option<&'a str>,
    pub device_seq: Option<u64>,
    pub field_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRejected {
    pub reason: RejectionReason,
    pub detail: String,
}

impl LineRejected {
    fn new(reason: RejectionReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// Parses one line (without its line ending).
pub fn parse_line(line: &str) -> Result<AttlogRecord<'_>, LineRejected> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() < MIN_FIELDS {
        return Err(LineRejected::new(
            RejectionReason::TooFewFields,
            format!("{} fields, at least {MIN_FIELDS} expected", fields.len()),
        ));
    }
    let badge = fields[0].trim();
    // PINs are numeric (DOMAIN: badge numbers). Corrupted device memory shows up as
    // PINs like `ZZZZZZZZZZ` or control bytes, often with impossible dates too.
    if badge.is_empty()
        || badge.len() > MAX_BADGE_DIGITS
        || !badge.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(LineRejected::new(
            RejectionReason::UnparsableBadgeNumber,
            format!("badge number {:?}", fields[0]),
        ));
    }
    let time = fields[1].trim();
    let local_time = NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").map_err(|e| {
        LineRejected::new(RejectionReason::UnparsableTime, format!("{time:?}: {e}"))
    })?;
    let number = |i: usize| fields.get(i).and_then(|f| f.trim().parse::<u16>().ok());
    let work_code = fields
        .get(4)
        .map(|f| f.trim())
        .filter(|f| !f.is_empty() && *f != "0");
    let device_seq = fields
        .get(SEQ_FIELD)
        .and_then(|f| f.trim().parse::<u64>().ok());
    Ok(AttlogRecord {
        badge,
        local_time,
        punch_state: number(2),
        verify_code: number(3),
        work_code,
        device_seq,
        field_count: fields.len(),
    })
}

/// Splits a body into lines: LF or CRLF, with or without a final newline; blank lines
/// (a trailing newline, keep-alive padding) are not records and are skipped.
pub fn lines(body: &str) -> impl Iterator<Item = &str> {
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_firmware_field_count_parses() {
        let base = "  42\t2024-03-01 08:59:59\t0\t15";
        for (extra, n) in [
            ("\t0", 5),
            ("\t0\t0", 6),
            ("\t0\t0\t0", 7),
            ("\t0\t0\t0\t0\t0\t0", 10),
            ("\t0\t0\t0\t0\t0\t0\t12345", 11),
        ] {
            let line = format!("{base}{extra}");
            let record = parse_line(&line).unwrap();
            assert_eq!(record.badge, "42");
            assert_eq!(record.field_count, n);
            assert_eq!(record.verify_code, Some(15));
            assert_eq!(record.punch_state, Some(0));
            assert_eq!(record.device_seq, (n == 11).then_some(12345));
        }
    }

    #[test]
    fn truncated_lines_are_rejected_with_a_reason() {
        let cases = [
            ("   710011\t2020-09-30 10:1", RejectionReason::TooFewFields),
            ("   710011", RejectionReason::TooFewFields),
            (
                "   710011\t2020-09-30 10:1\t1\t0\t1",
                RejectionReason::UnparsableTime,
            ),
            (
                "\t2020-09-30 10:10:37\t1\t0\t1\t0",
                RejectionReason::UnparsableBadgeNumber,
            ),
            (
                "7 1\t2020-09-30 10:10:37\t1\t0\t1\t0",
                RejectionReason::UnparsableBadgeNumber,
            ),
            (
                "ZZZZZZZZZZ\t2026-08-04 15:31:38\t1\t48\t90\t0",
                RejectionReason::UnparsableBadgeNumber,
            ),
            (
                "\u{2}0\u{c}\t2023-01-25 08:49:39\t1\t196\t144\t77831",
                RejectionReason::UnparsableBadgeNumber,
            ),
            (
                "1\t2020-02-30 10:10:37\t1\t0\t1\t0",
                RejectionReason::UnparsableTime,
            ),
        ];
        for (line, reason) in cases {
            assert_eq!(parse_line(line).unwrap_err().reason, reason, "{line:?}");
        }
    }

    #[test]
    fn line_endings_and_blank_lines() {
        let body = "1\tA\r\n2\tB\n\n3\tC";
        assert_eq!(lines(body).collect::<Vec<_>>(), ["1\tA", "2\tB", "3\tC"]);
        assert_eq!(lines("").count(), 0);
        assert_eq!(lines("\r\n").count(), 0);
    }
}
