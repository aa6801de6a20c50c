//! Reports as a user asks for them: `attendance report` and a NATS client nobody here
//! wrote (nats-py) against a running system. (Workers killed during an ingest are in
//! `tests/projections/`, a binary of their own: they load the machine.)

use std::path::Path;
use std::process::Command;
use std::time::Duration as StdDuration;

use serde_json::{Value, json};

use crate::{BIN, Up, stdout};

fn report(up: &Up, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("report")
        .args(args)
        .env("LEDGERCLOCK_NATS", &up.url)
        .output()
        .unwrap()
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn checkout() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Runs `scripts/ask.py` (nats-py) against `url`.
fn ask_py(url: &str, args: &[&str]) -> std::process::Output {
    let root = checkout();
    assert!(
        root.join(".tools/python/nats").exists(),
        "nats-py is missing: ./scripts/setup installs it into .tools/python"
    );
    Command::new("python3")
        .arg(root.join("scripts/ask.py"))
        .args(["--nats", url])
        .args(args)
        .env("PYTHONPATH", root.join(".tools/python"))
        .output()
        .expect("python3 runs")
}

/// A simulated device punches badge 1001; returns p-1001's today once it shows the punch.
fn punch_and_see(up: &Up) -> Value {
    let gateway = up.told.gateway.to_string();
    let punched = Command::new(BIN)
        .args([
            "simulate",
            "--gateway",
            &gateway,
            "--sn",
            "DEMO0000000001",
            "--punch",
            "1001",
        ])
        .output()
        .unwrap();
    assert!(
        punched.status.success(),
        "{}",
        String::from_utf8_lossy(&punched.stderr)
    );
    let mut row = Value::Null;
    for _ in 0..100 {
        let out = report(up, &["daily", "--person", "p-1001", "--format", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        row = json_lines(&out).into_iter().next().unwrap_or_default();
        if row["day"]["punch_count"] == json!(1) {
            break;
        }
        std::thread::sleep(StdDuration::from_millis(50));
    }
    row
}

#[test]
fn reports_come_from_the_service_a_punch_shows_today_and_survive_kill_9() {
    let mut up = Up::start();
    // Today's row shows the punch, in progress (the day has not ended).
    let row = punch_and_see(&up);
    assert_eq!(row["day"]["punch_count"], json!(1), "{row}");
    assert_eq!(row["day"]["in_progress"], json!(true), "{row}");
    assert_eq!(row["person"], json!("Li Wei"));
    assert_eq!(row["badge_number"], json!("1001"));

    // The table a person reads, and refusals with exit codes.
    let table = report(&up, &["daily"]);
    assert!(stdout(&table).contains("Li Wei"), "{}", stdout(&table));
    for (args, code) in [
        (vec!["daily", "--department", "nowhere"], 65),
        (vec!["daily", "--person", "nobody"], 65),
        (vec!["raw", "--device", "NOSUCHDEVICE"], 65),
        (
            vec!["daily", "--from", "2026-01-10", "--to", "2026-01-01"],
            64,
        ),
        (vec!["daily", "--tenant", "nosuchtenant"], 65),
    ] {
        let out = report(&up, &args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    }

    // CSV with a BOM and headers that say original or calibrated; XLSX a workbook with
    // WeCom's sheet name and the header frozen.
    let csv = report(&up, &["monthly", "--format", "csv"]);
    assert!(csv.stdout.starts_with("\u{feff}".as_bytes()));
    let header = String::from_utf8_lossy(&csv.stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        header.contains("original late (s)") && header.contains("calibrated late (s)"),
        "{header}"
    );
    let dir = tempfile::tempdir().unwrap();
    let xlsx = dir.path().join("month.xlsx");
    let out = report(
        &up,
        &[
            "monthly",
            "--format",
            "xlsx",
            "--output",
            xlsx.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened = Command::new("python3")
        .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read('xl/workbook.xml').decode()); print(z.read('xl/worksheets/sheet1.xml').decode()[:3000])"])
        .arg(&xlsx)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&opened.stdout);
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    assert!(text.contains("月度汇总"), "{text}");
    assert!(text.contains("state=\"frozen\""), "{text}");

    // A client nobody here wrote.
    let py = ask_py(&up.url, &["demo", "daily", r#"{"people": ["p-1001"]}"#]);
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let rows = json_lines(&py);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["day"]["punch_count"], json!(1));
    let refused = ask_py(&up.url, &["demo", "daily", r#"{"people": ["nobody"]}"#]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).starts_with("404"));

    // Killed, started again on the same data: the same answers.
    let week = [
        "daily",
        "--from",
        "2026-11-01",
        "--to",
        "2026-12-31",
        "--format",
        "json",
    ];
    let before = stdout(&report(&up, &week));
    up.child.kill().unwrap();
    up.child.wait().unwrap();
    let port: u16 = up.url.rsplit(':').next().unwrap().parse().unwrap();
    let data = up._data.path().to_owned();
    let mut again = None;
    for _ in 0..50 {
        if !crate::port_closes(port) {
            std::thread::sleep(StdDuration::from_millis(100));
            continue;
        }
        again = Some(crate::spawn_up(&data, port, &[]));
        break;
    }
    let mut again = again.expect("the port is free again");
    let mut after = String::new();
    for _ in 0..100 {
        let out = report(&up, &week);
        after = stdout(&out);
        if out.status.success() && after == before {
            break;
        }
        std::thread::sleep(StdDuration::from_millis(100));
    }
    assert_eq!(after, before);
    crate::signal(&again, nix::sys::signal::Signal::SIGINT);
    again.wait().unwrap();
}

#[test]
fn as_of_and_diff_answer_the_past_and_name_what_changed() {
    let up = Up::start();
    let before = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(StdDuration::from_millis(20));
    let row = punch_and_see(&up);
    assert_eq!(row["day"]["punch_count"], json!(1), "{row}");
    let date = row["date"].as_str().unwrap().to_owned();
    std::thread::sleep(StdDuration::from_millis(20));
    let after = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    // As it stood after the punch: the punch is there; before it: it is not.
    let as_of = |at: &str| {
        let out = report(
            &up,
            &[
                "as-of", "--at", at, "--person", "p-1001", "--from", &date, "--format", "json",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out)
    };
    let now_rows = as_of(&after);
    assert_eq!(now_rows.len(), 1, "{now_rows:?}");
    assert_eq!(now_rows[0]["person"], json!("Li Wei"));
    assert_eq!(now_rows[0]["date"], json!(date));
    assert_eq!(
        now_rows[0]["day"]["punch_count"],
        json!(1),
        "{}",
        now_rows[0]
    );
    let then_rows = as_of(&before);
    assert_eq!(then_rows.len(), 1, "{then_rows:?}");
    assert_eq!(
        then_rows[0]["day"]["punch_count"],
        json!(0),
        "{}",
        then_rows[0]
    );
    let table = stdout(&report(
        &up,
        &[
            "as-of", "--at", &after, "--person", "p-1001", "--from", &date,
        ],
    ));
    assert!(table.contains("Li Wei"), "{table}");

    // The diff names the changed day and the event that changed it.
    let out = report(
        &up,
        &[
            "diff", "--since", &before, "--until", &after, "--person", "p-1001", "--from", &date,
            "--format", "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = diff["rows"].as_array().unwrap();
    let changed: Vec<&Value> = rows.iter().filter(|r| r["row"] == "changed").collect();
    assert_eq!(changed.len(), 1, "{diff}");
    assert_eq!(changed[0]["date"], json!(date));
    assert_eq!(changed[0]["before"]["day"]["punch_count"], json!(0));
    assert_eq!(changed[0]["after"]["day"]["punch_count"], json!(1));
    let events: Vec<&Value> = rows.iter().filter(|r| r["row"] == "event").collect();
    assert!(
        events
            .iter()
            .any(|e| e["kind"].as_str().unwrap().starts_with("Punch")),
        "{diff}"
    );
    assert!(diff["cost"]["events_read"].as_u64().unwrap() > 0, "{diff}");
    let table = stdout(&report(
        &up,
        &[
            "diff", "--since", &before, "--until", &after, "--person", "p-1001", "--from", &date,
        ],
    ));
    assert!(table.starts_with("1 day(s) changed"), "{table}");

    // Nothing changed in an interval with no events; and refusals say why.
    let out = report(
        &up,
        &[
            "diff", "--since", &after, "--until", &after, "--person", "p-1001", "--from", &date,
            "--format", "json",
        ],
    );
    let diff: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(diff["rows"], json!([]), "{diff}");
    for (args, code) in [
        (
            vec![
                "as-of", "--at", &after, "--person", "nobody", "--from", &date,
            ],
            65,
        ),
        (
            vec![
                "diff", "--since", &after, "--until", &before, "--person", "p-1001", "--from",
                &date,
            ],
            64,
        ),
    ] {
        let out = report(&up, &args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Explain names the punch's event, and a day without a rule says so.
    let out = report(
        &up,
        &[
            "explain", "--person", "p-1001", "--date", &date, "--format", "json",
        ],
    );
    let explained: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        explained["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["fact"].as_str().is_some_and(|f| f.starts_with("punch")))
            .count(),
        1,
        "{explained}"
    );
    let out = report(
        &up,
        &["explain", "--person", "p-1001", "--date", "1999-01-01"],
    );
    assert!(out.status.success());
    assert!(stdout(&out).contains("no rule"), "{}", stdout(&out));
}
