//! The organisation: departments and people, and the badge numbers devices know them by.

use chrono::NaiveDate;

use crate::ids::{BadgeNumber, DepartmentId, PersonId};

domain_types! {
    /// A department or sub-company was created.
    pub struct DepartmentDefined {
        pub department_id: DepartmentId,
        pub name: String,
        /// `None` for a top-level department.
        #[serde(default)]
        pub parent: Option<DepartmentId>,
    }

    pub struct DepartmentRenamed {
        pub department_id: DepartmentId,
        pub name: String,
    }

    /// A department moved under another parent (`None`: to the top).
    pub struct DepartmentMoved {
        pub department_id: DepartmentId,
        #[serde(default)]
        pub parent: Option<DepartmentId>,
    }

    pub struct PersonHired {
        pub person_id: PersonId,
        pub name: String,
        pub department_id: DepartmentId,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub hired_on: NaiveDate,
        #[serde(default)]
        pub badge_number: Option<BadgeNumber>,
        #[serde(default)]
        pub title: Option<String>,
    }

    /// Changed fields only; `None` leaves a field as it was.
    pub struct PersonUpdated {
        pub person_id: PersonId,
        #[serde(default)]
        pub name: Option<String>,
        #[serde(default)]
        pub department_id: Option<DepartmentId>,
        #[serde(default)]
        pub title: Option<String>,
    }

    /// The person left. Their history stays with this account.
    pub struct PersonLeft {
        pub person_id: PersonId,
        /// The last working day.
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub left_on: NaiveDate,
        #[serde(default)]
        pub reason: Option<String>,
    }

    /// A former employee came back under a new account (`person_id`); the old account
    /// keeps its history and is taken off devices.
    pub struct PersonRejoined {
        pub person_id: PersonId,
        pub previous_person_id: PersonId,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arb::date))]
        pub rejoined_on: NaiveDate,
    }

    pub struct BadgeNumberAssigned {
        pub person_id: PersonId,
        pub badge_number: BadgeNumber,
        #[serde(default)]
        pub previous: Option<BadgeNumber>,
    }
}

keyed_by! {
    DepartmentDefined => Department(department_id),
    DepartmentRenamed => Department(department_id),
    DepartmentMoved => Department(department_id),
    PersonHired => Person(person_id),
    PersonUpdated => Person(person_id),
    PersonLeft => Person(person_id),
    PersonRejoined => Person(person_id),
    BadgeNumberAssigned => Person(person_id),
}
