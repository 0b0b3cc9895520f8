//! What the Bevy examples (and geyser-bevy's tests, which include this file) share: the
//! `--frames N` / `--screenshot PATH` / `--headless` arguments, a Bevy app with Geyser set up
//! for them (validation errors counted, an exit after N frames with a screenshot), and the
//! exit code (4 when the validation layer reported an error, as Geyser's test children do).
#![allow(dead_code)]

pub mod scene;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::log::LogPlugin;
use bevy::prelude::*;
use bevy::render::settings::{RenderCreation, WgpuSettings};
use bevy::render::view::screenshot::{save_to_disk, Screenshot, ScreenshotCaptured};
use bevy::render::RenderPlugin;
use bevy::window::ExitCondition;
use geyser_bevy::GeyserPlugin;

/// Arguments every example takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunArgs {
    /// Exit after this many frames (0: run until the window is closed).
    #[arg(long, default_value_t = 0)]
    pub frames: u32,
    /// Save a screenshot of the window here just before exiting (PNG; needs --frames).
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// No window (what tests and headless machines use).
    #[arg(long)]
    pub headless: bool,
    /// Headless frames follow each other with no pause (benchmarks); otherwise 60 per second.
    #[arg(skip)]
    pub unpaced: bool,
}

/// When the app ends: after `frames` frames (and the screenshot, if one was asked for).
#[derive(Resource, Clone)]
struct Ending {
    frames: u32,
    screenshot: Option<PathBuf>,
    /// Set once the screenshot is on disk.
    saved: Arc<AtomicBool>,
}

/// The window `--screenshot` captures, when not the primary one.
#[derive(Resource, Clone, Copy)]
pub struct ScreenshotWindow(pub Entity);

/// Whether frames count towards `--frames` now (default: yes); an example that only counts
/// frames with content (e.g. once a subscriber has a frame) switches it.
#[derive(Resource, Clone, Copy)]
pub struct CountFrames(pub bool);

impl Default for CountFrames {
    fn default() -> Self {
        Self(true)
    }
}

/// Frames counted towards [`RunArgs::frames`] so far.
#[derive(Resource, Default)]
pub struct FramesSoFar(pub u32);

/// A Bevy app with Geyser: one window titled `title` (or none with `--headless`), the
/// validation layer's errors counted, and the `--frames`/`--screenshot` ending.
pub fn app(title: &str, args: &RunArgs) -> App {
    let mut app = App::new();
    let wgpu = if std::env::var_os("GEYSER_VALIDATION").is_some_and(|v| v == "1") {
        geyser_bevy::validation::enable(&mut app)
    } else {
        WgpuSettings::default()
    };
    let render = RenderPlugin {
        render_creation: RenderCreation::Automatic(Box::new(wgpu)),
        // Pipelines ready on the first frame, so short runs show the scene.
        synchronous_pipeline_compilation: true,
        ..default()
    };
    let log = LogPlugin {
        custom_layer: geyser_bevy::validation::layer,
        ..default()
    };
    app.add_plugins(GeyserPlugin);
    if args.headless {
        let plugins = DefaultPlugins
            .set(WindowPlugin {
                primary_window: None,
                exit_condition: ExitCondition::DontExit,
                ..default()
            })
            .set(render)
            .set(log)
            .disable::<bevy::winit::WinitPlugin>();
        let pause = if args.unpaced {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(1.0 / 60.0)
        };
        app.add_plugins(plugins)
            .add_plugins(ScheduleRunnerPlugin::run_loop(pause));
    } else {
        let window = Window {
            title: title.into(),
            resolution: (640, 360).into(),
            ..default()
        };
        app.add_plugins(
            DefaultPlugins
                .set(WindowPlugin {
                    primary_window: Some(window),
                    ..default()
                })
                .set(render)
                .set(log),
        );
    }
    app.insert_resource(Ending {
        frames: args.frames,
        screenshot: args.screenshot.clone(),
        saved: Arc::default(),
    })
    .init_resource::<FramesSoFar>()
    .init_resource::<CountFrames>()
    .add_systems(Last, end_after_frames);
    app
}

#[allow(
    clippy::too_many_arguments,
    reason = "a Bevy system takes each resource it uses as an argument"
)]
fn end_after_frames(
    ending: Res<Ending>,
    mut so_far: ResMut<FramesSoFar>,
    count: Res<CountFrames>,
    target: Option<Res<ScreenshotWindow>>,
    windows: Query<(), With<bevy::window::PrimaryWindow>>,
    mut waited: Local<Option<u32>>,
    mut commands: Commands,
    mut exit: MessageWriter<AppExit>,
) {
    if ending.frames == 0 {
        return;
    }
    if count.0 {
        so_far.0 += 1;
    }
    if so_far.0 < ending.frames {
        return;
    }
    let Some(path) = &ending.screenshot else {
        exit.write(AppExit::Success);
        return;
    };
    // Frames since the screenshot was asked for (it is captured a frame or two later).
    let Some(waited) = waited.as_mut() else {
        if windows.is_empty() && target.is_none() {
            error!("--screenshot needs a window (not --headless)");
            exit.write(AppExit::error());
            return;
        }
        let screenshot = match target {
            Some(window) => Screenshot::window(window.0),
            None => Screenshot::primary_window(),
        };
        let saved = ending.saved.clone();
        commands
            .spawn(screenshot)
            .observe(save_to_disk(path.clone()))
            .observe(move |_: On<ScreenshotCaptured>| saved.store(true, Ordering::SeqCst));
        *waited = Some(0);
        return;
    };
    *waited += 1;
    if ending.saved.load(Ordering::SeqCst) {
        exit.write(AppExit::Success);
    } else if *waited > 120 {
        error!("the screenshot was never captured");
        exit.write(AppExit::error());
    }
}

/// Runs the app; returns the process's exit code: 4 when the validation layer reported an
/// error, 0 on success.
pub fn run(mut app: App) -> u8 {
    let exit = app.run();
    let errors = geyser_bevy::validation::errors();
    if !errors.is_empty() {
        eprintln!("{} validation errors: {errors:#?}", errors.len());
        return 4;
    }
    match exit {
        AppExit::Success => 0,
        AppExit::Error(code) => code.get(),
    }
}
