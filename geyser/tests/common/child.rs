//! Child processes for the multi-process tests: a test binary re-executes itself (its
//! `child_role_entry` test, which calls [`role_entry`]) as a producer or consumer configured by
//! `GT_*` variables, and [`ChildProc`] drives it; raw clients that speak the wire protocol by
//! hand.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use geyser::common::TextureFormat;
use geyser::ipc::testing::Connection;
use geyser::ipc::wire::{Hello, Message, Role};
use geyser::ipc::SyncMode;
use geyser::ipc::{ConsumerOptions, PeerPolicy, ProducerOptions};
use geyser::Error;
use geyser_harness::demo::{demo_descriptor, run_consumer, run_producer, ProduceConfig};
use geyser_harness::report::ConsumeReport;

use super::{exit_child, manager};

pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

pub fn env_u64(key: &str, default: u64) -> u64 {
    env(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `GT_SYNC` (auto, host, binary, timeline): the mode a child forces, if any.
pub fn sync_from_env() -> Option<SyncMode> {
    env("GT_SYNC").and_then(|s| geyser_harness::args::parse_sync(&s).expect("GT_SYNC"))
}

/// The body of a child process (each test binary calls it from its `child_role_entry` test,
/// which `ChildProc` runs): a producer or consumer configured by `GT_*` variables. Does nothing
/// unless `GT_ROLE` is set.
pub fn role_entry() {
    let Some(role) = env("GT_ROLE") else { return };
    let name = env("GT_NAME").expect("GT_NAME");
    let m = Arc::new(manager());
    let code = match role.as_str() {
        "producer" => {
            let config = ProduceConfig {
                name,
                descriptor: demo_descriptor(
                    env_u64("GT_W", 64) as u32,
                    env_u64("GT_H", 48) as u32,
                    TextureFormat::Rgba8Unorm,
                ),
                frames: env_u64("GT_FRAMES", 100),
                wait_consumers: env_u64("GT_WAIT", 1) as usize,
                wait_timeout: Duration::from_secs(30),
                options: ProducerOptions {
                    slots: env_u64("GT_SLOTS", 3) as usize,
                    lossless: env("GT_LOSSLESS").is_some(),
                    max_consumers: Some(env_u64("GT_MAX_CONSUMERS", 8) as usize),
                    peer_policy: env("GT_POLICY")
                        .map_or(PeerPolicy::SameUser, |p| p.parse().unwrap()),
                    trusted: env("GT_TRUSTED").map_or(PeerPolicy::SameUser, |p| p.parse().unwrap()),
                    max_hold: Duration::from_millis(env_u64("GT_MAX_HOLD_MS", 10_000)),
                    stall_hold: Duration::from_millis(env_u64("GT_STALL_HOLD_MS", 2_500)),
                    sync: sync_from_env(),
                    ..Default::default()
                },
                frame_interval: env("GT_INTERVAL_MS")
                    .and_then(|v| v.parse().ok())
                    .map(Duration::from_millis),
                timestamps: false,
                picture: false,
            };
            match run_producer(m, &config, |_| {}) {
                Ok(r) => {
                    println!("RESULT {}", serde_json::to_string(&r).unwrap());
                    0
                }
                Err(e) => {
                    eprintln!("producer error: {e}");
                    1
                }
            }
        }
        "consumer" => {
            let options = ConsumerOptions {
                lossless: env("GT_LOSSLESS").is_some(),
                host_ring: env("GT_HOST_TRANSFER").is_some(),
                sync: sync_from_env(),
                ..Default::default()
            };
            let hold = env("GT_HOLD_MS")
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis);
            // The producer may still be starting: retry NotFound for a while.
            let deadline = Instant::now() + Duration::from_secs(20);
            let result = loop {
                let r = run_consumer(
                    m.clone(),
                    &name,
                    options.clone(),
                    env_u64("GT_FRAMES", 0),
                    Duration::from_secs(20),
                    |r| {
                        if r.frames == 1 || r.frames % 10 == 0 {
                            println!("\nFRAMES {}", r.frames);
                        }
                        if let Some(h) = hold {
                            std::thread::sleep(h);
                        }
                    },
                );
                match r {
                    Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    other => break other,
                }
            };
            match result {
                Ok(r) => {
                    println!("RESULT {}", serde_json::to_string(&r).unwrap());
                    0
                }
                Err(e) => {
                    eprintln!("consumer error: {e}");
                    1
                }
            }
        }
        other => panic!("unknown GT_ROLE {other}"),
    };
    exit_child(code);
}

pub struct ChildProc {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl ChildProc {
    pub fn spawn(role: &str, name: &str, vars: &[(&str, &str)]) -> ChildProc {
        Self::spawn_as(role, name, vars, None)
    }

    pub fn spawn_as(role: &str, name: &str, vars: &[(&str, &str)], uid: Option<u32>) -> ChildProc {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "child_role_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GT_ROLE", role)
        .env("GT_NAME", name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        let mut child = cmd.spawn().expect("spawn child");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                s.push_str(&l);
                s.push('\n');
            }
            s
        });
        ChildProc {
            child,
            lines,
            stderr,
        }
    }

    /// Waits for a stdout line containing `prefix` (libtest may print before it on the line).
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(prefix) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for exit; returns (exit code, RESULT json, stderr).
    pub fn finish(mut self, timeout: Duration) -> (Option<i32>, Option<String>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut result = None;
        let mut out = String::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            if let Some(i) = l.find("RESULT ") {
                result = Some(l[i + 7..].to_string());
            }
            out.push_str(&l);
            out.push('\n');
        }
        let stderr = self.stderr.join().unwrap_or_default();
        (
            status.code(),
            result,
            format!("stdout:\n{out}stderr:\n{stderr}"),
        )
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

pub fn unique(name: &str) -> String {
    format!("t{}-{name}", std::process::id())
}

pub fn consumer_report(r: (Option<i32>, Option<String>, String)) -> ConsumeReport {
    let (code, json, stderr) = r;
    assert_eq!(code, Some(0), "consumer failed: {stderr}");
    serde_json::from_str(&json.expect("RESULT line")).unwrap()
}

pub fn raw_client(name: &str) -> Connection {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Connection::connect(name) {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("{e}"),
        }
    }
}

pub fn hello(m: &geyser::vulkan::VulkanTextureShareManager) -> Hello {
    let id = m.identity();
    Hello::new(
        Role::Consumer,
        id.device_uuid,
        id.driver_uuid,
        vec![SyncMode::Host],
        "raw".into(),
    )
}

/// The connection ends (Bye, then closed) instead of serving the bad client.
pub fn assert_closed(c: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match c.recv(Some(Duration::from_secs(5))) {
            Ok((Message::Bye { .. }, _)) | Err(Error::PeerGone(_)) => return,
            Ok(_) if Instant::now() < deadline => {}
            other => panic!("expected the producer to close the connection, got {other:?}"),
        }
    }
}
