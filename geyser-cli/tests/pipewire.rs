//! Geyser ↔ PipeWire, against a real PipeWire daemon: `scripts/test-pipewire.sh` starts its
//! own `pipewire` and `wireplumber` (private `XDG_RUNTIME_DIR`, `dbus-run-session`) and runs
//! these ignored tests inside that session. Every texel of every frame is checked.
#![cfg(all(target_os = "linux", feature = "pipewire"))]

#[path = "../../gst-plugin-geyser/tests/common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use geyser_harness::host_pattern::{fill_frame, identify_frame, HostLayout};
use gst::prelude::*;

/// Not a test: the body of a child process. Does nothing unless `GT_ROLE` is set.
#[test]
fn child_role_entry() {
    child_role();
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Proc {
    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn geyser(args: &[&str]) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_geyser"))
            .args(args)
            .spawn()
            .expect("spawn geyser"),
    )
}

fn require_pipewire() {
    assert!(
        std::env::var_os("PIPEWIRE_TEST_SESSION").is_some(),
        "run through scripts/test-pipewire.sh, which starts PipeWire for these tests"
    );
}

#[test]
#[ignore = "needs a PipeWire daemon: scripts/test-pipewire.sh"]
fn a_geyser_endpoint_is_a_video_source_that_pipewiresrc_consumes() {
    require_pipewire();
    init();
    let src = endpoint("pw-out");
    let node = format!("geyser-test-{}", std::process::id());
    let _producer = ChildProc::spawn(
        "producer",
        &src,
        &[("GT_FRAMES", "0".into()), ("GT_INTERVAL_MS", "33".into())],
    );
    let _send = geyser(&["stream", "send", &src, &format!("pipewire:{node}")]);
    let file = std::env::temp_dir().join(format!("{node}.raw"));
    let frames = 60;
    // Any PipeWire client: gst-launch-1.0 with GStreamer's own pipewiresrc, no Geyser plugin.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let mut consumer = Proc(
            Command::new("gst-launch-1.0")
                .args([
                    "-q",
                    "pipewiresrc",
                    &format!("target-object={node}"),
                    &format!("num-buffers={frames}"),
                    "!",
                    "video/x-raw,format=RGBA,width=320,height=240",
                    "!",
                    "filesink",
                    &format!("location={}", file.display()),
                ])
                .stdout(Stdio::null())
                .spawn()
                .expect("gst-launch-1.0"),
        );
        let status = consumer
            .wait(Duration::from_secs(30))
            .expect("pipewiresrc hung");
        // The node appears once the sender connected to the producer: retry until then.
        if status.success() || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "pipewiresrc: {status}");
    let data = std::fs::read(&file).expect("frames");
    let _ = std::fs::remove_file(&file);
    let layout = HostLayout::packed(320, 240, 4);
    let size = layout.frame_bytes();
    assert_eq!(data.len(), frames * size, "{frames} whole frames");
    let numbers: Vec<u32> = data
        .chunks_exact(size)
        .enumerate()
        .map(|(i, f)| identify_frame(f, &layout).unwrap_or_else(|e| panic!("frame {i}: {e}")))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "in order: {numbers:?}"
    );
    println!(
        "PipeWire node → pipewiresrc: {frames} frames verified (Geyser frames {}..={})",
        numbers[0],
        numbers[frames - 1]
    );
}

#[test]
#[ignore = "needs a PipeWire daemon: scripts/test-pipewire.sh"]
fn a_pipewiresink_video_source_is_republished_as_a_geyser_endpoint() {
    require_pipewire();
    init();
    let dst = endpoint("pw-in");
    let node = format!("gst-pattern-{}", std::process::id());
    let (w, h, frames) = (320u32, 240u32, 120u64);
    // Pattern frames into PipeWire through GStreamer's pipewiresink.
    let source = gst::parse::launch(&format!(
        "appsrc name=src format=time is-live=true block=true ! \
         pipewiresink mode=provide stream-properties=\"props,media.class=Video/Source,node.name={node}\""
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let appsrc = source
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgba, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap();
    appsrc.set_caps(Some(&info.to_caps().unwrap()));
    source.set_state(gst::State::Playing).expect("PLAYING");
    let pusher = std::thread::spawn(move || {
        let layout = HostLayout::packed(w, h, 4);
        let start = Instant::now();
        for n in 0..frames {
            let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
            {
                let b = buffer.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_mseconds(n * 33));
                b.set_duration(gst::ClockTime::from_mseconds(33));
                let mut map = b.map_writable().unwrap();
                fill_frame(map.as_mut_slice(), &layout, n);
            }
            if appsrc.push_buffer(buffer).is_err() {
                break;
            }
            let due = start + Duration::from_millis((n + 1) * 33);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let _ = appsrc.end_of_stream();
    });
    let _recv = geyser(&["stream", "recv", &format!("pipewire:{node}"), &dst]);
    let check = gst::parse::launch(&format!(
        "geysersrc endpoint={dst} connect-timeout=20000 ! appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = check
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    check.set_state(gst::State::Playing).expect("PLAYING");
    let mut got: Vec<u32> = Vec::new();
    while let Some(c) = pull_checked(&sink, Duration::from_secs(5)) {
        let n = c
            .frame
            .unwrap_or_else(|e| panic!("frame after {:?}: {e}", got.last()));
        assert!(got.last().is_none_or(|l| n > *l), "in order");
        got.push(n);
    }
    let _ = pusher.join();
    within(Duration::from_secs(10), "stopping", move || {
        check.set_state(gst::State::Null).unwrap();
        source.set_state(gst::State::Null).unwrap();
    });
    println!(
        "pipewiresink → geyser stream recv → Geyser: {} of {frames} frames verified",
        got.len()
    );
    assert!(got.len() as u64 >= frames / 2, "only {} frames", got.len());
    assert_validation_clean();
}
