//! The command service over NATS request-reply, asked as any NATS client would.

use serde_json::{Value, json};

use crate::*;

fn at_now() -> commands::service::Clock {
    std::sync::Arc::new(now)
}

#[tokio::test]
async fn any_nats_client_creates_a_rule_and_is_told_why_a_bad_one_is_refused() {
    let w = world().await;
    organisation(&w, &["p1"]).await;
    let (_service, _tasks) = commands::service::start(w.ledger.clone(), at_now())
        .await
        .unwrap();
    let client = async_nats::connect(w.server.url()).await.unwrap();
    let ask = |body: Value| {
        let client = client.clone();
        async move {
            client
                .request(
                    "lc.cmd.v1.acme.rules",
                    serde_json::to_vec(&body).unwrap().into(),
                )
                .await
                .unwrap()
        }
    };
    let create = json!({
        "command_id": "web-1",
        "actor": "hr-wang",
        "command": {"create": {
            "rule_id": "prod",
            "name": "Production 08:30-17:30",
            "zone": "Asia/Shanghai",
            "kind": {"Fixed": {
                "workdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                "day": {
                    "sections": [{"on": "08:30:00", "off": "17:30:00"}],
                    "rests": [{"start": "12:00:00", "end": "13:00:00"}],
                    "flex": {"Allowance": {"late_s": 600, "early_s": 0}}
                }
            }},
            "effective": "tomorrow"
        }}
    });
    let reply = ask(create.clone()).await;
    assert!(
        reply.headers.is_none(),
        "no service error: {:?}",
        reply.headers
    );
    let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(answer["events"][0]["kind"], "RuleVersionDefined");
    let again: Value = serde_json::from_slice(&ask(create).await.payload).unwrap();
    assert_eq!(again["outcome"], "already_done");
    assert_eq!(again["events"], answer["events"]);

    let members = json!({
        "command_id": "web-2",
        "actor": "hr-wang",
        "command": {"set_members": {"rule_id": "prod", "departments": ["prod"]}}
    });
    let ok: Value = serde_json::from_slice(&ask(members).await.payload).unwrap();
    assert_eq!(ok["outcome"], "applied");

    // Refusals are service errors with a code and the reason; nothing is stored.
    let before = stream(&w).await.len();
    for (body, code, says) in [
        (
            json!({"command_id": "web-3", "actor": "hr-wang", "command": {"set_members": {"rule_id": "prod", "people": ["ghost"]}}}),
            "404",
            "person ghost does not exist",
        ),
        (
            json!({"command_id": "web-4", "actor": "hr-wang", "command": {"create": {"rule_id": "prod", "name": "again", "zone": "Asia/Shanghai", "kind": {"Free": {"workdays": ["Mon"], "day_starts_at": "04:00:00"}}}}}),
            "409",
            "already exists",
        ),
        (
            json!({"command_id": "web-5", "actor": "hr-wang", "command": {"delete_everything": {}}}),
            "400",
            "not a rules command",
        ),
        (json!({"actor": "hr-wang"}), "400", "command_id"),
    ] {
        let reply = ask(body).await;
        let headers = reply.headers.expect("a service error has headers");
        assert_eq!(
            headers
                .get(async_nats::service::NATS_SERVICE_ERROR_CODE)
                .map(|v| v.as_str()),
            Some(code)
        );
        let reason = headers
            .get(async_nats::service::NATS_SERVICE_ERROR)
            .map(|v| ledger::subjects::header_text(v.as_str()))
            .unwrap_or_default();
        assert!(reason.contains(says), "{reason:?} should say {says:?}");
    }
    assert_eq!(stream(&w).await.len(), before);
}

/// Runs `scripts/command.py` (nats-py) against `url`.
fn command_py(url: &str, tenant: &str, family: &str, body: &Value) -> std::process::Output {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    assert!(
        root.join(".tools/python/nats").exists(),
        "nats-py is missing: ./scripts/setup installs it into .tools/python"
    );
    std::process::Command::new("python3")
        .arg(root.join("scripts/command.py"))
        .args(["--nats", url, tenant, family, &body.to_string()])
        .env("PYTHONPATH", root.join(".tools/python"))
        .output()
        .expect("python3 runs")
}

/// Every family through a client no one here wrote: each command applied, then sent
/// again and found done, and a bad one refused with its code. (Multi-threaded: the
/// client runs as a blocking child process while the service answers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_sends_every_family() {
    let w = world().await;
    let (_service, _tasks) = commands::service::start(w.ledger.clone(), at_now())
        .await
        .unwrap();
    let url = w.server.url();
    let day = json!({"sections": [{"on": "08:00:00", "off": "17:00:00"}]});
    let sends = [
        (
            "departments",
            json!({"define": {"department_id": "prod", "name": "Production"}}),
        ),
        (
            "people",
            json!({"hire": {"person_id": "p1", "name": "Li Wei", "department_id": "prod", "badge": "1001", "hired_on": "2026-11-01"}}),
        ),
        (
            "schedules",
            json!({"define_shift": {"shift_id": "day", "name": "Day", "day": day}}),
        ),
        (
            "rules",
            json!({"create": {"rule_id": "plant", "name": "Plant", "zone": "Asia/Shanghai", "kind": {"Shifts": {"shifts": ["day"]}}}}),
        ),
        (
            "rules",
            json!({"set_members": {"rule_id": "plant", "departments": ["prod"]}}),
        ),
        (
            "schedules",
            json!({"import": {"rule_id": "plant", "sheet": {"rows": [["账号", "2026-12-03"], ["p1", "Day"]]}}}),
        ),
        (
            "requests",
            json!({"calibrate": {"calibration_id": "c1", "person_id": "p1", "date": "2026-12-02", "target": "Day", "status": "Normal", "reason": "reader broken"}}),
        ),
    ];
    for (i, (family, command)) in sends.iter().enumerate() {
        let body = json!({"command_id": format!("py-{i}"), "actor": "hr-wang", "command": command});
        for expected in ["applied", "already_done"] {
            let out = command_py(&url, "acme", family, &body);
            assert!(
                out.status.success(),
                "{family} {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(answer["outcome"], expected, "{family} {i}");
        }
    }
    let refused = command_py(
        &url,
        "acme",
        "people",
        &json!({"command_id": "py-bad", "actor": "hr-wang", "command": {"hire": {"person_id": "p2", "name": "Wang Fang", "department_id": "prod", "badge": "1001", "hired_on": "2026-11-01"}}}),
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("409 ") && stderr.contains("badge number 1001 already belongs to p1"),
        "{stderr}"
    );
}

#[test]
fn checked_in_command_schemas_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/json/commands");
    let bless = std::env::var_os("LEDGERCLOCK_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, schema) in commands::service::schemas() {
        let mut text = serde_json::to_string_pretty(&schema).unwrap();
        text.push('\n');
        let file = dir.join(format!("{name}.schema.json"));
        if std::fs::read_to_string(&file).unwrap_or_default() != text {
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, text).unwrap();
            } else {
                stale.push(file.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale command schemas (LEDGERCLOCK_BLESS=1 cargo test -p commands): {stale:?}"
    );
}
