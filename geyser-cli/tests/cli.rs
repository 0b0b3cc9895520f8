//! The `geyser` command as a user runs it, with real processes: `info` with a device
//! selection, `snapshot` of `ipc_producer`'s stream (the PNG must be the frame's picture, texel
//! for texel), and `view` in a window under Xvfb (its screenshot must show the stream, and it
//! must survive the producer being killed and restarted). Validation layers are on.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use geyser_harness::frame_image::{frame_image, FrameLayout};
use geyser_harness::image_out::read_png;
use geyser_harness::pattern::frame_word;

fn geyser() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_geyser"));
    c.env("GEYSER_VALIDATION", "1");
    c
}

/// `ipc_producer`, built beside this test by `cargo test --workspace --all-targets`.
fn ipc_producer() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_geyser"))
        .parent()
        .unwrap()
        .join("examples/ipc_producer");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p geyser --example ipc_producer` \
         (`cargo test --workspace --all-targets` does)",
        bin.display()
    );
    bin
}

fn unique(name: &str) -> String {
    format!("cli{}-{name}", std::process::id())
}

/// A producer streaming `size` frames forever, 10 ms apart; killed when dropped.
struct Producer(Child);

impl Producer {
    fn start(name: &str, size: &str) -> Self {
        let child = Command::new(ipc_producer())
            .args([
                "--name",
                name,
                "--size",
                size,
                "--frames",
                "0",
                "--interval-ms",
                "10",
                "--wait",
                "1",
            ])
            .env("GEYSER_VALIDATION", "1")
            .stdout(Stdio::null())
            .spawn()
            .expect("start ipc_producer");
        Producer(child)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child's stdout lines, as they come.
fn lines(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    rx
}

/// Waits for a line containing `text`; returns it, or panics with what came instead.
fn wait_for(rx: &Receiver<String>, text: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                seen.push(l.clone());
                if l.contains(text) {
                    return l;
                }
            }
            Err(_) => panic!("no line with `{text}`; got:\n{}", seen.join("\n")),
        }
    }
}

/// The frame number in `snapshot of frame N: …` / `screenshot of frame N: …`.
fn frame_of(line: &str) -> u64 {
    let after = line.split("of frame ").nth(1).expect("a frame number");
    after.split(':').next().unwrap().trim().parse().unwrap()
}

#[test]
fn info_marks_the_selected_device_and_a_selection_matching_nothing_is_an_error() {
    let out = geyser()
        .arg("info")
        .env("GEYSER_DEVICE", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("Device 0:") && first.contains("<- selected"),
        "{first}"
    );
    assert!(text.contains("compressed formats exportable:"), "{text}");
    let json = geyser()
        .args(["info", "--json"])
        .env("GEYSER_DEVICE", "0")
        .output()
        .unwrap();
    let devices: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(devices[0]["selected"], true);
    let out = geyser()
        .arg("info")
        .env("GEYSER_DEVICE", "no-such-gpu")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no device matches") && err.contains("no-such-gpu"),
        "the NoDevice message, listing what is there: {err}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing listed when the selection fails"
    );
}

#[test]
fn snapshot_of_ipc_producer_is_the_frame_picture_texel_for_texel() {
    let name = unique("snap");
    let _producer = Producer::start(&name, "320x180");
    let png = std::env::temp_dir().join(format!("{name}.png"));
    let out = geyser()
        .args(["snapshot", &name])
        .arg(&png)
        .args(["--frames", "3", "--timeout", "30"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("snapshot of frame"))
        .unwrap();
    let frame = frame_of(line);
    let image = read_png(&png).unwrap();
    assert_eq!((image.width, image.height), (320, 180));
    assert!(
        image.pixels == frame_image(frame, 320, 180, 4),
        "the PNG is not frame {frame}'s picture"
    );
    // And not any other frame's (the test can fail).
    assert!(image.pixels != frame_image(frame + 1, 320, 180, 4));
    std::fs::remove_file(png).unwrap();
}

#[test]
fn view_shows_the_stream_in_a_window_and_survives_the_producer_restarting() {
    assert!(
        Command::new("xvfb-run").arg("--help").output().is_ok(),
        "xvfb-run is missing (scripts/test.sh installs xvfb)"
    );
    let name = unique("view");
    let png = std::env::temp_dir().join(format!("{name}.png"));
    let first = Producer::start(&name, "320x180");
    let mut viewer = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1024x768x24"])
        .arg(env!("CARGO_BIN_EXE_geyser"))
        .args([
            "view",
            &name,
            "--size",
            "640x360",
            "--frames",
            "150",
            "--screenshot",
        ])
        .arg(&png)
        .env("GEYSER_VALIDATION", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut viewer);
    let mut seen = Vec::new();
    wait_for(&rx, "shown 30 frames", &mut seen);
    drop(first); // killed mid-stream
    wait_for(&rx, "producer gone", &mut seen);
    let _second = Producer::start(&name, "320x180");
    wait_for(&rx, "reconnected", &mut seen);
    let shot = wait_for(&rx, "screenshot of frame", &mut seen);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = viewer.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the viewer did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "viewer: {status:?}\n{}", seen.join("\n"));
    let frame = frame_of(&shot);
    let image = read_png(&png).unwrap();
    assert_eq!((image.width, image.height), (640, 360), "the window's size");
    // The window shows the 320x180 frame scaled 2x. The band holds the frame's word.
    let word = frame_word(frame).to_le_bytes();
    for x in [4, 320, 635] {
        assert_eq!(
            image.pixel(x, 6),
            word,
            "band at x {x}: frame {frame}'s word"
        );
    }
    // The digits: white strokes on black in the middle.
    let row: Vec<[u8; 4]> = (0..640).map(|x| image.pixel(x, 180)).collect();
    let white = row
        .iter()
        .filter(|p| p[..3].iter().all(|c| *c >= 240))
        .count();
    let black = row
        .iter()
        .filter(|p| p[..3].iter().all(|c| *c <= 15))
        .count();
    assert!(
        white > 20 && black > 20,
        "digits: {white} white, {black} black"
    );
    // The gradient of this frame, away from the digits (linear filtering: within a few steps).
    let layout = FrameLayout::new(320, 180);
    for (x, y) in [(40, 300), (600, 60), (320, 340)] {
        let want = layout.rgba(frame, x / 2, y / 2);
        let got = image.pixel(x, y);
        let close = want.iter().zip(got).all(|(a, b)| a.abs_diff(b) <= 8);
        assert!(
            close,
            "gradient at ({x}, {y}): {got:?}, frame {frame} has {want:?}"
        );
    }
    std::fs::remove_file(png).unwrap();
}
