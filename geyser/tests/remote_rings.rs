//! Remote rings (`ProducerOptions::remote_rings`): a consumer on another GPU gets a ring on its
//! own device that the producer copies each frame into. The GPU-to-GPU provider
//! (`geyser::cuda::PeerRings`) needs two CUDA GPUs (scripts/device/issue19-2gpu.sh); here a
//! stand-in provider copies through the host on lavapipe, and a raw client that says it runs
//! on another device proves the producer's side: the setup, every frame copied before it is
//! announced, releases, and the consumer's `TransferPath::Peer`.

// Linux only: Unix-socket IPC and lavapipe.
#![cfg(target_os = "linux")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::child::{hello, raw_client, unique};
use common::{assert_validation_clean, manager};
use geyser::common::{ExportedTexture, TextureAspect};
use geyser::ipc::wire::Message;
use geyser::ipc::{FrameId, Producer, ProducerOptions, RemoteRing, RemoteRings};
use geyser::vulkan::{SharedTimelineSemaphore, VulkanTexture, VulkanTextureShareManager};
use geyser_harness::demo::{demo_descriptor, write_slot};
use geyser_harness::pattern::{PatternWriter, ProbeReader};

/// Stand-in provider: "the consumer's device" is another context on lavapipe, and a copy goes
/// through the host. Counts the copies it made.
#[derive(Debug, Default)]
struct HostCopyRings {
    copies: Arc<Mutex<Vec<FrameId>>>,
}

struct HostCopyRing {
    manager: Arc<VulkanTextureShareManager>,
    from: Vec<VulkanTexture>,
    to: Vec<VulkanTexture>,
    copies: Arc<Mutex<Vec<FrameId>>>,
}

impl RemoteRings for HostCopyRings {
    fn open(
        &self,
        ring: &[ExportedTexture],
        _ready: Option<&Arc<SharedTimelineSemaphore>>,
        device_uuid: [u8; 16],
        _driver_uuid: [u8; 16],
    ) -> geyser::Result<Option<Box<dyn RemoteRing>>> {
        if device_uuid != [0x5a; 16] {
            return Ok(None); // not the device this provider reaches
        }
        let manager = Arc::new(manager());
        let mut from = Vec::new();
        let mut to = Vec::new();
        for e in ring {
            from.push(manager.import(e.try_clone()?)?);
            to.push(manager.create_texture_with(&e.info.descriptor, &e.info.extent)?);
        }
        Ok(Some(Box::new(HostCopyRing {
            manager,
            from,
            to,
            copies: self.copies.clone(),
        })))
    }
}

impl RemoteRing for HostCopyRing {
    fn exports(&self) -> geyser::Result<Vec<ExportedTexture>> {
        self.to.iter().map(|t| self.manager.export(t)).collect()
    }

    fn copy(&mut self, id: FrameId, _ready: Option<u64>) -> geyser::Result<()> {
        let s = id.slot_index();
        let texels = self
            .manager
            .read_texture(&self.from[s], TextureAspect::Color)?;
        self.manager
            .write_texture(&self.to[s], TextureAspect::Color, &texels)?;
        self.copies.lock().unwrap().push(id);
        Ok(())
    }
}

#[test]
fn a_consumer_on_another_device_reads_every_frame_from_its_remote_ring() {
    let m = Arc::new(manager());
    let desc = demo_descriptor(40, 24, geyser::common::TextureFormat::Rgba8Unorm);
    let provider = Arc::new(HostCopyRings::default());
    let copies = provider.copies.clone();
    let name = unique("remote");
    let options = ProducerOptions {
        lossless: true,
        remote_rings: Some(provider),
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();

    // A consumer that says it runs on the device the provider reaches.
    let mine = Arc::new(manager());
    let mut c = raw_client(&name);
    let mut h = hello(&mine);
    h.device_uuid = [0x5a; 16];
    c.send(&Message::Hello(h), &[]).unwrap();
    assert!(matches!(
        c.recv(Some(Duration::from_secs(10))).unwrap().0,
        Message::Hello(_)
    ));
    let (setup, fds) = c.recv(Some(Duration::from_secs(10))).unwrap();
    let Message::PeerRingSetup { slots, .. } = setup else {
        panic!("expected PeerRingSetup, got {setup:?}");
    };
    assert_eq!(slots.len(), fds.len());
    let ring: Vec<VulkanTexture> = slots
        .into_iter()
        .zip(fds)
        .map(|(info, fd)| mine.import(ExportedTexture::new(info, fd)).unwrap())
        .collect();
    producer
        .wait_for_consumers(1, Duration::from_secs(10))
        .unwrap();
    let probe = ProbeReader::new(&mine).unwrap();
    for n in 0..12u64 {
        let slot = producer.acquire(Some(Duration::from_secs(10))).unwrap();
        write_slot(&writer, &slot).unwrap();
        producer.present(slot).unwrap();
        let (msg, _) = c.recv(Some(Duration::from_secs(10))).unwrap();
        let Message::FrameReady { id, .. } = msg else {
            panic!("expected FrameReady, got {msg:?}");
        };
        assert_eq!(id.frame, n);
        // Announced only after its copy into our ring.
        assert_eq!(copies.lock().unwrap().last(), Some(&id));
        let r = probe.check(&ring[id.slot_index()], id.frame).unwrap();
        assert!(r.ok(), "frame {n}: {r:?}");
        c.send(&Message::FrameReleased { id, value: 0 }, &[])
            .unwrap();
    }
    assert_eq!(copies.lock().unwrap().len(), 12);
    drop(c);
    drop(producer);
    assert_validation_clean();
}

#[test]
fn consumers_a_provider_cannot_reach_get_a_host_ring() {
    let m = Arc::new(manager());
    let desc = demo_descriptor(16, 16, geyser::common::TextureFormat::Rgba8Unorm);
    let name = unique("remote-none");
    let options = ProducerOptions {
        remote_rings: Some(Arc::new(HostCopyRings::default())),
        ..Default::default()
    };
    let _producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    let mut c = raw_client(&name);
    let mut h = hello(&m);
    h.device_uuid = [0x77; 16]; // another device, not the provider's
    c.send(&Message::Hello(h), &[]).unwrap();
    let _ = c.recv(Some(Duration::from_secs(10))).unwrap(); // Hello
    let (setup, _) = c.recv(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(setup, Message::HostRingSetup { .. }), "{setup:?}");
}

#[cfg(feature = "cuda")]
#[test]
fn peer_rings_without_cuda_reach_no_device() {
    // Where CUDA is missing, the CUDA provider declines (host rings then), never fails.
    if geyser::cuda::init().is_ok() {
        eprintln!("skipped: this machine has CUDA");
        return;
    }
    let m = Arc::new(manager());
    let desc = demo_descriptor(16, 16, geyser::common::TextureFormat::Rgba8Unorm);
    let t = m.create_texture(&desc).unwrap();
    let ring = vec![m.export(&t).unwrap()];
    let peer = geyser::cuda::PeerRings::new();
    assert!(peer.open(&ring, None, [1; 16], [2; 16]).unwrap().is_none());
}
