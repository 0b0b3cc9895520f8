//! The binary-semaphore sync mode across processes. On a device that exports binary
//! semaphores as opaque FDs (the NVIDIA H100 with driver 580; run the ignored tests there):
//! verified streams between real processes, and a consumer killed between its wait and its
//! signal never stalls the producer. On every other device (lavapipe in CI): forcing the mode
//! is `Unsupported` with the reason, and negotiation falls back to the next mode.
#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::{consumer_report, env, unique, ChildProc};
use common::{assert_validation_clean, exit_child, manager};
use geyser::common::TextureFormat;
use geyser::ipc::{Consumer, ConsumerOptions, Producer, ProducerOptions, SyncMode};
use geyser::Error;
use geyser_harness::demo::demo_descriptor;
use geyser_harness::report::ProduceReport;

/// Not a test: the body of a child process (`GT_ROLE`).
#[test]
fn child_role_entry() {
    match env("GT_ROLE").as_deref() {
        Some("binary-holder") => exit_child(hold_a_frame_forever()),
        _ => common::child::role_entry(),
    }
}

/// Connects in binary mode, takes a frame, waits until its ready semaphore has been waited
/// for (the relay signaled our ready timeline), takes the release point, and then never
/// signals it nor releases: it prints `HOLDING` and sleeps until killed.
fn hold_a_frame_forever() -> i32 {
    let m = Arc::new(manager());
    let name = env("GT_NAME").unwrap();
    let options = ConsumerOptions {
        sync: Some(SyncMode::BinarySemaphore),
        lossless: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut consumer = loop {
        match Consumer::connect_with(&name, m.clone(), options.clone()) {
            Ok(c) => break c,
            Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => {
                eprintln!("holder: {e}");
                return 1;
            }
        }
    };
    let mut frame = match consumer.next_frame(Some(Duration::from_secs(20))) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("holder: {e}");
            return 1;
        }
    };
    if let Err(e) = frame.wait_ready(Duration::from_secs(5)) {
        eprintln!("holder: {e}");
        return 1;
    }
    let _never_signaled = frame.release_point();
    println!("HOLDING frame {}", frame.number());
    std::thread::sleep(Duration::from_secs(600));
    1
}

#[test]
fn forcing_binary_where_the_device_cannot_is_unsupported_and_auto_falls_back() {
    let m = Arc::new(manager());
    let caps = m.caps().unwrap();
    let modes = geyser::ipc::supported_sync_modes(&m).unwrap();
    let exports = caps.binary_semaphore_export.opaque_fd;
    assert_eq!(
        modes.contains(&SyncMode::BinarySemaphore),
        exports && m.can_share_timelines(),
        "binary is offered exactly where the device exports binary semaphores as opaque FDs"
    );
    if exports {
        println!(
            "{} exports binary semaphores: run the ignored tests",
            caps.identity.name
        );
        return;
    }
    let desc = demo_descriptor(16, 16, TextureFormat::Rgba8Unorm);
    let forced = ProducerOptions {
        sync: Some(SyncMode::BinarySemaphore),
        ..Default::default()
    };
    let name = unique("bin-forced");
    match Producer::bind(&name, m.clone(), &desc, forced) {
        Err(Error::Unsupported { feature, reason }) => {
            assert!(feature.contains("BinarySemaphore"), "{feature}");
            assert!(
                reason.contains("does not export binary semaphores"),
                "the reason names what the device lacks: {reason}"
            );
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    // Preferring binary is not forcing it: the producer offers what the device has.
    let preferring = ProducerOptions {
        prefer_sync: Some(SyncMode::BinarySemaphore),
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, preferring).unwrap();
    assert_eq!(producer.sync_mode(), modes[0]);
    let consumer = Consumer::connect_with(
        &name,
        m.clone(),
        ConsumerOptions {
            sync: Some(SyncMode::BinarySemaphore),
            ..Default::default()
        },
    );
    assert!(
        matches!(consumer, Err(Error::Unsupported { .. })),
        "{consumer:?}"
    );
    assert_validation_clean();
}

/// Device test: two consumer processes in binary mode, every frame verified.
#[test]
#[ignore = "GPU machine: needs binary semaphore export (NVIDIA)"]
fn binary_mode_streams_verified_frames_between_processes() {
    let name = unique("bin-stream");
    let p = ChildProc::spawn(
        "producer",
        &name,
        &[
            ("GT_FRAMES", "2000"),
            ("GT_WAIT", "2"),
            ("GT_SLOTS", "3"),
            ("GT_SYNC", "binary"),
            ("GT_W", "1920"),
            ("GT_H", "1080"),
        ],
    );
    let c1 = ChildProc::spawn("consumer", &name, &[("GT_SYNC", "binary")]);
    let c2 = ChildProc::spawn("consumer", &name, &[("GT_HOLD_MS", "2")]);
    let (code, json, out) = p.finish(Duration::from_secs(300));
    assert_eq!(code, Some(0), "producer: {out}");
    let pr: ProduceReport = serde_json::from_str(&json.unwrap()).unwrap();
    assert_eq!((pr.frames, pr.sync.as_str()), (2000, "BinarySemaphore"));
    for c in [c1, c2] {
        let r = consumer_report(c.finish(Duration::from_secs(60)));
        println!("{r:?}");
        assert_eq!(r.sync, "BinarySemaphore");
        assert_eq!(r.corrupted, 0);
        assert!(r.frames > 0 && r.clean_end, "{r:?}");
    }
}

/// Device test: a lossless binary-mode stream where one consumer waits on a frame's ready
/// semaphore and is then killed before it signals its release. The producer must drop it and
/// go on (nothing on its queue waits for the dead consumer): the other consumer receives and
/// verifies every frame, and the producer finishes.
#[test]
#[ignore = "GPU machine: needs binary semaphore export (NVIDIA)"]
fn a_binary_consumer_killed_between_wait_and_signal_never_stalls_the_producer() {
    let name = unique("bin-kill");
    let p = ChildProc::spawn(
        "producer",
        &name,
        &[
            ("GT_FRAMES", "600"),
            ("GT_WAIT", "2"),
            ("GT_SLOTS", "4"),
            ("GT_SYNC", "binary"),
            ("GT_LOSSLESS", "1"),
            ("GT_W", "1920"),
            ("GT_H", "1080"),
        ],
    );
    let verifier = ChildProc::spawn(
        "consumer",
        &name,
        &[("GT_SYNC", "binary"), ("GT_LOSSLESS", "1")],
    );
    let mut holder = ChildProc::spawn("binary-holder", &name, &[]);
    let held = holder.wait_line("HOLDING", Duration::from_secs(30));
    assert!(held.is_some(), "the holder took a frame");
    // The lossless producer is now blocked on the held frame; the kill must unblock it.
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    holder.kill();
    let (code, json, out) = p.finish(Duration::from_secs(120));
    assert_eq!(code, Some(0), "producer: {out}");
    let pr: ProduceReport = serde_json::from_str(&json.unwrap()).unwrap();
    println!(
        "producer finished {:.1} s after the kill: {pr:?}",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(pr.frames, 600);
    assert_eq!(pr.consumers_dropped, 1, "the killed consumer was dropped");
    let r = consumer_report(verifier.finish(Duration::from_secs(60)));
    assert_eq!((r.frames, r.corrupted, r.skipped), (600, 0, 0), "{r:?}");
    assert_eq!(r.sync, "BinarySemaphore");
}
