//! Device administration: bind, rename, unbind. Each is a pure `decide` over the current
//! claim of the SN, then a thin `execute` that reads that claim and appends the decision
//! with optimistic concurrency, so two tenants racing for one SN cannot both win.

use chrono::{DateTime, NaiveDate, Utc};
use ledger::{Expected, Ledger, LedgerError};
use schemas::events::{
    DeviceBound, DeviceClaimed, DeviceCommand, DeviceReleased, DeviceRenamed, DeviceUnbound,
};
use schemas::ids::{DeviceSn, TenantId, ZoneName};
use schemas::{Actor, Aggregate, AggregateKind, Envelope, Event};

use crate::ingest::Binding;

/// Why an administrative command was refused. Nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("device {0} is bound to another tenant; it must be unbound there first")]
    BoundElsewhere(DeviceSn),
    #[error("device {0} is already bound to this tenant")]
    AlreadyBound(DeviceSn),
    #[error("device {0} is not bound to this tenant")]
    NotBound(DeviceSn),
    #[error("invalid serial number {0:?}: 1 to 64 letters, digits, '-' or '_'")]
    InvalidSn(String),
    #[error("a device name must not be empty")]
    EmptyName,
    #[error("person {0} does not exist")]
    UnknownPerson(schemas::ids::PersonId),
    #[error("department {0} does not exist")]
    UnknownDepartment(schemas::ids::DepartmentId),
    #[error("there is no command {0} for this device")]
    UnknownCommand(u64),
    #[error("command {id} cannot be retried: it is {state}")]
    NotRetryable { id: u64, state: String },
    #[error(
        "person {person} is not in the scope of device {sn}: set the device's scope to include them first"
    )]
    OutOfScope {
        person: schemas::ids::PersonId,
        sn: DeviceSn,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

#[derive(Debug, Clone)]
pub struct BindDevice {
    pub tenant: TenantId,
    pub sn: DeviceSn,
    pub name: String,
    pub model: Option<String>,
    pub zone: ZoneName,
    /// Accept records dated from this local date; `None`: from the binding day.
    pub records_from: Option<NaiveDate>,
}

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

pub fn valid_sn(sn: &str) -> Result<DeviceSn, Refusal> {
    let ok = !sn.is_empty()
        && sn.len() <= 64
        && sn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(DeviceSn::from(sn))
    } else {
        Err(Refusal::InvalidSn(sn.to_owned()))
    }
}

/// Bind: a claim under the system tenant, then the binding in the tenant.
pub fn decide_bind(
    claim: Option<&Event>,
    cmd: &BindDevice,
    today: NaiveDate,
) -> Result<(DeviceClaimed, DeviceBound), Refusal> {
    valid_sn(cmd.sn.as_str())?;
    if cmd.name.trim().is_empty() {
        return Err(Refusal::EmptyName);
    }
    if let Some(bound) = binding_of(claim) {
        return Err(if bound.tenant == cmd.tenant {
            Refusal::AlreadyBound(cmd.sn.clone())
        } else {
            Refusal::BoundElsewhere(cmd.sn.clone())
        });
    }
    let records_from = cmd.records_from.unwrap_or(today);
    Ok((
        DeviceClaimed {
            sn: cmd.sn.clone(),
            tenant: cmd.tenant.clone(),
            zone: cmd.zone.clone(),
            records_from,
        },
        DeviceBound {
            sn: cmd.sn.clone(),
            name: cmd.name.trim().to_owned(),
            model: cmd.model.clone(),
            zone: cmd.zone.clone(),
            records_from: Some(records_from),
        },
    ))
}

/// Unbind: release the claim, record the unbinding, and queue `CLEAR DATA` so the device
/// forgets the tenant's people and records. The tenant keeps its history.
pub fn decide_unbind(
    claim: Option<&Event>,
    tenant: &TenantId,
    sn: &DeviceSn,
) -> Result<(DeviceReleased, DeviceUnbound), Refusal> {
    match binding_of(claim) {
        Some(bound) if &bound.tenant == tenant => Ok((
            DeviceReleased {
                sn: sn.clone(),
                tenant: tenant.clone(),
            },
            DeviceUnbound {
                sn: sn.clone(),
                reason: None,
            },
        )),
        _ => Err(Refusal::NotBound(sn.clone())),
    }
}

