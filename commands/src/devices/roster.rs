//! Device rosters: who should be on each device (its scope, 可用范围, over the tenant's
//! people with a badge number) against who the ledger says was sent there, on a given
//! date in the device's zone. [`reconcile`] is pure: the difference becomes `DATA UPDATE
//! USERINFO` and `DATA DELETE USERINFO` commands, each recorded as `RosterMemberPushed`,
//! `RosterMemberDisabled` or `RosterMemberRemoved`. Dates matter: someone transferred
//! from a later date stays where they are until that date, someone who leaves stays on
//! the device through their last day; the daily scope job brings devices in line as
//! those dates come. A device without a scope is not managed: its own enrolments stand.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use schemas::events::{DevicePrivilege, DevicePrivilegeSet, DeviceScopeSet, LeavingScope};
use schemas::ids::{BadgeNumber, DepartmentId, DeviceSn, PersonId, ZoneName};
use schemas::{Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::Rejection;
use crate::organisation::Organisation;

/// What a device was sent, per person: the badge number, name and privilege it holds
/// them under; and the privileges administrators gave (user unless said otherwise).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceRoster {
    pub bound: bool,
    /// The zone it was bound in: whose midnight its daily scope job waits for.
    pub zone: Option<ZoneName>,
    pub scope: Option<DeviceScopeSet>,
    pub members: BTreeMap<PersonId, (BadgeNumber, String, DevicePrivilege)>,
    pub privileges: BTreeMap<PersonId, DevicePrivilege>,
    /// Members kept on the device but disabled (they left a scope that disables).
    pub disabled: BTreeSet<PersonId>,
}

/// A tenant's people, departments and devices, as far as rosters are concerned.
#[derive(Debug, Clone, Default)]
pub struct Rosters {
    pub people: Organisation,
    /// Department → parent.
    pub departments: HashMap<DepartmentId, Option<DepartmentId>>,
    pub devices: BTreeMap<DeviceSn, DeviceRoster>,
    /// Each person's departments by the date each took effect (the hire's, then every
    /// transfer's), in the order recorded.
    pub moves: HashMap<PersonId, Vec<(NaiveDate, DepartmentId)>>,
}

/// One step towards the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Push {
        person: PersonId,
        badge: BadgeNumber,
        name: String,
        privilege: DevicePrivilege,
    },
    Remove {
        person: PersonId,
        badge: BadgeNumber,
    },
    /// Kept on the device, unable to punch: someone who left a scope that disables.
    Disable {
        person: PersonId,
        badge: BadgeNumber,
        name: String,
        privilege: DevicePrivilege,
    },
}

impl Rosters {
    /// Folds one event as recorded: a transfer takes effect on its `occurred_at` date.
    pub fn apply_envelope(&mut self, envelope: &Envelope) {
        self.apply_on(&envelope.event, Some(envelope.occurred_at.date_naive()));
    }

    /// Folds one event whose date is not known: a transfer takes effect from the
    /// person's latest move on, as if recorded in order.
    pub fn apply(&mut self, event: &Event) {
        self.apply_on(event, None);
    }

