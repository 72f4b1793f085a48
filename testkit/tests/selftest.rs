//! The helpers against real child processes (`sh`): a deadline kills, a
//! full pipe never blocks, a missing program is reported with its hint.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use ctower_testkit::process::{self, RunError, Spawned};
use ctower_testkit::services::{Program, MOSQUITTO};
use ctower_testkit::wait;
use std::process::Command;
use std::time::{Duration, Instant};

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

#[test]
fn a_child_past_its_deadline_is_killed_with_its_stderr_tail() {
    let started = Instant::now();
    let err = process::try_run(
        &mut sh("echo about to hang >&2; exec sleep 30"),
        Duration::from_millis(300),
    )
    .expect_err("must time out");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    match &err {
        RunError::TimedOut { stderr, .. } => {
            assert_eq!(String::from_utf8_lossy(stderr), "about to hang\n")
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(err.to_string().contains("about to hang"), "{err}");
}

#[test]
fn a_child_writing_more_than_a_pipe_holds_finishes() {
    // 1 MiB on each stream: far more than a pipe buffer (64 KiB on Linux).
    let out = process::run_ok(
        &mut sh("head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2"),
        "a chatty child",
        Duration::from_secs(30),
    );
    assert_eq!((out.stdout.len(), out.stderr.len()), (1 << 20, 1 << 20));
}

#[test]
#[should_panic(expected = "exit 3")]
fn a_failing_child_fails_run_ok_with_its_output() {
    process::run_ok(
        &mut sh("echo exit 3 coming >&2; exit 3"),
        "a failing child",
        Duration::from_secs(30),
    );
}

#[test]
fn a_spawned_child_is_waited_on_by_its_lines() {
    let mut child = Spawned::start(
        &mut sh("echo starting; echo ready on port 7 >&2; read _ || true; echo done"),
        "sh",
    );
    assert_eq!(
        child.wait_line("ready", Duration::from_secs(30)),
        "ready on port 7"
    );
    child.wait_success(Duration::from_secs(30));
    assert!(child.tail().contains("done"), "{}", child.tail());
}

#[test]
#[should_panic(expected = "its output ended")]
fn a_line_that_never_comes_fails_when_the_child_exits() {
    let child = Spawned::start(&mut sh("echo something else"), "sh");
    child.wait_line("ready", Duration::from_secs(30));
}

#[test]
fn waits_fail_with_what_was_awaited() {
    let err = std::panic::catch_unwind(|| {
        wait::until("the moon to turn blue", Duration::from_millis(50), || false)
    })
    .expect_err("must time out");
    let msg = err.downcast_ref::<String>().expect("a message");
    assert!(msg.contains("the moon to turn blue"), "{msg}");

    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(1).unwrap();
    let held = tx.clone();
    drop(tx);
    let err =
        std::panic::catch_unwind(|| wait::recv_all(&rx, "the numbers", Duration::from_millis(50)))
            .expect_err("a sender is still there");
    drop(held);
    let msg = err.downcast_ref::<String>().expect("a message");
    assert!(
        msg.contains("the numbers") && msg.contains("1 received"),
        "{msg}"
    );

    assert_eq!(
        wait::within("an answer", Duration::from_secs(30), || 42),
        42
    );
}

#[test]
fn a_missing_program_says_how_to_install_it() {
    let nowhere = Program {
        name: "ctower-testkit-no-such-program",
        env: "CTOWER_TESTKIT_NO_SUCH_PROGRAM",
        extra_dirs: &["/nonexistent"],
        ..MOSQUITTO
    };
    let missing = nowhere.locate().expect_err("not installed anywhere");
    let text = missing.to_string();
    assert!(text.contains("apt-get install mosquitto"), "{text}");
    assert!(text.contains("CTOWER_TESTKIT_NO_SUCH_PROGRAM"), "{text}");
}

#[test]
fn mosquitto_starts_on_a_free_port_and_accepts_connections() {
    let Some(bin) = ctower_testkit::services::require(&MOSQUITTO) else {
        return;
    };
    let broker = ctower_testkit::Mosquitto::start(&bin);
    std::net::TcpStream::connect(("127.0.0.1", broker.port())).expect("connect");
    assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));
}
