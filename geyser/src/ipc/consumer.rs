//! [`Consumer`]: connects to a producer's endpoint, imports its ring of textures once, and
//! yields frames as guards that hand the slot back when dropped. `connect.rs`: the handshake
//! and the import of the ring; `wake.rs`: how it waits for a frame message; `expect.rs`: GPU
//! work submitted before its frame arrives.

mod connect;
mod detached;
mod dmabuf;
mod expect;
mod frame;
mod interop;
mod wake;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::binary::ConsumerLink;
use super::clock::monotonic_ns;
use super::host_ring::HostRing;
use super::linear::{FrameLayout, LinearFrames, LinearLayout};
use super::peer::{PeerCredentials, PeerPolicy};
use super::transport::Connection;
use super::wire::{FrameId, Message, SyncMode, MAX_SLOTS};
use crate::common::{OwnedOsHandle, TextureDescriptor};
use crate::vulkan::TransferPath;
use crate::vulkan::{
    SharedTimelineSemaphore, TimelinePoint, VulkanTexture, VulkanTextureShareManager,
};
use crate::{Error, Result};
pub use detached::DetachedFrame;
pub use expect::ExpectedFrame;
pub use frame::Frame;
use interop::RetainedHandles;
use wake::Wake;

/// How a [`Consumer`] connects.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// Who the producer may be (default: same user).
    pub peer_policy: PeerPolicy,
    /// Longest wait for the producer's handshake.
    pub handshake_timeout: Duration,
    /// Name sent in Hello (shows in the producer's stats and logs).
    pub name: String,
    /// Force a synchronization mode; `None` takes the one the producer prefers among those
    /// both sides support.
    pub sync: Option<SyncMode>,
    /// Keep every queued frame instead of skipping to the newest: for producers in lossless
    /// mode, which send every frame.
    pub lossless: bool,
    /// Receive frames through a host ring of the producer even when this device could import
    /// the producer's textures (what a consumer on another GPU or driver always does): each
    /// frame is copied into this consumer's own texture. For tests and for consumers that want
    /// a private copy. Default `false`.
    pub host_ring: bool,
    /// Low-latency wake-up: at most this much time per frame spent polling the socket without
    /// sleeping, from just before the next frame is due (learned from the frames so far), so
    /// the frame is taken microseconds after it is sent instead of after a scheduler wake-up
    /// (tens of µs; hundreds at p99 on a VM). Costs up to this much CPU per frame, e.g.
    /// 300 µs at 120 fps is 3.6% of a core. Default zero: always sleep until the message.
    pub spin: Duration,
    /// Ask for linear frames too ([`FrameLayout::Linear`]: each frame also copied, on the
    /// producer's GPU, into a shared buffer; [`Consumer::take_linear_frames`] hands it out).
    /// Default [`FrameLayout::Texture`].
    pub layout: FrameLayout,
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
            spin: Duration::ZERO,
            layout: FrameLayout::Texture,
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
    /// Nanoseconds spent polling without sleeping ([`ConsumerOptions::spin`]).
    pub spin_ns: u64,
}

#[derive(Clone, Copy, Debug)]
struct Ready {
    id: FrameId,
    present_ns: u64,
    sent_ns: u64,
    /// When the wait that ended with this message returned (its receive time when it was
    /// already queued).
    woke_ns: u64,
    received_ns: u64,
}

