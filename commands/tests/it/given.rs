//! Every command as `given(commands).when(command).then(events | refusal)`, through the
//! NATS service's handler on a real server, one tenant a case. What a command stored is
//! read back from the stream and snapshotted (insta, `snapshots/`), event ids and
//! clocks redacted; a refusal is snapshotted with its code and reason, and must leave
//! the stream as it was. Then every case again from a Python client (nats-py) over NATS
//! to the running service, answered alike.

use commands::service::handle;
use futures::StreamExt;
use ledger::ReadFrom;
use schemas::ids::TenantId;
use serde_json::{Value, json};

use crate::*;

/// One command in the service's JSON form: (family, command).
type Sent = (&'static str, Value);

/// A department `prod` with Li Wei (p1, badge 1001) and Wang Fang (p2, badge 1002),
/// hired on 1 November.
fn org() -> Vec<Sent> {
    vec![
        (
            "departments",
            json!({"define": {"department_id": "prod", "name": "Production"}}),
        ),
        (
            "people",
            json!({"hire": {"person_id": "p1", "name": "Li Wei", "department_id": "prod", "badge": "1001", "hired_on": "2026-11-01"}}),
        ),
        (
            "people",
            json!({"hire": {"person_id": "p2", "name": "Wang Fang", "department_id": "prod", "badge": "1002", "hired_on": "2026-11-01"}}),
        ),
    ]
}

fn office_rule() -> Value {
    json!({"create": {
        "rule_id": "office",
        "name": "Office 08:30-17:30",
        "zone": "Asia/Shanghai",
        "kind": {"Fixed": {
            "workdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
            "day": {
                "sections": [{"on": "08:30:00", "off": "17:30:00"}],
                "rests": [{"start": "12:00:00", "end": "13:00:00"}],
                "flex": {"Allowance": {"late_s": 600, "early_s": 0}}
            }
        }},
        "effective": {"from": "2026-11-01"}
    }})
}

/// The organisation, with the office rule followed by department `prod` since
/// 1 November.
fn office() -> Vec<Sent> {
    let mut given = org();
    given.push(("rules", office_rule()));
    given.push(("rules", json!({"set_members": {"rule_id": "office", "departments": ["prod"], "effective": {"from": "2026-11-01"}}})));
    given
}

/// The organisation with a day and a night shift and a shift rule `plant` for `prod`.
fn plant() -> Vec<Sent> {
    let mut given = org();
    given.push(("schedules", json!({"define_shift": {"shift_id": "day", "name": "白班", "day": {"sections": [{"on": "08:00:00", "off": "17:00:00"}]}}})));
    given.push(("schedules", json!({"define_shift": {"shift_id": "night", "name": "夜班", "day": {"sections": [{"on": "22:00:00", "off": "06:00:00", "off_next_day": true}]}}})));
    given.push(("rules", json!({"create": {"rule_id": "plant", "name": "Plant", "zone": "Asia/Shanghai", "kind": {"Shifts": {"shifts": ["day", "night"]}}, "effective": {"from": "2026-11-01"}}})));
    given.push(("rules", json!({"set_members": {"rule_id": "plant", "departments": ["prod"], "effective": {"from": "2026-11-01"}}})));
    given
}

fn with(mut given: Vec<Sent>, more: &[Sent]) -> Vec<Sent> {
    given.extend(more.iter().cloned());
    given
}

/// (name, given, when): the snapshot is named after the case.
fn cases() -> Vec<(&'static str, Vec<Sent>, Sent)> {
    vec![
        // Rules.
        ("rule_create", org(), ("rules", office_rule())),
        (
            "rule_create_twice",
            with(org(), &[("rules", office_rule())]),
            ("rules", office_rule()),
        ),
        (
            "rule_create_in_an_unknown_zone",
            org(),
            (
                "rules",
                json!({"create": {"rule_id": "x", "name": "X", "zone": "Mars/Olympus", "kind": {"Free": {"workdays": ["Mon"], "day_starts_at": "04:00:00"}}}}),
            ),
        ),
        (
            "rule_change_from_tomorrow",
            office(),
            (
                "rules",
                json!({"change": {"rule_id": "office", "name": "Office (head office)", "effective": "tomorrow"}}),
            ),
        ),
        (
            "rule_change_unknown",
            org(),
            (
                "rules",
                json!({"change": {"rule_id": "nowhere", "name": "N"}}),
            ),
        ),
        (
            "rule_copy",
            office(),
            (
                "rules",
                json!({"copy": {"from": "office", "rule_id": "office-sh", "name": "Office (Shanghai site)"}}),
            ),
        ),
        (
            "rule_members_with_an_exclusion",
            with(org(), &[("rules", office_rule())]),
            (
                "rules",
                json!({"set_members": {"rule_id": "office", "departments": ["prod"], "excluded_people": ["p2"]}}),
            ),
        ),
        // A person named by a rule is theirs, whatever rule their department follows.
        (
            "rule_members_naming_a_person_whose_department_follows_another",
            with(
                office(),
                &[(
                    "rules",
                    json!({"copy": {"from": "office", "rule_id": "late", "name": "Late office"}}),
                )],
            ),
            (
                "rules",
                json!({"set_members": {"rule_id": "late", "people": ["p1"]}}),
            ),
        ),
        (
            "rule_members_naming_a_person_another_rule_names",
            with(
                org(),
                &[
                    ("rules", office_rule()),
                    (
                        "rules",
                        json!({"set_members": {"rule_id": "office", "people": ["p1"]}}),
                    ),
                    (
                        "rules",
                        json!({"copy": {"from": "office", "rule_id": "late", "name": "Late office"}}),
                    ),
                ],
            ),
            (
                "rules",
                json!({"set_members": {"rule_id": "late", "people": ["p1", "p2"]}}),
            ),
        ),
        (
            "rule_members_unknown_person",
            with(org(), &[("rules", office_rule())]),
            (
                "rules",
                json!({"set_members": {"rule_id": "office", "people": ["ghost"]}}),
            ),
        ),
        (
            "rule_special_dates",
            office(),
            (
                "rules",
                json!({"set_special_dates": {"rule_id": "office", "dates": [{"date": "2026-12-12", "kind": {"MustPunch": {}}, "note": "stocktaking"}, {"date": "2026-12-24", "kind": "NoPunch"}]}}),
            ),
        ),
        (
            "rule_publish_calendar",
            org(),
            (
                "rules",
                json!({"publish_calendar": {"calendar_id": "cn", "year": 2027, "days": [{"date": "2027-01-01", "kind": "Holiday", "name": "元旦"}]}}),
            ),
        ),
        // Departments.
        (
            "department_define",
            vec![],
            (
                "departments",
                json!({"define": {"department_id": "prod", "name": "Production"}}),
            ),
        ),
        (
            "department_define_under_unknown",
            vec![],
            (
                "departments",
                json!({"define": {"department_id": "line-1", "name": "Line 1", "parent": "prod"}}),
            ),
        ),
        (
            "department_rename",
            org(),
            (
                "departments",
                json!({"rename": {"department_id": "prod", "name": "Manufacturing"}}),
            ),
        ),
        (
            "department_move_under_itself",
            with(
                org(),
                &[(
                    "departments",
                    json!({"define": {"department_id": "line-1", "name": "Line 1", "parent": "prod"}}),
                )],
            ),
            (
                "departments",
                json!({"move": {"department_id": "prod", "parent": "line-1"}}),
            ),
        ),
        (
            "department_import",
            vec![],
            (
                "departments",
                json!({"import": {"sheet": {"rows": [["部门ID", "部门名称", "上级部门"], ["hq", "Head office", ""], ["sales", "Sales", "hq"]]}}}),
            ),
        ),
        (
            "department_import_with_bad_rows",
            vec![],
            (
                "departments",
                json!({"import": {"sheet": {"rows": [["部门ID", "部门名称", "上级部门"], ["hq", "", ""], ["sales", "Sales", "nowhere"]]}}}),
            ),
        ),
        // People.
        (
            "person_hire",
            with(vec![], &org()[..1]),
            (
                "people",
                json!({"hire": {"person_id": "p1", "name": "Li Wei", "department_id": "prod", "badge": "1001", "hired_on": "2026-12-01"}}),
            ),
        ),
        (
            "person_hire_with_a_badge_in_use",
            org(),
            (
                "people",
                json!({"hire": {"person_id": "p3", "name": "Zhao Lei", "department_id": "prod", "badge": "1001", "hired_on": "2026-12-01"}}),
            ),
        ),
        (
            "person_update_badge",
            org(),
            (
                "people",
                json!({"update": {"person_id": "p1", "badge": "2001"}}),
            ),
        ),
        (
            "person_transfer",
            with(
                org(),
                &[(
                    "departments",
                    json!({"define": {"department_id": "qa", "name": "Quality"}}),
                )],
            ),
            (
                "people",
                json!({"transfer": {"person_id": "p1", "department_id": "qa", "effective_from": "2026-12-07"}}),
            ),
        ),
        (
            "person_leave",
            org(),
            (
                "people",
                json!({"leave": {"person_id": "p2", "left_on": "2026-12-31", "reason": "moved away"}}),
            ),
        ),
        (
            "person_rejoin",
            with(
                org(),
                &[(
                    "people",
                    json!({"leave": {"person_id": "p2", "left_on": "2026-11-15"}}),
                )],
            ),
            (
                "people",
                json!({"rejoin": {"person_id": "p2b", "previous_person_id": "p2", "rejoined_on": "2026-12-01", "badge": "1002"}}),
            ),
        ),
        (
            "person_rejoin_while_employed",
            org(),
            (
                "people",
                json!({"rejoin": {"person_id": "p2b", "previous_person_id": "p2", "rejoined_on": "2026-12-01"}}),
            ),
        ),
        (
            "person_import",
            with(vec![], &org()[..1]),
            (
                "people",
                json!({"import": {"sheet": {"rows": [["账号", "姓名", "部门", "入职日期", "工号"], ["p1", "Li Wei", "prod", "2026-11-01", "1001"], ["p2", "Wang Fang", "prod", "2026-11-01", "1002"]]}}}),
            ),
        ),
        (
            "person_import_with_bad_rows",
            with(vec![], &org()[..1]),
            (
                "people",
                json!({"import": {"sheet": {"rows": [["账号", "姓名", "部门", "入职日期", "工号"], ["p1", "Li Wei", "nowhere", "2026-11-01", "1001"], ["p2", "Wang Fang", "prod", "yesterday", "1001"], ["p3", "Zhao Lei", "prod", "2026-11-01", "1001"]]}}}),
            ),
        ),
        // Requests and corrections.
        (
            "request_leave",
            office(),
            (
                "requests",
                json!({"approve": {"approval_id": "l-1", "person_id": "p1", "kind": {"leave": {"leave_type": "annual"}}, "start": "2026-12-04T08:30:00", "end": "2026-12-04T17:30:00", "note": "family"}}),
            ),
        ),
        (
            "request_leave_ending_before_it_starts",
            office(),
            (
                "requests",
                json!({"approve": {"approval_id": "l-1", "person_id": "p1", "kind": {"leave": {"leave_type": "annual"}}, "start": "2026-12-04T17:30:00", "end": "2026-12-04T08:30:00"}}),
            ),
        ),
        (
            "request_trip",
            office(),
            (
                "requests",
                json!({"approve": {"approval_id": "t-1", "person_id": "p1", "kind": {"business_trip": {"destination": "Suzhou"}}, "start": "2026-12-07T08:30:00", "end": "2026-12-08T17:30:00"}}),
            ),
        ),
        (
            "request_outing",
            office(),
            (
                "requests",
                json!({"approve": {"approval_id": "o-1", "person_id": "p2", "kind": {"outing": {"destination": "customer"}}, "start": "2026-12-03T14:00:00", "end": "2026-12-03T16:00:00"}}),
            ),
        ),
        (
            "request_overtime",
            office(),
            (
                "requests",
                json!({"approve": {"approval_id": "ot-1", "person_id": "p1", "kind": {"overtime": {}}, "start": "2026-12-05T09:00:00", "end": "2026-12-05T13:00:00"}}),
            ),
        ),
        (
            "request_make_up",
            office(),
            (
                "requests",
                json!({"request_make_up": {"approval_id": "mu-1", "person_id": "p1", "local_time": "2026-12-02T08:25:00", "reason": "forgot to punch"}}),
            ),
        ),
        (
            "request_make_up_in_the_future",
            office(),
            (
                "requests",
                json!({"request_make_up": {"approval_id": "mu-1", "person_id": "p1", "local_time": "2026-12-04T08:25:00", "reason": "in advance"}}),
            ),
        ),
        (
            "request_make_up_approved",
            with(
                office(),
                &[(
                    "requests",
                    json!({"request_make_up": {"approval_id": "mu-1", "person_id": "p1", "local_time": "2026-12-02T08:25:00", "reason": "forgot to punch"}}),
                )],
            ),
            (
                "requests",
                json!({"approve_make_up": {"approval_id": "mu-1", "approver": "manager-zhou"}}),
            ),
        ),
        (
            "request_make_up_rejected",
            with(
                office(),
                &[(
                    "requests",
                    json!({"request_make_up": {"approval_id": "mu-1", "person_id": "p1", "local_time": "2026-12-02T08:25:00", "reason": "forgot to punch"}}),
                )],
            ),
            (
                "requests",
                json!({"reject_make_up": {"approval_id": "mu-1", "approver": "manager-zhou", "reason": "the camera shows no one"}}),
            ),
        ),
        (
            "request_make_up_approved_unknown",
            office(),
            (
                "requests",
                json!({"approve_make_up": {"approval_id": "mu-9"}}),
            ),
        ),
        (
            "request_calibrate",
            office(),
            (
                "requests",
                json!({"calibrate": {"calibration_id": "cal-1", "person_id": "p1", "date": "2026-12-02", "target": {"Slot": {"section": 0, "end": "On"}}, "status": "Normal", "reason": "the reader was broken"}}),
            ),
        ),
        (
            "request_calibrate_again_replaces",
            with(
                office(),
                &[(
                    "requests",
                    json!({"calibrate": {"calibration_id": "cal-1", "person_id": "p1", "date": "2026-12-02", "target": "Day", "status": "Normal", "reason": "the reader was broken"}}),
                )],
            ),
            (
                "requests",
                json!({"calibrate": {"calibration_id": "cal-2", "person_id": "p1", "date": "2026-12-02", "target": "Day", "status": "Late", "reason": "the visit was not confirmed"}}),
            ),
        ),
        (
            "request_calibrate_without_reason",
            office(),
            (
                "requests",
                json!({"calibrate": {"calibration_id": "cal-1", "person_id": "p1", "date": "2026-12-02", "target": "Day", "status": "Normal", "reason": " "}}),
            ),
        ),
        // Shifts and schedules.
        (
            "schedule_define_shift",
            vec![],
            (
                "schedules",
                json!({"define_shift": {"shift_id": "day", "name": "白班", "day": {"sections": [{"on": "08:00:00", "off": "17:00:00"}], "rests": [{"start": "12:00:00", "end": "13:00:00"}]}}}),
            ),
        ),
        (
            "schedule_define_shift_twice",
            plant(),
            (
                "schedules",
                json!({"define_shift": {"shift_id": "day", "name": "白班", "day": {"sections": [{"on": "07:00:00", "off": "16:00:00"}]}}}),
            ),
        ),
        (
            "schedule_assign",
            plant(),
            (
                "schedules",
                json!({"assign": {"rule_id": "plant", "person_id": "p1", "days": [{"date": "2026-12-07", "shift": "day"}, {"date": "2026-12-08", "shift": "night"}, {"date": "2026-12-09"}]}}),
            ),
        ),
        (
            "schedule_assign_a_shift_the_rule_lacks",
            with(
                plant(),
                &[(
                    "schedules",
                    json!({"define_shift": {"shift_id": "late", "name": "中班", "day": {"sections": [{"on": "14:00:00", "off": "22:00:00"}]}}}),
                )],
            ),
            (
                "schedules",
                json!({"assign": {"rule_id": "plant", "person_id": "p1", "days": [{"date": "2026-12-07", "shift": "late"}]}}),
            ),
        ),
        (
            "schedule_import",
            plant(),
            (
                "schedules",
                json!({"import": {"rule_id": "plant", "sheet": {"rows": [["账号", "姓名", "2026-12-07", "2026-12-08", "2026-12-09"], ["p1", "Li Wei", "白班", "夜班", "休"], ["p2", "Wang Fang", "夜班", "休", "白班"]]}}}),
            ),
        ),
        (
            "schedule_import_with_bad_cells",
            plant(),
            (
                "schedules",
                json!({"import": {"rule_id": "plant", "sheet": {"rows": [["账号", "姓名", "2026-12-07", "2026-12-32"], ["p1", "Li Wei", "早班", "休"], ["ghost", "Nobody", "白班", "休"]]}}}),
            ),
        ),
        (
            "schedule_define_cycle",
            plant(),
            (
                "schedules",
                json!({"define_cycle": {"cycle_id": "two-two", "rule_id": "plant", "name": "两班倒", "days": ["day", "day", "night", "night", null, null]}}),
            ),
        ),
        (
            "schedule_assign_cycle",
            with(
                plant(),
                &[(
                    "schedules",
                    json!({"define_cycle": {"cycle_id": "two-two", "rule_id": "plant", "name": "两班倒", "days": ["day", "day", "night", "night", null, null]}}),
                )],
            ),
            (
                "schedules",
                json!({"assign_cycle": {"cycle_id": "two-two", "person_id": "p2", "from": "2026-12-07"}}),
            ),
        ),
        (
            "schedule_swap",
            with(
                plant(),
                &[
                    (
                        "schedules",
                        json!({"assign": {"rule_id": "plant", "person_id": "p1", "days": [{"date": "2026-12-07", "shift": "day"}]}}),
                    ),
                    (
                        "schedules",
                        json!({"assign": {"rule_id": "plant", "person_id": "p2", "days": [{"date": "2026-12-07", "shift": "night"}]}}),
                    ),
                ],
            ),
            (
                "schedules",
                json!({"approve_swap": {"approval_id": "sw-1", "rule_id": "plant", "person_id": "p1", "date": "2026-12-07", "with_person": "p2"}}),
            ),
        ),
        (
            "schedule_copy_month",
            with(
                plant(),
                &[(
                    "schedules",
                    json!({"assign": {"rule_id": "plant", "person_id": "p1", "days": [{"date": "2026-11-02", "shift": "day"}, {"date": "2026-11-03", "shift": "night"}]}}),
                )],
            ),
            (
                "schedules",
                json!({"copy_month": {"rule_id": "plant", "from": "2026-11", "to": "2026-12"}}),
            ),
        ),
        // Payroll periods.
        (
            "period_close",
            office(),
            (
                "periods",
                json!({"close": {"month": "2026-11", "note": "November payroll"}}),
            ),
        ),
        (
            "period_close_before_it_ends",
            office(),
            ("periods", json!({"close": {"month": "2026-12"}})),
        ),
        (
            "period_close_twice",
            with(
                office(),
                &[("periods", json!({"close": {"month": "2026-11"}}))],
            ),
            ("periods", json!({"close": {"month": "2026-11"}})),
        ),
        // Devices (SNs are global: `@T` becomes the case's tenant).
        (
            "device_scope",
            gate(),
            (
                "devices",
                json!({"scope": {"sn": "GATE-@T", "departments": ["prod"]}}),
            ),
        ),
        (
            "device_scope_of_an_unknown_department",
            gate(),
            (
                "devices",
                json!({"scope": {"sn": "GATE-@T", "departments": ["sales"]}}),
            ),
        ),
        (
            "device_scope_of_a_device_not_bound_here",
            org(),
            (
                "devices",
                json!({"scope": {"sn": "GATE-@T", "departments": ["prod"]}}),
            ),
        ),
        (
            "device_privilege",
            scoped_gate(),
            (
                "devices",
                json!({"privilege": {"sn": "GATE-@T", "person_id": "p1", "privilege": "Registrar"}}),
            ),
        ),
        (
            "device_privilege_out_of_scope",
            gate(),
            (
                "devices",
                json!({"privilege": {"sn": "GATE-@T", "person_id": "p1", "privilege": "Admin"}}),
            ),
        ),
        (
            "device_send",
            gate(),
            (
                "devices",
                json!({"send": {"sn": "GATE-@T", "command": {"QueryUsers": {"badge_number": null}}}}),
            ),
        ),
        (
            "device_retry_of_a_command_on_its_way",
            with(
                gate(),
                &[(
                    "devices",
                    json!({"send": {"sn": "GATE-@T", "command": "Info"}}),
                )],
            ),
            (
                "devices",
                json!({"retry": {"sn": "GATE-@T", "command_id": 1}}),
            ),
        ),
        (
            "device_reupload",
            gate(),
            (
                "devices",
                json!({"reupload": {"sn": "GATE-@T", "from": "2026-11-01", "to": "2026-11-02", "people": ["p2"]}}),
            ),
        ),
        (
            "device_reupload_backwards",
            gate(),
            (
                "devices",
                json!({"reupload": {"sn": "GATE-@T", "from": "2026-11-02", "to": "2026-11-01"}}),
            ),
        ),
        (
            "device_rename_to_nothing",
            gate(),
            (
                "devices",
                json!({"rename": {"sn": "GATE-@T", "name": "  "}}),
            ),
        ),
        (
            "device_unbind_of_a_device_never_bound",
            org(),
            ("devices", json!({"unbind": {"sn": "GATE-@T"}})),
        ),
        (
            "person_hire_reaches_the_scoped_device",
            scoped_gate(),
            (
                "people",
                json!({"hire": {"person_id": "p3", "name": "Zhao Lei", "department_id": "prod", "badge": "1003", "hired_on": "2026-12-03"}}),
            ),
        ),
        (
            "person_leave_today_keeps_them_on_the_device",
            scoped_gate(),
            (
                "people",
                json!({"leave": {"person_id": "p2", "left_on": "2026-12-03"}}),
            ),
        ),
    ]
}

/// The organisation and a gate bound in Shanghai.
fn gate() -> Vec<Sent> {
    with(
        org(),
        &[(
            "devices",
            json!({"bind": {"sn": "GATE-@T", "name": "Gate", "zone": "Asia/Shanghai"}}),
        )],
    )
}

/// The gate holding department `prod`.
fn scoped_gate() -> Vec<Sent> {
    with(
        gate(),
        &[(
            "devices",
            json!({"scope": {"sn": "GATE-@T", "departments": ["prod"]}}),
        )],
    )
}

/// A command for `tenant`: `@T` in it becomes the tenant's id.
fn for_tenant(command: &Value, tenant: &str) -> Value {
    serde_json::from_str(&command.to_string().replace("@T", tenant)).unwrap()
}

async fn send(
    w: &World,
    tenant: &TenantId,
    id: &str,
    (family, command): &Sent,
) -> Result<Value, Value> {
    let command = for_tenant(command, tenant.as_str());
    let body = json!({"command_id": id, "actor": "hr-wang", "command": command});
    let subject = format!("lc.cmd.v1.{tenant}.{family}");
    match handle(
        &w.ledger,
        family,
        &subject,
        &serde_json::to_vec(&body).unwrap(),
        now(),
    )
    .await
    {
        Ok(answer) => Ok(serde_json::from_slice(&answer).unwrap()),
        // The header's reason is ASCII with JSON escapes; read back as the text it is.
        Err(e) => Err(
            json!({"code": e.code, "reason": serde_json::from_str::<String>(&format!("\"{}\"", e.status)).unwrap()}),
        ),
    }
}

async fn events_of(w: &World, tenant: &TenantId) -> Vec<schemas::Envelope> {
    let mut read = w.ledger.read(tenant, ReadFrom::start()).await.unwrap();
    let mut out = Vec::new();
    while let Some(r) = read.next().await {
        out.push(r.unwrap().envelope);
    }
    out
}

/// What an answer says, to compare the handler's with the Python client's: the kinds
/// stored, or the refusal's code and reason (the case's tenant in it as `@T`).
fn gist(answer: &Result<Value, Value>, tenant: &str) -> Value {
    match answer {
        Ok(a) => json!({
            "outcome": a["outcome"],
            "kinds": a["events"].as_array().map(|e| e.iter().map(|e| e["kind"].clone()).collect::<Vec<_>>()),
            "devices": a["devices"].as_array().map(|e| e.iter().map(|e| e["kind"].clone()).collect::<Vec<_>>()),
        }),
        // Where in the body a parse error is depends on how the client spaced its JSON.
        Err(e) => {
            let reason = e["reason"].as_str().unwrap_or("");
            let reason = reason.rfind(" at line ").map_or(reason, |i| &reason[..i]);
            json!({"code": e["code"], "reason": reason.replace(tenant, "@T")})
        }
    }
}

/// Multi-threaded: the Python client runs as a blocking child while the service answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_given_when_then() {
    // One server for every case; each case is its own tenant.
    let w = &world().await;
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    let _guard = settings.bind_to_scope();
    // The same cases for the Python client, on tenants of their own.
    let mut batch = String::new();
    let mut expected = Vec::new();
    for (n, (name, given, when)) in cases().into_iter().enumerate() {
        for (i, (family, command)) in given.iter().chain(std::iter::once(&when)).enumerate() {
            let id = if i == given.len() {
                "when".to_owned()
            } else {
                format!("given-{i}")
            };
            let tenant = format!("py{n}");
            let command = for_tenant(command, &tenant);
            let line = json!({"tenant": tenant, "family": family, "body": {"command_id": id, "actor": "hr-wang", "command": command}});
            batch.push_str(&line.to_string());
            batch.push('\n');
        }
        let tenant = TenantId::parse(&format!("g{n}")).unwrap();
        for (i, sent) in given.iter().enumerate() {
            if let Err(e) = send(w, &tenant, &format!("given-{i}"), sent).await {
                panic!("{name}: given command {i} refused: {e}");
            }
        }
        let before = events_of(w, &tenant).await;
        let answer = send(w, &tenant, "when", &when).await;
        expected.push((n, name, given.len(), gist(&answer, tenant.as_str())));
        let then = match answer {
            Ok(answer) => {
                let stored: Vec<Value> = events_of(w, &tenant)
                    .await
                    .into_iter()
                    // The command's own events and the device rounds that followed it.
                    .filter(|e| {
                        e.command_id.as_ref().is_some_and(|c| {
                            c.as_str() == "when" || c.as_str().starts_with("when.sync")
                        })
                    })
                    .map(|e| serde_json::to_value(e).unwrap())
                    .collect();
                let named = |key: &str| answer[key].as_array().map_or(0, Vec::len);
                assert_eq!(
                    named("events") + named("devices"),
                    stored.len(),
                    "{name}: the answer names what was stored"
                );
                assert!(!stored.is_empty(), "{name}: applied, and stored nothing");
                json!({"stored": stored})
            }
            Err(refusal) => {
                assert_eq!(
                    events_of(w, &tenant).await.len(),
                    before.len(),
                    "{name}: a refusal stores nothing"
                );
                json!({"refused": refusal})
            }
        };
        insta::assert_yaml_snapshot!(name, then, {
            ".stored[].event_id" => "[event id]",
            ".stored[].recorded_at" => "[recorded at]",
            ".stored[].tenant" => "[tenant]",
        });
    }

    // Every case again, from a client nobody here wrote, through the running service.
    let (_service, _tasks) = commands::service::start(w.ledger.clone(), std::sync::Arc::new(now))
        .await
        .unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &batch).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/command.py"))
        .args(["--nats", &w.server.url(), "--batch"])
        .arg(file.path())
        .env("PYTHONPATH", root.join(".tools/python"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut answers = std::str::from_utf8(&out.stdout).unwrap().lines().map(|l| {
        let v: Value = serde_json::from_str(l).unwrap();
        match v.get("answer") {
            Some(a) => Ok(a.clone()),
            None => Err(v["error"].clone()),
        }
    });
    for (n, name, given, want) in expected {
        for i in 0..given {
            let a = answers.next().expect("an answer a command");
            assert!(
                a.is_ok(),
                "{name}: given command {i} refused over NATS: {a:?}"
            );
        }
        let got = gist(
            &answers.next().expect("an answer a command"),
            &format!("py{n}"),
        );
        assert_eq!(
            got, want,
            "{name}: the Python client was answered otherwise"
        );
    }
    assert!(answers.next().is_none());
}