    fn apply_on(&mut self, event: &Event, occurred: Option<NaiveDate>) {
        self.people.apply_event(event);
        match event {
            Event::PersonHired(e) => {
                self.moves.insert(
                    e.person_id.clone(),
                    vec![(e.hired_on, e.department_id.clone())],
                );
            }
            Event::PersonUpdated(e) => {
                if let Some(department) = &e.department_id {
                    let moves = self.moves.entry(e.person_id.clone()).or_default();
                    let from = occurred
                        .unwrap_or_else(|| moves.last().map_or(NaiveDate::MIN, |(d, _)| *d));
                    moves.push((from, department.clone()));
                    // By date, a later record of the same date after an earlier one.
                    moves.sort_by_key(|(from, _)| *from);
                }
            }
            Event::DepartmentDefined(e) => {
                self.departments
                    .insert(e.department_id.clone(), e.parent.clone());
            }
            Event::DepartmentMoved(e) => {
                self.departments
                    .insert(e.department_id.clone(), e.parent.clone());
            }
            Event::DeviceBound(e) => {
                let device = self.devices.entry(e.sn.clone()).or_default();
                device.bound = true;
                device.zone = Some(e.zone.clone());
            }
            Event::DeviceUnbound(e) => {
                // Unbinding wipes the device (CLEAR DATA): it holds nobody any more.
                let device = self.devices.entry(e.sn.clone()).or_default();
                *device = DeviceRoster::default();
            }
            Event::DeviceScopeSet(e) => {
                self.devices.entry(e.sn.clone()).or_default().scope = Some(e.clone());
            }
            Event::RosterMemberPushed(e) => {
                let device = self.devices.entry(e.sn.clone()).or_default();
                device.disabled.remove(&e.person_id);
                device.members.insert(
                    e.person_id.clone(),
                    (e.badge_number.clone(), e.name.clone(), e.privilege),
                );
            }
            Event::DevicePrivilegeSet(e) => {
                self.devices
                    .entry(e.sn.clone())
                    .or_default()
                    .privileges
                    .insert(e.person_id.clone(), e.privilege);
            }
            Event::RosterMemberRemoved(e) => {
                let device = self.devices.entry(e.sn.clone()).or_default();
                let gone: Vec<PersonId> = device
                    .members
                    .iter()
                    .filter(|(_, (badge, _, _))| badge == &e.badge_number)
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in gone {
                    device.members.remove(&p);
                    device.disabled.remove(&p);
                }
            }
            Event::RosterMemberDisabled(e) => {
                let device = self.devices.entry(e.sn.clone()).or_default();
                if device
                    .members
                    .get(&e.person_id)
                    .is_some_and(|(badge, _, _)| badge == &e.badge_number)
                {
                    device.disabled.insert(e.person_id.clone());
                }
            }
            _ => {}
        }
    }

    /// Whether `dept` is `under` or below it.
    fn within<'a>(&'a self, mut dept: &'a DepartmentId, under: &DepartmentId) -> bool {
        for _ in 0..64 {
            if dept == under {
                return true;
            }
            match self.departments.get(dept).and_then(Option::as_ref) {
                Some(parent) => dept = parent,
                None => return false,
            }
        }
        false
    }

    fn in_department(&self, dept: &DepartmentId, listed: &[DepartmentId], deep: bool) -> bool {
        listed
            .iter()
            .any(|d| d == dept || (deep && self.within(dept, d)))
    }

    /// Whether the scope admits a person of department `dept`. Exclusions win.
    pub fn admits(&self, scope: &DeviceScopeSet, person: &PersonId, dept: &DepartmentId) -> bool {
        let deep = scope.include_sub_departments;
        if scope.excluded_people.contains(person)
            || self.in_department(dept, &scope.excluded_departments, deep)
        {
            return false;
        }
        scope.people.contains(person) || self.in_department(dept, &scope.departments, deep)
    }

    /// The department `person` belongs to on `date`: the last that took effect by then
    /// (before their first, the first).
    pub fn department_on(&self, person: &PersonId, date: NaiveDate) -> Option<&DepartmentId> {
        let moves = self.moves.get(person)?;
        moves
            .iter()
            .rev()
            .find(|(from, _)| *from <= date)
            .or_else(|| moves.first())
            .map(|(_, d)| d)
    }

    /// Whether `person` belongs on a device of `scope` on `date`: not left by then (a
    /// leaver stays through their last day), and admitted by the department they are in
    /// on that date. Future hires are admitted, so they can enrol before their first day.
    pub fn on_roster(&self, scope: &DeviceScopeSet, person: &PersonId, date: NaiveDate) -> bool {
        let Some(p) = self.people.people.get(person) else {
            return false;
        };
        if p.left_on.is_some_and(|last| date > last) {
            return false;
        }
        let department = self.department_on(person, date).unwrap_or(&p.department);
        self.admits(scope, person, department)
    }

    /// Whether a department is known: defined, or someone belongs to it.
    pub fn knows_department(&self, dept: &DepartmentId) -> bool {
        self.departments.contains_key(dept)
            || self.people.people.values().any(|p| &p.department == dept)
    }
}

