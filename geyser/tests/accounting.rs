//! FD and Vulkan object accounting: create/export/import/drop cycles, also concurrent ones,
//! leave nothing open. In a test binary of their own, serialized by a lock, so that no other
//! test opens FDs or objects meanwhile.

// Linux only: Unix-socket IPC, SCM_RIGHTS, /proc FD accounting and lavapipe.
#![cfg(target_os = "linux")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_validation_clean, manager, pattern};
use geyser::common::{TextureAspect, TextureDescriptor, TextureFormat, TextureUsage};
use geyser::ipc::{Consumer, Producer, ProducerOptions};
use geyser::vulkan::diagnostics::live_objects;
use geyser::vulkan::{aspect_size, TexturePool};
use geyser::TextureShareManager;
use geyser_harness::demo::demo_descriptor;
use geyser_harness::pattern::{PatternWriter, ProbeReader};

static SERIAL: Mutex<()> = Mutex::new(());

const COPY: [TextureUsage; 3] = [
    TextureUsage::CopySrc,
    TextureUsage::CopyDst,
    TextureUsage::TextureBinding,
];

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[test]
fn hundred_create_export_import_drop_cycles_leave_fd_count_flat() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let a = manager();
    let b = manager();
    let desc = TextureDescriptor::new(
        64,
        64,
        TextureFormat::Rgba8Unorm,
        &[TextureUsage::TextureBinding, TextureUsage::CopySrc],
    );
    // Warm up once: drivers open files lazily on first use.
    {
        let t = a.create_texture(&desc).unwrap();
        let _ = b.import(a.export(&t).unwrap()).unwrap();
    }
    let (fds, objects) = (open_fds(), live_objects());
    for _ in 0..100 {
        let t = a.create_shareable_texture(&desc).unwrap();
        let h = a.export_texture(t.as_ref()).unwrap();
        let same_ctx = a.import_texture(h, &desc).unwrap();
        let other_ctx = b.import_with(a.exported(h).unwrap(), &desc).unwrap();
        a.release_texture_handle(h).unwrap();
        drop((t, same_ctx, other_ctx));
    }
    // Error paths close what they were given too.
    for _ in 0..10 {
        let t = a.create_texture(&desc).unwrap();
        let wrong = TextureDescriptor {
            width: 65,
            ..desc.clone()
        };
        assert!(b.import_with(a.export(&t).unwrap(), &wrong).is_err());
    }
    assert_eq!(open_fds(), fds, "open FDs before/after 100 cycles");
    assert_eq!(live_objects(), objects);
    assert_validation_clean();
}

#[test]
fn eight_threads_create_export_import_and_drop_concurrently() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let a = Arc::new(manager());
    let b = Arc::new(manager());
    let (fds, before) = (open_fds(), live_objects());
    std::thread::scope(|s| {
        for thread in 0..8u32 {
            let (a, b) = (a.clone(), b.clone());
            s.spawn(move || {
                for i in 0..6u32 {
                    let desc = TextureDescriptor::new(
                        16 + thread,
                        16 + i,
                        TextureFormat::Rgba8Unorm,
                        &COPY,
                    );
                    let t = a.create_texture(&desc).unwrap();
                    let data = pattern(
                        desc.format,
                        TextureAspect::Color,
                        aspect_size(&t, TextureAspect::Color) as usize,
                        thread * 100 + i,
                    );
                    a.write_texture(&t, TextureAspect::Color, &data).unwrap();
                    let h = a.export_texture(&t).unwrap();
                    let imported = b.import_with(a.exported(h).unwrap(), &desc).unwrap();
                    a.release_texture_handle(h).unwrap();
                    assert_eq!(
                        b.read_texture(&imported, TextureAspect::Color).unwrap(),
                        data
                    );
                }
            });
        }
    });
    assert_eq!(live_objects(), before);
    assert_eq!(open_fds(), fds);
    assert_eq!(a.open_handles(), 0);
    assert_validation_clean();
}

