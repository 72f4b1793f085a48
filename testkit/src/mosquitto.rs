//! A real Mosquitto broker for one test.

use crate::process::Spawned;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long Mosquitto may take to accept connections.
const READY: Duration = Duration::from_secs(10);

/// A Mosquitto process listening on a free port of 127.0.0.1, with its own
/// configuration in a temporary directory; killed on drop.
pub struct Mosquitto {
    process: Spawned,
    port: u16,
    bin: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts `bin` (see [`crate::services::MOSQUITTO`]) and waits until it
    /// accepts TCP connections.
    ///
    /// Unlimited queues: `max_queued_messages` (default 1000) would drop a
    /// slow subscriber's QoS 1 messages beyond it, and the tests publish
    /// recordings at full speed and count every message.
    pub fn start(bin: &Path) -> Mosquitto {
        Mosquitto::start_configured(bin, &|_| "allow_anonymous true\n".into())
    }

    /// [`Mosquitto::start`] with the first listener's (and the broker's)
    /// security settings that `security` writes: it is given the broker's
    /// own directory, to put certificates and password files in (readable
    /// by the user Mosquitto drops to when started as root), and returns
    /// the configuration lines. Lines after a further `listener` line
    /// configure that one (with `per_listener_settings true`).
    pub fn start_configured(bin: &Path, security: &dyn Fn(&Path) -> String) -> Mosquitto {
        // Mosquitto cannot listen on port 0 and report the port, so a free
        // port is picked (bind, read, release) and can be taken by another
        // process before Mosquitto binds it: then it exits at once, and a
        // new port is tried.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let port = free_port();
            let dir = tempfile::tempdir().expect("temporary directory for mosquitto");
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .expect("mosquitto's directory readable");
            let conf = dir.path().join("mosquitto.conf");
            // Global settings first: `security` may open more listeners.
            std::fs::write(
                &conf,
                format!(
                    "persistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n\
                     log_dest stderr\nlistener {port} 127.0.0.1\n{}",
                    security(dir.path())
                ),
            )
            .expect("writing mosquitto.conf");
            let mut process = Spawned::start(
                Command::new(bin).arg("-c").arg(&conf),
                &format!("mosquitto :{port}"),
            );
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + READY;
            let mut pause = Duration::from_millis(1);
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Mosquitto {
                        process,
                        port,
                        bin: bin.to_path_buf(),
                        _dir: dir,
                    };
                }
                if process.try_exit().is_some() {
                    // All of its log, not only what the readers have seen so far.
                    let status = process.wait_exit(READY);
                    let log = process.tail();
                    if log.contains("Address already in use") && attempt < ATTEMPTS {
                        break;
                    }
                    panic!("mosquitto exited ({status}) before listening on {addr}:\n{log}");
                }
                assert!(
                    Instant::now() < deadline,
                    "mosquitto did not listen on {addr} within {READY:?}:\n{}",
                    process.tail()
                );
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The last lines of the broker's log.
    pub fn log_tail(&self) -> String {
        self.process.tail()
    }

    /// The broker's own directory (its configuration, and what the
    /// `security` lines of [`Mosquitto::start_configured`] put there).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Stops the broker as an operator would (SIGTERM: with `persistence
    /// true` it saves its sessions and queued messages), then starts it
    /// again with the same configuration on the same port, and waits until
    /// it accepts connections.
    pub fn restart(&mut self) {
        let pid = self.process.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill -TERM mosquitto");
        let status = self.process.wait_exit(READY);
        assert!(
            status.success(),
            "mosquitto stopped with {status}:\n{}",
            self.process.tail()
        );
        let conf = self._dir.path().join("mosquitto.conf");
        self.process = Spawned::start(
            Command::new(&self.bin).arg("-c").arg(&conf),
            &format!("mosquitto :{} (restarted)", self.port),
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                self.process.try_exit().is_none() && Instant::now() < deadline,
                "mosquitto did not listen again on {addr}:\n{}",
                self.process.tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
