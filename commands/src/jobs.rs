//! Jobs the write side runs by itself, on exactly one instance: the daily device scope
//! job. At 00:00 in a device's zone its roster may change with nobody acting (a
//! transfer or a leave recorded earlier takes effect that day), so every tenant with a
//! device whose local date changed is synced ([`crate::devices::sync`]) as of then.
//!
//! **One instance.** The job runs on whichever command service holds key
//! [`SCOPES_KEY`] of the KV bucket [`JOBS_BUCKET`]: taken with `create` (refused while
//! anyone holds it), renewed every tick with `update` at the revision last written
//! (refused if anyone else wrote since), expiring after the TTL when its holder stops
//! renewing. NATS decides every conflict. Even two runs at once would store nothing
//! twice: each round expects the tenant's device kind and each device's command queue
//! as it read them, and takes its id from the day.
//!
//! **Catching up.** A new holder (after a restart, or when the holder died) syncs every
//! tenant once at once, so a midnight nobody was there for is not lost.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use ledger::{Ledger, LedgerError};
use schemas::ids::{CommandId, DeviceSn, TenantId, ZoneName};
use schemas::{Actor, Aggregate, AggregateKind, Event};

use crate::devices;
use crate::service::Clock;

pub const JOBS_BUCKET: &str = "lc_command_jobs";
pub const SCOPES_KEY: &str = "device-scopes";

#[derive(Debug, Clone)]
pub struct JobOptions {
    /// This instance's name in the lease (unique among live instances).
    pub instance: String,
    /// How often the job looks at the clock and renews its lease.
    pub every: Duration,
    /// How long a lease outlives its last renewal.
    pub ttl: Duration,
}

impl JobOptions {
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            every: Duration::from_secs(5),
            ttl: Duration::from_secs(20),
        }
    }
}

/// The id of a tenant's scope sync for a day: a second run that day repeats no round.
pub fn day_id(date: NaiveDate) -> CommandId {
    CommandId::from(format!("device-scopes-{date}").as_str())
}

/// The devices' local dates a tenant's sync is due for: those whose local date at
/// `now` differs from the one it was last synced on (all, the first time).
pub fn due(
    zones: &HashMap<(TenantId, DeviceSn), Option<ZoneName>>,
    done: &HashMap<(TenantId, DeviceSn), NaiveDate>,
    now: DateTime<Utc>,
) -> Vec<(TenantId, NaiveDate)> {
    let mut out: Vec<(TenantId, NaiveDate)> = Vec::new();
    for (key, zone) in zones {
        let today = match zone {
            Some(z) => now.with_timezone(&z.tz()).date_naive(),
            None => now.date_naive(),
        };
        if done.get(key) != Some(&today) {
            match out.iter_mut().find(|(t, _)| t == &key.0) {
                Some((_, date)) => *date = (*date).max(today),
                None => out.push((key.0.clone(), today)),
            }
        }
    }
    out.sort();
    out
}

