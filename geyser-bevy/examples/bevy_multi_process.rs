//! Physics and rendering in two processes: a simulation process (balls falling under gravity,
//! bouncing off the walls and each other; a small integrator of its own) renders its view
//! headless and publishes it; the display process (this one, windowed) subscribes, composes
//! the frames with its own UI (frame counter, connection status), and survives the simulation
//! being killed and restarted: the last frame stays up, and the new simulation is picked up.
//!
//! `cargo run -p geyser-bevy --example bevy_multi_process --ignore-rust-version -- [--restart-at N] [--frames N --screenshot PATH]`
//!
//! - `--restart-at N`: kill the simulation (SIGKILL) after N displayed frames and start a new one.
//! - `--subscribe NAME`: show any Geyser endpoint instead (no simulation of its own).
//! - `--frames N` counts frames shown with content (from the first frame received; paused
//!   while the simulation is away).
//!
//! (`--ignore-rust-version`: Bevy 0.20.1 declares Rust 1.97.1 but builds with 1.95.)

mod common;

use std::io::Read;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bevy::core_pipeline::tonemapping::{DebandDither, Tonemapping};
use bevy::prelude::*;
use clap::Parser;
use common::{CountFrames, FramesSoFar};
use geyser_bevy::{GeyserPublisher, GeyserSubscriber, GeyserSubscriberStatus};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    run: common::RunArgs,
    /// Run as the simulation process, publishing to this endpoint (what the display starts).
    #[arg(long, value_name = "NAME")]
    sim: Option<String>,
    /// Show this endpoint instead of starting a simulation.
    #[arg(long, value_name = "NAME")]
    subscribe: Option<String>,
    /// Kill the simulation after this many displayed frames and start a new one.
    #[arg(long)]
    restart_at: Option<u32>,
}

/// The simulation's view, unlike the display's own background.
const SIM_BACKGROUND: Color = Color::srgb(0.02, 0.03, 0.10);
const DISPLAY_BACKGROUND: Color = Color::srgb(0.25, 0.25, 0.25);
const SIZE: (u32, u32) = (640, 360);

fn main() -> ExitCode {
    let args = Args::parse();
    let code = match &args.sim {
        Some(name) => simulate(name.clone(), &args.run),
        None => display(&args),
    };
    ExitCode::from(code)
}

// --- the simulation process --------------------------------------------------------------

/// A ball of the simulation.
#[derive(Component)]
struct Body {
    velocity: Vec2,
    radius: f32,
}

const GRAVITY: f32 = -600.0;
const RESTITUTION: f32 = 0.9;

fn simulate(name: String, run: &common::RunArgs) -> u8 {
    let mut app = common::app(
        "simulation",
        &common::RunArgs {
            headless: true,
            ..run.clone()
        },
    );
    // The display holds our stdin; when it closes (the display ended), so do we.
    let orphaned = Arc::new(AtomicBool::new(false));
    let flag = orphaned.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        flag.store(true, Ordering::SeqCst);
    });
    app.add_systems(
        Startup,
        move |mut commands: Commands,
              mut meshes: ResMut<Assets<Mesh>>,
              mut materials: ResMut<Assets<ColorMaterial>>| {
            commands.spawn((
                Camera2d,
                Camera {
                    clear_color: ClearColorConfig::Custom(SIM_BACKGROUND),
                    ..default()
                },
                Tonemapping::None,
                DebandDither::Disabled,
                GeyserPublisher::new(name.clone(), SIZE.0, SIZE.1),
            ));
            for i in 0..24 {
                let radius = 10.0 + (i % 4) as f32 * 4.0;
                let hue = i as f32 * 360.0 / 24.0;
                commands.spawn((
                    Mesh2d(meshes.add(Circle::new(radius))),
                    MeshMaterial2d(materials.add(Color::hsl(hue, 0.9, 0.6))),
                    Transform::from_xyz(
                        -260.0 + (i % 8) as f32 * 70.0,
                        40.0 + (i / 8) as f32 * 50.0,
                        0.0,
                    ),
                    Body {
                        velocity: Vec2::new(((i * 37) % 11) as f32 * 20.0 - 100.0, 0.0),
                        radius,
                    },
                ));
            }
            println!("simulating, publishing as {name:?}");
        },
    )
    .add_systems(Update, step)
    .add_systems(Last, move |mut exit: MessageWriter<AppExit>| {
        if orphaned.load(Ordering::SeqCst) {
            exit.write(AppExit::Success);
        }
    });
    common::run(app)
}

