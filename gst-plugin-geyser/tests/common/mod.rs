//! Shared by the element tests: the plugin registered in this process, child processes that
//! run the harness's pattern producer and verifying consumer (this test binary re-executed
//! with `GT_ROLE`), and an appsink that checks every texel of every frame it gets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use geyser::common::TextureFormat;
use geyser::vulkan::{ContextOptions, DeviceSelector, Validation, VulkanTextureShareManager};
use geyser_harness::demo::{demo_descriptor, run_consumer, run_producer, ProduceConfig};
use geyser_harness::host_pattern::{identify_frame, HostLayout};
use geyser_harness::report::result_line;
use gst::prelude::*;
use gst_video::prelude::*;

/// GStreamer initialised and the plugin registered (once per process).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        gst::init().expect("gst::init");
        gstgeyser::plugin_register_static().expect("register the geyser plugin");
    });
}

/// A name no other test (or test run) uses.
pub fn endpoint(test: &str) -> String {
    format!("gst-{test}-{}", std::process::id())
}

/// Fails the test if the validation layer reported an error in this process.
pub fn assert_validation_clean() {
    let n = geyser::vulkan::diagnostics::validation_error_count();
    assert_eq!(
        n,
        0,
        "validation: {:#?}",
        geyser::vulkan::diagnostics::validation_messages()
    );
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

fn env_u64(key: &str, default: u64) -> u64 {
    env(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The body of a child process, when `GT_ROLE` is set: `producer` streams pattern frames,
/// `consumer` probes every frame it gets. Exit code 0 on success, 3 on corrupted frames, 4 on
/// validation errors.
pub fn child_role() {
    let Some(role) = env("GT_ROLE") else { return };
    let name = env("GT_NAME").expect("GT_NAME");
    let options = ContextOptions {
        device: DeviceSelector::from_env(),
        validation: Validation::Required,
    };
    let manager = Arc::new(VulkanTextureShareManager::create(&options).expect("Vulkan device"));
    let code = match role.as_str() {
        "producer" => {
            let frames = env_u64("GT_FRAMES", 300);
            let lossless = env("GT_LOSSLESS").is_some();
            let config = ProduceConfig {
                name,
                descriptor: demo_descriptor(
                    env_u64("GT_W", 320) as u32,
                    env_u64("GT_H", 240) as u32,
                    TextureFormat::Rgba8Unorm,
                ),
                frames,
                wait_consumers: env_u64("GT_WAIT", 1) as usize,
                wait_timeout: Duration::from_secs(60),
                options: geyser::ipc::ProducerOptions {
                    lossless,
                    ..Default::default()
                },
                frame_interval: env("GT_INTERVAL_MS")
                    .and_then(|v| v.parse().ok())
                    .map(Duration::from_millis),
                timestamps: false,
                picture: false,
            };
            let report = run_producer(manager, &config, |n| {
                if n == 1 {
                    println!("first frame");
                }
            })
            .expect("producer");
            println!("{}", result_line(&report));
            0
        }
        "consumer" => {
            let options = geyser::ipc::ConsumerOptions {
                lossless: env("GT_LOSSLESS").is_some(),
                ..Default::default()
            };
            let connect = Instant::now() + Duration::from_secs(30);
            let report = loop {
                match run_consumer(
                    manager.clone(),
                    &name,
                    options.clone(),
                    env_u64("GT_FRAMES", 0),
                    Duration::from_secs(30),
                    |_| {},
                ) {
                    Err(geyser::Error::NotFound { .. }) if Instant::now() < connect => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    other => break other.expect("consumer"),
                }
            };
            println!("{}", result_line(&report));
            if report.passed() {
                0
            } else {
                3
            }
        }
        other => panic!("unknown GT_ROLE {other}"),
    };
    let code = if geyser::vulkan::diagnostics::validation_error_count() > 0 {
        eprintln!(
            "validation: {:#?}",
            geyser::vulkan::diagnostics::validation_messages()
        );
        4
    } else {
        code
    };
    std::process::exit(code)
}

/// A child process running `role` (this test binary, re-executed for `child_role_entry`).
pub struct ChildProc {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl ChildProc {
    pub fn spawn(role: &str, name: &str, vars: &[(&str, String)]) -> ChildProc {
        let exe = std::env::current_exe().expect("test binary");
        let mut cmd = Command::new(exe);
        cmd.args([
            "child_role_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GT_ROLE", role)
        .env("GT_NAME", name)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn child");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        ChildProc { child, lines }
    }

    /// Waits for a line containing `prefix` and returns it from `prefix` on (the test harness
    /// may print before it on the same line).
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(prefix) => {
                    let at = l.find(prefix).unwrap_or(0);
                    return l[at..].to_string();
                }
                Ok(l) => seen.push(l),
                Err(e) => panic!(
                    "no `{prefix}` line from the child ({e:?}, exit {:?}); it said: {seen:#?}",
                    self.child.try_wait()
                ),
            }
        }
    }

    /// Waits for the exit code (killing the child after `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("child did not exit in {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the producer dies without a goodbye.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One frame an appsink got, checked texel by texel.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The frame number its pattern names (mod 2^32), or why it is not a pattern frame.
    pub frame: Result<u32, String>,
    pub width: u32,
    pub height: u32,
    pub pts: Option<gst::ClockTime>,
}

/// Pulls one sample from `sink` (at most `timeout`) and checks every texel against the
/// pattern. `None` at EOS or timeout.
pub fn pull_checked(sink: &gst_app::AppSink, timeout: Duration) -> Option<Checked> {
    let sample = sink.try_pull_sample(gst::ClockTime::from_nseconds(timeout.as_nanos() as u64))?;
    Some(check_sample(&sample))
}

/// Checks every texel of `sample` against the pattern.
pub fn check_sample(sample: &gst::Sample) -> Checked {
    let caps = sample.caps().expect("sample caps");
    let info = gst_video::VideoInfo::from_caps(caps).expect("video caps");
    let buffer = sample.buffer().expect("sample buffer");
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).expect("map");
    let layout = HostLayout {
        width: info.width(),
        height: info.height(),
        texel_bytes: info.format_info().pixel_stride()[0] as u32,
        stride: frame.plane_stride()[0] as usize,
    };
    let data = frame.plane_data(0).expect("plane 0");
    Checked {
        frame: identify_frame(data, &layout).map_err(|e| e.to_string()),
        width: info.width(),
        height: info.height(),
        pts: buffer.pts(),
    }
}

/// Runs `f` on another thread and fails the test if it takes longer than `timeout` (a hung
/// pipeline must not hang the test run).
pub fn within<T: Send + 'static>(
    timeout: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout)
        .unwrap_or_else(|_| panic!("{what} took longer than {timeout:?}"))
}

/// Bus messages until an error or EOS (at most `timeout`): `Err(text)` for an error.
pub fn wait_eos_or_error(
    pipeline: &gst::Pipeline,
    timeout: Duration,
) -> Option<Result<(), String>> {
    let bus = pipeline.bus().expect("bus");
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    )?;
    Some(match msg.view() {
        gst::MessageView::Error(e) => Err(format!("{} ({:?})", e.error(), e.debug())),
        _ => Ok(()),
    })
}
