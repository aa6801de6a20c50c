//! Law: every envelope survives MessagePack-by-name and JSON unchanged.

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use schemas::Envelope;

fn envelope_from(bytes: &[u8], kind: usize) -> Option<Envelope> {
    let mut u = Unstructured::new(bytes);
    let mut envelope = Envelope::arbitrary(&mut u).ok()?;
    // Steer the event to a chosen kind so every kind is exercised, not only the ones
    // `arbitrary` happens to reach.
    let kind = schemas::Event::KINDS[kind % schemas::Event::KINDS.len()];
    envelope.event = schemas::events::arbitrary_of_kind(kind, &mut u).ok()??;
    Some(envelope)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn msgpack_and_json_round_trip(bytes in proptest::collection::vec(any::<u8>(), 64..2048), kind in any::<usize>()) {
        let Some(envelope) = envelope_from(&bytes, kind) else { return Ok(()) };

        let packed = envelope.to_msgpack().unwrap();
        prop_assert_eq!(&Envelope::from_msgpack(&packed).unwrap(), &envelope);

        let json = envelope.to_json().unwrap();
        prop_assert_eq!(&Envelope::from_json(&json).unwrap(), &envelope);
    }
}

#[test]
fn every_kind_round_trips_at_least_once() {
    // Deterministic coverage beside the random law above.
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for kind in 0..schemas::Event::KINDS.len() {
        let envelope = envelope_from(&bytes, kind).expect("enough bytes for any kind");
        assert_eq!(envelope.event.kind(), schemas::Event::KINDS[kind]);
        let back = Envelope::from_msgpack(&envelope.to_msgpack().unwrap()).unwrap();
        assert_eq!(back, envelope);
        let back = Envelope::from_json(&envelope.to_json().unwrap()).unwrap();
        assert_eq!(back, envelope);
    }
}

#[test]
fn msgpack_is_by_field_name() {
    let bytes: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    let envelope = envelope_from(&bytes, 0).unwrap();
    let packed = envelope.to_msgpack().unwrap();
    let needle = b"event_id";
    assert!(
        packed.windows(needle.len()).any(|w| w == needle),
        "field names must be on the wire so added fields stay compatible"
    );
}
