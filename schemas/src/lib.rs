//! Ledgerclock's wire types: the event catalogue, the envelope, and (as they are added)
//! commands and queries, with the JSON Schemas generated from them.
//!
//! - [`events`]: every fact, grouped by organisation, devices, punches, rules, corrections.
//! - [`envelope`]: identity, tenant, clocks, actor, causation; MessagePack by field name
//!   on the wire, JSON for people and files.
//! - [`ids`]: identifiers, including the deterministic [`ids::PunchId`].
//! - [`json_schema`]: the checked-in schema files.
//!
//! Non-goals: this crate knows nothing of NATS, sled, HTTP or time sources. It is a leaf:
//! serde types and pure functions only.

#[cfg(feature = "arbitrary")]
pub mod arb;
pub mod envelope;
mod error;
pub mod events;
pub mod ids;
pub mod json_schema;

pub use envelope::{Actor, Envelope, SCHEMA_VERSION};
pub use error::SchemaError;
pub use events::{Aggregate, AggregateKind, Event};
