//! The body of the fuzz target (`fuzz/fuzz_targets/device_lines.rs`), shared with the
//! test suite's smoke run (`tests/it/fuzz_smoke.rs`): any bytes a device may send,
//! through every line parser.
//!
//! Law: nothing panics, and every non-blank line of a body comes out exactly once: as
//! one punch or one rejection holding the line as sent (`ATTLOG` ingest), one record or
//! one rejection (`OPERLOG`), one result or one skipped line (command results).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use schemas::ids::{DeviceSn, TenantId, ZoneName};

use crate::ingest::{Binding, read_attlog};
use crate::protocol::attlog::{self, MAX_BADGE_DIGITS};
use crate::protocol::commands::parse_results;
use crate::protocol::operlog::{self, BioKind, OperRecord, PhotoKind};

/// Checks the law on one body; panics, naming the line, when it is broken.
pub fn check_device_body(bytes: &[u8]) {
    let body = operlog::decode_body(bytes);
    let lines: Vec<&str> = attlog::lines(&body).collect();

    for line in &lines {
        if let Ok(record) = attlog::parse_line(line) {
            assert_pin(record.badge, line);
            assert!(record.field_count >= attlog::MIN_FIELDS, "{line:?}");
        }
        if let Ok(record) = operlog::parse_line(line) {
            check_oper_record(&record, line);
        }
    }

    // Ingest keeps the order of the body in each list, and equal lines meet equal fates
    // (the binding and the clock are fixed), so walking both lists along the body finds
    // every line exactly once.
    let upload = read_attlog(&binding(), &body, now());
    let mut punches = upload.punches.iter().peekable();
    let mut rejected = upload.rejected.iter().peekable();
    for line in &lines {
        if punches
            .next_if(|p| p.raw_line.as_deref() == Some(*line))
            .is_some()
        {
            continue;
        }
        assert!(
            rejected.next_if(|r| r.raw == *line).is_some(),
            "line lost by ATTLOG ingest: {line:?}"
        );
    }
    assert!(
        punches.next().is_none() && rejected.next().is_none(),
        "ATTLOG ingest made more punches and rejections than there are lines"
    );
    assert_eq!(upload.lines(), lines.len());
    for punch in &upload.punches {
        let badge = punch
            .badge_number
            .as_ref()
            .expect("a device punch has a badge");
        assert_pin(
            badge.as_str(),
            punch.raw_line.as_deref().unwrap_or_default(),
        );
    }

    let (results, skipped) = parse_results(&body);
    assert_eq!(
        results.len() + skipped.len(),
        lines.len(),
        "command results: a line lost or counted twice"
    );
    for line in &skipped {
        assert!(!line.is_empty() && body.contains(line.as_str()), "{line:?}");
    }
}

fn binding() -> Binding {
    Binding {
        tenant: TenantId::parse("fuzz").expect("a valid tenant id"),
        sn: DeviceSn::from("FUZZ"),
        // A zone with daylight-saving gaps and folds.
        zone: ZoneName::parse("America/New_York").expect("a known zone"),
        records_from: NaiveDate::from_ymd_opt(2019, 1, 1).expect("a date"),
        claim_sequence: 1,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap()
}

fn assert_pin(pin: &str, line: &str) {
    assert!(
        !pin.is_empty() && pin.len() <= MAX_BADGE_DIGITS && pin.bytes().all(|b| b.is_ascii_digit()),
        "PIN {pin:?} accepted from {line:?}"
    );
    assert!(line.contains(pin), "PIN {pin:?} not from {line:?}");
}

fn check_oper_record(record: &OperRecord<'_>, line: &str) {
    let kind_round_trips = |kind: BioKind| assert_eq!(BioKind::from_code(kind.code()), kind);
    match record {
        OperRecord::User(user) => {
            assert_pin(user.pin, line);
            assert!(line.contains(user.name));
            let _ = user.card_number();
        }
        OperRecord::Fingerprint(t) | OperRecord::Face(t) => {
            assert_pin(t.pin, line);
            assert!(t.size <= line.len());
        }
        OperRecord::BioData(bio) => {
            assert_pin(bio.pin, line);
            kind_round_trips(bio.kind);
        }
        OperRecord::Photo(photo) => {
            assert_pin(photo.pin, line);
            if let PhotoKind::Biometric(kind) = photo.kind {
                kind_round_trips(kind);
            }
        }
        OperRecord::Operation(op) => {
            for field in [op.admin].iter().chain(&op.values) {
                assert!(line.contains(field), "{field:?} not from {line:?}");
            }
        }
        OperRecord::Other { tag } => assert!(line.trim_start().starts_with(tag)),
    }
}
