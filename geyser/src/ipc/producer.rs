//! [`Producer`]: owns a ring of shared textures, serves any number of consumers from a service
//! thread, and hands each frame over with a few-byte message. A slow or dead consumer never
//! stalls the producer or the other consumers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::clock::monotonic_ns;
use super::host_ring::HostRing;
use super::peer::{PeerCredentials, PeerPolicy};
use super::transport::{Connection, Listener, Poller, MAX_POLLED_CONNECTIONS};
use super::wire::negotiate::{negotiate_sync, supported_sync_modes, unsupported_sync};
use super::wire::{Hello, Message, Role, SyncMode, MAX_SLOTS};
use crate::common::{
    borrow_os_handle, BorrowedOsHandle, ExportedTexture, OwnedOsHandle, TextureDescriptor,
};
use crate::vulkan::{
    SharedTimelineSemaphore, TimelinePoint, VulkanTexture, VulkanTextureShareManager,
};
use crate::{Error, Result};

/// How a [`Producer`] behaves.
#[derive(Clone, Debug)]
pub struct ProducerOptions {
    /// Textures in the ring (2..=16, default 3). The producer writes a slot no consumer holds.
    pub slots: usize,
    /// Most consumers served at once (default: `slots - 1`, which guarantees that the producer
    /// always finds a free slot even if every consumer holds a frame; at most 63). More are
    /// refused.
    pub max_consumers: Option<usize>,
    /// Every consumer gets every frame and the producer blocks until one is free (recording).
    /// Default `false`: a busy consumer skips frames and gets the latest when it is ready.
    pub lossless: bool,
    /// Who may connect (default: same user).
    pub peer_policy: PeerPolicy,
    /// A consumer that connects and does not finish its handshake in this time is dropped.
    pub handshake_timeout: Duration,
    /// Force a synchronization mode; `None` picks the best both sides support.
    pub sync: Option<SyncMode>,
    /// Largest message accepted from a consumer (theirs are tiny; default 4 KiB, at most
    /// [`super::wire::MAX_MESSAGE_BYTES`]). A larger one drops that consumer.
    pub max_message_bytes: usize,
    /// Lossless mode: most frames one consumer may hold (received, not released) before the
    /// producer skips it (default: the whole ring). Lossy mode always caps at one.
    pub max_held_frames: Option<usize>,
    /// A consumer that holds a frame longer than this is dropped and its slots reclaimed, so a
    /// stuck or malicious consumer cannot stall a lossless producer forever (default 10 s).
    pub max_hold: Duration,
    /// Serve consumers on another device (another GPU or driver, which cannot import this
    /// ring) through a host-memory ring: each frame they get costs one GPU copy here and one
    /// there, host-synchronized (default `true`; needs `CopySrc` on the frames). `false`
    /// refuses them.
    pub cross_device: bool,
    /// Whether consumers on other devices share one host-memory ring or each get their own
    /// (default [`HostRingSharing::Auto`]).
    pub host_rings: HostRingSharing,
}

/// How consumers on other devices get their host-memory ring.
///
/// The ring's mapping is writable on the consumer's side too (host-memory import needs it), so
/// a consumer can change what is in its ring: with a shared ring, what the other cross-device
/// consumers read. Consumers that import the producer's textures are never affected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostRingSharing {
    /// [`PerConsumer`](Self::PerConsumer) when [`ProducerOptions::peer_policy`] admits other
    /// users, [`Shared`](Self::Shared) for [`PeerPolicy::SameUser`] (processes of one user can
    /// usually reach each other's memory anyway: ptrace, `/proc/<pid>/mem`).
    #[default]
    Auto,
    /// One ring for all: one GPU copy per frame, however many cross-device consumers.
    Shared,
    /// One ring per consumer: one GPU copy per frame and consumer, and `slots` × the frame
    /// size (rounded up to 64 KiB) of host memory each; a consumer can change only its own
    /// frames.
    PerConsumer,
}

impl std::str::FromStr for HostRingSharing {
    type Err = Error;

    /// `auto`, `shared` or `per-consumer`.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "shared" => Ok(Self::Shared),
            "per-consumer" => Ok(Self::PerConsumer),
            _ => Err(Error::InvalidArgument {
                what: "host rings",
                reason: format!("`{s}`; use auto, shared or per-consumer"),
            }),
        }
    }
}

impl HostRingSharing {
    /// Whether each consumer gets its own ring under `policy`.
    pub fn per_consumer(self, policy: &PeerPolicy) -> bool {
        match self {
            Self::Auto => *policy != PeerPolicy::SameUser,
            Self::Shared => false,
            Self::PerConsumer => true,
        }
    }
}

impl Default for ProducerOptions {
    fn default() -> Self {
        Self {
            slots: 3,
            max_consumers: None,
            lossless: false,
            peer_policy: PeerPolicy::default(),
            handshake_timeout: Duration::from_secs(2),
            sync: None,
            max_message_bytes: 4096,
            max_held_frames: None,
            max_hold: Duration::from_secs(10),
            cross_device: true,
            host_rings: HostRingSharing::Auto,
        }
    }
}

/// Counters of one consumer as the producer sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Connection id.
    pub id: u64,
    /// The consumer's name from its Hello.
    pub name: String,
    /// Its process id (from the socket's credentials).
    pub pid: u32,
    /// Frames sent to it.
    pub delivered: u64,
    /// Frames it missed because it still held an earlier one.
    pub skipped: u64,
}

