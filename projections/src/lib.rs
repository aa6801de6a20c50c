//! Projections: pure folds of the event stream into what people read (daily and monthly
//! reports, raw records, device rosters), and the runners that keep them in sled with
//! their checkpoint and answer queries over NATS request-reply.
//!
//! - [`judge`]: the rule engine, one person's day as a pure function of its facts.
//! - [`book`]: a tenant's facts folded from the stream, and the days they make.
//! - [`raw`]: raw records, every punch once with how many times it was received.
//! - [`render`]: reports as tables, CSV and JSON lines.
//! - [`calendar`]: national calendars shipped as data (China 2024-2026).
//! - [`geo`], [`time`]: geofences; local days and instants.
//!
//! Non-goals: appending events (writers do, through `ledger`), reading the clock inside a
//! fold (it is passed in), or any storage but sled.

pub mod asof;
pub mod book;
pub mod calendar;
pub mod fold;
pub mod geo;
pub mod judge;
pub mod query;
pub mod raw;
pub mod render;
pub mod store;
pub mod table;
pub mod time;
pub mod views;
pub mod worker;
