//! [`Consumer`]: connects to a producer's endpoint, imports its ring of textures once, and
//! yields frames as guards that hand the slot back when dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::monotonic_ns;
use super::host_ring::HostRing;
use super::peer::{PeerCredentials, PeerPolicy};
use super::transport::Connection;
use super::wire::negotiate::{supported_sync_modes, unsupported_sync};
use super::wire::{FrameId, Hello, Message, Role, SyncMode, MAX_SLOTS};
use crate::common::TextureUsage;
use crate::common::{borrow_os_handle, ExportedTexture, OwnedOsHandle, TextureDescriptor};
use crate::vulkan::TransferPath;
use crate::vulkan::{
    SharedTimelineSemaphore, TimelinePoint, VulkanTexture, VulkanTextureShareManager,
};
use crate::{Error, Result};

mod kept;
pub(crate) use kept::KeptHandles;
use kept::Pool;

/// How a [`Consumer`] connects.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// Who the producer may be (default: same user).
    pub peer_policy: PeerPolicy,
    /// Longest wait for the producer's handshake.
    pub handshake_timeout: Duration,
    /// Name sent in Hello (shows in the producer's stats and logs).
    pub name: String,
    /// Force a synchronization mode; `None` takes the best both sides support.
    pub sync: Option<SyncMode>,
    /// Keep every queued frame instead of skipping to the newest: for producers in lossless
    /// mode, which send every frame.
    pub lossless: bool,
    /// Receive frames through a host ring of the producer even when this device could import
    /// the producer's textures (what a consumer on another GPU or driver always does): each
    /// frame is copied into this consumer's own texture. For tests and for consumers that want
    /// a private copy. Default `false`.
    pub host_ring: bool,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            peer_policy: PeerPolicy::default(),
            handshake_timeout: Duration::from_secs(5),
            name: format!("consumer-{}", std::process::id()),
            sync: None,
            lossless: false,
            host_ring: false,
        }
    }
}

/// Counters of a consumer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerCounters {
    /// Frames handed to the application.
    pub frames: u64,
    /// Frames the producer presented that this consumer never saw (gaps in frame numbers).
    pub skipped: u64,
    /// Frames received but released unseen because a newer one was already queued.
    pub superseded: u64,
}

#[derive(Clone, Copy, Debug)]
struct Ready {
    id: FrameId,
    present_ns: u64,
    sent_ns: u64,
    received_ns: u64,
}

/// The producer's "frame ready" timeline and our "released" timeline.
type Timelines = (Arc<SharedTimelineSemaphore>, Arc<SharedTimelineSemaphore>);