/// Counters of a producer.
#[derive(Clone, Debug, Default)]
pub struct ProducerStats {
    /// Frames presented.
    pub presented: u64,
    /// Consumers that completed a handshake.
    pub connected: u64,
    /// Consumers dropped (disconnect, death, protocol error, handshake timeout).
    pub dropped: u64,
    /// Connections refused (credentials, version, device, limit).
    pub refused: u64,
    /// Per connected consumer.
    pub consumers: Vec<ConsumerStats>,
}

enum Phase {
    Handshake {
        deadline: Instant,
    },
    /// Timeline mode: waiting for the consumer's release timeline.
    AwaitSync {
        deadline: Instant,
    },
    Active,
}

struct Peer {
    id: u64,
    conn: Connection,
    creds: PeerCredentials,
    phase: Phase,
    name: String,
    /// (slot, frame, when sent) not yet released.
    held: Vec<(u32, u64, Instant)>,
    last_sent: Option<u64>,
    delivered: u64,
    skipped: u64,
    sync: SyncMode,
    /// Timeline mode: the consumer's release timeline, and the highest value it announced.
    released: Option<(Arc<SharedTimelineSemaphore>, u64)>,
    /// The consumer asked for the host-memory ring (`StagedRequest`) before its Hello.
    wants_staged: bool,
    /// Served through the host-memory ring.
    staged: bool,
}

struct State {
    peers: Vec<Peer>,
    writing: Option<usize>,
    latest: Option<(u32, u64)>,
    next_frame: u64,
    next_peer: u64,
    stats: ProducerStats,
    /// Per slot: release points the next write of the slot must wait for on the GPU.
    slot_waits: Vec<Vec<TimelinePoint>>,
    /// Emptied wait lists handed back by `present`, reused so no frame allocates.
    spare_waits: Vec<Vec<TimelinePoint>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    options: ProducerOptions,
    max_consumers: usize,
    hello: Hello,
    sync_modes: Vec<SyncMode>,
    exports: Vec<ExportedTexture>,
    /// Timeline mode: "frame `f` is written" is this timeline reaching `f + 1`.
    ready: Option<Arc<SharedTimelineSemaphore>>,
    manager: Arc<VulkanTextureShareManager>,
    /// The host-memory rings of consumers on other devices. Lock order: `state`, then this.
    host_rings: Mutex<HostRings>,
}

/// A producer-side host-memory ring, and which frame each of its slots holds.
struct ProducerRing {
    ring: HostRing,
    frames: Vec<Option<u64>>,
    /// Copy the frame being presented into this ring (a consumer it serves will be sent it).
    wanted: bool,
}

impl ProducerRing {
    fn download(&mut self, slot: usize, frame: u64, texture: &VulkanTexture) -> Result<()> {
        // Forget the slot's old frame first: a failed copy leaves nothing announced.
        self.frames[slot] = None;
        self.ring.download(slot, texture)?;
        self.frames[slot] = Some(frame);
        Ok(())
    }
}

/// The host-memory rings of consumers on other devices (see [`HostRingSharing`]).
#[derive(Default)]
struct HostRings {
    /// The ring every such consumer shares, made when the first connects.
    shared: Option<ProducerRing>,
    /// Per-consumer rings, by peer id; those of consumers that left are dropped by the
    /// service thread or at the next `present`.
    own: Vec<(u64, ProducerRing)>,
}

