//! Linear frames (`FrameLayout::Linear`): a producer process copies each frame on its GPU
//! into a shared buffer, which a consumer imports and reads row by row; who is refused them;
//! and frames detached from their guard (what the Python bindings hold).

// Linux only: Unix-socket IPC and lavapipe.
#![cfg(target_os = "linux")]

mod common;

/// Not a test: the body of a child process (see `common::child`).
#[test]
fn child_role_entry() {
    common::child::role_entry()
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::{unique, ChildProc};
use common::{assert_validation_clean, manager};
use geyser::common::RejectReason;
use geyser::ipc::{Consumer, ConsumerOptions, FrameLayout, Producer, ProducerOptions};
use geyser::vulkan::ash::vk;
use geyser::vulkan::{SharedBuffer, VulkanTextureShareManager};
use geyser::Error;
use geyser_harness::demo::demo_descriptor;
use geyser_harness::pattern::{expected_texel, frame_word, PatternWriter};

fn connect(
    name: &str,
    m: &Arc<VulkanTextureShareManager>,
    options: ConsumerOptions,
) -> geyser::Result<Consumer> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Consumer::connect_with(name, m.clone(), options.clone()) {
            Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

#[test]
fn linear_frames_reach_a_consumer_process_row_for_row() {
    let name = unique("linear");
    // An odd width: rows of 61 texels, regions rounded up to 64 KiB.
    let (w, h, frames) = (61u32, 37u32, 40u64);
    let producer = ChildProc::spawn(
        "producer",
        &name,
        &[
            ("GT_W", "61"),
            ("GT_H", "37"),
            ("GT_FRAMES", "40"),
            ("GT_LOSSLESS", "1"),
        ],
    );
    let m = Arc::new(manager());
    let options = ConsumerOptions {
        lossless: true,
        layout: FrameLayout::Linear,
        ..Default::default()
    };
    let mut consumer = connect(&name, &m, options).unwrap();
    let layout = consumer.linear_layout().expect("linear frames were set up");
    assert_eq!(layout.row_pitch, u64::from(w) * 4);
    assert_eq!(layout.slots, consumer.textures().len());
    assert!(layout.slot_bytes >= layout.row_pitch * u64::from(h));
    let linear = consumer.take_linear_frames().expect("the handles, once");
    assert!(consumer.take_linear_frames().is_none());
    let usage = vk::BufferUsageFlags::TRANSFER_SRC
        | vk::BufferUsageFlags::TRANSFER_DST
        | vk::BufferUsageFlags::STORAGE_BUFFER;
    let buffer = SharedBuffer::import(
        &m,
        linear.memory,
        layout.offset(layout.slots),
        linear.allocation_size,
        linear.memory_type_index,
        usage,
    )
    .unwrap();
    let bytes = buffer.buffer().bytes();
    assert!(!bytes.is_empty(), "lavapipe's memory is host-visible");
    let mut seen = 0;
    loop {
        let frame = match consumer.next_frame(Some(Duration::from_secs(20))) {
            Ok(f) => f,
            Err(Error::PeerGone(_)) => break,
            Err(e) => panic!("{e}"),
        };
        // Host mode on lavapipe: the copy was done before the frame was announced.
        assert!(linear.ready.is_none() && frame.wait_point().is_none());
        let region = &bytes[layout.offset(frame.slot()) as usize..];
        let word = frame_word(frame.number());
        for y in 0..h as usize {
            let row = &region[y * layout.row_pitch as usize..][..w as usize * 4];
            let expected: Vec<u8> = (0..u64::from(w))
                .flat_map(|x| expected_texel(word, y as u64 * u64::from(w) + x, 4))
                .collect();
            assert_eq!(row, &expected[..], "frame {} row {y}", frame.number());
        }
        assert_eq!(frame.number(), seen);
        seen += 1;
    }
    assert_eq!(seen, frames);
    let (code, _, stderr) = producer.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(consumer.stream_ended(), "the producer said goodbye");
    assert_validation_clean();
}

#[test]
fn linear_frames_are_refused_where_they_cannot_be_made_or_imported() {
    let m = Arc::new(manager());
    let desc = demo_descriptor(32, 16, geyser::common::TextureFormat::Rgba8Unorm);
    let name = unique("linear-off");
    let off = ProducerOptions {
        linear_frames: false,
        ..Default::default()
    };
    let _producer = Producer::bind(&name, m.clone(), &desc, off).unwrap();
    let linear = ConsumerOptions {
        layout: FrameLayout::Linear,
        ..Default::default()
    };
    let other = Arc::new(manager());
    match Consumer::connect_with(&name, other.clone(), linear.clone()) {
        Err(Error::Rejected { reason, detail }) => {
            assert_eq!(reason, RejectReason::Device);
            assert!(detail.contains("linear_frames = false"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Through a host ring (a consumer on another device) there is no memory to share.
    let name = unique("linear-ring");
    let _producer = Producer::bind(&name, m.clone(), &desc, ProducerOptions::default()).unwrap();
    let ring = ConsumerOptions {
        host_ring: true,
        ..linear
    };
    match Consumer::connect_with(&name, other, ring) {
        Err(Error::Rejected { reason, .. }) => assert_eq!(reason, RejectReason::Device),
        other => panic!("{other:?}"),
    }
    assert_validation_clean();
}

#[test]
fn a_detached_frame_stays_held_until_attached_and_released() {
    let m = Arc::new(manager());
    let desc = demo_descriptor(16, 16, geyser::common::TextureFormat::Rgba8Unorm);
    let name = unique("detach");
    let options = ProducerOptions {
        slots: 2,
        lossless: true,
        ..Default::default()
    };
    let producer = Producer::bind(&name, m.clone(), &desc, options).unwrap();
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let other = Arc::new(manager());
    let consumer_options = ConsumerOptions {
        lossless: true,
        ..Default::default()
    };
    let mut consumer = Consumer::connect_with(&name, other, consumer_options).unwrap();
    producer
        .wait_for_consumers(1, Duration::from_secs(10))
        .unwrap();
    let publish = |timeout| -> geyser::Result<u64> {
        let slot = producer.acquire(Some(timeout))?;
        geyser_harness::demo::write_slot(&writer, &slot)?;
        producer.present(slot)
    };
    publish(Duration::from_secs(5)).unwrap();
    let held = consumer
        .next_frame(Some(Duration::from_secs(5)))
        .unwrap()
        .detach();
    assert_eq!(held.id().frame, 0);
    publish(Duration::from_secs(5)).unwrap(); // sent to the consumer: both slots are held now
    assert!(matches!(
        publish(Duration::from_millis(300)),
        Err(Error::Timeout(_))
    ));
    let frame = consumer.attach(held).unwrap();
    assert_eq!(frame.number(), 0);
    frame.release().unwrap();
    publish(Duration::from_secs(5)).unwrap(); // slot 0 is free again
                                              // A frame of another consumer is refused.
    let name2 = unique("detach-2");
    let producer2 = Producer::bind(&name2, m.clone(), &desc, ProducerOptions::default()).unwrap();
    let mut consumer2 =
        Consumer::connect_with(&name2, Arc::new(manager()), Default::default()).unwrap();
    let slot = producer2.acquire(Some(Duration::from_secs(5))).unwrap();
    geyser_harness::demo::write_slot(&writer, &slot).unwrap();
    producer2.present(slot).unwrap();
    let theirs = consumer2
        .next_frame(Some(Duration::from_secs(5)))
        .unwrap()
        .detach();
    assert!(matches!(
        consumer.attach(theirs),
        Err(Error::InvalidArgument { .. })
    ));
    assert_validation_clean();
}
