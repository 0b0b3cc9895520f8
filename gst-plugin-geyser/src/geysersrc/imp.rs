//! `geysersrc`'s implementation: a live `PushSrc` holding a Geyser [`Consumer`]. It connects
//! when negotiating (the producer's format and size are the caps), copies each frame into a
//! pooled buffer with one GPU copy, and timestamps it with the producer's present time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use geyser::common::TextureDescriptor;
use geyser::ipc::clock::monotonic_ns;
use geyser::ipc::{Consumer, ConsumerOptions, Frame};
use geyser::vulkan::VulkanTextureShareManager;
use geyser::Error;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;

use super::allocation;
use super::settings::{self, Settings};
use super::OnDisconnect;
use crate::dmabuf::DmaBufSlots;
use crate::format::{video_format, video_formats};
use crate::hostmem::{CopyCounts, HostCopier, Plane};
use crate::props::open_device;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "geysersrc",
        gst::DebugColorFlags::empty(),
        Some("Geyser stream source"),
    )
});

/// How long one wait for a frame or a producer lasts before checking for a flush.
const POLL: Duration = Duration::from_millis(50);

/// DMA-BUF output buffers (downstream may hold all but one).
const DMABUF_SLOTS: usize = 4;

/// What lives between start and stop.
struct Session {
    settings: Settings,
    manager: Arc<VulkanTextureShareManager>,
    copier: HostCopier,
    consumer: Option<Consumer>,
    /// The producer's descriptor the current caps were made from.
    negotiated: Option<TextureDescriptor>,
    info: Option<gst_video::VideoInfo>,
    /// The next buffer starts a new run of frames (first one, or after a reconnect).
    discont: bool,
    /// DMA-BUF caps are offered (the device exports DMA-BUF and `dmabuf` is on).
    dmabuf_offered: bool,
    /// The DMA-BUF output buffers, when the negotiated caps are `memory:DMABuf`.
    slots: Option<DmaBufSlots>,
}

#[derive(Default)]
struct Counters {
    frames: AtomicU64,
    skipped: AtomicU64,
    superseded: AtomicU64,
    connects: AtomicU64,
}

/// The `geysersrc` element.
#[derive(Default)]
pub struct GeyserSrc {
    settings: Mutex<Settings>,
    session: Mutex<Option<Session>>,
    /// Set by `unlock` (flush or state change): blocking waits return.
    flushing: AtomicBool,
    counters: Counters,
    copies: Arc<CopyCounts>,
}

/// What waiting for a frame came to.
enum Outcome {
    Copied(Result<gst::Buffer, gst::FlowError>),
    Idle,
    Lost(Error),
}

/// What one turn of `create` came to.
enum Step {
    Buffer(gst::Buffer),
    /// The (new) producer's format differs from the caps: negotiate, then go on.
    Renegotiate,
    /// Nothing yet (no frame in this poll, or a producer left and we wait for another).
    Again,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A producer that said goodbye (as opposed to one that died or broke the protocol).
fn is_clean_end(e: &Error) -> bool {
    matches!(e, Error::PeerGone(why) if why.contains("closed the stream"))
}

/// Errors that mean "no producer there (yet)": worth retrying until the connect timeout.
fn is_retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::NotFound { .. } | Error::PeerGone(_) | Error::Timeout(_) | Error::Io(_)
    ) || matches!(
        e,
        Error::Rejected {
            reason: geyser::common::RejectReason::Busy,
            ..
        }
    )
}

