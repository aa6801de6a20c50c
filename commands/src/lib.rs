//! Ledgerclock's write side: every administrative act is a command, decided by a pure
//! function over state folded from the events it reads, then appended with optimistic
//! concurrency. Nothing here knows HTTP or a terminal: the CLI (`attendance admin`) and
//! the NATS command service ([`service`]) are thin shells over [`execute`].
//!
//! One shape for every command (the event-sourcing crates' decide/evolve):
//! - a [`State`] folded from the tenant's aggregates of the kinds the command reads,
//!   with the last stream sequence it saw of the kind it guards;
//! - a pure [`Command::decide`]`(&State, now) -> Result<Vec<Event>, Rejection>`;
//! - [`execute`]: load, (rights: the next issue's hook), decide, append the events with
//!   "nothing of the guarded kind changed since" (`Expected::LastOfKind`), all of them or
//!   none (an atomic batch); on a conflict, load again and decide again.
//!
//! A command carries a [`CommandId`]: its events' ids derive from it and the events
//! carry it, so a retried command stores its facts once, inside JetStream's duplicate
//! window by the ids, after it by the state recognising the command as already done.

pub mod devices;
pub mod jobs;
pub mod organisation;
pub mod periods;
pub mod requests;
pub mod rules;
pub mod schedules;
pub mod service;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use ledger::{Expected, Ledger, LedgerError, ReadFrom};
use schemas::ids::{CommandId, EventId, TenantId};
use schemas::{Actor, AggregateKind, Envelope, Event};
use serde::Serialize;

/// How many times a command is decided again when a rival changed what it read.
pub const ATTEMPTS: usize = 8;

/// Why a command was refused. Nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The command is malformed or asks for something the domain does not allow.
    #[error("{0}")]
    Invalid(String),
    /// It names something that does not exist.
    #[error("{0}")]
    Unknown(String),
    /// The state forbids it (it exists already, someone else holds it).
    #[error("{0}")]
    Conflict(String),
}

impl Rejection {
    /// The service error code it is answered with.
    pub fn code(&self) -> usize {
        match self {
            Self::Invalid(_) => 400,
            Self::Unknown(_) => 404,
            Self::Conflict(_) => 409,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The reason is the message, not a cause below it: printed once.
    #[error("refused: {0}")]
    Refused(Rejection),
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    #[error("gave up after {ATTEMPTS} attempts: other commands kept changing what this one reads")]
    Contended,
}

impl From<Rejection> for CommandError {
    fn from(r: Rejection) -> Self {
        Self::Refused(r)
    }
}

/// State a command decides over: a fold of the events of the kinds it reads.
pub trait State: Default {
    fn apply(&mut self, sequence: u64, envelope: &Envelope);
}

/// A command: what it reads, what it guards, and its pure decision.
pub trait Command {
    type State: State;
    /// The aggregate kinds folded into its state.
    fn reads(&self) -> &'static [AggregateKind];
    /// The kind whose every aggregate must be as it was read for the append to go
    /// through: decisions that span aggregates of one kind (one rule a person follows,
    /// one holder of a badge number) hold under concurrency this way. `None`: the
    /// decided events guard their own aggregates ([`Decided::expect_last`]), as adding
    /// to one device's command queue does.
    fn guards(&self) -> Option<AggregateKind>;
    /// The events the command makes happen, or why it is refused. Pure: the clock is
    /// passed in.
    fn decide(&self, state: &Self::State, now: DateTime<Utc>) -> Result<Vec<Decided>, Rejection>;
}

/// An event a command decided, when it happens in the world if not now (a transfer
/// effective on a later date), and what its own aggregate must look like for it to be
/// stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub event: Event,
    pub occurred_at: Option<DateTime<Utc>>,
    /// The sequence of its aggregate's last event as the decision read it (0: none),
    /// checked when the batch is stored; not on the batch's first event when the
    /// command guards a kind (that event carries the kind's guard).
    pub expect_last: Option<u64>,
}

impl<E: Into<Event>> From<E> for Decided {
    fn from(e: E) -> Self {
        Self {
            event: e.into(),
            occurred_at: None,
            expect_last: None,
        }
    }
}

impl Decided {
    /// Stored only if its aggregate's last event is still at `sequence` (0: none).
    pub fn expecting(mut self, sequence: u64) -> Self {
        self.expect_last = Some(sequence);
        self
    }
}

/// One event a command stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Stored {
    pub event_id: EventId,
    pub kind: &'static str,
    pub sequence: u64,
}

/// What executing a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command's events were stored now.
    Applied(Vec<Stored>),
    /// The same command id was executed before: its events, nothing new.
    AlreadyDone(Vec<Stored>),
}

impl Outcome {
    pub fn events(&self) -> &[Stored] {
        match self {
            Self::Applied(e) | Self::AlreadyDone(e) => e,
        }
    }
}

/// Who asks for what, under which id.
#[derive(Debug, Clone)]
pub struct Request<C> {
    pub tenant: TenantId,
    pub actor: Actor,
    pub command_id: CommandId,
    pub command: C,
}

impl<C> Request<C> {
    /// A request under a fresh command id ([`mint_command_id`]).
    pub fn new(tenant: TenantId, actor: Actor, command: C) -> Self {
        Self {
            tenant,
            actor,
            command_id: mint_command_id(),
            command,
        }
    }
}

