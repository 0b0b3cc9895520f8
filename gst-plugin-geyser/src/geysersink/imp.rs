//! `geysersink`'s implementation: a `BaseSink` holding a Geyser [`Producer`]. Caps decide the
//! ring's textures (a new format or size binds a new ring); each buffer is copied into a free
//! slot with one GPU copy and presented.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use geyser::common::{TextureDescriptor, TextureUsage};
use geyser::ipc::{Producer, ProducerOptions};
use geyser::vulkan::VulkanTextureShareManager;
use geyser::Error;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use crate::format::{texture_format, video_formats};
use crate::hostmem::{CopyCounts, HostCopier, Plane};
use crate::props::{common_properties, open_device, SyncChoice, DEFAULT_ENDPOINT};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "geysersink",
        gst::DebugColorFlags::empty(),
        Some("Geyser stream sink"),
    )
});

/// How long one wait for a free slot lasts before checking for a flush.
const POLL: Duration = Duration::from_millis(50);

/// What the ring's textures allow: written by copy here, read by copy (probes, host rings)
/// or sampled by consumers.
const USAGES: [TextureUsage; 3] = [
    TextureUsage::CopyDst,
    TextureUsage::CopySrc,
    TextureUsage::TextureBinding,
];

#[derive(Clone, Debug)]
struct Settings {
    endpoint: String,
    device: String,
    sync: SyncChoice,
    lossless: bool,
    slots: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.into(),
            device: String::new(),
            sync: SyncChoice::Auto,
            lossless: false,
            slots: 3,
        }
    }
}

/// What lives between start and stop.
struct Session {
    settings: Settings,
    manager: Arc<VulkanTextureShareManager>,
    copier: HostCopier,
    producer: Option<Producer>,
    info: Option<gst_video::VideoInfo>,
}

#[derive(Default)]
struct Counters {
    presented: AtomicU64,
    dropped: AtomicU64,
    rings: AtomicU64,
}

/// The `geysersink` element.
#[derive(Default)]
pub struct GeyserSink {
    settings: Mutex<Settings>,
    session: Mutex<Option<Session>>,
    flushing: AtomicBool,
    counters: Counters,
    copies: Arc<CopyCounts>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GeyserSink {
    /// A free slot: in lossless mode wait (interruptibly) until consumers free one; in lossy
    /// mode take one only if free now (else `None`: the frame is dropped).
    fn acquire(
        &self,
        producer: &Producer,
        lossless: bool,
    ) -> Result<Option<geyser::ipc::WriteSlot>, gst::FlowError> {
        loop {
            if self.flushing.load(Ordering::Acquire) {
                return Err(gst::FlowError::Flushing);
            }
            let wait = if lossless { POLL } else { Duration::ZERO };
            match producer.acquire(Some(wait)) {
                Ok(slot) => return Ok(Some(slot)),
                Err(Error::Timeout(_)) if lossless => {}
                Err(Error::Timeout(_)) => return Ok(None),
                Err(e) => {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::Write,
                        ["Geyser producer failed: {e}"]
                    );
                    return Err(gst::FlowError::Error);
                }
            }
        }
    }

