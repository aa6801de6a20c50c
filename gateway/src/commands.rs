//! Delivering a device's command queue (folded from its `devcmd` events by
//! `commands::devices::queue`; the write side queues and retries there). Pure; the HTTP
//! shell asks `poll` or `results` what to append, appends, then answers the device.
//! Because the queue is only events, any gateway instance serves any device.
//!
//! A poll hands over what firmware can take in one reply ([`DeliveryLimits`]), the rest
//! on later polls; commands made moot by a later one of the same purpose before the
//! device polled are superseded, not sent (a person added, removed and added again is
//! one `DATA UPDATE`); a command after which the device restarts goes last, alone
//! after everything else has gone.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use schemas::Event;
use schemas::events::{
    DeviceCommand, DeviceCommandAcknowledged, DeviceCommandDelivered, DeviceCommandExpired,
    DeviceCommandFailed, DeviceCommandSuperseded,
};
use schemas::ids::DeviceSn;

pub use ::commands::devices::queue::{CommandQueue, CommandState, QueuedCommand};

use crate::protocol::Dialect;
use crate::protocol::commands::{CommandResult, ends_session, render};

/// A delivered command with no result after this long is delivered again (the device
/// may have lost the reply).
pub const REDELIVER_AFTER: Duration = Duration::minutes(10);

/// How much one `getrequest` reply may carry. PUSH 3.2.0 allows 200 commands or
/// 40 KB; real servers send far fewer, and firmware with little memory drops what it
/// cannot hold. The rest waits for the next poll, seconds later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryLimits {
    pub max_commands: usize,
    pub max_bytes: usize,
}

impl DeliveryLimits {
    pub fn for_dialect(dialect: Dialect) -> Self {
        match dialect {
            Dialect::Attendance => Self {
                max_commands: 20,
                max_bytes: 16 * 1024,
            },
            // Access controllers take few per reply (ZKTeco's own server sends one to
            // its controllers).
            Dialect::Access => Self {
                max_commands: 5,
                max_bytes: 16 * 1024,
            },
        }
    }
}

/// Commands with the same purpose: only the last of them matters.
fn purpose(command: &DeviceCommand) -> Option<String> {
    match command {
        DeviceCommand::UpdateUser { badge_number, .. }
        | DeviceCommand::DeleteUser { badge_number } => Some(format!("user {badge_number}")),
        DeviceCommand::SetTimeZone { .. } => Some("time zone".into()),
        DeviceCommand::Info => Some("info".into()),
        DeviceCommand::Check => Some("check".into()),
        DeviceCommand::QueryUsers { badge_number } => Some(format!(
            "query users {}",
            badge_number.as_ref().map_or("*", |b| b.as_str())
        )),
        DeviceCommand::QueryAttendance { .. }
        | DeviceCommand::ClearData
        | DeviceCommand::Reboot => None,
    }
}

