//! What a gateway instance remembers of devices between requests. Nothing here is the
//! truth (the ledger is): it saves reads, and it is rebuilt from the ledger after a
//! restart. Every map is keyed by SN and bounded.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use schemas::ids::DeviceSn;

use crate::protocol::Dialect;
use crate::protocol::status::Status;

/// How often an unknown SN is recorded, at most.
pub const UNKNOWN_DEVICE_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// A device's status is recorded when what it says of itself changes, and otherwise once
/// per this period while it talks to the gateway: its "last seen".
pub const STATUS_EVERY: chrono::Duration = chrono::Duration::minutes(5);
/// How often one device's ignored lines of one kind are logged at `info`.
const IGNORED_LOG_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// Entries kept per map before the oldest are dropped.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct Seen {
    unknown: Mutex<HashMap<DeviceSn, DateTime<Utc>>>,
    /// What each device last said of itself, and in which status period it was recorded.
    status: Mutex<HashMap<DeviceSn, (i64, Status)>>,
    dialect: Mutex<HashMap<DeviceSn, Dialect>>,
    /// The last stamp recorded per device and table.
    stamps: Mutex<HashMap<(DeviceSn, String), String>>,
    ignored: Mutex<Ignored>,
}

#[derive(Debug, Default)]
struct Ignored {
    /// Lines or uploads ignored, by table and reason.
    counts: BTreeMap<(String, &'static str), u64>,
    /// Lines rejected (stored as rejected records), by table and reason.
    rejected: BTreeMap<(String, String), u64>,
    logged: HashMap<(DeviceSn, String, &'static str), DateTime<Utc>>,
}

fn bounded<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
}

impl Seen {
    /// Whether an unknown SN's sighting is due (at most one an hour), noting it if so.
    pub fn unknown_due(&self, sn: &DeviceSn, now: DateTime<Utc>) -> bool {
        let mut seen = self.unknown.lock().expect("not poisoned");
        if seen
            .get(sn)
            .is_some_and(|at| now - *at < UNKNOWN_DEVICE_EVERY)
        {
            return false;
        }
        if seen.len() >= MAX_ENTRIES {
            seen.retain(|_, at| now - *at < UNKNOWN_DEVICE_EVERY);
        }
        bounded(&mut seen);
        seen.insert(sn.clone(), now);
        true
    }

    pub fn dialect(&self, sn: &DeviceSn) -> Option<Dialect> {
        self.dialect.lock().expect("not poisoned").get(sn).copied()
    }

    pub fn remember_dialect(&self, sn: &DeviceSn, dialect: Dialect) {
        let mut map = self.dialect.lock().expect("not poisoned");
        bounded(&mut map);
        map.insert(sn.clone(), dialect);
    }

    /// The status last recorded for `sn` and its period, if this instance knows it.
    pub fn status(&self, sn: &DeviceSn) -> Option<(i64, Status)> {
        self.status.lock().expect("not poisoned").get(sn).cloned()
    }

    /// Merges what the device said now into what is known; returns the status to
    /// record if it changed or a new period began.
    pub fn note_status(&self, sn: &DeviceSn, said: &Status, period: i64) -> Option<Status> {
        let mut cache = self.status.lock().expect("not poisoned");
        let (last_period, last) = cache
            .get(sn)
            .cloned()
            .unwrap_or((i64::MIN, Status::default()));
        let status = last.merged(said);
        if last_period == period && status.same_as(&last) {
            return None;
        }
        bounded(&mut cache);
        cache.insert(sn.clone(), (period, status.clone()));
        Some(status)
    }

    /// Seeds the cache from the ledger's last record, if nothing newer is known.
    pub fn seed_status(&self, sn: &DeviceSn, period: i64, status: Status) {
        let mut cache = self.status.lock().expect("not poisoned");
        bounded(&mut cache);
        cache.entry(sn.clone()).or_insert((period, status));
    }

    pub fn forget_status(&self, sn: &DeviceSn) {
        self.status.lock().expect("not poisoned").remove(sn);
    }