#[test]
fn fifty_ipc_connect_disconnect_cycles_leave_fds_flat_on_both_sides() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Producer and consumers in this process: both sides' FDs are counted.
    let name = format!("acct{}-cycles", std::process::id());
    let m = Arc::new(manager());
    let desc = demo_descriptor(32, 32, TextureFormat::Rgba8Unorm);
    let producer = Producer::bind(
        &name,
        m.clone(),
        &desc,
        ProducerOptions {
            slots: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let slot = producer.acquire(None).unwrap();
    geyser_harness::demo::write_slot(&writer, &slot).unwrap();
    producer.present(slot).unwrap();
    let cycle = || {
        let mut c = Consumer::connect(&name, m.clone()).unwrap();
        let f = c.next_frame(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(f.number(), 0);
    };
    cycle(); // warm-up
    let wait_gone = || {
        let t = Instant::now();
        while producer.consumer_count() > 0 && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_gone();
    let fds = open_fds();
    let objects = live_objects();
    for _ in 0..50 {
        cycle();
    }
    wait_gone();
    assert_eq!(open_fds(), fds);
    assert_eq!(live_objects(), objects);
    assert_validation_clean();
}

#[test]
fn a_texture_pool_reuses_allocations_and_imports_and_frees_them_when_cleared() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let a = Arc::new(manager());
    let b = manager();
    let desc = demo_descriptor(64, 64, TextureFormat::Rgba8Unorm);
    let writer = PatternWriter::new(&a, desc.tight_size()).unwrap();
    let probe = ProbeReader::new(&b).unwrap();
    let (fds, objects) = (open_fds(), live_objects());
    let pool = TexturePool::new(a.clone(), 2);
    let mut first = pool.create(&desc).unwrap();
    assert!(!first.recycled());
    let (image, imported) = (first.image(), first.import_into(&b).unwrap());
    writer.write(&first, 1).unwrap();
    assert!(probe.check(&imported, 1).unwrap().ok());
    let imported_image = imported.image();
    drop((first, imported));
    assert_eq!(pool.free_count(), 1);

    // The same kind (the label does not count) comes back with its import; the texels
    // written through it show on the other context.
    let mut again = pool.create(&desc.clone().with_label("other")).unwrap();
    assert!(again.recycled());
    assert_eq!(again.image(), image);
    let imported = again.import_into(&b).unwrap();
    assert_eq!(imported.image(), imported_image);
    writer.write(&again, 2).unwrap();
    assert!(probe.check(&imported, 2).unwrap().ok());
    // Another kind is another allocation.
    let wide = demo_descriptor(128, 64, TextureFormat::Rgba8Unorm);
    let other = pool.create(&wide).unwrap();
    assert!(!other.recycled());
    assert_ne!(other.image(), image);
    let third = pool
        .create(&demo_descriptor(32, 32, TextureFormat::Rgba8Unorm))
        .unwrap();
    drop((again, imported, other, third));
    // At most two are kept; the third was destroyed on the way back.
    assert_eq!(pool.free_count(), 2);
    let stats = pool.stats();
    assert_eq!((stats.created, stats.recycled), (3, 1));
    pool.clear();
    assert_eq!(live_objects(), objects);
    assert_eq!(open_fds(), fds);
    assert_validation_clean();
}

#[test]
fn a_producer_takes_its_ring_from_a_texture_pool_and_gives_it_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let m = Arc::new(manager());
    let desc = demo_descriptor(32, 32, TextureFormat::Rgba8Unorm);
    let pool = TexturePool::new(m.clone(), 4);
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let probe = ProbeReader::new(&m).unwrap();
    let mut rings = Vec::new();
    // Two producers one after the other on one pool: the second streams from the first's
    // allocations, and a consumer sees its frames, not the first's.
    for round in 0..2u64 {
        let name = format!("acct{}-pool{round}", std::process::id());
        let options = ProducerOptions {
            slots: 3,
            texture_pool: Some(pool.clone()),
            ..Default::default()
        };
        let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
        let mut ring: Vec<_> = producer.textures().iter().map(|t| t.image()).collect();
        ring.sort();
        rings.push(ring);
        let mut consumer = Consumer::connect(&name, m.clone()).unwrap();
        for _ in 0..=round {
            let slot = producer.acquire(None).unwrap();
            geyser_harness::demo::write_slot(&writer, &slot).unwrap();
            producer.present(slot).unwrap();
            let f = consumer.next_frame(Some(Duration::from_secs(5))).unwrap();
            assert!(probe.check(f.texture(), f.number()).unwrap().ok());
        }
        drop(consumer);
        assert_eq!(
            pool.free_count(),
            0,
            "the ring is on loan while the producer lives"
        );
        drop(producer);
        assert_eq!(pool.free_count(), 3, "the ring went back");
    }
    assert_eq!(
        rings[0], rings[1],
        "the second ring is the first's allocations"
    );
    let stats = pool.stats();
    assert_eq!((stats.created, stats.recycled), (3, 3));

    // A pool on another device (manager) is refused.
    let elsewhere = TexturePool::new(Arc::new(manager()), 4);
    let options = ProducerOptions {
        texture_pool: Some(elsewhere),
        ..Default::default()
    };
    let name = format!("acct{}-pool-other", std::process::id());
    let e = Producer::bind(&name, m.clone(), &desc, options).unwrap_err();
    assert!(
        matches!(
            e,
            geyser::Error::InvalidArgument {
                what: "texture_pool",
                ..
            }
        ),
        "{e}"
    );
    pool.clear();
    assert_validation_clean();
}