/// One step of 1/60 s: gravity, walls, then pairwise elastic collisions (equal density).
fn step(mut bodies: Query<(&mut Transform, &mut Body)>) {
    let dt = 1.0 / 60.0;
    let (half_w, half_h) = (SIZE.0 as f32 / 2.0, SIZE.1 as f32 / 2.0);
    for (mut t, mut b) in &mut bodies {
        b.velocity.y += GRAVITY * dt;
        t.translation += (b.velocity * dt).extend(0.0);
        let r = b.radius;
        if t.translation.x.abs() > half_w - r {
            t.translation.x = t.translation.x.clamp(r - half_w, half_w - r);
            b.velocity.x = -b.velocity.x * RESTITUTION;
        }
        if t.translation.y < r - half_h {
            t.translation.y = r - half_h;
            b.velocity.y = -b.velocity.y * RESTITUTION;
        }
    }
    let mut all: Vec<_> = bodies.iter_mut().collect();
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            let (a, b) = all.split_at_mut(j);
            let ((ta, ba), (tb, bb)) = (&mut a[i], &mut b[0]);
            let delta = (tb.translation - ta.translation).truncate();
            let (distance, reach) = (delta.length(), ba.radius + bb.radius);
            if distance >= reach || distance == 0.0 {
                continue;
            }
            let normal = delta / distance;
            let (ma, mb) = (ba.radius * ba.radius, bb.radius * bb.radius);
            // Push apart, in proportion to the other's mass.
            let overlap = reach - distance;
            ta.translation -= (normal * overlap * mb / (ma + mb)).extend(0.0);
            tb.translation += (normal * overlap * ma / (ma + mb)).extend(0.0);
            let closing = (ba.velocity - bb.velocity).dot(normal);
            if closing > 0.0 {
                let impulse = (1.0 + RESTITUTION) * closing / (ma + mb);
                ba.velocity -= normal * impulse * mb;
                bb.velocity += normal * impulse * ma;
            }
        }
    }
}

// --- the display process -----------------------------------------------------------------

/// The simulation child, and when to restart it.
#[derive(Resource)]
struct Simulation {
    name: String,
    child: Option<Child>,
    restart_at: Option<u32>,
}

impl Simulation {
    fn start(&mut self) {
        let exe = std::env::current_exe().expect("the example's own path");
        match Command::new(exe)
            .args(["--sim", &self.name])
            .stdin(Stdio::piped())
            .spawn()
        {
            Ok(child) => self.child = Some(child),
            Err(e) => error!("starting the simulation: {e}"),
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Component)]
struct Overlay;

fn display(args: &Args) -> u8 {
    if args.run.headless {
        eprintln!("the display needs a window (the simulation runs headless)");
        return 2;
    }
    let mut app = common::app("geyser: physics from another process", &args.run);
    let name = args
        .subscribe
        .clone()
        .unwrap_or_else(|| format!("bevy_multi_process-{}", std::process::id()));
    if args.subscribe.is_none() {
        let mut sim = Simulation {
            name: name.clone(),
            child: None,
            restart_at: args.restart_at,
        };
        sim.start();
        app.insert_resource(sim);
    }
    // Frames count once there is something to show.
    app.insert_resource(CountFrames(false))
        .insert_resource(ClearColor(DISPLAY_BACKGROUND))
        .add_systems(
            Startup,
            move |mut commands: Commands, mut images: ResMut<Assets<Image>>| {
                commands.spawn(Camera2d);
                let subscriber = GeyserSubscriber::new(name.clone(), &mut images);
                commands
                    .spawn((
                        Node {
                            width: percent(100),
                            height: percent(100),
                            ..default()
                        },
                        ImageNode::new(subscriber.image.clone()),
                        subscriber,
                    ))
                    .with_child((
                        Text::new(""),
                        TextColor(Color::WHITE),
                        Node {
                            margin: UiRect::all(px(8)),
                            ..default()
                        },
                        Overlay,
                    ));
            },
        )
        .add_systems(Update, (overlay, restart));
    common::run(app)
}

fn overlay(
    status: Single<&GeyserSubscriberStatus>,
    frames: Res<FramesSoFar>,
    mut count: ResMut<CountFrames>,
    mut text: Single<&mut Text, With<Overlay>>,
    mut connections: Local<u64>,
) {
    let s = *status;
    count.0 = s.connected && s.frame.is_some();
    if s.connections != *connections {
        *connections = s.connections;
        println!("connected ({} time(s)), sync {:?}", s.connections, s.sync);
    }
    let link = if s.connected {
        format!(
            "simulation frame {}, {:.0} fps, handoff {} us, {} sync",
            s.frame.unwrap_or(0),
            s.fps,
            s.latency.map_or(0, |l| l.as_micros()),
            s.sync.map_or("no".into(), |m| format!("{m:?}"))
        )
    } else {
        format!(
            "simulation away, showing its last frame ({})",
            s.last_error.as_deref().unwrap_or("waiting")
        )
    };
    text.0 = format!(
        "display frame {} | connections {} | {link}",
        frames.0, s.connections
    );
}

fn restart(frames: Res<FramesSoFar>, sim: Option<ResMut<Simulation>>) {
    let Some(mut sim) = sim else { return };
    if sim.restart_at.is_some_and(|at| frames.0 >= at) {
        sim.restart_at = None;
        println!("killing the simulation and starting a new one");
        sim.kill();
        sim.start();
    }
}
