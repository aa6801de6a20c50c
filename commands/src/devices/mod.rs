//! Devices: binding an SN to the tenant, naming it, its scope (可用范围) and the roster
//! it implies, privileges, its command queue, re-uploads.
//!
//! Every act is a command of the one pattern ([`DeviceAct`] over [`Devices`]), except
//! binding and unbinding, which also write the SN's claim under the system tenant
//! (another stream, so not one atomic batch): [`bind`] and [`unbind`] write the claim
//! first, guarded by its subject, then the tenant's half, and a retry of either after a
//! crash between the two finishes the half that is missing instead of refusing.
//!
//! What a device is sent and what the ledger records of it are stored together: each
//! roster change is a `RosterMember*` event and the `DeviceCommandQueued` that carries
//! it to the device, in the same atomic batch, guarded by the tenant's device kind (the
//! rosters read) and by each device's command queue (its next id). A change of scope,
//! a hire or a leave that touches thousands of people is stored in rounds of at most
//! [`MAX_CHANGES`] changes ([`sync`]): a round lands whole or not at all, and a round
//! cut short is the next round's work, since every round reconciles what the ledger
//! says was sent with what the scope wants.

pub mod queue;
pub mod roster;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use ledger::{Expected, Ledger, LedgerError};
use schemas::events::{
    DeviceBound, DeviceClaimed, DeviceCommand, DeviceCommandQueued, DevicePrivilege,
    DeviceReleased, DeviceRenamed, DeviceUnbound, ReuploadRequested, RosterMemberDisabled,
    RosterMemberPushed, RosterMemberRemoved,
};
use schemas::ids::{BadgeNumber, CommandId, DeviceSn, PersonId, RequestId, TenantId, ZoneName};
use schemas::{Actor, Aggregate, AggregateKind, Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::{
    Command, CommandError, Decided, Outcome, Rejection, Request, State, Stored, execute_stored,
};
use queue::CommandQueue;
pub use roster::{Change, DeviceRoster, Rosters, Scope, reconcile};

/// The most roster changes one atomic round stores (each is two events; JetStream
/// takes at most 1,000 in a batch).
pub const MAX_CHANGES: usize = 400;

/// A device's command queue and the sequence of its last event (0: none), the value
/// a new command expects.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    pub commands: CommandQueue,
    pub last: u64,
}

/// What device commands decide over: the tenant's people, departments and devices
/// (rosters), and every device's command queue.
#[derive(Debug, Clone, Default)]
pub struct Devices {
    pub rosters: Rosters,
    pub queues: BTreeMap<DeviceSn, Queue>,
}

impl State for Devices {
    fn apply(&mut self, sequence: u64, envelope: &Envelope) {
        let aggregate = envelope.event.aggregate();
        if aggregate.kind == AggregateKind::DeviceCommands {
            let queue = self
                .queues
                .entry(DeviceSn::from(aggregate.id.as_str()))
                .or_default();
            queue.commands.apply(&envelope.event, envelope.recorded_at);
            queue.last = sequence;
        } else {
            self.rosters.apply_envelope(envelope);
        }
    }
}

impl Devices {
    fn bound(&self, sn: &DeviceSn) -> Result<&DeviceRoster, Rejection> {
        self.rosters
            .devices
            .get(sn)
            .filter(|d| d.bound)
            .ok_or_else(|| roster::not_bound(sn))
    }

    /// The device's local date at `now` (its binding's zone; UTC if it has none).
    pub fn today(&self, sn: &DeviceSn, now: DateTime<Utc>) -> NaiveDate {
        match self.rosters.devices.get(sn).and_then(|d| d.zone.as_ref()) {
            Some(zone) => now.with_timezone(&zone.tz()).date_naive(),
            None => now.date_naive(),
        }
    }
}

/// Queues device commands, each with the queue's next id; the first of each device
/// expects its queue as read, so two writers racing for one id cannot both store it.
struct Queuer<'a> {
    state: &'a Devices,
    next: BTreeMap<DeviceSn, u64>,
}

impl<'a> Queuer<'a> {
    fn new(state: &'a Devices) -> Self {
        Self {
            state,
            next: BTreeMap::new(),
        }
    }

