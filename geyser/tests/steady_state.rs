//! Steady state costs nothing but the two small messages: after warm-up, a frame handoff
//! (acquire, GPU write, present, next_frame, GPU probe, release, and the producer's service
//! thread taking the release) makes no heap allocation in Geyser, and opens no FD. A counting
//! global allocator watches every Rust allocation in this process (driver allocations made in C
//! are outside it). Its own test binary, so no other test allocates meanwhile.

// Linux only: Unix-socket IPC, SCM_RIGHTS, /proc FD accounting and lavapipe.
#![cfg(target_os = "linux")]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_validation_clean, manager};
use geyser::common::TextureFormat;
use geyser::ipc::{Consumer, ConsumerOptions, HostRingSharing, Producer, ProducerOptions};
use geyser_harness::demo::{demo_descriptor, write_slot};
use geyser_harness::pattern::{PatternWriter, ProbeReader};

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Both ways of receiving, one after the other (the allocation counter is process-wide):
/// importing the producer's ring, and through the host ring.
#[test]
fn a_frame_handoff_allocates_nothing_and_opens_no_fd_in_steady_state() {
    steady_state(false, HostRingSharing::Auto);
    steady_state(true, HostRingSharing::Shared);
    steady_state(true, HostRingSharing::PerConsumer);
}

fn steady_state(host_transfer: bool, host_rings: HostRingSharing) {
    let name = format!(
        "steady{}-{host_transfer}-{host_rings:?}",
        std::process::id()
    );
    let pm = Arc::new(manager());
    let cm = Arc::new(manager());
    let desc = demo_descriptor(64, 64, TextureFormat::Rgba8Unorm);
    let options = ProducerOptions {
        host_rings,
        ..Default::default()
    };
    let producer = Producer::bind(&name, pm.clone(), &desc, options).unwrap();
    let writer = PatternWriter::new(&pm, desc.tight_size()).unwrap();
    let options = ConsumerOptions {
        host_ring: host_transfer,
        ..Default::default()
    };
    let mut consumer = Consumer::connect_with(&name, cm.clone(), options).unwrap();
    let probe = ProbeReader::new(&cm).unwrap();
    let mut frame = |n: u64| {
        let slot = producer.acquire(Some(Duration::from_secs(5))).unwrap();
        write_slot(&writer, &slot).unwrap();
        producer.present(slot).unwrap();
        let mut f = consumer.next_frame(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(f.number(), n);
        let (wait, signal) = (f.wait_point(), f.release_point());
        let tex = f.texture().clone();
        let mut f = Some(f);
        let ok = probe
            .check_synced(&tex, n, wait.as_slice(), signal.as_slice(), || {
                f.take().map_or(Ok(()), |f| f.release())
            })
            .unwrap()
            .ok();
        assert!(ok, "frame {n}");
    };
    for n in 0..50 {
        frame(n);
    }
    // Let the service thread finish the last release before counting.
    std::thread::sleep(Duration::from_millis(100));
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for n in 50..250 {
        frame(n);
    }
    std::thread::sleep(Duration::from_millis(100));
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    println!(
        "allocations in 200 steady-state frames ({:?} sync, {:?}, {host_rings:?} rings): {allocations}",
        consumer.sync_mode(),
        consumer.transfer_path()
    );
    assert_eq!(allocations, 0, "Geyser allocated in steady state");
    assert_eq!(std::fs::read_dir("/proc/self/fd").unwrap().count(), fds);
    assert_validation_clean();
}
