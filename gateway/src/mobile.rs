//! Mobile punches: a phone posts JSON; the punch is checked against the rule its person
//! follows that day (geofences, Wi-Fi, photo) and recorded, or refused with a reason the
//! person can act on. [`decide`] is pure over a [`Book`] folded from the tenant's
//! departments, people and rules, with the clock passed in.
//!
//! ```json
//! {"tenant": "demo", "person_id": "p-001", "time": "2026-11-20T09:01:12+08:00",
//!  "location": {"latitude": 31.2304, "longitude": 121.4737, "accuracy_m": 15},
//!  "wifi_bssid": "a4:5e:60:d2:11:01", "qr_token": "...", "photo_ref": "photos/123.jpg"}
//! ```

use chrono::{DateTime, Duration, FixedOffset, SubsecRound, Utc};
use projections::book::{Book, NotPunching};
use projections::geo::{self, Place};
use schemas::events::{
    GeoPoint, MobilePunchRefused, MobileRefusal, OutOfRange, Punch, PunchSource,
};
use schemas::ids::{PersonId, PunchId, RuleId, TenantId};
use serde::{Deserialize, Serialize};

/// How far a phone's clock may be from the server's. A punch is recorded at the phone's
/// time (so a retry after a lost answer is the same punch), but only near the present:
/// a phone cannot punch for another hour or day.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// What a phone sends. Unknown fields are refused: a misspelt `wifi_bssid` silently
/// dropped would turn an in-range punch into an exception.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobilePunchRequest {
    pub tenant: String,
    pub person_id: String,
    /// When the person punched, with the phone's UTC offset; absent: now.
    #[serde(default)]
    pub time: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub location: Option<GeoPoint>,
    #[serde(default)]
    pub wifi_bssid: Option<String>,
    #[serde(default)]
    pub qr_token: Option<String>,
    /// Where the client stored the photo; the gateway keeps the reference, not the image.
    #[serde(default)]
    pub photo_ref: Option<String>,
}

/// Where the recorded punch stands with its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    InRange,
    /// Out of range, kept; the day will show a location exception (地点异常).
    LocationException,
    /// Out of range, kept as field work (外勤).
    FieldWork,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub tenant: TenantId,
    pub punch: Punch,
    pub outcome: Outcome,
    pub person: String,
    pub rule_id: RuleId,
    pub rule_version: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The request itself is wrong; nothing is recorded.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    NotPunching(#[from] NotPunching),
    #[error(
        "the phone's clock is {skew_s} s off the server's (at most {max} s allowed): set it to network time and punch again",
        max = MAX_CLOCK_SKEW.num_seconds()
    )]
    ClockSkew { skew_s: i64 },
    /// The rule refuses the punch; the refusal is recorded for audit.
    #[error("{}", refused_by_rule(.0))]
    ByRule(Box<MobilePunchRefused>),
}

fn refused_by_rule(e: &MobilePunchRefused) -> String {
    match e.reason {
        MobileRefusal::OutOfRange => format!(
            "not recorded: outside the places rule {} allows ({})",
            e.rule_id, e.detail
        ),
        MobileRefusal::PhotoRequired => format!(
            "not recorded: rule {} requires a photo with each punch",
            e.rule_id
        ),
    }
}

/// Checks the request's own shape: ids, coordinates, accuracy.
pub fn validate(req: &MobilePunchRequest) -> Result<(TenantId, PersonId), Refusal> {
    let tenant =
        TenantId::parse(req.tenant.trim()).map_err(|e| Refusal::Invalid(format!("tenant: {e}")))?;
    let person = req.person_id.trim();
    if person.is_empty() {
        return Err(Refusal::Invalid("person_id must not be empty".into()));
    }
    if let Some(g) = &req.location {
        if !(g.latitude.is_finite() && (-90.0..=90.0).contains(&g.latitude)) {
            return Err(Refusal::Invalid(format!(
                "latitude {} is not between -90 and 90",
                g.latitude
            )));
        }
        if !(g.longitude.is_finite() && (-180.0..=180.0).contains(&g.longitude)) {
            return Err(Refusal::Invalid(format!(
                "longitude {} is not between -180 and 180",
                g.longitude
            )));
        }
        if !(g.accuracy_m.is_finite() && g.accuracy_m >= 0.0) {
            return Err(Refusal::Invalid(format!(
                "accuracy_m {} must be a distance in metres",
                g.accuracy_m
            )));
        }
    }
    for (field, value) in [
        ("wifi_bssid", &req.wifi_bssid),
        ("qr_token", &req.qr_token),
        ("photo_ref", &req.photo_ref),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(Refusal::Invalid(format!(
                "{field} must be left out rather than empty"
            )));
        }
    }
    Ok((tenant, PersonId::new(person)))
}

