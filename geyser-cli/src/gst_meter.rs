//! `geyser __gst-meter PIPELINE`: runs a GStreamer pipeline for the transport benchmark
//! (`scripts/bench-transports.sh`) and measures it at its element named `meter` (an
//! `identity`): frames, seconds from the first frame to the last, and this process's CPU time
//! per frame over the same window. Prints `RESULT {json}` like the examples do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Args;
use geyser::ipc::clock::cpu_time_ns;
use geyser::{Error, Result};
use gst::prelude::*;

/// What `__gst-meter` takes.
#[derive(Args, Debug)]
pub struct MeterArgs {
    /// gst-launch-1.0 description with an element named `meter`.
    pipeline: String,
    /// Stop after this many frames passed `meter` (0: at end of stream).
    #[arg(long, default_value_t = 0)]
    frames: u64,
    /// Stop when no frame passed `meter` for this many seconds after the first (a source
    /// whose peer went away without telling, like pipewiresrc).
    #[arg(long, default_value_t = 3)]
    idle_timeout: u64,
}

#[derive(Default)]
struct Window {
    frames: u64,
    first: Option<(Instant, u64)>,
    last: Option<(Instant, u64)>,
}

/// Runs the pipeline; `Ok(false)` when it failed.
pub fn run(args: &MeterArgs) -> Result<bool> {
    gst::init().map_err(|e| Error::unsupported("GStreamer", e.to_string()))?;
    gstgeyser::plugin_register_static()
        .map_err(|e| Error::Internal(format!("registering the geyser elements: {e}")))?;
    let pipeline = gst::parse::launch(&args.pipeline)
        .map_err(|e| Error::InvalidArgument {
            what: "pipeline",
            reason: e.to_string(),
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::Internal("not a pipeline".into()))?;
    let meter = pipeline
        .by_name("meter")
        .ok_or_else(|| Error::InvalidArgument {
            what: "pipeline",
            reason: "no element named `meter`".into(),
        })?;
    let pad = meter
        .static_pad("src")
        .ok_or_else(|| Error::Internal("meter has no src pad".into()))?;
    let window = Arc::new(Mutex::new(Window::default()));
    let done = Arc::new(AtomicBool::new(false));
    let (w, d, limit) = (window.clone(), done.clone(), args.frames);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let now = (Instant::now(), cpu_time_ns());
        let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
        w.frames += 1;
        w.first.get_or_insert(now);
        w.last = Some(now);
        if limit > 0 && w.frames >= limit {
            d.store(true, Ordering::Release);
        }
        gst::PadProbeReturn::Ok
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| Error::Internal(format!("starting the pipeline: {e}")))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| Error::Internal("no bus".into()))?;
    let mut ok = true;
    let idle = std::time::Duration::from_secs(args.idle_timeout);
    let started = std::time::Instant::now();
    while !done.load(Ordering::Acquire) {
        let last = window.lock().unwrap_or_else(|p| p.into_inner()).last;
        // A source that never delivers (a producer that died, a pipeline that never links)
        // must not hang the bench: the idle timeout, at least a minute, also bounds the first.
        if last.is_none() && started.elapsed() > idle.max(std::time::Duration::from_secs(60)) {
            eprintln!(
                "geyser: __gst-meter: no frame at all after {:?}",
                started.elapsed()
            );
            ok = false;
            break;
        }
        if last.is_some_and(|(t, _)| t.elapsed() > idle) {
            eprintln!(
                "geyser: __gst-meter: no frame for {} s: done",
                args.idle_timeout
            );
            break;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(20)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => {
                let w = window.lock().unwrap_or_else(|p| p.into_inner());
                // A source whose peer went away after the stream (shmsrc) ends with an error.
                ok = limit == 0 && w.frames > 0;
                eprintln!("geyser: __gst-meter: {} ({:?})", e.error(), e.debug());
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    for name in ["src", "sink"] {
        if let Some(e) = pipeline.by_name(name).filter(|e| e.has_property("stats")) {
            println!("{}", e.property::<gst::Structure>("stats"));
        }
    }
    let w = window.lock().unwrap_or_else(|p| p.into_inner());
    let (seconds, cpu_us) = match (w.first, w.last) {
        (Some(a), Some(b)) if w.frames > 1 => (
            (b.0 - a.0).as_secs_f64(),
            (b.1 - a.1) as f64 / 1e3 / (w.frames - 1) as f64,
        ),
        _ => (0.0, 0.0),
    };
    let fps = (w.frames.max(1) - 1) as f64 / seconds.max(1e-9);
    println!(
        "RESULT {}",
        serde_json::json!({
            "frames": w.frames,
            "seconds": seconds,
            "fps": fps,
            "cpu_us_per_frame": cpu_us,
        })
    );
    Ok(ok && w.frames > 0)
}