/// What a `getrequest` poll does at `now`: the commands to hand over (in id order,
/// within `limits`, a restart last) and the events that record it.
pub fn poll(
    queue: &CommandQueue,
    sn: &DeviceSn,
    now: DateTime<Utc>,
    dialect: Dialect,
    limits: DeliveryLimits,
) -> (Vec<(u64, DeviceCommand)>, Vec<Event>) {
    let mut events = Vec::new();
    let mut due: Vec<&QueuedCommand> = Vec::new();
    for command in queue.commands.values() {
        let is_due = match command.state {
            CommandState::Queued => true,
            CommandState::Delivered { at } => now - at >= REDELIVER_AFTER,
            CommandState::Done { .. }
            | CommandState::Failed
            | CommandState::Expired
            | CommandState::Superseded { .. } => false,
        };
        if !is_due {
            continue;
        }
        if command.expires_at.is_some_and(|at| at <= now) {
            events.push(Event::DeviceCommandExpired(DeviceCommandExpired {
                sn: sn.clone(),
                command_id: command.id,
            }));
            continue;
        }
        due.push(command);
    }
    // The last command of each purpose stands for the earlier ones.
    let mut last_of: BTreeMap<String, u64> = BTreeMap::new();
    for command in &due {
        if let Some(purpose) = purpose(&command.command) {
            last_of.insert(purpose, command.id);
        }
    }
    due.retain(|command| match purpose(&command.command) {
        Some(purpose) if last_of[&purpose] != command.id => {
            events.push(Event::DeviceCommandSuperseded(DeviceCommandSuperseded {
                sn: sn.clone(),
                command_id: command.id,
                by: last_of[&purpose],
            }));
            false
        }
        _ => true,
    });
    // A command that restarts the device goes after everything else, alone at the end.
    let (restarts, due): (Vec<&QueuedCommand>, Vec<&QueuedCommand>) =
        due.into_iter().partition(|c| ends_session(&c.command));
    let mut deliver = Vec::new();
    let mut bytes = 0usize;
    let fits = |deliver: &Vec<(u64, DeviceCommand)>, bytes: usize, command: &QueuedCommand| {
        let line = format!("C:{}:{}\n", command.id, render(&command.command, dialect)).len();
        let fits = deliver.len() < limits.max_commands
            && (deliver.is_empty() || bytes + line <= limits.max_bytes);
        fits.then_some(line)
    };
    let mut all_out = true;
    for command in &due {
        let Some(line) = fits(&deliver, bytes, command) else {
            all_out = false;
            break;
        };
        bytes += line;
        deliver.push((command.id, command.command.clone()));
    }
    if all_out
        && let Some(restart) = restarts.first()
        && fits(&deliver, bytes, restart).is_some()
    {
        deliver.push((restart.id, restart.command.clone()));
    }
    for (id, _) in &deliver {
        events.push(Event::DeviceCommandDelivered(DeviceCommandDelivered {
            sn: sn.clone(),
            command_id: *id,
        }));
    }
    (deliver, events)
}