impl HostRings {
    fn lock(m: &Mutex<Self>) -> MutexGuard<'_, Self> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`Self::lock`] for callers that hold `state` and must not wait for a `present` that is
    /// copying into the rings: `None` while one is.
    fn try_lock(m: &Mutex<Self>) -> Option<MutexGuard<'_, Self>> {
        match m.try_lock() {
            Ok(rings) => Some(rings),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The ring that serves consumer `peer`.
    fn of(&self, peer: u64) -> Option<&ProducerRing> {
        self.own
            .iter()
            .find(|(id, _)| *id == peer)
            .map(|(_, r)| r)
            .or(self.shared.as_ref())
    }

    fn of_mut(&mut self, peer: u64) -> Option<&mut ProducerRing> {
        self.own
            .iter_mut()
            .find(|(id, _)| *id == peer)
            .map(|(_, r)| r)
            .or(self.shared.as_mut())
    }

    fn all(&mut self) -> impl Iterator<Item = &mut ProducerRing> {
        self.shared
            .iter_mut()
            .chain(self.own.iter_mut().map(|(_, r)| r))
    }

    fn want_none(&mut self) {
        self.all().for_each(|r| r.wanted = false);
    }

    /// Marks the ring that serves consumer `peer` for the next download.
    fn want(&mut self, peer: u64) {
        if let Some(ring) = self.of_mut(peer) {
            ring.wanted = true;
        }
    }

    fn any_wanted(&mut self) -> bool {
        self.all().any(|r| r.wanted)
    }

    /// Drops the rings of consumers that left.
    fn prune(&mut self, peers: &[Peer]) {
        self.own.retain(|(id, _)| peers.iter().any(|p| p.id == *id));
    }

    /// Whether `peer` can be sent `frame` in `slot`: it imports the producer's textures, or
    /// its ring holds that frame (one that connected after the frame was copied does not).
    fn serves(&self, peer: &Peer, slot: u32, frame: u64) -> bool {
        !peer.staged
            || self
                .of(peer.id)
                .is_some_and(|r| r.frames.get(slot as usize) == Some(&Some(frame)))
    }

    /// Copies `texture` (holding `frame`) into slot `slot` of every wanted ring.
    fn download(&mut self, slot: usize, frame: u64, texture: &VulkanTexture) -> Result<()> {
        for ring in self.all().filter(|r| r.wanted) {
            ring.download(slot, frame, texture)?;
        }
        Ok(())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Most frames one consumer may hold before it skips new ones.
    fn held_cap(&self) -> usize {
        if self.options.lossless {
            self.options.max_held_frames.unwrap_or(usize::MAX).max(1)
        } else {
            1
        }
    }
}

/// A slot the producer may write now; hand it back with [`Producer::present`].
#[derive(Debug)]
pub struct WriteSlot {
    /// Slot index in the ring.
    pub index: usize,
    /// The frame number it will carry when presented.
    pub frame: u64,
    /// The texture to write.
    pub texture: VulkanTexture,
    /// Timeline points the GPU work writing the slot must wait for (consumers' releases of
    /// the slot's previous frame). Empty in host mode.
    pub waits: Vec<TimelinePoint>,
    /// The point the GPU work must signal when the write is done (`ready` at `frame + 1`);
    /// `None` in host mode, where the caller waits for its GPU work before presenting. When it
    /// is `Some`, the submission writing the slot MUST signal it (and wait for `waits`):
    /// consumers' GPUs wait for it. [`Producer`]'s example shows both cases.
    pub signal: Option<TimelinePoint>,
}

/// The producing end of a named endpoint.
///
/// Each frame: [`Self::acquire`] a slot, record GPU work that writes its texture (waiting for
/// [`WriteSlot::waits`] and signaling [`WriteSlot::signal`] when there is one), then
/// [`Self::present`] it. Here the work is a clear to a colour that changes per frame:
///
/// ```no_run
/// # use std::sync::Arc;
/// # use geyser::ipc::{Producer, ProducerOptions};
/// # use geyser::common::*;
/// # use geyser::vulkan::{ash::vk, Submitter, VulkanTextureShareManager};
/// # fn main() -> geyser::Result<()> {
/// let manager = Arc::new(VulkanTextureShareManager::create_default()?);
/// let desc = TextureDescriptor::new(1920, 1080, TextureFormat::Rgba8Unorm,
///     &[TextureUsage::CopyDst, TextureUsage::CopySrc, TextureUsage::TextureBinding]);
/// let producer = Producer::bind("camera", manager.clone(), &desc, ProducerOptions::default())?;
/// let submitter = Submitter::new(&manager, 2)?;
/// loop {
///     let slot = producer.acquire(None)?;
///     let family = submitter.queue_family();
///     let layout = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
///     // The whole image is overwritten: old contents may be discarded.
///     let [acquire, release] =
///         slot.texture.access_barriers(family, false, layout, vk::AccessFlags::TRANSFER_WRITE);
///     let grey = (slot.frame % 256) as f32 / 255.0;
///     let colour = vk::ClearColorValue { float32: [grey, grey, grey, 1.0] };
///     let range = slot.texture.subresource_range();
///     let signals: Vec<_> = slot.signal.iter().cloned().collect();
///     submitter.submit(
///         // SAFETY: recording on the submitter's command buffer; the texture outlives the
///         // submission (the slot holds it, and host mode blocks until it is done).
///         |device, cmd| unsafe {
///             let all = vk::PipelineStageFlags::ALL_COMMANDS;
///             let none = vk::DependencyFlags::empty();
///             device.cmd_pipeline_barrier(cmd, all, all, none, &[], &[], &[acquire]);
///             device.cmd_clear_color_image(cmd, slot.texture.image(), layout, &colour, &[range]);
///             device.cmd_pipeline_barrier(cmd, all, all, none, &[], &[], &[release]);
///         },
///         &slot.waits,
///         &signals,
///         slot.signal.is_none(), // host sync: the write must be done before present
///     )?;
///     producer.present(slot)?;
/// }
/// # }
/// ```
pub struct Producer {
    shared: Arc<Shared>,
    textures: Vec<VulkanTexture>,
    thread: Option<JoinHandle<()>>,
    path: std::path::PathBuf,
    sync: SyncMode,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("path", &self.path)
            .field("slots", &self.textures.len())
            .finish()
    }
}

impl Producer {
    /// Creates the ring of `options.slots` textures on `manager`'s device, exports them once,
    /// and listens on the endpoint `name`. Fails with [`Error::AddressInUse`] when a live
    /// producer has the name (a stale socket of a dead one is replaced).
    pub fn bind(
        name: &str,
        manager: Arc<VulkanTextureShareManager>,
        desc: &TextureDescriptor,
        options: ProducerOptions,
    ) -> Result<Producer> {
        if !(2..=MAX_SLOTS).contains(&options.slots) {
            return Err(Error::InvalidArgument {
                what: "slots",
                reason: format!("{} slots; use 2..={MAX_SLOTS}", options.slots),
            });
        }
        desc.validate()?;
        let sync_modes = supported_sync_modes(&manager)?;
        if let Some(forced) = options.sync {
            if !sync_modes.contains(&forced) {
                return Err(unsupported_sync(forced, manager.caps()?));
            }
        }
        let mut textures = Vec::with_capacity(options.slots);
        let mut exports = Vec::with_capacity(options.slots);
        for i in 0..options.slots {
            let mut d = desc.clone();
            d.label = Some(format!("{}[{i}]", desc.label.as_deref().unwrap_or(name)));
            let t = manager.create_texture(&d)?;
            exports.push(manager.export(&t)?);
            textures.push(t);
        }
        let listener = Listener::bind(name)?;
        let path = listener.path().to_path_buf();
        let id = manager.identity();
        let sync_offer = match options.sync {
            Some(forced) => vec![forced],
            None => sync_modes.clone(),
        };
        let hello = Hello::new(
            Role::Producer,
            id.device_uuid,
            id.driver_uuid,
            sync_offer.clone(),
            name.to_string(),
        );
        let max_consumers = options.max_consumers.unwrap_or(options.slots - 1).max(1);
        if max_consumers > MAX_POLLED_CONNECTIONS {
            return Err(Error::InvalidArgument {
                what: "max_consumers",
                reason: format!(
                    "{max_consumers} consumers; one producer serves at most {MAX_POLLED_CONNECTIONS}"
                ),
            });
        }
        let ready = if sync_offer.contains(&SyncMode::Timeline) {
            Some(Arc::new(SharedTimelineSemaphore::new(&manager, 0)?))
        } else {
            None
        };
        let slot_count = options.slots;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                peers: Vec::new(),
                writing: None,
                latest: None,
                next_frame: 0,
                next_peer: 1,
                stats: ProducerStats::default(),
                slot_waits: (0..slot_count)
                    .map(|_| Vec::with_capacity(max_consumers + 1))
                    .collect(),
                spare_waits: (0..slot_count + 1)
                    .map(|_| Vec::with_capacity(max_consumers + 1))
                    .collect(),
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            options,
            max_consumers,
            hello,
            sync_modes: sync_offer,
            exports,
            ready,
            manager: manager.clone(),
            host_rings: Mutex::new(HostRings::default()),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("geyser-producer-{name}"))
                .spawn(move || service(&shared, listener))
                .map_err(Error::Io)?
        };
        let sync = shared.sync_modes[0];
        tracing::info!(path = %path.display(), slots = textures.len(), "producer listening");
        Ok(Producer {
            shared,
            textures,
            thread: Some(thread),
            path,
            sync,
        })
    }

    /// The socket path consumers connect to.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The ring's textures.
    pub fn textures(&self) -> &[VulkanTexture] {
        &self.textures
    }

    /// The best synchronization mode this producer offers (what consumers that support it
    /// get).
    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    /// Number of consumers that completed their handshake and are connected.
    pub fn consumer_count(&self) -> usize {
        self.shared
            .lock()
            .peers
            .iter()
            .filter(|p| matches!(p.phase, Phase::Active))
            .count()
    }

    /// Waits until at least `n` consumers are connected.
    pub fn wait_for_consumers(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if state
                .peers
                .iter()
                .filter(|p| matches!(p.phase, Phase::Active))
                .count()
                >= n
            {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(format!("waiting for {n} consumers")));
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Counters, with one entry per connected consumer.
    pub fn stats(&self) -> ProducerStats {
        let state = self.shared.lock();
        let mut s = state.stats.clone();
        s.consumers = state
            .peers
            .iter()
            .filter(|p| matches!(p.phase, Phase::Active))
            .map(|p| ConsumerStats {
                id: p.id,
                name: p.name.clone(),
                pid: p.creds.pid,
                delivered: p.delivered,
                skipped: p.skipped,
            })
            .collect();
        s
    }

    /// Waits for a slot that no consumer holds (at most `timeout`, forever with `None`) and
    /// returns it for writing. In the default (lossy) mode with at most `max_consumers`
    /// consumers one is always free or freed as soon as a consumer finishes its current frame.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<WriteSlot> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.shared.lock();
        if state.writing.is_some() {
            return Err(Error::InvalidArgument {
                what: "acquire",
                reason: "a slot is already acquired; present it first".into(),
            });
        }
        loop {
            let held = |s: usize| {
                state
                    .peers
                    .iter()
                    .any(|p| p.held.iter().any(|(slot, _, _)| *slot as usize == s))
            };
            let latest = state.latest.map(|(s, _)| s as usize);
            // Prefer a free slot that is not the latest frame, so a consumer that frees up now
            // can still be given the latest. (No allocation: this runs every frame.)
            let n = self.textures.len();
            let pick = (0..n)
                .find(|s| !held(*s) && Some(*s) != latest)
                .or_else(|| (0..n).find(|s| !held(*s)));
            if let Some(index) = pick {
                if Some(index) == latest {
                    state.latest = None;
                }
                state.writing = Some(index);
                let frame = state.next_frame;
                return Ok(WriteSlot {
                    index,
                    frame,
                    texture: self.textures[index].clone(),
                    waits: {
                        let spare = state.spare_waits.pop().unwrap_or_default();
                        std::mem::replace(&mut state.slot_waits[index], spare)
                    },
                    signal: self.shared.ready.as_ref().map(|r| TimelinePoint {
                        semaphore: r.clone(),
                        value: frame + 1,
                    }),
                });
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout(
                            "no free slot: every slot is held by a consumer".into(),
                        ));
                    }
                    left
                }
                None => Duration::from_millis(100),
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Publishes a written slot to the consumers; returns the frame number. In host mode
    /// (`slot.signal` is `None`) the GPU work that wrote it must have completed. With a
    /// `signal` point, the work must have been submitted signaling it; consumers in timeline
    /// mode wait for it on their GPU, and for consumers in host mode this call waits for it
    /// on the host first.
    pub fn present(&self, slot: WriteSlot) -> Result<u64> {
        // One look at the peers: host-synchronized ones (every peer still in its handshake
        // counts as one, and so does every cross-device one) need the write finished before
        // the frame is announced; cross-device ones (active once marked) also need it copied
        // into the host-memory ring.
        // Rings are copied into only for consumers that may still be sent the frame. A
        // lossless consumer that holds as many frames as it may skips it for good; a lossy one
        // is sent the latest frame as soon as it releases, so its ring gets every frame (on
        // the H100, skipping those copies cut a lossy lavapipe consumer from 570 to 345 fps).
        let cap = self.shared.held_cap();
        let lossless = self.shared.options.lossless;
        let (host_peers, staged) = {
            let state = self.shared.lock();
            let mut rings = HostRings::lock(&self.shared.host_rings);
            rings.want_none();
            let mut host_peers = false;
            for p in &state.peers {
                host_peers |= p.sync == SyncMode::Host;
                if p.staged && (!lossless || p.held.len() < cap) {
                    rings.want(p.id);
                }
            }
            (host_peers, rings.any_wanted())
        };
        let prepared = (|| {
            if let (Some(signal), true) = (&slot.signal, host_peers) {
                signal
                    .semaphore
                    .wait(signal.value, crate::vulkan::SUBMIT_TIMEOUT)?;
            }
            if staged {
                // Consumers on other devices read the frame from a host-memory ring: copy it
                // into the rings wanted (and wait) before announcing it. The slot is free of
                // every consumer.
                HostRings::lock(&self.shared.host_rings).download(
                    slot.index,
                    slot.frame,
                    &self.textures[slot.index],
                )?;
            }
            Ok(())
        })();
        if let Err(e) = prepared {
            // The frame is not announced; give the slot back so the next `acquire` works.
            let mut state = self.shared.lock();
            if state.writing == Some(slot.index) && state.next_frame == slot.frame {
                state.writing = None;
                // Its waits still guard the slot's next write.
                state.slot_waits[slot.index] = slot.waits;
            }
            drop(state);
            self.shared.changed.notify_all();
            return Err(e);
        }
        let mut state = self.shared.lock();
        if state.writing != Some(slot.index) || state.next_frame != slot.frame {
            return Err(Error::InvalidArgument {
                what: "present",
                reason: "this slot was not acquired from this producer".into(),
            });
        }
        state.writing = None;
        state.next_frame += 1;
        state.stats.presented += 1;
        let (index, frame) = (slot.index as u32, slot.frame);
        // Hand the slot's wait list back for reuse (the GPU work holds its own references).
        let mut waits = slot.waits;
        waits.clear();
        state.spare_waits.push(waits);
        state.latest = Some((index, frame));
        let now = monotonic_ns();
        let mut dead = Vec::new();
        let mut rings = HostRings::lock(&self.shared.host_rings);
        for peer in state
            .peers
            .iter_mut()
            .filter(|p| matches!(p.phase, Phase::Active))
        {
            if peer.held.len() >= cap {
                peer.skipped += 1;
                continue;
            }
            if !rings.serves(peer, index, frame) {
                // Its ring was not copied into: it connected after the copy (its first frame
                // is the next), or it was at `cap` then and has released since.
                if peer.last_sent.is_some() {
                    peer.skipped += 1;
                }
                continue;
            }
            match send_frame(peer, index, frame, now) {
                Ok(()) => {}
                Err(e) => dead.push((peer.id, e)),
            }
        }
        for (id, e) in dead {
            drop_peer(&mut state, id, &e);
        }
        // Rings of consumers that left, before or just now, go here (the copies into them
        // have completed).
        rings.prune(&state.peers);
        drop(rings);
        drop(state);
        self.shared.changed.notify_all();
        Ok(frame)
    }
}

