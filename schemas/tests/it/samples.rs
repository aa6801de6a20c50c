//! Compatibility: one committed sample per released event kind keeps decoding, in both
//! encodings, to the same value. Samples are added (with LEDGERCLOCK_BLESS=1) when a kind
//! is new and never rewritten afterwards.

use arbitrary::Unstructured;
use chrono::{DateTime, Utc};
use schemas::{Actor, Envelope, SCHEMA_VERSION, ids::EventId, ids::TenantId};

use crate::{blessing, crate_dir};

const VERSION_DIR: &str = "samples/v1";

fn sample(kind_index: usize) -> Envelope {
    // A small deterministic generator so that a blessed sample is reproducible.
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (kind_index as u64 + 1);
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let kind = schemas::Event::KINDS[kind_index];
    let event = schemas::events::arbitrary_of_kind(kind, &mut Unstructured::new(&bytes))
        .unwrap()
        .unwrap();
    let at: DateTime<Utc> = "2026-03-02T01:02:03Z".parse().unwrap();
    Envelope {
        event_id: EventId::derived(&["sample", kind]),
        tenant: TenantId::parse("acme").unwrap(),
        recorded_at: at,
        occurred_at: at,
        schema_version: SCHEMA_VERSION,
        actor: Actor::System {
            component: "samples".into(),
        },
        causation_id: None,
        correlation_id: None,
        command_id: None,
        event,
    }
}

#[test]
fn every_kind_has_a_sample_that_decodes() {
    let dir = crate_dir().join(VERSION_DIR);
    let mut missing = Vec::new();
    for (i, kind) in schemas::Event::KINDS.iter().enumerate() {
        let packed_path = dir.join(format!("{kind}.msgpack"));
        let json_path = dir.join(format!("{kind}.json"));
        if !packed_path.exists() || !json_path.exists() {
            if blessing() {
                let envelope = sample(i);
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&packed_path, envelope.to_msgpack().unwrap()).unwrap();
                let pretty = serde_json::to_string_pretty(&envelope).unwrap() + "\n";
                std::fs::write(&json_path, pretty).unwrap();
            } else {
                missing.push(*kind);
                continue;
            }
        }
        let packed = std::fs::read(&packed_path).unwrap();
        let from_packed = Envelope::from_msgpack(&packed)
            .unwrap_or_else(|e| panic!("{kind}.msgpack no longer decodes: {e}"));
        let json = std::fs::read_to_string(&json_path).unwrap();
        let from_json = Envelope::from_json(&json)
            .unwrap_or_else(|e| panic!("{kind}.json no longer decodes: {e}"));
        assert_eq!(from_packed.event.kind(), *kind);
        assert_eq!(from_packed, from_json, "{kind}: the two samples disagree");
    }
    assert!(
        missing.is_empty(),
        "kinds without a committed sample (add with LEDGERCLOCK_BLESS=1 cargo test -p schemas): {missing:?}"
    );
}

#[test]
fn no_sample_for_an_unknown_kind() {
    for entry in std::fs::read_dir(crate_dir().join(VERSION_DIR)).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let kind = name.split('.').next().unwrap();
        assert!(
            schemas::Event::KINDS.contains(&kind),
            "sample {name} names a kind the catalogue no longer has: kinds are never removed"
        );
    }
}
