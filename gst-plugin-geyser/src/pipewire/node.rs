//! The PipeWire side: a driving output stream with a fixed raw video format, buffers this
//! process allocates (memfds, see [`HostFrame`]), and the loop that trades empty buffers for
//! filled ones with the feed thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use geyser::{Error, Result};
use pipewire as pw;
use pw::spa;
use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
use spa::param::video::VideoFormat;
use spa::param::ParamType;
use spa::pod::{ChoiceValue, Object, Pod, Property, PropertyFlags, Value};
use spa::utils::{Choice, ChoiceEnum, ChoiceFlags, Fraction, Id, Rectangle, SpaTypes};

use super::feed::{Feed, FeedMsg, Fill, Filled, HostFrame, Window};
use super::{PublishOptions, PublishStats, Source};
use crate::hostmem::{CopyCounts, Plane};

/// Buffers the node offers (PipeWire picks within 2..=8).
const BUFFERS: i32 = 4;

/// The stream's fixed layout.
#[derive(Clone, Copy)]
struct Layout {
    format: VideoFormat,
    plane: Plane,
    size: usize,
}

/// What the loop thread keeps between callbacks.
struct NodeState {
    layout: Layout,
    /// Our memory for each PipeWire buffer, by `pw_buffer` address.
    frames: HashMap<usize, Arc<HostFrame>>,
    /// The buffer the feed thread is filling.
    armed: Option<usize>,
    /// A filled buffer waiting for the next process cycle.
    filled: Option<Filled>,
    fills: mpsc::Sender<Fill>,
    queued: u64,
    ended: Option<Result<()>>,
}

fn prop(key: u32, value: Value) -> Property {
    Property {
        key,
        flags: PropertyFlags::empty(),
        value,
    }
}

fn pod_bytes(object: Object) -> Result<Vec<u8>> {
    spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &Value::Object(object),
    )
    .map(|(cursor, _)| cursor.into_inner())
    .map_err(|e| Error::Internal(format!("building a PipeWire parameter: {e:?}")))
}

/// The one format the node offers.
fn format_param(layout: &Layout, framerate: (u32, u32)) -> Result<Vec<u8>> {
    pod_bytes(Object {
        type_: SpaTypes::ObjectParamFormat.as_raw(),
        id: ParamType::EnumFormat.as_raw(),
        properties: vec![
            prop(
                FormatProperties::MediaType.as_raw(),
                Value::Id(Id(MediaType::Video.as_raw())),
            ),
            prop(
                FormatProperties::MediaSubtype.as_raw(),
                Value::Id(Id(MediaSubtype::Raw.as_raw())),
            ),
            prop(
                FormatProperties::VideoFormat.as_raw(),
                Value::Id(Id(layout.format.as_raw())),
            ),
            prop(
                FormatProperties::VideoSize.as_raw(),
                Value::Rectangle(Rectangle {
                    width: layout.plane.width,
                    height: layout.plane.height,
                }),
            ),
            prop(
                FormatProperties::VideoFramerate.as_raw(),
                Value::Fraction(Fraction {
                    num: framerate.0,
                    denom: framerate.1.max(1),
                }),
            ),
        ],
    })
}

