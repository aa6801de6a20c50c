//! Projections: pure folds of the event stream into what people read (daily and monthly
//! reports, raw records, device rosters), and the runners that keep them in sled with
//! their checkpoint and answer queries over NATS request-reply.
//!
//! - [`raw`]: raw records, every punch once with how many times it was received.
//!
//! Non-goals: appending events (writers do, through `ledger`), reading the clock inside a
//! fold (it is passed in), or any storage but sled.

pub mod raw;
