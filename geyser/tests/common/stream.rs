//! Lossless streams between a producer child process and a consumer in the test process, for
//! the cross-API and cross-driver tests: the producer's configuration, its result line, and the
//! run that checks both ends. A test binary names its roles and runs them in its own
//! `child_role_entry`, which reads `GS_ROLE` and `GS_NAME`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use geyser::common::TextureFormat;
use geyser::ipc::ProducerOptions;
use geyser::Error;
use geyser_harness::demo::{demo_descriptor, ProduceConfig};
use geyser_harness::report::{ConsumeReport, ProduceReport};

use super::{assert_validation_clean, exit_child};

/// A lossless 96x64 RGBA8 producer of `frames` solid-pattern frames that waits for one consumer.
pub fn produce_config(name: String, frames: u64, options: ProducerOptions) -> ProduceConfig {
    ProduceConfig {
        name,
        descriptor: demo_descriptor(96, 64, TextureFormat::Rgba8Unorm),
        frames,
        wait_consumers: 1,
        wait_timeout: Duration::from_secs(30),
        options: ProducerOptions {
            lossless: true,
            ..options
        },
        frame_interval: None,
        timestamps: false,
        picture: false,
    }
}

/// The role and endpoint of this process when it is a producer child; `None` in the test
/// process itself.
pub fn child_role() -> Option<(String, String)> {
    let role = std::env::var("GS_ROLE").ok()?;
    Some((role, std::env::var("GS_NAME").expect("GS_NAME")))
}

/// Ends a producer child: its result line (`RESULT frames=N sync=S`) or its error.
pub fn exit_producer(report: geyser::Result<ProduceReport>) -> ! {
    let code = match report {
        Ok(r) => {
            println!("RESULT frames={} sync={}", r.frames, r.sync);
            0
        }
        Err(e) => {
            eprintln!("producer error: {e}");
            1
        }
    };
    exit_child(code)
}

/// Runs a producer child of `role` on endpoint `name` and `consume` against it (retrying while
/// the endpoint is not there yet), then checks both ends: the producer exited cleanly having
/// presented `frames` frames with `sync` (any when `None`), the consumer received every frame,
/// none corrupted, to a clean end, and no validation error. Returns the consumer's report.
pub fn cross_process(
    role: &str,
    name: &str,
    frames: u64,
    sync: Option<&str>,
    consume: impl Fn(&str) -> geyser::Result<ConsumeReport>,
) -> ConsumeReport {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_role_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GS_ROLE", role)
        .env("GS_NAME", name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn producer");
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        match consume(name) {
            Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => break other,
        }
    };
    let out = child.wait_with_output().expect("producer exit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{role} failed ({:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    let line = match sync {
        Some(s) => format!("RESULT frames={frames} sync={s}"),
        None => format!("RESULT frames={frames}"),
    };
    assert!(stdout.contains(&line), "{role}: {stdout}");
    let report = report.expect("consumer");
    println!("{role} -> consumer: {report:?}");
    assert_eq!(report.frames, frames, "every frame delivered (lossless)");
    assert_eq!(report.corrupted, 0, "every frame verified");
    assert!(report.clean_end, "clean end of stream: {}", report.end);
    assert_validation_clean();
    report
}
