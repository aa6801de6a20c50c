//! The gateway as its own process, held to 256 descriptors, against idle and slow
//! connections, huge bodies from an unknown SN and a large legal body: it keeps
//! answering devices, and what it holds stays bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use crate::{BIN, attendance};

/// One request on a fresh connection; the whole answer (empty if the connection was
/// refused or reset).
pub fn request(addr: SocketAddr, raw: &[u8]) -> String {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return String::new();
    };
    let mut answer = Vec::new();
    if stream.write_all(raw).is_ok() {
        let _ = stream.read_to_end(&mut answer);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

pub fn get(addr: SocketAddr, path: &str) -> String {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

pub fn post(addr: SocketAddr, path: &str, body: &str) -> String {
    request(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap()
}

fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn a_gateway_held_to_256_descriptors_keeps_answering_and_bounded() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(ledger::NatsServer::start(ledger::ServerOptions::default()))
        .unwrap();
    let url = server.url();
    let bound = attendance(&[
        "admin",
        "device",
        "bind",
        "--nats",
        &url,
        "--tenant",
        "acme",
        "--sn",
        "LIM0001",
        "--name",
        "Gate",
        "--zone",
        "Asia/Shanghai",
        "--records-from",
        "2020-01-01",
    ]);
    assert!(
        bound.status.success(),
        "{}",
        String::from_utf8_lossy(&bound.stderr)
    );
    let port = ledger::nats_server::free_port().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let gateway = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec {BIN} gateway --nats {url} --listen {addr} --head-timeout 1 --idle-timeout 1"
        ))
        .env("LEDGERCLOCK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = gateway.id();
    // Killed even when an assertion fails.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let gateway = Killed(gateway);
    let up = (0..200).any(|_| {
        let ok =
            TcpStream::connect(addr).is_ok() && get(addr, "/health").starts_with("HTTP/1.1 200");
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        ok
    });
    assert!(up, "the gateway answers its health check");

    // A thousand connections that say nothing, or a head that never ends.
    let mut held = Vec::new();
    for i in 0..1000 {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            if i % 3 == 0 {
                let _ = stream.write_all(b"GET /iclock/cdata?SN=");
            }
            held.push(stream);
        }
    }
    // Now, in Shanghai (UTC+8, no daylight saving).
    let line = format!(
        "1\t{}\t0\t1\t0\t0\n",
        (chrono::Utc::now() + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M:%S")
    );
    // A device whose connection is refused while every slot is young tries again
    // seconds later, as firmware does (`ErrorDelay`).
    let answered = (0..20).any(|_| {
        let answer = post(addr, "/iclock/cdata?SN=LIM0001&table=ATTLOG&Stamp=1", &line);
        let ok = answer.ends_with("OK: 1\n");
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        ok
    });
    assert!(answered, "a device is answered");
    assert!(descriptors(pid) <= 256, "{} descriptors", descriptors(pid));
    drop(held);
    // Until the gateway has closed them (some wait in its accept queue).
    let settled = (0..200).any(|_| {
        let health = get(addr, "/health");
        let ok = health.contains("\"open\":1,");
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        ok
    });
    assert!(settled, "the held connections are closed");

    // Eight 60 MB bodies from an unknown SN, at once.
    let sends: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                let size = 60 * 1024 * 1024;
                let head = format!(
                    "POST /iclock/cdata?SN=INTRUDER{i}&table=ATTLOG HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).unwrap();
                let chunk = vec![b'7'; 64 * 1024];
                let mut written = 0;
                while written < size && stream.write_all(&chunk).is_ok() {
                    written += chunk.len();
                }
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    for send in sends {
        let answer = send.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    }

    // The unknown bodies were refused unread: the old gateway buffered them whole,
    // 480 MB.
    let after_unknown = status_field(pid, "VmHWM:");
    assert!(after_unknown < 96 * 1024, "peak memory {after_unknown} kB");

    // A history of 100,000 lines in one body, then one three times as long. A
    // gateway that holds a body whole grows with it (the old one took about 140 MB
    // for the first); one that stores it piece by piece peaks at the same height for
    // both, whatever that height is on this machine's allocator and runtime.
    let history = |year: i32, lines: i64| -> String {
        let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap();
        (0..lines)
            .map(|i| {
                format!(
                    "{}\t{}\t0\t15\t0\t0\n",
                    1000 + i % 300,
                    (start + chrono::Duration::seconds(i * 7)).format("%Y-%m-%d %H:%M:%S")
                )
            })
            .collect()
    };
    let answer = post(
        addr,
        "/iclock/cdata?SN=LIM0001&table=ATTLOG&Stamp=2",
        &history(2024, 100_000),
    );
    assert!(
        answer.ends_with("OK: 100000\n"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    let after_first = status_field(pid, "VmHWM:");
    let answer = post(
        addr,
        "/iclock/cdata?SN=LIM0001&table=ATTLOG&Stamp=3",
        &history(2025, 300_000),
    );
    assert!(
        answer.ends_with("OK: 300000\n"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    let after_second = status_field(pid, "VmHWM:");
    eprintln!(
        "peak memory: {after_unknown} kB after the unknown bodies, {after_first} kB after \
         100,000 lines, {after_second} kB after 300,000 more"
    );
    assert!(
        after_second <= after_first + 32 * 1024,
        "memory grew with the body: {after_first} kB, then {after_second} kB"
    );
    assert!(after_second < 160 * 1024, "peak memory {after_second} kB");
    assert!(descriptors(pid) <= 256);
    drop(gateway);
    drop(server);
}