/// Sends a consumer on another device the host-memory ring (made on first use): our Hello,
/// then `HostPoolSetup` with the ring's memfd.
fn staged_setup(shared: &Shared, peer: &mut Peer, hello: &Hello) -> Result<()> {
    if !shared.options.cross_device {
        return Err(Error::unsupported(
            "cross-device consumers",
            "the producer was started with cross_device = false",
        ));
    }
    if !hello.sync_modes.contains(&SyncMode::Host) {
        return Err(Error::unsupported(
            "cross-device consumers",
            "the ring is host-synchronized and the consumer does not offer host sync",
        ));
    }
    let info = &shared.exports[0].info;
    if !info
        .descriptor
        .has_usage(crate::common::TextureUsage::CopySrc)
    {
        return Err(Error::unsupported(
            "cross-device consumers",
            "the frames lack TextureUsage::CopySrc, which the copy into host memory needs",
        ));
    }
    let slots = shared.exports.len();
    let make = || -> Result<ProducerRing> {
        let ring = HostRing::create(&shared.manager, info, slots)?;
        Ok(ProducerRing {
            ring,
            frames: vec![None; slots],
            wanted: false,
        })
    };
    let mut rings = HostRings::lock(&shared.host_rings);
    let per_consumer = shared
        .options
        .host_rings
        .per_consumer(&shared.options.peer_policy);
    if per_consumer {
        let made = make()?;
        tracing::info!(consumer = peer.id, path = %made.ring.path(), "own host-memory ring");
        rings.own.push((peer.id, made));
    } else if rings.shared.is_none() {
        let made = make()?;
        tracing::info!(path = %made.ring.path(), "host-memory ring for consumers on other devices");
        rings.shared = Some(made);
    }
    let ring = &rings
        .of(peer.id)
        .ok_or_else(|| Error::Protocol("host ring missing".into()))?
        .ring;
    peer.conn.send(&Message::Hello(shared.hello.clone()), &[])?;
    let setup = Message::HostPoolSetup {
        generation: 1,
        info: info.clone(),
        slots: slots as u32,
        slot_bytes: ring.region_bytes(),
    };
    peer.conn.send(&setup, &[borrow_os_handle(ring.handle())])
}