/// A state as loaded: the fold, the last sequence of the guarded kind, and the events
/// an earlier execution of this command id stored.
struct Loaded<S> {
    state: S,
    guard_last: u64,
    done: Vec<Stored>,
}

async fn load<C: Command>(
    ledger: &Ledger,
    tenant: &TenantId,
    command: &C,
    command_id: &CommandId,
) -> Result<Loaded<C::State>, LedgerError> {
    let p = ledger.partitions();
    let filters = command
        .reads()
        .iter()
        .chain(command.guards().as_ref())
        .map(|k| p.kind_filter(tenant, *k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // Direct gets, not a consumer: a load leaves nothing behind on the server.
    let mut events = ledger.read(tenant, ReadFrom::any_of(filters)).await?;
    let mut loaded = Loaded {
        state: C::State::default(),
        guard_last: 0,
        done: Vec::new(),
    };
    let guard = command.guards();
    while let Some(recorded) = events.next().await {
        let recorded = recorded?;
        let envelope = &recorded.envelope;
        if Some(envelope.event.aggregate().kind) == guard {
            loaded.guard_last = loaded.guard_last.max(recorded.sequence);
        }
        if envelope.command_id.as_ref() == Some(command_id) {
            loaded.done.push(Stored {
                event_id: envelope.event_id,
                kind: envelope.event.kind(),
                sequence: recorded.sequence,
            });
        }
        loaded.state.apply(recorded.sequence, envelope);
    }
    Ok(loaded)
}

/// Loads the state, decides, and appends the decision expecting nothing of the guarded
/// kind to have changed since; on a conflict, loads and decides again (a rival's
/// change may make the command refused now, which is the answer then).
pub async fn execute<C: Command>(
    ledger: &Ledger,
    request: &Request<C>,
    now: DateTime<Utc>,
) -> Result<Outcome, CommandError> {
    Ok(execute_stored(ledger, request, now).await?.0)
}

/// [`execute`], also answering the envelopes this execution stored (none when the
/// command was done before).
pub async fn execute_stored<C: Command>(
    ledger: &Ledger,
    request: &Request<C>,
    now: DateTime<Utc>,
) -> Result<(Outcome, Vec<Envelope>), CommandError> {
    let guard = request.command.guards();
    for attempt in 1..=ATTEMPTS {
        let loaded = load(
            ledger,
            &request.tenant,
            &request.command,
            &request.command_id,
        )
        .await?;
        if !loaded.done.is_empty() {
            return Ok((Outcome::AlreadyDone(loaded.done), Vec::new()));
        }
        // Rights are checked here (identity and rights: the next step of the write side).
        let decided = request.command.decide(&loaded.state, now)?;
        if decided.is_empty() {
            return Ok((Outcome::Applied(Vec::new()), Vec::new()));
        }
        let expectations: Vec<Expected> = decided
            .iter()
            .enumerate()
            .map(|(i, d)| match (i, guard, d.expect_last) {
                (0, Some(kind), _) => Expected::LastOfKind(kind, loaded.guard_last),
                (_, _, Some(0)) => Expected::Empty,
                (_, _, Some(sequence)) => Expected::LastSequence(sequence),
                (_, _, None) => Expected::Any,
            })
            .collect();
        let envelopes: Vec<Envelope> = decided
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                Envelope::new(request.tenant.clone(), request.actor.clone(), d.event, now)
                    .occurred_at(d.occurred_at.unwrap_or(now))
                    .of_command(&request.command_id, i)
            })
            .collect();
        let batch: Vec<(&Envelope, Expected)> = envelopes.iter().zip(expectations).collect();
        // All or none (a JetStream atomic batch), the first carrying the kind's guard.
        match ledger.append_atomic_expecting(&batch).await {
            Ok(appended) => {
                let stored = envelopes
                    .iter()
                    .zip(appended)
                    .map(|(e, a)| Stored {
                        event_id: e.event_id,
                        kind: e.event.kind(),
                        sequence: a.sequence,
                    })
                    .collect();
                return Ok((Outcome::Applied(stored), envelopes));
            }
            Err(LedgerError::Conflict { .. }) => {
                tracing::debug!(
                    tenant = %request.tenant,
                    command_id = %request.command_id,
                    attempt,
                    "another command changed what this one read; deciding again"
                );
                // Rivals that collided once would collide again at once: each waits a
                // jittered, growing while before reading again.
                let jitter = u64::from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos()),
                ) % (5 << attempt.min(6));
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::Contended)
}

/// An id an administrator chooses (a rule's, a department's, a shift's...): 1 to 64
/// ASCII letters, digits, `-` or `_`.
pub(crate) fn valid_id(what: &str, s: &str) -> Result<(), Rejection> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Rejection::Invalid(format!(
            "invalid {what} id {s:?}: 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

/// A name people read: trimmed, not empty, at most 100 characters. `what` is how the
/// message starts ("a rule", "a person").
pub(crate) fn valid_name(what: &str, name: &str) -> Result<String, Rejection> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Rejection::Invalid(format!(
            "{what}'s name must not be empty"
        )));
    }
    if name.chars().count() > 100 {
        return Err(Rejection::Invalid(format!(
            "{what}'s name is at most 100 characters"
        )));
    }
    Ok(name.to_owned())
}

/// A fresh command id, for callers that have none of their own (the CLI mints one per
/// invocation; a client that may retry should send its own).
pub fn mint_command_id() -> CommandId {
    CommandId::from(EventId::new_v7().to_string().as_str())
}
