//! The three real device exports through the pure ingest core: every line is kept as a
//! punch or a rejection with its reason; nothing is lost.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use gateway::ingest::{Binding, read_attlog};
use schemas::ids::{DeviceSn, TenantId, ZoneName};

#[derive(Debug, serde::Serialize)]
struct Outcome {
    lines: usize,
    punches: usize,
    distinct_punches: usize,
    rejected_by_reason: BTreeMap<String, usize>,
    first_punch: String,
    last_punch: String,
}

fn outcome(file: &str) -> Outcome {
    let body = std::fs::read_to_string(crate::real_devices_dir().join(file)).unwrap();
    let binding = Binding {
        tenant: TenantId::parse("acme").unwrap(),
        sn: DeviceSn::from(file),
        zone: ZoneName::parse("Asia/Manila").unwrap(),
        // The machines were in use years before this server saw them.
        records_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
        claim_sequence: 1,
    };
    let now: DateTime<Utc> = "2026-11-21T00:00:00Z".parse().unwrap();
    let upload = read_attlog(&binding, &body, now);
    let lines = gateway::protocol::attlog::lines(&body).count();
    assert_eq!(
        upload.lines(),
        lines,
        "every line is a punch or a rejection"
    );
    let mut rejected_by_reason = BTreeMap::new();
    for r in &upload.rejected {
        *rejected_by_reason
            .entry(format!("{:?}", r.reason))
            .or_default() += 1;
    }
    let distinct: HashSet<_> = upload.punches.iter().map(|p| p.punch_id).collect();
    let mut times: Vec<_> = upload.punches.iter().map(|p| p.local_time).collect();
    times.sort();
    Outcome {
        lines,
        punches: upload.punches.len(),
        distinct_punches: distinct.len(),
        rejected_by_reason,
        first_punch: times.first().unwrap().to_string(),
        last_punch: times.last().unwrap().to_string(),
    }
}

#[test]
fn caoka() {
    insta::assert_yaml_snapshot!(outcome("caoka_1_attlog.dat"));
}

#[test]
fn clockwork_1() {
    insta::assert_yaml_snapshot!(outcome("clockwork_1_attlog.dat"));
}

#[test]
fn clockwork_2() {
    insta::assert_yaml_snapshot!(outcome("clockwork_2_attlog.dat"));
}