fn nats(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

async fn bucket(ledger: &Ledger, ttl: Duration) -> Result<kv::Store, LedgerError> {
    let js = ledger.jetstream();
    if let Ok(b) = js.get_key_value(JOBS_BUCKET).await {
        return Ok(b);
    }
    js.create_key_value(kv::Config {
        bucket: JOBS_BUCKET.to_owned(),
        history: 1,
        max_age: ttl,
        storage: async_nats::jetstream::stream::StorageType::Memory,
        num_replicas: ledger.config().replicas,
        ..Default::default()
    })
    .await
    .map_err(nats)
}

/// The lease as this instance holds it: the revision it last wrote.
struct Lease {
    revision: Option<u64>,
}

impl Lease {
    /// Takes or renews the lease; whether this instance holds it now.
    async fn hold(&mut self, store: &kv::Store, me: &str) -> bool {
        let value = Bytes::from(me.to_owned());
        let result = match self.revision {
            Some(revision) => store.update(SCOPES_KEY, value.clone(), revision).await.ok(),
            None => match store.create(SCOPES_KEY, value.clone()).await {
                Ok(revision) => Some(revision),
                // Its own lease from before a restart (names are unique): take it back.
                Err(_) => match store.entry(SCOPES_KEY).await {
                    Ok(Some(e)) if e.value == value && e.operation == kv::Operation::Put => {
                        store.update(SCOPES_KEY, value, e.revision).await.ok()
                    }
                    _ => None,
                },
            },
        };
        self.revision = result;
        result.is_some()
    }
}

/// Every device SN of every tenant, from the streams' subjects.
async fn devices_by_tenant(ledger: &Ledger) -> Result<Vec<(TenantId, DeviceSn)>, LedgerError> {
    let mut out = Vec::new();
    for partition in 0..ledger.config().partitions {
        for (tenant, id) in ledger
            .aggregates_of_kind(partition, AggregateKind::Device)
            .await?
        {
            if tenant.as_str() != TenantId::SYSTEM {
                out.push((tenant, DeviceSn::from(id.as_str())));
            }
        }
    }
    Ok(out)
}

/// A device's zone as its claim has it (`None` when unbound).
async fn zone_of(ledger: &Ledger, sn: &DeviceSn) -> Result<Option<ZoneName>, LedgerError> {
    let claim = ledger
        .last_event(
            &TenantId::system(),
            &Aggregate::new(AggregateKind::Device, sn.as_str()),
        )
        .await?;
    Ok(match claim.map(|r| r.envelope.event) {
        Some(Event::DeviceClaimed(c)) => Some(c.zone),
        _ => None,
    })
}

/// Runs the daily scope job until `stop` resolves.
pub async fn run_scopes(
    ledger: Ledger,
    clock: Clock,
    options: JobOptions,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut lease = Lease { revision: None };
    let mut zones: HashMap<(TenantId, DeviceSn), Option<ZoneName>> = HashMap::new();
    let mut done: HashMap<(TenantId, DeviceSn), NaiveDate> = HashMap::new();
    let actor = Actor::System {
        component: "device-scopes".into(),
    };
    let mut hour = None;
    let mut tick = tokio::time::interval(options.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let store = match bucket(&ledger, options.ttl).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "device scope job: no lease bucket");
                continue;
            }
        };
        let held = lease.revision.is_some();
        if !lease.hold(&store, &options.instance).await {
            if held {
                tracing::warn!("device scope job: lease lost; another instance runs it");
            }
            // Whoever holds it next catches up from scratch.
            done.clear();
            continue;
        }
        if !held {
            tracing::info!(instance = %options.instance, "device scope job: running it here");
        }
        // Zones are read again every hour (a device bound again elsewhere).
        let this_hour = clock().format("%F %H").to_string();
        if hour.as_ref() != Some(&this_hour) {
            zones.clear();
            hour = Some(this_hour);
        }
        if let Err(e) = round(&ledger, &clock, &actor, &mut zones, &mut done).await {
            tracing::warn!(error = %e, "device scope job: round failed; trying again next tick");
        }
    }
    if let (Ok(store), Some(revision)) = (bucket(&ledger, options.ttl).await, lease.revision) {
        let _ = store
            .delete_expect_revision(SCOPES_KEY, Some(revision))
            .await;
    }
}

async fn round(
    ledger: &Ledger,
    clock: &Clock,
    actor: &Actor,
    zones: &mut HashMap<(TenantId, DeviceSn), Option<ZoneName>>,
    done: &mut HashMap<(TenantId, DeviceSn), NaiveDate>,
) -> Result<(), LedgerError> {
    let now = clock();
    let current = devices_by_tenant(ledger).await?;
    zones.retain(|key, _| current.contains(key));
    for key in current {
        if let std::collections::hash_map::Entry::Vacant(entry) = zones.entry(key) {
            let zone = zone_of(ledger, &entry.key().1).await?;
            entry.insert(zone);
        }
    }
    for (tenant, date) in due(zones, done, now) {
        match devices::sync(ledger, &tenant, actor, &day_id(date), None, now).await {
            Ok(synced) => {
                if !synced.changes.is_empty() {
                    tracing::info!(%tenant, %date, changes = synced.changes.len(), "device scopes applied for the day");
                }
                for (key, zone) in zones.iter().filter(|(k, _)| k.0 == tenant) {
                    let today = match zone {
                        Some(z) => now.with_timezone(&z.tz()).date_naive(),
                        None => now.date_naive(),
                    };
                    done.insert(key.clone(), today);
                }
            }
            Err(e) => tracing::warn!(%tenant, error = %e, "device scopes not applied; next tick"),
        }
    }
    Ok(())
}