/// Buffer layout (memfds this process allocates) and the header meta (timestamps).
fn buffer_params(layout: &Layout) -> Result<[Vec<u8>; 2]> {
    let memfd = 1i32 << spa::sys::SPA_DATA_MemFd;
    let buffers = pod_bytes(Object {
        type_: SpaTypes::ObjectParamBuffers.as_raw(),
        id: ParamType::Buffers.as_raw(),
        properties: vec![
            prop(
                spa::sys::SPA_PARAM_BUFFERS_buffers,
                Value::Choice(ChoiceValue::Int(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Range {
                        default: BUFFERS,
                        min: 2,
                        max: 8,
                    },
                ))),
            ),
            prop(spa::sys::SPA_PARAM_BUFFERS_blocks, Value::Int(1)),
            prop(
                spa::sys::SPA_PARAM_BUFFERS_size,
                Value::Int(layout.size as i32),
            ),
            prop(
                spa::sys::SPA_PARAM_BUFFERS_stride,
                Value::Int(layout.plane.stride as i32),
            ),
            prop(
                spa::sys::SPA_PARAM_BUFFERS_dataType,
                Value::Choice(ChoiceValue::Int(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Flags {
                        default: memfd,
                        flags: vec![memfd],
                    },
                ))),
            ),
        ],
    })?;
    let meta = pod_bytes(Object {
        type_: SpaTypes::ObjectParamMeta.as_raw(),
        id: ParamType::Meta.as_raw(),
        properties: vec![
            prop(
                spa::sys::SPA_PARAM_META_type,
                Value::Id(Id(spa::sys::SPA_META_Header)),
            ),
            prop(
                spa::sys::SPA_PARAM_META_size,
                Value::Int(std::mem::size_of::<spa::sys::spa_meta_header>() as i32),
            ),
        ],
    })?;
    Ok([buffers, meta])
}

fn layout_of(source: &Source) -> Result<Layout> {
    let d = source.consumer.descriptor();
    let format = match crate::format::video_format(d.format) {
        Some(gst_video::VideoFormat::Rgba) => VideoFormat::RGBA,
        Some(gst_video::VideoFormat::Bgra) => VideoFormat::BGRA,
        _ => {
            return Err(Error::unsupported(
                format!("{} on PipeWire", d.format),
                "the PipeWire node carries 8-bit RGBA and BGRA frames",
            ))
        }
    };
    let stride = d.width as usize * 4;
    Ok(Layout {
        format,
        plane: Plane {
            offset: 0,
            stride,
            width: d.width,
            height: d.height,
            texel_bytes: 4,
        },
        size: stride * d.height as usize,
    })
}

/// Gives the feed thread an empty buffer when none is being filled or waiting.
fn arm(stream: &pw::stream::Stream, state: &mut NodeState) {
    if state.armed.is_some() || state.filled.is_some() {
        return;
    }
    // SAFETY: dequeuing on the loop thread; a null result means none is free right now.
    let raw = unsafe { stream.dequeue_raw_buffer() };
    if raw.is_null() {
        return;
    }
    let key = raw as usize;
    let Some(frame) = state.frames.get(&key).cloned() else {
        // Not one of ours (cannot happen with ALLOC_BUFFERS): give it straight back.
        // SAFETY: the buffer was just dequeued from this stream.
        unsafe { stream.queue_raw_buffer(raw) };
        return;
    };
    let fill = Fill {
        key,
        frame,
        plane: state.layout.plane,
    };
    if state.fills.send(fill).is_ok() {
        state.armed = Some(key);
    }
}

/// Queues the filled buffer, if any (on a process cycle, as a driver must).
fn queue_filled(stream: &pw::stream::Stream, state: &mut NodeState) {
    let Some(filled) = state.filled.take() else {
        return;
    };
    if !state.frames.contains_key(&filled.key) {
        return; // removed meanwhile (renegotiation)
    }
    let raw = filled.key as *mut pw::sys::pw_buffer;
    // SAFETY: `raw` is a live buffer of this stream (still in `frames`, which remove_buffer
    // keeps in step), dequeued by `arm` and not queued since; its spa_buffer has the one data
    // plane and the metas negotiated by `buffer_params`.
    unsafe {
        let buffer = (*raw).buffer;
        let data = &mut *(*buffer).datas;
        let chunk = &mut *data.chunk;
        chunk.offset = 0;
        chunk.size = state.layout.size as u32;
        chunk.stride = state.layout.plane.stride as i32;
        chunk.flags = 0;
        for i in 0..(*buffer).n_metas as usize {
            let meta = &*(*buffer).metas.add(i);
            if meta.type_ == spa::sys::SPA_META_Header
                && meta.size as usize >= std::mem::size_of::<spa::sys::spa_meta_header>()
            {
                let header = &mut *(meta.data as *mut spa::sys::spa_meta_header);
                header.flags = 0;
                header.offset = 0;
                // No timestamp: consumers such as pipewiresrc take a header pts for their
                // own running time and wait for it (CLOCK_MONOTONIC stalled them); without
                // one they use the graph's time, as PipeWire's own video-src example does.
                header.pts = -1;
                header.dts_offset = 0;
                header.seq = filled.number;
            }
        }
        stream.queue_raw_buffer(raw);
    }
    state.queued += 1;
}

