//! The projection worker: owns partitions by lease, folds each owned partition's stream
//! into its sled tree from a durable consumer, closes days as the clock passes, and
//! answers queries over NATS request-reply.
//!
//! Ownership (see ARCHITECTURE.md, "Projection workers"):
//! - Each worker heartbeats a key in the KV bucket `lc_projection_members` (entries
//!   expire after the lease TTL), so a worker counts the live ones from the bucket's
//!   message count: it aims to hold ⌈partitions / workers⌉ partitions.
//! - A partition is owned through key `p<k>` of the KV bucket `lc_projection_owners`
//!   (history 1, entries expire after the TTL): taken with `create` (only succeeds when
//!   nobody holds it), renewed with `update` at the revision last written (fails if
//!   anyone else wrote it), given up with `delete` at that revision. NATS decides; there
//!   is no consensus here.
//! - Fencing: a lease is valid until its last successful renewal *send* time plus the
//!   TTL less a margin. Past that, the worker stops folding, committing and answering
//!   for the partition before any other worker can have taken it (the key outlives the
//!   renewal by the whole TTL on the server).
//! - Queries go to `lc.q.v1.<tenant>.<query>` (the NATS service API, queue group
//!   `lc-reports`, so any worker may receive one); a worker that does not own the
//!   tenant's partition forwards the request to `lc.qp.v1.p<k>.<tenant>.<query>`, which
//!   only the owner subscribes. No owner: the service error 503 "rebuilding", retry.
//! - A new owner answers from its own store while it catches up, with
//!   `"rebuilding": true` and the sequence its views reflect.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use async_nats::service::ServiceExt;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ledger::{Ledger, LedgerError};
use schemas::AggregateKind;
use schemas::ids::TenantId;
use serde::{Deserialize, Serialize};

use crate::fold::{Fold, Folded, PROJECTION_VERSION, VIEWS};
use crate::query::{
    Answer, DailyRequest, ExplainRequest, ListRequest, MonthlyRequest, QueryError, RawRequest,
    Scope,
};
use crate::store::{StoreError, commit_sled, commit_sled_in_parts, key};

pub const OWNERS_BUCKET: &str = "lc_projection_owners";
pub const MEMBERS_BUCKET: &str = "lc_projection_members";
/// Query subjects: `lc.q.v1.<tenant>.<query>`.
pub const QUERY_PREFIX: &str = "lc.q.v1";
/// Forwarded to the owner of a partition: `lc.qp.v1.p<k>.<tenant>.<query>`.
pub const OWNER_PREFIX: &str = "lc.qp.v1";
pub const SERVICE_NAME: &str = "ledgerclock-reports";
pub const SERVICE_VERSION: &str = "1.0.0";
pub const QUERIES: [&str; 9] = [
    "daily",
    "monthly",
    "raw",
    "devices",
    "people",
    "departments",
    "explain",
    "as_of",
    "diff",
];

/// The clock the worker judges by: the system's, or one a test moves.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    pub fn from_fn(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Where the sled store lives (disposable: deleting it loses nothing).
    pub store_dir: PathBuf,
    /// sled's page cache (its default alone is 1 GiB).
    pub cache_bytes: u64,
    /// This worker's name: unique among workers, a NATS token.
    pub instance: String,
    /// How long a lease outlives its last renewal.
    pub lease_ttl: Duration,
    /// How often days are closed without events.
    pub tick: Duration,
    /// Most events folded in one committed batch.
    pub batch: usize,
    pub clock: Clock,
}

/// Most events folded into one committed batch, unless told otherwise. sled applies a
/// batch under one pinned epoch, so every leaf it replaces stays allocated until the
/// batch ends: measured at 10,000 people x 7 days, a rebuild peaked at 1.41 GB with
/// batches of 512 events (about 65,000 punches) and at 0.60 GB with 64, in the same
/// wall time.
pub const BATCH: usize = 64;

impl WorkerOptions {
    pub fn new(store_dir: PathBuf) -> Self {
        Self {
            store_dir,
            cache_bytes: 128 << 20,
            instance: default_instance(),
            lease_ttl: Duration::from_secs(6),
            tick: Duration::from_secs(1),
            batch: BATCH,
            clock: Clock::system(),
        }
    }
}

/// `<host>-<pid>`, made a token.
pub fn default_instance() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "worker".into());
    let raw = format!("{}-{}", host.trim(), std::process::id());
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("NATS: {0}")]
    Nats(String),
}

fn nats(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Nats(e.to_string())
}

/// Where a partition's views stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub partition: u16,
    /// The stream sequence the views reflect.
    pub sequence: u64,
    /// The stream's last sequence when the worker took the partition over.
    pub target: u64,
    pub rebuilding: bool,
}

