//! Security-PUSH (access-control) firmware over real HTTP: registration, configuration,
//! real-time records as punches, queries answered through `querydata`, the time.

use chrono::{Duration, Utc};
use gateway::simulator::{AccessFirmware, Device};
use ledger::LedgerConfig;
use schemas::Event;
use schemas::events::DeviceCommand;
use schemas::ids::{DeviceSn, TenantId};

use crate::http::{acme, bind, events, harness, raw_records};

fn actor() -> schemas::Actor {
    schemas::Actor::System {
        component: "test".into(),
    }
}

fn since() -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
}

#[tokio::test]
async fn access_firmware_registers_gets_its_config_and_its_rtlog_punches_are_stored() {
    // Regression: `table=rtlog` was answered `OK: 2` and nothing stored, so SpeedFace
    // terminals in access mode dropped their records.
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "ACC0001", since()).await;
    let mut device = AccessFirmware::new(Device::new(h.addr, "ACC0001"));
    let answer = device.register().await.unwrap();
    assert_eq!(answer.status, 200);
    let code = device.registry_code.clone().expect("a registry code");
    assert_eq!(code.len(), 32);
    // Registering again (firmware does, at every connection) keeps the code.
    device.register().await.unwrap();
    assert_eq!(device.registry_code.as_deref(), Some(code.as_str()));
    let config = device.fetch_config().await.unwrap();
    assert!(
        config.body.contains("TransTables=User Transaction\n"),
        "{}",
        config.body
    );
    let session = device.session_id.clone().expect("a session id");
    let handshake = device.handshake().await.unwrap();
    assert!(
        handshake
            .body
            .starts_with(&format!("registry=ok\nRegistryCode={code}\n")),
        "{}",
        handshake.body
    );
    assert!(handshake.body.contains(&format!("SessionID={session}\n")));
    assert!(!handshake.body.contains("GET OPTION FROM"));

    let at = Utc::now()
        .with_timezone(&chrono_tz::Asia::Manila)
        .naive_local()
        - Duration::hours(1);
    device.punch("2", at);
    device.door_event(at + Duration::seconds(5), "0", 206);
    device.door_event(at + Duration::seconds(9), "5", 27);
    device.punch("3", at + Duration::minutes(1));
    assert_eq!(device.sync().await.unwrap(), 4, "every record answered OK");
    let raw = raw_records(&h.ledger, &acme()).await;
    let mut badges: Vec<_> = raw
        .punches
        .values()
        .map(|p| p.punch.badge_number.as_ref().unwrap().to_string())
        .collect();
    badges.sort();
    assert_eq!(
        badges,
        ["2", "3"],
        "verified people are punches; door events are not"
    );
    let registered: Vec<_> = events(&h.ledger, &acme())
        .await
        .into_iter()
        .filter_map(|r| match r.envelope.event {
            Event::DeviceRegistered(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(registered.len(), 1, "one registration per binding");
    assert_eq!(registered[0].registry_code, code);
    assert_eq!(
        registered[0].options.get("~DeviceName").map(String::as_str),
        Some("SpeedFace-V5L")
    );

    // Bound again (after an unbinding), it is issued a new code.
    let sn = DeviceSn::from("ACC0001");
    crate::unbind(&h.ledger, &acme(), &sn, actor(), Utc::now())
        .await
        .unwrap();
    bind(&h.ledger, &acme(), "ACC0001", since()).await;
    h.settled(&acme()).await;
    device.register().await.unwrap();
    assert_ne!(device.registry_code.as_deref(), Some(code.as_str()));
}

#[tokio::test]
async fn an_unbound_access_device_is_refused_registration_and_writes_nothing() {
    let h = harness(LedgerConfig::default()).await;
    let mut device = AccessFirmware::new(Device::new(h.addr, "ACCNOBODY"));
    for _ in 0..3 {
        let answer = device.register().await.unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (406, "406"));
    }
    assert!(device.registry_code.is_none());
    assert!(events(&h.ledger, &acme()).await.is_empty());
    let system: Vec<_> = events(&h.ledger, &TenantId::system())
        .await
        .iter()
        .map(|r| r.envelope.event.kind())
        .collect();
    assert_eq!(system, ["UnknownDeviceSeen"]);
}

#[tokio::test]
async fn commands_go_out_in_access_syntax_and_queries_come_back_through_querydata() {
    let h = harness(LedgerConfig::default()).await;
    bind(&h.ledger, &acme(), "ACC0002", since()).await;
    let sn = DeviceSn::from("ACC0002");
    let mut device = AccessFirmware::new(Device::new(h.addr, "ACC0002"));
    device.register().await.unwrap();
    for command in [
        DeviceCommand::UpdateUser {
            badge_number: schemas::ids::BadgeNumber::from("1001"),
            name: "Li Wei".into(),
            privilege: schemas::events::DevicePrivilege::User,
            card: None,
            disabled: false,
        },
        DeviceCommand::QueryUsers { badge_number: None },
    ] {
        commands::devices::send(&h.ledger, &acme(), &sn, command, actor(), Utc::now())
            .await
            .unwrap();
    }
    h.settled(&acme()).await;
    let commands = device.poll().await.unwrap();
    assert_eq!(
        commands,
        [
            "C:1:DATA UPDATE user CardNo=\tPin=1001\tPassword=\tGroup=1\tStartTime=0\tEndTime=0\tName=Li Wei\tPrivilege=0",
            "C:2:DATA QUERY tablename=user,fielddesc=*,filter=*"
        ]
    );
    let events = events(&h.ledger, &acme()).await;
    let users: Vec<_> = events
        .iter()
        .filter_map(|r| match &r.envelope.event {
            Event::DeviceUserReported(u) => Some((u.badge_number.to_string(), u.name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(users, [("1001".to_owned(), "Li Wei".to_owned())]);
    let results: Vec<_> = events
        .iter()
        .filter_map(|r| match &r.envelope.event {
            Event::DeviceCommandAcknowledged(a) => Some((a.command_id, a.return_code)),
            _ => None,
        })
        .collect();
    assert_eq!(results, [(1, 0), (2, 1)], "a query's result is its count");
    let time = device.time().await.unwrap();
    assert!(time.body.starts_with("DateTime=") && time.body.contains(",ServerTZ=+0800"));
}
