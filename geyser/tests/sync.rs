//! Shared semaphores and fences between two contexts. On a device that exports them (NVIDIA)
//! the payload is checked to be shared; on one that does not (lavapipe) every constructor must
//! say `Unsupported`, naming the handle type. Both branches run in CI or on the GPU machine.
//!
//! The `#[ignore]`d tests at the end need a GPU that exports timeline semaphores; run them on
//! the GPU machine: `.devbin/sync-* --ignored --test-threads=1` (see CONTRIBUTING.md).

// Linux only: Unix-socket IPC, SCM_RIGHTS, /proc FD accounting and lavapipe.
#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_validation_clean, manager};
use geyser::common::TextureFormat;
use geyser::ipc::{Consumer, ConsumerOptions, ProducerOptions, SyncMode};
use geyser::vulkan::{SharedFence, SharedSemaphore, SharedTimelineSemaphore, SyncHandleType};
use geyser::Error;
use geyser_harness::demo::{demo_descriptor, run_consumer, run_producer, ProduceConfig};
use geyser_harness::pattern::ProbeReader;

fn expect_unsupported<T: std::fmt::Debug>(r: geyser::Result<T>, what: &str) {
    match r {
        Err(Error::Unsupported { feature, reason }) => {
            assert!(
                !feature.is_empty() && !reason.is_empty(),
                "{what}: {feature}: {reason}"
            )
        }
        other => panic!("{what}: expected Unsupported, got {other:?}"),
    }
}

#[test]
fn timeline_semaphores_are_shared_between_contexts_or_unsupported() {
    let a = manager();
    let b = manager();
    let caps = a.caps().unwrap().clone();
    if !caps.timeline_semaphore_export.opaque_fd {
        println!(
            "{}: no timeline export; checking Unsupported",
            caps.identity.name
        );
        expect_unsupported(SharedTimelineSemaphore::new(&a, 0), "timeline");
        return;
    }
    let t = SharedTimelineSemaphore::new(&a, 3).unwrap();
    let u = SharedTimelineSemaphore::import(&b, t.export().unwrap()).unwrap();
    assert_eq!(
        u.value().unwrap(),
        3,
        "the import sees the exporter's payload"
    );
    t.signal(5).unwrap();
    u.wait(5, Duration::from_secs(1)).unwrap();
    u.signal(9).unwrap();
    assert_eq!(t.value().unwrap(), 9);
    // Values never go backwards: a lower signal is refused, not applied.
    assert!(matches!(t.signal(4), Err(Error::InvalidArgument { .. })));
    assert_eq!(u.value().unwrap(), 9);
    // A wait that nobody satisfies times out instead of hanging.
    let start = Instant::now();
    assert!(matches!(
        u.wait(100, Duration::from_millis(50)),
        Err(Error::Timeout(_))
    ));
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_validation_clean();
}

#[test]
fn binary_semaphores_and_fences_export_what_the_device_offers() {
    let a = manager();
    let b = manager();
    let caps = a.caps().unwrap().clone();
    for (handle, offered) in [
        (
            SyncHandleType::OpaqueFd,
            caps.binary_semaphore_export.opaque_fd,
        ),
        (SyncHandleType::SyncFd, caps.binary_semaphore_export.sync_fd),
    ] {
        if !offered {
            expect_unsupported(SharedSemaphore::new(&a, handle), "binary semaphore");
            continue;
        }
        let s = SharedSemaphore::new(&a, handle).unwrap();
        if handle == SyncHandleType::OpaqueFd {
            let imported = SharedSemaphore::import(&b, s.export().unwrap(), handle).unwrap();
            assert_eq!(imported.handle_type(), handle);
        }
    }
    for (handle, offered) in [
        (SyncHandleType::OpaqueFd, caps.fence_export.opaque_fd),
        (SyncHandleType::SyncFd, caps.fence_export.sync_fd),
    ] {
        if !offered {
            expect_unsupported(SharedFence::new(&a, handle), "fence");
            continue;
        }
        let f = SharedFence::new(&a, handle).unwrap();
        if handle == SyncHandleType::OpaqueFd {
            let g = SharedFence::import(&b, f.export().unwrap(), handle).unwrap();
            assert!(
                matches!(g.wait(Duration::from_millis(10)), Err(Error::Timeout(_))),
                "unsignaled"
            );
        }
    }
    assert_validation_clean();
}

#[test]
fn auto_sync_picks_the_best_mode_the_device_supports() {
    let m = Arc::new(manager());
    let modes = geyser::ipc::supported_sync_modes(&m).unwrap();
    assert_eq!(
        modes.last(),
        Some(&SyncMode::Host),
        "host fallback is always offered"
    );
    let exports = m.caps().unwrap().timeline_semaphore_export.opaque_fd;
    assert_eq!(
        modes.contains(&SyncMode::Timeline),
        exports && m.can_share_timelines()
    );
    // Binary semaphores: offered where exported as opaque FDs (tests/binary_ipc.rs).
    let binary = m.caps().unwrap().binary_semaphore_export.opaque_fd;
    assert_eq!(
        modes.contains(&SyncMode::BinarySemaphore),
        binary && m.can_share_timelines()
    );
    // Best first: timeline, binary, host.
    let rank = |s: &SyncMode| match s {
        SyncMode::Timeline => 0,
        SyncMode::BinarySemaphore => 1,
        SyncMode::Host => 2,
    };
    assert!(
        modes.windows(2).all(|w| rank(&w[0]) < rank(&w[1])),
        "{modes:?}"
    );
}

