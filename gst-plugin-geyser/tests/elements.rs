//! `geysersrc` and `geysersink` against real Geyser processes (this binary re-executed as the
//! harness's pattern producer or verifying consumer), with the validation layer on. Every
//! texel of every frame a pipeline gets is checked against the frame pattern.
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use geyser_harness::host_pattern::{fill_frame, HostLayout};
use gst::prelude::*;

/// Not a test: the body of a child process. Does nothing unless `GT_ROLE` is set.
#[test]
fn child_role_entry() {
    child_role();
}

fn src_pipeline(props: &str) -> (gst::Pipeline, gst_app::AppSink) {
    // max-buffers bounds what the appsink queues; a test that stops pulling must not block
    // the source, so only the lossless test keeps every buffer (it pulls all the time).
    let drop = !props.contains("lossless=true");
    let pipeline = gst::parse::launch(&format!(
        "geysersrc name=src {props} ! appsink name=sink sync=false max-buffers=4 drop={drop}"
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .expect("sink")
        .downcast::<gst_app::AppSink>()
        .expect("appsink");
    (pipeline, sink)
}

fn stats(pipeline: &gst::Pipeline, element: &str) -> gst::Structure {
    pipeline
        .by_name(element)
        .expect("element")
        .property::<gst::Structure>("stats")
}

fn stop(pipeline: gst::Pipeline) {
    within(
        Duration::from_secs(10),
        "stopping the pipeline",
        move || {
            pipeline.set_state(gst::State::Null).expect("to NULL");
        },
    );
}

#[test]
fn geysersrc_delivers_every_texel_of_300_lossless_frames() {
    init();
    let name = endpoint("src300");
    let mut producer = ChildProc::spawn("producer", &name, &[("GT_LOSSLESS", "1".into())]);
    let (pipeline, sink) = src_pipeline(&format!("endpoint={name} lossless=true"));
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    let mut last_pts = None;
    let mut frames = Vec::new();
    while let Some(c) = pull_checked(&sink, Duration::from_secs(30)) {
        assert_eq!((c.width, c.height), (320, 240));
        let n = c
            .frame
            .unwrap_or_else(|e| panic!("frame {}: {e}", frames.len()));
        let pts = c.pts.expect("every buffer has a timestamp");
        assert!(Some(pts) >= last_pts, "timestamps go forward");
        last_pts = Some(pts);
        frames.push(n);
    }
    assert!(sink.is_eos(), "the producer's clean end is EOS");
    let expected: Vec<u32> = (0..300).collect();
    assert_eq!(frames, expected, "lossless: every frame, in order");
    let s = stats(&pipeline, "src");
    println!("geysersrc stats: {s}");
    let direct = s.get::<u64>("direct-copies").unwrap();
    let staged = s.get::<u64>("staged-copies").unwrap();
    let imports = s.get::<u64>("host-imports").unwrap();
    assert_eq!(direct + staged, 300);
    // Pooled buffers: each buffer's memory is imported once, not once per frame.
    if direct > 0 {
        assert!(imports <= 8, "{imports} host imports for 300 frames");
    }
    stop(pipeline);
    assert_eq!(producer.wait(Duration::from_secs(10)), 0);
    assert_validation_clean();
}

#[test]
fn geysersrc_hands_dma_buf_frames_to_an_element_that_asks_for_them() {
    init();
    let name = endpoint("dmabuf");
    let mut producer = ChildProc::spawn(
        "producer",
        &name,
        &[("GT_LOSSLESS", "1".into()), ("GT_FRAMES", "60".into())],
    );
    let pipeline = gst::parse::launch(&format!(
        "geysersrc name=src endpoint={name} lossless=true ! video/x-raw(memory:DMABuf) ! \
         appsink name=sink sync=false max-buffers=2"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let options = geyser::vulkan::ContextOptions::from_env();
    let manager = geyser::vulkan::VulkanTextureShareManager::create(&options).unwrap();
    let usage = geyser::vulkan::ash::vk::BufferUsageFlags::TRANSFER_DST;
    let exportable = geyser::vulkan::Buffer::dma_buf_exportable(&manager, usage);
    drop(manager);
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    if !exportable {
        // This device exports no DMA-BUF buffers (lavapipe without udmabuf): geysersrc must
        // not offer DMA-BUF caps, so a DMA-BUF-only downstream fails to negotiate, cleanly.
        match wait_eos_or_error(&pipeline, Duration::from_secs(30)) {
            Some(Err(e)) => assert!(e.contains("not-negotiated"), "{e}"),
            other => panic!("expected not-negotiated, got {other:?}"),
        }
        assert!(sink.try_pull_sample(gst::ClockTime::ZERO).is_none());
        println!("DMA-BUF export unsupported on this device: not offered, negotiation refused");
        stop(pipeline);
        producer.kill();
        assert_validation_clean();
        return;
    }
    let mut frames = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        let caps = sample.caps().unwrap();
        assert!(
            caps.features(0).unwrap().contains("memory:DMABuf"),
            "negotiated {caps}"
        );
        let memory = sample.buffer().unwrap().peek_memory(0);
        assert!(memory.is_type("dmabuf"), "a DMA-BUF memory");
        // Mapping a DMA-BUF maps the exported buffer itself: check every texel.
        let n = check_sample(&sample)
            .frame
            .unwrap_or_else(|e| panic!("frame {}: {e}", frames.len()));
        frames.push(n);
    }
    assert_eq!(
        frames,
        (0..60).collect::<Vec<u32>>(),
        "every frame, in order"
    );
    let s = stats(&pipeline, "src");
    assert_eq!(s.get::<u64>("direct-copies").unwrap(), 60, "{s}");
    stop(pipeline);
    assert_eq!(producer.wait(Duration::from_secs(10)), 0);
    assert_validation_clean();
}

#[test]
fn geysersink_publishes_pattern_frames_that_a_geyser_consumer_verifies() {
    init();
    let name = endpoint("sink");
    let (w, h, frames) = (256u32, 192u32, 120u64);
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! geysersink name=sink endpoint={name} lossless=true sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgba, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap();
    src.set_caps(Some(&info.to_caps().unwrap()));
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    let push = |n: u64| {
        let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(n * 33));
            let mut map = b.map_writable().unwrap();
            fill_frame(map.as_mut_slice(), &HostLayout::packed(w, h, 4), n);
        }
        src.push_buffer(buffer).expect("push");
    };
    // Frame 0 binds the producer; the consumer connects; then frames 1..=N go to it.
    push(0);
    let mut consumer = ChildProc::spawn(
        "consumer",
        &name,
        &[
            ("GT_LOSSLESS", "1".into()),
            ("GT_FRAMES", frames.to_string()),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats(&pipeline, "sink").get::<u64>("consumers").unwrap() == 0 {
        assert!(Instant::now() < deadline, "the consumer never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in 1..=frames {
        push(n);
    }
    let result = consumer.expect_line("RESULT ", Duration::from_secs(60));
    assert_eq!(consumer.wait(Duration::from_secs(10)), 0, "{result}");
    let report: serde_json::Value = serde_json::from_str(&result["RESULT ".len()..]).unwrap();
    assert_eq!(report["frames"], frames, "{result}");
    assert_eq!(report["corrupted"], 0, "{result}");
    let s = stats(&pipeline, "sink");
    println!("geysersink stats: {s}");
    assert_eq!(s.get::<u64>("presented").unwrap(), frames + 1);
    src.end_of_stream().unwrap();
    stop(pipeline);
    assert_validation_clean();
}

#[test]
fn geysersrc_posts_an_error_when_its_producer_is_killed_and_stops_promptly() {
    init();
    let name = endpoint("killed");
    let mut producer = ChildProc::spawn(
        "producer",
        &name,
        &[("GT_FRAMES", "0".into()), ("GT_INTERVAL_MS", "10".into())],
    );
    let (pipeline, sink) = src_pipeline(&format!("endpoint={name}"));
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    for i in 0..10 {
        let c = pull_checked(&sink, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("frame {i} never came"));
        c.frame.expect("a pattern frame");
    }
    producer.kill();
    let t0 = Instant::now();
    let ended = wait_eos_or_error(&pipeline, Duration::from_secs(10));
    match ended {
        Some(Err(e)) => println!("error after {:?}: {e}", t0.elapsed()),
        other => panic!("expected an error message, got {other:?}"),
    }
    stop(pipeline);
    assert_validation_clean();
}

#[test]
fn geysersrc_waits_for_a_restarted_producer_and_renegotiates_its_size() {
    init();
    let name = endpoint("restart");
    let vars = |w: u32, h: u32| {
        vec![
            ("GT_FRAMES", "0".to_string()),
            ("GT_INTERVAL_MS", "10".into()),
            ("GT_W", w.to_string()),
            ("GT_H", h.to_string()),
        ]
    };
    let mut first = ChildProc::spawn("producer", &name, &vars(320, 240));
    let (pipeline, sink) = src_pipeline(&format!(
        "endpoint={name} on-disconnect=wait connect-timeout=0"
    ));
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    for _ in 0..5 {
        let c = pull_checked(&sink, Duration::from_secs(30)).expect("a frame");
        assert_eq!((c.width, c.height), (320, 240));
        c.frame.expect("a pattern frame");
    }
    first.kill();
    // No error while nobody produces.
    assert!(wait_eos_or_error(&pipeline, Duration::from_millis(500)).is_none());
    let _second = ChildProc::spawn("producer", &name, &vars(160, 120));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut at_new_size = 0;
    while at_new_size < 5 {
        assert!(
            Instant::now() < deadline,
            "no frames from the second producer"
        );
        let Some(c) = pull_checked(&sink, Duration::from_secs(30)) else {
            panic!(
                "stream ended: {:?}",
                wait_eos_or_error(&pipeline, Duration::ZERO)
            );
        };
        // Frames of the first producer may still be queued in the appsink.
        if (c.width, c.height) == (160, 120) {
            c.frame.expect("a pattern frame at the new size");
            at_new_size += 1;
        }
    }
    assert_eq!(stats(&pipeline, "src").get::<u64>("connects").unwrap(), 2);
    stop(pipeline);
    assert_validation_clean();
}

#[test]
fn a_pipeline_waiting_for_a_producer_stops_promptly() {
    init();
    let name = endpoint("nobody");
    let (pipeline, _sink) = src_pipeline(&format!(
        "endpoint={name} on-disconnect=wait connect-timeout=0"
    ));
    // Live source: the state change is asynchronous and completes without a producer.
    let _ = pipeline.set_state(gst::State::Playing);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    stop(pipeline);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn geysersrc_fails_with_a_clear_error_when_no_producer_comes() {
    init();
    let name = endpoint("absent");
    let (pipeline, _sink) = src_pipeline(&format!("endpoint={name} connect-timeout=300"));
    let _ = pipeline.set_state(gst::State::Playing);
    match wait_eos_or_error(&pipeline, Duration::from_secs(10)) {
        Some(Err(e)) => assert!(e.contains(&name), "{e}"),
        other => panic!("expected an error naming the endpoint, got {other:?}"),
    }
    stop(pipeline);
}
