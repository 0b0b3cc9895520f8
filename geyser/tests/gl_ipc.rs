//! Vulkan and OpenGL across processes, validation layer on: a Vulkan producer (the
//! `ipc_producer` loop) streams 300 frames to a GL consumer — through memory objects, through a
//! DMA-BUF ring (EGLImages) and through the host ring — and a GL producer streams 300 frames
//! to a Vulkan consumer; every frame is checked. The producer is a child process (this binary
//! re-executed with `GG_ROLE`). Mesa's GL has no semaphores: these run host-synchronized.
#![cfg(target_os = "linux")]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_validation_clean, exit_child, manager};
use geyser::common::TextureFormat;
use geyser::gl::GlContext;
use geyser::ipc::{ConsumerOptions, ProducerOptions};
use geyser::vulkan::TextureMemory;
use geyser::Error;
use geyser_harness::demo::{demo_descriptor, run_consumer, run_producer, ProduceConfig};
use geyser_harness::gl_demo::{run_gl_consumer, run_gl_producer};
use geyser_harness::report::ConsumeReport;

const FRAMES: u64 = 300;

fn produce_config(name: String, ring_memory: TextureMemory) -> ProduceConfig {
    ProduceConfig {
        name,
        descriptor: demo_descriptor(96, 64, TextureFormat::Rgba8Unorm),
        frames: FRAMES,
        wait_consumers: 1,
        wait_timeout: Duration::from_secs(30),
        options: ProducerOptions {
            lossless: true,
            ring_memory,
            ..Default::default()
        },
        frame_interval: None,
        timestamps: false,
        picture: false,
    }
}

/// Not a test: the body of the producer child. Does nothing unless `GG_ROLE` is set.
#[test]
fn child_role_entry() {
    let Ok(role) = std::env::var("GG_ROLE") else {
        return;
    };
    let name = std::env::var("GG_NAME").expect("GG_NAME");
    let report = match role.as_str() {
        "vulkan-producer" => run_producer(
            Arc::new(manager()),
            &produce_config(name, TextureMemory::Opaque),
            |_| {},
        ),
        "vulkan-dma-buf-producer" => run_producer(
            Arc::new(manager()),
            &produce_config(name, TextureMemory::HostDmaBuf),
            |_| {},
        ),
        "gl-producer" => GlContext::headless().and_then(|gl| {
            run_gl_producer(&gl, &produce_config(name, TextureMemory::Opaque), |_| {})
        }),
        other => panic!("unknown GG_ROLE {other}"),
    };
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
    exit_child(code);
}

/// Runs a producer child and `consume` against it; checks both ends.
fn cross_process(role: &str, tag: &str, consume: impl Fn(&str) -> geyser::Result<ConsumeReport>) {
    let name = format!("gg-{role}-{tag}-{}", std::process::id());
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_role_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GG_ROLE", role)
        .env("GG_NAME", &name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn producer");
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        match consume(&name) {
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
    assert!(
        stdout.contains(&format!("RESULT frames={FRAMES}")),
        "{role}: {stdout}"
    );
    let report = report.expect("consumer");
    println!("{role} -> consumer: {report:?}");
    assert_eq!(report.frames, FRAMES, "every frame delivered (lossless)");
    assert_eq!(report.corrupted, 0, "every frame verified");
    assert!(report.clean_end, "clean end of stream: {}", report.end);
    assert_validation_clean();
}

fn lossless() -> ConsumerOptions {
    ConsumerOptions {
        lossless: true,
        ..Default::default()
    }
}

fn gl_consume(name: &str, options: ConsumerOptions) -> geyser::Result<ConsumeReport> {
    let gl = GlContext::headless()?;
    run_gl_consumer(&gl, name, options, 0, Duration::from_secs(20), |_| {})
}

#[test]
fn vulkan_producer_to_gl_consumer_through_memory_objects_300_frames_verified() {
    cross_process("vulkan-producer", "mo", |name| {
        let r = gl_consume(name, lossless());
        if let Ok(r) = &r {
            assert_eq!(r.path, "Direct", "{r:?}");
        }
        r
    });
}

#[test]
fn vulkan_producer_with_a_dma_buf_ring_to_gl_and_vulkan_consumers_300_frames_verified() {
    cross_process("vulkan-dma-buf-producer", "gl", |name| {
        gl_consume(name, lossless())
    });
    let v = Arc::new(manager());
    cross_process("vulkan-dma-buf-producer", "vk", |name| {
        run_consumer(
            v.clone(),
            name,
            lossless(),
            0,
            Duration::from_secs(20),
            |_| {},
        )
    });
}

#[test]
fn vulkan_producer_to_gl_consumer_through_the_host_ring_300_frames_verified() {
    cross_process("vulkan-producer", "ring", |name| {
        let options = ConsumerOptions {
            host_ring: true,
            ..lossless()
        };
        let r = gl_consume(name, options);
        if let Ok(r) = &r {
            assert_ne!(r.path, "Direct", "the host ring was asked for: {r:?}");
        }
        r
    });
}

#[test]
fn gl_producer_to_vulkan_consumer_300_frames_verified() {
    let v = Arc::new(manager());
    cross_process("gl-producer", "direct", |name| {
        run_consumer(
            v.clone(),
            name,
            lossless(),
            0,
            Duration::from_secs(20),
            |_| {},
        )
    });
}