fn stream(
    sync: SyncMode,
    frames: u64,
    size: (u32, u32),
) -> (
    geyser_harness::report::ProduceReport,
    geyser_harness::report::ConsumeReport,
) {
    let name = format!("s{}-{sync:?}-{frames}", std::process::id());
    let config = ProduceConfig {
        name: name.clone(),
        descriptor: demo_descriptor(size.0, size.1, TextureFormat::Rgba8Unorm),
        frames,
        wait_consumers: 1,
        wait_timeout: Duration::from_secs(30),
        options: ProducerOptions {
            sync: Some(sync),
            ..Default::default()
        },
        frame_interval: None,
        timestamps: false,
        picture: false,
    };
    let pm = Arc::new(manager());
    let producer = std::thread::spawn(move || run_producer(pm, &config, |_| {}).unwrap());
    let cm = Arc::new(manager());
    let options = ConsumerOptions {
        sync: Some(sync),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = loop {
        match run_consumer(
            cm.clone(),
            &name,
            options.clone(),
            0,
            Duration::from_secs(20),
            |_| {},
        ) {
            Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => break other.unwrap(),
        }
    };
    (producer.join().unwrap(), report)
}

/// Device test: every frame of a 10,000-frame stream verified, in each sync mode the device
/// runs (two contexts in one process; the cross-process run is `geyser demo --sync ...`).
#[test]
#[ignore = "GPU machine: needs timeline semaphore export"]
fn ten_thousand_frames_verified_in_each_sync_mode_in_process() {
    for sync in [
        SyncMode::Timeline,
        SyncMode::BinarySemaphore,
        SyncMode::Host,
    ] {
        let (p, c) = stream(sync, 10_000, (1920, 1080));
        println!(
            "{sync:?}: produced {} at {:.0} fps; consumed {} ({} skipped, {} corrupted) at {:.0} fps, latency p50 {:.0} µs p99 {:.0} µs",
            p.frames, p.fps, c.frames, c.skipped, c.corrupted, c.fps, c.latency_p50_us, c.latency_p99_us
        );
        assert_eq!(p.frames, 10_000);
        assert_eq!(c.sync, format!("{sync:?}"));
        assert_eq!(c.corrupted, 0);
        assert!(c.frames > 0 && c.clean_end);
    }
    assert_validation_clean();
}

/// Device test: a consumer waiting on the ready timeline of a producer that died gets an
/// error after its timeout, not a hang; the ready values it saw only grew.
#[test]
#[ignore = "GPU machine: needs timeline semaphore export"]
fn timeline_wait_on_a_dead_producer_times_out_and_values_never_go_backwards() {
    let name = format!("s{}-dead", std::process::id());
    let exe = std::env::current_exe().unwrap();
    // The producer is a child process: the `ipc_producer` example next to this test binary
    // when it exists (GPU machine), else this crate's example from target/.
    let producer_bin = exe.parent().unwrap().join("ipc_producer");
    let producer_bin = if producer_bin.exists() {
        producer_bin
    } else {
        exe.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/ipc_producer")
    };
    let mut child = std::process::Command::new(producer_bin)
        .args([
            "--name",
            &name,
            "--frames",
            "0",
            "--size",
            "256x256",
            "--sync",
            "timeline",
            "--interval-ms",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn ipc_producer");
    let m = Arc::new(manager());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut consumer = loop {
        match Consumer::connect_with(
            &name,
            m.clone(),
            ConsumerOptions {
                sync: Some(SyncMode::Timeline),
                ..Default::default()
            },
        ) {
            Ok(c) => break c,
            Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(consumer.sync_mode(), SyncMode::Timeline);
    let probe = ProbeReader::new(&m).unwrap();
    let mut last_value = 0;
    let mut ready = None;
    for _ in 0..200 {
        let mut f = consumer.next_frame(Some(Duration::from_secs(5))).unwrap();
        let (wait, signal) = (f.wait_point().unwrap(), f.release_point().unwrap());
        assert!(
            wait.value > last_value,
            "ready values must grow: {} after {last_value}",
            wait.value
        );
        last_value = wait.value;
        let tex = f.texture().clone();
        let n = f.number();
        let mut f = Some(f);
        let r = probe
            .check_synced(&tex, n, std::slice::from_ref(&wait), &[signal], || {
                f.take().map_or(Ok(()), |f| f.release())
            })
            .unwrap();
        assert!(r.ok(), "frame {n}");
        let v = wait.semaphore.value().unwrap();
        assert!(v >= wait.value);
        ready = Some(wait.semaphore);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let ready = ready.unwrap();
    let start = Instant::now();
    let beyond = ready.value().unwrap() + 1_000;
    match ready.wait(beyond, Duration::from_millis(500)) {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        consumer.next_frame(Some(Duration::from_secs(2))),
        Err(Error::PeerGone(_)) | Err(Error::Timeout(_))
    ));
    assert_validation_clean();
}
