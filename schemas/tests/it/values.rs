//! Value rules: ids, zones, versions.

use chrono::NaiveDate;
use schemas::ids::{BadgeNumber, DeviceSn, PunchId, TenantId, ZoneName};
use schemas::{Envelope, SchemaError};

#[test]
fn a_resent_device_record_has_the_same_punch_id() {
    let t = NaiveDate::from_ymd_opt(2020, 2, 24)
        .unwrap()
        .and_hms_opt(10, 52, 43)
        .unwrap();
    let sn = DeviceSn::from("CQZ7224460246");
    let a = PunchId::for_device_record(&sn, &BadgeNumber::from("5"), t);
    let b = PunchId::for_device_record(&sn, &BadgeNumber::from("5"), t);
    assert_eq!(a, b);
    let other_badge = PunchId::for_device_record(&sn, &BadgeNumber::from("50"), t);
    assert_ne!(a, other_badge);
    let other_second = PunchId::for_device_record(
        &sn,
        &BadgeNumber::from("5"),
        t + chrono::Duration::seconds(1),
    );
    assert_ne!(a, other_second);
    let other_device = PunchId::for_device_record(&DeviceSn::from("X"), &BadgeNumber::from("5"), t);
    assert_ne!(a, other_device);
}

#[test]
fn tenant_ids_are_subject_safe() {
    for ok in ["acme", "a", "acme-cn-2", "_system"] {
        TenantId::parse(ok).unwrap();
    }
    for bad in [
        "",
        "Acme",
        "a.b",
        "a b",
        "a*",
        ">",
        "-a",
        "_other",
        &"x".repeat(64),
    ] {
        assert_eq!(
            TenantId::parse(bad),
            Err(SchemaError::InvalidTenant(bad.to_owned()))
        );
    }
}

#[test]
fn zones_are_iana_names() {
    assert_eq!(
        ZoneName::parse("Asia/Shanghai").unwrap().as_str(),
        "Asia/Shanghai"
    );
    assert!(matches!(
        ZoneName::parse("CST+8"),
        Err(SchemaError::InvalidZone(_))
    ));
    let bad = r#""Mars/Olympus""#;
    assert!(serde_json::from_str::<ZoneName>(bad).is_err());
}

#[test]
fn a_newer_envelope_version_is_refused_not_misread() {
    let sample =
        std::fs::read_to_string(crate::crate_dir().join("samples/v1/DeviceBound.json")).unwrap();
    let newer = sample.replace("\"schema_version\": 1", "\"schema_version\": 2");
    assert_ne!(sample, newer);
    assert_eq!(
        Envelope::from_json(&newer),
        Err(SchemaError::UnsupportedVersion(2))
    );
}