/// What must be sent to `sn` for its roster to match its scope on `date` (the device's
/// local date): removals first (a re-badged person's old number goes before the new one
/// arrives), then pushes, each in person order. Nothing for an unbound or unscoped
/// device.
pub fn reconcile(rosters: &Rosters, sn: &DeviceSn, date: NaiveDate) -> Vec<Change> {
    let Some(device) = rosters.devices.get(sn) else {
        return Vec::new();
    };
    let Some(scope) = device.scope.as_ref().filter(|_| device.bound) else {
        return Vec::new();
    };
    let privilege = |p: &PersonId| {
        device
            .privileges
            .get(p)
            .copied()
            .unwrap_or(DevicePrivilege::User)
    };
    let wanted: BTreeMap<&PersonId, (&BadgeNumber, &str, DevicePrivilege)> = rosters
        .people
        .people
        .iter()
        .filter(|(id, _)| rosters.on_roster(scope, id, date))
        .filter_map(|(id, p)| Some((id, (p.badge.as_ref()?, p.name.as_str(), privilege(id)))))
        .collect();
    let mut removals = Vec::new();
    let mut pushes = Vec::new();
    let disables = scope.on_leaving_scope == LeavingScope::Disable;
    for (person, (badge, name, privilege)) in &device.members {
        let stays = wanted.get(person).is_some_and(|(b, _, _)| *b == badge);
        if stays {
            continue;
        }
        // Out of the scope, or out of the company, under the same number: a scope that
        // disables keeps them (once); a number that changed hands, or a person the
        // tenant no longer knows, is deleted whatever the scope says.
        let same_number = rosters
            .people
            .people
            .get(person)
            .is_some_and(|p| p.badge.as_ref() == Some(badge));
        if disables && same_number {
            if !device.disabled.contains(person) {
                removals.push(Change::Disable {
                    person: person.clone(),
                    badge: badge.clone(),
                    name: name.clone(),
                    privilege: *privilege,
                });
            }
        } else {
            removals.push(Change::Remove {
                person: person.clone(),
                badge: badge.clone(),
            });
        }
    }
    for (person, (badge, name, privilege)) in wanted {
        let sent = device.members.get(person);
        if device.disabled.contains(person)
            || sent.is_none_or(|(b, n, p)| b != badge || n != name || *p != privilege)
        {
            pushes.push(Change::Push {
                person: person.clone(),
                badge: badge.clone(),
                name: name.to_owned(),
                privilege,
            });
        }
    }
    removals.extend(pushes);
    removals
}

/// What an administrator asks for a device's scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub people: Vec<PersonId>,
    #[serde(default)]
    pub departments: Vec<DepartmentId>,
    #[serde(default)]
    pub include_sub_departments: bool,
    #[serde(default)]
    pub excluded_people: Vec<PersonId>,
    #[serde(default)]
    pub excluded_departments: Vec<DepartmentId>,
    /// What becomes of people who leave it (or the company): deleted from the device,
    /// or kept there disabled.
    #[serde(default)]
    pub on_leaving_scope: LeavingScope,
}

pub(crate) fn not_bound(sn: &DeviceSn) -> Rejection {
    Rejection::Unknown(format!("device {sn} is not bound to this tenant"))
}

/// Checks a scope against the tenant: the device is bound here, every named person and
/// department exists.
pub fn decide_scope(
    rosters: &Rosters,
    sn: &DeviceSn,
    scope: &Scope,
) -> Result<DeviceScopeSet, Rejection> {
    if !rosters.devices.get(sn).is_some_and(|d| d.bound) {
        return Err(not_bound(sn));
    }
    let unknown_person = scope
        .people
        .iter()
        .chain(&scope.excluded_people)
        .find(|p| !rosters.people.people.contains_key(*p));
    if let Some(person) = unknown_person {
        return Err(Rejection::Unknown(format!(
            "person {person} does not exist"
        )));
    }
    let unknown_department = scope
        .departments
        .iter()
        .chain(&scope.excluded_departments)
        .find(|d| !rosters.knows_department(d));
    if let Some(dept) = unknown_department {
        return Err(Rejection::Unknown(format!(
            "department {dept} does not exist"
        )));
    }
    Ok(DeviceScopeSet {
        sn: sn.clone(),
        people: scope.people.clone(),
        departments: scope.departments.clone(),
        include_sub_departments: scope.include_sub_departments,
        excluded_people: scope.excluded_people.clone(),
        excluded_departments: scope.excluded_departments.clone(),
        on_leaving_scope: scope.on_leaving_scope,
    })
}

