//! The binary as a user runs it: real processes, a real nats-server, real signals.

mod limits;
mod readme;
mod reports;
mod supervision;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_attendance");

fn attendance(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts `attendance up` on `data` and `port` with `extra` arguments and returns it once
/// it has printed its banner. Its stdout keeps being drained so it never blocks.
fn spawn_up(data: &std::path::Path, port: u16, extra: &[&str]) -> Child {
    spawn_up_told(data, port, extra).0
}

/// What `up` said before it was up: the gateway's address and the embedded server's pid.
#[derive(Debug, Clone)]
pub struct Told {
    pub gateway: std::net::SocketAddr,
    pub nats_pid: Option<u32>,
}

fn spawn_up_told(data: &std::path::Path, port: u16, extra: &[&str]) -> (Child, Told) {
    let mut child = Command::new(BIN)
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--port",
            &port.to_string(),
            "--data",
        ])
        .arg(data)
        .args(extra)
        .env_remove("LEDGERCLOCK_NATS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut nats_pid = None;
    let banner = lines
        .by_ref()
        .map(Result::unwrap)
        .inspect(|l| {
            if let Some(rest) = l.strip_prefix("embedded nats-server pid ") {
                nats_pid = rest.split(' ').next().and_then(|p| p.parse().ok());
            }
        })
        .find(|l| l.contains("Ledgerclock is up"))
        .expect("up prints its banner");
    assert!(banner.contains(&port.to_string()));
    let gateway = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .expect("the banner names the gateway's address");
    std::thread::spawn(move || lines.for_each(drop));
    (child, Told { gateway, nats_pid })
}

fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// `attendance up` on a free port and a temporary data directory, returned once it says
/// it is up. Killed on drop if a test fails before stopping it.
struct Up {
    child: Child,
    url: String,
    told: Told,
    _data: tempfile::TempDir,
}