/// The command that tells a device its zone's new UTC offset, if it was told another
/// one and no such command is already on its way.
pub fn time_zone_update(
    queue: &CommandQueue,
    told_minutes: Option<i32>,
    now_minutes: i32,
) -> Option<DeviceCommand> {
    let told = told_minutes?;
    if told == now_minutes {
        return None;
    }
    let wanted = DeviceCommand::SetTimeZone {
        utc_offset_minutes: now_minutes,
    };
    let on_its_way = queue.commands.values().any(|c| {
        c.command == wanted
            && matches!(
                c.state,
                CommandState::Queued | CommandState::Delivered { .. }
            )
    });
    (!on_its_way).then_some(wanted)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ::commands::devices::queue::decide_retry;
    use schemas::events::DeviceCommandQueued;
    use schemas::ids::BadgeNumber;

    fn sn() -> DeviceSn {
        DeviceSn::from("CQZ1")
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        "2026-11-21T08:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
    }

    fn limits() -> DeliveryLimits {
        DeliveryLimits::for_dialect(Dialect::Attendance)
    }

    fn queued(id: u64, expires_at: Option<DateTime<Utc>>) -> Event {
        queued_command(
            id,
            DeviceCommand::QueryUsers {
                badge_number: Some(BadgeNumber::from(id.to_string().as_str())),
            },
            expires_at,
        )
    }

    fn queued_command(id: u64, command: DeviceCommand, expires_at: Option<DateTime<Utc>>) -> Event {
        Event::DeviceCommandQueued(DeviceCommandQueued {
            sn: sn(),
            command_id: id,
            command,
            expires_at,
            retry_of: None,
        })
    }

    fn user(badge: &str) -> DeviceCommand {
        DeviceCommand::UpdateUser {
            badge_number: BadgeNumber::from(badge),
            name: format!("Person {badge}"),
            privilege: schemas::events::DevicePrivilege::User,
            card: None,
            disabled: false,
        }
    }

    #[test]
    fn a_reply_carries_at_most_its_limit_and_the_rest_follows() {
        // Regression: a 262-person roster went out in one 16.8 KB reply, and one poll
        // carried 652 commands.
        let mut q = CommandQueue::default();
        for id in 1..=652 {
            q.apply(&queued_command(id, user(&id.to_string()), None), t(0));
        }
        let mut polls = 0;
        let mut delivered = Vec::new();
        loop {
            let (deliver, events) = poll(&q, &sn(), t(1), Dialect::Attendance, limits());
            if deliver.is_empty() {
                break;
            }
            let bytes: usize = deliver
                .iter()
                .map(|(id, c)| format!("C:{id}:{}\n", render(c, Dialect::Attendance)).len())
                .sum();
            assert!(
                deliver.len() <= 20 && bytes <= 16 * 1024,
                "{} commands, {bytes} bytes",
                deliver.len()
            );
            delivered.extend(deliver.iter().map(|(id, _)| *id));
            for e in &events {
                q.apply(e, t(1));
            }
            polls += 1;
        }
        assert_eq!(
            delivered,
            (1..=652).collect::<Vec<_>>(),
            "each once, in order"
        );
        assert_eq!(polls, 652_usize.div_ceil(20));
    }

    #[test]
    fn pending_changes_of_one_person_coalesce_into_the_last() {
        let mut q = CommandQueue::default();
        q.apply(&queued_command(1, user("7"), None), t(0));
        q.apply(
            &queued_command(
                2,
                DeviceCommand::DeleteUser {
                    badge_number: BadgeNumber::from("7"),
                },
                None,
            ),
            t(0),
        );
        q.apply(&queued_command(3, user("8"), None), t(0));
        q.apply(&queued_command(4, user("7"), None), t(0));
        let (deliver, events) = poll(&q, &sn(), t(1), Dialect::Attendance, limits());
        assert_eq!(deliver.iter().map(|d| d.0).collect::<Vec<_>>(), [3, 4]);
        let superseded: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::DeviceCommandSuperseded(s) => Some((s.command_id, s.by)),
                _ => None,
            })
            .collect();
        assert_eq!(superseded, [(1, 4), (2, 4)]);
        for e in &events {
            q.apply(e, t(1));
        }
        assert!(decide_retry(&q, 1).is_err(), "a superseded command is moot");
    }

    #[test]
    fn a_reboot_goes_last_once_everything_else_has_gone() {
        let mut q = CommandQueue::default();
        q.apply(&queued_command(1, DeviceCommand::Reboot, None), t(0));
        for id in 2..=31 {
            q.apply(&queued_command(id, user(&id.to_string()), None), t(0));
        }
        let (first, events) = poll(&q, &sn(), t(1), Dialect::Attendance, limits());
        assert_eq!(first.len(), 20);
        assert!(first.iter().all(|(_, c)| *c != DeviceCommand::Reboot));
        for e in &events {
            q.apply(e, t(1));
        }
        let (second, _) = poll(&q, &sn(), t(1), Dialect::Attendance, limits());
        assert_eq!(second.len(), 11);
        assert_eq!(second.last().unwrap(), &(1, DeviceCommand::Reboot));
    }

    #[test]
    fn a_new_offset_is_told_once() {
        let mut q = CommandQueue::default();
        assert_eq!(time_zone_update(&q, Some(-300), -300), None);
        assert_eq!(
            time_zone_update(&q, None, -240),
            None,
            "never told: the handshake will"
        );
        let change = time_zone_update(&q, Some(-300), -240).unwrap();
        assert_eq!(
            change,
            DeviceCommand::SetTimeZone {
                utc_offset_minutes: -240
            }
        );
        q.apply(&queued_command(1, change, None), t(0));
        assert_eq!(
            time_zone_update(&q, Some(-300), -240),
            None,
            "already on its way"
        );
    }

    #[test]
    fn given_queued_commands_when_polled_then_delivered_once_until_redelivery_is_due() {
        let mut q = CommandQueue::default();
        q.apply(&queued(1, None), t(0));
        q.apply(&queued(2, None), t(0));
        assert_eq!(q.next_id(), 3);
        let (deliver, events) = poll(&q, &sn(), t(1), Dialect::Attendance, limits());
        assert_eq!(deliver.iter().map(|d| d.0).collect::<Vec<_>>(), [1, 2]);
        for e in &events {
            q.apply(e, t(1));
        }
        assert!(
            poll(&q, &sn(), t(2), Dialect::Attendance, limits())
                .0
                .is_empty(),
            "not handed over twice in a row"
        );
        assert_eq!(
            poll(&q, &sn(), t(11), Dialect::Attendance, limits())
                .0
                .len(),
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
        for e in poll(&q, &sn(), t(6), Dialect::Attendance, limits()).1 {
            q.apply(&e, t(6));
        }
        assert!(
            matches!(decide_retry(&q, 1), Ok(DeviceCommand::QueryUsers { .. })),
            "expired"
        );
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
        let (deliver, events) = poll(&q, &sn(), t(6), Dialect::Attendance, limits());
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
        assert!(
            poll(&q, &sn(), t(60), Dialect::Attendance, limits())
                .0
                .is_empty()
        );
    }
}
