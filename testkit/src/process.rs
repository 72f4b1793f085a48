//! Child processes with deadlines.
//!
//! - [`run`] / [`run_ok`]: run a command to completion, like
//!   `Command::output`, but killed past a deadline;
//! - [`Spawned`]: a long-running child (a server, `ctower run`) whose output
//!   lines a test waits on, killed on drop.
//!
//! A child's stdout and stderr are always read, each on a thread of its
//! own, so a child writing more than a pipe holds never blocks on it; and a
//! failure shows the last [`TAIL_LINES`] lines of what it wrote.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of a child's output that a failure message shows.
pub const TAIL_LINES: usize = 40;

/// After the child exited, how long its pipes may take to close (they stay
/// open while a process it started still holds them).
const PIPES_GRACE: Duration = Duration::from_secs(5);

/// Why [`try_run`] has no output.
#[derive(Debug)]
pub enum RunError {
    /// The program could not be started.
    Spawn {
        /// The program.
        program: String,
        /// Why it could not start.
        error: std::io::Error,
    },
    /// Still running at the deadline, so killed; what it wrote until then.
    TimedOut {
        /// The deadline it was given.
        timeout: Duration,
        /// What it wrote on stdout.
        stdout: Vec<u8>,
        /// What it wrote on stderr.
        stderr: Vec<u8>,
    },
    /// It exited, but its output did not end: a process it started still
    /// holds the pipes.
    PipesHeld {
        /// How it exited.
        status: ExitStatus,
        /// What was read from stdout.
        stdout: Vec<u8>,
        /// What was read from stderr.
        stderr: Vec<u8>,
    },
    /// Waiting for it failed.
    Wait(std::io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn { program, error } => write!(f, "could not start {program}: {error}"),
            RunError::TimedOut {
                timeout,
                stdout,
                stderr,
            } => write!(
                f,
                "still running after {timeout:?}, killed\n--- stderr (last lines):\n{}\n--- stdout (last lines):\n{}",
                tail(stderr),
                tail(stdout)
            ),
            RunError::PipesHeld {
                status,
                stdout,
                stderr,
            } => write!(
                f,
                "exited with {status}, but its output was still open {PIPES_GRACE:?} later (a process it started holds it)\n--- stderr (last lines):\n{}\n--- stdout (last lines):\n{}",
                tail(stderr),
                tail(stdout)
            ),
            RunError::Wait(e) => write!(f, "waiting for it failed: {e}"),
        }
    }
}

/// The last [`TAIL_LINES`] lines of `bytes`, lossily decoded.
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    let skipped = if from > 0 {
        format!("[… {from} lines before]\n")
    } else {
        String::new()
    };
    skipped + &lines[from..].join("\n")
}

/// Runs `cmd` to completion within `timeout`, with stdin from `/dev/null`
/// and stdout and stderr captured; kills it past the deadline.
pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Output, RunError> {
    let deadline = Instant::now() + timeout;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| RunError::Spawn {
            program: cmd.get_program().to_string_lossy().into_owned(),
            error,
        })?;
    let stdout = Captured::start(child.stdout.take().expect("stdout is piped"));
    let stderr = Captured::start(child.stderr.take().expect("stderr is piped"));
    let status = match wait_child(&mut child, deadline) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::TimedOut {
                timeout,
                stdout: stdout.finish(PIPES_GRACE).unwrap_or_else(|b| b),
                stderr: stderr.finish(PIPES_GRACE).unwrap_or_else(|b| b),
            });
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::Wait(e));
        }
    };
    match (stdout.finish(PIPES_GRACE), stderr.finish(PIPES_GRACE)) {
        (Ok(stdout), Ok(stderr)) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        (stdout, stderr) => Err(RunError::PipesHeld {
            status,
            stdout: stdout.unwrap_or_else(|b| b),
            stderr: stderr.unwrap_or_else(|b| b),
        }),
    }
}

/// [`try_run`], failing the test with `what` and the error (with the tail
/// of the child's output) when it cannot start or outlives `timeout`. The
/// exit status is the caller's to check (or see [`run_ok`]).
#[track_caller]
pub fn run(cmd: &mut Command, what: &str, timeout: Duration) -> Output {
    match try_run(cmd, timeout) {
        Ok(out) => out,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// [`run`], and the exit status must be success; on failure, the tail of
/// the child's stderr and stdout.
#[track_caller]
pub fn run_ok(cmd: &mut Command, what: &str, timeout: Duration) -> Output {
    let out = run(cmd, what, timeout);
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stderr (last lines):\n{}\n--- stdout (last lines):\n{}",
        out.status,
        tail(&out.stderr),
        tail(&out.stdout)
    );
    out
}

/// Polls the child until it exits or the deadline passes (`Ok(None)`).
/// Polling is the portable way to wait with a timeout (std has no
/// `wait_timeout`); at most 20 ms between polls.
fn wait_child(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Everything a pipe delivers, read on a thread of its own.
struct Captured {
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl Captured {
    fn start(mut pipe: impl Read + Send + 'static) -> Captured {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = bytes.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            // `read` retries interruptions itself; an error ends the output.
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock()
                    .expect("output buffer")
                    .extend_from_slice(&chunk[..n]);
            }
        });
        Captured { bytes, reader }
    }

    /// All the output once the pipe closed within `grace`; else `Err` with
    /// what came so far.
    fn finish(self, grace: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let deadline = Instant::now() + grace;
        while !self.reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let closed = self.reader.is_finished();
        let bytes = std::mem::take(&mut *self.bytes.lock().expect("output buffer"));
        if closed {
            let _ = self.reader.join();
            Ok(bytes)
        } else {
            Err(bytes)
        }
    }
}