/// The consuming end of a named endpoint.
///
/// Each frame: [`Self::next_frame`], record GPU work that reads [`Frame::texture`] (waiting
/// for [`Frame::wait_point`] and signaling [`Frame::release_point`] when there are some), then
/// drop the frame, which hands the slot back. Here the work copies each frame into the
/// application's own texture:
///
/// ```no_run
/// # use std::sync::Arc;
/// # use geyser::ipc::Consumer;
/// # use geyser::vulkan::{ash::vk, Submitter, VulkanTextureShareManager};
/// # fn main() -> geyser::Result<()> {
/// let manager = Arc::new(VulkanTextureShareManager::create_default()?);
/// let mut consumer = Consumer::connect("camera", manager.clone())?;
/// let mine = manager.create_texture(consumer.descriptor())?; // needs CopyDst
/// let submitter = Submitter::new(&manager, 2)?;
/// let family = submitter.queue_family();
/// loop {
///     let mut frame = consumer.next_frame(None)?; // Err(PeerGone) when the producer dies
///     let src = vk::ImageLayout::TRANSFER_SRC_OPTIMAL;
///     let dst = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
///     let [acquire, release] =
///         frame.texture().access_barriers(family, true, src, vk::AccessFlags::TRANSFER_READ);
///     let [mine_in, mine_out] = mine.access_barriers(family, false, dst, vk::AccessFlags::TRANSFER_WRITE);
///     let range = frame.texture().subresource_range();
///     let layers = vk::ImageSubresourceLayers {
///         aspect_mask: range.aspect_mask, mip_level: 0, base_array_layer: 0, layer_count: range.layer_count,
///     };
///     let copy = vk::ImageCopy::default()
///         .src_subresource(layers)
///         .dst_subresource(layers)
///         .extent(frame.texture().vk_extent());
///     let (src_image, dst_image) = (frame.texture().image(), mine.image());
///     let waits: Vec<_> = frame.wait_point().into_iter().collect();
///     let signals: Vec<_> = frame.release_point().into_iter().collect();
///     submitter.submit(
///         // SAFETY: recording on the submitter's command buffer; both images outlive the
///         // submission (the consumer holds its ring, `mine` lives on).
///         |device, cmd| unsafe {
///             let all = vk::PipelineStageFlags::ALL_COMMANDS;
///             let none = vk::DependencyFlags::empty();
///             device.cmd_pipeline_barrier(cmd, all, all, none, &[], &[], &[acquire, mine_in]);
///             device.cmd_copy_image(cmd, src_image, src, dst_image, dst, &[copy]);
///             device.cmd_pipeline_barrier(cmd, all, all, none, &[], &[], &[release, mine_out]);
///         },
///         &waits,
///         &signals,
///         signals.is_empty(), // host sync: done reading before the frame is released
///     )?;
///     drop(frame); // releases the slot to the producer
/// }
/// # }
/// ```
pub struct Consumer {
    conn: Connection,
    textures: Vec<VulkanTexture>,
    sync: SyncMode,
    lossless: bool,
    queue: VecDeque<Ready>,
    last_frame: Option<u64>,
    counters: ConsumerCounters,
    producer: PeerCredentials,
    producer_name: String,
    broken: Option<String>,
    /// Timeline mode: the producer's "frame ready" timeline and our "released" timeline.
    timelines: Option<Timelines>,
    /// The highest release value handed out (what the producer may have to wait for).
    release_value: u64,
    /// Frames come through a host ring of the producer into our own textures.
    host_ring: Option<HostRing>,
    /// Duplicates of the ring's and the ready timeline's handles, kept for endpoints that
    /// import them into another API as well (GL); empty otherwise.
    #[cfg_attr(
        not(all(feature = "gl", any(target_os = "linux", target_os = "android"))),
        allow(dead_code)
    )]
    kept: KeptHandles,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("producer", &self.producer_name)
            .field("slots", &self.textures.len())
            .field("sync", &self.sync)
            .finish()
    }
}

impl Consumer {
    /// Connects to the producer at endpoint `name` with default options. Fails with
    /// [`Error::NotFound`] (naming the socket path) when no producer listens there.
    pub fn connect(name: &str, manager: Arc<VulkanTextureShareManager>) -> Result<Consumer> {
        Self::connect_with(name, manager, ConsumerOptions::default())
    }

    /// Connects with explicit options: handshake, then imports the producer's ring once.
    pub fn connect_with(
        name: &str,
        manager: Arc<VulkanTextureShareManager>,
        options: ConsumerOptions,
    ) -> Result<Consumer> {
        let own = manager.clone();
        Self::connect_with_copier(name, manager, options, &move || Ok(own.clone()))
    }

    /// [`Self::connect_with`], where frames that come through a host ring are copied by, and
    /// into textures of, the manager `copier` returns (called only then): a manager on the same
    /// device whose queue Geyser may submit to, for consumers whose own device's queue belongs
    /// to someone else (wgpu).
    pub(crate) fn connect_with_copier(
        name: &str,
        manager: Arc<VulkanTextureShareManager>,
        options: ConsumerOptions,
        copier: &dyn Fn() -> Result<Arc<VulkanTextureShareManager>>,
    ) -> Result<Consumer> {
        Self::connect_inner(name, manager, options, copier, false)
    }