/// Decides a phone's punch against the person's rule on the punch's local date.
pub fn decide(
    book: &Book,
    req: &MobilePunchRequest,
    now: DateTime<Utc>,
) -> Result<Accepted, Refusal> {
    let (tenant, person) = validate(req)?;
    let instant = req
        .time
        .map_or(now, |t| t.with_timezone(&Utc))
        .trunc_subsecs(0);
    let skew = instant - now;
    if skew.abs() > MAX_CLOCK_SKEW {
        return Err(Refusal::ClockSkew {
            skew_s: skew.num_seconds(),
        });
    }
    // The rule's zone says which local date the punch is on; look the rule up for that
    // date. The zone to start from is that of a rule in force around the UTC date (a
    // local date is at most a day either side of it).
    let utc_date = instant.date_naive();
    let (_, first) = match book.rule_for(&person, utc_date) {
        Ok(found) => found,
        Err(e) => [utc_date.succ_opt(), utc_date.pred_opt()]
            .into_iter()
            .flatten()
            .find_map(|date| book.rule_for(&person, date).ok())
            .ok_or(e)?,
    };
    let local_date = instant.with_timezone(&first.zone.tz()).date_naive();
    let (name, rule) = book.rule_for(&person, local_date)?;
    let local_time = instant.with_timezone(&rule.zone.tz()).naive_local();
    let bssid = req.wifi_bssid.as_deref().map(str::trim);
    let refuse = |reason, detail: String| {
        Refusal::ByRule(Box::new(MobilePunchRefused {
            person_id: person.clone(),
            instant,
            rule_id: rule.rule_id.clone(),
            reason,
            detail,
            location: req.location.clone(),
            wifi_bssid: bssid.map(str::to_owned),
        }))
    };
    if rule.options.photo_required && req.photo_ref.is_none() {
        return Err(refuse(
            MobileRefusal::PhotoRequired,
            "no photo_ref was sent".into(),
        ));
    }
    let outcome = match geo::place(&rule.options, req.location.as_ref(), bssid) {
        Place::InRange => Outcome::InRange,
        Place::OutOfRange => match rule.options.out_of_range {
            OutOfRange::LocationException => Outcome::LocationException,
            OutOfRange::FieldWork => Outcome::FieldWork,
            OutOfRange::Refuse => {
                let why = geo::why_out_of_range(&rule.options, req.location.as_ref(), bssid);
                return Err(refuse(MobileRefusal::OutOfRange, why));
            }
        },
    };
    let evidence = serde_json::json!([req.location, bssid, req.qr_token, req.photo_ref]);
    let punch = Punch {
        job_code: None,
        punch_id: PunchId::for_mobile(&person, instant, &evidence.to_string()),
        source: PunchSource::Mobile,
        person_id: Some(person.clone()),
        device_sn: None,
        badge_number: None,
        local_time,
        zone: rule.zone.clone(),
        instant,
        verify_mode: None,
        punch_state: None,
        work_code: None,
        device_seq: None,
        location: req.location.clone(),
        wifi_bssid: bssid.map(str::to_owned),
        qr_token: req.qr_token.clone(),
        photo_ref: req.photo_ref.clone(),
        raw_line: None,
    };
    Ok(Accepted {
        tenant,
        punch,
        outcome,
        person: name.to_owned(),
        rule_id: rule.rule_id.clone(),
        rule_version: rule.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The departments, people and rules of the `mobile-geofence-merge` fixture (Sun and
    /// Tao under a 100 m fence at HQ with an office Wi-Fi, Uma under a field-work rule),
    /// with the sales rule's out-of-range policy replaced by `policy`.
    fn book(policy: &str, photo_required: bool) -> Book {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../replay-fixtures/mobile-geofence-merge.jsonl"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.contains("\"PunchRecorded\""))
            .map(|l| {
                l.replace(
                    "\"out_of_range\":\"LocationException\"",
                    &format!("\"out_of_range\":\"{policy}\",\"photo_required\":{photo_required}"),
                )
            })
            .collect();
        lines.push(String::new());
        projections::book::load_jsonl(lines.join("\n").as_bytes(), None)
            .unwrap()
            .0
    }

    fn now() -> DateTime<Utc> {
        "2026-03-02T01:00:30Z".parse().unwrap() // 09:00:30 in Shanghai
    }

    fn request(json: &str) -> MobilePunchRequest {
        serde_json::from_str(json).unwrap()
    }

    const AT_HQ: &str = r#"{"tenant":"acme","person_id":"p-sun","time":"2026-03-02T09:00:12+08:00",
        "location":{"latitude":31.2305,"longitude":121.4738,"accuracy_m":12}}"#;
    const TWO_KM_AWAY: &str = r#"{"tenant":"acme","person_id":"p-tao",
        "location":{"latitude":31.2484,"longitude":121.4737,"accuracy_m":30}}"#;

    #[test]
    fn inside_the_fence_is_recorded_at_the_phones_time_in_the_rules_zone() {
        let a = decide(&book("LocationException", false), &request(AT_HQ), now()).unwrap();
        assert_eq!(a.outcome, Outcome::InRange);
        assert_eq!(a.person, "Sun");
        assert_eq!(a.rule_id.as_str(), "r-sales");
        assert_eq!(a.punch.source, PunchSource::Mobile);
        assert_eq!(a.punch.local_time.to_string(), "2026-03-02 09:00:12");
        assert_eq!(a.punch.zone.as_str(), "Asia/Shanghai");
        assert_eq!(a.punch.instant.to_rfc3339(), "2026-03-02T01:00:12+00:00");
        // A retry of the same request is the same punch.
        let again = decide(&book("LocationException", false), &request(AT_HQ), now()).unwrap();
        assert_eq!(again.punch.punch_id, a.punch.punch_id);
    }

    #[test]
    fn out_of_range_follows_the_rule() {
        let exception = decide(
            &book("LocationException", false),
            &request(TWO_KM_AWAY),
            now(),
        );
        assert_eq!(exception.unwrap().outcome, Outcome::LocationException);
        let field = decide(&book("FieldWork", false), &request(TWO_KM_AWAY), now());
        assert_eq!(field.unwrap().outcome, Outcome::FieldWork);
        let Err(Refusal::ByRule(refused)) =
            decide(&book("Refuse", false), &request(TWO_KM_AWAY), now())
        else {
            panic!("a refusing rule refuses")
        };
        assert_eq!(refused.reason, MobileRefusal::OutOfRange);
        assert_eq!(refused.instant, now());
        let told = Refusal::ByRule(refused).to_string();
        assert_eq!(
            told,
            "not recorded: outside the places rule r-sales allows \
             (1902 m outside geofence HQ (position accurate to 30 m); no Wi-Fi was sent)"
        );
    }

    #[test]
    fn the_office_wifi_is_in_range_wherever_the_position_says() {
        let r = request(
            r#"{"tenant":"acme","person_id":"p-tao","wifi_bssid":" AA:BB:CC:DD:EE:01 ",
            "location":{"latitude":31.2484,"longitude":121.4737,"accuracy_m":900}}"#,
        );
        let a = decide(&book("Refuse", false), &r, now()).unwrap();
        assert_eq!(a.outcome, Outcome::InRange);
        assert_eq!(a.punch.wifi_bssid.as_deref(), Some("AA:BB:CC:DD:EE:01"));
    }

    #[test]
    fn a_required_photo_is_required() {
        let Err(Refusal::ByRule(refused)) =
            decide(&book("LocationException", true), &request(AT_HQ), now())
        else {
            panic!("no photo, no punch")
        };
        assert_eq!(refused.reason, MobileRefusal::PhotoRequired);
        let with_photo = AT_HQ.replace("\"p-sun\",", "\"p-sun\",\"photo_ref\":\"photos/1.jpg\",");
        let a = decide(
            &book("LocationException", true),
            &request(&with_photo),
            now(),
        )
        .unwrap();
        assert_eq!(a.punch.photo_ref.as_deref(), Some("photos/1.jpg"));
    }

    #[test]
    fn refusals_say_why() {
        let b = book("LocationException", false);
        let refused = |json: &str| decide(&b, &request(json), now()).unwrap_err().to_string();
        assert_eq!(
            refused(r#"{"tenant":"acme","person_id":"p-nobody"}"#),
            "person p-nobody does not exist"
        );
        assert_eq!(
            refused(r#"{"tenant":"acme","person_id":"p-sun","time":"2026-03-02T10:00:00+08:00"}"#),
            "the phone's clock is 3570 s off the server's (at most 300 s allowed): set it to network time and punch again"
        );
        assert_eq!(
            refused(
                r#"{"tenant":"acme","person_id":"p-sun","location":{"latitude":91,"longitude":0,"accuracy_m":5}}"#
            ),
            "latitude 91 is not between -90 and 90"
        );
        assert_eq!(
            refused(r#"{"tenant":"acme","person_id":" "}"#),
            "person_id must not be empty"
        );
        assert!(
            serde_json::from_str::<MobilePunchRequest>(
                r#"{"tenant":"acme","person_id":"p-sun","bssid":"aa"}"#
            )
            .unwrap_err()
            .to_string()
            .contains("unknown field `bssid`")
        );
    }

    #[test]
    fn the_first_morning_in_shanghai_is_still_yesterday_in_utc() {
        let mut b = book("LocationException", false);
        let hired: schemas::Envelope = serde_json::from_str(
            r#"{"event_id":"00000000-0000-0000-0000-000000000002","tenant":"acme","recorded_at":"2026-01-01T00:00:00Z","occurred_at":"2026-01-01T00:00:00Z","schema_version":1,"actor":{"System":{"component":"test"}},"causation_id":null,"correlation_id":null,"event":{"type":"PersonHired","data":{"person_id":"p-new","name":"New","department_id":"d-sales","hired_on":"2026-03-02","badge_number":null,"title":null}}}"#,
        )
        .unwrap();
        b.apply(99, &hired);
        let early: DateTime<Utc> = "2026-03-01T23:30:00Z".parse().unwrap();
        let a = decide(
            &b,
            &request(r#"{"tenant":"acme","person_id":"p-new"}"#),
            early,
        )
        .unwrap();
        assert_eq!(a.punch.local_time.to_string(), "2026-03-02 07:30:00");
    }

    #[test]
    fn a_person_outside_every_rule_cannot_punch() {
        let mut b = book("LocationException", false);
        let hired: schemas::Envelope = serde_json::from_str(
            r#"{"event_id":"00000000-0000-0000-0000-000000000001","tenant":"acme","recorded_at":"2026-01-01T00:00:00Z","occurred_at":"2026-01-01T00:00:00Z","schema_version":1,"actor":{"System":{"component":"test"}},"causation_id":null,"correlation_id":null,"event":{"type":"PersonHired","data":{"person_id":"p-new","name":"New","department_id":"d-none","hired_on":"2026-01-01","badge_number":null,"title":null}}}"#,
        )
        .unwrap();
        b.apply(99, &hired);
        let err = decide(
            &b,
            &request(r#"{"tenant":"acme","person_id":"p-new"}"#),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "p-new is in no attendance rule on 2026-03-02"
        );
    }
}
