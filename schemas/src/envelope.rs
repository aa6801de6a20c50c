//! The envelope every event travels in, and its two encodings.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::SchemaError;
use crate::events::Event;
use crate::ids::{CommandId, DeviceSn, EventId, PersonId, TenantId, UserId};

/// The envelope version this build writes. Readers accept this and every earlier one.
pub const SCHEMA_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Envelope {
    /// Unique per fact; the ledger's de-duplication key (`Nats-Msg-Id`).
    pub event_id: EventId,
    pub tenant: TenantId,
    /// When the ledger's writer accepted the fact.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::instant))]
    pub recorded_at: DateTime<Utc>,
    /// When it happened in the world (a punch's instant, an approval's decision).
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::instant))]
    pub occurred_at: DateTime<Utc>,
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::schema_version))]
    pub schema_version: u16,
    pub actor: Actor,
    /// The event that caused this one (a command's result, a queued command's delivery).
    #[serde(default)]
    pub causation_id: Option<EventId>,
    /// Shared by every event of one request or workflow.
    #[serde(default)]
    pub correlation_id: Option<EventId>,
    /// The command that decided this event, if a command did (not a device's upload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<CommandId>,
    pub event: Event,
}

/// Who made a fact happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Actor {
    /// A Ledgerclock component acting on its own (gateway, scheduler, importer).
    System {
        component: String,
    },
    Device {
        sn: DeviceSn,
    },
    /// An administrator or approver, by login.
    User {
        user_id: UserId,
    },
    /// An employee acting for themselves (mobile punch, make-up request).
    Person {
        person_id: PersonId,
    },
}

impl Envelope {
    /// A new fact, recorded at `now` (the clock is the caller's), with a fresh time-ordered id.
    pub fn new(
        tenant: TenantId,
        actor: Actor,
        event: impl Into<Event>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            event_id: EventId::new_v7(),
            tenant,
            recorded_at: now,
            occurred_at: now,
            schema_version: SCHEMA_VERSION,
            actor,
            causation_id: None,
            correlation_id: None,
            command_id: None,
            event: event.into(),
        }
    }

    /// Use `id` instead of a fresh one: for facts that may be reported more than once.
    pub fn with_id(mut self, id: EventId) -> Self {
        self.event_id = id;
        self
    }

    /// The `index`-th event `command` decided: its id is derived from the tenant, the
    /// command id and the index, so a retried command's events are the same events.
    pub fn of_command(mut self, command: &CommandId, index: usize) -> Self {
        self.event_id = EventId::derived(&[
            self.tenant.as_str(),
            "command",
            command.as_str(),
            &index.to_string(),
        ]);
        self.command_id = Some(command.clone());
        self
    }

    pub fn occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = at;
        self
    }

    /// Marks this event as caused by `cause`, inheriting its correlation.
    pub fn caused_by(mut self, cause: &Envelope) -> Self {
        self.causation_id = Some(cause.event_id);
        self.correlation_id = Some(cause.correlation_id.unwrap_or(cause.event_id));
        self
    }

    /// MessagePack with field names (never positional), the wire form.
    pub fn to_msgpack(&self) -> Result<Vec<u8>, SchemaError> {
        rmp_serde::to_vec_named(self).map_err(|e| SchemaError::Encode(e.to_string()))
    }

    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, SchemaError> {
        let envelope: Self =
            rmp_serde::from_slice(bytes).map_err(|e| SchemaError::Decode(e.to_string()))?;
        envelope.check_version()
    }

    /// JSON, the form for people and files (one envelope a line in `.jsonl`).
    pub fn to_json(&self) -> Result<String, SchemaError> {
        serde_json::to_string(self).map_err(|e| SchemaError::Encode(e.to_string()))
    }

    pub fn from_json(text: &str) -> Result<Self, SchemaError> {
        let envelope: Self =
            serde_json::from_str(text).map_err(|e| SchemaError::Decode(e.to_string()))?;
        envelope.check_version()
    }

    fn check_version(self) -> Result<Self, SchemaError> {
        if self.schema_version == 0 || self.schema_version > SCHEMA_VERSION {
            return Err(SchemaError::UnsupportedVersion(self.schema_version));
        }
        Ok(self)
    }
}