struct Partition {
    number: u16,
    tree: sled::Tree,
    fold: RwLock<Fold>,
    status: Mutex<PartitionStatus>,
    /// Set once the views have been restored and the follower started.
    ready: AtomicBool,
    /// A query found a view that does not decode: rebuild.
    corrupt: AtomicBool,
    lease_valid_until: Mutex<Instant>,
    revision: AtomicU64,
    stop: tokio::sync::watch::Sender<bool>,
    /// The subscription answering forwarded requests, while owned.
    forwarded: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Partition {
    fn leased(&self) -> bool {
        Instant::now() < *self.lease_valid_until.lock().expect("lease lock")
    }
}

struct Shared {
    ledger: Ledger,
    db: sled::Db,
    options: WorkerOptions,
    owned: Mutex<BTreeMap<u16, Arc<Partition>>>,
    /// Tasks that hold the store: stopped and awaited before `run` returns, so the
    /// store is closed when it does.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Every partition ever held, to wait for the last use of its tree at the end.
    trees: Mutex<Vec<std::sync::Weak<Partition>>>,
}

/// Opens (or, when it will not open, recreates) the store. A store locked by another
/// process (a worker, or one that is just closing) is waited for a few seconds, then
/// refused: it is never deleted.
pub fn open_store(dir: &std::path::Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let open = || {
        sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .open()
    };
    let locked = |e: &sled::Error| {
        matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("could not acquire lock"))
    };
    let mut tries = 0;
    loop {
        match open() {
            Ok(db) => return Ok(db),
            Err(e) if locked(&e) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) if locked(&e) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(store = %dir.display(), error = %e, "the projection store does not open: deleting it and rebuilding every view from the stream");
                let _ = std::fs::remove_dir_all(dir);
                return Ok(open()?);
            }
        }
    }
}