    fn queue(
        &mut self,
        sn: &DeviceSn,
        command: DeviceCommand,
        expires_at: Option<DateTime<Utc>>,
        retry_of: Option<u64>,
    ) -> Decided {
        let queue = self.state.queues.get(sn);
        let first = !self.next.contains_key(sn);
        let id = self
            .next
            .entry(sn.clone())
            .or_insert_with(|| queue.map_or(1, |q| q.commands.next_id()));
        let decided = Decided::from(DeviceCommandQueued {
            sn: sn.clone(),
            command_id: *id,
            command,
            expires_at,
            retry_of,
        });
        *id += 1;
        if first {
            decided.expecting(queue.map_or(0, |q| q.last))
        } else {
            decided
        }
    }
}

fn user_command(
    badge: &BadgeNumber,
    name: &str,
    privilege: DevicePrivilege,
    disabled: bool,
) -> DeviceCommand {
    DeviceCommand::UpdateUser {
        badge_number: badge.clone(),
        name: name.to_owned(),
        privilege,
        card: None,
        disabled,
    }
}

/// The recorded roster change and the device command that carries it, in that order
/// (the first event of a batch that guards the device kind is of that kind).
fn change_events(sn: &DeviceSn, change: &Change, queuer: &mut Queuer<'_>) -> [Decided; 2] {
    let (recorded, command): (Event, DeviceCommand) = match change {
        Change::Push {
            person,
            badge,
            name,
            privilege,
        } => (
            RosterMemberPushed {
                sn: sn.clone(),
                person_id: person.clone(),
                badge_number: badge.clone(),
                name: name.clone(),
                privilege: *privilege,
            }
            .into(),
            user_command(badge, name, *privilege, false),
        ),
        Change::Disable {
            person,
            badge,
            name,
            privilege,
        } => (
            RosterMemberDisabled {
                sn: sn.clone(),
                person_id: person.clone(),
                badge_number: badge.clone(),
            }
            .into(),
            user_command(badge, name, *privilege, true),
        ),
        Change::Remove { person, badge } => (
            RosterMemberRemoved {
                sn: sn.clone(),
                person_id: Some(person.clone()),
                badge_number: badge.clone(),
            }
            .into(),
            DeviceCommand::DeleteUser {
                badge_number: badge.clone(),
            },
        ),
    };
    [recorded.into(), queuer.queue(sn, command, None, None)]
}

/// Up to `room` roster changes of the devices `only` names (all when `None`), as of
/// each device's local date at `now`, with their events.
fn sync_events(
    rosters: &Rosters,
    state: &Devices,
    only: Option<&DeviceSn>,
    now: DateTime<Utc>,
    room: usize,
) -> Vec<Decided> {
    let mut queuer = Queuer::new(state);
    let mut out = Vec::new();
    let mut left = room;
    for sn in rosters.devices.keys() {
        if only.is_some_and(|o| o != sn) || left == 0 {
            continue;
        }
        let changes = reconcile(rosters, sn, state.today(sn, now));
        for change in changes.iter().take(left) {
            out.extend(change_events(sn, change, &mut queuer));
        }
        left -= changes.len().min(left);
    }
    out
}

/// An administrative act on a bound device. Binding and unbinding are [`bind`] and
/// [`unbind`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceAct {
    /// Claim the SN for this tenant (no other tenant can take it) and bind it: its
    /// uploads are accepted from then on, for records dated from `records_from`.
    Bind(Bind),
    /// Release it: its uploads are refused, `CLEAR DATA` is sent so it forgets the
    /// tenant's people and records. The tenant keeps its history.
    Unbind { sn: DeviceSn },
    /// The name people see for it.
    Rename { sn: DeviceSn, name: String },
    /// Who it holds: people and departments (sub-departments optionally), less
    /// exclusions; what becomes of someone who leaves it. Its roster follows at once,
    /// and every day at 00:00 in its zone (transfers and leaves that take effect then).
    Scope {
        sn: DeviceSn,
        #[serde(flatten)]
        scope: Scope,
    },
    /// A person's privilege on it (user, registrar, admin), sent with them.
    Privilege {
        sn: DeviceSn,
        person_id: PersonId,
        privilege: DevicePrivilege,
    },
    /// A command for it, delivered when it next polls (and again if no answer comes).
    Send {
        sn: DeviceSn,
        command: DeviceCommand,
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// A failed or expired command queued again under a new id that names it.
    Retry { sn: DeviceSn, command_id: u64 },
    /// Ask it to upload its records of `from`..=`to` again (its local dates), for
    /// everyone or for the people named (by their badge numbers).
    Reupload {
        sn: DeviceSn,
        from: NaiveDate,
        to: NaiveDate,
        #[serde(default)]
        people: Vec<PersonId>,
    },
    /// Bring every scoped device (or only `sn`) in line with its scope today: at most
    /// [`MAX_CHANGES`] changes; [`sync`] runs rounds until none is left.
    Sync {
        #[serde(default)]
        sn: Option<DeviceSn>,
    },
}

