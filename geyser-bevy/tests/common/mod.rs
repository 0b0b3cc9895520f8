//! What geyser-bevy's tests share: child processes (this test binary re-executed with a role),
//! their stdout read line by line, a stop signal through stdin, and headless Bevy apps.
#![allow(dead_code)]

#[path = "../../examples/common/mod.rs"]
pub mod run;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::prelude::*;

/// The environment variable that makes a test binary a child with a role.
pub const ROLE: &str = "GB_ROLE";

/// Starts this test binary again as a child running only `entry` (a test that does nothing
/// unless [`ROLE`] is set), with `role` and `env`. Its stdin stays open until
/// [`ChildProcess::stop`]; its stdout is read line by line.
pub fn spawn_role(entry: &str, role: &str, env: &[(&str, String)]) -> ChildProcess {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn a child process");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    let role_name = role.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("[{role_name}] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    ChildProcess {
        child,
        lines,
        seen: Vec::new(),
    }
}

/// A child process and the lines it printed.
pub struct ChildProcess {
    pub child: Child,
    lines: Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl ChildProcess {
    /// Reads lines until `done(all lines so far)` holds; panics after `timeout` or when the
    /// child's stdout closes first.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!("waiting for {what}: {e:?}; the child said {:#?}", self.seen),
            }
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Closes its stdin (the stop signal) and waits for it to exit; returns the exit code.
    pub fn stop(&mut self, timeout: Duration) -> (Option<i32>, Vec<String>) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the child did not stop; it said {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status.code(), std::mem::take(&mut self.seen))
    }

    /// Waits for it to exit by itself; returns the exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the child did not finish; it said {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends with the child's stdout.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status.code(), std::mem::take(&mut self.seen))
    }

    /// SIGKILL, as a crash would end it.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    /// A test that fails half-way leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Set once this process's stdin closes: the parent's stop signal.
pub fn stdin_closed() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        set.store(true, Ordering::SeqCst);
    });
    flag
}

/// A headless Bevy app with Geyser that exits when stdin closes (or after `limit`).
pub fn headless_app(limit: Duration) -> App {
    let mut app = run::app(
        "test",
        &run::RunArgs {
            headless: true,
            ..Default::default()
        },
    );
    let stop = stdin_closed();
    let start = Instant::now();
    app.add_systems(Last, move |mut exit: MessageWriter<AppExit>| {
        if stop.load(Ordering::SeqCst) {
            exit.write(AppExit::Success);
        } else if start.elapsed() > limit {
            eprintln!("child: no stop signal after {limit:?}");
            exit.write(AppExit::error());
        }
    });
    app
}

/// A unique endpoint name for this test run.
pub fn endpoint(tag: &str) -> String {
    format!("gb-{tag}-{}", std::process::id())
}
