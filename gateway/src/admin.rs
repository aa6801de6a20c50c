//! How the gateway reads a device's binding: the SN's claim under the system tenant
//! (who may upload, whose commands it polls). Deciding bindings (bind, rename, unbind)
//! is the write side's, `commands::devices`.

use ledger::{Expected, Ledger, LedgerError};
use schemas::ids::{DeviceSn, TenantId};
use schemas::{Aggregate, AggregateKind, Event};

use crate::ingest::Binding;

/// The binding an SN's claim stands for, if it is claimed.
pub fn binding_of(claim: Option<&Event>) -> Option<Binding> {
    match claim {
        Some(Event::DeviceClaimed(c)) => Some(Binding {
            tenant: c.tenant.clone(),
            sn: c.sn.clone(),
            zone: c.zone.clone(),
            records_from: c.records_from,
            claim_sequence: 0,
        }),
        _ => None,
    }
}

fn claim_aggregate(sn: &DeviceSn) -> Aggregate {
    Aggregate::new(AggregateKind::Device, sn.as_str())
}

/// The SN's current claim and the sequence to expect when changing it.
async fn current_claim(
    ledger: &Ledger,
    sn: &DeviceSn,
) -> Result<(Option<Event>, Expected), LedgerError> {
    let last = ledger
        .last_event(&TenantId::system(), &claim_aggregate(sn))
        .await?;
    Ok(match last {
        Some(r) => (Some(r.envelope.event), Expected::LastSequence(r.sequence)),
        None => (None, Expected::Empty),
    })
}

/// Whose command queue a device polls: the tenant that holds it, or the tenant that
/// released it last (so an unbound device still receives its `CLEAR DATA`).
pub fn command_tenant(claim: Option<&Event>) -> Option<TenantId> {
    match claim {
        Some(Event::DeviceClaimed(c)) => Some(c.tenant.clone()),
        Some(Event::DeviceReleased(r)) => Some(r.tenant.clone()),
        _ => None,
    }
}

/// The tenant whose commands `sn` polls, as the ledger has it now.
pub async fn lookup_command_tenant(
    ledger: &Ledger,
    sn: &DeviceSn,
) -> Result<Option<TenantId>, LedgerError> {
    let (claim, _) = current_claim(ledger, sn).await?;
    Ok(command_tenant(claim.as_ref()))
}

/// The binding of `sn` as the ledger has it now.
pub async fn lookup(ledger: &Ledger, sn: &DeviceSn) -> Result<Option<Binding>, LedgerError> {
    let (claim, expected) = current_claim(ledger, sn).await?;
    Ok(binding_of(claim.as_ref()).map(|binding| Binding {
        claim_sequence: match expected {
            Expected::LastSequence(sequence) | Expected::LastOfKind(_, sequence) => sequence,
            Expected::Any | Expected::Empty => 0,
        },
        ..binding
    }))
}
