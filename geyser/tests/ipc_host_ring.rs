//! Host rings across processes: consumers that take the producer's host ring (what a consumer
//! on another GPU or driver gets; forced here, lavapipe being one device) beside one that
//! imports the ring directly, rings shared or per consumer, what a consumer writing into its
//! ring can reach, when a ring is freed and which frames are copied into it. This test binary
//! re-executes itself as a producer or consumer (`child_role_entry`, selected by `GT_ROLE`).
//! Validation layers are on in every process.

// Linux only: Unix-socket IPC, SCM_RIGHTS, memfds, /proc FD accounting and lavapipe.
#![cfg(target_os = "linux")]

mod common;

/// Not a test: the body of a child process (see `common::child`).
#[test]
fn child_role_entry() {
    common::child::role_entry()
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::{consumer_report, hello, raw_client, unique, ChildProc};
use common::{assert_validation_clean, manager};
use geyser::common::TextureFormat;
use geyser::ipc::testing::Connection;
use geyser::ipc::wire::Message;
use geyser::ipc::{Consumer, ConsumerOptions, HostRingSharing, Producer, ProducerOptions};
use geyser::ipc::{FrameId, SyncMode};
use geyser_harness::demo::demo_descriptor;
use geyser_harness::pattern::{PatternWriter, ProbeReader};

/// One producer; one consumer imports its ring, two take the host ring (what a consumer
/// on another GPU or driver gets; forced here, lavapipe being one device), one of them with
/// the CPU-copy fallback forced. Each gets all 300 frames, every one verified, and reports
/// its path.
#[test]
fn direct_host_memory_and_cpu_copy_consumers_are_served_at_once() {
    let name = unique("mixed");
    let p = ChildProc::spawn(
        "producer",
        &name,
        &[
            ("GT_FRAMES", "300"),
            ("GT_WAIT", "3"),
            ("GT_SLOTS", "4"),
            ("GT_LOSSLESS", "1"),
        ],
    );
    let direct = ChildProc::spawn("consumer", &name, &[("GT_LOSSLESS", "1")]);
    let host_ring = ChildProc::spawn(
        "consumer",
        &name,
        &[("GT_LOSSLESS", "1"), ("GT_HOST_TRANSFER", "1")],
    );
    let cpu = ChildProc::spawn(
        "consumer",
        &name,
        &[
            ("GT_LOSSLESS", "1"),
            ("GT_HOST_TRANSFER", "1"),
            ("GEYSER_TRANSFER", "cpu"),
        ],
    );
    let (code, _, stderr) = p.finish(Duration::from_secs(120));
    assert_eq!(code, Some(0), "producer: {stderr}");
    let d = consumer_report(direct.finish(Duration::from_secs(30)));
    let h = consumer_report(host_ring.finish(Duration::from_secs(30)));
    let c = consumer_report(cpu.finish(Duration::from_secs(30)));
    for (r, path) in [(&d, "Direct"), (&h, "HostMemory"), (&c, "CpuCopy")] {
        assert_eq!(r.path, path, "{r:?}");
        assert_eq!((r.frames, r.corrupted, r.skipped), (300, 0, 0), "{r:?}");
        assert!(r.clean_end, "{r:?}");
    }
    assert_eq!(h.sync, "Host", "the host ring is host-synchronized");
}

/// A raw client that asks for the host ring and completes the handshake; returns the
/// connection, the ring's memfd and the slot size.
fn raw_host_ring_consumer(
    name: &str,
    m: &geyser::vulkan::VulkanTextureShareManager,
) -> (Connection, std::fs::File, u64) {
    let mut c = raw_client(name);
    c.send(&Message::HostRingRequest, &[]).unwrap();
    c.send(&Message::Hello(hello(m)), &[]).unwrap();
    let _ = c.recv(Some(Duration::from_secs(5))).unwrap(); // Hello
    let (setup, fds) = c.recv(Some(Duration::from_secs(5))).unwrap();
    let Message::HostRingSetup { slot_bytes, .. } = setup else {
        panic!("expected HostRingSetup, got {}", setup.kind());
    };
    let ring = std::fs::File::from(fds.into_iter().next().expect("the ring's memfd"));
    (c, ring, slot_bytes)
}

/// A consumer on another device maps its host ring writable (host-memory import needs
/// it), so it can overwrite a frame after the producer copied it in. Here a raw consumer does
/// exactly that to every frame it is sent, before a second cross-device consumer copies the
/// frame out: with one shared ring the second one reads the scribble (which shows the attack
/// reaches it), with per-consumer rings it reads every frame intact.
#[test]
fn a_consumer_scribbling_on_its_host_ring_reaches_others_only_through_a_shared_ring() {
    use std::os::unix::fs::FileExt;
    let m = Arc::new(manager());
    let m2 = Arc::new(manager());
    let desc = demo_descriptor(32, 16, TextureFormat::Rgba8Unorm);
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let probe = ProbeReader::new(&m2).unwrap();
    const FRAMES: u64 = 6;
    for sharing in [HostRingSharing::PerConsumer, HostRingSharing::Shared] {
        let name = unique("scribble");
        let options = ProducerOptions {
            sync: Some(SyncMode::Host),
            host_rings: sharing,
            ..Default::default()
        };
        let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
        let (mut scribbler, ring, slot_bytes) = raw_host_ring_consumer(&name, &m);
        let victim_options = ConsumerOptions {
            host_ring: true,
            ..Default::default()
        };
        let mut victim = Consumer::connect_with(&name, m2.clone(), victim_options).unwrap();
        producer
            .wait_for_consumers(2, Duration::from_secs(5))
            .unwrap();
        let scribble = vec![0xa5; desc.tight_size() as usize];
        let mut intact = 0;
        for _ in 0..FRAMES {
            let slot = producer.acquire(Some(Duration::from_secs(5))).unwrap();
            geyser_harness::demo::write_slot(&writer, &slot).unwrap();
            producer.present(slot).unwrap();
            let (msg, _) = scribbler.recv(Some(Duration::from_secs(5))).unwrap();
            let Message::FrameReady { id, .. } = msg else {
                panic!("expected FrameReady, got {}", msg.kind());
            };
            ring.write_all_at(&scribble, u64::from(id.slot) * slot_bytes)
                .unwrap();
            scribbler
                .send(&Message::FrameReleased { id, value: 0 }, &[])
                .unwrap();
            let f = victim.next_frame(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(f.number(), id.frame);
            f.wait_ready(Duration::from_secs(5)).unwrap();
            intact += u64::from(probe.check(f.texture(), f.number()).unwrap().ok());
        }
        let expected = match sharing {
            HostRingSharing::Shared => 0,
            _ => FRAMES,
        };
        assert_eq!(intact, expected, "{sharing:?}: intact frames");
        assert_eq!(
            victim.transfer_path(),
            geyser::vulkan::TransferPath::HostMemory
        );
    }
    assert_validation_clean();
}

/// A consumer's own host ring (its memfd and mapping, and the buffers imported from it)
/// is freed when the consumer leaves, even if the producer presents nothing after that.
#[test]
fn a_per_consumer_ring_is_freed_when_its_consumer_leaves() {
    use std::os::unix::fs::MetadataExt;
    let m = Arc::new(manager());
    let desc = demo_descriptor(32, 16, TextureFormat::Rgba8Unorm);
    let name = unique("ring-freed");
    let options = ProducerOptions {
        host_rings: HostRingSharing::PerConsumer,
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    // FDs of this process open on the file with inode `ino` (other tests run in parallel, so
    // count only this one).
    let open_on = |ino: u64| {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::metadata(e.ok()?.path()).ok())
            .filter(|md| md.ino() == ino)
            .count()
    };
    let (c, ring, _) = raw_host_ring_consumer(&name, &m);
    let ino = ring.metadata().unwrap().ino();
    producer
        .wait_for_consumers(1, Duration::from_secs(5))
        .unwrap();
    assert_eq!(open_on(ino), 2, "ours and the producer's");
    drop(ring);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_on(ino) != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(producer.consumer_count(), 0);
    assert_eq!(
        open_on(ino),
        0,
        "the producer still holds the consumer's ring"
    );
    assert_validation_clean();
}

/// The producer copies a frame into a consumer's host ring only when that consumer may
/// still be sent it. A lossless consumer holding as many frames as it may skips the next ones
/// for good: they are not copied into its ring (it stays zero-filled). A lossy one is sent the
/// latest frame as soon as it releases: the frames it skipped are copied, and the latest
/// arrives without another present.
#[test]
fn a_host_ring_gets_the_frames_its_consumer_may_still_be_sent() {
    use std::os::unix::fs::FileExt;
    let m = Arc::new(manager());
    let desc = demo_descriptor(32, 16, TextureFormat::Rgba8Unorm);
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    for lossless in [true, false] {
        let name = unique("busy-ring");
        let options = ProducerOptions {
            slots: 3,
            lossless,
            max_held_frames: Some(1),
            sync: Some(SyncMode::Host),
            host_rings: HostRingSharing::PerConsumer,
            ..Default::default()
        };
        let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
        let (mut c, ring, slot_bytes) = raw_host_ring_consumer(&name, &m);
        producer
            .wait_for_consumers(1, Duration::from_secs(5))
            .unwrap();
        let frame_bytes = desc.tight_size() as usize;
        let slot_is_zero = |slot: u32| {
            let mut buf = vec![0u8; frame_bytes];
            ring.read_exact_at(&mut buf, u64::from(slot) * slot_bytes)
                .unwrap();
            buf.iter().all(|b| *b == 0)
        };
        let present = || {
            let slot = producer.acquire(Some(Duration::from_secs(5))).unwrap();
            let index = slot.id.slot;
            geyser_harness::demo::write_slot(&writer, &slot).unwrap();
            (index, producer.present(slot).unwrap())
        };
        let frame_ready = |c: &mut Connection| match c.recv(Some(Duration::from_secs(5))) {
            Ok((Message::FrameReady { id, .. }, _)) => (id.slot, id.frame),
            other => panic!("expected FrameReady, got {other:?}"),
        };
        let (held_slot, held) = present();
        assert_eq!(frame_ready(&mut c), (held_slot, held));
        assert!(
            !slot_is_zero(held_slot),
            "the frame it was sent is in its ring"
        );
        // It holds its frame: the next two are skipped for it.
        let skipped: Vec<(u32, u64)> = (0..2).map(|_| present()).collect();
        assert_eq!(producer.stats().consumers[0].skipped, 2);
        for (s, _) in &skipped {
            assert_ne!(*s, held_slot);
            assert_eq!(slot_is_zero(*s), lossless, "lossless: {lossless}, slot {s}");
        }
        c.send(
            &Message::FrameReleased {
                id: FrameId {
                    slot: held_slot,
                    frame: held,
                },
                value: 0,
            },
            &[],
        )
        .unwrap();
        if !lossless {
            // The latest frame comes on the release, from the ring.
            assert_eq!(frame_ready(&mut c), skipped[1]);
        } else {
            // Give the service thread time to take the release (it wakes when the message
            // arrives): the next frame is then copied into the ring and sent.
            std::thread::sleep(Duration::from_millis(500));
            let (slot, frame) = present();
            assert_eq!(frame_ready(&mut c), (slot, frame));
            assert!(!slot_is_zero(slot));
        }
    }
    assert_validation_clean();
}