impl GeyserSrc {
    /// Caps for frames of `desc`: system memory, then (if offered) the same as DMA-BUF, so
    /// DMA-BUF is chosen only by downstream elements that ask for it.
    fn caps_for(
        &self,
        desc: &TextureDescriptor,
        framerate: gst::Fraction,
        dmabuf: bool,
    ) -> Option<gst::Caps> {
        let format = video_format(desc.format)?;
        let system = gst_video::VideoCapsBuilder::new()
            .format(format)
            .width(desc.width as i32)
            .height(desc.height as i32)
            .framerate(framerate)
            .pixel_aspect_ratio(gst::Fraction::new(1, 1))
            .build();
        let mut caps = system.copy();
        if dmabuf {
            let mut dma = system.copy();
            if let Some(dma) = dma.get_mut() {
                dma.set_features_simple(Some(gst_allocators::CAPS_FEATURES_MEMORY_DMABUF.clone()));
            }
            caps.merge(dma);
        }
        Some(caps)
    }

    /// Connects `session` to its endpoint, retrying while no producer is there, until the
    /// connect timeout (or a flush).
    fn connect(&self, session: &mut Session) -> Result<(), gst::FlowError> {
        let s = &session.settings;
        let timeout =
            (s.connect_timeout > 0).then(|| Duration::from_millis(s.connect_timeout.into()));
        let deadline = timeout.map(|t| Instant::now() + t);
        let options = ConsumerOptions {
            sync: s.sync.mode(),
            lossless: s.lossless,
            name: format!("geysersrc-{}", std::process::id()),
            ..Default::default()
        };
        loop {
            if self.flushing.load(Ordering::Acquire) {
                return Err(gst::FlowError::Flushing);
            }
            match Consumer::connect_with(&s.endpoint, session.manager.clone(), options.clone()) {
                Ok(consumer) => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "connected to `{}`: {}x{} {}, sync {:?}",
                        s.endpoint,
                        consumer.descriptor().width,
                        consumer.descriptor().height,
                        consumer.descriptor().format,
                        consumer.sync_mode()
                    );
                    self.counters.connects.fetch_add(1, Ordering::Relaxed);
                    session.consumer = Some(consumer);
                    session.discont = true;
                    return Ok(());
                }
                Err(e) if is_retryable(&e) && deadline.is_none_or(|d| Instant::now() < d) => {
                    gst::trace!(CAT, imp = self, "no producer yet: {e}");
                    std::thread::sleep(POLL);
                }
                Err(e) => {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenRead,
                        [
                            "Cannot connect to Geyser endpoint `{}`: {e} (connect-timeout {} ms)",
                            s.endpoint,
                            s.connect_timeout
                        ]
                    );
                    return Err(gst::FlowError::Error);
                }
            }
        }
    }

    /// The producer went away with `e`: EOS, an error, or wait for the next one.
    fn lost(&self, session: &mut Session, e: Error) -> Result<Step, gst::FlowError> {
        session.consumer = None;
        match session.settings.on_disconnect {
            OnDisconnect::Wait => {
                gst::info!(CAT, imp = self, "producer gone ({e}); waiting for another");
                Ok(Step::Again)
            }
            OnDisconnect::Error if is_clean_end(&e) => {
                gst::info!(CAT, imp = self, "producer ended the stream");
                Err(gst::FlowError::Eos)
            }
            OnDisconnect::Error => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Read,
                    [
                        "Geyser producer `{}` is gone: {e}",
                        session.settings.endpoint
                    ]
                );
                Err(gst::FlowError::Error)
            }
        }
    }

    /// Running time at which the producer presented a frame (`present_ns` on
    /// `CLOCK_MONOTONIC`): now, minus the frame's age.
    fn running_time_of(&self, present_ns: u64) -> Option<gst::ClockTime> {
        let obj = self.obj();
        let clock = obj.clock()?;
        let base = obj.base_time()?;
        let now = clock.time();
        let age = monotonic_ns().saturating_sub(present_ns);
        now.checked_sub(base)?
            .checked_sub(gst::ClockTime::from_nseconds(age))
    }

    fn step(&self) -> Result<Step, gst::FlowError> {
        let mut guard = lock(&self.session);
        let session = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        if session.consumer.is_none() {
            self.connect(session)?;
        }
        let Session {
            consumer,
            copier,
            info,
            negotiated,
            discont,
            slots,
            ..
        } = session;
        let consumer = consumer.as_mut().ok_or(gst::FlowError::Error)?;
        if negotiated.as_ref() != Some(consumer.descriptor()) {
            return Ok(Step::Renegotiate);
        }
        let outcome = match consumer.next_frame(Some(POLL)) {
            Ok(frame) => Outcome::Copied(match slots.as_mut() {
                Some(slots) => self.copy_frame_dmabuf(frame, copier, slots, *discont),
                None => self.copy_frame(frame, copier, info.as_ref(), *discont),
            }),
            Err(Error::Timeout(_)) => Outcome::Idle,
            Err(e) => Outcome::Lost(e),
        };
        match outcome {
            Outcome::Copied(buffer) => {
                let buffer = buffer?;
                *discont = false;
                let counters = consumer.counters();
                self.counters.frames.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .skipped
                    .store(counters.skipped, Ordering::Relaxed);
                self.counters
                    .superseded
                    .store(counters.superseded, Ordering::Relaxed);
                Ok(Step::Buffer(buffer))
            }
            Outcome::Idle => Ok(Step::Again),
            Outcome::Lost(e) => self.lost(session, e),
        }
    }

    /// One GPU copy of `frame` into a buffer of the negotiated pool, timestamped.
    fn copy_frame(
        &self,
        frame: Frame<'_>,
        copier: &mut HostCopier,
        info: Option<&gst_video::VideoInfo>,
        discont: bool,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let info = info.ok_or(gst::FlowError::NotNegotiated)?;
        let pool = self
            .obj()
            .buffer_pool()
            .ok_or(gst::FlowError::NotNegotiated)?;
        let mut buffer = pool.acquire_buffer(None)?;
        let buf = buffer.get_mut().ok_or(gst::FlowError::Error)?;
        let plane = Plane::of(buf, info);
        let (number, present_ns) = (frame.number(), frame.present_ns());
        let texture = frame.texture().clone();
        let wait = frame.wait_point();
        let mut frame = Some(frame);
        let release = frame.as_mut().and_then(|f| f.release_point());
        let copied = copier.download(
            &texture,
            wait.as_slice(),
            release.as_slice(),
            // Timeline mode: the GPU signals our release, so hand the slot back at once.
            || match (&release, &mut frame) {
                (Some(_), frame) => frame.take().map_or(Ok(()), |f| f.release()),
                (None, _) => Ok(()),
            },
            buf,
            &plane,
        );
        // Host mode: the copy is done, the slot can go back.
        drop(frame);
        if let Err(e) = copied {
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ["Copying frame {number} from the GPU failed: {e}"]
            );
            return Err(gst::FlowError::Error);
        }
        self.stamp(buf, number, present_ns, discont);
        Ok(buffer)
    }

    /// Timestamps and numbers a buffer filled with frame `number`.
    fn stamp(&self, buf: &mut gst::BufferRef, number: u64, present_ns: u64, discont: bool) {
        let pts = self.running_time_of(present_ns);
        gst::log!(CAT, imp = self, "frame {number}: pts {}", pts.display());
        buf.set_pts(pts);
        buf.set_offset(number);
        buf.set_offset_end(number + 1);
        if discont {
            buf.set_flags(gst::BufferFlags::DISCONT);
        } else {
            buf.unset_flags(gst::BufferFlags::DISCONT);
        }
    }

    /// One GPU copy of `frame` into a DMA-BUF output buffer no downstream element holds
    /// (waiting for one to come back if all are out).
    fn copy_frame_dmabuf(
        &self,
        frame: Frame<'_>,
        copier: &mut HostCopier,
        slots: &mut DmaBufSlots,
        discont: bool,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let plane = slots.plane;
        let slot = loop {
            if self.flushing.load(Ordering::Acquire) {
                return Err(gst::FlowError::Flushing);
            }
            if let Some(i) = slots.free_index() {
                break slots.slot(i);
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let (number, present_ns) = (frame.number(), frame.present_ns());
        let texture = frame.texture().clone();
        let wait = frame.wait_point();
        let mut frame = Some(frame);
        let release = frame.as_mut().and_then(|f| f.release_point());
        let copied = copier.download_to_buffer(
            &texture,
            wait.as_slice(),
            release.as_slice(),
            || match (&release, &mut frame) {
                (Some(_), frame) => frame.take().map_or(Ok(()), |f| f.release()),
                (None, _) => Ok(()),
            },
            &slot.vk,
            &plane,
        );
        drop(frame);
        if let Err(e) = copied {
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ["Copying frame {number} into a DMA-BUF failed: {e}"]
            );
            return Err(gst::FlowError::Error);
        }
        let buf = slot.gst.get_mut().ok_or(gst::FlowError::Error)?;
        self.stamp(buf, number, present_ns, discont);
        Ok(slot.gst.clone())
    }

    fn stats(&self) -> gst::Structure {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gst::Structure::builder("geysersrc-stats")
            .field("frames", get(&c.frames))
            .field("skipped", get(&c.skipped))
            .field("superseded", get(&c.superseded))
            .field("connects", get(&c.connects))
            .field("direct-copies", get(&self.copies.direct))
            .field("staged-copies", get(&self.copies.staged))
            .field("host-imports", get(&self.copies.imports))
            .build()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for GeyserSrc {
    const NAME: &'static str = "GstGeyserSrc";
    type Type = super::GeyserSrc;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for GeyserSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::specs);
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if !lock(&self.settings).set(pspec.name(), value) {
            gst::warning!(CAT, imp = self, "no writable property {}", pspec.name());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats().to_value();
        }
        lock(&self.settings)
            .get(pspec.name())
            .unwrap_or_else(|| pspec.default_value().clone())
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        // Live: no preroll, buffers only in PLAYING, latency reported.
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
        obj.set_automatic_eos(false);
        obj.set_do_timestamp(false);
        // Frames are stamped on CLOCK_MONOTONIC: offer the monotonic system clock, so the
        // pipeline runs on the producers' clock rather than on a sink's (pipewiresink's clock
        // jumps when its stream starts, which threw the timestamps off by the uptime).
        obj.set_element_flags(gst::ElementFlags::PROVIDE_CLOCK);
    }
}

