//! DMA-BUF rings across drivers, validation layer on: a consumer on another driver that imports
//! DMA-BUFs is sent the producer's DMA-BUF ring itself ([`TransferPath::DmaBuf`], host sync)
//! instead of a host ring, and reads every frame from it, pattern-verified, in Vulkan and in GL.
//!
//! **Simulated other driver**: this machine has one driver (lavapipe), so the consumer reports
//! another driver UUID in its Hello (`geyser::ipc::testing::simulate_other_driver`); the
//! producer, a child process (this binary re-executed with `GS_ROLE`), then serves it as it
//! would serve another driver, and the consumer imports the ring as it would import another
//! driver's (a DMA-BUF import checks no UUID). lavapipe exports no real DMA-BUF, so the ring is
//! `TextureMemory::HostDmaBuf` (a sealed memfd imported as DMA-BUF memory, LINEAR). What this
//! cannot show: a real second driver's tiling, modifiers and caches.
//!
//! Negative cases: an opaque ring, and a consumer that does not say it imports DMA-BUFs, still
//! get a host ring.
#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::child::{hello, raw_client, unique};
use common::stream;
use common::{assert_validation_clean, manager};
use geyser::common::TextureFormat;
use geyser::ipc::testing::simulate_other_driver;
use geyser::ipc::wire::Message;
use geyser::ipc::{ConsumerOptions, Producer, ProducerOptions, SyncMode};
use geyser::vulkan::{TextureMemory, TransferPath};
use geyser_harness::demo::{demo_descriptor, run_consumer, run_producer};
use geyser_harness::report::ConsumeReport;

const FRAMES: u64 = 240;

/// Not a test: the body of the producer child. Does nothing unless `GS_ROLE` is set.
#[test]
fn child_role_entry() {
    let Some((role, name)) = stream::child_role() else {
        return;
    };
    let memory = match role.as_str() {
        "dma-buf-producer" => TextureMemory::HostDmaBuf,
        "opaque-producer" => TextureMemory::Opaque,
        other => panic!("unknown GS_ROLE {other}"),
    };
    let options = ProducerOptions {
        ring_memory: memory,
        ..Default::default()
    };
    let config = stream::produce_config(name, FRAMES, options);
    stream::exit_producer(run_producer(Arc::new(manager()), &config, |_| {}));
}

/// Runs a producer child of `role` and `consume` against it (as a simulated other driver);
/// checks both ends and returns the consumer's report.
fn cross_driver(
    role: &str,
    consume: impl Fn(&str) -> geyser::Result<ConsumeReport>,
) -> ConsumeReport {
    simulate_other_driver(true);
    let name = unique(&format!("gd-{role}"));
    let report = stream::cross_process(role, &name, FRAMES, Some("Host"), consume);
    assert_eq!(report.sync, "Host", "no semaphores across drivers");
    report
}

fn lossless() -> ConsumerOptions {
    ConsumerOptions {
        lossless: true,
        ..Default::default()
    }
}

fn vulkan_consume(name: &str) -> geyser::Result<ConsumeReport> {
    let m = Arc::new(manager());
    run_consumer(m, name, lossless(), 0, Duration::from_secs(20), |_| {})
}

#[test]
fn a_simulated_other_driver_imports_the_dma_buf_ring_itself_every_frame_verified() {
    let report = cross_driver("dma-buf-producer", vulkan_consume);
    assert_eq!(
        report.path,
        format!("{:?}", TransferPath::DmaBuf),
        "{report:?}"
    );
}

#[cfg(feature = "gl")]
#[test]
fn a_gl_consumer_of_a_simulated_other_driver_imports_the_dma_buf_ring_every_frame_verified() {
    let report = cross_driver("dma-buf-producer", |name| {
        let gl = geyser::gl::GlContext::headless()?;
        geyser_harness::gl_demo::run_gl_consumer(
            &gl,
            name,
            lossless(),
            0,
            Duration::from_secs(20),
            |_| {},
        )
    });
    assert_eq!(
        report.path,
        format!("{:?}", TransferPath::DmaBuf),
        "{report:?}"
    );
}

#[test]
fn a_simulated_other_driver_gets_a_host_ring_for_an_opaque_ring() {
    let report = cross_driver("opaque-producer", vulkan_consume);
    let host = [TransferPath::HostMemory, TransferPath::CpuCopy].map(|p| format!("{p:?}"));
    assert!(host.contains(&report.path), "{report:?}");
}

/// The producer's side, by a raw client that says it is of another driver: with
/// `DmaBufImport` it is sent the DMA-BUF ring (host sync, one FD per slot), without it a host
/// ring.
#[test]
fn only_a_consumer_that_imports_dma_bufs_is_sent_the_ring_across_drivers() {
    let m = Arc::new(manager());
    let desc = demo_descriptor(32, 16, TextureFormat::Rgba8Unorm);
    let name = unique("dmabuf-raw");
    let options = ProducerOptions {
        ring_memory: TextureMemory::HostDmaBuf,
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    let mut other = hello(&m);
    other.driver_uuid[0] ^= 0xff;
    let timeout = Some(Duration::from_secs(10));
    for imports in [true, false] {
        let mut c = raw_client(&name);
        if imports {
            let m = Message::DmaBufImport { modifiers: vec![] };
            c.send(&m, &[]).unwrap();
        }
        c.send(&Message::Hello(other.clone()), &[]).unwrap();
        let (h, _) = c.recv(timeout).unwrap();
        assert!(matches!(h, Message::Hello(_)), "{h:?}");
        let (setup, fds) = c.recv(timeout).unwrap();
        match (imports, setup) {
            (true, Message::PoolSetup { sync, slots, .. }) => {
                assert_eq!(sync, SyncMode::Host);
                assert_eq!(fds.len(), slots.len());
            }
            (false, Message::HostRingSetup { .. }) => {}
            (imports, other) => panic!("DmaBufImport sent: {imports}; got {other:?}"),
        }
    }
    drop(producer);
    assert_validation_clean();
}
