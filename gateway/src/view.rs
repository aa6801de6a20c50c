//! What one gateway instance serves from memory instead of reading the stream per
//! request: every SN's claim (its binding), every device's command queue, and each
//! tenant's departments, people and rules (for phone punches).
//!
//! It is one tailing fold per partition: an ordered consumer over just those subjects
//! (`lc.ev.p<k>.*.devcmd.>`, `.department.>`, `.person.>`, `.rule.>`, and the system
//! tenant's `device.>` claims), started the first time the partition is needed and
//! restarted from its last applied sequence after an error. Nothing here is the truth;
//! a restarted gateway folds it again from the stream.
//!
//! Freshness, the three cases:
//! - A poll reads the view as soon as it has caught up once (`live`): what other
//!   processes wrote (an administrator's command, a binding) reaches it within the
//!   tail's delivery time, a few milliseconds.
//! - What this gateway writes itself (commands delivered, results) it waits to see in
//!   the view before it answers the device ([`View::caught_up`]), so the next request,
//!   here, never acts on a queue older than its own last answer.
//! - A lookup that finds nothing (an SN not bound, a person not hired, a punch the rule
//!   refuses) is not trusted to the tail's delay: [`View::sync`] asks the stream for the
//!   last sequence of those subjects (one direct get each) and waits until the view has
//!   applied it, then looks again. So a device bound a moment ago is served at once,
//!   and the cost of an unknown SN stays what it was, one direct read.
//!
//! If the view cannot be current within [`CURRENT_WITHIN`] (NATS unreachable), the
//! request is answered "unavailable" and the device sends it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use ledger::{Expected, Ledger, LedgerError, Recorded};
use projections::book::Book;
use schemas::ids::{DeviceSn, TenantId};
use schemas::{AggregateKind, Event};
use tokio::sync::watch;

use crate::commands::CommandQueue;
use crate::ingest::Binding;

/// How long a request waits for the view to be current before it is answered
/// "unavailable".
pub const CURRENT_WITHIN: Duration = Duration::from_secs(3);
/// How long a failed tail waits before it starts again.
const RESTART_AFTER: Duration = Duration::from_millis(500);

/// The kinds of events one partition's tail folds.
const TENANT_KINDS: [AggregateKind; 4] = [
    AggregateKind::DeviceCommands,
    AggregateKind::Department,
    AggregateKind::Person,
    AggregateKind::Rule,
];
/// What phone punches are decided on.
const BOOK_KINDS: [AggregateKind; 3] = [
    AggregateKind::Department,
    AggregateKind::Person,
    AggregateKind::Rule,
];

#[derive(Clone)]
pub struct View {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").finish_non_exhaustive()
    }
}

struct Shared {
    ledger: Ledger,
    parts: Vec<OnceLock<Arc<Part>>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().expect("not poisoned").drain(..) {
            task.abort();
        }
    }
}

/// How far a partition's tail has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The stream sequence of the last event applied.
    pub applied: u64,
    /// The tail has reached the end of the stream at least once since it (re)started.
    pub live: bool,
}

struct Part {
    state: RwLock<State>,
    progress: watch::Sender<Progress>,
}

#[derive(Default)]
struct State {
    /// The system tenant's claims: an SN's last claim event and its sequence.
    claims: HashMap<DeviceSn, (Event, u64)>,
    /// Each device's command queue, with the sequence of its subject's last event.
    queues: HashMap<(TenantId, DeviceSn), (CommandQueue, u64)>,
    books: HashMap<TenantId, Book>,
}

impl State {
    fn apply(&mut self, recorded: &Recorded) {
        let envelope = &recorded.envelope;
        let event = &envelope.event;
        match event.aggregate().kind {
            AggregateKind::Device if envelope.tenant == TenantId::system() => {
                if let Event::DeviceClaimed(e) = event {
                    self.claims
                        .insert(e.sn.clone(), (event.clone(), recorded.sequence));
                } else if let Event::DeviceReleased(e) = event {
                    self.claims
                        .insert(e.sn.clone(), (event.clone(), recorded.sequence));
                }
            }
            AggregateKind::DeviceCommands => {
                // A command queue's aggregate id is its device's SN.
                let sn = DeviceSn::from(event.aggregate().id.as_str());
                let (queue, last) = self
                    .queues
                    .entry((envelope.tenant.clone(), sn))
                    .or_default();
                queue.apply(event, envelope.recorded_at);
                *last = recorded.sequence;
            }
            kind if BOOK_KINDS.contains(&kind) => self
                .books
                .entry(envelope.tenant.clone())
                .or_default()
                .apply(recorded.sequence, envelope),
            _ => {}
        }
    }
}

