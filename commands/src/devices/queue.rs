//! A device's command queue, folded from its `devcmd` events: what is waiting, what was
//! delivered, what the device answered. The write side adds to it (queueing, retrying);
//! the gateway delivers from it and records what the device answered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemas::Event;
use schemas::events::DeviceCommand;

use crate::Rejection;

#[derive(Debug, Clone, PartialEq)]
pub enum CommandState {
    Queued,
    Delivered { at: DateTime<Utc> },
    Done { return_code: i32 },
    Failed,
    Expired,
    Superseded { by: u64 },
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
            Event::DeviceCommandSuperseded(e) => {
                self.set(e.command_id, CommandState::Superseded { by: e.by });
            }
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

/// The command to queue again for command `id`: only one that failed or expired may be
/// retried (a done one is done; a waiting one is still on its way).
pub fn decide_retry(queue: &CommandQueue, id: u64) -> Result<DeviceCommand, Rejection> {
    let command = queue
        .commands
        .get(&id)
        .ok_or_else(|| Rejection::Unknown(format!("there is no command {id} for this device")))?;
    match command.state {
        CommandState::Failed | CommandState::Expired => Ok(command.command.clone()),
        ref state => Err(Rejection::Conflict(format!(
            "command {id} cannot be retried: it is {state:?}"
        ))),
    }
}
