//! Vulkan and wgpu across processes, validation layer on in both: a Vulkan producer streams
//! 300 frames to a wgpu consumer (every frame sampled in a wgpu compute pass and checked),
//! also through the host ring, and a wgpu producer (frames rendered by wgpu) streams 300
//! frames to a Vulkan consumer.
//! The producer is a child process (this binary re-executed with `GS_ROLE`).
#![cfg(feature = "webgpu")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::stream;
use common::{assert_validation_clean, manager};
use geyser::common::TextureFormat;
use geyser::ipc::{Consumer, ConsumerOptions, ProducerOptions};
use geyser::vulkan::{ContextOptions, DeviceSelector, Validation};
use geyser::webgpu::{WgpuProducer, WgpuTextureShareManager};
use geyser::Error;
use geyser_harness::demo::{demo_descriptor, run_consumer, run_producer};
use geyser_harness::pattern::ProbeReader;
use geyser_harness::report::ConsumeReport;
use geyser_harness::wgpu_demo::{run_wgpu_consumer, run_wgpu_producer};
use geyser_harness::wgpu_pattern::WgpuPatternWriter;

const FRAMES: u64 = 300;

fn wgpu_manager() -> Arc<WgpuTextureShareManager> {
    let options = ContextOptions {
        device: DeviceSelector::from_env(),
        validation: Validation::Required,
    };
    Arc::new(WgpuTextureShareManager::create(&options).expect("wgpu device"))
}

/// Not a test: the body of the producer child. Does nothing unless `GS_ROLE` is set.
#[test]
fn child_role_entry() {
    let Some((role, name)) = stream::child_role() else {
        return;
    };
    let config = stream::produce_config(name, FRAMES, ProducerOptions::default());
    let report = match role.as_str() {
        "vulkan-producer" => run_producer(Arc::new(manager()), &config, |_| {}),
        "wgpu-producer" => run_wgpu_producer(wgpu_manager(), &config, |_| {}),
        other => panic!("unknown GS_ROLE {other}"),
    };
    stream::exit_producer(report);
}

/// Runs a producer child and `consume` against it; checks both ends.
fn cross_process(role: &str, tag: &str, consume: impl Fn(&str) -> geyser::Result<ConsumeReport>) {
    let name = format!("gw-{role}-{tag}-{}", std::process::id());
    stream::cross_process(role, &name, FRAMES, None, consume);
}

#[test]
fn vulkan_producer_to_wgpu_consumer_300_frames_verified() {
    let w = wgpu_manager();
    cross_process("vulkan-producer", "direct", |name| {
        let options = ConsumerOptions {
            lossless: true,
            ..Default::default()
        };
        run_wgpu_consumer(w.clone(), name, options, 0, Duration::from_secs(20), |_| {})
    });
}

/// The host ring into a wgpu consumer (what a consumer on another GPU gets; forced
/// here): a second Vulkan device on wgpu's GPU copies each frame out of host memory into
/// textures wgpu imported.
#[test]
fn vulkan_producer_to_wgpu_consumer_through_the_host_ring_300_frames_verified() {
    let w = wgpu_manager();
    cross_process("vulkan-producer", "ring", |name| {
        let options = ConsumerOptions {
            lossless: true,
            host_ring: true,
            ..Default::default()
        };
        let report =
            run_wgpu_consumer(w.clone(), name, options, 0, Duration::from_secs(20), |_| {});
        if let Ok(r) = &report {
            assert_ne!(r.path, "Direct", "the host ring was asked for: {r:?}");
        }
        report
    });
}

#[test]
fn wgpu_producer_to_vulkan_consumer_300_frames_verified() {
    let v = Arc::new(manager());
    cross_process("wgpu-producer", "direct", |name| {
        let options = ConsumerOptions {
            lossless: true,
            ..Default::default()
        };
        run_consumer(v.clone(), name, options, 0, Duration::from_secs(20), |_| {})
    });
}

/// A slot begun in one place and presented in another (what a render schedule does with two
/// systems) travels as the owned `WriteSlot`: resumed, it is written and presented like any
/// other, and the consumer reads the right frame. A slot of another producer is refused.
#[test]
fn a_detached_wgpu_slot_resumes_and_presents_and_a_foreign_slot_is_refused() {
    let w = wgpu_manager();
    let v = Arc::new(manager());
    let name = format!("gw-detach-{}", std::process::id());
    let desc = demo_descriptor(64, 32, TextureFormat::Rgba8Unorm);
    let options = ProducerOptions {
        lossless: true,
        ..Default::default()
    };
    let producer = WgpuProducer::bind(&name, w.clone(), &desc, options.clone()).unwrap();
    let other = WgpuProducer::bind(&format!("{name}-other"), w.clone(), &desc, options).unwrap();
    let consumer_options = ConsumerOptions {
        lossless: true,
        ..Default::default()
    };
    let mut consumer = Consumer::connect_with(&name, v.clone(), consumer_options).unwrap();
    producer
        .producer()
        .wait_for_consumers(1, Duration::from_secs(10))
        .unwrap();

    let held = {
        let slot = producer.acquire(None).unwrap();
        slot.begin().unwrap();
        slot.detach()
    };
    let foreign = other.acquire(None).unwrap().detach();
    match producer.resume(foreign) {
        Err(Error::InvalidArgument { what: "resume", .. }) => {}
        other => panic!("a foreign slot was not refused: {other:?}"),
    }
    let slot = producer.resume(held).unwrap();
    let mut encoder = w.device().create_command_encoder(&Default::default());
    WgpuPatternWriter
        .record(&mut encoder, slot.texture(), slot.frame())
        .unwrap();
    w.queue().submit([encoder.finish()]);
    assert_eq!(slot.present().unwrap(), 0);

    let frame = consumer.next_frame(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(frame.number(), 0);
    let probe = ProbeReader::new(&v).unwrap();
    let result = probe.check(frame.texture(), frame.number()).unwrap();
    assert!(result.ok(), "frame 0 read back wrong: {result:?}");
    drop(frame);
    assert_validation_clean();
}
