//! `geyser stream send NAME DEST` / `geyser stream recv SRC NAME`: a Geyser stream beyond this
//! process's reach, through GStreamer pipelines built around `geysersrc` and `geysersink`:
//! RTP over UDP to another machine (raw video for exactness, H.264 for bandwidth) and back
//! into a Geyser endpoint there, or a PipeWire video node on this machine. `--print` shows
//! the equivalent `gst-launch-1.0` line (with `GST_PLUGIN_PATH` pointing at
//! `libgstgeyser.so`, that line does the same job).

use clap::{Args, Subcommand, ValueEnum};
use geyser::{Error, Result};
use gst::prelude::*;

/// `geyser stream`.
#[derive(Args, Debug)]
pub struct StreamArgs {
    #[command(subcommand)]
    command: StreamCommand,
}

#[derive(Subcommand, Debug)]
enum StreamCommand {
    /// Send the Geyser endpoint NAME to DEST: udp://HOST:PORT (RTP) or pipewire[:NODE] (a
    /// PipeWire Video/Source node, default node name geyser-NAME).
    Send {
        /// Geyser endpoint to read.
        name: String,
        /// udp://HOST:PORT or pipewire[:NODE].
        to: String,
        #[command(flatten)]
        options: Options,
    },
    /// Receive from SRC (udp://[ADDRESS]:PORT, or pipewire:NODE for a PipeWire video node)
    /// and publish it as the Geyser endpoint NAME.
    Recv {
        /// udp://ADDRESS:PORT or pipewire:NODE.
        from: String,
        /// Geyser endpoint to publish.
        name: String,
        #[command(flatten)]
        options: Options,
    },
}

/// How frames travel over RTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Codec {
    /// Uncompressed (RFC 4175): every texel arrives as sent. Needs --size on the receiver.
    Raw,
    /// H.264 (`--encoder`, x264enc tuned for zero latency by default).
    H264,
}

#[derive(Args, Debug, Clone)]
struct Options {
    /// RTP payload (udp only).
    #[arg(long, value_enum, default_value = "raw")]
    codec: Codec,
    /// Frame size WIDTHxHEIGHT: needed to receive raw RTP (the sender's size).
    #[arg(long)]
    size: Option<String>,
    /// Texel format of raw RTP: rgba or bgra (the sender's).
    #[arg(long, default_value = "rgba")]
    format: String,
    /// Nominal frame rate (caps, encoder keyframe interval).
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// H.264 bit rate, kbit/s.
    #[arg(long, default_value_t = 4000)]
    bitrate: u32,
    /// H.264 encoder element (e.g. nvh264enc, vah264enc where present).
    #[arg(long, default_value = "x264enc")]
    encoder: String,
    /// Every frame: the sender takes every frame of a lossless producer, the receiver
    /// publishes a lossless endpoint.
    #[arg(long)]
    lossless: bool,
    /// Stop after this many frames (0: until the stream ends).
    #[arg(long, default_value_t = 0)]
    frames: u64,
    /// Receiver: stop when nothing arrived for this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    idle_timeout: u64,
    /// Vulkan device (as GEYSER_DEVICE).
    #[arg(long)]
    device: Option<String>,
    /// Print the gst-launch-1.0 pipeline instead of running it.
    #[arg(long)]
    print: bool,
}

/// Where frames go or come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    Udp { host: String, port: u16 },
    PipeWire { node: Option<String> },
}

fn parse_place(s: &str) -> Result<Place> {
    let bad = |why: &str| Error::InvalidArgument {
        what: "stream address",
        reason: format!("`{s}`: {why}; use udp://HOST:PORT or pipewire[:NODE]"),
    };
    if let Some(rest) = s.strip_prefix("udp://") {
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port = port.parse().map_err(|_| bad("bad port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        return Ok(Place::Udp {
            host: host.to_string(),
            port,
        });
    }
    if s == "pipewire" {
        return Ok(Place::PipeWire { node: None });
    }
    if let Some(node) = s.strip_prefix("pipewire:") {
        return Ok(Place::PipeWire {
            node: (!node.is_empty()).then(|| node.to_string()),
        });
    }
    Err(bad("unknown scheme"))
}