impl DeviceAct {
    /// The device it is about, if one.
    pub fn sn(&self) -> Option<&DeviceSn> {
        match self {
            Self::Rename { sn, .. }
            | Self::Scope { sn, .. }
            | Self::Privilege { sn, .. }
            | Self::Send { sn, .. }
            | Self::Retry { sn, .. }
            | Self::Reupload { sn, .. }
            | Self::Unbind { sn } => Some(sn),
            Self::Bind(b) => Some(&b.sn),
            Self::Sync { sn } => sn.as_ref(),
        }
    }

    /// Whether its roster must be synced after it (in further rounds).
    fn syncs(&self) -> bool {
        matches!(
            self,
            Self::Scope { .. } | Self::Privilege { .. } | Self::Sync { .. }
        )
    }
}

impl Command for DeviceAct {
    type State = Devices;

    fn reads(&self) -> &'static [AggregateKind] {
        &[
            AggregateKind::Person,
            AggregateKind::Department,
            AggregateKind::Device,
            AggregateKind::DeviceCommands,
        ]
    }

    fn guards(&self) -> Option<AggregateKind> {
        match self {
            // What only adds to one device's queue guards that queue alone (its first
            // event expects it): polling devices elsewhere do not make it retry.
            Self::Send { .. } | Self::Retry { .. } | Self::Reupload { .. } => None,
            Self::Bind(_)
            | Self::Unbind { .. }
            | Self::Rename { .. }
            | Self::Scope { .. }
            | Self::Privilege { .. }
            | Self::Sync { .. } => Some(AggregateKind::Device),
        }
    }

    fn decide(&self, s: &Devices, now: DateTime<Utc>) -> Result<Vec<Decided>, Rejection> {
        if let Some(sn) = self.sn() {
            valid_sn(sn.as_str())?;
        }
        match self {
            // They write the system tenant's claim too: [`bind`] and [`unbind`].
            Self::Bind(_) | Self::Unbind { .. } => Err(Rejection::Invalid(
                "binding and unbinding are executed by devices::execute".into(),
            )),
            Self::Rename { sn, name } => {
                s.bound(sn)?;
                let name = crate::valid_name("a device", name)?;
                Ok(vec![
                    DeviceRenamed {
                        sn: sn.clone(),
                        name,
                    }
                    .into(),
                ])
            }
            Self::Scope { sn, scope } => {
                let set = roster::decide_scope(&s.rosters, sn, scope)?;
                let mut after = s.rosters.clone();
                after.apply(&set.clone().into());
                let mut events = vec![Decided::from(set)];
                events.extend(sync_events(&after, s, Some(sn), now, MAX_CHANGES));
                Ok(events)
            }
            Self::Privilege {
                sn,
                person_id,
                privilege,
            } => {
                let set = roster::decide_privilege(
                    &s.rosters,
                    sn,
                    person_id,
                    *privilege,
                    s.today(sn, now),
                )?;
                let mut after = s.rosters.clone();
                after.apply(&set.clone().into());
                let mut events = vec![Decided::from(set)];
                events.extend(sync_events(&after, s, Some(sn), now, MAX_CHANGES));
                Ok(events)
            }
            Self::Send {
                sn,
                command,
                expires_at,
            } => {
                s.bound(sn)?;
                if expires_at.is_some_and(|at| at <= now) {
                    return Err(Rejection::Invalid(format!(
                        "expires_at {} is not in the future",
                        expires_at.unwrap_or(now)
                    )));
                }
                Ok(vec![Queuer::new(s).queue(
                    sn,
                    command.clone(),
                    *expires_at,
                    None,
                )])
            }
            Self::Retry { sn, command_id } => {
                s.bound(sn)?;
                let queue = s.queues.get(sn).map(|q| &q.commands);
                let empty = CommandQueue::default();
                let command = queue::decide_retry(queue.unwrap_or(&empty), *command_id)?;
                Ok(vec![Queuer::new(s).queue(
                    sn,
                    command,
                    None,
                    Some(*command_id),
                )])
            }
            Self::Reupload {
                sn,
                from,
                to,
                people,
            } => {
                s.bound(sn)?;
                if to < from {
                    return Err(Rejection::Invalid(format!("to {to} is before from {from}")));
                }
                let mut badge_numbers = Vec::new();
                for id in people {
                    let person =
                        s.rosters.people.people.get(id).ok_or_else(|| {
                            Rejection::Unknown(format!("person {id} does not exist"))
                        })?;
                    let badge = person.badge.clone().ok_or_else(|| {
                        Rejection::Invalid(format!(
                            "{id} has no badge number: no device holds records of them"
                        ))
                    })?;
                    badge_numbers.push(badge);
                }
                let (start, end) = (
                    from.and_time(NaiveTime::MIN),
                    to.and_hms_opt(23, 59, 59).unwrap_or_default(),
                );
                // The request's id is the queue position it takes: one per command.
                let mut queuer = Queuer::new(s);
                let queued = queuer.queue(
                    sn,
                    DeviceCommand::QueryAttendance {
                        start,
                        end,
                        badge_numbers: badge_numbers.clone(),
                    },
                    None,
                    None,
                );
                let Event::DeviceCommandQueued(q) = &queued.event else {
                    unreachable!("the queuer queues")
                };
                let request = ReuploadRequested {
                    request_id: RequestId::from(format!("reupload-{sn}-{}", q.command_id).as_str()),
                    sns: vec![sn.clone()],
                    start,
                    end,
                    badge_numbers,
                };
                Ok(vec![queued, request.into()])
            }
            Self::Sync { sn } => {
                if let Some(sn) = sn {
                    s.bound(sn)?;
                }
                Ok(sync_events(&s.rosters, s, sn.as_ref(), now, MAX_CHANGES))
            }
        }
    }
}

