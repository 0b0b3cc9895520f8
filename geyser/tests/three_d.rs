//! `three_d_consumer` under Xvfb: a real `ipc_producer` process streams frames, the three-d
//! window shows them on a spinning cube (the ring's memory imported as three-d textures), and
//! the screenshot's content is checked: the cube's pixels are exactly the colour of the frame
//! the window says it showed, the corners are the background, and the cube covers a plausible
//! part of the window. Needs the examples built (`cargo test --all-targets --features gl`)
//! and `xvfb-run` (scripts/test.sh installs it).
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use geyser_harness::pattern::frame_word;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo test --all-targets --features gl,ipc)",
        path.display()
    );
    path
}

#[test]
fn three_d_consumer_shows_the_stream_on_a_cube_under_xvfb() {
    let xvfb = Command::new("sh")
        .args(["-c", "command -v xvfb-run"])
        .output()
        .unwrap();
    assert!(
        xvfb.status.success(),
        "xvfb-run is missing (apt-get install xvfb xauth)"
    );
    let name = format!("three-d-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("geyser-three-d-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("three_d_consumer.png");
    let mut producer = Command::new(example("ipc_producer"))
        .args([
            "--name",
            &name,
            "--frames",
            "0",
            "--size",
            "160x120",
            "--interval-ms",
            "4",
            "--pattern",
            "solid",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ipc_producer");
    let consumer = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 800x600x24"])
        .arg(example("three_d_consumer"))
        .args(["--name", &name, "--frames", "40", "--screenshot"])
        .arg(&shot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xvfb-run three_d_consumer");
    let deadline = Instant::now() + Duration::from_secs(120);
    let id = consumer.id();
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            if !std::path::Path::new(&format!("/proc/{id}")).exists() {
                return;
            }
        }
        // Ours: the xvfb-run we started.
        let _ = Command::new("kill").arg(id.to_string()).status();
    });
    let out = consumer.wait_with_output().unwrap();
    let _ = watchdog.join();
    let _ = producer.kill();
    let _ = producer.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "three_d_consumer failed:\n{stdout}\n{stderr}"
    );
    let shown: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SHOWN frame "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no SHOWN line:\n{stdout}\n{stderr}"));

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    assert_eq!(info.color_type, png::ColorType::Rgba);
    let px = |x: usize, y: usize| -> [u8; 4] {
        let o = (y * w + x) * 4;
        [buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]
    };
    let frame = frame_word(shown).to_le_bytes();
    let center = px(w / 2, h / 2);
    assert_eq!(
        center[..3],
        frame[..3],
        "the cube's centre shows frame {shown}'s colour {frame:?}, screenshot has {center:?}"
    );
    let background =
        |p: [u8; 4]| p[0].abs_diff(26) <= 1 && p[1].abs_diff(26) <= 1 && p[2].abs_diff(77) <= 1;
    for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        assert!(
            background(px(x, y)),
            "corner ({x},{y}) is {:?}, not the background",
            px(x, y)
        );
    }
    let on_cube = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| px(x, y)[..3] == frame[..3])
        .count();
    let share = on_cube as f64 / (w * h) as f64;
    assert!(
        (0.05..0.8).contains(&share),
        "{:.1}% of the window shows the frame's colour: not a cube in the middle",
        share * 100.0
    );
    println!(
        "screenshot {}: frame {shown} on {:.1}% of the window",
        shot.display(),
        share * 100.0
    );
}
