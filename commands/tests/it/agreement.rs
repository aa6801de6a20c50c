//! The command side's fold of people (`Organisation`, also what device rosters use)
//! and the projections' `Book` say the same of every person, for random histories of
//! hires, updates, transfers, departures and rejoins decided by the commands.

use chrono::{Duration, NaiveDate};
use commands::Command;
use commands::organisation::{Organisation, PersonCommand};
use projections::book::Book;
use proptest::prelude::*;
use schemas::events::DepartmentDefined;
use schemas::ids::{DepartmentId, PersonId};
use schemas::{Actor, Envelope, Event};

use crate::{now, tenant};

#[derive(Debug, Clone)]
enum Act {
    Hire {
        person: u8,
        badge: u8,
        day: u8,
    },
    Rename {
        person: u8,
    },
    Badge {
        person: u8,
        badge: u8,
    },
    Transfer {
        person: u8,
        to: bool,
        day: u8,
    },
    Leave {
        person: u8,
        day: u8,
    },
    Rejoin {
        person: u8,
        new: u8,
        day: u8,
        badge: Option<u8>,
    },
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => (0u8..6, 0u8..4, 0u8..20).prop_map(|(person, badge, day)| Act::Hire { person, badge, day }),
        1 => (0u8..6).prop_map(|person| Act::Rename { person }),
        1 => (0u8..6, 0u8..4).prop_map(|(person, badge)| Act::Badge { person, badge }),
        1 => (0u8..6, any::<bool>(), 0u8..40).prop_map(|(person, to, day)| Act::Transfer { person, to, day }),
        1 => (0u8..6, 0u8..40).prop_map(|(person, day)| Act::Leave { person, day }),
        2 => (0u8..6, 6u8..12, 0u8..60, proptest::option::of(0u8..4))
            .prop_map(|(person, new, day, badge)| Act::Rejoin { person, new, day, badge }),
    ]
}

fn date(d: u8) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + Duration::days(i64::from(d))
}

fn id(p: u8) -> PersonId {
    PersonId::from(format!("p{p}").as_str())
}

fn command(a: &Act) -> PersonCommand {
    match a {
        Act::Hire { person, badge, day } => PersonCommand::Hire {
            person_id: id(*person),
            name: format!("n{person}"),
            department_id: "prod".into(),
            badge: Some(format!("{}", 100 + badge)),
            hired_on: date(*day),
        },
        Act::Rename { person } => PersonCommand::Update {
            person_id: id(*person),
            name: Some(format!("renamed {person}")),
            badge: None,
        },
        Act::Badge { person, badge } => PersonCommand::Update {
            person_id: id(*person),
            name: None,
            badge: Some(format!("{}", 100 + badge)),
        },
        Act::Transfer { person, to, day } => PersonCommand::Transfer {
            person_id: id(*person),
            department_id: if *to { "office" } else { "prod" }.into(),
            effective_from: date(*day),
        },
        Act::Leave { person, day } => PersonCommand::Leave {
            person_id: id(*person),
            left_on: date(*day),
            reason: None,
        },
        Act::Rejoin {
            person,
            new,
            day,
            badge,
        } => PersonCommand::Rejoin {
            person_id: id(*new),
            previous_person_id: id(*person),
            rejoined_on: date(*day),
            name: None,
            department_id: None,
            // Their old number, or a new one nobody else is given.
            badge: badge.map(|b| format!("{}", 200 + b)),
        },
    }
}

proptest! {
    #[test]
    fn organisation_and_book_agree_on_every_person(acts in proptest::collection::vec(act(), 1..40)) {
        let actor = Actor::System { component: "test".into() };
        let mut envelopes: Vec<Envelope> = ["prod", "office"]
            .into_iter()
            .map(|d| {
                Envelope::new(
                    tenant(),
                    actor.clone(),
                    DepartmentDefined { department_id: DepartmentId::from(d), name: d.into(), parent: None },
                    now(),
                )
            })
            .collect();
        let mut org = Organisation::default();
        for e in &envelopes {
            org.apply_event(&e.event);
        }
        for a in &acts {
            // Only what the commands accept is stored, as `execute` would store it.
            let Ok(decided) = command(a).decide(&org, now()) else { continue };
            for d in decided {
                org.apply_event(&d.event);
                envelopes.push(
                    Envelope::new(tenant(), actor.clone(), d.event, now())
                        .occurred_at(d.occurred_at.unwrap_or(now())),
                );
            }
        }
        let mut book = Book::default();
        for (i, e) in envelopes.iter().enumerate() {
            book.apply_facts(i as u64 + 1, e);
        }
        for (pid, p) in &org.people {
            let info = book.person(pid).expect("the book knows every person");
            prop_assert_eq!(&info.name, &p.name, "{}", pid);
            prop_assert_eq!(&info.department_id, &p.department, "{}", pid);
            prop_assert_eq!(&info.badge_number, &p.badge, "{}", pid);
            prop_assert_eq!(info.hired_on, p.hired_on, "{}", pid);
            prop_assert_eq!(info.left_on, p.left_on, "{}", pid);
        }
        let people: Vec<&PersonId> = envelopes.iter().filter_map(|e| match &e.event {
            Event::PersonHired(h) => Some(&h.person_id),
            _ => None,
        }).collect();
        prop_assert_eq!(people.len(), org.people.len());
    }
}
