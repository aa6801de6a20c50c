//! Phone punches over real HTTP into a real nats-server, checked against rules read from
//! the same ledger.

use chrono::{SubsecRound, Utc};
use futures::StreamExt;
use ledger::{Expected, LedgerConfig};
use schemas::Envelope;

use crate::http::{acme, harness, raw_records};
use gateway::simulator::Device;

/// The departments, people and rules of the `mobile-geofence-merge` fixture: Sun and Tao
/// under a 100 m fence at HQ with an office Wi-Fi, out-of-range punches kept as location
/// exceptions; Uma under a field-work rule.
fn organisation() -> Vec<Envelope> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../replay-fixtures/mobile-geofence-merge.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('{') && !l.contains("\"PunchRecorded\""))
        .map(|l| Envelope::from_json(l).unwrap())
        .collect()
}

const HQ: &str = r#"{"latitude":31.2305,"longitude":121.4738,"accuracy_m":12}"#;
const TWO_KM_AWAY: &str = r#"{"latitude":31.2484,"longitude":121.4737,"accuracy_m":30}"#;

async fn punch(phone: &Device, body: &str) -> (u16, serde_json::Value) {
    let answer = phone
        .request("POST", "/mobile/punch", body.as_bytes())
        .await
        .unwrap();
    let json =
        serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {:?}", answer.body));
    (answer.status, json)
}

#[tokio::test]
async fn phone_punches_are_checked_against_the_rule_in_the_ledger() {
    let h = harness(LedgerConfig::default()).await;
    h.ledger.append_many(&organisation()).await.unwrap();
    let phone = Device::new(h.addr, "phone");
    let now = Utc::now().trunc_subsecs(0).to_rfc3339();

    let at_hq =
        format!(r#"{{"tenant":"acme","person_id":"p-sun","time":"{now}","location":{HQ}}}"#);
    let (status, first) = punch(&phone, &at_hq).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["outcome"], "in_range");
    assert_eq!(first["person"], "Sun");
    assert_eq!(first["zone"], "Asia/Shanghai");
    assert_eq!(first["duplicate"], false);
    // The phone lost the answer and sends again: the same punch, stored once.
    let (status, again) = punch(&phone, &at_hq).await;
    assert_eq!(status, 201);
    assert_eq!(again["punch_id"], first["punch_id"]);
    assert_eq!(again["duplicate"], true);

    let away = format!(r#"{{"tenant":"acme","person_id":"p-tao","location":{TWO_KM_AWAY}}}"#);
    let (status, exception) = punch(&phone, &away).await;
    assert_eq!(status, 201);
    assert_eq!(exception["outcome"], "location_exception");
    let uma = format!(r#"{{"tenant":"acme","person_id":"p-uma","location":{TWO_KM_AWAY}}}"#);
    assert_eq!(punch(&phone, &uma).await.1["outcome"], "field_work");

    // The administrator makes the sales rule refuse out-of-range punches: the very next
    // punch is judged by the new version.
    let mut refusing = organisation()
        .into_iter()
        .find(|e| e.event.kind() == "RuleVersionDefined")
        .unwrap();
    let schemas::Event::RuleVersionDefined(rule) = &mut refusing.event else {
        unreachable!()
    };
    rule.version = 2;
    rule.options.out_of_range = schemas::events::OutOfRange::Refuse;
    let refusing = Envelope::new(
        acme(),
        refusing.actor.clone(),
        refusing.event.clone(),
        Utc::now(),
    );
    h.ledger.append(&refusing, Expected::Any).await.unwrap();
    h.settled(&acme()).await;
    let (status, refused) = punch(&phone, &away).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["status"], "refused");
    assert_eq!(
        refused["reason"],
        "not recorded: outside the places rule r-sales allows \
         (1902 m outside geofence HQ (position accurate to 30 m); no Wi-Fi was sent)"
    );
    let on_wifi = r#"{"tenant":"acme","person_id":"p-tao","wifi_bssid":"aa:bb:cc:dd:ee:01"}"#;
    assert_eq!(punch(&phone, on_wifi).await.1["outcome"], "in_range");

    // Malformed and unknown: refused with a reason, nothing written.
    let (status, bad) = punch(&phone, r#"{"tenant":"acme","person":"p-sun"}"#).await;
    assert_eq!(status, 400);
    assert!(
        bad["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a mobile punch: unknown field `person`"),
        "{bad}"
    );
    let (status, nobody) = punch(&phone, r#"{"tenant":"acme","person_id":"p-x"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(nobody["reason"], "person p-x does not exist");

    // What the ledger holds: four punches, each once, and the refusal on record.
    let raw = raw_records(&h.ledger, &acme()).await;
    assert_eq!(raw.punches.len(), 4);
    assert!(raw.punches.values().all(|p| p.received == 1));
    let kinds: Vec<_> = h
        .ledger
        .read(&acme(), ledger::ReadFrom::start())
        .await
        .unwrap()
        .map(|r| r.unwrap().envelope.event.kind())
        .collect::<Vec<_>>()
        .await;
    assert_eq!(
        kinds.iter().filter(|k| **k == "MobilePunchRefused").count(),
        1
    );
}