/// A device serial number as devices and subjects take it: 1 to 64 ASCII letters,
/// digits, '-' or '_'.
pub fn valid_sn(sn: &str) -> Result<DeviceSn, Rejection> {
    let ok = !sn.is_empty()
        && sn.len() <= 64
        && sn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(DeviceSn::from(sn))
    } else {
        Err(Rejection::Invalid(format!(
            "invalid serial number {sn:?}: 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

/// The roster changes stored envelopes record, with their devices.
pub fn changes_of(stored: &[Envelope]) -> Vec<(DeviceSn, Change)> {
    let mut pending: BTreeMap<(DeviceSn, BadgeNumber), (String, DevicePrivilege)> = BTreeMap::new();
    for e in stored {
        if let Event::DeviceCommandQueued(q) = &e.event
            && let DeviceCommand::UpdateUser {
                badge_number,
                name,
                privilege,
                ..
            } = &q.command
        {
            pending.insert(
                (q.sn.clone(), badge_number.clone()),
                (name.clone(), *privilege),
            );
        }
    }
    stored
        .iter()
        .filter_map(|e| match &e.event {
            Event::RosterMemberPushed(p) => Some((
                p.sn.clone(),
                Change::Push {
                    person: p.person_id.clone(),
                    badge: p.badge_number.clone(),
                    name: p.name.clone(),
                    privilege: p.privilege,
                },
            )),
            Event::RosterMemberRemoved(r) => Some((
                r.sn.clone(),
                Change::Remove {
                    person: r.person_id.clone().unwrap_or_else(|| PersonId::from("?")),
                    badge: r.badge_number.clone(),
                },
            )),
            Event::RosterMemberDisabled(d) => {
                let (name, privilege) = pending
                    .get(&(d.sn.clone(), d.badge_number.clone()))
                    .cloned()
                    .unwrap_or((String::new(), DevicePrivilege::User));
                Some((
                    d.sn.clone(),
                    Change::Disable {
                        person: d.person_id.clone(),
                        badge: d.badge_number.clone(),
                        name,
                        privilege,
                    },
                ))
            }
            _ => None,
        })
        .collect()
}

/// What a device act did: the act's outcome, and every roster change stored for it
/// (in the act's own batch and in the rounds after).
#[derive(Debug, Clone)]
pub struct Executed {
    pub outcome: Outcome,
    pub changes: Vec<(DeviceSn, Change)>,
    /// The events the rounds after the act stored.
    pub followed: Vec<Stored>,
}

/// What a sync stored: the roster changes, and its events.
#[derive(Debug, Clone, Default)]
pub struct Synced {
    pub changes: Vec<(DeviceSn, Change)>,
    pub stored: Vec<Stored>,
}

/// The id of round `round` of the sync that follows command `id`.
fn round_id(id: &CommandId, round: usize) -> CommandId {
    CommandId::from(format!("{id}.sync{round}").as_str())
}

/// How many rounds a sync runs at most: far beyond any roster ([`MAX_CHANGES`] each).
const MAX_ROUNDS: usize = 1_000;

/// Brings the tenant's scoped devices (or only `sn`) in line with their scopes as of
/// `now`, in rounds of at most [`MAX_CHANGES`] changes, each stored whole or not at
/// all under an id derived from `command_id` (a retried sync repeats no round that
/// was stored).
pub async fn sync(
    ledger: &Ledger,
    tenant: &TenantId,
    actor: &Actor,
    command_id: &CommandId,
    sn: Option<&DeviceSn>,
    now: DateTime<Utc>,
) -> Result<Synced, CommandError> {
    let mut synced = Synced::default();
    for round in 1..=MAX_ROUNDS {
        let request = Request {
            tenant: tenant.clone(),
            actor: actor.clone(),
            command_id: round_id(command_id, round),
            command: DeviceAct::Sync { sn: sn.cloned() },
        };
        let (outcome, stored) = execute_stored(ledger, &request, now).await?;
        match outcome {
            Outcome::Applied(events) if events.is_empty() => break,
            Outcome::Applied(events) => {
                synced.changes.extend(changes_of(&stored));
                synced.stored.extend(events);
            }
            // Stored by an earlier try of this sync: its changes are not this one's.
            Outcome::AlreadyDone(_) => {}
        }
    }
    Ok(synced)
}

/// Executes a device act; an act that changes a roster is followed by sync rounds
/// until the device is in line (a scope of thousands of people is several rounds).
pub async fn execute(
    ledger: &Ledger,
    request: &Request<DeviceAct>,
    now: DateTime<Utc>,
) -> Result<Executed, CommandError> {
    fn with<C>(request: &Request<DeviceAct>, command: C) -> Request<C> {
        Request {
            tenant: request.tenant.clone(),
            actor: request.actor.clone(),
            command_id: request.command_id.clone(),
            command,
        }
    }
    match &request.command {
        DeviceAct::Bind(b) => {
            let outcome = bind(ledger, &with(request, b.clone()), now).await?;
            return Ok(Executed {
                outcome,
                changes: Vec::new(),
                followed: Vec::new(),
            });
        }
        DeviceAct::Unbind { sn } => {
            let outcome = unbind(ledger, &with(request, sn.clone()), now).await?;
            return Ok(Executed {
                outcome,
                changes: Vec::new(),
                followed: Vec::new(),
            });
        }
        _ => {}
    }
    let (outcome, stored) = execute_stored(ledger, request, now).await?;
    let mut changes = changes_of(&stored);
    let mut followed = Vec::new();
    if request.command.syncs() {
        let sn = request.command.sn().cloned();
        let synced = sync(
            ledger,
            &request.tenant,
            &request.actor,
            &request.command_id,
            sn.as_ref(),
            now,
        )
        .await?;
        changes.extend(synced.changes);
        followed = synced.stored;
    }
    Ok(Executed {
        outcome,
        changes,
        followed,
    })
}

/// The device ids stored events of a queue command took (its `C:<id>` on the wire).
pub fn queued_ids(stored: &[Envelope]) -> Vec<u64> {
    stored
        .iter()
        .filter_map(|e| match &e.event {
            Event::DeviceCommandQueued(q) => Some(q.command_id),
            _ => None,
        })
        .collect()
}

/// [`execute`] for an act that queues one device command, answering that command's id
/// (for a command done before, the id it took then).
pub async fn execute_queueing(
    ledger: &Ledger,
    request: &Request<DeviceAct>,
    now: DateTime<Utc>,
) -> Result<(u64, Vec<Stored>), CommandError> {
    let (outcome, stored) = execute_stored(ledger, request, now).await?;
    let id = match (queued_ids(&stored).first(), request.command.sn()) {
        (Some(id), _) => *id,
        (None, None) => 0,
        (None, Some(sn)) => {
            // Done before: read back what it queued.
            let aggregate = Aggregate::new(AggregateKind::DeviceCommands, sn.as_str());
            let filter = ledger
                .partitions()
                .event_subject(&request.tenant, &aggregate);
            let mut read = ledger
                .read(&request.tenant, ledger::ReadFrom::only(filter))
                .await?;
            let mut id = 0;
            use futures::StreamExt;
            while let Some(r) = read.next().await {
                let r = r?;
                if r.envelope.command_id.as_ref() == Some(&request.command_id)
                    && let Event::DeviceCommandQueued(q) = &r.envelope.event
                {
                    id = q.command_id;
                }
            }
            id
        }
    };
    Ok((id, outcome.events().to_vec()))
}

/// Queues `command` for a bound device under a fresh command id; the id it takes on the
/// device.
pub async fn send(
    ledger: &Ledger,
    tenant: &TenantId,
    sn: &DeviceSn,
    command: DeviceCommand,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<u64, CommandError> {
    let act = DeviceAct::Send {
        sn: sn.clone(),
        command,
        expires_at: None,
    };
    Ok(
        execute_queueing(ledger, &Request::new(tenant.clone(), actor, act), now)
            .await?
            .0,
    )
}

/// Queues failed or expired command `id` again under a fresh command id; the new id.
pub async fn retry(
    ledger: &Ledger,
    tenant: &TenantId,
    sn: &DeviceSn,
    id: u64,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<u64, CommandError> {
    let act = DeviceAct::Retry {
        sn: sn.clone(),
        command_id: id,
    };
    Ok(
        execute_queueing(ledger, &Request::new(tenant.clone(), actor, act), now)
            .await?
            .0,
    )
}

// --- Binding -------------------------------------------------------------------------

/// Binding a device: its SN claimed for the tenant (no other tenant can take it), then
/// bound in the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    pub sn: DeviceSn,
    pub name: String,
    #[serde(default)]
    pub model: Option<String>,
    pub zone: ZoneName,
    /// Accept records dated from this local date; `None`: from the binding day.
    #[serde(default)]
    pub records_from: Option<NaiveDate>,
}

fn claim_aggregate(sn: &DeviceSn) -> Aggregate {
    Aggregate::new(AggregateKind::Device, sn.as_str())
}

/// The SN's claim (under the system tenant) and the sequence to expect when changing it.
async fn current_claim(
    ledger: &Ledger,
    sn: &DeviceSn,
) -> Result<(Option<Envelope>, Expected), LedgerError> {
    Ok(
        match ledger
            .last_event(&TenantId::system(), &claim_aggregate(sn))
            .await?
        {
            Some(r) => (Some(r.envelope), Expected::LastSequence(r.sequence)),
            None => (None, Expected::Empty),
        },
    )
}

/// The tenant's own record of the device: bound (its last device event is not an
/// unbinding), and the sequence to expect when adding to it.
async fn tenant_side(
    ledger: &Ledger,
    tenant: &TenantId,
    sn: &DeviceSn,
) -> Result<(bool, Expected), LedgerError> {
    Ok(
        match ledger.last_event(tenant, &claim_aggregate(sn)).await? {
            Some(r) => (
                !matches!(r.envelope.event, Event::DeviceUnbound(_)),
                Expected::LastSequence(r.sequence),
            ),
            None => (false, Expected::Empty),
        },
    )
}

/// What binding decides, given the SN's claim and whether the tenant has it bound.
#[derive(Debug, Clone, PartialEq)]
pub enum BindDecision {
    /// Claim it, then bind it.
    Claim(DeviceClaimed, DeviceBound),
    /// Claimed for this tenant before, the binding never stored (a crash between the
    /// two): bind it now.
    Finish(DeviceBound),
    /// This very command bound it before.
    Done,
}

/// Pure: binding `cmd` for `tenant` given the SN's current claim.
pub fn decide_bind(
    claim: Option<&Envelope>,
    bound_here: bool,
    tenant: &TenantId,
    command_id: &CommandId,
    cmd: &Bind,
    today: NaiveDate,
) -> Result<BindDecision, Rejection> {
    valid_sn(cmd.sn.as_str())?;
    let name = crate::valid_name("a device", &cmd.name)?;
    let bound = |records_from: NaiveDate| DeviceBound {
        sn: cmd.sn.clone(),
        name: name.clone(),
        model: cmd.model.clone(),
        zone: cmd.zone.clone(),
        records_from: Some(records_from),
    };
    match claim.map(|e| (&e.event, e.command_id.as_ref())) {
        Some((Event::DeviceClaimed(c), by)) if &c.tenant == tenant => {
            if bound_here {
                if by == Some(command_id) {
                    Ok(BindDecision::Done)
                } else {
                    Err(Rejection::Conflict(format!(
                        "device {} is already bound to this tenant",
                        cmd.sn
                    )))
                }
            } else {
                Ok(BindDecision::Finish(DeviceBound {
                    zone: c.zone.clone(),
                    ..bound(c.records_from)
                }))
            }
        }
        Some((Event::DeviceClaimed(_), _)) => Err(Rejection::Conflict(format!(
            "device {} is bound to another tenant; it must be unbound there first",
            cmd.sn
        ))),
        _ => {
            let records_from = cmd.records_from.unwrap_or(today);
            Ok(BindDecision::Claim(
                DeviceClaimed {
                    sn: cmd.sn.clone(),
                    tenant: tenant.clone(),
                    zone: cmd.zone.clone(),
                    records_from,
                },
                bound(records_from),
            ))
        }
    }
}

/// Binds a device: the claim first (if a rival claimed the SN since it was read, a
/// conflict, and nothing else is written), then the binding in the tenant.
pub async fn bind(
    ledger: &Ledger,
    request: &Request<Bind>,
    now: DateTime<Utc>,
) -> Result<Outcome, CommandError> {
    let cmd = &request.command;
    let (claim, expected) = current_claim(ledger, &cmd.sn).await?;
    let (bound_here, tenant_expected) = tenant_side(ledger, &request.tenant, &cmd.sn).await?;
    let today = now.with_timezone(&cmd.zone.tz()).date_naive();
    let decision = decide_bind(
        claim.as_ref(),
        bound_here,
        &request.tenant,
        &request.command_id,
        cmd,
        today,
    )?;
    let mut stored = Vec::new();
    let bound = match decision {
        BindDecision::Done => return Ok(Outcome::AlreadyDone(Vec::new())),
        BindDecision::Finish(bound) => bound,
        BindDecision::Claim(claimed, bound) => {
            let claim_event =
                Envelope::new(TenantId::system(), request.actor.clone(), claimed, now)
                    .of_command(&request.command_id, 0);
            let appended = ledger.append(&claim_event, expected).await?;
            stored.push(Stored {
                event_id: claim_event.event_id,
                kind: claim_event.event.kind(),
                sequence: appended.sequence,
            });
            bound
        }
    };
    let bound_event = Envelope::new(request.tenant.clone(), request.actor.clone(), bound, now)
        .of_command(&request.command_id, 1);
    let appended = ledger.append(&bound_event, tenant_expected).await?;
    stored.push(Stored {
        event_id: bound_event.event_id,
        kind: bound_event.event.kind(),
        sequence: appended.sequence,
    });
    Ok(Outcome::Applied(stored))
}

/// Unbinds a device: the claim released (its uploads are refused from then on), then
/// in one atomic batch the unbinding and `CLEAR DATA` queued, so the device forgets the
/// tenant's people and records (a released device still polls this tenant's queue).
/// The tenant keeps its history. A retry after a crash between the two halves finishes
/// the second.
pub async fn unbind(
    ledger: &Ledger,
    request: &Request<DeviceSn>,
    now: DateTime<Utc>,
) -> Result<Outcome, CommandError> {
    let sn = &request.command;
    let tenant = &request.tenant;
    valid_sn(sn.as_str())?;
    let (claim, expected) = current_claim(ledger, sn).await?;
    let (bound_here, tenant_expected) = tenant_side(ledger, tenant, sn).await?;
    let mut stored = Vec::new();
    match claim.as_ref().map(|e| &e.event) {
        Some(Event::DeviceClaimed(c)) if &c.tenant == tenant => {
            let release = Envelope::new(
                TenantId::system(),
                request.actor.clone(),
                DeviceReleased {
                    sn: sn.clone(),
                    tenant: tenant.clone(),
                },
                now,
            )
            .of_command(&request.command_id, 0);
            let appended = ledger.append(&release, expected).await?;
            stored.push(Stored {
                event_id: release.event_id,
                kind: release.event.kind(),
                sequence: appended.sequence,
            });
        }
        // Released by this tenant, its own half missing: finish it.
        Some(Event::DeviceReleased(r)) if &r.tenant == tenant && bound_here => {}
        Some(Event::DeviceReleased(r))
            if &r.tenant == tenant
                && claim.as_ref().and_then(|e| e.command_id.as_ref())
                    == Some(&request.command_id) =>
        {
            return Ok(Outcome::AlreadyDone(Vec::new()));
        }
        _ => return Err(roster::not_bound(sn).into()),
    }
    // The queue's next id, as the tenant's state has it.
    let aggregate = Aggregate::new(AggregateKind::DeviceCommands, sn.as_str());
    let filter = ledger.partitions().event_subject(tenant, &aggregate);
    let mut read = ledger.read(tenant, ledger::ReadFrom::only(filter)).await?;
    let mut devices = Devices::default();
    use futures::StreamExt;
    while let Some(r) = read.next().await {
        let r = r?;
        devices.apply(r.sequence, &r.envelope);
    }
    let queued = Queuer::new(&devices).queue(sn, DeviceCommand::ClearData, None, None);
    let queue_expected = match queued.expect_last {
        Some(0) => Expected::Empty,
        Some(n) => Expected::LastSequence(n),
        None => Expected::Any,
    };
    let unbound = Envelope::new(
        tenant.clone(),
        request.actor.clone(),
        DeviceUnbound {
            sn: sn.clone(),
            reason: None,
        },
        now,
    )
    .of_command(&request.command_id, 1);
    let clear = Envelope::new(tenant.clone(), request.actor.clone(), queued.event, now)
        .of_command(&request.command_id, 2);
    let appended = ledger
        .append_atomic_expecting(&[(&unbound, tenant_expected), (&clear, queue_expected)])
        .await?;
    for (e, a) in [&unbound, &clear].into_iter().zip(appended) {
        stored.push(Stored {
            event_id: e.event_id,
            kind: e.event.kind(),
            sequence: a.sequence,
        });
    }
    Ok(Outcome::Applied(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Bind {
        Bind {
            sn: DeviceSn::from("CQZ7224460246"),
            name: " Front door ".into(),
            model: None,
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: None,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    fn claim(tenant: &str, by: &str) -> Envelope {
        let (claimed, _) = match decide_bind(
            None,
            false,
            &TenantId::parse(tenant).unwrap(),
            &CommandId::from(by),
            &cmd(),
            today(),
        ) {
            Ok(BindDecision::Claim(c, b)) => (c, b),
            other => panic!("{other:?}"),
        };
        Envelope::new(
            TenantId::system(),
            Actor::System {
                component: "test".into(),
            },
            claimed,
            today().and_hms_opt(0, 0, 0).unwrap().and_utc(),
        )
        .of_command(&CommandId::from(by), 0)
    }

    #[test]
    fn binding_claims_a_free_sn_from_today_and_refuses_a_held_one() {
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        let id = CommandId::from("c1");
        match decide_bind(None, false, &acme, &id, &cmd(), today()).unwrap() {
            BindDecision::Claim(c, b) => {
                assert_eq!((c.records_from, b.records_from), (today(), Some(today())));
                assert_eq!(b.name, "Front door");
            }
            other => panic!("{other:?}"),
        }
        let held = claim("acme", "c1");
        let elsewhere = decide_bind(Some(&held), false, &globex, &id, &cmd(), today());
        assert!(
            matches!(&elsewhere, Err(Rejection::Conflict(r)) if r.contains("bound to another tenant")),
            "{elsewhere:?}"
        );
        let here = decide_bind(
            Some(&held),
            true,
            &acme,
            &CommandId::from("c2"),
            &cmd(),
            today(),
        );
        assert!(matches!(&here, Err(Rejection::Conflict(r)) if r.contains("already bound")));
        assert_eq!(
            decide_bind(Some(&held), true, &acme, &id, &cmd(), today()),
            Ok(BindDecision::Done)
        );
        assert!(matches!(
            decide_bind(
                Some(&held),
                false,
                &acme,
                &CommandId::from("c3"),
                &cmd(),
                today()
            ),
            Ok(BindDecision::Finish(_))
        ));
    }

    #[test]
    fn serial_numbers_are_checked() {
        assert!(valid_sn("CQZ7224460246").is_ok());
        for bad in ["", "a b", "a.b", &"x".repeat(65)] {
            assert!(valid_sn(bad).is_err(), "{bad:?}");
        }
    }
}