    pub(super) fn connect_inner(
        name: &str,
        manager: Arc<VulkanTextureShareManager>,
        options: ConsumerOptions,
        copier: &dyn Fn() -> Result<Arc<VulkanTextureShareManager>>,
        keep: bool,
    ) -> Result<Consumer> {
        let mut conn = Connection::connect(name)?;
        let producer = conn.check_peer(&options.peer_policy)?;
        let id = manager.identity();
        let modes = supported_sync_modes(&manager)?;
        let offer = match options.sync {
            Some(forced) if !modes.contains(&forced) => {
                return Err(unsupported_sync(forced, manager.caps()?))
            }
            Some(forced) => vec![forced],
            None => modes,
        };
        let deadline = Instant::now() + options.handshake_timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        let hello = Hello::new(
            Role::Consumer,
            id.device_uuid,
            id.driver_uuid,
            offer,
            options.name.clone(),
        );
        let sent = if options.host_ring {
            conn.send(&Message::HostRingRequest, &[])
        } else {
            Ok(())
        }
        .and_then(|()| conn.send(&Message::Hello(hello), &[]));
        if let Err(e) = sent {
            // A producer that refused us at once may have closed before our Hello: its Reject
            // is still queued here, and says more than the broken pipe.
            return Err(queued_rejection(&mut conn).unwrap_or(e));
        }
        let hello = match conn.recv(Some(left()))? {
            (Message::Hello(h), _) if h.role == Role::Producer => h,
            (Message::Reject { reason, detail }, _) => {
                return Err(Error::Rejected { reason, detail })
            }
            (other, _) => {
                return Err(Error::Protocol(format!(
                    "expected the producer's Hello, got {}",
                    other.kind()
                )))
            }
        };
        let mut kept = KeptHandles::default();
        let (sync, textures, timelines, host_ring) = match conn.recv(Some(left()))? {
            (Message::PoolSetup { sync, slots, .. }, fds) => {
                let pool = Pool {
                    sync,
                    infos: slots,
                    fds,
                    deadline,
                };
                let keep = keep.then_some(&mut kept);
                let (textures, timelines) = Self::import_pool(&manager, &mut conn, pool, keep)?;
                (sync, textures, timelines, None)
            }
            (
                Message::HostRingSetup {
                    info,
                    slots,
                    slot_bytes,
                    ..
                },
                fds,
            ) => {
                let fd = fds
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Protocol("HostRingSetup without its FD".into()))?;
                let copier = copier()?;
                let ring = HostRing::open(&copier, fd, &info, slots as usize, slot_bytes)?;
                let mut desc = info.descriptor.clone();
                if !desc.has_usage(TextureUsage::CopyDst) {
                    desc.usage.push(TextureUsage::CopyDst);
                }
                let textures = (0..slots)
                    .map(|_| copier.create_texture_with(&desc, &info.extent))
                    .collect::<Result<Vec<_>>>()?;
                (SyncMode::Host, textures, None, Some(ring))
            }
            (Message::Reject { reason, detail }, _) => {
                return Err(Error::Rejected { reason, detail })
            }
            (other, _) => {
                return Err(Error::Protocol(format!(
                    "expected PoolSetup, got {}",
                    other.kind()
                )))
            }
        };
        let path = host_ring
            .as_ref()
            .map_or(TransferPath::Direct, HostRing::path);
        tracing::info!(producer = %hello.name, pid = producer.pid, slots = textures.len(), ?sync, %path, "connected");
        Ok(Consumer {
            conn,
            textures,
            sync,
            lossless: options.lossless,
            queue: VecDeque::with_capacity(MAX_SLOTS),
            last_frame: None,
            counters: ConsumerCounters::default(),
            producer,
            producer_name: hello.name,
            broken: None,
            timelines,
            release_value: 0,
            host_ring,
            kept,
        })
    }

    /// Imports the producer's ring (and, in timeline mode, exchanges the timelines).
    fn import_pool(
        manager: &Arc<VulkanTextureShareManager>,
        conn: &mut Connection,
        pool: Pool,
        mut keep: Option<&mut KeptHandles>,
    ) -> Result<(Vec<VulkanTexture>, Option<Timelines>)> {
        let Pool {
            sync,
            infos,
            fds,
            deadline,
        } = pool;
        let left = || deadline.saturating_duration_since(Instant::now());
        if infos.len() != fds.len() || infos.is_empty() || infos.len() > MAX_SLOTS {
            return Err(Error::Protocol(format!(
                "PoolSetup with {} slots and {} FDs",
                infos.len(),
                fds.len()
            )));
        }
        let first: &TextureDescriptor = &infos[0].descriptor;
        if infos
            .iter()
            .any(|i| i.descriptor.check_matches(first).is_err() || i.extent != infos[0].extent)
        {
            return Err(Error::Protocol(
                "PoolSetup slots have different descriptors".into(),
            ));
        }
        let mut textures = Vec::with_capacity(infos.len());
        for (info, fd) in infos.into_iter().zip(fds) {
            if let Some(kept) = keep.as_deref_mut() {
                kept.ring
                    .push(ExportedTexture::new(info.clone(), fd.try_clone()?));
            }
            // Import checks device/driver UUIDs, sizes and memory types; the FD is consumed.
            textures.push(manager.import(ExportedTexture::new(info, fd))?);
        }
        let timelines = if sync == SyncMode::Timeline {
            let ready = match conn.recv(Some(left()))? {
                (
                    Message::SyncSetup {
                        sync: SyncMode::Timeline,
                    },
                    fds,
                ) => {
                    let fd = fds
                        .into_iter()
                        .next()
                        .ok_or_else(|| Error::Protocol("SyncSetup without its FD".into()))?;
                    if let Some(kept) = keep {
                        kept.ready = Some(fd.try_clone()?);
                    }
                    SharedTimelineSemaphore::import(manager, fd)?
                }
                (other, _) => {
                    return Err(Error::Protocol(format!(
                        "expected SyncSetup, got {}",
                        other.kind()
                    )))
                }
            };
            let released = SharedTimelineSemaphore::new(manager, 0)?;
            let fd = released.export()?;
            conn.send(&Message::SyncSetup { sync }, &[borrow_os_handle(&fd)])?;
            Some((Arc::new(ready), Arc::new(released)))
        } else {
            None
        };
        Ok((textures, timelines))
    }

    /// How frames reach this consumer: [`TransferPath::Direct`] (the producer's textures,
    /// imported), or through a host ring ([`TransferPath::HostMemory`]: this GPU copies from
    /// host memory it imported; [`TransferPath::CpuCopy`]: the CPU copies into a staging
    /// buffer first).
    pub fn transfer_path(&self) -> TransferPath {
        self.host_ring
            .as_ref()
            .map_or(TransferPath::Direct, HostRing::path)
    }

    /// The imported ring. Each texture stays valid while this consumer (or a clone of the
    /// texture) lives, also after the producer is gone.
    pub fn textures(&self) -> &[VulkanTexture] {
        &self.textures
    }

    /// The descriptor of the frames.
    pub fn descriptor(&self) -> &TextureDescriptor {
        &self.textures[0].export_info().descriptor
    }

    /// The synchronization mode negotiated with the producer.
    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    /// The producer's process credentials.
    pub fn producer(&self) -> PeerCredentials {
        self.producer
    }

    /// Frame counters.
    pub fn counters(&self) -> ConsumerCounters {
        self.counters
    }

    fn fail(&mut self, e: Error) -> Error {
        self.broken = Some(e.to_string());
        e
    }

    fn take_message(&mut self, msg: Message, fds: Vec<OwnedOsHandle>) -> Result<()> {
        if !fds.is_empty() {
            return Err(Error::Protocol(format!(
                "{} unexpected file descriptors with {}",
                fds.len(),
                msg.kind()
            )));
        }
        match msg {
            Message::FrameReady {
                id,
                present_ns,
                sent_ns,
            } => {
                if id.slot_index() >= self.textures.len() {
                    return Err(Error::Protocol(format!(
                        "{id}, ring has {} slots",
                        self.textures.len()
                    )));
                }
                let newest = self.queue.back().map(|r| r.id.frame).or(self.last_frame);
                if newest.is_some_and(|n| id.frame <= n) {
                    return Err(Error::Protocol(format!(
                        "frame numbers went backwards: {} after {newest:?}",
                        id.frame
                    )));
                }
                if self.queue.len() >= MAX_SLOTS {
                    return Err(Error::Protocol(
                        "producer sent more frames than the ring has slots".into(),
                    ));
                }
                self.queue.push_back(Ready {
                    id,
                    present_ns,
                    sent_ns,
                    received_ns: monotonic_ns(),
                });
                Ok(())
            }
            Message::Bye { reason } => Err(Error::PeerGone(format!(
                "producer closed the stream: {reason}"
            ))),
            // The producer dropped us for a limit (e.g. a frame held too long) and said why.
            Message::Reject { reason, detail } => Err(Error::Rejected { reason, detail }),
            other => Err(Error::Protocol(format!(
                "unexpected {} from the producer",
                other.kind()
            ))),
        }
    }

    fn release(&mut self, id: FrameId) -> Result<()> {
        // A frame released without new GPU work waits for nothing newer than our last
        // release (0 in host mode).
        self.release_with(id, self.release_value)
    }

    fn release_with(&mut self, id: FrameId, value: u64) -> Result<()> {
        self.conn.send(&Message::FrameReleased { id, value }, &[])
    }

    /// Waits for the next frame (at most `timeout`; forever with `None`). In the default
    /// (lossy) mode, frames queued behind a newer one are released unseen and the newest is
    /// returned. Errors: [`Error::PeerGone`] when the producer exits or dies,
    /// [`Error::Timeout`], [`Error::Protocol`] when it breaks the protocol (the consumer is
    /// unusable afterwards).
    pub fn next_frame(&mut self, timeout: Option<Duration>) -> Result<Frame<'_>> {
        if let Some(why) = self.broken.as_ref().filter(|_| self.queue.is_empty()) {
            return Err(Error::PeerGone(format!("connection already failed: {why}")));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            // Take everything already queued in the socket, without blocking (nothing more
            // comes once the connection failed or the producer said goodbye).
            while self.broken.is_none() {
                match self.conn.try_recv() {
                    Ok(Some((msg, fds))) => match self.take_message(msg, fds) {
                        Ok(()) => {}
                        // The producer's goodbye comes after its last frames: deliver those
                        // first (a lossless consumer must not lose the tail of the stream).
                        Err(e @ Error::PeerGone(_)) if !self.queue.is_empty() => {
                            self.broken = Some(e.to_string());
                            break;
                        }
                        Err(e) => return Err(self.fail(e)),
                    },
                    Ok(None) => break,
                    Err(e) => {
                        // Frames already queued are still delivered before the error.
                        if self.queue.is_empty() {
                            return Err(self.fail(e));
                        }
                        self.broken = Some(e.to_string());
                        break;
                    }
                }
            }
            if !self.lossless {
                while self.queue.len() > 1 {
                    let old = self.queue.pop_front().expect("len > 1");
                    self.counters.superseded += 1;
                    if let Err(e) = self.release(old.id) {
                        return Err(self.fail(e));
                    }
                }
            }
            if let Some(ready) = self.queue.pop_front() {
                if let Some(ring) = self.host_ring.as_mut() {
                    // Copy the frame out of the host ring into our own texture (and wait for
                    // it) before handing it out.
                    let slot = ready.id.slot_index();
                    if let Err(e) = ring.upload(slot, &self.textures[slot]) {
                        return Err(self.fail(e));
                    }
                }
                if let Some(last) = self.last_frame {
                    self.counters.skipped += ready.id.frame - last - 1;
                }
                self.last_frame = Some(ready.id.frame);
                self.counters.frames += 1;
                return Ok(Frame {
                    consumer: self,
                    ready,
                    released: false,
                    signal: None,
                });
            }
            if let Some(why) = &self.broken {
                return Err(Error::PeerGone(why.clone()));
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout("no frame from the producer".into()));
                    }
                    Some(left)
                }
                None => None,
            };
            match self.conn.recv(wait) {
                Ok((msg, fds)) => {
                    if let Err(e) = self.take_message(msg, fds) {
                        return Err(self.fail(e));
                    }
                }
                Err(Error::Timeout(t)) => return Err(Error::Timeout(t)),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }
}

