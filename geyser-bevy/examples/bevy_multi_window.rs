//! Two windows in one app, joined through Geyser (not through Bevy's own render-target
//! sharing): the first window shows a 3D scene, and a publisher camera renders the same scene
//! into a Geyser ring; the second window shows that ring's newest frame through a
//! `GeyserSubscriber` image, under its own UI overlay (frame number, fps, sync).
//!
//! `cargo run -p geyser-bevy --example bevy_multi_window --ignore-rust-version -- [--frames N --screenshot PATH]`
//!
//! `--screenshot` captures the second window. (`--ignore-rust-version`: Bevy 0.20.1 declares
//! Rust 1.97.1 but builds with 1.95.)

mod common;

use std::process::ExitCode;

use bevy::camera::RenderTarget;
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::prelude::*;
use bevy::window::WindowRef;
use clap::Parser;
use common::scene::{eye, scene, spin, BACKGROUND};
use common::ScreenshotWindow;
use geyser_bevy::{GeyserPublisher, GeyserSubscriber, GeyserSubscriberStatus};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    run: common::RunArgs,
}

/// The second window's own background, unlike the scene's.
const SECOND_BACKGROUND: Color = Color::srgb(0.25, 0.25, 0.25);

#[derive(Component)]
struct Overlay;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.run.headless {
        eprintln!("bevy_multi_window needs windows");
        return ExitCode::from(2);
    }
    let mut app = common::app("geyser: scene (rendered into Geyser)", &args.run);
    // One endpoint per process, so runs side by side do not meet.
    let name = format!("bevy_multi_window-{}", std::process::id());
    app.insert_resource(ClearColor(BACKGROUND))
        .add_systems(
            Startup,
            move |mut commands: Commands,
                  mut meshes: ResMut<Assets<Mesh>>,
                  mut materials: ResMut<Assets<StandardMaterial>>,
                  mut images: ResMut<Assets<Image>>| {
                // Window one: the scene, and a camera rendering it into Geyser's ring.
                scene(&mut commands, &mut meshes, &mut materials);
                commands.spawn((Camera3d::default(), Tonemapping::None, eye()));
                commands.spawn((
                    Camera3d::default(),
                    Tonemapping::None,
                    eye(),
                    GeyserPublisher::new(name.clone(), 640, 360),
                ));
                // Window two: the ring's newest frame, from the subscriber, with an overlay.
                let second = commands
                    .spawn(Window {
                        title: "geyser: the scene through Geyser".into(),
                        resolution: (640, 360).into(),
                        ..default()
                    })
                    .id();
                commands.insert_resource(ScreenshotWindow(second));
                let camera = commands
                    .spawn((
                        Camera2d,
                        Camera {
                            clear_color: ClearColorConfig::Custom(SECOND_BACKGROUND),
                            ..default()
                        },
                        RenderTarget::Window(WindowRef::Entity(second)),
                    ))
                    .id();
                let subscriber = GeyserSubscriber::new(name.clone(), &mut images);
                commands
                    .spawn((
                        Node {
                            width: percent(100),
                            height: percent(100),
                            ..default()
                        },
                        UiTargetCamera(camera),
                        ImageNode::new(subscriber.image.clone()),
                        subscriber,
                    ))
                    .with_child((
                        Text::new("waiting for the first frame"),
                        TextColor(Color::WHITE),
                        Node {
                            margin: UiRect::all(px(8)),
                            ..default()
                        },
                        Overlay,
                    ));
            },
        )
        .add_systems(Update, (spin, overlay));
    ExitCode::from(common::run(app))
}

fn overlay(status: Single<&GeyserSubscriberStatus>, mut text: Single<&mut Text, With<Overlay>>) {
    let s = *status;
    text.0 = match s.frame {
        Some(frame) => format!(
            "through Geyser: frame {frame}, {:.0} fps, {} sync",
            s.fps,
            s.sync.map_or("no".into(), |m| format!("{m:?}"))
        ),
        None => format!(
            "waiting for the first frame{}",
            s.last_error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
    };
}