/// Makes our memory for a buffer PipeWire adds, and describes it in the buffer's data plane.
fn add_buffer(state: &mut NodeState, raw: *mut pw::sys::pw_buffer) {
    let frame = match HostFrame::new(state.layout.size) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            gst::error!(gst::CAT_DEFAULT, "allocating a PipeWire buffer: {e}");
            return;
        }
    };
    // SAFETY: PipeWire hands us a buffer with its data planes to describe (ALLOC_BUFFERS);
    // the memfd stays open and mapped while `frames` holds it, and remove_buffer drops it
    // only when PipeWire is done with the buffer.
    unsafe {
        let buffer = (*raw).buffer;
        if (*buffer).n_datas < 1 {
            return;
        }
        let data = &mut *(*buffer).datas;
        data.type_ = spa::sys::SPA_DATA_MemFd;
        data.flags = spa::sys::SPA_DATA_FLAG_READWRITE | spa::sys::SPA_DATA_FLAG_MAPPABLE;
        data.fd = i64::from(frame.fd().as_raw_fd());
        data.mapoffset = 0;
        data.maxsize = frame.len() as u32;
        data.data = frame.ptr().cast();
    }
    state.frames.insert(raw as usize, frame);
}

/// Runs the node on this thread until the feed ends.
pub(super) fn run(
    source: Source,
    options: &PublishOptions,
    stop: Arc<AtomicBool>,
) -> Result<PublishStats> {
    let layout = layout_of(&source)?;
    pw::init();
    let pw_err = |what: &'static str| {
        move |e: pw::Error| Error::unsupported("PipeWire", format!("{what}: {e}"))
    };
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(pw_err("main loop"))?;
    let context = pw::context::ContextRc::new(&mainloop, None).map_err(pw_err("context"))?;
    let core = context.connect_rc(None).map_err(pw_err(
        "cannot connect to the PipeWire daemon (is it running for this XDG_RUNTIME_DIR?)",
    ))?;
    let (fill_tx, fill_rx) = mpsc::channel();
    let state = Rc::new(RefCell::new(NodeState {
        layout,
        frames: HashMap::new(),
        armed: None,
        filled: None,
        fills: fill_tx,
        queued: 0,
        ended: None,
    }));
    let stream = pw::stream::StreamRc::new(
        core,
        &options.node_name,
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Capture",
            *pw::keys::MEDIA_CLASS => "Video/Source",
            *pw::keys::NODE_NAME => options.node_name.as_str(),
            *pw::keys::NODE_DESCRIPTION => format!("Geyser: {}", options.node_name),
        },
    )
    .map_err(pw_err("stream"))?;
    let buffers = buffer_params(&layout)?;
    let (s1, s2, s3, s4, s5) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
    );
    let _listener = stream
        .add_local_listener::<()>()
        .state_changed(move |stream, _, old, new| {
            gst::debug!(gst::CAT_DEFAULT, "PipeWire stream {old:?} -> {new:?}");
            if matches!(new, pw::stream::StreamState::Streaming) {
                arm(stream, &mut s1.borrow_mut());
            }
        })
        .param_changed(move |stream, _, id, param| {
            if id != ParamType::Format.as_raw() || param.is_none() {
                return;
            }
            let mut params: Vec<&Pod> = buffers.iter().filter_map(|b| Pod::from_bytes(b)).collect();
            if let Err(e) = stream.update_params(&mut params) {
                gst::error!(gst::CAT_DEFAULT, "PipeWire buffer parameters: {e}");
            }
        })
        .add_buffer(move |_, _, raw| add_buffer(&mut s2.borrow_mut(), raw))
        .remove_buffer(move |_, _, raw| {
            let mut st = s3.borrow_mut();
            st.frames.remove(&(raw as usize));
            if st.armed == Some(raw as usize) {
                st.armed = None;
            }
        })
        .process(move |stream, _| {
            let mut st = s4.borrow_mut();
            queue_filled(stream, &mut st);
            arm(stream, &mut st);
        })
        .register()
        .map_err(pw_err("stream listener"))?;
    let format = format_param(&layout, options.framerate)?;
    let mut params = [Pod::from_bytes(&format)
        .ok_or_else(|| Error::Internal("a PipeWire format that does not parse".into()))?];
    stream
        .connect(
            spa::utils::Direction::Output,
            None,
            pw::stream::StreamFlags::DRIVER | pw::stream::StreamFlags::ALLOC_BUFFERS,
            &mut params,
        )
        .map_err(pw_err("connecting the stream"))?;

    // Filled buffers and the feed's end come back through the loop.
    let (msg_tx, msg_rx) = pw::channel::channel::<FeedMsg>();
    let (stream2, loop2) = (stream.clone(), mainloop.clone());
    let _attached = msg_rx.attach(mainloop.loop_(), move |msg| {
        let mut st = s5.borrow_mut();
        match msg {
            FeedMsg::Filled(filled) => {
                if st.armed == Some(filled.key) {
                    st.armed = None;
                    st.filled = Some(filled);
                    if stream2.is_driving() {
                        drop(st);
                        if let Err(e) = stream2.trigger_process() {
                            gst::warning!(gst::CAT_DEFAULT, "PipeWire trigger: {e}");
                        }
                    } else {
                        queue_filled(&stream2, &mut st);
                        arm(&stream2, &mut st);
                    }
                }
            }
            FeedMsg::Hungry => {
                arm(&stream2, &mut st);
                if st.armed.is_none() && st.filled.is_none() && stream2.is_driving() {
                    drop(st);
                    if let Err(e) = stream2.trigger_process() {
                        gst::warning!(gst::CAT_DEFAULT, "PipeWire trigger: {e}");
                    }
                }
            }
            FeedMsg::Ended(result) => {
                st.ended = Some(result);
                loop2.quit();
            }
        }
    });
    let counts = Arc::new(CopyCounts::default());
    let dropped = Arc::new(AtomicU64::new(0));
    let window = Arc::new(std::sync::Mutex::new(None));
    let feed = Feed {
        source,
        lossless: options.lossless,
        window: window.clone(),
        fills: fill_rx,
        stop: stop.clone(),
        counts: counts.clone(),
        dropped: dropped.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("geyser-pipewire-feed".into())
        .spawn(move || {
            feed.run(|m| {
                let _ = msg_tx.send(m);
            })
        })
        .map_err(Error::Io)?;
    mainloop.run();
    // The feed thread ends on its own (it sent Ended), or on `stop` once the loop is gone.
    stop.store(true, Ordering::Release);
    let _ = thread.join();
    let _ = stream.disconnect();
    let mut st = state.borrow_mut();
    let ended = st.ended.take().unwrap_or(Ok(()));
    let window: Option<Window> = *window.lock().unwrap_or_else(|p| p.into_inner());
    let (seconds, cpu_us_per_frame) = match window {
        Some(w) if w.frames > 1 => (
            (w.last.0 - w.first.0).as_secs_f64(),
            (w.last.1 - w.first.1) as f64 / 1e3 / (w.frames - 1) as f64,
        ),
        _ => (0.0, 0.0),
    };
    let stats = PublishStats {
        frames: st.queued,
        direct: counts.direct.load(Ordering::Relaxed),
        staged: counts.staged.load(Ordering::Relaxed),
        dropped: dropped.load(Ordering::Relaxed),
        seconds,
        cpu_us_per_frame,
    };
    ended.map(|()| stats)
}