/// A value safe inside a gst-launch description (element properties, caps strings).
fn quoted(s: &str) -> Result<String> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(Error::InvalidArgument {
            what: "name",
            reason: format!("`{s}`: use letters, digits, - _ . : only"),
        });
    }
    Ok(s.to_string())
}

fn device_prop(o: &Options) -> Result<String> {
    Ok(match &o.device {
        Some(d) => format!(" device={}", quoted(d)?),
        None => String::new(),
    })
}

fn raw_caps(o: &Options) -> Result<(u32, u32, &'static str)> {
    let size = o.size.as_deref().ok_or_else(|| Error::InvalidArgument {
        what: "--size",
        reason: "receiving raw RTP needs the sender's frame size, e.g. --size 1920x1080".into(),
    })?;
    let (w, h) = geyser_harness::args::parse_size(size)?;
    let format = match o.format.to_ascii_lowercase().as_str() {
        "rgba" => "RGBA",
        "bgra" => "BGRA",
        other => {
            return Err(Error::InvalidArgument {
                what: "--format",
                reason: format!("`{other}`: raw RTP carries rgba or bgra"),
            })
        }
    };
    Ok((w, h, format))
}

/// The pipeline of `geyser stream send NAME TO`.
fn send_pipeline(name: &str, to: &Place, o: &Options) -> Result<String> {
    let mut src = format!(
        "geysersrc name=src endpoint={} framerate={}/1{}",
        quoted(name)?,
        o.fps,
        device_prop(o)?
    );
    if o.lossless {
        src.push_str(" lossless=true");
    }
    if o.frames > 0 {
        src.push_str(&format!(" num-buffers={}", o.frames));
    }
    Ok(match to {
        Place::Udp { host, port } => {
            let sink = format!("udpsink host={} port={port} sync=false", quoted(host)?);
            match o.codec {
                Codec::Raw => format!("{src} ! rtpvrawpay mtu=1400 pt=96 ! {sink}"),
                Codec::H264 => format!(
                    "{src} ! videoconvert ! video/x-raw,format=I420 ! {} ! \
                     rtph264pay config-interval=-1 pt=96 ! {sink}",
                    encoder(o)?
                ),
            }
        }
        Place::PipeWire { node } => {
            let node = match node {
                Some(n) => quoted(n)?,
                None => format!("geyser-{}", quoted(name)?),
            };
            format!(
                "{src} ! pipewiresink name=sink mode=provide client-name={node} \
                 stream-properties=\"props,media.class=Video/Source,node.name={node}\""
            )
        }
    })
}

fn encoder(o: &Options) -> Result<String> {
    let e = quoted(&o.encoder)?;
    Ok(if e == "x264enc" {
        format!(
            "x264enc tune=zerolatency speed-preset=ultrafast bitrate={} key-int-max={}",
            o.bitrate,
            o.fps.max(1)
        )
    } else {
        format!("{e} bitrate={}", o.bitrate)
    })
}

/// The pipeline of `geyser stream recv FROM NAME`.
fn recv_pipeline(from: &Place, name: &str, o: &Options) -> Result<String> {
    let sink = format!(
        "geysersink name=sink endpoint={} lossless={} sync=false{}",
        quoted(name)?,
        o.lossless,
        device_prop(o)?
    );
    Ok(match from {
        Place::Udp { host, port } => {
            let timeout = o.idle_timeout * 1_000_000_000;
            let udp = format!(
                "udpsrc name=udp address={} port={port} buffer-size=16777216 timeout={timeout}",
                quoted(host)?
            );
            match o.codec {
                Codec::Raw => {
                    let (w, h, format) = raw_caps(o)?;
                    format!(
                        "{udp} caps=\"application/x-rtp,media=video,clock-rate=90000,\
                         encoding-name=RAW,sampling={format},depth=(string)8,\
                         width=(string){w},height=(string){h},colorimetry=(string)SMPTE240M,\
                         payload=96\" ! rtpvrawdepay ! {sink}"
                    )
                }
                Codec::H264 => format!(
                    "{udp} caps=\"application/x-rtp,media=video,clock-rate=90000,\
                     encoding-name=H264,payload=96\" ! rtph264depay ! h264parse ! \
                     avdec_h264 ! videoconvert ! video/x-raw,format=RGBA ! {sink}"
                ),
            }
        }
        Place::PipeWire { node } => {
            let node = node.as_deref().ok_or_else(|| Error::InvalidArgument {
                what: "stream address",
                reason: "receiving from PipeWire needs the node: pipewire:NODE".into(),
            })?;
            format!(
                "pipewiresrc target-object={} ! videoconvert ! video/x-raw,format=RGBA ! {sink}",
                quoted(node)?
            )
        }
    })
}