/// The producer's "frame ready" timeline and our "released" timeline (binary mode: our local
/// timelines that the relays turn the producer's binary semaphores into).
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
    /// Unique in this process.
    id: u64,
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
    /// Timeline and binary modes: the "frame ready" timeline and our "released" timeline.
    timelines: Option<Timelines>,
    /// Binary mode: the per-slot semaphores and their relay.
    binary: Option<ConsumerLink>,
    /// The highest release value handed out (what the producer may have to wait for).
    release_value: u64,
    /// Frames come through a host ring of the producer into our own textures.
    host_ring: Option<HostRing>,
    /// The producer writes frame `f` into slot `f % slots` (`ProducerOptions::ordered_slots`).
    ordered: bool,
    /// A frame whose GPU work was submitted before it arrived, and the release value that
    /// work signals ([`Self::expect_next`]).
    expected: Option<(FrameId, u64)>,
    wake: Wake,
    /// The producer closed the stream with `Bye` (rather than dying).
    ended: bool,
    /// Linear frames were set up ([`FrameLayout::Linear`]).
    linear_layout: Option<LinearLayout>,
    /// Their handles, until taken.
    linear: Option<LinearFrames>,
    /// Handle duplicates for an interop layer, until taken.
    retained: Option<RetainedHandles>,
    /// The producer copies frames into a ring on our GPU (`PeerRingSetup`).
    peer_ring: bool,
    /// The ring is the producer's DMA-BUF memory, of another device or driver.
    dma_buf: bool,
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
        Self::connect_impl(name, manager, options, copier, false)
    }

    /// How frames reach this consumer: [`TransferPath::Direct`] (the producer's textures,
    /// imported), [`TransferPath::DmaBuf`] (the producer's DMA-BUF textures, imported from
    /// another device or driver), through a ring on this GPU the producer copies into
    /// ([`TransferPath::Peer`]), or through a host ring ([`TransferPath::HostMemory`]: this GPU
    /// copies from host memory it imported; [`TransferPath::CpuCopy`]: the CPU copies into a
    /// staging buffer first).
    pub fn transfer_path(&self) -> TransferPath {
        if self.peer_ring {
            return TransferPath::Peer;
        }
        if self.dma_buf {
            return TransferPath::DmaBuf;
        }
        self.host_ring
            .as_ref()
            .map_or(TransferPath::Direct, HostRing::path)
    }

    /// The imported ring. Each texture stays valid while this consumer (or a clone of the
    /// texture) lives, also after the producer is gone.
    pub fn textures(&self) -> &[VulkanTexture] {
        &self.textures
    }

    /// Whether the producer ended the stream itself (`Bye`: it shut down or dropped us), as
    /// opposed to dying; meaningful once [`Self::next_frame`] returned [`Error::PeerGone`].
    pub fn stream_ended(&self) -> bool {
        self.ended
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
        ConsumerCounters {
            spin_ns: self.wake.spun_ns,
            ..self.counters
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.broken = Some(e.to_string());
        e
    }

    /// Takes one message; `woke_ns` is when the wait for it ended (`None`: it was queued).
    fn take_message(
        &mut self,
        msg: Message,
        fds: Vec<OwnedOsHandle>,
        woke_ns: Option<u64>,
    ) -> Result<()> {
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
                let received_ns = monotonic_ns();
                if let (Some(link), Some((ready, _))) = (&self.binary, &self.timelines) {
                    // Consume the producer's signal now, whether or not the frame is seen.
                    link.on_ready(ready, id)?;
                }
                self.wake.arrivals.record(id.frame, received_ns);
                self.queue.push_back(Ready {
                    id,
                    present_ns,
                    sent_ns,
                    woke_ns: woke_ns.unwrap_or(received_ns),
                    received_ns,
                });
                Ok(())
            }
            Message::Bye { reason } => {
                self.ended = true;
                Err(Error::PeerGone(format!(
                    "producer closed the stream: {reason}"
                )))
            }
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

    /// Tells the producer the frame is free. A producer that is gone (it ended the stream,
    /// died, or broke the protocol) holds nothing any more: that is not an error here, and the
    /// next [`Self::next_frame`] reports how it went (a `Bye` still queued reads as a clean end).
    fn release_with(&mut self, id: FrameId, value: u64) -> Result<()> {
        if self.ended || self.broken.is_some() {
            return Ok(());
        }
        if let (Some(link), Some((ready, released))) = (&self.binary, &self.timelines) {
            // Signal the producer's wait before telling it (ipc/binary.rs).
            let read = (value > 0).then(|| TimelinePoint {
                semaphore: released.clone(),
                value,
            });
            link.before_release(ready, read, id)?;
        }
        match self.conn.send(&Message::FrameReleased { id, value }, &[]) {
            Err(Error::PeerGone(_)) => Ok(()),
            sent => sent,
        }
    }

    /// Waits for the next frame (at most `timeout`; forever with `None`). In the default
    /// (lossy) mode, frames queued behind a newer one are released unseen and the newest is
    /// returned. Errors: [`Error::PeerGone`] when the producer exits or dies,
    /// [`Error::Timeout`], [`Error::Protocol`] when it breaks the protocol (the consumer is
    /// unusable afterwards).
    pub fn next_frame(&mut self, timeout: Option<Duration>) -> Result<Frame<'_>> {
        if let Some(why) = self.broken.clone().filter(|_| self.queue.is_empty()) {
            self.settle_expected();
            return Err(Error::PeerGone(format!("connection already failed: {why}")));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            // Take everything already queued in the socket, without blocking (nothing more
            // comes once the connection failed or the producer said goodbye).
            while self.broken.is_none() {
                match self.conn.try_recv() {
                    Ok(Some((msg, fds))) => match self.take_message(msg, fds, None) {
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
                // The frame whose GPU work went ahead of it, or an expectation it makes stale
                // (that work waits for a frame number already written: it runs and is ignored).
                let signal = match self.expected.take() {
                    Some((id, value)) if id == ready.id => Some(value),
                    Some(stale) if stale.0.frame > ready.id.frame => {
                        self.expected = Some(stale);
                        None
                    }
                    _ => None,
                };
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
                    expected: signal.is_some(),
                    signal,
                });
            }
            if let Some(why) = self.broken.clone() {
                self.settle_expected();
                return Err(Error::PeerGone(why));
            }
            let next = self.last_frame.map_or(0, |f| f + 1);
            match self.wake.recv(&mut self.conn, next, deadline) {
                Ok((msg, fds, woke)) => {
                    if let Err(e) = self.take_message(msg, fds, Some(woke)) {
                        let e = self.fail(e);
                        self.settle_expected();
                        return Err(e);
                    }
                }
                Err(Error::Timeout(t)) => return Err(Error::Timeout(t)),
                Err(e) => {
                    let e = self.fail(e);
                    self.settle_expected();
                    return Err(e);
                }
            }
        }
    }
}