/// One frame held by a consumer. The texture holds the frame's texels until the guard drops,
/// which releases the slot to the producer: GPU work reading it must have finished by then
/// (host-synchronized mode: wait for its fence first).
pub struct Frame<'a> {
    consumer: &'a mut Consumer,
    ready: Ready,
    released: bool,
    /// The release value this frame's GPU work signals, once [`Frame::release_point`] was
    /// taken.
    signal: Option<u64>,
}

impl std::fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("slot", &self.ready.id.slot)
            .field("frame", &self.ready.id.frame)
            .finish()
    }
}

impl Frame<'_> {
    /// The texture holding this frame.
    pub fn texture(&self) -> &VulkanTexture {
        &self.consumer.textures[self.ready.id.slot_index()]
    }

    /// Which frame this is: slot and number.
    pub fn id(&self) -> FrameId {
        self.ready.id
    }

    /// The producer's frame number (0, 1, 2, … with gaps where frames were skipped).
    pub fn number(&self) -> u64 {
        self.ready.id.frame
    }

    /// The ring slot.
    pub fn slot(&self) -> usize {
        self.ready.id.slot_index()
    }

    /// `CLOCK_MONOTONIC` time at which the producer presented the frame.
    pub fn present_ns(&self) -> u64 {
        self.ready.present_ns
    }

    /// Handoff latency: from the producer sending the frame message to this consumer
    /// receiving it (host clocks, `CLOCK_MONOTONIC`).
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.ready.received_ns.saturating_sub(self.ready.sent_ns))
    }

    /// Frame age at receipt: from the producer's present to this consumer receiving it. Larger
    /// than [`Self::latency`] when the frame waited for this consumer to finish an earlier one.
    pub fn age(&self) -> Duration {
        Duration::from_nanos(self.ready.received_ns.saturating_sub(self.ready.present_ns))
    }

    /// Timeline mode: the point the GPU work reading this frame must wait for (the
    /// producer's write is done when its timeline reaches `frame + 1`). `None` in host mode,
    /// where the write was complete before the frame was announced.
    pub fn wait_point(&self) -> Option<TimelinePoint> {
        self.consumer
            .timelines
            .as_ref()
            .map(|(ready, _)| TimelinePoint {
                semaphore: ready.clone(),
                value: self.ready.id.frame + 1,
            })
    }

    /// Timeline mode: the point the GPU work reading this frame must signal when done. Once
    /// taken, that work must be submitted before the frame is released: the producer's GPU
    /// waits for it before writing the slot again. `None` in host mode.
    pub fn release_point(&mut self) -> Option<TimelinePoint> {
        let (_, released) = self.consumer.timelines.as_ref()?;
        let semaphore = released.clone();
        let value = match self.signal {
            Some(v) => v,
            None => {
                self.consumer.release_value += 1;
                self.signal = Some(self.consumer.release_value);
                self.consumer.release_value
            }
        };
        Some(TimelinePoint { semaphore, value })
    }

    /// Waits on the host until the frame's texels are written (timeline mode; returns at
    /// once in host mode). For consumers that read without GPU-side waits.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        match self.wait_point() {
            Some(p) => p.semaphore.wait(p.value, timeout),
            None => Ok(()),
        }
    }

    /// Releases the slot now, reporting a failure to reach the producer.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.send_release()
    }

    fn send_release(&mut self) -> Result<()> {
        let id = self.ready.id;
        match self.signal {
            Some(value) => self.consumer.release_with(id, value),
            None => self.consumer.release(id),
        }
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        if !self.released {
            if let Err(e) = self.send_release() {
                tracing::debug!("releasing {}: {e}", self.ready.id);
            }
        }
    }
}

/// A rejection the producer queued before closing, read without waiting; `None` when there is
/// none (then the send error that brought us here stands).
fn queued_rejection(conn: &mut Connection) -> Option<Error> {
    // A socket reset reports its error once, before the data still queued: read a few times.
    for _ in 0..4 {
        match conn.try_recv() {
            Ok(Some((Message::Reject { reason, detail }, _))) => {
                return Some(Error::Rejected { reason, detail })
            }
            Ok(None) => return None,
            Ok(Some(_)) | Err(_) => continue,
        }
    }
    None
}