/// Runs `geyser stream …`; `Ok(false)` when the pipeline failed (its error is printed).
pub fn run(args: &StreamArgs) -> Result<bool> {
    let (description, options, sending, to_pipewire) = match &args.command {
        StreamCommand::Send { name, to, options } => {
            let to = parse_place(to)?;
            let pipewire = matches!(to, Place::PipeWire { .. });
            (send_pipeline(name, &to, options)?, options, true, pipewire)
        }
        StreamCommand::Recv {
            from,
            name,
            options,
        } => {
            let from = parse_place(from)?;
            (recv_pipeline(&from, name, options)?, options, false, false)
        }
    };
    if options.print {
        if to_pipewire {
            println!(
                "# geyser serves PipeWire with its own node (see README, PipeWire); the \
                 GStreamer-only equivalent, with pipewiresink's limits:"
            );
        }
        println!("gst-launch-1.0 {description}");
        return Ok(true);
    }
    gst::init().map_err(|e| Error::unsupported("GStreamer", e.to_string()))?;
    if let StreamCommand::Send { name, to, options } = &args.command {
        if let Place::PipeWire { node } = parse_place(to)? {
            return publish_pipewire(name, node, options);
        }
    }
    gstgeyser::plugin_register_static()
        .map_err(|e| Error::Internal(format!("registering the geyser elements: {e}")))?;
    let pipeline = match gst::parse::launch(&description) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("geyser: stream: {e}\n  pipeline: {description}");
            return Ok(false);
        }
    };
    let pipeline = pipeline
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::Internal("not a pipeline".into()))?;
    eprintln!("geyser: stream: {description}");
    let result = drive(&pipeline, options, sending);
    let _ = pipeline.set_state(gst::State::Null);
    let stats = |el: &str| {
        pipeline
            .by_name(el)
            .filter(|e| e.has_property("stats"))
            .map(|e| e.property::<gst::Structure>("stats").to_string())
    };
    if let Some(s) = stats(if sending { "src" } else { "sink" }) {
        println!("{s}");
    }
    result
}

/// `geyser stream send NAME pipewire[:NODE]`: the endpoint as a PipeWire Video/Source node.
#[cfg(feature = "pipewire")]
fn publish_pipewire(name: &str, node: Option<String>, o: &Options) -> Result<bool> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let options = gstgeyser::pipewire::PublishOptions {
        node_name: node.unwrap_or_else(|| format!("geyser-{name}")),
        framerate: (o.fps, 1),
        device: o.device.clone().unwrap_or_default(),
        lossless: o.lossless,
        ..Default::default()
    };
    eprintln!(
        "geyser: stream: `{name}` as PipeWire node `{}` (Video/Source)",
        options.node_name
    );
    let stats = gstgeyser::pipewire::publish(name, &options, Arc::new(AtomicBool::new(false)))?;
    println!(
        "pipewire-node-stats, frames={}, direct-copies={}, staged-copies={}, dropped={}",
        stats.frames, stats.direct, stats.staged, stats.dropped
    );
    let fps = (stats.frames.max(1) - 1) as f64 / stats.seconds.max(1e-9);
    println!(
        "RESULT {{\"frames\":{},\"seconds\":{},\"fps\":{fps},\"cpu_us_per_frame\":{}}}",
        stats.frames, stats.seconds, stats.cpu_us_per_frame
    );
    Ok(true)
}

