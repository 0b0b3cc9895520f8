//! [`Producer`]: owns a ring of shared textures, serves any number of consumers from a service
//! thread, and hands each frame over with a few-byte message. A slow or dead consumer never
//! stalls the producer or the other consumers.

mod handshake;
mod host_ring;
mod linear;
mod options;
mod remote;
mod service;
mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use host_ring::HostRingSharing;
use host_ring::HostRings;
use options::check_pool;
pub use options::ProducerOptions;
pub use remote::{RemoteRing, RemoteRings};
use service::{drop_peer, send_frame};
use state::{lock_conn, Shared, State};

use super::clock::monotonic_ns;
use super::transport::{Listener, MAX_POLLED_CONNECTIONS};
use super::wire::negotiate::{prefer, supported_sync_modes, unsupported_sync};
use super::wire::{FrameId, Hello, Message, Role, SyncMode, MAX_SLOTS};
use crate::common::TextureDescriptor;
use crate::vulkan::{
    PooledTexture, SharedTimelineSemaphore, TimelinePoint, VulkanTexture, VulkanTextureShareManager,
};
use crate::{Error, Result};

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

/// A slot the producer may write now; hand it back with [`Producer::present`].
#[derive(Debug)]
pub struct WriteSlot {
    /// The slot, and the frame number it will carry when presented.
    pub id: FrameId,
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
///     let grey = (slot.id.frame % 256) as f32 / 255.0;
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
    /// With [`ProducerOptions::texture_pool`], the loans behind `textures`. Declared last:
    /// dropped after everything else, which gives the ring back to the pool.
    _pooled: Vec<PooledTexture>,
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
        desc.validate_with(&options.extent)?;
        // Where binding's time goes, for the debug log: ms since `t0` after each step.
        let t0 = Instant::now();
        let since = || t0.elapsed().as_secs_f64() * 1e3;
        let sync_modes = supported_sync_modes(&manager)?;
        let queried = since();
        if let Some(forced) = options.sync {
            if !sync_modes.contains(&forced) {
                return Err(unsupported_sync(forced, &manager));
            }
        }
        check_pool(&options, &manager)?;
        let mut textures = Vec::with_capacity(options.slots);
        let mut exports = Vec::with_capacity(options.slots);
        let mut pooled = Vec::new();
        for i in 0..options.slots {
            let mut d = desc.clone();
            d.label = Some(format!("{}[{i}]", desc.label.as_deref().unwrap_or(name)));
            let t = if let Some(pool) = &options.texture_pool {
                let loan = pool.create_with(&d, &options.extent)?;
                let t = loan.texture().clone();
                pooled.push(loan);
                t
            } else {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                let t = manager.create_texture_in(&d, &options.extent, &options.ring_memory)?;
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                let t = manager.create_texture_with(&d, &options.extent)?;
                t
            };
            exports.push(manager.export(&t)?);
            textures.push(t);
        }
        let ring_made = since();
        let listener = Listener::bind(name)?;
        let path = listener.path().to_path_buf();
        let id = manager.identity();
        let sync_offer = match options.sync {
            Some(forced) => vec![forced],
            None => prefer(sync_modes.clone(), options.prefer_sync),
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
        let binary = sync_offer.contains(&SyncMode::BinarySemaphore);
        let listening = since();
        let ready = if sync_offer.contains(&SyncMode::Timeline) {
            Some(Arc::new(SharedTimelineSemaphore::new(&manager, 0)?))
        } else if binary {
            Some(Arc::new(SharedTimelineSemaphore::local(&manager, 0)?))
        } else {
            None
        };
        let timeline_made = since();
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
                lingering: Vec::new(),
                backoff: Vec::new(),
                unlogged_refusals: (0, None),
                linear_frames: vec![None; slot_count],
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            options,
            max_consumers,
            hello,
            sync_modes: sync_offer,
            exports,
            ready,
            relay: OnceLock::new(),
            manager: manager.clone(),
            host_rings: Mutex::new(HostRings::default()),
            linear: Default::default(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("geyser-producer-{name}"))
                .spawn(move || service::service(&shared, listener))
                .map_err(Error::Io)?
        };
        let sync = shared.sync_modes[0];
        tracing::debug!(
            sync_modes_ms = queried,
            ring_ms = ring_made - queried,
            listen_ms = listening - ring_made,
            timeline_ms = timeline_made - listening,
            rest_ms = since() - timeline_made,
            "producer bound"
        );
        tracing::info!(path = %path.display(), slots = textures.len(), "producer listening");
        Ok(Producer {
            shared,
            textures,
            thread: Some(thread),
            path,
            sync,
            _pooled: pooled,
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
        self.shared.lock().active_count()
    }

    /// Waits until at least `n` consumers are connected.
    pub fn wait_for_consumers(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if state.active_count() >= n {
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
            .filter(|p| p.is_active())
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
    /// With [`ProducerOptions::ordered_slots`] the slot is the frame number modulo the ring,
    /// and this waits for that one.
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
            let held = |s: usize| state.peers.iter().any(|p| p.holds_slot(s));
            let latest = state.latest.map(FrameId::slot_index);
            // Prefer a free slot that is not the latest frame, so a consumer that frees up now
            // can still be given the latest. (No allocation: this runs every frame.)
            let n = self.textures.len();
            let pick = if self.shared.options.ordered_slots {
                let s = (state.next_frame % n as u64) as usize;
                (!held(s)).then_some(s)
            } else {
                (0..n)
                    .find(|s| !held(*s) && Some(*s) != latest)
                    .or_else(|| (0..n).find(|s| !held(*s)))
            };
            if let Some(index) = pick {
                if Some(index) == latest {
                    state.latest = None;
                }
                state.writing = Some(index);
                let frame = state.next_frame;
                return Ok(WriteSlot {
                    id: FrameId {
                        slot: index as u32,
                        frame,
                    },
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

    /// Gives an acquired slot back without presenting it (when writing it failed): the next
    /// [`Self::acquire`] works again, and the slot's waits still guard its next write.
    pub fn abandon(&self, slot: WriteSlot) {
        let id = slot.id;
        let mut state = self.shared.lock();
        if state.writing == Some(id.slot_index()) && state.next_frame == id.frame {
            state.writing = None;
            state.slot_waits[id.slot_index()] = slot.waits;
        }
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Timeline mode: the "frame ready" timeline that writes of the ring signal (for interop
    /// layers that import it into their own API).
    #[cfg_attr(not(all(feature = "cuda", target_os = "linux")), allow(dead_code))]
    pub(crate) fn ready_timeline(&self) -> Option<&Arc<SharedTimelineSemaphore>> {
        self.shared.ready.as_ref()
    }

    /// Publishes a written slot to the consumers; returns the frame number. In host mode
    /// (`slot.signal` is `None`) the GPU work that wrote it must have completed. With a
    /// `signal` point, the work must have been submitted signaling it; consumers in timeline
    /// mode wait for it on their GPU, and for consumers in host mode this call waits for it
    /// on the host first.
    pub fn present(&self, slot: WriteSlot) -> Result<u64> {
        // One look at the peers: host-synchronized ones (every peer still in its handshake
        // counts as one, and so does every host-ring one) need the write finished before the
        // frame is announced; host-ring ones (active once marked) also need it copied into
        // their ring.
        // Rings are copied into only for consumers that may still be sent the frame. A
        // lossless consumer that holds as many frames as it may skips it for good; a lossy one
        // is sent the latest frame as soon as it releases, so its ring gets every frame (on
        // the H100, skipping those copies cut a lossy lavapipe consumer from 570 to 345 fps).
        let cap = self.shared.held_cap();
        let lossless = self.shared.options.lossless;
        let id = slot.id;
        // Linear frames are copied while any consumer takes them; host-synchronized ones
        // need the copy done before the frame is announced.
        let (host_peers, copy_to_rings, linear_peers) = {
            let mut state = self.shared.lock();
            let mut rings = HostRings::lock(&self.shared.host_rings);
            rings.want_none();
            let mut host_peers = false;
            let mut linear_peers = None;
            for p in &state.peers {
                // Remote rings wait for the frame on their GPU; other host-synchronized
                // consumers need it written before anything else happens.
                host_peers |= p.sync == SyncMode::Host && !p.remote_ring;
                if p.host_ring && (!lossless || p.held.len() < cap) {
                    rings.want(p.id);
                }
                if p.linear {
                    // Only timeline consumers wait for the copy on their GPU; for the others (host and
                    // binary sync) it is done before the frame is announced.
                    let host = linear_peers.unwrap_or(false) || p.sync != SyncMode::Timeline;
                    linear_peers = Some(host);
                }
            }
            if linear_peers.is_some() {
                // The region's old frame is gone from here on, whatever the copy does.
                state.linear_frames[id.slot_index()] = None;
            }
            (host_peers, rings.any_wanted(), linear_peers)
        };
        let prepared = (|| {
            if let (Some(signal), true) = (&slot.signal, host_peers) {
                signal
                    .semaphore
                    .wait(signal.value, crate::vulkan::SUBMIT_TIMEOUT)?;
            }
            if copy_to_rings {
                // Host-ring consumers read the frame from their ring: copy it into the rings
                // wanted (and wait) before announcing it. The slot is free of every consumer.
                let ready = slot.signal.as_ref().map(|s| s.value);
                HostRings::lock(&self.shared.host_rings).download(
                    id,
                    &self.textures[id.slot_index()],
                    ready,
                )?;
            }
            if let Some(host_linear) = linear_peers {
                if let Some(ring) = self.shared.linear.lock().as_ref() {
                    ring.copy(
                        id,
                        &self.textures[id.slot_index()],
                        slot.signal.as_ref(),
                        host_linear,
                    )?;
                }
            }
            Ok(())
        })();
        if let Err(e) = prepared {
            // The frame is not announced; give the slot back so the next `acquire` works.
            self.abandon(slot);
            return Err(e);
        }
        let mut state = self.shared.lock();
        if state.writing != Some(id.slot_index()) || state.next_frame != id.frame {
            return Err(Error::InvalidArgument {
                what: "present",
                reason: "this slot was not acquired from this producer".into(),
            });
        }
        state.writing = None;
        state.next_frame += 1;
        state.stats.presented += 1;
        // Hand the slot's wait list back for reuse (the GPU work holds its own references).
        let mut waits = slot.waits;
        waits.clear();
        state.spare_waits.push(waits);
        state.latest = Some(id);
        if linear_peers.is_some() {
            state.linear_frames[id.slot_index()] = Some(id.frame);
        }
        let in_linear = state.in_linear(id);
        let now = monotonic_ns();
        let mut dead = Vec::new();
        let mut rings = HostRings::lock(&self.shared.host_rings);
        for peer in state.peers.iter_mut().filter(|p| p.is_active()) {
            if peer.may_send(id, cap, None, Some(&rings), in_linear) {
                if let Err(e) = send_frame(&self.shared, peer, id, now) {
                    dead.push((peer.id, e));
                }
            } else if peer.held.len() >= cap || peer.last_sent.is_some() {
                // Busy, or its ring was not copied into (it was at `cap` then and has
                // released since). A host-ring consumer that connected after the copy has
                // skipped nothing: its first frame is the next.
                peer.skipped += 1;
            }
        }
        for (dead_id, e) in dead {
            drop_peer(&mut state, dead_id, &e);
        }
        // Rings of consumers that left, before or just now, go here (the copies into them
        // have completed).
        rings.prune(&state.peers);
        drop(rings);
        drop(state);
        self.shared.changed.notify_all();
        Ok(id.frame)
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
            let mut conn = lock_conn(&peer.conn);
            let _ = conn.send(
                &Message::Bye {
                    reason: "producer shut down".into(),
                },
                &[],
            );
            conn.shutdown_write();
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        while !peers.is_empty() && Instant::now() < deadline {
            peers.retain_mut(|p| {
                let mut conn = lock_conn(&p.conn);
                loop {
                    match conn.try_recv() {
                        Ok(Some(_)) => continue,
                        Ok(None) => break true,
                        Err(_) => break false, // closed by the consumer (or broken): done
                    }
                }
            });
            if !peers.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_consumers_always_get_their_own_host_ring() {
        let auto = HostRingSharing::Auto;
        assert!(!auto.own_ring(true));
        assert!(auto.own_ring(false));
        assert!(!HostRingSharing::Shared.own_ring(true));
        assert!(HostRingSharing::Shared.own_ring(false));
        assert!(HostRingSharing::PerConsumer.own_ring(true));
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
