//! Vulkan and OpenGL across processes, validation layer on: a Vulkan producer (the
//! `ipc_producer` loop) streams 300 frames to a GL consumer — through memory objects, through a
//! DMA-BUF ring (EGLImages) and through the host ring — and a GL producer streams 300 frames
//! to a Vulkan consumer; every frame is checked. The producer is a child process (this binary
//! re-executed with `GS_ROLE`). Mesa's GL has no semaphores: these run host-synchronized.
#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::manager;
use common::stream;
use geyser::gl::GlContext;
use geyser::ipc::{ConsumerOptions, ProducerOptions};
use geyser::vulkan::TextureMemory;
use geyser_harness::demo::{run_consumer, run_producer, ProduceConfig};
use geyser_harness::gl_demo::{run_gl_consumer, run_gl_producer};
use geyser_harness::report::ConsumeReport;

const FRAMES: u64 = 300;

fn produce_config(name: String, ring_memory: TextureMemory) -> ProduceConfig {
    let options = ProducerOptions {
        ring_memory,
        ..Default::default()
    };
    stream::produce_config(name, FRAMES, options)
}

/// Not a test: the body of the producer child. Does nothing unless `GS_ROLE` is set.
#[test]
fn child_role_entry() {
    let Some((role, name)) = stream::child_role() else {
        return;
    };
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
        other => panic!("unknown GS_ROLE {other}"),
    };
    stream::exit_producer(report);
}

/// Runs a producer child and `consume` against it; checks both ends.
fn cross_process(role: &str, tag: &str, consume: impl Fn(&str) -> geyser::Result<ConsumeReport>) {
    let name = format!("gg-{role}-{tag}-{}", std::process::id());
    stream::cross_process(role, &name, FRAMES, None, consume);
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