/// The last lines a child wrote, for failure messages.
type Tail = Arc<Mutex<VecDeque<String>>>;
/// Every line a child wrote.
type AllLines = Arc<Mutex<Vec<String>>>;

/// A long-running child whose output lines (stdout and stderr, merged) a
/// test waits on. Each line also goes to the test's captured output
/// (prefixed with `[what]`: shown when the test fails) and to a tail kept
/// for failure messages. Killed on drop.
pub struct Spawned {
    what: String,
    child: Child,
    lines: Receiver<String>,
    tail: Tail,
    all: AllLines,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Spawned {
    /// Starts `cmd` (stdin from `/dev/null`), `what` naming it in messages.
    #[track_caller]
    pub fn start(cmd: &mut Command, what: &str) -> Spawned {
        let spawned = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => panic!("could not start {what} ({:?}): {e}", cmd.get_program()),
        };
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let all = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let readers = vec![
            read_lines(stdout, what, tx.clone(), (tail.clone(), all.clone())),
            read_lines(stderr, what, tx, (tail.clone(), all.clone())),
        ];
        Spawned {
            what: what.to_string(),
            child,
            lines,
            tail,
            all,
            readers,
            status: None,
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Every line the child wrote so far (stdout and stderr as read), for a
    /// test that searches the whole output: a secret must be in none.
    pub fn output(&self) -> Vec<String> {
        self.all.lock().expect("output").clone()
    }

    /// The last [`TAIL_LINES`] lines the child wrote.
    pub fn tail(&self) -> String {
        let tail = self.tail.lock().expect("tail");
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Waits for an output line containing `needle`, and returns it. Lines
    /// before it are consumed. Fails past `timeout`, or when the output ends
    /// first (the child exited).
    #[track_caller]
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no output line with `{needle}` within {timeout:?}\n--- last lines:\n{}",
                    self.what,
                    self.tail()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: its output ended (it exited?) before a line with `{needle}`\n--- last lines:\n{}",
                    self.what,
                    self.tail()
                ),
            }
        }
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.what));
        }
        self.status
    }

    /// Waits for the child to exit within `timeout`; past it, kills it and
    /// fails with the tail of its output. Once it has exited, also lets the
    /// readers take in its last lines (for [`Spawned::tail`]).
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let status = match self.status {
            Some(status) => status,
            None => match wait_child(&mut self.child, Instant::now() + timeout) {
                Ok(Some(status)) => status,
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} did not exit within {timeout:?}: killed\n--- last lines:\n{}",
                        self.what,
                        self.tail()
                    )
                }
                Err(e) => panic!("waiting for {}: {e}", self.what),
            },
        };
        self.status = Some(status);
        let grace = Instant::now() + PIPES_GRACE;
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(5));
        }
        status
    }

    /// [`Spawned::wait_exit`], and the exit status must be success.
    #[track_caller]
    pub fn wait_success(&mut self, timeout: Duration) {
        let status = self.wait_exit(timeout);
        assert!(
            status.success(),
            "{} exited with {status}\n--- last lines:\n{}",
            self.what,
            self.tail()
        );
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads `pipe` line by line until it closes: each line to the captured
/// test output, the tail and `tx`. Reading goes on when nobody listens on
/// `tx` any more, so the child never blocks on a full pipe.
fn read_lines(
    pipe: impl Read + Send + 'static,
    what: &str,
    tx: Sender<String>,
    (tail, all): (Tail, AllLines),
) -> JoinHandle<()> {
    let what = what.to_string();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // Bytes, not `lines()`: a line that is not UTF-8 must not stop
            // the reading.
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            // Captured by the harness (a spawned thread inherits the test's
            // capture): shown only when the test fails.
            eprintln!("[{what}] {line}");
            {
                let mut tail = tail.lock().expect("tail");
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
            }
            all.lock().expect("output").push(line.clone());
            let _ = tx.send(line);
        }
    })
}
