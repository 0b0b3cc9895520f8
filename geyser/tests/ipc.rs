//! Cross-process sharing with real child processes: this test binary re-executes itself as a
//! producer or consumer (`child_role_entry`, selected by `GT_ROLE`). Validation layers are on in
//! every process; a child with a validation error exits with code 4.

// Linux only: Unix-socket IPC, SCM_RIGHTS, /proc FD accounting and lavapipe.
#![cfg(target_os = "linux")]

mod common;

/// Not a test: the body of a child process (see `common::child`).
#[test]
fn child_role_entry() {
    common::child::role_entry()
}

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::{assert_closed, consumer_report, hello, raw_client, unique, ChildProc};
use common::{assert_validation_clean, manager};
use geyser::common::RejectReason;
use geyser::common::TextureFormat;
use geyser::ipc::testing::Connection;
use geyser::ipc::wire::{Message, MAGIC, PROTOCOL_VERSION};
use geyser::ipc::PeerPolicy;
use geyser::ipc::{Consumer, ConsumerOptions, Producer, ProducerOptions};
use geyser::ipc::{FrameId, SyncMode};
use geyser::Error;
use geyser_harness::demo::{demo_descriptor, run_consumer, run_producer, ProduceConfig};
use geyser_harness::pattern::{PatternWriter, ProbeReader};
use geyser_harness::report::ProduceReport;

#[test]
fn producer_streams_verified_frames_to_two_consumer_processes() {
    let name = unique("two");
    let best = geyser::ipc::supported_sync_modes(&manager()).unwrap()[0];
    let p = ChildProc::spawn(
        "producer",
        &name,
        &[("GT_FRAMES", "300"), ("GT_WAIT", "2"), ("GT_SLOTS", "3")],
    );
    let c1 = ChildProc::spawn("consumer", &name, &[]);
    let c2 = ChildProc::spawn("consumer", &name, &[("GT_HOLD_MS", "3")]); // a slower one
    let (code, json, stderr) = p.finish(Duration::from_secs(120));
    assert_eq!(code, Some(0), "producer: {stderr}");
    let pr: ProduceReport =
        serde_json::from_str(&json.unwrap_or_else(|| panic!("no RESULT: {stderr}"))).unwrap();
    assert_eq!(pr.frames, 300);
    for c in [c1, c2] {
        let r = consumer_report(c.finish(Duration::from_secs(30)));
        assert_eq!(r.corrupted, 0);
        assert!(r.frames > 0 && r.clean_end, "{r:?}");
        assert!(r.frames + r.skipped + r.superseded <= 300 + 1, "{r:?}");
        assert_eq!(
            r.sync,
            format!("{best:?}"),
            "auto picks the device's best mode"
        );
    }
}

#[test]
fn consumers_get_peer_gone_within_a_second_when_the_producer_is_killed() {
    let name = unique("kill-producer");
    let mut p = ChildProc::spawn(
        "producer",
        &name,
        &[
            ("GT_FRAMES", "0"),
            ("GT_INTERVAL_MS", "2"),
            ("GT_WAIT", "1"),
        ],
    );
    // This process is the consumer, so it can check that imports outlive the producer.
    let m = Arc::new(manager());
    let mut consumer = connect_retrying(&name, m.clone(), ConsumerOptions::default());
    let probe = ProbeReader::new(&m).unwrap();
    let mut last = 0;
    for _ in 0..20 {
        let f = consumer.next_frame(Some(Duration::from_secs(10))).unwrap();
        f.wait_ready(Duration::from_secs(5)).unwrap();
        assert!(probe.check(f.texture(), f.number()).unwrap().ok());
        last = f.number();
    }
    let slot_of_last = {
        let f = consumer.next_frame(Some(Duration::from_secs(10))).unwrap();
        last = f.number().max(last);
        let s = f.slot();
        f.wait_ready(Duration::from_secs(5)).unwrap();
        assert!(probe.check(f.texture(), f.number()).unwrap().ok());
        s
    };
    let killed = Instant::now();
    p.kill();
    let err = loop {
        match consumer.next_frame(Some(Duration::from_secs(5))) {
            Ok(f) => last = f.number(),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::PeerGone(_)), "{err}");
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "PeerGone after {:?}",
        killed.elapsed()
    );
    // Imported textures stay valid: the last frame's texels are still there.
    let tex = consumer.textures()[slot_of_last].clone();
    drop(consumer);
    let _ = last;
    assert!(
        probe.check(&tex, 0).is_ok(),
        "a texture imported from a dead producer is still usable"
    );
    assert_validation_clean();
}

