//! Security-PUSH registration: an access device (`DeviceType=acc`) registers on every
//! connection (`POST /iclock/registry`) and is given a `RegistryCode`, which it folds
//! into the token of its later requests. The code is random, issued once per binding
//! and kept with it (`DeviceRegistered` on the device's `devreg` subject, naming the
//! claim it belongs to): any gateway instance answers the same code, and a device bound
//! again is issued a new one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ledger::{Expected, Ledger, LedgerError};
use schemas::events::DeviceRegistered;
use schemas::{Actor, Aggregate, AggregateKind, Envelope, Event};

use crate::ingest::Binding;

/// The registration to record, if the binding has none yet: `existing` is the device's
/// last registration, of this binding or an earlier one.
pub fn decide(
    existing: Option<&DeviceRegistered>,
    binding: &Binding,
    device_type: &str,
    options: &BTreeMap<String, String>,
    new_code: impl FnOnce() -> String,
) -> Option<DeviceRegistered> {
    if existing.is_some_and(|r| r.claim_sequence == binding.claim_sequence) {
        return None;
    }
    Some(DeviceRegistered {
        sn: binding.sn.clone(),
        device_type: device_type.to_owned(),
        registry_code: new_code(),
        claim_sequence: binding.claim_sequence,
        options: options.clone(),
    })
}

/// A fresh code: 128 random bits as 32 hex digits (the protocol allows 32 bytes).
pub fn new_code() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn aggregate(binding: &Binding) -> Aggregate {
    Aggregate::new(AggregateKind::DeviceRegistration, binding.sn.as_str())
}

/// The binding's registration, if the device has registered under it.
pub async fn current(
    ledger: &Ledger,
    binding: &Binding,
) -> Result<Option<DeviceRegistered>, LedgerError> {
    Ok(last(ledger, binding)
        .await?
        .0
        .filter(|r| r.claim_sequence == binding.claim_sequence))
}

async fn last(
    ledger: &Ledger,
    binding: &Binding,
) -> Result<(Option<DeviceRegistered>, Expected), LedgerError> {
    let last = ledger
        .last_event(&binding.tenant, &aggregate(binding))
        .await?;
    Ok(match last {
        Some(recorded) => {
            let sequence = recorded.sequence;
            match recorded.envelope.event {
                Event::DeviceRegistered(r) => (Some(r), Expected::LastSequence(sequence)),
                _ => (None, Expected::LastSequence(sequence)),
            }
        }
        None => (None, Expected::Empty),
    })
}

/// The binding's registration, recorded now if it has none. Two gateways registering
/// one device at once: the second finds the first's on conflict and answers with it.
pub async fn ensure(
    ledger: &Ledger,
    binding: &Binding,
    device_type: &str,
    options: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<DeviceRegistered, LedgerError> {
    for _ in 0..3 {
        let (existing, expected) = last(ledger, binding).await?;
        let Some(registered) = decide(existing.as_ref(), binding, device_type, options, new_code)
        else {
            return Ok(existing.expect("decide records when there is none"));
        };
        let envelope = Envelope::new(
            binding.tenant.clone(),
            Actor::Device {
                sn: binding.sn.clone(),
            },
            registered.clone(),
            now,
        );
        match ledger.append(&envelope, expected).await {
            Ok(_) => {
                tracing::info!(sn = %binding.sn, tenant = %binding.tenant, "device registered");
                return Ok(registered);
            }
            Err(LedgerError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(LedgerError::Unavailable(format!(
        "registration of {} kept conflicting",
        binding.sn
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use schemas::ids::{DeviceSn, TenantId, ZoneName};

    fn binding(claim_sequence: u64) -> Binding {
        Binding {
            tenant: TenantId::parse("acme").unwrap(),
            sn: DeviceSn::from("ACC1"),
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            claim_sequence,
        }
    }

    #[test]
    fn one_code_per_binding() {
        let options = BTreeMap::new();
        let first = decide(None, &binding(4), "acc", &options, || "c1".into()).unwrap();
        assert_eq!(
            (first.registry_code.as_str(), first.claim_sequence),
            ("c1", 4)
        );
        assert_eq!(
            decide(Some(&first), &binding(4), "acc", &options, || "c2".into()),
            None,
            "registering again keeps the code"
        );
        let rebound = decide(Some(&first), &binding(9), "acc", &options, || "c3".into()).unwrap();
        assert_eq!(rebound.registry_code, "c3", "bound again: a new code");
        assert_ne!(new_code(), new_code());
        assert_eq!(new_code().len(), 32);
    }
}