#[cfg(not(feature = "pipewire"))]
fn publish_pipewire(_name: &str, _node: Option<String>, _o: &Options) -> Result<bool> {
    Err(Error::unsupported(
        "geyser stream send … pipewire",
        "this geyser was built without PipeWire; rebuild with `--features pipewire`",
    ))
}

/// Plays the pipeline until end of stream, an error, the frame limit or the idle timeout.
/// Longest wait for a receiver's first frame before its idle timeout applies.
const STARTUP: std::time::Duration = std::time::Duration::from_secs(60);

fn drive(pipeline: &gst::Pipeline, o: &Options, sending: bool) -> Result<bool> {
    if pipeline.set_state(gst::State::Playing).is_err() {
        eprintln!("geyser: stream: the pipeline would not start");
    }
    let bus = pipeline
        .bus()
        .ok_or_else(|| Error::Internal("no bus".into()))?;
    let started = std::time::Instant::now();
    loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(50));
        if let Some(msg) = msg {
            match msg.view() {
                gst::MessageView::Eos(..) => return Ok(true),
                gst::MessageView::Error(e) => {
                    eprintln!(
                        "geyser: stream: {} ({})",
                        e.error(),
                        e.debug().map(|d| d.to_string()).unwrap_or_default()
                    );
                    return Ok(false);
                }
                gst::MessageView::Element(e)
                    if e.structure()
                        .is_some_and(|s| s.name() == "GstUDPSrcTimeout") =>
                {
                    // Before the first frame the sender may still be starting (Vulkan,
                    // encoders): the idle timeout counts from then, up to STARTUP.
                    if presented(pipeline) == 0 && started.elapsed() < STARTUP {
                        continue;
                    }
                    eprintln!("geyser: stream: nothing received for {} s", o.idle_timeout);
                    return Ok(presented(pipeline) > 0);
                }
                _ => {}
            }
        }
        if !sending && o.frames > 0 && presented(pipeline) >= o.frames {
            return Ok(true);
        }
    }
}

/// Frames the receiver's `geysersink` presented so far.
fn presented(pipeline: &gst::Pipeline) -> u64 {
    pipeline
        .by_name("sink")
        .filter(|e| e.has_property("stats"))
        .and_then(|e| {
            e.property::<gst::Structure>("stats")
                .get::<u64>("presented")
                .ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            codec: Codec::Raw,
            size: Some("320x240".into()),
            format: "rgba".into(),
            fps: 30,
            bitrate: 4000,
            encoder: "x264enc".into(),
            lossless: false,
            frames: 0,
            idle_timeout: 0,
            device: None,
            print: false,
        }
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(
            parse_place("udp://127.0.0.1:5000").unwrap(),
            Place::Udp {
                host: "127.0.0.1".into(),
                port: 5000
            }
        );
        assert_eq!(
            parse_place("udp://:5000").unwrap(),
            Place::Udp {
                host: "0.0.0.0".into(),
                port: 5000
            }
        );
        assert_eq!(
            parse_place("pipewire").unwrap(),
            Place::PipeWire { node: None }
        );
        assert!(parse_place("udp://host").is_err());
        assert!(parse_place("tcp://host:1").is_err());
    }

    #[test]
    fn pipelines_name_their_elements_and_refuse_bad_names() {
        let o = options();
        let udp = parse_place("udp://127.0.0.1:5000").unwrap();
        let send = send_pipeline("cam", &udp, &o).unwrap();
        assert!(send.contains("geysersrc name=src endpoint=cam") && send.contains("rtpvrawpay"));
        let recv = recv_pipeline(&udp, "cam2", &o).unwrap();
        assert!(recv.contains("width=(string)320") && recv.contains("geysersink name=sink"));
        let h264 = Options {
            codec: Codec::H264,
            ..o.clone()
        };
        assert!(send_pipeline("cam", &udp, &h264)
            .unwrap()
            .contains("tune=zerolatency"));
        assert!(send_pipeline("a b", &udp, &o).is_err());
        let no_size = Options { size: None, ..o };
        assert!(recv_pipeline(&udp, "cam2", &no_size).is_err());
    }
}
