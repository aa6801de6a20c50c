//! The ledger against a real nats-server: one spawned per test, on a free loopback port
//! with a temporary store, killed on drop.

mod append;
mod provision;
mod read;
mod restart;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ledger::{Ledger, LedgerConfig, NatsServer, ServerOptions};
use schemas::events::{DeviceBound, Punch, PunchRecorded, PunchSource, VerifyMode};
use schemas::ids::{BadgeNumber, DeviceSn, PunchId, TenantId, ZoneName};
use schemas::{Actor, Envelope};

#[derive(Debug)]
pub struct World {
    pub server: NatsServer,
    pub ledger: Ledger,
}

pub async fn world() -> World {
    world_with(LedgerConfig::default()).await
}

pub async fn world_with(config: LedgerConfig) -> World {
    let server = NatsServer::start(ServerOptions::default())
        .await
        .expect("nats-server starts");
    let ledger = Ledger::connect(&server.url(), config).await.unwrap();
    ledger.provision().await.unwrap();
    World { server, ledger }
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

pub fn now() -> DateTime<Utc> {
    "2026-11-21T08:00:00Z".parse().unwrap()
}

/// The `i`th punch of device `sn`, one minute apart, as a device would report it.
pub fn punch(tenant: &TenantId, sn: &str, i: u32) -> Envelope {
    let sn = DeviceSn::from(sn);
    let badge = BadgeNumber::from(format!("{}", 100 + i % 50).as_str());
    let local = NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap()
        + Duration::minutes(i64::from(i));
    let zone = ZoneName::parse("Asia/Shanghai").unwrap();
    let instant = local.and_utc() - Duration::hours(8);
    let punch_id = PunchId::for_device_record(&sn, &badge, local);
    let event = PunchRecorded {
        punch: Punch {
            punch_id,
            source: PunchSource::Device,
            person_id: None,
            device_sn: Some(sn.clone()),
            badge_number: Some(badge),
            local_time: local,
            zone,
            instant,
            verify_mode: Some(VerifyMode::Face),
            punch_state: Some(0),
            work_code: None,
            job_code: None,
            device_seq: Some(u64::from(i)),
            location: None,
            wifi_bssid: None,
            qr_token: None,
            photo_ref: None,
            raw_line: None,
        },
    };
    Envelope::new(tenant.clone(), Actor::Device { sn }, event, now())
        .occurred_at(instant)
        .with_id(schemas::ids::EventId(punch_id.0))
}

pub fn device_bound(tenant: &TenantId, sn: &str) -> Envelope {
    Envelope::new(
        tenant.clone(),
        Actor::System {
            component: "test".into(),
        },
        DeviceBound {
            sn: DeviceSn::from(sn),
            name: "Front door".into(),
            model: Some("MB10-VL".into()),
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: None,
        },
        now(),
    )
}

pub async fn read_all(ledger: &Ledger, tenant: &TenantId) -> Vec<ledger::Recorded> {
    use futures::TryStreamExt;
    ledger
        .read(tenant, ledger::ReadFrom::start())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}
