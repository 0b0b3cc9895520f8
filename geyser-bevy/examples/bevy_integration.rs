//! A small animated 3D scene whose camera publishes every frame it renders to the Geyser
//! endpoint `bevy_integration`; the window shows the same scene from a second camera. Any
//! Geyser consumer can attach (the example prints how).
//!
//! `cargo run -p geyser-bevy --example bevy_integration --ignore-rust-version -- [--name N] [--size 1280x720] [--frames N --screenshot PATH] [--headless]`
//!
//! `--ignore-rust-version`: Bevy 0.20.1 declares Rust 1.97.1 but builds with 1.95.

mod common;

use std::process::ExitCode;

use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::prelude::*;
use clap::Parser;
use common::scene::{eye, scene, spin, BACKGROUND};
use geyser_bevy::{GeyserPublisher, GeyserPublisherStatus};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    run: common::RunArgs,
    /// Endpoint name consumers attach to.
    #[arg(long, default_value = "bevy_integration")]
    name: String,
    /// Size of the published frames, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    size: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Ok((width, height)) = geyser_harness::args::parse_size(&args.size) else {
        eprintln!("--size: expected WIDTHxHEIGHT, got {}", args.size);
        return ExitCode::from(2);
    };
    let mut app = common::app("geyser: bevy_integration", &args.run);
    let name = args.name.clone();
    let windowed = !args.run.headless;
    app.insert_resource(ClearColor(BACKGROUND))
        .add_systems(
            Startup,
            move |mut commands: Commands,
                  mut meshes: ResMut<Assets<Mesh>>,
                  mut materials: ResMut<Assets<StandardMaterial>>| {
                let eye = eye();
                let publisher = GeyserPublisher::new(name.clone(), width, height);
                commands.spawn((Camera3d::default(), Tonemapping::None, eye, publisher));
                if windowed {
                    commands.spawn((
                        Camera3d::default(),
                        Tonemapping::None,
                        Camera {
                            order: 1,
                            ..default()
                        },
                        eye,
                    ));
                }
                scene(&mut commands, &mut meshes, &mut materials);
                println!("publishing {width}x{height} frames as {name:?}; attach with:");
                println!("  cargo run -p geyser-bevy --example bevy_multi_process --ignore-rust-version -- --subscribe {name}");
                println!("  or geyser::ipc::Consumer::connect({name:?}, manager) from any Vulkan or wgpu program");
            },
        )
        .add_systems(Update, spin)
        .add_systems(Last, report);
    ExitCode::from(common::run(app))
}

/// Prints the publisher's status when it changes.
fn report(
    status: Query<&GeyserPublisherStatus, Changed<GeyserPublisherStatus>>,
    mut last: Local<(bool, usize)>,
) {
    for s in &status {
        if (s.live, s.consumers) != *last {
            *last = (s.live, s.consumers);
            println!(
                "publisher: live {}, {} consumer(s), sync {:?}, {} frames{}",
                s.live,
                s.consumers,
                s.sync,
                s.frames,
                s.last_error
                    .as_deref()
                    .map(|e| format!(", error: {e}"))
                    .unwrap_or_default()
            );
        }
    }
}
