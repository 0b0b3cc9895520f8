//! The windowed examples, run as a user would under a virtual X server (Xvfb) on the test GPU
//! with the validation layer on: each runs 60 frames and writes a screenshot, and the
//! screenshot must show what came through Geyser (colours only the scene has, in a window that
//! has other colours of its own), not just exist.
//!
//! The examples are built by `cargo test` next to this test (`target/<profile>/examples/`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One Xvfb for the whole test binary.
static XVFB: Mutex<Option<(Child, String)>> = Mutex::new(None);

/// The display to run windows on: `$GB_DISPLAY` if set, else a fresh Xvfb.
fn display() -> String {
    if let Ok(d) = std::env::var("GB_DISPLAY") {
        return d;
    }
    let mut xvfb = XVFB.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, d)) = xvfb.as_ref() {
        return d.clone();
    }
    let number = 90 + std::process::id() % 400;
    let d = format!(":{number}");
    let child = Command::new("Xvfb")
        .args([&d, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (Debian package xvfb; scripts/test.sh installs it)");
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "Xvfb did not start on {d}");
        std::thread::sleep(Duration::from_millis(50));
    }
    *xvfb = Some((child, d.clone()));
    d
}

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("examples")
        .join(name)
}

/// Runs `name` with `args` plus `--frames 60 --screenshot <file>`; returns the screenshot's
/// RGBA8 pixels and the example's stdout.
fn run(name: &str, args: &[&str]) -> (image::RgbaImage, String) {
    let dir = std::env::temp_dir().join(format!("geyser-bevy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let out = Command::new(example(name))
        .args(args)
        .args(["--frames", "60", "--screenshot"])
        .arg(&shot)
        .env("DISPLAY", display())
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e} (built by `cargo test`?)"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed ({:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    let image = image::open(&shot)
        .unwrap_or_else(|e| {
            panic!(
                "{name}: screenshot {}: {e}\n{stdout}\n{stderr}",
                shot.display()
            )
        })
        .to_rgba8();
    if let Ok(keep) = std::env::var("GB_KEEP_SCREENSHOTS") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join(format!("{name}.png"))).unwrap();
    }
    (image, stdout)
}

/// Share of pixels within 6 of `rgb` per channel.
fn share(image: &image::RgbaImage, rgb: [u8; 3]) -> f64 {
    let near = image
        .pixels()
        .filter(|p| p.0[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 6))
        .count();
    near as f64 / (image.width() * image.height()) as f64
}

fn srgb8(linear_srgb: [f32; 3]) -> [u8; 3] {
    linear_srgb.map(|c| (c * 255.0).round() as u8)
}

// The examples' scene colours (examples/common/scene.rs), and the windows' own backgrounds.
const BACKGROUND: [f32; 3] = [0.05, 0.07, 0.15];
const CUBE: [f32; 3] = [1.0, 0.5, 0.0];
const FLOOR: [f32; 3] = [0.2, 0.6, 0.3];
const SECOND_WINDOW: [f32; 3] = [0.25, 0.25, 0.25];
const SIM_BACKGROUND: [f32; 3] = [0.02, 0.03, 0.10];

fn describe(image: &image::RgbaImage) -> String {
    let mut counts = std::collections::HashMap::<[u8; 3], usize>::new();
    for p in image.pixels() {
        *counts.entry([p.0[0], p.0[1], p.0[2]]).or_default() += 1;
    }
    let mut top: Vec<_> = counts.into_iter().collect();
    top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    format!(
        "{}x{}, commonest colours {:?}",
        image.width(),
        image.height(),
        &top[..top.len().min(6)]
    )
}

#[test]
fn bevy_integration_shows_its_scene_and_publishes_it() {
    let (shot, stdout) = run(
        "bevy_integration",
        &["--name", &format!("gb-example-{}", std::process::id())],
    );
    let d = describe(&shot);
    assert!(share(&shot, srgb8(BACKGROUND)) > 0.2, "background: {d}");
    assert!(share(&shot, srgb8(CUBE)) > 0.01, "the cube: {d}");
    assert!(share(&shot, srgb8(FLOOR)) > 0.05, "the floor: {d}");
    assert!(stdout.contains("publisher: live true"), "{stdout}");
}

#[test]
fn bevy_multi_window_second_window_shows_the_scene_through_geyser() {
    let (shot, _) = run("bevy_multi_window", &[]);
    let d = describe(&shot);
    // The second window draws nothing of the scene itself: these colours came through Geyser.
    assert!(
        share(&shot, srgb8(BACKGROUND)) > 0.2,
        "the scene's background: {d}"
    );
    assert!(share(&shot, srgb8(CUBE)) > 0.01, "the cube: {d}");
    assert!(share(&shot, srgb8(FLOOR)) > 0.05, "the floor: {d}");
}

#[test]
fn bevy_multi_process_display_shows_the_simulation_and_survives_its_restart() {
    let (shot, stdout) = run("bevy_multi_process", &["--restart-at", "20"]);
    let d = describe(&shot);
    assert!(
        share(&shot, srgb8(SIM_BACKGROUND)) > 0.3,
        "the simulation's view: {d}"
    );
    assert!(
        share(&shot, srgb8(SECOND_WINDOW)) < 0.05,
        "the display's own background shows through: {d}"
    );
    assert!(
        stdout.contains("connected (2 time(s))"),
        "the new simulation was picked up: {stdout}"
    );
}