fn connect_retrying(
    name: &str,
    m: Arc<geyser::vulkan::VulkanTextureShareManager>,
    options: ConsumerOptions,
) -> Consumer {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Consumer::connect_with(name, m.clone(), options.clone()) {
            Ok(c) => return c,
            Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}

#[test]
fn producer_keeps_serving_when_a_consumer_is_killed() {
    let name = unique("kill-consumer");
    let m = Arc::new(manager());
    let desc = demo_descriptor(64, 48, TextureFormat::Rgba8Unorm);
    // Lossless: every frame must reach the surviving consumer, none missed.
    let options = ProducerOptions {
        slots: 3,
        lossless: true,
        max_consumers: Some(4),
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let survivor = ChildProc::spawn(
        "consumer",
        &name,
        &[("GT_LOSSLESS", "1"), ("GT_FRAMES", "200")],
    );
    let mut victim = ChildProc::spawn("consumer", &name, &[("GT_LOSSLESS", "1")]);
    producer
        .wait_for_consumers(2, Duration::from_secs(30))
        .unwrap();
    let mut killed_at = None;
    let mut frames = 0;
    while frames < 200 {
        let slot = producer
            .acquire(Some(Duration::from_secs(5)))
            .expect("a dead consumer's slots come back within the timeout");
        geyser_harness::demo::write_slot(&writer, &slot).unwrap();
        producer.present(slot).unwrap();
        frames += 1;
        if frames == 50 {
            victim.kill();
            killed_at = Some(Instant::now());
        }
        if let Some(t) = killed_at {
            if producer.consumer_count() == 1 {
                assert!(
                    t.elapsed() < Duration::from_secs(1),
                    "dead consumer dropped after {:?}",
                    t.elapsed()
                );
                killed_at = None;
            }
        }
    }
    assert_eq!(producer.consumer_count(), 1);
    let r = consumer_report(survivor.finish(Duration::from_secs(30)));
    assert_eq!(
        (r.frames, r.skipped, r.superseded, r.corrupted),
        (200, 0, 0, 0),
        "{r:?}"
    );
    // Both are gone now (the survivor left after its 200 frames): two drops, nothing else.
    let t = Instant::now();
    while producer.consumer_count() > 0 && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        (producer.consumer_count(), producer.stats().dropped),
        (0, 2)
    );
    assert_validation_clean();
}

/// A raw client that speaks (or breaks) the protocol.
/// A raw client that completes the handshake (Hello, then the producer's Hello and PoolSetup,
/// whose FDs it drops) and then does whatever the test makes it do.
fn raw_consumer(
    name: &str,
    m: &geyser::vulkan::VulkanTextureShareManager,
    producer: &Producer,
) -> Connection {
    let mut c = raw_client(name);
    c.send(&Message::Hello(hello(m)), &[]).unwrap();
    let _ = c.recv(Some(Duration::from_secs(5))).unwrap(); // Hello
    let (setup, fds) = c.recv(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(setup, Message::PoolSetup { .. }) && !fds.is_empty());
    producer
        .wait_for_consumers(1, Duration::from_secs(5))
        .unwrap();
    c
}

#[test]
fn malformed_messages_close_only_that_connection() {
    let name = unique("malformed");
    let p = ChildProc::spawn(
        "producer",
        &name,
        &[
            ("GT_FRAMES", "400"),
            ("GT_INTERVAL_MS", "3"),
            ("GT_WAIT", "1"),
            ("GT_SLOTS", "8"),
        ],
    );
    let good = ChildProc::spawn("consumer", &name, &[]);
    assert!(
        good.wait_line("FRAMES", Duration::from_secs(30)).is_some(),
        "good consumer never got a frame"
    );
    let m = manager();
    let sock_send = |c: &Connection, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]| {
        let _ = geyser::ipc::testing::fd_passing::send(c.as_fd(), bytes, fds);
    };
    // Random garbage.
    let mut c = raw_client(&name);
    sock_send(&c, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3], &[]);
    assert_closed(&mut c);
    // A length prefix larger than the frame (truncated message).
    let mut c = raw_client(&name);
    sock_send(&c, &[0xff, 0xff, 0x00, 0x00, 0x01], &[]);
    assert_closed(&mut c);
    // Oversized: more than the size cap.
    let mut c = raw_client(&name);
    let big = vec![0u8; geyser::ipc::wire::MAX_MESSAGE_BYTES + 1024];
    sock_send(&c, &big, &[]);
    assert_closed(&mut c);
    // Wrong protocol version.
    let mut c = raw_client(&name);
    let mut h = hello(&m);
    h.version = PROTOCOL_VERSION + 7;
    let mut buf = Vec::new();
    geyser::ipc::wire::encode_into(&Message::Hello(h), &mut buf).unwrap();
    sock_send(&c, &buf, &[]);
    assert_closed(&mut c);
    // Wrong magic.
    let mut c = raw_client(&name);
    let mut h = hello(&m);
    h.magic = *b"NOPE";
    assert!(MAGIC != h.magic);
    geyser::ipc::wire::encode_into(&Message::Hello(h), &mut buf).unwrap();
    sock_send(&c, &buf, &[]);
    assert_closed(&mut c);
    // A valid handshake, then a release of a frame it does not hold, with an unexpected FD.
    let mut c = raw_client(&name);
    c.send(&Message::Hello(hello(&m)), &[]).unwrap();
    let (_, _) = c.recv(Some(Duration::from_secs(5))).unwrap(); // Hello
    let (setup, fds) = c.recv(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(setup, Message::PoolSetup { .. }) && !fds.is_empty());
    let extra = std::fs::File::open("/proc/self/exe").unwrap();
    geyser::ipc::wire::encode_into(
        &Message::FrameReleased {
            id: FrameId {
                slot: 0,
                frame: 123_456,
            },
            value: 0,
        },
        &mut buf,
    )
    .unwrap();
    sock_send(&c, &buf, &[extra.as_fd()]);
    assert_closed(&mut c);
    // A handshake that never comes: dropped after the handshake timeout, not blocking others.
    let mut silent = raw_client(&name);
    assert_closed(&mut silent);
    // The good consumer and the producer were unaffected.
    let (code, _, stderr) = p.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "producer: {stderr}");
    let r = consumer_report(good.finish(Duration::from_secs(30)));
    assert_eq!(r.corrupted, 0);
    assert!(r.clean_end && r.frames > 0, "{r:?}");
}

