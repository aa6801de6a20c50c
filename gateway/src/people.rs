//! People administration: hire, update, remove, with the badge-number rules devices
//! impose (numeric, at most 9 digits, unique among the tenant's current people). Pure
//! `decide_*` over a roster folded from the tenant's person events; a thin `execute`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use schemas::Event;
use schemas::events::{BadgeNumberAssigned, PersonHired, PersonLeft, PersonUpdated};
use schemas::ids::{BadgeNumber, DepartmentId, PersonId};

/// Badge numbers on devices: digits only, at most this many.
pub const MAX_BADGE_DIGITS: usize = 9;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonRefusal {
    #[error("badge number {0:?} must be 1 to 9 digits")]
    InvalidBadge(String),
    #[error("badge number {badge} already belongs to {holder}")]
    BadgeTaken { badge: String, holder: PersonId },
    #[error("person {0} already exists")]
    Exists(PersonId),
    #[error("person {0} does not exist")]
    Unknown(PersonId),
    #[error("person {0} has left")]
    Left(PersonId),
    #[error("a name must not be empty")]
    EmptyName,
    #[error("nothing to change")]
    NoChange,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub name: String,
    pub department: DepartmentId,
    pub badge: Option<BadgeNumber>,
    pub left_on: Option<NaiveDate>,
}

/// The tenant's people as their events say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roster {
    pub people: BTreeMap<PersonId, Person>,
}

impl Roster {
    /// Folds one event; events that are not about people change nothing.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::PersonHired(e) => {
                self.people.insert(
                    e.person_id.clone(),
                    Person {
                        name: e.name.clone(),
                        department: e.department_id.clone(),
                        badge: e.badge_number.clone(),
                        left_on: None,
                    },
                );
            }
            Event::PersonUpdated(e) => {
                if let Some(p) = self.people.get_mut(&e.person_id) {
                    if let Some(name) = &e.name {
                        p.name.clone_from(name);
                    }
                    if let Some(department) = &e.department_id {
                        p.department = department.clone();
                    }
                }
            }
            Event::BadgeNumberAssigned(e) => {
                if let Some(p) = self.people.get_mut(&e.person_id) {
                    p.badge = Some(e.badge_number.clone());
                }
            }
            Event::PersonLeft(e) => {
                if let Some(p) = self.people.get_mut(&e.person_id) {
                    p.left_on = Some(e.left_on);
                }
            }
            _ => {}
        }
    }

    /// Who holds `badge` among current people.
    pub fn badge_holder(&self, badge: &str) -> Option<&PersonId> {
        self.people
            .iter()
            .find(|(_, p)| {
                p.left_on.is_none() && p.badge.as_ref().is_some_and(|b| b.as_str() == badge)
            })
            .map(|(id, _)| id)
    }

    fn check_badge(
        &self,
        badge: &str,
        for_person: &PersonId,
    ) -> Result<BadgeNumber, PersonRefusal> {
        if badge.is_empty()
            || badge.len() > MAX_BADGE_DIGITS
            || !badge.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(PersonRefusal::InvalidBadge(badge.to_owned()));
        }
        match self.badge_holder(badge) {
            Some(holder) if holder != for_person => Err(PersonRefusal::BadgeTaken {
                badge: badge.to_owned(),
                holder: holder.clone(),
            }),
            _ => Ok(BadgeNumber::from(badge)),
        }
    }

    fn current(&self, id: &PersonId) -> Result<&Person, PersonRefusal> {
        let person = self
            .people
            .get(id)
            .ok_or_else(|| PersonRefusal::Unknown(id.clone()))?;
        if person.left_on.is_some() {
            return Err(PersonRefusal::Left(id.clone()));
        }
        Ok(person)
    }
}

#[derive(Debug, Clone)]
pub struct Hire {
    pub person_id: PersonId,
    pub name: String,
    pub department: DepartmentId,
    pub badge: Option<String>,
    pub hired_on: NaiveDate,
}

pub fn decide_hire(roster: &Roster, cmd: &Hire) -> Result<PersonHired, PersonRefusal> {
    if roster.people.contains_key(&cmd.person_id) {
        return Err(PersonRefusal::Exists(cmd.person_id.clone()));
    }
    if cmd.name.trim().is_empty() {
        return Err(PersonRefusal::EmptyName);
    }
    let badge_number = cmd
        .badge
        .as_deref()
        .map(|b| roster.check_badge(b, &cmd.person_id))
        .transpose()?;
    Ok(PersonHired {
        person_id: cmd.person_id.clone(),
        name: cmd.name.trim().to_owned(),
        department_id: cmd.department.clone(),
        hired_on: cmd.hired_on,
        badge_number,
        title: None,
    })
}

#[derive(Debug, Clone, Default)]
pub struct Update {
    pub name: Option<String>,
    pub department: Option<DepartmentId>,
    pub badge: Option<String>,
}

