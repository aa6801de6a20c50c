//! The line parsers against mangled input: real device lines cut, spliced and corrupted
//! at random. Law: nothing panics, and every non-blank line of a body comes out as a
//! punch or as a rejection with its raw text (nothing is lost).

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use gateway::ingest::{Binding, read_attlog};
use proptest::prelude::*;
use schemas::ids::{DeviceSn, TenantId, ZoneName};

fn seeds() -> &'static Vec<String> {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut lines = Vec::new();
        for file in [
            "caoka_1_attlog.dat",
            "clockwork_1_attlog.dat",
            "clockwork_2_attlog.dat",
        ] {
            let text = std::fs::read_to_string(crate::real_devices_dir().join(file)).unwrap();
            // Every 97th line: a spread of each file's oddities, small enough to be quick.
            lines.extend(text.lines().step_by(97).map(str::to_owned));
        }
        lines
    })
}

fn binding() -> Binding {
    Binding {
        tenant: TenantId::parse("acme").unwrap(),
        sn: DeviceSn::from("FUZZ"),
        zone: ZoneName::parse("America/New_York").unwrap(),
        records_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
        claim_sequence: 1,
    }
}

#[derive(Debug, Clone)]
enum Mangle {
    Cut(usize),
    Replace(usize, char),
    Insert(usize, char),
    Splice(usize, usize),
}

fn mangle() -> impl Strategy<Value = Mangle> {
    let any_char = prop_oneof![
        Just('\t'),
        Just('\n'),
        Just('\r'),
        Just(' '),
        Just('Z'),
        Just('9'),
        Just(':'),
        Just('-'),
        any::<char>()
    ];
    prop_oneof![
        any::<usize>().prop_map(Mangle::Cut),
        (any::<usize>(), any_char.clone()).prop_map(|(i, c)| Mangle::Replace(i, c)),
        (any::<usize>(), any_char).prop_map(|(i, c)| Mangle::Insert(i, c)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mangle::Splice(a, b)),
    ]
}

fn apply(line: &str, m: &Mangle) -> String {
    let chars: Vec<char> = line.chars().collect();
    let at = |i: usize| {
        if chars.is_empty() {
            0
        } else {
            i % (chars.len() + 1)
        }
    };
    match m {
        Mangle::Cut(i) => chars[..at(*i)].iter().collect(),
        Mangle::Replace(i, c) => {
            let mut out = chars.clone();
            if !out.is_empty() {
                let i = i % out.len();
                out[i] = *c;
            }
            out.into_iter().collect()
        }
        Mangle::Insert(i, c) => {
            let mut out = chars.clone();
            out.insert(at(*i), *c);
            out.into_iter().collect()
        }
        Mangle::Splice(i, j) => {
            let other = &seeds()[j % seeds().len()];
            let mut out: String = chars[..at(*i)].iter().collect();
            out.push_str(&other[other.len() / 2..]);
            out
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mangled_real_lines_are_punches_or_rejections(
        picks in proptest::collection::vec((any::<usize>(), proptest::option::of(mangle())), 1..40),
    ) {
        let lines: Vec<String> = picks
            .iter()
            .map(|(i, m)| {
                let line = &seeds()[i % seeds().len()];
                m.as_ref().map_or_else(|| line.clone(), |m| apply(line, m))
            })
            .collect();
        let body = lines.join("\n");
        let now: DateTime<Utc> = "2026-11-21T00:00:00Z".parse().unwrap();
        let upload = read_attlog(&binding(), &body, now);
        let expected = gateway::protocol::attlog::lines(&body).count();
        prop_assert_eq!(upload.lines(), expected);
        for rejected in &upload.rejected {
            prop_assert!(body.contains(&rejected.raw), "raw text kept as sent");
        }
        for punch in &upload.punches {
            prop_assert!(punch.badge_number.as_ref().is_some_and(|b| b.as_str().bytes().all(|c| c.is_ascii_digit())));
        }
    }

    #[test]
    fn arbitrary_text_never_panics(body in ".{0,600}") {
        let now: DateTime<Utc> = "2026-11-21T00:00:00Z".parse().unwrap();
        let upload = read_attlog(&binding(), &body, now);
        prop_assert_eq!(upload.lines(), gateway::protocol::attlog::lines(&body).count());
    }
}