impl GstObjectImpl for GeyserSrc {}

impl ElementImpl for GeyserSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Geyser source",
                "Source/Video",
                "Receives a Geyser stream (GPU textures shared by another process) as live \
                 video: one GPU copy of each frame into a pooled buffer, timestamped with the \
                 producer's present time; caps follow the producer's format and size",
                "Geyser project",
            )
        });
        Some(&*META)
    }

    fn provide_clock(&self) -> Option<gst::Clock> {
        // The system clock's default type is CLOCK_MONOTONIC, the clock frames carry.
        Some(gst::SystemClock::obtain())
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut caps = gst_video::VideoCapsBuilder::new()
                .format_list(video_formats())
                .build();
            caps.merge(
                gst_video::VideoCapsBuilder::new()
                    .features([gst_allocators::CAPS_FEATURE_MEMORY_DMABUF])
                    .format_list(video_formats())
                    .build(),
            );
            vec![gst::PadTemplate::new(
                "src",
                gst::PadDirection::Src,
                gst::PadPresence::Always,
                &caps,
            )
            .expect("a valid template")]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSrcImpl for GeyserSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let manager = open_device(&settings.device)?;
        let copier = HostCopier::new(manager.clone(), self.copies.clone())
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ["GPU copier: {e}"]))?;
        gst::info!(
            CAT,
            imp = self,
            "on {} for endpoint `{}`",
            manager.identity().name,
            settings.endpoint
        );
        let dmabuf_offered = settings.dmabuf && crate::dmabuf::possible(&manager);
        *lock(&self.session) = Some(Session {
            settings,
            manager,
            copier,
            consumer: None,
            negotiated: None,
            info: None,
            discont: true,
            dmabuf_offered,
            slots: None,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the consumer releases its frames and closes the connection.
        *lock(&self.session) = None;
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    /// Connects first (the producer's format and size are the caps), then negotiates.
    fn negotiate(&self) -> Result<(), gst::LoggableError> {
        {
            let mut guard = lock(&self.session);
            let session = guard
                .as_mut()
                .ok_or_else(|| gst::loggable_error!(CAT, "negotiating while stopped"))?;
            if session.consumer.is_none() {
                self.connect(session)
                    .map_err(|e| gst::loggable_error!(CAT, "no producer: {e:?}"))?;
            }
        }
        self.parent_negotiate()
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let offered = {
            let guard = lock(&self.session);
            guard.as_ref().and_then(|s| {
                let desc = s.consumer.as_ref()?.descriptor();
                match self.caps_for(desc, s.settings.framerate, s.dmabuf_offered) {
                    Some(caps) => Some(caps),
                    None => {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Format,
                            [
                                "The producer's format {} has no GStreamer equivalent",
                                desc.format
                            ]
                        );
                        Some(gst::Caps::new_empty())
                    }
                }
            })
        };
        let caps = offered.unwrap_or_else(|| self.obj().src_pad().pad_template_caps());
        Some(match filter {
            Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "caps without video info: {caps}"))?;
        let mut guard = lock(&self.session);
        let session = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps while stopped"))?;
        session.negotiated = session.consumer.as_ref().map(|c| c.descriptor().clone());
        let dmabuf = caps
            .features(0)
            .is_some_and(|f| f.contains(gst_allocators::CAPS_FEATURE_MEMORY_DMABUF));
        session.slots = None;
        if dmabuf {
            let slots = DmaBufSlots::new(&session.manager, &info, DMABUF_SLOTS)
                .map_err(|e| gst::loggable_error!(CAT, "DMA-BUF output: {e}"))?;
            session.slots = Some(slots);
        }
        session.info = Some(info);
        session.discont = true;
        gst::debug!(CAT, imp = self, "negotiated {caps}");
        Ok(())
    }

    /// Downstream's pool if it offers one, else a video pool; with downstream's allocator if
    /// it offers one (shmsink's shared memory), else system memory; aligned so the GPU can
    /// copy straight in.
    fn decide_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        if lock(&self.session)
            .as_ref()
            .is_some_and(|s| s.slots.is_some())
        {
            // DMA-BUF output: our own exported buffers, no pool.
            while query.allocation_pools().next().is_some() {
                query.remove_nth_allocation_pool(0);
            }
            return Ok(());
        }
        let align = lock(&self.session)
            .as_ref()
            .and_then(|s| s.copier.alignment())
            .unwrap_or(64) as usize;
        allocation::decide(self, query, align)
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                let ms = lock(&self.settings).latency;
                let latency = gst::ClockTime::from_mseconds(ms.into());
                q.set(true, latency, Some(latency));
                true
            }
            _ => BaseSrcImplExt::parent_query(self, query),
        }
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(true, Ordering::Release);
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(false, Ordering::Release);
        Ok(())
    }
}

impl PushSrcImpl for GeyserSrc {
    // gstreamer-rs installs PushSrc's `create` (not BaseSrc's alloc + fill), so this element
    // implements `create` and takes buffers from the negotiated pool itself.
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        loop {
            if self.flushing.load(Ordering::Acquire) {
                return Err(gst::FlowError::Flushing);
            }
            match self.step()? {
                Step::Buffer(buffer) => return Ok(CreateSuccess::NewBuffer(buffer)),
                Step::Again => {}
                Step::Renegotiate => {
                    gst::info!(CAT, imp = self, "producer format changed: renegotiating");
                    self.obj().src_pad().mark_reconfigure();
                    if !self.obj().negotiate() {
                        if self.flushing.load(Ordering::Acquire) {
                            return Err(gst::FlowError::Flushing);
                        }
                        return Err(gst::FlowError::NotNegotiated);
                    }
                }
            }
        }
    }
}