    fn stats(&self) -> gst::Structure {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let consumers = lock(&self.session)
            .as_ref()
            .and_then(|s| s.producer.as_ref().map(|p| p.consumer_count() as u64))
            .unwrap_or(0);
        gst::Structure::builder("geysersink-stats")
            .field("presented", get(&c.presented))
            .field("dropped", get(&c.dropped))
            .field("rings", get(&c.rings))
            .field("consumers", consumers)
            .field("direct-copies", get(&self.copies.direct))
            .field("staged-copies", get(&self.copies.staged))
            .field("host-imports", get(&self.copies.imports))
            .build()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for GeyserSink {
    const NAME: &'static str = "GstGeyserSink";
    type Type = super::GeyserSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for GeyserSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut props = common_properties(
                "Name of the Geyser endpoint to publish (consumers connect to it)",
            );
            props.extend([
                glib::ParamSpecBoolean::builder("lossless")
                    .nick("Lossless")
                    .blurb(
                        "Every consumer gets every frame: rendering waits while consumers hold \
                         every slot. Otherwise a frame with no free slot is dropped and slow \
                         consumers skip to the newest",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("slots")
                    .nick("Slots")
                    .blurb("Textures in the ring (at most slots - 1 consumers at once)")
                    .minimum(2)
                    .maximum(16)
                    .default_value(Settings::default().slots)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "presented, dropped (no free slot), rings (bound so far), consumers, \
                         direct-copies (GPU straight from buffer memory), staged-copies, \
                         host-imports",
                    )
                    .read_only()
                    .build(),
            ]);
            props
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "endpoint" => {
                s.endpoint = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| DEFAULT_ENDPOINT.into())
            }
            "device" => {
                s.device = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            "sync-mode" => s.sync = value.get().unwrap_or_default(),
            "lossless" => s.lossless = value.get().unwrap_or(false),
            "slots" => s.slots = value.get().unwrap_or(s.slots),
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats().to_value();
        }
        let s = lock(&self.settings);
        match pspec.name() {
            "endpoint" => s.endpoint.to_value(),
            "device" => s.device.to_value(),
            "sync-mode" => s.sync.to_value(),
            "lossless" => s.lossless.to_value(),
            "slots" => s.slots.to_value(),
            _ => pspec.default_value().clone(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        // A video sink's defaults: render on time, drop what is 20 ms late, send QoS events
        // upstream so sources and encoders can drop early.
        obj.set_qos(true);
        obj.set_max_lateness(20_000_000);
    }
}

impl GstObjectImpl for GeyserSink {}

impl ElementImpl for GeyserSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Geyser sink",
                "Sink/Video",
                "Publishes video as a Geyser stream (GPU textures shared with other processes): \
                 one GPU copy of each buffer into a ring of shared textures, lossy or lossless; \
                 a new format or size binds a new ring",
                "Geyser project",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(video_formats())
                .build();
            vec![gst::PadTemplate::new(
                "sink",
                gst::PadDirection::Sink,
                gst::PadPresence::Always,
                &caps,
            )
            .expect("a valid template")]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for GeyserSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let manager = open_device(&settings.device)?;
        let copier = HostCopier::new(manager.clone(), self.copies.clone())
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ["GPU copier: {e}"]))?;
        *lock(&self.session) = Some(Session {
            settings,
            manager,
            copier,
            producer: None,
            info: None,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the producer ends the stream for its consumers (a clean end).
        *lock(&self.session) = None;
        Ok(())
    }

    /// Binds a ring for the new format and size (the old one, if any, ends its stream).
    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "caps without video info: {caps}"))?;
        let format = texture_format(info.format()).ok_or_else(|| {
            gst::loggable_error!(CAT, "no texture format for {:?}", info.format())
        })?;
        let desc = TextureDescriptor::new(info.width(), info.height(), format, &USAGES)
            .with_label("geysersink");
        let mut guard = lock(&self.session);
        let session = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps while stopped"))?;
        if let Some(p) = &session.producer {
            if p.textures().first().map(|t| &t.export_info().descriptor) == Some(&desc) {
                session.info = Some(info);
                return Ok(());
            }
        }
        // The old producer must release the endpoint name before the new one binds it.
        session.producer = None;
        let s = &session.settings;
        let options = ProducerOptions {
            slots: s.slots as usize,
            lossless: s.lossless,
            sync: s.sync.mode(),
            ..Default::default()
        };
        let producer = Producer::bind(&s.endpoint, session.manager.clone(), &desc, options)
            .map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenWrite,
                    ["Cannot publish Geyser endpoint `{}`: {e}", s.endpoint]
                );
                gst::loggable_error!(CAT, "binding the producer: {e}")
            })?;
        gst::info!(
            CAT,
            imp = self,
            "publishing `{}`: {}x{} {format}, {} slots, sync {:?}",
            s.endpoint,
            info.width(),
            info.height(),
            s.slots,
            producer.sync_mode()
        );
        self.counters.rings.fetch_add(1, Ordering::Relaxed);
        session.producer = Some(producer);
        session.info = Some(info);
        Ok(())
    }

    /// Offers a pool of host memory aligned so the GPU can copy straight out of it.
    fn propose_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        query.add_allocation_meta::<gst_video::VideoMeta>(None);
        let (caps, need_pool) = query.get_owned();
        let (Some(caps), true) = (caps, need_pool) else {
            return Ok(());
        };
        let Ok(info) = gst_video::VideoInfo::from_caps(&caps) else {
            return Ok(());
        };
        let align = lock(&self.session)
            .as_ref()
            .and_then(|s| s.copier.alignment())
            .unwrap_or(64) as usize;
        let size = info.size().div_ceil(align) * align;
        let pool = gst_video::VideoBufferPool::new();
        let mut config = pool.config();
        config.set_params(Some(&caps), size as u32, 2, 0);
        let params = gst::AllocationParams::new(gst::MemoryFlags::empty(), align - 1, 0, 0);
        config.set_allocator(None::<&gst::Allocator>, Some(&params));
        config.add_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META.as_ref());
        pool.set_config(config)
            .map_err(|e| gst::loggable_error!(CAT, "pool config: {e}"))?;
        query.add_allocation_pool(Some(&pool), size as u32, 2, 0);
        query.add_allocation_param(None::<&gst::Allocator>, params);
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.session);
        let session = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = session.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let producer = session
            .producer
            .as_ref()
            .ok_or(gst::FlowError::NotNegotiated)?;
        let Some(slot) = self.acquire(producer, session.settings.lossless)? else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            gst::debug!(CAT, imp = self, "no free slot: frame dropped");
            return Ok(gst::FlowSuccess::Ok);
        };
        let plane = Plane::of(buffer, &info);
        let copied = session.copier.upload(
            buffer,
            &plane,
            &slot.texture,
            &slot.waits,
            slot.signal.as_slice(),
        );
        if let Err(e) = copied {
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ["Copying a buffer to the GPU failed: {e}"]
            );
            return Err(gst::FlowError::Error);
        }
        if let Err(e) = producer.present(slot) {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                ["Presenting a frame failed: {e}"]
            );
            return Err(gst::FlowError::Error);
        }
        self.counters.presented.fetch_add(1, Ordering::Relaxed);
        Ok(gst::FlowSuccess::Ok)
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