/// Checks a privilege for a person on a device: the device is bound here and has a
/// scope, and the person is someone its scope admits on `date` (a privilege is for the
/// roster the ledger manages; a device's own enrolments are its own).
pub fn decide_privilege(
    rosters: &Rosters,
    sn: &DeviceSn,
    person: &PersonId,
    privilege: DevicePrivilege,
    date: NaiveDate,
) -> Result<DevicePrivilegeSet, Rejection> {
    let device = rosters
        .devices
        .get(sn)
        .filter(|d| d.bound)
        .ok_or_else(|| not_bound(sn))?;
    if !rosters.people.people.contains_key(person) {
        return Err(Rejection::Unknown(format!(
            "person {person} does not exist"
        )));
    }
    let admitted = device
        .scope
        .as_ref()
        .is_some_and(|scope| rosters.on_roster(scope, person, date));
    if !admitted {
        return Err(Rejection::Invalid(format!(
            "person {person} is not in the scope of device {sn}: set the device's scope to include them first"
        )));
    }
    Ok(DevicePrivilegeSet {
        sn: sn.clone(),
        person_id: person.clone(),
        privilege,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use schemas::events::{
        BadgeNumberAssigned, DepartmentDefined, DeviceBound, PersonHired, PersonLeft,
        PersonUpdated, RosterMemberDisabled, RosterMemberPushed, RosterMemberRemoved,
    };

    fn hired(id: &str, dept: &str, badge: Option<&str>) -> Event {
        PersonHired {
            person_id: PersonId::from(id),
            name: format!("Name {id}"),
            department_id: DepartmentId::from(dept),
            hired_on: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            badge_number: badge.map(BadgeNumber::from),
            title: None,
        }
        .into()
    }

    fn dept(id: &str, parent: Option<&str>) -> Event {
        DepartmentDefined {
            department_id: DepartmentId::from(id),
            name: id.to_owned(),
            parent: parent.map(DepartmentId::from),
        }
        .into()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
    }

    fn sn() -> DeviceSn {
        DeviceSn::from("CQZ1")
    }

    fn world() -> Rosters {
        let mut r = Rosters::default();
        for e in [
            dept("d-ops", None),
            dept("d-night", Some("d-ops")),
            dept("d-office", None),
            hired("p-1", "d-ops", Some("1")),
            hired("p-2", "d-night", Some("2")),
            hired("p-3", "d-office", Some("3")),
            hired("p-4", "d-ops", None),
            DeviceBound {
                sn: sn(),
                name: "Gate".into(),
                model: None,
                zone: schemas::ids::ZoneName::parse("Asia/Shanghai").unwrap(),
                records_from: None,
            }
            .into(),
        ] {
            r.apply(&e);
        }
        r
    }

    fn scope(r: &Rosters, s: Scope) -> Rosters {
        let mut r = r.clone();
        r.apply(&decide_scope(&r, &sn(), &s).unwrap().into());
        r
    }

    /// Applies what reconcile asks for, as `sync` records it.
    fn settle(r: &mut Rosters) -> Vec<Change> {
        let changes = reconcile(r, &sn(), today());
        for c in &changes {
            let e: Event = match c {
                Change::Push {
                    person,
                    badge,
                    name,
                    privilege,
                } => RosterMemberPushed {
                    sn: sn(),
                    person_id: person.clone(),
                    badge_number: badge.clone(),
                    name: name.clone(),
                    privilege: *privilege,
                }
                .into(),
                Change::Remove { person, badge } => RosterMemberRemoved {
                    sn: sn(),
                    person_id: Some(person.clone()),
                    badge_number: badge.clone(),
                }
                .into(),
                Change::Disable { person, badge, .. } => RosterMemberDisabled {
                    sn: sn(),
                    person_id: person.clone(),
                    badge_number: badge.clone(),
                }
                .into(),
            };
            r.apply(&e);
        }
        changes
    }

    fn pushed(changes: &[Change]) -> Vec<&str> {
        changes
            .iter()
            .map(|c| match c {
                Change::Push { badge, .. } => badge.as_str(),
                Change::Remove { .. } => "-",
                Change::Disable { .. } => "x",
            })
            .collect()
    }

    #[test]
    fn a_department_scope_pushes_its_people_with_badges_and_nobody_else() {
        let shallow = Scope {
            departments: vec![DepartmentId::from("d-ops")],
            ..Scope::default()
        };
        let mut r = scope(&world(), shallow.clone());
        assert_eq!(pushed(&settle(&mut r)), ["1"], "p-4 has no badge");
        assert!(settle(&mut r).is_empty(), "settled: nothing more to send");
        let mut deep = scope(
            &r,
            Scope {
                include_sub_departments: true,
                ..shallow
            },
        );
        assert_eq!(pushed(&settle(&mut deep)), ["2"]);
    }

    #[test]
    fn people_changes_reach_the_device() {
        let mut r = scope(
            &world(),
            Scope {
                departments: vec![DepartmentId::from("d-ops")],
                include_sub_departments: true,
                excluded_people: vec![PersonId::from("p-2")],
                ..Scope::default()
            },
        );
        assert_eq!(pushed(&settle(&mut r)), ["1"], "exclusions win");
        r.apply(
            &PersonUpdated {
                person_id: PersonId::from("p-1"),
                name: Some("Renamed".into()),
                department_id: None,
                title: None,
            }
            .into(),
        );
        assert_eq!(pushed(&settle(&mut r)), ["1"], "a new name is pushed again");
        r.apply(
            &BadgeNumberAssigned {
                person_id: PersonId::from("p-1"),
                badge_number: BadgeNumber::from("11"),
                previous: Some(BadgeNumber::from("1")),
            }
            .into(),
        );
        assert_eq!(
            settle(&mut r),
            [
                Change::Remove {
                    person: PersonId::from("p-1"),
                    badge: BadgeNumber::from("1")
                },
                Change::Push {
                    person: PersonId::from("p-1"),
                    badge: BadgeNumber::from("11"),
                    name: "Renamed".into(),
                    privilege: DevicePrivilege::User,
                }
            ],
            "the old number goes first"
        );
        r.apply(&hired("p-5", "d-night", Some("5")));
        assert_eq!(pushed(&settle(&mut r)), ["5"]);
        r.apply(
            &PersonLeft {
                person_id: PersonId::from("p-5"),
                left_on: NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
                reason: None,
            }
            .into(),
        );
        assert_eq!(pushed(&settle(&mut r)), ["-"]);
        r.apply(
            &PersonUpdated {
                person_id: PersonId::from("p-1"),
                name: None,
                department_id: Some(DepartmentId::from("d-office")),
                title: None,
            }
            .into(),
        );
        assert_eq!(pushed(&settle(&mut r)), ["-"], "moved out of scope");
    }

    /// eteams' "disable, do not delete" (seed 003): people who leave the scope or the
    /// company stay on the device, disabled once; coming back enables them; a number
    /// that changed hands is deleted all the same.
    #[test]
    fn a_scope_that_disables_keeps_leavers_on_the_device() {
        let mut r = scope(
            &world(),
            Scope {
                departments: vec![DepartmentId::from("d-ops")],
                include_sub_departments: true,
                on_leaving_scope: LeavingScope::Disable,
                ..Scope::default()
            },
        );
        assert_eq!(pushed(&settle(&mut r)), ["1", "2"]);
        let moved = |r: &mut Rosters, dept: &str| {
            r.apply(
                &PersonUpdated {
                    person_id: PersonId::from("p-1"),
                    name: None,
                    department_id: Some(DepartmentId::from(dept)),
                    title: None,
                }
                .into(),
            );
        };
        moved(&mut r, "d-office");
        assert_eq!(pushed(&settle(&mut r)), ["x"], "disabled, not deleted");
        assert!(settle(&mut r).is_empty(), "disabled once");
        assert!(
            r.devices[&sn()]
                .members
                .contains_key(&PersonId::from("p-1"))
        );
        moved(&mut r, "d-ops");
        assert_eq!(
            pushed(&settle(&mut r)),
            ["1"],
            "back in scope: enabled again"
        );
        r.apply(
            &PersonLeft {
                person_id: PersonId::from("p-2"),
                left_on: NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
                reason: None,
            }
            .into(),
        );
        assert_eq!(pushed(&settle(&mut r)), ["x"], "a leaver is disabled too");
        r.apply(
            &BadgeNumberAssigned {
                person_id: PersonId::from("p-1"),
                badge_number: BadgeNumber::from("11"),
                previous: Some(BadgeNumber::from("1")),
            }
            .into(),
        );
        assert_eq!(
            pushed(&settle(&mut r)),
            ["-", "11"],
            "an old number is deleted"
        );
    }

    #[test]
    fn a_privilege_is_sent_with_the_person_and_kept_across_renames() {
        let mut r = scope(
            &world(),
            Scope {
                departments: vec![DepartmentId::from("d-ops")],
                ..Scope::default()
            },
        );
        settle(&mut r);
        let out = decide_privilege(
            &r,
            &sn(),
            &PersonId::from("p-3"),
            DevicePrivilege::Admin,
            today(),
        );
        assert_eq!(
            out.unwrap_err().to_string(),
            "person p-3 is not in the scope of device CQZ1: set the device's scope to include them first"
        );
        let set = decide_privilege(
            &r,
            &sn(),
            &PersonId::from("p-1"),
            DevicePrivilege::Registrar,
            today(),
        )
        .unwrap();
        r.apply(&set.into());
        let push = |privilege| {
            vec![Change::Push {
                person: PersonId::from("p-1"),
                badge: BadgeNumber::from("1"),
                name: "Name p-1".into(),
                privilege,
            }]
        };
        assert_eq!(settle(&mut r), push(DevicePrivilege::Registrar));
        assert!(settle(&mut r).is_empty());
        r.apply(
            &PersonUpdated {
                person_id: PersonId::from("p-1"),
                name: Some("Renamed".into()),
                department_id: None,
                title: None,
            }
            .into(),
        );
        let renamed = settle(&mut r);
        assert!(
            matches!(
                &renamed[..],
                [Change::Push {
                    privilege: DevicePrivilege::Registrar,
                    ..
                }]
            ),
            "{renamed:?}"
        );
        let back = decide_privilege(
            &r,
            &sn(),
            &PersonId::from("p-1"),
            DevicePrivilege::User,
            today(),
        );
        r.apply(&back.unwrap().into());
        assert!(matches!(
            &settle(&mut r)[..],
            [Change::Push {
                privilege: DevicePrivilege::User,
                ..
            }]
        ));
    }

    #[test]
    fn scopes_name_what_exists_on_a_bound_device() {
        let r = world();
        let refused = |s: Scope| decide_scope(&r, &sn(), &s).unwrap_err().to_string();
        assert_eq!(
            refused(Scope {
                people: vec![PersonId::from("p-9")],
                ..Scope::default()
            }),
            "person p-9 does not exist"
        );
        assert_eq!(
            refused(Scope {
                excluded_departments: vec![DepartmentId::from("d-none")],
                ..Scope::default()
            }),
            "department d-none does not exist"
        );
        let unbound = decide_scope(&r, &DeviceSn::from("OTHER"), &Scope::default());
        assert_eq!(
            unbound.unwrap_err().to_string(),
            "device OTHER is not bound to this tenant"
        );
    }

    #[test]
    fn a_dated_transfer_counts_from_its_date_and_a_leaver_through_their_last_day() {
        let mut r = scope(
            &world(),
            Scope {
                departments: vec![DepartmentId::from("d-ops")],
                ..Scope::default()
            },
        );
        settle(&mut r);
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 6, d).unwrap();
        let at = |d: u32| day(d).and_hms_opt(0, 0, 0).unwrap().and_utc();
        let envelope = |e: Event, d: u32| {
            let mut e = Envelope::new(
                schemas::ids::TenantId::parse("acme").unwrap(),
                schemas::Actor::System {
                    component: "test".into(),
                },
                e,
                at(1),
            );
            e.occurred_at = at(d);
            e
        };
        // Recorded on 1 June: p-1 moves to the office from 10 June; p-1 then moves
        // back from 20 June (recorded later, dated later).
        r.apply_envelope(&envelope(
            PersonUpdated {
                person_id: PersonId::from("p-1"),
                name: None,
                department_id: Some(DepartmentId::from("d-office")),
                title: None,
            }
            .into(),
            10,
        ));
        r.apply_envelope(&envelope(
            PersonLeft {
                person_id: PersonId::from("p-4"),
                left_on: day(15),
                reason: None,
            }
            .into(),
            15,
        ));
        assert!(
            reconcile(&r, &sn(), day(9)).is_empty(),
            "before the date nothing moves"
        );
        assert_eq!(
            reconcile(&r, &sn(), day(10)),
            vec![Change::Remove {
                person: PersonId::from("p-1"),
                badge: BadgeNumber::from("1"),
            }]
        );
        assert_eq!(
            r.department_on(&PersonId::from("p-1"), day(1)),
            Some(&DepartmentId::from("d-ops"))
        );
        r.apply_envelope(&envelope(
            PersonUpdated {
                person_id: PersonId::from("p-1"),
                name: None,
                department_id: Some(DepartmentId::from("d-ops")),
                title: None,
            }
            .into(),
            20,
        ));
        assert!(reconcile(&r, &sn(), day(9)).is_empty());
        assert_eq!(reconcile(&r, &sn(), day(12)).len(), 1);
        assert!(
            reconcile(&r, &sn(), day(21)).is_empty(),
            "back from the 20th"
        );
    }
}
