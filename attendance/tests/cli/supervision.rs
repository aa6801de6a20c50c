//! `attendance up` keeps its embedded NATS server running.

use crate::{Up, attendance, stdout};

#[test]
fn up_starts_its_nats_server_again_when_it_is_killed() {
    let mut up = Up::start();
    let pid = up.told.nats_pid.expect("up names its nats-server's pid");
    let before = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "demo"]);
    assert!(before.status.success());
    let demo_events = stdout(&before).lines().count();
    assert!(demo_events > 0);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Back on the same port with the same store: what was acknowledged is there.
    let mut after = None;
    for _ in 0..200 {
        let out = attendance(&["events", "tail", "--nats", &up.url, "--tenant", "demo"]);
        if out.status.success() {
            after = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let after = after.expect("the nats-server is back");
    assert_eq!(stdout(&after).lines().count(), demo_events);
    // The gateway reconnects, stores again, and says so.
    let healthy = (0..200).any(|_| {
        let ok = crate::limits::get(up.told.gateway, "/health").starts_with("HTTP/1.1 200");
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(healthy, "the gateway is healthy again");
    let line = format!(
        "1001\t{}\t0\t15\t0\t0\n",
        (chrono::Utc::now() + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M:%S")
    );
    let answer = crate::limits::post(
        up.told.gateway,
        "/iclock/cdata?SN=DEMO0000000001&table=ATTLOG",
        &line,
    );
    assert!(answer.ends_with("OK: 1\n"), "{answer}");
    let status = up.interrupt();
    assert!(status.success(), "{status:?}");
}