/// The view could not be brought up to date: the ledger is unreachable.
#[derive(Debug, thiserror::Error)]
pub enum NotCurrent {
    #[error(
        "the gateway's view of partition {partition} is not current (it has applied {applied}, needs {needed})"
    )]
    Behind {
        partition: u16,
        applied: u64,
        needed: u64,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl View {
    pub fn new(ledger: Ledger) -> Self {
        let count = ledger.partitions().count();
        Self {
            shared: Arc::new(Shared {
                ledger,
                parts: (0..count).map(|_| OnceLock::new()).collect(),
                tasks: Mutex::default(),
            }),
        }
    }

    fn ledger(&self) -> &Ledger {
        &self.shared.ledger
    }

    fn filters(&self, partition: u16) -> Vec<String> {
        let p = self.ledger().partitions();
        let system = TenantId::system();
        let mut filters: Vec<String> = TENANT_KINDS
            .iter()
            .map(|&kind| p.partition_kind_filter(partition, kind))
            .collect();
        if p.of(&system) == partition {
            filters.push(p.kind_filter(&system, AggregateKind::Device));
        }
        filters
    }

    /// The partition's part, its tail started on first use.
    fn part(&self, partition: u16) -> Arc<Part> {
        self.shared.parts[usize::from(partition)]
            .get_or_init(|| {
                let part = Arc::new(Part {
                    state: RwLock::default(),
                    progress: watch::Sender::new(Progress::default()),
                });
                let task = tokio::spawn(tail(
                    self.ledger().clone(),
                    partition,
                    self.filters(partition),
                    Arc::downgrade(&part),
                ));
                self.shared
                    .tasks
                    .lock()
                    .expect("not poisoned")
                    .push(task.abort_handle());
                part
            })
            .clone()
    }

    /// How far partition `partition` has come (starting its tail if it was not).
    pub fn progress(&self, partition: u16) -> Progress {
        *self.part(partition).progress.borrow()
    }

    /// Waits until the partition is live and has applied `sequence`.
    async fn reach(&self, partition: u16, sequence: u64) -> Result<Arc<Part>, NotCurrent> {
        let part = self.part(partition);
        let mut rx = part.progress.subscribe();
        let reached = tokio::time::timeout(
            CURRENT_WITHIN,
            rx.wait_for(|p| p.live && p.applied >= sequence),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(part),
            _ => Err(NotCurrent::Behind {
                partition,
                applied: part.progress.borrow().applied,
                needed: sequence,
            }),
        }
    }

    /// Waits until the view shows this gateway's own write at `sequence` in the
    /// tenant's partition.
    pub async fn caught_up(&self, tenant: &TenantId, sequence: u64) -> Result<(), NotCurrent> {
        let partition = self.ledger().partitions().of(tenant);
        self.reach(partition, sequence).await.map(|_| ())
    }

    /// Waits until the view holds everything the stream has of `kinds` of `tenant`:
    /// one direct get per kind.
    pub async fn sync(&self, tenant: &TenantId, kinds: &[AggregateKind]) -> Result<(), NotCurrent> {
        let p = self.ledger().partitions();
        let partition = p.of(tenant);
        let mut last = 0;
        for &kind in kinds {
            let filter = p.kind_filter(tenant, kind);
            last = last.max(
                self.ledger()
                    .last_sequence_matching(partition, &filter)
                    .await?,
            );
        }
        self.reach(partition, last).await.map(|_| ())
    }

    fn system_part(&self) -> u16 {
        self.ledger().partitions().of(&TenantId::system())
    }

    /// The SN's claim as the view has it (after it is live), and its sequence.
    async fn claim(&self, sn: &DeviceSn, sync: bool) -> Result<Option<(Event, u64)>, NotCurrent> {
        let partition = self.system_part();
        let part = self.reach(partition, 0).await?;
        let found = part
            .state
            .read()
            .expect("not poisoned")
            .claims
            .get(sn)
            .cloned();
        if found.is_some() || !sync {
            return Ok(found);
        }
        self.sync(&TenantId::system(), &[AggregateKind::Device])
            .await?;
        Ok(part
            .state
            .read()
            .expect("not poisoned")
            .claims
            .get(sn)
            .cloned())
    }

    /// The binding of `sn`; an SN not in the view is looked for once more after the
    /// view has caught up with the stream's claims.
    pub async fn binding(&self, sn: &DeviceSn) -> Result<Option<Binding>, NotCurrent> {
        let claim = self.claim(sn, true).await?;
        Ok(claim.and_then(|(event, sequence)| {
            crate::admin::binding_of(Some(&event)).map(|binding| Binding {
                claim_sequence: sequence,
                ..binding
            })
        }))
    }

    /// The tenant whose commands `sn` polls (see [`crate::admin::command_tenant`]).
    pub async fn command_tenant(&self, sn: &DeviceSn) -> Result<Option<TenantId>, NotCurrent> {
        let claim = self.claim(sn, false).await?;
        Ok(crate::admin::command_tenant(claim.as_ref().map(|(e, _)| e)))
    }

    /// Runs `f` over the device's command queue and the expectation for adding to it.
    pub async fn with_queue<T>(
        &self,
        tenant: &TenantId,
        sn: &DeviceSn,
        f: impl FnOnce(&CommandQueue, Expected) -> T,
    ) -> Result<T, NotCurrent> {
        let partition = self.ledger().partitions().of(tenant);
        let part = self.reach(partition, 0).await?;
        let state = part.state.read().expect("not poisoned");
        let empty = CommandQueue::default();
        Ok(match state.queues.get(&(tenant.clone(), sn.clone())) {
            Some((queue, last)) => f(queue, Expected::LastSequence(*last)),
            None => f(&empty, Expected::Empty),
        })
    }

    /// Runs `f` over the tenant's book (departments, people, rules).
    pub async fn with_book<T>(
        &self,
        tenant: &TenantId,
        f: impl FnOnce(&Book) -> T,
    ) -> Result<T, NotCurrent> {
        let partition = self.ledger().partitions().of(tenant);
        let part = self.reach(partition, 0).await?;
        let state = part.state.read().expect("not poisoned");
        Ok(match state.books.get(tenant) {
            Some(book) => f(book),
            None => f(&Book::new()),
        })
    }

    /// Brings the tenant's book level with the stream, for a decision that refused.
    pub async fn sync_book(&self, tenant: &TenantId) -> Result<(), NotCurrent> {
        self.sync(tenant, &BOOK_KINDS).await
    }
}

/// One partition's tail: applies what arrives, and starts again from the last applied
/// sequence when the consumer fails.
async fn tail(ledger: Ledger, partition: u16, filters: Vec<String>, part: std::sync::Weak<Part>) {
    loop {
        let Some(after) = part.upgrade().map(|p| p.progress.borrow().applied) else {
            return;
        };
        match ledger
            .tail_partition(partition, filters.clone(), after)
            .await
        {
            Ok(mut tail) => {
                if tail.pending_at_start == 0 {
                    let Some(part) = part.upgrade() else { return };
                    part.progress.send_modify(|p| p.live = true);
                }
                while let Some(next) = tail.next().await {
                    let Some(part) = part.upgrade() else { return };
                    match next {
                        Ok((recorded, pending)) => {
                            part.state.write().expect("not poisoned").apply(&recorded);
                            part.progress.send_modify(|p| {
                                p.applied = recorded.sequence;
                                p.live |= pending == 0;
                            });
                        }
                        Err(LedgerError::Decode {
                            sequence, source, ..
                        }) => {
                            // An event this build cannot read changes nothing it serves.
                            tracing::warn!(partition, sequence, error = %source, "gateway view: event not understood, skipped");
                            part.progress
                                .send_modify(|p| p.applied = p.applied.max(sequence));
                        }
                        Err(e) => {
                            tracing::warn!(partition, error = %e, "gateway view: tail failed; starting again");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(partition, error = %e, "gateway view: cannot tail the stream"),
        }
        match part.upgrade() {
            Some(part) => part.progress.send_modify(|p| p.live = false),
            None => return,
        }
        tokio::time::sleep(RESTART_AFTER).await;
    }
}