/// Whether the host ring of staged consumer `peer` holds `frame` in `slot`, for the lossy
/// resend on release. Called with `state` locked, so it does not wait for the rings: while a
/// `present` copies into them it says no, and that `present` sends this (now free) consumer
/// its newer frame.
fn lossy_ring_holds(shared: &Shared, peer: &Peer, slot: u32, frame: u64) -> bool {
    HostRings::try_lock(&shared.host_rings).is_some_and(|r| r.serves(peer, slot, frame))
}

fn send_frame(peer: &mut Peer, slot: u32, frame: u64, present_ns: u64) -> Result<()> {
    peer.conn.send(
        &Message::FrameReady {
            slot,
            frame,
            present_ns,
            sent_ns: monotonic_ns(),
        },
        &[],
    )?;
    peer.held.push((slot, frame, Instant::now()));
    peer.last_sent = Some(frame);
    peer.delivered += 1;
    Ok(())
}

fn drop_peer(state: &mut State, id: u64, why: &Error) {
    if let Some(pos) = state.peers.iter().position(|p| p.id == id) {
        let peer = state.peers.swap_remove(pos);
        match why {
            Error::PeerGone(_) => {
                tracing::info!(consumer = peer.id, pid = peer.creds.pid, "consumer left")
            }
            e => tracing::warn!(
                consumer = peer.id,
                pid = peer.creds.pid,
                "dropping consumer: {e}"
            ),
        }
        if matches!(peer.phase, Phase::Active) {
            state.stats.dropped += 1;
        }
        // Our GPU may wait for release values the dead consumer will never signal: signal
        // them from here so the producer's queue never hangs on a dead peer.
        if let Some((semaphore, announced)) = &peer.released {
            if semaphore.value().is_ok_and(|v| v < *announced) {
                if let Err(e) = semaphore.signal(*announced) {
                    tracing::warn!("unblocking a dead consumer's release timeline: {e}");
                }
            }
        }
    }
}

