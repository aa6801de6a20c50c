//! `ATTLOG` lines: one attendance record each, TAB-separated, as firmware sends them in
//! `POST /iclock/cdata?table=ATTLOG` (and as USB exports write them).
//!
//! ```text
//! PIN \t YYYY-MM-DD HH:MM:SS \t state \t verify \t workcode \t reserved ... [\t seq]
//! ```
//!
//! Firmwares send 5 to 16 fields. The 11th field means different things: on an
//! 11-field MB10-VL line it is the device's own record sequence number, on 12-field
//! PUSH 2.4 lines a UTC offset, on 16-field TFT lines a job code. PINs may be
//! left-padded with spaces. Legacy firmware separates fields with spaces instead of
//! TABs (the date and time are then two fields). Times are `YYYY-MM-DD HH:MM:SS`, or
//! the other layouts [`super::time::parse_local`] reads. Parsing is pure and keeps the
//! raw line, so a rejected line is stored with exactly what the device said.

use chrono::NaiveDateTime;
use schemas::events::RejectionReason;

/// Fewer fields than this and the line is not from any known firmware: typically a body
/// cut mid-line.
pub const MIN_FIELDS: usize = 5;

/// Longer than any firmware's PIN field.
pub const MAX_BADGE_DIGITS: usize = 24;

/// The field index (0-based) of the record sequence number on 11-field firmwares, and
/// of the job code on 16-field TFT lines.
const ELEVENTH: usize = 10;

/// Longer than any ATTLOG record firmware writes (they are under 200 bytes): such a
/// line is rejected alone, cut short, and never makes its batch too large to store.
pub const MAX_LINE_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttlogRecord<'a> {
    /// The PIN, trimmed of the padding some firmwares and exports add.
    pub badge: &'a str,
    /// Local time exactly as sent; the device binding's zone says what instant it is.
    pub local_time: NaiveDateTime,
    pub punch_state: Option<u16>,
    pub verify_code: Option<u16>,
    pub work_code: Option<&'a str>,
    pub job_code: Option<&'a str>,
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
    if line.len() > MAX_LINE_BYTES {
        return Err(LineRejected::new(
            RejectionReason::LineTooLong,
            format!("{} bytes, at most {MAX_LINE_BYTES} expected", line.len()),
        ));
    }
    let fields = split_fields(line);
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
    let local_time = super::time::parse_local(time).ok_or_else(|| {
        LineRejected::new(
            RejectionReason::UnparsableTime,
            format!("{time:?} is not a date and time"),
        )
    })?;
    let number = |i: usize| fields.get(i).and_then(|f| f.trim().parse::<u16>().ok());
    let code = |i: usize| {
        fields
            .get(i)
            .map(|f| f.trim())
            .filter(|f| !f.is_empty() && *f != "0")
    };
    let device_seq = match fields.len() {
        11 => fields[ELEVENTH].trim().parse::<u64>().ok(),
        _ => None,
    };
    let job_code = match fields.len() {
        16 => code(ELEVENTH),
        _ => None,
    };
    Ok(AttlogRecord {
        badge,
        local_time,
        punch_state: number(2),
        verify_code: number(3),
        work_code: code(4),
        job_code,
        device_seq,
        field_count: fields.len(),
    })
}

/// TAB-separated fields; a line without a TAB is legacy space-separated, where the
/// date and the time are two fields joined again here.
fn split_fields(line: &str) -> Vec<&str> {
    if line.contains('\t') {
        return line.split('\t').collect();
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() < 3 || !words[2].contains(':') {
        return words;
    }
    // `PIN DATE TIME ...`: rejoin DATE and TIME by their place in the line.
    let start = words[1].as_ptr() as usize - line.as_ptr() as usize;
    let end = words[2].as_ptr() as usize - line.as_ptr() as usize + words[2].len();
    let mut fields = vec![words[0], &line[start..end]];
    fields.extend_from_slice(&words[3..]);
    fields
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
    fn sixteen_field_tft_lines_carry_a_job_code_not_a_sequence() {
        // Regression: the 11th field of every line of 11 or more fields was taken as a
        // sequence number.
        let line = "7\t2026-01-05 08:00:00\t0\t1\t3\t0\t0\t0\t0\t0\t4711\t0\t0\t0\t0\t0";
        let record = parse_line(line).unwrap();
        assert_eq!(record.field_count, 16);
        assert_eq!(record.job_code, Some("4711"));
        assert_eq!(record.work_code, Some("3"));
        assert_eq!(record.device_seq, None);
        // PUSH 2.4's 12 fields: the 11th is a UTC offset, neither.
        let line = "7\t2026-01-05 08:00:00\t0\t1\t0\t0\t0\t0\t36.5\t0\t28800\t-1";
        let record = parse_line(line).unwrap();
        assert_eq!((record.device_seq, record.job_code), (None, None));
    }

    #[test]
    fn legacy_space_separated_lines_and_other_time_layouts() {
        let record = parse_line("  1001 2026-01-05 08:00:07 0 1 0 0").unwrap();
        assert_eq!(record.badge, "1001");
        assert_eq!(record.local_time.to_string(), "2026-01-05 08:00:07");
        assert_eq!((record.punch_state, record.verify_code), (Some(0), Some(1)));
        for time in ["2026/01/05 08:00:07", "2026-01-05T08:00:07"] {
            let line = format!("1001\t{time}\t0\t1\t0\t0");
            assert_eq!(
                parse_line(&line).unwrap().local_time.to_string(),
                "2026-01-05 08:00:07"
            );
        }
        assert_eq!(
            parse_line("1001 2026-01-05").unwrap_err().reason,
            RejectionReason::TooFewFields
        );
    }

    #[test]
    fn a_line_longer_than_any_record_is_rejected_alone() {
        let line = format!("1\t2026-01-05 08:00:00\t0\t1\t0\t{}", "9".repeat(2 << 20));
        assert_eq!(
            parse_line(&line).unwrap_err().reason,
            RejectionReason::LineTooLong
        );
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
