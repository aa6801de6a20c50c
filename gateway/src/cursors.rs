//! Upload cursors: the `Stamp=` of a device's last stored upload per table, recorded
//! after the upload is stored and echoed in the handshake (`ATTLOGStamp=..`), so a
//! device that reconnects sends what is new instead of its whole history. A cursor
//! belongs to the binding it was recorded under: a device bound again starts afresh.

use chrono::{DateTime, Utc};
use ledger::{Ledger, LedgerError};
use schemas::events::DeviceStampRecorded;
use schemas::ids::EventId;
use schemas::{Actor, Aggregate, AggregateKind, Envelope, Event};

use crate::ingest::Binding;
use crate::protocol::options::{Stamps, stamped_tables};

/// Whether a device's `Stamp=` is worth keeping: real stamps are numbers (or dates);
/// `None`, empty or absurdly long values are not.
pub fn usable(stamp: &str) -> bool {
    let stamp = stamp.trim();
    !stamp.is_empty() && stamp.len() <= 32 && !stamp.eq_ignore_ascii_case("none")
}

/// The event recording `stamp` for `table`; its id derives from what it says, so
/// several gateways (or a re-sent upload) record it once.
pub fn stamp_event(binding: &Binding, table: &str, stamp: &str, now: DateTime<Utc>) -> Envelope {
    let event = DeviceStampRecorded {
        sn: binding.sn.clone(),
        table: table.to_owned(),
        stamp: stamp.trim().to_owned(),
        claim_sequence: binding.claim_sequence,
    };
    let id = EventId::derived(&[
        "stamp",
        binding.tenant.as_str(),
        binding.sn.as_str(),
        table,
        stamp.trim(),
        &binding.claim_sequence.to_string(),
    ]);
    Envelope::new(
        binding.tenant.clone(),
        Actor::Device {
            sn: binding.sn.clone(),
        },
        event,
        now,
    )
    .with_id(id)
}

/// The binding's cursors for the tables the handshake carries.
pub async fn load(ledger: &Ledger, binding: &Binding) -> Result<Stamps, LedgerError> {
    let mut stamps = Stamps::new();
    for table in stamped_tables() {
        let aggregate = Aggregate::new(
            AggregateKind::DeviceCursor,
            &DeviceStampRecorded::cursor_id(&binding.sn, table),
        );
        if let Some(recorded) = ledger.last_event(&binding.tenant, &aggregate).await?
            && let Event::DeviceStampRecorded(e) = recorded.envelope.event
            && e.claim_sequence == binding.claim_sequence
        {
            stamps.insert(table.to_owned(), e.stamp);
        }
    }
    Ok(stamps)
}