impl Drop for Producer {
    /// Ends the stream cleanly: each consumer gets `Bye`, then the producer stops writing and
    /// reads until the consumer closes (at most 500 ms in all), so no connection is reset with
    /// a release still unread, which would make the consumer miss the `Bye`.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut state = self.shared.lock();
        let mut peers = std::mem::take(&mut state.peers);
        drop(state);
        for peer in peers.iter_mut() {
            let _ = peer.conn.send(
                &Message::Bye {
                    reason: "producer shut down".into(),
                },
                &[],
            );
            peer.conn.shutdown_write();
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        while !peers.is_empty() && Instant::now() < deadline {
            peers.retain_mut(|p| loop {
                match p.conn.try_recv() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break true,
                    Err(_) => break false, // closed by the consumer (or broken): done
                }
            });
            if !peers.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// The service thread: accepts consumers, runs handshakes, takes releases.
fn service(shared: &Shared, mut listener: Listener) {
    const TICK: Duration = Duration::from_millis(50);
    // Buffers reused across wake-ups: the loop runs for every release, so it must not allocate.
    let capacity = shared.max_consumers + 2;
    let mut ids: Vec<u64> = Vec::with_capacity(capacity);
    let mut poller = Poller::with_capacity(capacity);
    while !shared.stop.load(Ordering::SeqCst) {
        // Snapshot the connections to wait on; a consumer dropped meanwhile only causes a
        // spurious wake.
        ids.clear();
        poller.clear();
        for p in shared.lock().peers.iter_mut() {
            ids.push(p.id);
            poller.add(&mut p.conn);
        }
        let ready = poller.wait(&mut listener, TICK);
        let mut changed = false;
        if ready[0] {
            changed |= accept_all(shared, &mut listener);
        }
        for (i, id) in ids.iter().enumerate() {
            if ready[i + 1] {
                changed |= serve_peer(shared, *id);
            }
        }
        // Handshake deadlines and frames held too long.
        {
            let mut state = shared.lock();
            let now = Instant::now();
            let max_hold = shared.options.max_hold;
            let late: Vec<(u64, &'static str)> = state
                .peers
                .iter()
                .filter_map(|p| match p.phase {
                    Phase::Handshake { deadline } | Phase::AwaitSync { deadline }
                        if deadline <= now =>
                    {
                        Some((p.id, "no handshake within the handshake timeout"))
                    }
                    Phase::Active if p.held.iter().any(|h| now.duration_since(h.2) > max_hold) => {
                        Some((p.id, "held a frame longer than ProducerOptions::max_hold"))
                    }
                    _ => None,
                })
                .collect();
            for (id, why) in late {
                drop_peer(&mut state, id, &Error::Timeout(why.into()));
                changed = true;
            }
            // Free the rings of consumers that left now, not at the next present (a producer
            // may pause); skipped while a present is copying into the rings.
            if changed {
                if let Some(mut rings) = HostRings::try_lock(&shared.host_rings) {
                    rings.prune(&state.peers);
                }
            }
        }
        if changed {
            shared.changed.notify_all();
        }
    }
}

fn accept_all(shared: &Shared, listener: &mut Listener) -> bool {
    let mut changed = false;
    loop {
        let conn = match listener.accept(true) {
            Ok(Some(c)) => c,
            Ok(None) => return changed,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                return changed;
            }
        };
        let mut conn = conn;
        conn.set_max_message_bytes(shared.options.max_message_bytes);
        let creds = match conn.check_peer(&shared.options.peer_policy) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("refusing connection: {e}");
                let _ = conn.send(
                    &Message::Reject {
                        reason: e.to_string(),
                    },
                    &[],
                );
                shared.lock().stats.refused += 1;
                continue;
            }
        };
        let mut state = shared.lock();
        if state.peers.len() >= shared.max_consumers {
            let reason = format!(
                "producer serves at most {} consumers (raise ProducerOptions::slots or max_consumers)",
                shared.max_consumers
            );
            tracing::warn!(pid = creds.pid, "refusing consumer: {reason}");
            let _ = conn.send(&Message::Reject { reason }, &[]);
            state.stats.refused += 1;
            continue;
        }
        let id = state.next_peer;
        state.next_peer += 1;
        state.peers.push(Peer {
            id,
            conn,
            creds,
            phase: Phase::Handshake {
                deadline: Instant::now() + shared.options.handshake_timeout,
            },
            name: String::new(),
            held: Vec::with_capacity(MAX_SLOTS),
            last_sent: None,
            delivered: 0,
            skipped: 0,
            sync: SyncMode::Host,
            released: None,
            wants_staged: false,
            staged: false,
        });
        changed = true;
    }
}