pub fn decide_rename(
    claim: Option<&Event>,
    tenant: &TenantId,
    sn: &DeviceSn,
    name: &str,
) -> Result<DeviceRenamed, Refusal> {
    if name.trim().is_empty() {
        return Err(Refusal::EmptyName);
    }
    match binding_of(claim) {
        Some(bound) if &bound.tenant == tenant => Ok(DeviceRenamed {
            sn: sn.clone(),
            name: name.trim().to_owned(),
        }),
        _ => Err(Refusal::NotBound(sn.clone())),
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

pub async fn bind(
    ledger: &Ledger,
    cmd: &BindDevice,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(), AdminError> {
    let (claim, expected) = current_claim(ledger, &cmd.sn).await?;
    let today = now.with_timezone(&cmd.zone.tz()).date_naive();
    let (claimed, bound) = decide_bind(claim.as_ref(), cmd, today)?;
    let claim_event = Envelope::new(TenantId::system(), actor.clone(), claimed, now);
    // The claim first: if a rival claimed the SN since we read it, this is a Conflict and
    // nothing else is written.
    ledger.append(&claim_event, expected).await?;
    let bound_event = Envelope::new(cmd.tenant.clone(), actor, bound, now).caused_by(&claim_event);
    ledger.append(&bound_event, Expected::Any).await?;
    Ok(())
}

pub async fn unbind(
    ledger: &Ledger,
    tenant: &TenantId,
    sn: &DeviceSn,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(), AdminError> {
    let (claim, expected) = current_claim(ledger, sn).await?;
    let (released, unbound) = decide_unbind(claim.as_ref(), tenant, sn)?;
    let release = Envelope::new(TenantId::system(), actor.clone(), released, now);
    ledger.append(&release, expected).await?;
    let unbound = Envelope::new(tenant.clone(), actor.clone(), unbound, now).caused_by(&release);
    ledger.append(&unbound, Expected::Any).await?;
    // A released device may still poll for this tenant's commands (see
    // `command_tenant`), so it receives its wipe while its uploads are refused.
    crate::commands::queue(
        ledger,
        tenant,
        sn,
        DeviceCommand::ClearData,
        None,
        actor,
        now,
    )
    .await?;
    Ok(())
}

pub async fn rename(
    ledger: &Ledger,
    tenant: &TenantId,
    sn: &DeviceSn,
    name: &str,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(), AdminError> {
    let (claim, _) = current_claim(ledger, sn).await?;
    let renamed = decide_rename(claim.as_ref(), tenant, sn, name)?;
    ledger
        .append(
            &Envelope::new(tenant.clone(), actor, renamed, now),
            Expected::Any,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(tenant: &str) -> BindDevice {
        BindDevice {
            tenant: TenantId::parse(tenant).unwrap(),
            sn: DeviceSn::from("CQZ7224460246"),
            name: "Front door".into(),
            model: None,
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: None,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    #[test]
    fn given_no_claim_when_bind_then_claimed_and_bound_from_today() {
        let (claimed, bound) = decide_bind(None, &cmd("acme"), today()).unwrap();
        assert_eq!(claimed.tenant.as_str(), "acme");
        assert_eq!(claimed.records_from, today());
        assert_eq!(bound.records_from, Some(today()));
    }

    #[test]
    fn given_a_claim_by_another_tenant_when_bind_then_refused() {
        let (claimed, _) = decide_bind(None, &cmd("acme"), today()).unwrap();
        let claim = Event::DeviceClaimed(claimed);
        assert_eq!(
            decide_bind(Some(&claim), &cmd("globex"), today()),
            Err(Refusal::BoundElsewhere(DeviceSn::from("CQZ7224460246")))
        );
        assert_eq!(
            decide_bind(Some(&claim), &cmd("acme"), today()),
            Err(Refusal::AlreadyBound(DeviceSn::from("CQZ7224460246")))
        );
    }

    #[test]
    fn given_a_released_claim_when_bind_then_allowed() {
        let released = Event::DeviceReleased(DeviceReleased {
            sn: DeviceSn::from("CQZ7224460246"),
            tenant: TenantId::parse("acme").unwrap(),
        });
        assert!(decide_bind(Some(&released), &cmd("globex"), today()).is_ok());
    }

    #[test]
    fn unbinding_or_renaming_someone_elses_device_is_refused() {
        let (claimed, _) = decide_bind(None, &cmd("acme"), today()).unwrap();
        let claim = Event::DeviceClaimed(claimed);
        let globex = TenantId::parse("globex").unwrap();
        let sn = DeviceSn::from("CQZ7224460246");
        assert_eq!(
            decide_unbind(Some(&claim), &globex, &sn),
            Err(Refusal::NotBound(sn.clone()))
        );
        assert_eq!(
            decide_rename(Some(&claim), &globex, &sn, "x"),
            Err(Refusal::NotBound(sn.clone()))
        );
        assert_eq!(
            decide_rename(Some(&claim), &TenantId::parse("acme").unwrap(), &sn, " "),
            Err(Refusal::EmptyName)
        );
    }

    #[test]
    fn serial_numbers_are_checked() {
        assert!(valid_sn("CQZ7224460246").is_ok());
        for bad in ["", "a b", "a.b", &"x".repeat(65)] {
            assert!(valid_sn(bad).is_err(), "{bad:?}");
        }
    }
}
