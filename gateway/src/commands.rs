//! A device's command queue, folded from its `devcmd` events: what is waiting, what was
//! delivered, what the device answered. Pure; the HTTP shell reads the events, asks
//! `poll` or `results` what to append, appends, then answers the device. Because the
//! queue is only events, any gateway instance serves any device.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use schemas::Event;
use schemas::events::{
    DeviceCommand, DeviceCommandAcknowledged, DeviceCommandDelivered, DeviceCommandExpired,
    DeviceCommandFailed,
};
use schemas::ids::DeviceSn;

use crate::protocol::commands::CommandResult;

/// A delivered command with no result after this long is delivered again (the device
/// may have lost the reply).
pub const REDELIVER_AFTER: Duration = Duration::minutes(10);

#[derive(Debug, Clone, PartialEq)]
pub enum CommandState {
    Queued,
    Delivered { at: DateTime<Utc> },
    Done { return_code: i32 },
    Failed,
    Expired,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueuedCommand {
    pub id: u64,
    pub command: DeviceCommand,
    pub expires_at: Option<DateTime<Utc>>,
    pub state: CommandState,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandQueue {
    pub commands: BTreeMap<u64, QueuedCommand>,
}

impl CommandQueue {
    /// Folds one event recorded at `recorded_at`; events of other kinds are not about a
    /// command queue and change nothing.
    pub fn apply(&mut self, event: &Event, recorded_at: DateTime<Utc>) {
        match event {
            Event::DeviceCommandQueued(e) => {
                self.commands.insert(
                    e.command_id,
                    QueuedCommand {
                        id: e.command_id,
                        command: e.command.clone(),
                        expires_at: e.expires_at,
                        state: CommandState::Queued,
                    },
                );
            }
            Event::DeviceCommandDelivered(e) => {
                self.set(e.command_id, CommandState::Delivered { at: recorded_at })
            }
            Event::DeviceCommandAcknowledged(e) => self.set(
                e.command_id,
                CommandState::Done {
                    return_code: e.return_code,
                },
            ),
            Event::DeviceCommandFailed(e) => self.set(e.command_id, CommandState::Failed),
            Event::DeviceCommandExpired(e) => self.set(e.command_id, CommandState::Expired),
            _ => {}
        }
    }

    fn set(&mut self, id: u64, state: CommandState) {
        if let Some(command) = self.commands.get_mut(&id) {
            command.state = state;
        }
    }

    /// The id for the next command: one past the highest ever queued.
    pub fn next_id(&self) -> u64 {
        self.commands.keys().next_back().map_or(1, |id| id + 1)
    }
}

/// What a `getrequest` poll does at `now`: the commands to hand over (in id order) and
/// the events that record it.
pub fn poll(
    queue: &CommandQueue,
    sn: &DeviceSn,
    now: DateTime<Utc>,
) -> (Vec<(u64, DeviceCommand)>, Vec<Event>) {
    let mut deliver = Vec::new();
    let mut events = Vec::new();
    for command in queue.commands.values() {
        let due = match command.state {
            CommandState::Queued => true,
            CommandState::Delivered { at } => now - at >= REDELIVER_AFTER,
            CommandState::Done { .. } | CommandState::Failed | CommandState::Expired => false,
        };
        if !due {
            continue;
        }
        if command.expires_at.is_some_and(|at| at <= now) {
            events.push(Event::DeviceCommandExpired(DeviceCommandExpired {
                sn: sn.clone(),
                command_id: command.id,
            }));
            continue;
        }
        deliver.push((command.id, command.command.clone()));
        events.push(Event::DeviceCommandDelivered(DeviceCommandDelivered {
            sn: sn.clone(),
            command_id: command.id,
        }));
    }
    (deliver, events)
}

/// The events for results a device posted. A result for a command this queue does not
/// know, or already finished, records nothing (devices repeat results).
pub fn results(queue: &CommandQueue, sn: &DeviceSn, results: &[CommandResult]) -> Vec<Event> {
    results
        .iter()
        .filter(|r| {
            queue.commands.get(&r.id).is_some_and(|c| {
                matches!(
                    c.state,
                    CommandState::Queued | CommandState::Delivered { .. }
                )
            })
        })
        .map(|r| {
            if r.return_code >= 0 {
                Event::DeviceCommandAcknowledged(DeviceCommandAcknowledged {
                    sn: sn.clone(),
                    command_id: r.id,
                    return_code: r.return_code,
                    verb: r.verb.clone(),
                })
            } else {
                Event::DeviceCommandFailed(DeviceCommandFailed {
                    sn: sn.clone(),
                    command_id: r.id,
                    return_code: Some(r.return_code),
                    reason: format!("device returned {}", r.return_code),
                })
            }
        })
        .collect()
}

/// The device's queue as the ledger has it, and the sequence to expect when adding to it.
pub async fn load(
    ledger: &ledger::Ledger,
    tenant: &schemas::ids::TenantId,
    sn: &DeviceSn,
) -> Result<(CommandQueue, ledger::Expected), ledger::LedgerError> {
    use futures::StreamExt;
    let aggregate = schemas::Aggregate::new(schemas::AggregateKind::DeviceCommands, sn.as_str());
    let filter = ledger.partitions().event_subject(tenant, &aggregate);
    let mut events = ledger.read(tenant, ledger::ReadFrom::only(filter)).await?;
    let mut queue = CommandQueue::default();
    let mut last = 0;
    while let Some(recorded) = events.next().await {
        let recorded = recorded?;
        queue.apply(&recorded.envelope.event, recorded.envelope.recorded_at);
        last = recorded.sequence;
    }
    let expected = if last == 0 {
        ledger::Expected::Empty
    } else {
        ledger::Expected::LastSequence(last)
    };
    Ok((queue, expected))
}

/// The command to queue again for command `id`: only one that failed or expired may be
/// retried (a done one is done; a waiting one is still on its way).
pub fn decide_retry(queue: &CommandQueue, id: u64) -> Result<DeviceCommand, crate::admin::Refusal> {
    use crate::admin::Refusal;
    let command = queue.commands.get(&id).ok_or(Refusal::UnknownCommand(id))?;
    match command.state {
        CommandState::Failed | CommandState::Expired => Ok(command.command.clone()),
        ref state => Err(Refusal::NotRetryable {
            id,
            state: format!("{state:?}"),
        }),
    }
}

/// Queues `command` for the device with the next free id. Two writers racing for one id
/// conflict on the device's command subject; the loser reads again and takes the next.
pub async fn queue(
    ledger: &ledger::Ledger,
    tenant: &schemas::ids::TenantId,
    sn: &DeviceSn,
    command: DeviceCommand,
    expires_at: Option<DateTime<Utc>>,
    actor: schemas::Actor,
    now: DateTime<Utc>,
) -> Result<u64, ledger::LedgerError> {
    append_queued(ledger, tenant, sn, command, expires_at, None, actor, now).await
}

/// Queues failed or expired command `id` again, under a new id that names it.
pub async fn retry(
    ledger: &ledger::Ledger,
    tenant: &schemas::ids::TenantId,
    sn: &DeviceSn,
    id: u64,
    actor: schemas::Actor,
    now: DateTime<Utc>,
) -> Result<u64, crate::admin::AdminError> {
    let (queue, _) = load(ledger, tenant, sn).await?;
    let command = decide_retry(&queue, id)?;
    Ok(append_queued(ledger, tenant, sn, command, None, Some(id), actor, now).await?)
}

#[allow(clippy::too_many_arguments)]
async fn append_queued(
    ledger: &ledger::Ledger,
    tenant: &schemas::ids::TenantId,
    sn: &DeviceSn,
    command: DeviceCommand,
    expires_at: Option<DateTime<Utc>>,
    retry_of: Option<u64>,
    actor: schemas::Actor,
    now: DateTime<Utc>,
) -> Result<u64, ledger::LedgerError> {
    let mut attempts = 0;
    loop {
        let (queue, expected) = load(ledger, tenant, sn).await?;
        let id = queue.next_id();
        let event = schemas::events::DeviceCommandQueued {
            sn: sn.clone(),
            command_id: id,
            command: command.clone(),
            expires_at,
            retry_of,
        };
        let envelope = schemas::Envelope::new(tenant.clone(), actor.clone(), event, now);
        match ledger.append(&envelope, expected).await {
            Ok(_) => return Ok(id),
            Err(ledger::LedgerError::Conflict { .. }) if attempts < 5 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::events::DeviceCommandQueued;

    fn sn() -> DeviceSn {
        DeviceSn::from("CQZ1")
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        "2026-11-21T08:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
    }

    fn queued(id: u64, expires_at: Option<DateTime<Utc>>) -> Event {
        Event::DeviceCommandQueued(DeviceCommandQueued {
            sn: sn(),
            command_id: id,
            command: DeviceCommand::Info,
            expires_at,
            retry_of: None,
        })
    }

    #[test]
    fn given_queued_commands_when_polled_then_delivered_once_until_redelivery_is_due() {
        let mut q = CommandQueue::default();
        q.apply(&queued(1, None), t(0));
        q.apply(&queued(2, None), t(0));
        assert_eq!(q.next_id(), 3);
        let (deliver, events) = poll(&q, &sn(), t(1));
        assert_eq!(deliver.iter().map(|d| d.0).collect::<Vec<_>>(), [1, 2]);
        for e in &events {
            q.apply(e, t(1));
        }
        assert!(
            poll(&q, &sn(), t(2)).0.is_empty(),
            "not handed over twice in a row"
        );
        assert_eq!(
            poll(&q, &sn(), t(11)).0.len(),
            2,
            "redelivered when no result came"
        );
    }

    #[test]
    fn only_failed_or_expired_commands_are_retried() {
        let mut q = CommandQueue::default();
        q.apply(&queued(1, Some(t(5))), t(0));
        q.apply(&queued(2, None), t(0));
        assert_eq!(
            decide_retry(&q, 1).unwrap_err().to_string(),
            "command 1 cannot be retried: it is Queued"
        );
        for e in poll(&q, &sn(), t(6)).1 {
            q.apply(&e, t(6));
        }
        assert_eq!(decide_retry(&q, 1), Ok(DeviceCommand::Info), "expired");
        assert!(decide_retry(&q, 2).is_err(), "delivered, still on its way");
        assert_eq!(
            decide_retry(&q, 9).unwrap_err().to_string(),
            "there is no command 9 for this device"
        );
    }

    #[test]
    fn given_an_expired_command_when_polled_then_expired_not_delivered() {
        let mut q = CommandQueue::default();
        q.apply(&queued(1, Some(t(5))), t(0));
        let (deliver, events) = poll(&q, &sn(), t(6));
        assert!(deliver.is_empty());
        assert!(matches!(events[..], [Event::DeviceCommandExpired(_)]));
    }

    #[test]
    fn results_finish_commands_once() {
        let mut q = CommandQueue::default();
        q.apply(&queued(1, None), t(0));
        q.apply(&queued(2, None), t(0));
        let posted = [
            CommandResult {
                id: 1,
                return_code: 0,
                verb: Some("INFO".into()),
            },
            CommandResult {
                id: 2,
                return_code: -1002,
                verb: None,
            },
            CommandResult {
                id: 9,
                return_code: 0,
                verb: None,
            },
        ];
        let events = results(&q, &sn(), &posted);
        assert!(matches!(
            events[..],
            [
                Event::DeviceCommandAcknowledged(_),
                Event::DeviceCommandFailed(_)
            ]
        ));
        for e in &events {
            q.apply(e, t(1));
        }
        assert!(
            results(&q, &sn(), &posted).is_empty(),
            "a repeated result records nothing"
        );
        assert!(poll(&q, &sn(), t(60)).0.is_empty());
    }
}
