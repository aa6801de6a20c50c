//! The README, run as a new user would run it: every `sh` block, top to bottom, against
//! one `attendance up`, so the README cannot drift from what the system does.
//!
//! How a block is run:
//! - the first block is the quick start: its `./scripts/up` is the `up` this test
//!   starts (on free ports, a temporary data directory), its `./scripts/test` is this
//!   suite;
//! - `attendance` is the binary this suite built (`cargo run --release -p attendance
//!   --` and `./target/release/attendance` too), from the checkout's root, with
//!   `127.0.0.1:8080` and `nats://127.0.0.1:4222` standing for the test's gateway and
//!   server; benchmarks get small size flags;
//! - a command ending in `#=> text` must print `text`; one ending in `# exit N` must
//!   exit with N; one whose comment says `(until Ctrl-C)` must still run after 2 s,
//!   and is then stopped; any other failing command fails the test.

use std::path::Path;
use std::process::Command;

use crate::{BIN, spawn_up_told};

/// The `sh` blocks of `text`: (line where the block starts, its text).
fn sh_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some((n + 1, String::new())),
            (Some(_), "```") => blocks.push(current.take().expect("open block")),
            (Some((_, block)), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "a code block is not closed");
    blocks
}

/// The marker at the end of a command line, if any: what it says, and the command.
fn marker<'a>(line: &'a str, mark: &str) -> Option<(&'a str, &'a str)> {
    let at = line.rfind(mark)?;
    Some((line[..at].trim_end(), line[at + mark.len()..].trim()))
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The block as a bash script that checks what its markers say.
fn script(block: &str, gateway: &str, nats: &str) -> String {
    let block = block
        .replace("cargo run --release -p attendance --", "attendance")
        .replace("./target/release/attendance", "attendance")
        .replace("nats://127.0.0.1:4222", nats)
        .replace("127.0.0.1:8080", gateway);
    let mut out = String::from(
        r#"set -euo pipefail
attendance() {
  if [ "${1:-}" = bench ]; then
    case "${2:-}" in
      append) set -- "$@" --events 3000 --single 100 --batch 1000 ;;
      ingest) set -- "$@" --limit 2000 --devices 1,4 ;;
      replay) set -- "$@" --events 2000 --people 20 ;;
      projections) set -- "$@" --people 40 --days 14 --department-size 10 --queries 40 ;;
      polls) set -- "$@" --devices 40 --every 1 --seconds 2 --commands-per-second 10 ;;
      abuse) set -- "$@" --idle 300 --holders 1 --unknown-bodies 2 --unknown-body-mb 2 --history-lines 5000 ;;
    esac
  fi
  "$LEDGERCLOCK_BIN" "$@"
}
"#,
    );
    for line in block.lines() {
        if let Some((command, expected)) = marker(line, "#=> ") {
            out.push_str(&format!(
                "out=$({command})\nprintf '%s\\n' \"$out\"\ngrep -qF -- {} <<<\"$out\" || {{ echo 'expected '{}' from: '{} >&2; exit 1; }}\n",
                quoted(expected),
                quoted(expected),
                quoted(command)
            ));
        } else if let Some((command, code)) = marker(line, "# exit ") {
            let code: i32 = code
                .split_whitespace()
                .next()
                .and_then(|c| c.trim_end_matches([',', ':', ')']).parse().ok())
                .unwrap_or_else(|| panic!("`# exit N` needs a number: {line}"));
            out.push_str(&format!(
                "set +e\n{command}\nrc=$?\nset -e\n[ \"$rc\" = {code} ] || {{ echo \"expected exit {code}, got $rc from: \"{} >&2; exit 1; }}\n",
                quoted(command)
            ));
        } else if line.contains("(until Ctrl-C)") {
            let command = line.split(" #").next().unwrap_or(line).trim_end();
            out.push_str(&format!(
                "set -m\n{command} > /dev/null 2>&1 & pid=$!\nset +m\nsleep 2\nkill -0 $pid || {{ echo 'stopped early: '{} >&2; exit 1; }}\nkill -INT -- -$pid; wait $pid || true\n",
                quoted(command)
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn every_command_block_of_the_readme_runs_in_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the checkout");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = sh_blocks(&readme);
    let (_, quick_start) = &blocks[0];
    let commands: Vec<&str> = quick_start
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        commands,
        ["./scripts/up", "./scripts/test"],
        "the README starts with the two commands"
    );

    let data = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let port = ledger::nats_server::free_port().unwrap();
    let (mut up, told) = spawn_up_told(data.path(), port, &[]);
    let nats = format!("nats://127.0.0.1:{port}");
    let gateway = told.gateway.to_string();
    let mut failure = None;
    for (line, block) in &blocks[1..] {
        let output = Command::new("bash")
            .arg("-c")
            .arg(script(block, &gateway, &nats))
            .current_dir(root)
            .env("LEDGERCLOCK_BIN", BIN)
            .env("LEDGERCLOCK_NATS", &nats)
            .env("LEDGERCLOCK_GATEWAY", &gateway)
            .env("LEDGERCLOCK_LOG", "warn")
            .env("TMPDIR", scratch.path())
            .output()
            .unwrap();
        if !output.status.success() {
            failure = Some(format!(
                "README.md block at line {line} failed ({}):\n{block}\n--- stdout\n{}\n--- stderr\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
            break;
        }
    }
    let _ = up.kill();
    let _ = up.wait();
    if let Some(failure) = failure {
        panic!("{failure}");
    }
}

#[test]
fn markers_become_checks() {
    let script = script(
        "attendance streams\nattendance x #=> OK: 1\nattendance y # exit 65\nattendance events tail --follow   # new ones (until Ctrl-C)\n",
        "127.0.0.1:9",
        "nats://127.0.0.1:1",
    );
    assert!(script.contains("out=$(attendance x)"));
    assert!(script.contains("grep -qF -- 'OK: 1'"));
    assert!(script.contains("[ \"$rc\" = 65 ]"));
    assert!(script.contains("attendance events tail --follow > /dev/null 2>&1 & pid=$!"));
}