/// The checkpoint of a partition's tree: the sequence every view has applied (0 when
/// they disagree or none is written, which rebuilds).
pub fn checkpoint(tree: &sled::Tree) -> Result<u64, StoreError> {
    let mut seen = None;
    for v in VIEWS {
        let c = tree
            .get(key::checkpoint(v))?
            .map(|b| u64::from_be_bytes(b.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0);
        match seen {
            None => seen = Some(c),
            Some(s) if s == c => {}
            Some(_) => return Ok(0),
        }
    }
    Ok(seen.unwrap_or(0))
}

/// Prepares a partition's tree for folding: a tree of another projection version, or
/// one whose checkpoint is past the stream's end, is cleared (and the log says why).
/// Returns the checkpoint to fold from.
pub fn prepare_tree(
    tree: &sled::Tree,
    partition: u16,
    stream_last: u64,
) -> Result<u64, StoreError> {
    let version = tree
        .get(key::VERSION)?
        .map(|b| u32::from_be_bytes(b.as_ref().try_into().unwrap_or([0; 4])));
    let mut clear = None;
    match version {
        Some(v) if v != PROJECTION_VERSION => {
            clear = Some(format!(
                "projection version {v} differs from the code's {PROJECTION_VERSION}"
            ))
        }
        None if !tree.is_empty() => clear = Some("the store has no projection version".to_owned()),
        _ => {}
    }
    let (lo, hi) = key::tenant_rebuilds();
    if clear.is_none() && tree.range(lo..=hi).next().is_some() {
        clear = Some("a rebuild was interrupted".to_owned());
    }
    let cp = checkpoint(tree)?;
    if clear.is_none() && cp > stream_last {
        clear = Some(format!(
            "its checkpoint {cp} is ahead of the stream's last sequence {stream_last} (the stream was recreated)"
        ));
    }
    if clear.is_none() && cp == 0 && !tree.is_empty() && tree.len() > 1 {
        clear = Some("its views' checkpoints disagree".to_owned());
    }
    if let Some(why) = clear {
        tracing::warn!(partition, reason = %why, "rebuilding the partition's views from sequence 0");
        tree.clear()?;
    }
    tree.insert(key::VERSION, &PROJECTION_VERSION.to_be_bytes())?;
    tree.flush()?;
    checkpoint(tree)
}

/// The subjects whose events are facts (restored into memory after a restart).
pub fn fact_filters(ledger: &Ledger, partition: u16) -> Vec<String> {
    AggregateKind::ALL
        .into_iter()
        .filter(|k| k.holds_facts())
        .map(|k| ledger.partitions().partition_kind_filter(partition, k))
        .collect()
}

/// Folds the facts of a partition up to `checkpoint` into `fold`, and knows every tenant
/// the tree has views of.
pub async fn restore(
    ledger: &Ledger,
    partition: u16,
    tree: &sled::Tree,
    checkpoint: u64,
    fold: &mut Fold,
) -> Result<u64, WorkerError> {
    let mut n = 0;
    if checkpoint > 0 {
        let mut events = ledger
            .read_partition(partition, fact_filters(ledger, partition), 1, checkpoint)
            .await?;
        while let Some(r) = events.next().await {
            let r = r?;
            fold.restore(r.sequence, &r.envelope);
            n += 1;
        }
    }
    let (lo, hi) = key::tenants();
    for item in tree.range(lo..=hi) {
        let (k, _) = item.map_err(StoreError::from)?;
        if let Some(t) = std::str::from_utf8(&k[2..])
            .ok()
            .and_then(|s| TenantId::parse(s).ok())
        {
            fold.know(t);
        }
    }
    Ok(n)
}

/// Runs the worker until `shutdown` resolves; then gives its partitions up.
pub async fn run(
    ledger: Ledger,
    options: WorkerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), WorkerError> {
    let db = open_store(&options.store_dir, options.cache_bytes)?;
    let shared = Arc::new(Shared {
        ledger,
        db,
        options,
        owned: Mutex::new(BTreeMap::new()),
        tasks: Mutex::new(Vec::new()),
        trees: Mutex::new(Vec::new()),
    });
    let js = shared.ledger.jetstream().clone();
    let ttl = shared.options.lease_ttl;
    let service = start_service(shared.clone()).await?;
    tracing::info!(instance = %shared.options.instance, store = %shared.options.store_dir.display(), "projection worker started");
    tokio::pin!(shutdown);
    let every = ttl / 4;
    loop {
        if let Err(e) = balance(&shared, &js).await {
            tracing::warn!(error = %e, "partition leases: will try again");
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    // Give every partition up, so another worker takes it at once.
    let owned: Vec<Arc<Partition>> = shared
        .owned
        .lock()
        .expect("owned")
        .values()
        .cloned()
        .collect();
    if let Ok(owners) = owners_bucket(&js, &shared).await {
        for p in owned {
            release(&shared, &owners, &p).await;
        }
    }
    if let Ok(members) = members_bucket(&js, &shared).await {
        let _ = members.delete(&shared.options.instance).await;
    }
    let _ = service.stop().await;
    let tasks: Vec<_> = std::mem::take(&mut *shared.tasks.lock().expect("tasks"));
    for t in tasks {
        t.abort();
        let _ = t.await;
    }
    // Blocking work in flight (a batch being committed, a query) finishes on its own;
    // wait for it, so the store is closed when this returns.
    for _ in 0..500 {
        let trees_in_use = shared
            .trees
            .lock()
            .expect("trees")
            .iter()
            .any(|w| w.strong_count() > 0);
        if Arc::strong_count(&shared) == 1 && !trees_in_use {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shared.db.flush_async().await.map_err(StoreError::from)?;
    tracing::info!("projection worker stopped");
    Ok(())
}

async fn owners_bucket(js: &jetstream::Context, shared: &Shared) -> Result<kv::Store, WorkerError> {
    bucket(js, OWNERS_BUCKET, shared).await
}

async fn members_bucket(
    js: &jetstream::Context,
    shared: &Shared,
) -> Result<kv::Store, WorkerError> {
    bucket(js, MEMBERS_BUCKET, shared).await
}

async fn bucket(
    js: &jetstream::Context,
    name: &str,
    shared: &Shared,
) -> Result<kv::Store, WorkerError> {
    if let Ok(b) = js.get_key_value(name).await {
        return Ok(b);
    }
    js.create_key_value(kv::Config {
        bucket: name.to_owned(),
        history: 1,
        max_age: shared.options.lease_ttl,
        storage: jetstream::stream::StorageType::Memory,
        num_replicas: shared.ledger.config().replicas,
        ..Default::default()
    })
    .await
    .map_err(nats)
}

/// Rendezvous order: which partitions this worker prefers, so that two workers agree on
/// a division without talking.
fn preference(instance: &str, partitions: u16) -> Vec<u16> {
    let mut order: Vec<(u64, u16)> = (0..partitions)
        .map(|p| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in instance.bytes().chain(p.to_be_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            (h, p)
        })
        .collect();
    order.sort_unstable_by(|a, b| b.cmp(a));
    order.into_iter().map(|(_, p)| p).collect()
}

/// One round of leases: heartbeat, renew what is held (fencing what is not), take or
/// give up partitions towards an even share.
async fn balance(shared: &Arc<Shared>, js: &jetstream::Context) -> Result<(), WorkerError> {
    let members = members_bucket(js, shared).await?;
    members
        .put(&shared.options.instance, Bytes::new())
        .await
        .map_err(nats)?;
    let workers = js
        .get_stream(format!("KV_{MEMBERS_BUCKET}"))
        .await
        .map_err(nats)?
        .info()
        .await
        .map_err(nats)?
        .state
        .messages
        .max(1);
    let owners = owners_bucket(js, shared).await?;
    let count = shared.ledger.config().partitions;
    let target = usize::from(count).div_ceil(workers as usize);
    let ttl = shared.options.lease_ttl;
    let margin = ttl / 6;

    // Renew.
    let held: Vec<Arc<Partition>> = shared
        .owned
        .lock()
        .expect("owned")
        .values()
        .cloned()
        .collect();
    for p in &held {
        let sent = Instant::now();
        match owners
            .update(
                format!("p{}", p.number),
                Bytes::from(shared.options.instance.clone()),
                p.revision.load(Ordering::SeqCst),
            )
            .await
        {
            Ok(rev) => {
                p.revision.store(rev, Ordering::SeqCst);
                *p.lease_valid_until.lock().expect("lease") = sent + ttl - margin;
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // Someone else's name in the key, or none: the lease expired first (the
                // renewal came too late, e.g. a stalled process), and the server removed it.
                let holder = match owners.entry(format!("p{}", p.number)).await {
                    Ok(Some(e)) if e.operation == kv::Operation::Put => {
                        Some(String::from_utf8_lossy(&e.value).into_owned())
                    }
                    _ => None,
                };
                let late = Instant::now()
                    .saturating_duration_since(*p.lease_valid_until.lock().expect("lease"));
                match holder {
                    Some(h) if h != shared.options.instance => tracing::warn!(
                        partition = p.number,
                        holder = %h,
                        "lease taken by another worker: fenced, no more folding or answering for it"
                    ),
                    _ => tracing::warn!(
                        partition = p.number,
                        late_ms = late.as_millis() as u64,
                        "lease expired before it was renewed: fenced, no more folding or answering for it"
                    ),
                }
                fence(shared, p);
            }
            Err(e) => {
                if !p.leased() {
                    tracing::warn!(partition = p.number, error = %e, "lease could not be renewed in time: fenced");
                    fence(shared, p);
                }
            }
        }
    }

    let held = shared.owned.lock().expect("owned").len();
    if held < target {
        let mut want = target - held;
        for number in preference(&shared.options.instance, count) {
            if want == 0 {
                break;
            }
            if shared.owned.lock().expect("owned").contains_key(&number) {
                continue;
            }
            let sent = Instant::now();
            let key = format!("p{number}");
            let me = Bytes::from(shared.options.instance.clone());
            let taken = match owners.create(&key, me.clone()).await {
                Ok(rev) => Some(rev),
                // A lease under this worker's own name is its own from before a crash
                // (names are unique among live workers): take it back at its revision.
                Err(_) => match owners.entry(&key).await {
                    Ok(Some(e)) if e.value == me && e.operation == kv::Operation::Put => {
                        owners.update(&key, me, e.revision).await.ok()
                    }
                    _ => None,
                },
            };
            if let Some(rev) = taken {
                want -= 1;
                let tree = shared
                    .db
                    .open_tree(format!("p{number}"))
                    .map_err(StoreError::from)?;
                let (stop, _) = tokio::sync::watch::channel(false);
                let part = Arc::new(Partition {
                    number,
                    tree,
                    fold: RwLock::new(Fold::new()),
                    status: Mutex::new(PartitionStatus {
                        partition: number,
                        rebuilding: true,
                        ..PartitionStatus::default()
                    }),
                    ready: AtomicBool::new(false),
                    corrupt: AtomicBool::new(false),
                    lease_valid_until: Mutex::new(sent + ttl - margin),
                    revision: AtomicU64::new(rev),
                    stop,
                    forwarded: Mutex::new(None),
                });
                shared
                    .owned
                    .lock()
                    .expect("owned")
                    .insert(number, part.clone());
                tracing::info!(partition = number, "partition taken");
                shared
                    .trees
                    .lock()
                    .expect("trees")
                    .push(Arc::downgrade(&part));
                let serving = tokio::spawn(serve_forwarded(shared.clone(), part.clone()));
                *part.forwarded.lock().expect("forwarded") = Some(serving);
                let task = tokio::spawn(own(shared.clone(), part));
                shared.tasks.lock().expect("tasks").push(task);
            }
        }
    } else if held > target {
        let order = preference(&shared.options.instance, count);
        let surplus: Vec<Arc<Partition>> = {
            let owned = shared.owned.lock().expect("owned");
            order
                .iter()
                .rev()
                .filter_map(|n| owned.get(n).cloned())
                .take(held - target)
                .collect()
        };
        for p in surplus {
            release(shared, &owners, &p).await;
        }
    }
    Ok(())
}

fn fence(shared: &Shared, p: &Partition) {
    *p.lease_valid_until.lock().expect("lease") = Instant::now();
    let _ = p.stop.send(true);
    if let Some(serving) = p.forwarded.lock().expect("forwarded").take() {
        serving.abort();
    }
    shared.owned.lock().expect("owned").remove(&p.number);
}

async fn release(shared: &Shared, owners: &kv::Store, p: &Arc<Partition>) {
    fence(shared, p);
    // Let the partition's task see the stop before the lease goes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = owners
        .delete_expect_revision(
            format!("p{}", p.number),
            Some(p.revision.load(Ordering::SeqCst)),
        )
        .await;
    let _ = shared
        .ledger
        .unfollow(p.number, &consumer_name(&shared.options.instance, p.number))
        .await;
    tracing::info!(partition = p.number, "partition given up");
}

fn consumer_name(instance: &str, partition: u16) -> String {
    format!("lc_proj_{instance}_p{partition}")
}

/// Folds an owned partition until it is stopped; retries after errors.
async fn own(shared: Arc<Shared>, part: Arc<Partition>) {
    let mut stop = part.stop.subscribe();
    loop {
        let result = tokio::select! {
            r = fold_partition(&shared, &part) => r,
            _ = stop.changed() => return,
        };
        if *stop.borrow() {
            return;
        }
        match result {
            Ok(()) => return,
            Err(WorkerError::Store(StoreError::Decode(e))) => {
                tracing::warn!(partition = part.number, error = %e, "a stored view does not decode: rebuilding the partition from sequence 0");
                let _ = part.tree.clear();
            }
            Err(e) => {
                tracing::warn!(partition = part.number, error = %e, "folding stopped; starting again in 1 s")
            }
        }
        part.ready.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn fold_partition(shared: &Arc<Shared>, part: &Arc<Partition>) -> Result<(), WorkerError> {
    let ledger = &shared.ledger;
    let number = part.number;
    let last = ledger.partition_last_sequence(number).await?;
    let cp = prepare_tree(&part.tree, number, last)?;
    let mut fold = Fold::new();
    let started = Instant::now();
    let facts = restore(ledger, number, &part.tree, cp, &mut fold).await?;
    *part.fold.write().expect("fold") = fold;
    {
        let mut s = part.status.lock().expect("status");
        *s = PartitionStatus {
            partition: number,
            sequence: cp,
            target: last,
            rebuilding: cp < last,
        };
    }
    if cp < last {
        tracing::info!(
            partition = number,
            from = cp,
            to = last,
            "catching up: answers say \"rebuilding\" until the views reach the stream's end"
        );
    }
    tracing::debug!(partition = number, facts, elapsed = ?started.elapsed(), "facts restored");
    let mut follower = ledger
        .follow(number, &consumer_name(&shared.options.instance, number), cp)
        .await?;
    part.ready.store(true, Ordering::SeqCst);
    let mut last_tick = Instant::now() - shared.options.tick;
    let mut caught_up_logged = cp >= last;
    loop {
        let batch = follower
            .next_batch(shared.options.batch, shared.options.tick)
            .await?;
        if !part.leased() {
            return Ok(());
        }
        if part.corrupt.swap(false, Ordering::SeqCst) {
            return Err(
                StoreError::Decode("a query read a view that does not decode".into()).into(),
            );
        }
        let now = shared.options.clock.now();
        if !batch.is_empty() {
            let p = part.clone();
            let (seq, folded) =
                tokio::task::spawn_blocking(move || -> Result<(u64, Folded), StoreError> {
                    let refs: Vec<(u64, &schemas::Envelope)> =
                        batch.iter().map(|r| (r.sequence, &r.envelope)).collect();
                    let mut fold = p.fold.write().expect("fold");
                    let (changes, folded) = fold.apply(&p.tree, &refs, now)?;
                    if !p.leased() {
                        return Ok((0, folded));
                    }
                    commit_sled(&p.tree, changes)?;
                    Ok((batch.last().map_or(0, |r| r.sequence), folded))
                })
                .await
                .map_err(nats)??;
            if seq == 0 {
                return Ok(());
            }
            follower.ack().await?;
            let mut s = part.status.lock().expect("status");
            s.sequence = seq;
            s.rebuilding = seq < s.target;
            if !s.rebuilding && !caught_up_logged {
                caught_up_logged = true;
                tracing::info!(partition = number, sequence = seq, "views current");
            }
            tracing::trace!(partition = number, ?folded, "batch folded");
        }
        if last_tick.elapsed() >= shared.options.tick {
            last_tick = Instant::now();
            let p = part.clone();
            tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
                let mut fold = p.fold.write().expect("fold");
                let (changes, _) = fold.tick(&p.tree, now)?;
                if !changes.is_empty() && p.leased() {
                    commit_sled(&p.tree, changes)?;
                }
                Ok(())
            })
            .await
            .map_err(nats)??;
        }
    }
}

fn service_error(e: &QueryError) -> async_nats::service::error::Error {
    let status = match e {
        QueryError::Rebuilding(r) => format!("rebuilding: {r}"),
        other => other.to_string(),
    };
    async_nats::service::error::Error {
        code: e.code(),
        status: ledger::subjects::header_value(&status),
    }
}

async fn start_service(shared: Arc<Shared>) -> Result<async_nats::service::Service, WorkerError> {
    let client = shared.ledger.client().clone();
    let service = client
        .service_builder()
        .description(
            "Ledgerclock reports: daily, monthly, raw records, devices, explain, as-of, diff",
        )
        .queue_group("lc-reports")
        .start(SERVICE_NAME, SERVICE_VERSION)
        .await
        .map_err(nats)?;
    let group = service.group(QUERY_PREFIX);
    for name in QUERIES {
        let mut endpoint = group
            .endpoint_builder()
            .name(name)
            .add(format!("*.{name}"))
            .await
            .map_err(nats)?;
        let shared2 = shared.clone();
        let task = tokio::spawn(async move {
            let shared = shared2;
            while let Some(request) = endpoint.next().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let answer = route(&shared, name, &request.message).await;
                    let _ = request.respond(answer).await;
                });
            }
        });
        shared.tasks.lock().expect("tasks").push(task);
    }
    Ok(service)
}

/// Answers requests forwarded to `part` (`lc.qp.v1.p<k>.<tenant>.<query>`) while this
/// worker owns it: subscribed when it is taken, dropped when it is given up or fenced,
/// so a request for a partition nobody holds meets "no responders" at once.
async fn serve_forwarded(shared: Arc<Shared>, part: Arc<Partition>) {
    let client = shared.ledger.client().clone();
    let Ok(mut owner) = client
        .subscribe(format!("{OWNER_PREFIX}.p{}.>", part.number))
        .await
    else {
        tracing::warn!(
            partition = part.number,
            "cannot subscribe to forwarded queries"
        );
        return;
    };
    while let Some(message) = owner.next().await {
        let shared = shared.clone();
        let part = part.clone();
        tokio::spawn(async move {
            let Some(reply) = message.reply.clone() else {
                return;
            };
            let tokens: Vec<&str> = message.subject.as_str().split('.').collect();
            // lc.qp.v1.p<k>.<tenant>.<query>
            let tenant = tokens.get(4).copied().unwrap_or_default();
            let name = tokens.get(5).copied().unwrap_or_default();
            let answer = answer_local(&shared, &part, tenant, name, &message.payload).await;
            let mut headers = async_nats::HeaderMap::new();
            let body = match answer {
                Ok(b) => b,
                Err(e) => {
                    let e = service_error(&e);
                    headers.insert(async_nats::service::NATS_SERVICE_ERROR, e.status.as_str());
                    headers.insert(
                        async_nats::service::NATS_SERVICE_ERROR_CODE,
                        e.code.to_string().as_str(),
                    );
                    Bytes::new()
                }
            };
            let _ = shared
                .ledger
                .client()
                .publish_with_headers(reply, headers, body)
                .await;
        });
    }
}

/// Answers a query here, or asks the partition's owner and relays its answer (an error
/// keeps the owner's code and reason).
async fn route(
    shared: &Arc<Shared>,
    name: &str,
    message: &async_nats::Message,
) -> Result<Bytes, async_nats::service::error::Error> {
    let tenant = message
        .subject
        .as_str()
        .split('.')
        .nth(3)
        .unwrap_or_default();
    let tenant_id = TenantId::parse(tenant)
        .map_err(|e| service_error(&QueryError::BadRequest(format!("tenant {tenant:?}: {e}"))))?;
    let p = shared.ledger.partitions().of(&tenant_id);
    let part = shared.owned.lock().expect("owned").get(&p).cloned();
    if let Some(part) = part {
        return answer_local(shared, &part, tenant, name, &message.payload)
            .await
            .map_err(|e| service_error(&e));
    }
    let subject = format!("{OWNER_PREFIX}.p{p}.{tenant}.{name}");
    let request = async_nats::Request::new()
        .payload(message.payload.clone())
        .timeout(Some(Duration::from_secs(30)));
    match shared.ledger.client().send_request(subject, request).await {
        Ok(reply) => {
            if let Some(h) = &reply.headers
                && let Some(code) = h.get(async_nats::service::NATS_SERVICE_ERROR_CODE)
            {
                return Err(async_nats::service::error::Error {
                    code: code.as_str().parse().unwrap_or(500),
                    status: h
                        .get(async_nats::service::NATS_SERVICE_ERROR)
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                });
            }
            Ok(reply.payload)
        }
        Err(_) => Err(service_error(&QueryError::Rebuilding(format!(
            "no worker holds partition {p} yet (a worker is taking it over); retry in 2 s"
        )))),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsOfRequest {
    /// The report as it was at this time: events recorded by then, judged as the clock
    /// stood then.
    pub at: DateTime<Utc>,
    /// Whom to judge (at least one, at most 50): the answer is computed by replay.
    pub people: Vec<schemas::ids::PersonId>,
    pub from: chrono::NaiveDate,
    #[serde(default)]
    pub to: Option<chrono::NaiveDate>,
    /// Rows to skip: the `next_offset` of the previous page (each page replays again).
    #[serde(default)]
    pub offset: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffRequest {
    /// Earlier time.
    pub since: DateTime<Utc>,
    /// Later time (default: now).
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    pub people: Vec<schemas::ids::PersonId>,
    pub from: chrono::NaiveDate,
    #[serde(default)]
    pub to: Option<chrono::NaiveDate>,
    /// Rows to skip: the `next_offset` of the previous page (each page replays again).
    #[serde(default)]
    pub offset: usize,
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, QueryError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| QueryError::BadRequest(e.to_string()))
}

fn parse_required<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, QueryError> {
    serde_json::from_slice(body).map_err(|e| QueryError::BadRequest(e.to_string()))
}

async fn answer_local(
    shared: &Arc<Shared>,
    part: &Arc<Partition>,
    tenant: &str,
    name: &str,
    body: &[u8],
) -> Result<Bytes, QueryError> {
    let tenant = TenantId::parse(tenant)
        .map_err(|e| QueryError::BadRequest(format!("tenant {tenant:?}: {e}")))?;
    if !part.leased() {
        return Err(QueryError::Rebuilding(format!(
            "partition {} is changing hands; retry in 2 s",
            part.number
        )));
    }
    match name {
        "as_of" | "diff" => {
            return crate::asof::answer(
                &shared.ledger,
                &tenant,
                name,
                body,
                shared.options.clock.now(),
            )
            .await;
        }
        _ => {}
    }
    let status = *part.status.lock().expect("status");
    let now = shared.options.clock.now();
    let part = part.clone();
    let name = name.to_owned();
    let body = body.to_vec();
    tokio::task::spawn_blocking(move || {
        if !part.ready.load(Ordering::SeqCst) {
            return Err(QueryError::Rebuilding(format!(
                "partition {} is being restored; retry in 1 s",
                part.number
            )));
        }
        let fold = part.fold.read().expect("fold");
        let corrupt = |e: QueryError| {
            if let QueryError::Corrupt(why) = &e {
                tracing::warn!(partition = part.number, reason = %why, "a stored view does not decode: rebuilding the partition");
                part.corrupt.store(true, Ordering::SeqCst);
            }
            e
        };
        let Some(book) = fold.book(&tenant) else {
            return Err(if status.rebuilding {
                QueryError::Rebuilding(format!(
                    "partition {} has folded {} of {} events and knows nothing of {tenant} yet; retry in 1 s",
                    part.number, status.sequence, status.target
                ))
            } else {
                QueryError::UnknownTenant(tenant.clone())
            });
        };
        let scope = Scope {
            tenant: &tenant,
            book,
            store: &part.tree,
            now,
        };
        let (rows, next_offset) = (|| -> Result<_, QueryError> { Ok(match name.as_str() {
            "daily" => scope.daily(&parse::<DailyRequest>(&body)?)?,
            "monthly" => scope.monthly(&parse_required::<MonthlyRequest>(&body)?)?,
            "raw" => scope.raw(&parse_required::<RawRequest>(&body)?)?,
            "devices" => scope.devices(&parse::<ListRequest>(&body)?)?,
            "people" => scope.people_list(&parse::<ListRequest>(&body)?)?,
            "departments" => (scope.departments()?, None),
            "explain" => (
                vec![crate::query::typed(&scope.explain(&parse_required::<ExplainRequest>(&body)?)?)],
                None,
            ),
            other => return Err(QueryError::BadRequest(format!("no query {other:?}"))),
        })})()
        .map_err(corrupt)?;
        let answer = Answer {
            tenant: tenant.clone(),
            sequence: status.sequence,
            rebuilding: status.rebuilding,
            rows,
            next_offset,
        };
        Ok(Bytes::from(serde_json::to_vec(&answer).expect("json")))
    })
    .await
    .map_err(|e| QueryError::Store(e.to_string()))?
}

/// How much of the stream's time a rebuild absorbs before judging the days it made
/// dirty: each day is then judged about once, after its punches have come.
const JUDGE_EVERY: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Most keys in one sled batch of a rebuild.
const COMMIT_PART: usize = 4096;

/// Figures of a rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    pub folded: Folded,
    /// The stream sequence the views reflect.
    pub sequence: u64,
    pub phases: Phases,
}

/// Where a rebuild's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Waiting for the stream's next events.
    pub reading: Duration,
    /// Folding events into raw records, devices and people.
    pub folding: Duration,
    /// Judging the days they made dirty.
    pub judging: Duration,
    /// Writing all that to sled.
    pub writing: Duration,
}

impl Phases {
    /// Adds the time since `*since` to `phase` and restarts the clock.
    fn lap(phase: &mut Duration, since: &mut Instant) {
        let now = Instant::now();
        *phase += now - *since;
        *since = now;
    }
}

/// Rebuilds partition `partition`'s views in `tree` from sequence 0 up to the stream's
/// end now, or only `tenant`'s (its keys cleared, its events folded up to the tree's
/// checkpoint). `progress(done, total)` is called after each committed batch.
pub async fn rebuild(
    ledger: &Ledger,
    tree: &sled::Tree,
    partition: u16,
    tenant: Option<&TenantId>,
    now: DateTime<Utc>,
    batch: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<(Rebuilt, Fold), WorkerError> {
    let last = ledger.partition_last_sequence(partition).await?;
    let (mut fold, until) = match tenant {
        None => {
            tree.clear().map_err(StoreError::from)?;
            prepare_tree(tree, partition, last)?;
            tree.insert(key::full_rebuild(), &[])
                .map_err(StoreError::from)?;
            (Fold::new(), last)
        }
        Some(t) => {
            let cp = prepare_tree(tree, partition, last)?;
            tree.insert(key::tenant_rebuild(t), &[])
                .map_err(StoreError::from)?;
            for (lo, hi) in key::of_tenant(t) {
                let keys: Vec<sled::IVec> = tree
                    .range(lo..=hi)
                    .keys()
                    .collect::<Result<_, _>>()
                    .map_err(StoreError::from)?;
                let mut b = sled::Batch::default();
                for k in keys {
                    b.remove(k);
                }
                tree.apply_batch(b).map_err(StoreError::from)?;
            }
            (Fold::only(t.clone()), cp)
        }
    };
    let filters = match tenant {
        None => Vec::new(),
        Some(t) => vec![ledger.partitions().tenant_filter(t)],
    };
    // Reading runs ahead of folding, a few batches deep.
    let mut events = ledger.read_partition(partition, filters, 1, until).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4 * batch.max(1));
    let reader = tokio::spawn(async move {
        while let Some(r) = events.next().await {
            let failed = r.is_err();
            if tx.send(r).await.is_err() || failed {
                break;
            }
        }
    });
    let mut out = Rebuilt::default();
    let mut pending: Vec<ledger::Recorded> = Vec::with_capacity(batch);
    let mut judged_to = DateTime::<Utc>::MIN_UTC;
    loop {
        let mut clock = Instant::now();
        let next = rx.recv().await;
        Phases::lap(&mut out.phases.reading, &mut clock);
        let end = next.is_none();
        if let Some(r) = next {
            pending.push(r?);
        }
        if pending.len() >= batch || (end && !pending.is_empty()) {
            let refs: Vec<(u64, &schemas::Envelope)> =
                pending.iter().map(|r| (r.sequence, &r.envelope)).collect();
            let phases = &mut out.phases;
            let folded = tokio::task::block_in_place(|| -> Result<_, StoreError> {
                let (changes, mut folded) = fold.absorb(tree, &refs, now)?;
                Phases::lap(&mut phases.folding, &mut clock);
                commit_sled_in_parts(tree, changes, COMMIT_PART)?;
                Phases::lap(&mut phases.writing, &mut clock);
                // A week of the stream's time at once, or everything at its end.
                let horizon = fold.pending_horizon();
                if end || horizon.is_some_and(|h| h - judged_to >= JUDGE_EVERY) {
                    let (changes, f) = fold.judge_pending(tree, now)?;
                    Phases::lap(&mut phases.judging, &mut clock);
                    commit_sled_in_parts(tree, changes, COMMIT_PART)?;
                    Phases::lap(&mut phases.writing, &mut clock);
                    folded += f;
                    judged_to = horizon.unwrap_or(judged_to);
                }
                Ok(folded)
            })?;
            out.events += pending.len() as u64;
            out.folded += folded;
            let done = pending.last().map_or(0, |r| r.sequence);
            pending.clear();
            progress(done, until);
        }
        if end {
            break;
        }
    }
    reader.abort();
    let (mut changes, folded) = tokio::task::block_in_place(|| {
        let (mut changes, mut folded) = fold.judge_pending(tree, now)?;
        commit_sled_in_parts(tree, std::mem::take(&mut changes), COMMIT_PART)?;
        let (changes, f) = fold.tick(tree, now)?;
        folded += f;
        Ok::<_, StoreError>((changes, folded))
    })?;
    out.folded += folded;
    // The checkpoints and the end of the rebuild marker, in one batch with the last
    // views.
    match tenant {
        Some(t) => changes.delete(key::tenant_rebuild(t)),
        None => {
            for v in VIEWS {
                changes.put(key::checkpoint(v), until.to_be_bytes().to_vec());
            }
            changes.delete(key::full_rebuild());
        }
    }
    commit_sled(tree, changes)?;
    tree.flush_async().await.map_err(StoreError::from)?;
    progress(until, until);
    out.sequence = until;
    Ok((out, fold))
}