pub fn decide_update(
    roster: &Roster,
    id: &PersonId,
    cmd: &Update,
) -> Result<Vec<Event>, PersonRefusal> {
    let person = roster.current(id)?;
    if cmd.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(PersonRefusal::EmptyName);
    }
    let mut events = Vec::new();
    let name = cmd
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| *n != person.name)
        .map(str::to_owned);
    let department_id = cmd.department.clone().filter(|d| *d != person.department);
    if name.is_some() || department_id.is_some() {
        events.push(Event::PersonUpdated(PersonUpdated {
            person_id: id.clone(),
            name,
            department_id,
            title: None,
        }));
    }
    if let Some(badge) = &cmd.badge {
        let badge = roster.check_badge(badge, id)?;
        if person.badge.as_ref() != Some(&badge) {
            events.push(Event::BadgeNumberAssigned(BadgeNumberAssigned {
                person_id: id.clone(),
                badge_number: badge,
                previous: person.badge.clone(),
            }));
        }
    }
    if events.is_empty() {
        return Err(PersonRefusal::NoChange);
    }
    Ok(events)
}

pub fn decide_remove(
    roster: &Roster,
    id: &PersonId,
    left_on: NaiveDate,
    reason: Option<String>,
) -> Result<PersonLeft, PersonRefusal> {
    roster.current(id)?;
    Ok(PersonLeft {
        person_id: id.clone(),
        left_on,
        reason,
    })
}

/// The tenant's roster from its person events.
pub async fn load(
    ledger: &ledger::Ledger,
    tenant: &schemas::ids::TenantId,
) -> Result<Roster, ledger::LedgerError> {
    use futures::StreamExt;
    let filter = ledger
        .partitions()
        .kind_filter(tenant, schemas::AggregateKind::Person);
    let mut events = ledger.read(tenant, ledger::ReadFrom::only(filter)).await?;
    let mut roster = Roster::default();
    while let Some(recorded) = events.next().await {
        roster.apply(&recorded?.envelope.event);
    }
    Ok(roster)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    fn hire(id: &str, badge: Option<&str>) -> Hire {
        Hire {
            person_id: PersonId::from(id),
            name: "Li Wei".into(),
            department: DepartmentId::from("eng"),
            badge: badge.map(str::to_owned),
            hired_on: day(),
        }
    }

    fn given(events: &[Event]) -> Roster {
        let mut roster = Roster::default();
        events.iter().for_each(|e| roster.apply(e));
        roster
    }

    #[test]
    fn badge_numbers_are_numeric_and_at_most_nine_digits() {
        let roster = Roster::default();
        assert!(decide_hire(&roster, &hire("p1", Some("123456789"))).is_ok());
        for bad in ["1234567890", "12a", "", " 1", "-1"] {
            assert_eq!(
                decide_hire(&roster, &hire("p1", Some(bad))),
                Err(PersonRefusal::InvalidBadge(bad.into()))
            );
        }
    }

    #[test]
    fn given_a_current_holder_when_hiring_with_the_same_badge_then_refused() {
        let first = decide_hire(&Roster::default(), &hire("p1", Some("1001"))).unwrap();
        let roster = given(&[Event::PersonHired(first)]);
        assert_eq!(
            decide_hire(&roster, &hire("p2", Some("1001"))),
            Err(PersonRefusal::BadgeTaken {
                badge: "1001".into(),
                holder: PersonId::from("p1")
            })
        );
        assert_eq!(
            decide_hire(&roster, &hire("p1", None)),
            Err(PersonRefusal::Exists(PersonId::from("p1")))
        );
    }

    #[test]
    fn given_the_holder_left_when_hiring_with_their_badge_then_allowed() {
        let first = decide_hire(&Roster::default(), &hire("p1", Some("1001"))).unwrap();
        let left = decide_remove(
            &given(&[Event::PersonHired(first.clone())]),
            &PersonId::from("p1"),
            day(),
            None,
        )
        .unwrap();
        let roster = given(&[Event::PersonHired(first), Event::PersonLeft(left)]);
        assert!(decide_hire(&roster, &hire("p2", Some("1001"))).is_ok());
        assert_eq!(
            decide_remove(&roster, &PersonId::from("p1"), day(), None),
            Err(PersonRefusal::Left(PersonId::from("p1")))
        );
    }

    #[test]
    fn updates_record_only_what_changed() {
        let first = decide_hire(&Roster::default(), &hire("p1", Some("1001"))).unwrap();
        let roster = given(&[Event::PersonHired(first)]);
        let id = PersonId::from("p1");
        let same = Update {
            name: Some("Li Wei".into()),
            ..Update::default()
        };
        assert_eq!(
            decide_update(&roster, &id, &same),
            Err(PersonRefusal::NoChange)
        );
        let badge = Update {
            badge: Some("2002".into()),
            ..Update::default()
        };
        let events = decide_update(&roster, &id, &badge).unwrap();
        assert!(
            matches!(&events[..], [Event::BadgeNumberAssigned(b)] if b.previous.as_ref().map(BadgeNumber::as_str) == Some("1001"))
        );
        assert_eq!(
            decide_update(&roster, &PersonId::from("nobody"), &badge),
            Err(PersonRefusal::Unknown(PersonId::from("nobody")))
        );
    }
}