#[test]
fn peers_of_another_user_are_refused() {
    let name = unique("uid");
    let m = Arc::new(manager());
    let desc = demo_descriptor(32, 32, TextureFormat::Rgba8Unorm);
    let me = rustix::process::getuid().as_raw();
    // SO_PEERCRED check: a producer that only accepts another uid refuses us.
    let options = ProducerOptions {
        peer_policy: PeerPolicy::Uids(vec![me.wrapping_add(1)]),
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    // The consumer learns why (typed), not a broken pipe: the producer lets it read the Reject.
    match Consumer::connect(&name, m.clone()) {
        Err(Error::Rejected {
            reason: RejectReason::Policy,
            detail,
        }) => assert!(!detail.is_empty()),
        other => panic!("expected a Policy rejection, got {other:?}"),
    }
    assert_eq!(producer.consumer_count(), 0);
    drop(producer);
    // A real process of another user (root only: the child drops to `nobody`).
    if me == 0 {
        let producer = Producer::bind(&name, m.clone(), &desc, ProducerOptions::default()).unwrap();
        // Aim it at our runtime directory (it would otherwise look in its own).
        let dir = geyser::ipc::testing::runtime_dir().unwrap();
        let dir = dir.to_str().unwrap();
        let intruder = ChildProc::spawn_as(
            "consumer",
            &name,
            &[("GEYSER_RUNTIME_DIR", dir)],
            Some(65534),
        );
        let started = Instant::now();
        let (code, _, out) = intruder.finish(Duration::from_secs(30));
        assert_ne!(
            code,
            Some(0),
            "a consumer running as nobody must be refused"
        );
        assert!(out.contains("permission denied"), "{out}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "refused at once, not by a timeout"
        );
        assert_eq!(producer.consumer_count(), 0);
        assert_eq!(producer.stats().connected, 0);
    }
    assert_validation_clean();
}

#[test]
fn connecting_to_a_missing_producer_names_the_socket_path() {
    let m = Arc::new(manager());
    let name = unique("nobody-home");
    match Consumer::connect(&name, m) {
        Err(e @ Error::NotFound { .. }) => {
            assert!(e.to_string().contains(&format!("{name}.sock")), "{e}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn forcing_a_sync_mode_the_device_cannot_export_is_unsupported() {
    let m = Arc::new(manager());
    let caps = m.caps().unwrap();
    if caps.timeline_semaphore_export.any() {
        return; // a GPU that exports timelines: covered by the device tests
    }
    let desc = demo_descriptor(32, 32, TextureFormat::Rgba8Unorm);
    let options = ProducerOptions {
        sync: Some(SyncMode::Timeline),
        ..Default::default()
    };
    assert!(matches!(
        Producer::bind(&unique("forced"), m, &desc, options),
        Err(Error::Unsupported { .. })
    ));
}

#[test]
fn a_live_endpoint_is_not_stolen() {
    let name = unique("taken");
    let m = Arc::new(manager());
    let desc = demo_descriptor(16, 16, TextureFormat::Rgba8Unorm);
    let _first = Producer::bind(&name, m.clone(), &desc, ProducerOptions::default()).unwrap();
    assert!(matches!(
        Producer::bind(&name, m, &desc, ProducerOptions::default()),
        Err(Error::AddressInUse { .. })
    ));
}

#[test]
fn in_process_producer_and_consumer_threads_agree() {
    // The same API in one process: a producer thread and a consumer on another context.
    let name = unique("threads");
    let m = Arc::new(manager());
    let config = ProduceConfig {
        name: name.clone(),
        descriptor: demo_descriptor(40, 30, TextureFormat::Bgra8Unorm),
        frames: 60,
        wait_consumers: 1,
        wait_timeout: Duration::from_secs(10),
        options: ProducerOptions::default(),
        frame_interval: None,
        timestamps: false,
        picture: false,
    };
    let pm = m.clone();
    let t = std::thread::spawn(move || run_producer(pm, &config, |_| {}).unwrap());
    let m2 = Arc::new(manager());
    let mut tries = 0;
    let r = loop {
        match run_consumer(
            m2.clone(),
            &name,
            ConsumerOptions::default(),
            0,
            Duration::from_secs(10),
            |_| {},
        ) {
            Err(Error::NotFound { .. }) if tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(t.join().unwrap().frames, 60);
    assert_eq!(r.corrupted, 0);
    assert!(r.frames > 0 && r.clean_end);
    assert_validation_clean();
}

#[test]
fn a_consumer_that_never_releases_is_dropped_and_its_slots_reclaimed() {
    let name = unique("hoarder");
    let m = Arc::new(manager());
    let desc = demo_descriptor(16, 16, TextureFormat::Rgba8Unorm);
    // Lossless: without the hold limit a consumer that never releases would stall the producer.
    let options = ProducerOptions {
        slots: 2,
        lossless: true,
        max_hold: Duration::from_millis(300),
        sync: Some(SyncMode::Host),
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let mut hoarder = raw_consumer(&name, &m, &producer);
    let start = Instant::now();
    for _ in 0..4 {
        // Two slots, both held by the hoarder after two frames: the third acquire only
        // succeeds once the hoarder is dropped.
        let slot = producer
            .acquire(Some(Duration::from_secs(5)))
            .expect("slots come back after max_hold");
        geyser_harness::demo::write_slot(&writer, &slot).unwrap();
        producer.present(slot).unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(producer.consumer_count(), 0);
    assert_eq!(producer.stats().dropped, 1);
    assert_closed(&mut hoarder);
    assert_validation_clean();
}

#[test]
fn max_held_frames_caps_what_one_lossless_consumer_can_hold() {
    let name = unique("capped");
    let m = Arc::new(manager());
    let desc = demo_descriptor(16, 16, TextureFormat::Rgba8Unorm);
    let options = ProducerOptions {
        slots: 3,
        lossless: true,
        max_held_frames: Some(1),
        sync: Some(SyncMode::Host),
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let _hoarder = raw_consumer(&name, &m, &producer);
    for _ in 0..3 {
        // Never blocks: the hoarder can pin one slot, not the ring.
        let slot = producer.acquire(Some(Duration::from_secs(1))).unwrap();
        geyser_harness::demo::write_slot(&writer, &slot).unwrap();
        producer.present(slot).unwrap();
    }
    let stats = producer.stats();
    assert_eq!(
        (stats.consumers[0].delivered, stats.consumers[0].skipped),
        (1, 2),
        "{stats:?}"
    );
    assert_validation_clean();
}