impl Up {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let port = ledger::nats_server::free_port().unwrap();
        let (child, told) = spawn_up_told(data.path(), port, &[]);
        Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            told,
            _data: data,
        }
    }

    fn interrupt(&mut self) -> std::process::ExitStatus {
        signal(&self.child, nix::sys::signal::Signal::SIGINT);
        self.child.wait().unwrap()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // Only reached with the process still running when a test failed early.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until nothing listens on `port` any more; false if something still does after
/// a generous while (the server was orphaned).
fn port_closes(port: u16) -> bool {
    (0..400).any(|_| {
        let closed = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
        if !closed {
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        closed
    })
}

#[test]
fn help_lists_every_subcommand() {
    let out = attendance(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for sub in [
        "up", "gateway", "admin", "streams", "events", "replay", "bench",
    ] {
        assert!(
            text.contains(&format!("  {sub} ")),
            "--help lacks {sub}:\n{text}"
        );
    }
}

/// The demo tenant's events: the device's binding, 3 departments, 5 hires, 2 rules with
/// their members, 2 shifts, a week's schedule, a leave, a make-up asked and approved, a
/// calibration, and the device's punches.
const DEMO_EVENTS: usize = 21;

#[test]
fn up_serves_streams_and_demo_data_then_stops_cleanly_on_ctrl_c() {
    let mut up = Up::start();

    let streams = attendance(&["streams", "--nats", &up.url]);
    assert!(streams.status.success());
    let table = stdout(&streams);
    assert_eq!(table.matches("LC_EVENTS_P").count(), 8, "{table}");

    let tail = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "demo"]);
    assert!(tail.status.success());
    let events: Vec<schemas::Envelope> = stdout(&tail)
        .lines()
        .map(|l| schemas::Envelope::from_json(l).unwrap())
        .collect();
    // The device's binding, the company set up through commands, the punches.
    assert_eq!(events.len(), DEMO_EVENTS);
    assert!(events.iter().any(|e| e.event.kind() == "DeviceBound"));
    assert!(
        events
            .iter()
            .filter(|e| !matches!(e.event.kind(), "DeviceBound" | "PunchesRecorded"))
            .all(|e| e.command_id.is_some()),
        "the demo is written through commands"
    );
    assert!(events.iter().any(|e| e.event.kind() == "PunchesRecorded"));

    let status = up.interrupt();
    assert!(status.success(), "up exits 0 on Ctrl-C, got {status}");
    // The embedded server went with it: nothing answers on its port any more.
    let port: u16 = up.url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_killed_up_takes_its_nats_server_with_it() {
    // Regression: SIGKILL of `attendance up` used to orphan the embedded nats-server.
    let mut up = Up::start();
    let port: u16 = up.url.rsplit(':').next().unwrap().parse().unwrap();
    up.child.kill().unwrap();
    up.child.wait().unwrap();
    assert!(
        port_closes(port),
        "nats-server on {port} outlived its parent"
    );
}

#[test]
fn a_second_up_on_the_same_data_loads_no_demo_twice() {
    let data = tempfile::tempdir().unwrap();
    let port = ledger::nats_server::free_port().unwrap();
    for _ in 0..2 {
        let mut up = spawn_up(data.path(), port, &[]);
        signal(&up, nix::sys::signal::Signal::SIGTERM);
        assert!(up.wait().unwrap().success());
    }
    // Read the store back with a third run and count the demo tenant's events.
    let mut up = spawn_up(data.path(), port, &["--no-demo"]);
    let url = format!("nats://127.0.0.1:{port}");
    let tail = attendance(&["events", "tail", "--nats", &url, "--tenant", "demo"]);
    signal(&up, nix::sys::signal::Signal::SIGINT);
    assert!(up.wait().unwrap().success());
    assert_eq!(
        stdout(&tail).lines().count(),
        DEMO_EVENTS,
        "the store survived restarts, once"
    );
}

#[test]
fn events_append_refuses_a_bad_file_whole_and_dedupes_a_good_one() {
    let mut up = Up::start();
    let tail = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "demo"]);
    let demo = stdout(&tail);
    let moved = demo.replace("\"tenant\":\"demo\"", "\"tenant\":\"copy\"");

    let mut bad = tempfile::NamedTempFile::new().unwrap();
    writeln!(bad, "{moved}{{\"not\": \"an envelope\"}}").unwrap();
    let bad_path = bad.path().to_str().unwrap();
    let out = attendance(&["events", "append", "--nats", &up.url, "--file", bad_path]);
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(":{}:", DEMO_EVENTS + 1)) && err.contains("nothing was appended"),
        "{err}"
    );
    let copy = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "copy"]);
    assert_eq!(stdout(&copy), "", "a refused file appends nothing");

    let mut good = tempfile::NamedTempFile::new().unwrap();
    write!(good, "{moved}").unwrap();
    let path = good.path().to_str().unwrap();
    let first = attendance(&["events", "append", "--nats", &up.url, "--file", path]);
    assert!(first.status.success());
    assert_eq!(
        stdout(&first).trim(),
        format!("appended {DEMO_EVENTS} events (0 already present)")
    );
    let again = attendance(&["events", "append", "--nats", &up.url, "--file", path]);
    assert_eq!(
        stdout(&again).trim(),
        format!("appended 0 events ({DEMO_EVENTS} already present)")
    );
    let copy = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "copy"]);
    assert_eq!(stdout(&copy).lines().count(), DEMO_EVENTS);
    up.interrupt();
}

#[test]
fn commands_without_a_server_fail_fast_with_a_reason() {
    let port = ledger::nats_server::free_port().unwrap();
    let out = attendance(&["streams", "--nats", &format!("nats://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

#[test]
fn a_device_bound_to_one_tenant_cannot_be_bound_by_another() {
    let mut up = Up::start();
    let bind = |tenant: &str| {
        attendance(&[
            "admin",
            "device",
            "bind",
            "--nats",
            &up.url,
            "--tenant",
            tenant,
            "--sn",
            "CQZ7224460246",
            "--name",
            "Front door",
            "--zone",
            "Asia/Shanghai",
        ])
    };
    let first = bind("acme");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        stdout(&first).trim(),
        "bound CQZ7224460246 to acme (Asia/Shanghai)"
    );

    let rival = bind("globex");
    assert_eq!(rival.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&rival.stderr).contains("bound to another tenant"));
    let globex = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "globex"]);
    assert_eq!(stdout(&globex), "", "a refused command appends nothing");

    let bad_zone = attendance(&[
        "admin",
        "device",
        "bind",
        "--nats",
        &up.url,
        "--tenant",
        "acme",
        "--sn",
        "X1",
        "--name",
        "n",
        "--zone",
        "Mars/Olympus",
    ]);
    assert!(String::from_utf8_lossy(&bad_zone.stderr).contains("unknown time zone"));
    assert!(!bad_zone.status.success());

    let unbind = attendance(&[
        "admin",
        "device",
        "unbind",
        "--nats",
        &up.url,
        "--tenant",
        "acme",
        "--sn",
        "CQZ7224460246",
    ]);
    assert!(unbind.status.success());
    assert!(
        bind("globex").status.success(),
        "an unbound SN can be bound again"
    );
    up.interrupt();
}

