//! A Bevy subscriber, headless on the test GPU with the validation layer on, receives the
//! pattern frames of `ipc_producer`'s loop (`geyser_harness::demo::run_producer`, in a child
//! process): each Bevy frame the subscriber's image is read back from the GPU and must hold one
//! whole producer frame (every texel the word of one frame number). Then the producer is
//! killed: the Bevy app runs on, showing the last frame; a new producer under the same name is
//! picked up, and its frames show in the image.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bevy::prelude::*;
use bevy::render::gpu_readback::{Readback, ReadbackComplete};
use common::{endpoint, headless_app, spawn_role, ChildProcess, ROLE};
use geyser::common::TextureFormat;
use geyser::ipc::ProducerOptions;
use geyser::vulkan::{ContextOptions, DeviceSelector, Validation, VulkanTextureShareManager};
use geyser_bevy::{GeyserSubscriber, GeyserSubscriberStatus};
use geyser_harness::demo::{demo_descriptor, run_producer, ProduceConfig};
use geyser_harness::pattern::frame_of_word;

/// 64 RGBA8 texels are 256 bytes: read-back rows carry no padding.
const WIDTH: u32 = 64;
const HEIGHT: u32 = 32;
/// New frames each connection must show in the image.
const SHOWN: usize = 10;

/// Not a test: the child processes. Does nothing unless `GB_ROLE` is set.
#[test]
fn child_role_entry() {
    let name = || std::env::var("GB_NAME").expect("GB_NAME");
    match std::env::var(ROLE).as_deref() {
        Ok("producer") => produce(&name()),
        Ok("subscriber") => subscribe(name()),
        _ => {}
    }
}

/// `ipc_producer`'s loop: pattern frames, forever, every 20 ms, until killed.
fn produce(name: &str) {
    let manager = VulkanTextureShareManager::create(&ContextOptions {
        device: DeviceSelector::from_env(),
        validation: Validation::Required,
    })
    .expect("a Vulkan device");
    let config = ProduceConfig {
        name: name.to_owned(),
        descriptor: demo_descriptor(WIDTH, HEIGHT, TextureFormat::Rgba8Unorm),
        frames: 0,
        wait_consumers: 0,
        wait_timeout: Duration::ZERO,
        options: ProducerOptions::default(),
        frame_interval: Some(Duration::from_millis(20)),
        timestamps: false,
        picture: false,
    };
    println!("PRODUCING");
    let result = run_producer(Arc::new(manager), &config, |_| {});
    eprintln!("producer ended: {result:?}");
    std::process::exit(1);
}

/// What the subscriber app saw in its image.
#[derive(Resource, Default)]
struct Seen {
    last: Option<u32>,
}

fn subscribe(name: String) {
    let mut app = headless_app(Duration::from_secs(400));
    app.init_resource::<Seen>()
        .add_systems(
            Startup,
            move |mut commands: Commands, mut images: ResMut<Assets<Image>>| {
                let subscriber = GeyserSubscriber::new(name.clone(), &mut images);
                // Read the image back from the GPU every frame.
                commands
                    .spawn(Readback::texture(subscriber.image.clone()))
                    .observe(check_readback);
                commands.spawn(subscriber);
            },
        )
        .add_systems(
            Last,
            |status: Single<&GeyserSubscriberStatus, Changed<GeyserSubscriberStatus>>,
             mut connected: Local<Option<bool>>| {
                if *connected != Some(status.connected) {
                    *connected = Some(status.connected);
                    println!(
                        "STATUS connected={} connections={} size={:?} sync={:?} error={:?}",
                        status.connected,
                        status.connections,
                        status.size,
                        status.sync,
                        status.last_error
                    );
                }
            },
        );
    std::process::exit(common::run::run(app).into());
}

/// Every read-back must be one whole frame of the producer (or the zeros before the first).
fn check_readback(
    readback: On<ReadbackComplete>,
    mut seen: ResMut<Seen>,
    status: Single<&GeyserSubscriberStatus>,
) {
    let data = &readback.data;
    if data.len() != (WIDTH * HEIGHT * 4) as usize {
        // The 1x1 image before the connection.
        return;
    }
    let word = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    if data.chunks_exact(4).any(|t| t != word.to_le_bytes()) {
        if data.iter().all(|b| *b == 0) {
            return; // resized, not written yet
        }
        println!("TORN image: not one frame's word throughout (first texel {word:#010x})");
        std::process::exit(3);
    }
    let frame = frame_of_word(word);
    if seen.last != Some(frame) {
        seen.last = Some(frame);
        println!("FRAME connection={} n={frame}", status.connections);
    }
}

/// Frames shown (read back) during connection `connection`.
fn shown(lines: &[String], connection: u64) -> usize {
    let tag = format!("FRAME connection={connection} ");
    lines.iter().filter(|l| l.contains(&tag)).count()
}

fn producer(name: &str) -> ChildProcess {
    spawn_role(
        "child_role_entry",
        "producer",
        &[("GB_NAME", name.to_owned())],
    )
}

#[test]
fn a_bevy_subscriber_shows_producer_frames_survives_a_killed_producer_and_picks_up_a_new_one() {
    let name = endpoint("sub");
    let mut first = producer(&name);
    first.wait_for("the producer", Duration::from_secs(60), |l| {
        l.iter().any(|l| l.ends_with("PRODUCING"))
    });
    let mut bevy = spawn_role(
        "child_role_entry",
        "subscriber",
        &[("GB_NAME", name.clone())],
    );
    bevy.wait_for("frames in the image", Duration::from_secs(240), |l| {
        shown(l, 1) >= SHOWN
    });

    first.kill();
    bevy.wait_for("the subscriber to notice", Duration::from_secs(30), |l| {
        l.iter()
            .any(|l| l.contains("STATUS connected=false connections=1"))
    });
    // It keeps running (and keeps its last frame) with no producer at all.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        bevy.is_running(),
        "the Bevy app died with its producer: {:#?}",
        bevy.seen
    );

    let mut second = producer(&name);
    bevy.wait_for(
        "frames of the new producer",
        Duration::from_secs(120),
        |l| shown(l, 2) >= SHOWN,
    );
    let (code, lines) = bevy.stop(Duration::from_secs(60));
    second.kill();
    assert_eq!(code, Some(0), "the Bevy subscriber failed: {lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("TORN")), "{lines:#?}");
}
