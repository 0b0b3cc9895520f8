//! `geyser stream` over loopback UDP: a Geyser endpoint sent by one `geyser` process and
//! republished by another, verified in this process. Raw RTP must deliver every texel as
//! produced; H.264 is measured with PSNR against the source frames. Bounded in time and
//! frames; 127.0.0.1 only.
#![cfg(all(target_os = "linux", feature = "gstreamer"))]

#[path = "../../gst-plugin-geyser/tests/common/mod.rs"]
mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use gst_video::prelude::*;

/// Not a test: the body of a child process. Does nothing unless `GT_ROLE` is set.
#[test]
fn child_role_entry() {
    child_role();
}

/// A `geyser` process, killed when dropped.
struct Geyser(Child);

impl Geyser {
    fn spawn(args: &[&str]) -> Geyser {
        let child = Command::new(env!("CARGO_BIN_EXE_geyser"))
            .args(args)
            .spawn()
            .expect("spawn geyser");
        Geyser(child)
    }

    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Geyser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP port free on 127.0.0.1 right now.
fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

fn pipeline(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline")
}

fn appsink(p: &gst::Pipeline, name: &str) -> gst_app::AppSink {
    p.by_name(name)
        .expect("appsink")
        .downcast::<gst_app::AppSink>()
        .expect("appsink")
}

#[test]
fn raw_rtp_over_loopback_delivers_every_texel_unchanged() {
    init();
    let (src, dst) = (endpoint("raw-src"), endpoint("raw-dst"));
    let port = free_udp_port().to_string();
    let url = format!("udp://127.0.0.1:{port}");
    let frames = 90;
    let _producer = ChildProc::spawn(
        "producer",
        &src,
        &[
            ("GT_FRAMES", frames.to_string()),
            ("GT_INTERVAL_MS", "33".into()),
        ],
    );
    let _recv = Geyser::spawn(&[
        "stream",
        "recv",
        &url,
        &dst,
        "--size",
        "320x240",
        "--idle-timeout",
        "3",
    ]);
    // The republished endpoint appears with the first frame received: wait for it.
    let check = pipeline(&format!(
        "geysersrc endpoint={dst} connect-timeout=30000 ! appsink name=sink sync=false"
    ));
    let sink = appsink(&check, "sink");
    check.set_state(gst::State::Playing).expect("PLAYING");
    let mut send = Geyser::spawn(&["stream", "send", &src, &url]);
    let mut got: Vec<u32> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(c) = pull_checked(&sink, Duration::from_secs(10)) else {
            break;
        };
        let n = c
            .frame
            .unwrap_or_else(|e| panic!("frame after {:?}: {e}", got.last()));
        assert!(got.last().is_none_or(|last| n > *last), "frames in order");
        got.push(n);
    }
    assert_eq!(send.wait(Duration::from_secs(10)), Some(0), "sender exit");
    within(Duration::from_secs(10), "stopping", move || {
        check.set_state(gst::State::Null).unwrap();
    });
    println!(
        "raw RTP loopback: {} of {frames} frames arrived, every texel identical (frames {:?}..={:?})",
        got.len(),
        got.first(),
        got.last()
    );
    assert!(
        got.len() >= frames / 2,
        "only {} of {frames} frames",
        got.len()
    );
    assert_validation_clean();
}

/// PSNR of two equally long 8-bit planes, dB (infinite when identical).
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as i64 - y as i64).pow(2) as u64)
        .sum();
    if se == 0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 * a.len() as f64 / se as f64).log10()
}

/// The Y plane of an I420 sample, tightly packed.
fn luma(sample: &gst::Sample) -> Vec<u8> {
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().unwrap(), &info)
        .unwrap();
    let (w, stride) = (info.width() as usize, frame.plane_stride()[0] as usize);
    let data = frame.plane_data(0).unwrap();
    (0..info.height() as usize)
        .flat_map(|y| data[y * stride..y * stride + w].iter().copied())
        .collect()
}

#[test]
fn h264_over_loopback_keeps_psnr_above_35_db() {
    init();
    let (src, dst) = (endpoint("h264-src"), endpoint("h264-dst"));
    let port = free_udp_port().to_string();
    let url = format!("udp://127.0.0.1:{port}");
    let frames = 120;
    let _recv = Geyser::spawn(&[
        "stream",
        "recv",
        &url,
        &dst,
        "--codec",
        "h264",
        "--idle-timeout",
        "3",
    ]);
    let check = pipeline(&format!(
        "geysersrc endpoint={dst} connect-timeout=30000 ! videoconvert ! \
         video/x-raw,format=I420 ! appsink name=sink sync=false"
    ));
    let received = appsink(&check, "sink");
    check.set_state(gst::State::Playing).expect("PLAYING");
    let _send = Geyser::spawn(&["stream", "send", &src, &url, "--codec", "h264"]);
    // Moving colour bars, published as `src`; the same frames, as I420, are the reference.
    let source = pipeline(&format!(
        "videotestsrc pattern=smpte horizontal-speed=4 is-live=true num-buffers={frames} ! \
         video/x-raw,format=RGBA,width=320,height=240,framerate=30/1 ! tee name=t \
         t. ! queue ! videoconvert ! video/x-raw,format=I420 ! appsink name=ref sync=false \
         t. ! queue ! geysersink endpoint={src} sync=false"
    ));
    let reference = appsink(&source, "ref");
    source.set_state(gst::State::Playing).expect("PLAYING");
    let mut refs = Vec::new();
    while let Some(s) = reference.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        refs.push(luma(&s));
    }
    // The source ends, the sender ends, the receiver times out: the check stream ends.
    let mut test = Vec::new();
    while let Some(s) = received.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        test.push(luma(&s));
    }
    within(Duration::from_secs(10), "stopping", move || {
        source.set_state(gst::State::Null).unwrap();
        check.set_state(gst::State::Null).unwrap();
    });
    assert_eq!(refs.len(), frames, "reference frames");
    // Frames sent before each hop connected never arrive: the first received frame is
    // paired with the source frame it matches best, each later one with the best of the
    // next few source frames.
    let mut next: Option<usize> = None;
    let mut scores = Vec::new();
    for t in &test {
        let window = match next {
            None => 0..refs.len(),
            Some(n) => n..(n + 8).min(refs.len()),
        };
        let Some((i, p)) = window
            .map(|i| (i, psnr(&refs[i], t)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            break;
        };
        scores.push(p.min(99.0));
        next = Some(i + 1);
    }
    let avg = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
    let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "H.264 loopback (x264enc zerolatency, 4000 kbit/s, 320x240): {} of {frames} frames, \
         PSNR-Y avg {avg:.2} dB, min {min:.2} dB",
        scores.len()
    );
    assert!(
        scores.len() >= frames / 2,
        "only {} frames arrived",
        scores.len()
    );
    assert!(avg >= 35.0, "PSNR-Y avg {avg:.2} dB");
    assert_validation_clean();
}