/// A device that was offline is read from its USB export: every good record stored
/// once, bad lines rejected alone and counted, and the same file again adds nothing.
#[test]
fn a_usb_export_is_imported_once_and_its_bad_lines_alone_are_rejected() {
    let mut up = Up::start();
    let export = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gateway/testdata/real-devices/caoka_1_attlog.dat");
    let export = export.to_str().unwrap();
    let device = |verb: &str, extra: &[&str]| {
        let mut args = vec![
            "admin", "device", verb, "--nats", &up.url, "--tenant", "acme", "--sn", "CAOKA1",
        ];
        args.extend_from_slice(extra);
        attendance(&args)
    };
    let unknown = device("import", &["--file", export]);
    assert_eq!(unknown.status.code(), Some(65), "an unbound SN is refused");
    let events = |up: &Up| {
        stdout(&attendance(&[
            "events", "tail", "--nats", &up.url, "--tenant", "acme",
        ]))
        .lines()
        .count()
    };
    assert_eq!(events(&up), 0, "a refused import writes nothing");

    let bind = device(
        "bind",
        &[
            "--name",
            "Workshop",
            "--zone",
            "Asia/Shanghai",
            "--records-from",
            "2019-01-01",
        ],
    );
    assert!(
        bind.status.success(),
        "{}",
        String::from_utf8_lossy(&bind.stderr)
    );
    let first = device("import", &["--file", export]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let said = stdout(&first);
    // The file's 10,943 lines: punches, exact duplicates, and corrupted or
    // clock-reset lines, each counted.
    let number = |after: &str| -> usize {
        let at = said
            .find(after)
            .unwrap_or_else(|| panic!("{after:?} in {said}"));
        said[..at]
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let punches = number(" punches from");
    let duplicates = number(" already stored");
    let rejected = number(" lines rejected");
    assert!(punches > 10_000, "{said}");
    assert_eq!(duplicates, 0, "{said}");
    assert!(rejected > 0, "{said}");
    // Repeated corrupted lines are rejected lines like any other, stored once.
    assert!(number(" of them stored before") > 0, "{said}");
    assert_eq!(
        punches + duplicates + rejected,
        10_943,
        "every line answered for: {said}"
    );
    let stored = events(&up);

    let again = device("import", &["--file", export]);
    assert!(again.status.success());
    assert!(
        stdout(&again).starts_with("imported 0 punches"),
        "{}",
        stdout(&again)
    );
    assert!(
        stdout(&again).contains(&format!(
            "({punches} already stored; {rejected} lines rejected"
        )),
        "{}",
        stdout(&again)
    );
    assert_eq!(events(&up), stored, "the same file again adds nothing");
    up.interrupt();
}

/// Defines departments of tenant `acme` through the CLI, as an administrator would
/// before hiring into them.
fn define_departments(url: &str, ids: &[&str]) {
    for id in ids {
        let out = attendance(&[
            "admin",
            "department",
            "define",
            "--id",
            id,
            "--name",
            id,
            "--nats",
            url,
            "--tenant",
            "acme",
        ]);
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
fn people_are_hired_updated_and_removed_with_badge_rules() {
    let mut up = Up::start();
    let person = |args: &[&str]| {
        let mut all = vec!["admin", "person"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--nats", &up.url, "--tenant", "acme"]);
        attendance(&all)
    };
    define_departments(&up.url, &["eng"]);
    let hired = person(&[
        "hire",
        "--id",
        "p1",
        "--name",
        "Li Wei",
        "--department",
        "eng",
        "--badge",
        "1001",
    ]);
    assert_eq!(stdout(&hired).trim(), "hired p1");
    let taken = person(&[
        "hire",
        "--id",
        "p2",
        "--name",
        "Wang Fang",
        "--department",
        "eng",
        "--badge",
        "1001",
    ]);
    assert_eq!(taken.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("badge number 1001 already belongs to p1")
    );
    let long = person(&[
        "hire",
        "--id",
        "p2",
        "--name",
        "Wang Fang",
        "--department",
        "eng",
        "--badge",
        "1234567890",
    ]);
    assert_eq!(long.status.code(), Some(65));
    assert_eq!(
        stdout(&person(&["update", "--id", "p1", "--badge", "2002"])).trim(),
        "updated p1"
    );
    assert_eq!(stdout(&person(&["remove", "--id", "p1"])).trim(), "p1 left");
    let again = person(&["remove", "--id", "p1"]);
    assert_eq!(again.status.code(), Some(65));
    let tail = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "acme"]);
    let kinds: Vec<_> = stdout(&tail)
        .lines()
        .map(|l| schemas::Envelope::from_json(l).unwrap().event.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "DepartmentDefined",
            "PersonHired",
            "BadgeNumberAssigned",
            "PersonLeft"
        ],
        "refusals appended nothing"
    );
    up.interrupt();
}

#[test]
fn a_device_scope_pushes_its_roster_and_people_changes_follow() {
    let mut up = Up::start();
    let run = |args: &[&str]| {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--nats", &up.url, "--tenant", "acme"]);
        attendance(&all)
    };
    let hire = |id: &str, dept: &str, badge: &str| {
        let out = run(&[
            "person",
            "hire",
            "--id",
            id,
            "--name",
            id,
            "--department",
            dept,
            "--badge",
            badge,
        ]);
        assert!(out.status.success(), "{out:?}");
    };
    define_departments(&up.url, &["ops", "office"]);
    hire("p1", "ops", "1");
    hire("p2", "office", "2");
    let bound = run(&[
        "device",
        "bind",
        "--sn",
        "GATE1",
        "--name",
        "Gate",
        "--zone",
        "Asia/Shanghai",
    ]);
    assert!(bound.status.success(), "{bound:?}");
    let unknown = run(&[
        "device",
        "scope",
        "--sn",
        "GATE1",
        "--departments",
        "nowhere",
    ]);
    assert_eq!(unknown.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("department nowhere does not exist"));
    let scoped = run(&["device", "scope", "--sn", "GATE1", "--departments", "ops"]);
    assert_eq!(
        stdout(&scoped),
        "scope of GATE1 set\n  GATE1: queued DATA UPDATE USERINFO PIN=1 (p1, p1, User)\n"
    );
    hire("p3", "ops", "3");
    // A registrar may enrol people at the device; someone outside its scope is refused.
    let outside = run(&[
        "device",
        "privilege",
        "--sn",
        "GATE1",
        "--person",
        "p2",
        "--privilege",
        "admin",
    ]);
    assert_eq!(outside.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&outside.stderr).contains("not in the scope"),
        "{outside:?}"
    );
    let registrar = run(&[
        "device",
        "privilege",
        "--sn",
        "GATE1",
        "--person",
        "p3",
        "--privilege",
        "registrar",
    ]);
    assert_eq!(
        stdout(&registrar),
        "p3 is Registrar on GATE1\n  GATE1: queued DATA UPDATE USERINFO PIN=3 (p3, p3, Registrar)\n"
    );
    let moved = run(&["person", "update", "--id", "p1", "--department", "office"]);
    assert_eq!(
        stdout(&moved),
        "updated p1\n  GATE1: queued DATA DELETE USERINFO PIN=1 (p1)\n"
    );
    // A scope that disables rather than deletes (eteams' 自动禁用): p3 stays on the
    // device, unable to punch.
    let disabling = run(&[
        "device",
        "scope",
        "--sn",
        "GATE1",
        "--departments",
        "ops",
        "--on-leaving-scope",
        "disable",
    ]);
    assert_eq!(stdout(&disabling), "scope of GATE1 set\n");
    let left = run(&["person", "update", "--id", "p3", "--department", "office"]);
    assert_eq!(
        stdout(&left),
        "updated p3\n  GATE1: queued DATA UPDATE USERINFO PIN=3 disabled (p3)\n"
    );
    let tail = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "acme"]);
    let commands: Vec<String> = stdout(&tail)
        .lines()
        .filter_map(|l| match schemas::Envelope::from_json(l).unwrap().event {
            schemas::Event::DeviceCommandQueued(q) => {
                Some(format!("{}:{:?}", q.command_id, q.command))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        commands,
        [
            "1:UpdateUser { badge_number: BadgeNumber(\"1\"), name: \"p1\", privilege: User, card: None, disabled: false }",
            "2:UpdateUser { badge_number: BadgeNumber(\"3\"), name: \"p3\", privilege: User, card: None, disabled: false }",
            "3:UpdateUser { badge_number: BadgeNumber(\"3\"), name: \"p3\", privilege: Registrar, card: None, disabled: false }",
            "4:DeleteUser { badge_number: BadgeNumber(\"1\") }",
            "5:UpdateUser { badge_number: BadgeNumber(\"3\"), name: \"p3\", privilege: Registrar, card: None, disabled: true }",
        ]
    );
    up.interrupt();
}

fn fixture(name: &str) -> String {
    format!("{}/../replay-fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn replay_prints_the_worked_examples_from_a_file() {
    let file = fixture("domain-worked-examples.jsonl");
    let out = attendance(&["replay", "--events", &file, "daily"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    for expected in [
        "absent 9h",
        "late 5h25m, early leave 3h34m52s",
        "late 7h27m",
        "曹俊",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert_eq!(text.lines().count(), 5, "a header and four people:\n{text}");

    let csv = attendance(&[
        "replay", "--events", &file, "--format", "csv", "daily", "--person", "p-xu",
    ]);
    let csv = stdout(&csv);
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("p-xu,2019-02-18,徐"),
        "{csv}"
    );

    let raw = attendance(&["replay", "--events", &file, "raw", "--device", "CLOUD236"]);
    let raw = stdout(&raw);
    assert!(
        raw.contains("2 punches") && raw.contains("19:59:00"),
        "{raw}"
    );

    let json = attendance(&[
        "replay",
        "--events",
        &file,
        "--format",
        "json",
        "daily",
        "--from",
        "2019-02-19",
    ]);
    assert_eq!(
        stdout(&json),
        "",
        "no punches after the 18th, and --to defaults to the last punch"
    );
}

#[test]
fn replay_refuses_a_file_with_a_bad_line_and_names_it() {
    let good = std::fs::read_to_string(fixture("resent-history.jsonl")).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut lines = good.lines();
    writeln!(file, "{}", lines.next().unwrap()).unwrap();
    writeln!(file, "{}", lines.next().unwrap()).unwrap();
    writeln!(file, "{{\"event\": \"not an envelope\"}}").unwrap();
    let out = attendance(&["replay", "--events", file.path().to_str().unwrap(), "daily"]);
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(stdout(&out), "", "no partial report");

    let missing = attendance(&["replay", "daily"]);
    assert_eq!(missing.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--events"));
}

#[test]
fn replay_from_a_tenant_stream_matches_the_file() {
    let mut up = Up::start();
    let file = fixture("calibration-after-make-up.jsonl");
    let append = attendance(&["events", "append", "--nats", &up.url, "--file", &file]);
    assert!(
        append.status.success(),
        "{}",
        String::from_utf8_lossy(&append.stderr)
    );
    for report in ["daily", "raw"] {
        let from_file = attendance(&["replay", "--events", &file, "--format", "json", report]);
        let from_nats = attendance(&[
            "replay", "--nats", &up.url, "--tenant", "acme", "--format", "json", report,
        ]);
        assert!(
            from_nats.status.success(),
            "{}",
            String::from_utf8_lossy(&from_nats.stderr)
        );
        assert_eq!(stdout(&from_file), stdout(&from_nats), "{report}");
        assert!(!stdout(&from_nats).is_empty());
    }
    up.interrupt();
}

#[test]
fn logs_off_a_terminal_are_plain_and_a_closed_pipe_is_not_an_error() {
    // Regression: log files carried ANSI colour codes, and `replay ... | head` ended in
    // "Broken pipe".
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("punches.jsonl");
    let zone = schemas::ids::ZoneName::parse("Asia/Shanghai").unwrap();
    let tenant = schemas::ids::TenantId::parse("acme").unwrap();
    let sn = schemas::ids::DeviceSn::from("PIPE1");
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap();
    let mut lines = String::new();
    for i in 0..5_000 {
        let local = start + chrono::Duration::minutes(i);
        let punch = schemas::events::Punch::from_device(
            sn.clone(),
            schemas::ids::BadgeNumber::from(format!("{}", 100 + i % 40).as_str()),
            local,
            zone.clone(),
            local.and_utc() - chrono::Duration::hours(8),
        );
        let envelope = schemas::Envelope::new(
            tenant.clone(),
            schemas::Actor::Device { sn: sn.clone() },
            schemas::events::PunchRecorded { punch },
            chrono::Utc::now(),
        );
        lines.push_str(&envelope.to_json().unwrap());
        lines.push('\n');
    }
    std::fs::write(&file, lines).unwrap();
    let mut child = Command::new(BIN)
        .args(["-v", "replay", "--events"])
        .arg(&file)
        .args(["raw", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader has what it wanted and goes, as `head` does.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(stderr.contains("DEBUG"), "-v logs: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes off a terminal: {stderr}"
    );
}
