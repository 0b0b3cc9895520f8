//! A Bevy publisher, headless on the test GPU with the validation layer on: a 2D camera renders
//! a scene of known unlit colours at known places (red and green above, the blue clear colour
//! below left, and below right a square whose colour steps red → green → white each frame);
//! a Geyser consumer in another process (this test) reads those texels of every frame it
//! receives, and the stepping square proves each frame is a new one, in order.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::core_pipeline::tonemapping::{DebandDither, Tonemapping};
use bevy::diagnostic::FrameCount;
use bevy::prelude::*;
use common::{endpoint, headless_app, spawn_role, ROLE};
use geyser::ipc::ConsumerOptions;
use geyser::vulkan::{ContextOptions, DeviceSelector, Validation, VulkanTextureShareManager};
use geyser_bevy::{GeyserPublisher, GeyserPublisherStatus};
use geyser_harness::demo::run_texel_consumer;
use geyser_harness::texels::Texels;

const WIDTH: u32 = 64;
const HEIGHT: u32 = 48;
const RED: [u8; 4] = [255, 0, 0, 255];
const GREEN: [u8; 4] = [0, 255, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];
const WHITE: [u8; 4] = [255, 255, 255, 255];
/// The stepping square's colours, frame after frame.
const STEPS: [[u8; 4]; 3] = [RED, GREEN, WHITE];
/// Quadrant centres, in pixels from the top left: above left, above right, below left,
/// below right (the stepping square).
const POINTS: [(u32, u32); 4] = [
    (WIDTH / 4, HEIGHT / 4),
    (WIDTH * 3 / 4, HEIGHT / 4),
    (WIDTH / 4, HEIGHT * 3 / 4),
    (WIDTH * 3 / 4, HEIGHT * 3 / 4),
];
const FRAMES: u64 = 40;

fn srgb([r, g, b, a]: [u8; 4]) -> Color {
    Color::srgba_u8(r, g, b, a)
}

/// A quadrant-sized sprite whose centre is `dx`, `dy` quadrants from the frame's centre.
fn quadrant(colour: [u8; 4], dx: f32, dy: f32) -> (Sprite, Transform) {
    let size = Vec2::new(WIDTH as f32 / 2.0, HEIGHT as f32 / 2.0);
    (
        Sprite::from_color(srgb(colour), size),
        Transform::from_xyz(dx * size.x / 2.0, dy * size.y / 2.0, 0.0),
    )
}

#[derive(Component)]
struct Stepping;

/// Not a test: the Bevy app of the child process. Does nothing unless `GB_ROLE` is set.
#[test]
fn child_role_entry() {
    if std::env::var(ROLE).as_deref() != Ok("publisher") {
        return;
    }
    let name = std::env::var("GB_NAME").expect("GB_NAME");
    let mut app = headless_app(Duration::from_secs(300));
    app.add_systems(Startup, move |mut commands: Commands| {
        commands.spawn((
            Camera2d,
            Camera {
                clear_color: ClearColorConfig::Custom(srgb(BLUE)),
                ..default()
            },
            // Exact colours: no tonemapping, no dithering, no multisampling.
            Tonemapping::None,
            DebandDither::Disabled,
            Msaa::Off,
            GeyserPublisher::new(name.clone(), WIDTH, HEIGHT),
        ));
        commands.spawn(quadrant(RED, -1.0, 1.0));
        commands.spawn(quadrant(GREEN, 1.0, 1.0));
        commands.spawn((quadrant(STEPS[0], 1.0, -1.0), Stepping));
    })
    .add_systems(
        Update,
        |frames: Res<FrameCount>, mut square: Single<&mut Sprite, With<Stepping>>| {
            square.color = srgb(STEPS[frames.0 as usize % STEPS.len()]);
        },
    )
    .add_systems(
        Last,
        |status: Query<&GeyserPublisherStatus>, mut reported: Local<u64>| {
            for s in &status {
                if s.frames >= *reported + 10 || (s.frames > 0 && *reported == 0) {
                    *reported = s.frames;
                    println!(
                        "STATUS live={} frames={} consumers={} sync={:?} error={:?}",
                        s.live, s.frames, s.consumers, s.sync, s.last_error
                    );
                }
            }
        },
    );
    std::process::exit(common::run::run(app).into());
}

fn close(got: &[u8], want: [u8; 4]) -> bool {
    got.len() == 4 && got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 2)
}

#[test]
fn a_bevy_publisher_streams_its_known_colours_to_a_geyser_consumer_process() {
    let name = endpoint("pub");
    let mut bevy = spawn_role(
        "child_role_entry",
        "publisher",
        &[("GB_NAME", name.clone())],
    );
    let manager = Arc::new(
        VulkanTextureShareManager::create(&ContextOptions {
            device: DeviceSelector::from_env(),
            validation: Validation::Required,
        })
        .expect("a Vulkan device"),
    );
    // The first frame of the stepping square fixes the offset between Bevy's frame count and
    // the producer's frame numbers; every later frame must follow it.
    let mut offset: Option<usize> = None;
    let mut check = |number: u64, texels: &Texels| -> Result<(), String> {
        let fixed = [(0, RED), (1, GREEN), (2, BLUE)];
        for (i, want) in fixed {
            if !close(texels.get(i), want) {
                return Err(format!(
                    "texel {:?} is {:?}, not {want:?}",
                    POINTS[i],
                    texels.get(i)
                ));
            }
        }
        let step = STEPS
            .iter()
            .position(|c| close(texels.get(3), *c))
            .ok_or_else(|| format!("stepping square is {:?}", texels.get(3)))?;
        let expected =
            (number as usize + *offset.get_or_insert((step + 3 - number as usize % 3) % 3)) % 3;
        if step != expected {
            return Err(format!(
                "frame {number}: stepping square shows step {step}, expected {expected} (a repeated or reordered frame)"
            ));
        }
        Ok(())
    };
    // Bevy takes a while to start on a CPU renderer: retry until its endpoint exists.
    let deadline = Instant::now() + Duration::from_secs(180);
    let report = loop {
        match run_texel_consumer(
            manager.clone(),
            &name,
            ConsumerOptions::default(),
            FRAMES,
            Duration::from_secs(30),
            &POINTS,
            |number, texels| {
                let checked = check(number, texels);
                if let Err(why) = &checked {
                    println!("frame {number}: {why}");
                }
                checked
            },
        ) {
            Err(geyser::Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            other => break other.expect("the consumer"),
        }
    };
    println!("consumer: {}", report.summary());
    let (code, lines) = bevy.stop(Duration::from_secs(60));
    assert_eq!(code, Some(0), "the Bevy publisher failed: {lines:#?}");
    assert_eq!(report.frames, FRAMES, "{report:?}");
    assert_eq!(
        report.corrupted, 0,
        "every frame has the scene's colours: {report:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("STATUS live=true") && l.contains("consumers=1")),
        "the publisher's status saw the consumer: {lines:#?}"
    );
    let n = geyser::vulkan::diagnostics::validation_error_count();
    assert_eq!(
        n,
        0,
        "{:#?}",
        geyser::vulkan::diagnostics::validation_messages()
    );
}