    /// Whether `stamp` is new for the device's table (and so worth recording).
    pub fn stamp_is_new(&self, sn: &DeviceSn, table: &str, stamp: &str) -> bool {
        self.stamps
            .lock()
            .expect("not poisoned")
            .get(&(sn.clone(), table.to_owned()))
            .is_none_or(|s| s != stamp)
    }

    pub fn remember_stamp(&self, sn: &DeviceSn, table: &str, stamp: &str) {
        let mut stamps = self.stamps.lock().expect("not poisoned");
        bounded(&mut stamps);
        stamps.insert((sn.clone(), table.to_owned()), stamp.to_owned());
    }

    /// Counts `lines` deliberately not kept; logs them at `info` once an hour per
    /// device, table and reason (`debug` otherwise), with a sample.
    pub fn ignored(
        &self,
        sn: &DeviceSn,
        table: &str,
        why: &'static str,
        lines: usize,
        sample: &str,
        now: DateTime<Utc>,
    ) {
        if lines == 0 {
            return;
        }
        let mut ignored = self.ignored.lock().expect("not poisoned");
        *ignored.counts.entry((table.to_owned(), why)).or_default() += lines as u64;
        let key = (sn.clone(), table.to_owned(), why);
        let due = ignored
            .logged
            .get(&key)
            .is_none_or(|at| now - *at >= IGNORED_LOG_EVERY);
        let sample: String = sample.chars().take(120).collect();
        if due {
            bounded(&mut ignored.logged);
            ignored.logged.insert(key, now);
            tracing::info!(%sn, table, lines, reason = why, sample = %sample.escape_debug(), "device data deliberately not kept (logged once an hour; counted at /health)");
        } else {
            tracing::debug!(%sn, table, lines, reason = why, "device data deliberately not kept");
        }
    }

    /// Counts lines rejected (and stored as rejected records); logs one warning with a
    /// sample once an hour per device and table (`debug` otherwise): a device
    /// re-sending a history full of corrupted lines does not flood the log.
    pub fn rejected(
        &self,
        sn: &DeviceSn,
        table: &str,
        rejected: &[schemas::events::DeviceRecordRejected],
        now: DateTime<Utc>,
    ) {
        let Some(first) = rejected.first() else {
            return;
        };
        let mut reasons = BTreeMap::<String, usize>::new();
        for r in rejected {
            *reasons.entry(format!("{:?}", r.reason)).or_default() += 1;
        }
        let mut ignored = self.ignored.lock().expect("not poisoned");
        for (reason, n) in &reasons {
            *ignored
                .rejected
                .entry((table.to_owned(), reason.clone()))
                .or_default() += *n as u64;
        }
        let key = (sn.clone(), table.to_owned(), "rejected");
        let due = ignored
            .logged
            .get(&key)
            .is_none_or(|at| now - *at >= IGNORED_LOG_EVERY);
        if due {
            bounded(&mut ignored.logged);
            ignored.logged.insert(key, now);
            tracing::warn!(%sn, table, rejected = rejected.len(), ?reasons, sample = %first.raw.escape_debug(), "device lines rejected, kept as rejected records (logged once an hour; counted at /health)");
        } else {
            tracing::debug!(%sn, table, rejected = rejected.len(), ?reasons, "device lines rejected");
        }
    }

    /// What was ignored so far, for the health answer.
    pub fn ignored_counts(&self) -> serde_json::Value {
        let ignored = self.ignored.lock().expect("not poisoned");
        serde_json::json!({
            "ignored": ignored
                .counts
                .iter()
                .map(|((table, why), n)| serde_json::json!({"table": table, "reason": why, "lines": n}))
                .collect::<Vec<_>>(),
            "rejected": ignored
                .rejected
                .iter()
                .map(|((table, why), n)| serde_json::json!({"table": table, "reason": why, "lines": n}))
                .collect::<Vec<_>>(),
        })
    }
}