/// Reads everything a peer has sent; drops it on any error. Returns whether state changed.
fn serve_peer(shared: &Shared, id: u64) -> bool {
    let mut state = shared.lock();
    let mut changed = false;
    loop {
        let Some(peer) = state.peers.iter_mut().find(|p| p.id == id) else {
            return changed;
        };
        let received = peer.conn.try_recv();
        let result = match received {
            Ok(None) => return changed,
            Ok(Some((msg, fds))) => {
                changed = true;
                // The connection already checked that the FD count matches the message.
                handle(shared, &mut state, id, msg, fds)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if let Some(peer) = state.peers.iter_mut().find(|p| p.id == id) {
                if !matches!(e, Error::PeerGone(_)) {
                    let _ = peer.conn.send(
                        &Message::Bye {
                            reason: e.to_string(),
                        },
                        &[],
                    );
                }
            }
            drop_peer(&mut state, id, &e);
            return true;
        }
    }
}

fn handle(
    shared: &Shared,
    state: &mut State,
    id: u64,
    msg: Message,
    fds: Vec<OwnedOsHandle>,
) -> Result<()> {
    let slots = shared.exports.len() as u32;
    let lossless = shared.options.lossless;
    let (latest, writing) = (state.latest, state.writing);
    let pos = state
        .peers
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(|| Error::PeerGone("gone".into()))?;
    let peer = &mut state.peers[pos];
    let greet_with_latest = |peer: &mut Peer| -> Result<()> {
        // A new consumer starts with the current frame.
        if let (false, Some((slot, frame))) = (lossless, latest) {
            if writing != Some(slot as usize) {
                send_frame(peer, slot, frame, monotonic_ns())?;
            }
        }
        Ok(())
    };
    match (&peer.phase, msg) {
        (Phase::Handshake { .. }, Message::StagedRequest) => {
            peer.wants_staged = true;
            Ok(())
        }
        (Phase::Handshake { .. }, Message::Hello(hello)) => {
            if hello.role != Role::Consumer {
                return Err(Error::Protocol("a producer connected to a producer".into()));
            }
            let ours = &shared.hello;
            let other_device =
                hello.device_uuid != ours.device_uuid || hello.driver_uuid != ours.driver_uuid;
            if other_device || peer.wants_staged {
                let why = if other_device {
                    "consumer runs on another GPU or driver"
                } else {
                    "consumer asked for the host-memory ring"
                };
                return match staged_setup(shared, peer, &hello) {
                    Ok(()) => {
                        peer.name = hello.name;
                        peer.sync = SyncMode::Host;
                        peer.staged = true;
                        peer.phase = Phase::Active;
                        state.stats.connected += 1;
                        tracing::info!(
                            consumer = id,
                            pid = peer.creds.pid,
                            "consumer connected through the host-memory ring ({why})"
                        );
                        Ok(())
                    }
                    Err(e) => {
                        let reason =
                            format!("{why}, and it cannot be served through host memory: {e}");
                        let _ = peer.conn.send(
                            &Message::Reject {
                                reason: reason.clone(),
                            },
                            &[],
                        );
                        Err(Error::PermissionDenied(reason))
                    }
                };
            }
            if other_device {
                let reason = "consumer runs on another GPU or driver; opaque-FD sharing needs the same device".to_string();
                let _ = peer.conn.send(
                    &Message::Reject {
                        reason: reason.clone(),
                    },
                    &[],
                );
                return Err(Error::PermissionDenied(reason));
            }
            let Some(sync) = negotiate_sync(&shared.sync_modes, &hello.sync_modes) else {
                let reason = format!(
                    "no common sync mode: producer offers {:?}, consumer {:?}",
                    shared.sync_modes, hello.sync_modes
                );
                let _ = peer.conn.send(
                    &Message::Reject {
                        reason: reason.clone(),
                    },
                    &[],
                );
                return Err(Error::Protocol(reason));
            };
            peer.conn.send(&Message::Hello(ours.clone()), &[])?;
            let setup = Message::PoolSetup {
                generation: 1,
                sync,
                slots: shared.exports.iter().map(|e| e.info.clone()).collect(),
            };
            let pool_fds: Vec<BorrowedOsHandle<'_>> = shared
                .exports
                .iter()
                .map(|e| borrow_os_handle(e.os_handle()))
                .collect();
            peer.conn.send(&setup, &pool_fds)?;
            peer.name = hello.name;
            peer.sync = sync;
            if sync == SyncMode::Timeline {
                let ready = shared.ready.as_ref().ok_or_else(|| {
                    Error::Protocol("timeline negotiated without a timeline".into())
                })?;
                let fd = ready.export()?;
                peer.conn
                    .send(&Message::SyncSetup { sync }, &[borrow_os_handle(&fd)])?;
                peer.phase = Phase::AwaitSync {
                    deadline: Instant::now() + shared.options.handshake_timeout,
                };
                return Ok(());
            }
            peer.phase = Phase::Active;
            tracing::info!(
                consumer = id,
                pid = peer.creds.pid,
                ?sync,
                "consumer connected"
            );
            greet_with_latest(peer)?;
            state.stats.connected += 1;
            Ok(())
        }
        (
            Phase::AwaitSync { .. },
            Message::SyncSetup {
                sync: SyncMode::Timeline,
            },
        ) => {
            let fd = fds
                .into_iter()
                .next()
                .ok_or_else(|| Error::Protocol("SyncSetup without its FD".into()))?;
            let released = SharedTimelineSemaphore::import(&shared.manager, fd)?;
            peer.released = Some((Arc::new(released), 0));
            peer.phase = Phase::Active;
            tracing::info!(
                consumer = id,
                pid = peer.creds.pid,
                "consumer connected (timeline sync)"
            );
            greet_with_latest(peer)?;
            state.stats.connected += 1;
            Ok(())
        }
        (Phase::Active, Message::FrameReleased { slot, frame, value }) => {
            if slot >= slots {
                return Err(Error::Protocol(format!(
                    "release of slot {slot}, ring has {slots}"
                )));
            }
            let held = peer
                .held
                .iter()
                .position(|h| (h.0, h.1) == (slot, frame))
                .ok_or_else(|| {
                    Error::Protocol(format!(
                        "release of frame {frame} in slot {slot}, which it does not hold"
                    ))
                })?;
            peer.held.swap_remove(held);
            let mut wait = None;
            if let Some((semaphore, announced)) = &mut peer.released {
                if value < *announced {
                    return Err(Error::Protocol(format!(
                        "release value went backwards: {value} after {announced}"
                    )));
                }
                *announced = value;
                if value > 0 {
                    wait = Some(TimelinePoint {
                        semaphore: semaphore.clone(),
                        value,
                    });
                }
            }
            // A lossy consumer that just finished gets the latest frame if it missed it.
            if let (false, true, Some((slot, frame))) = (lossless, peer.held.is_empty(), latest) {
                if peer.last_sent.is_none_or(|l| l < frame)
                    && writing != Some(slot as usize)
                    && (!peer.staged || lossy_ring_holds(shared, peer, slot, frame))
                {
                    send_frame(peer, slot, frame, monotonic_ns())?;
                }
            }
            if let Some(point) = wait {
                let waits = &mut state.slot_waits[slot as usize];
                waits.retain(|w| !Arc::ptr_eq(&w.semaphore, &point.semaphore));
                waits.push(point);
            }
            Ok(())
        }
        (_, Message::Bye { reason }) => {
            Err(Error::PeerGone(format!("consumer said bye: {reason}")))
        }
        (Phase::Handshake { .. }, other) => Err(Error::Protocol(format!(
            "expected Hello, got {}",
            other.kind()
        ))),
        (Phase::AwaitSync { .. }, other) => Err(Error::Protocol(format!(
            "expected SyncSetup, got {}",
            other.kind()
        ))),
        (Phase::Active, other) => Err(Error::Protocol(format!(
            "unexpected {} from a consumer",
            other.kind()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_host_rings_are_per_consumer_once_other_users_may_connect() {
        let auto = HostRingSharing::Auto;
        assert!(!auto.per_consumer(&PeerPolicy::SameUser));
        assert!(auto.per_consumer(&PeerPolicy::AnyUser));
        assert!(auto.per_consumer(&PeerPolicy::Uids(vec![1000])));
        assert!(!HostRingSharing::Shared.per_consumer(&PeerPolicy::AnyUser));
        assert!(HostRingSharing::PerConsumer.per_consumer(&PeerPolicy::SameUser));
        assert_eq!(
            "Per-Consumer".parse::<HostRingSharing>().unwrap(),
            HostRingSharing::PerConsumer
        );
        assert_eq!(
            "shared".parse::<HostRingSharing>().unwrap(),
            HostRingSharing::Shared
        );
        let e = "private"
            .parse::<HostRingSharing>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("per-consumer"), "{e}");
    }
}
