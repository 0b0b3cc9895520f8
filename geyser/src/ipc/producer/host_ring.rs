//! The producer's host rings: for consumers that cannot import its textures (another GPU or
//! driver, or a consumer that asked), one ring shared by all of them or one each
//! ([`HostRingSharing`]), which frame each ring slot holds, and the setup a consumer receives.
//! Remote rings (a ring on the consumer's GPU, filled by GPU-to-GPU copies: `remote.rs`) are
//! kept here too, one per consumer, and follow the same rules.

use std::sync::{Mutex, MutexGuard};

use super::remote::RemoteRing;
use super::state::{Peer, Shared};
use crate::common::{borrow_os_handle, TextureUsage};
use crate::ipc::host_ring::HostRing;
use crate::ipc::wire::{FrameId, Hello, Message, SyncMode};
use crate::vulkan::VulkanTexture;
use crate::{Error, Result};

/// How trusted consumers that get a host ring share it. Untrusted consumers (not admitted by
/// [`super::ProducerOptions::trusted`]) always get their own, whatever this says.
///
/// The ring's mapping is writable on the consumer's side too (host-memory import needs it), so
/// a consumer can change what is in its ring: with a shared ring, what the other host-ring
/// consumers read. Consumers that import the producer's textures are never affected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostRingSharing {
    /// [`Shared`](Self::Shared) among trusted consumers (processes of one user can usually
    /// reach each other's memory anyway: ptrace, `/proc/<pid>/mem`), one each for untrusted.
    #[default]
    Auto,
    /// One ring for all trusted host-ring consumers: one GPU copy per frame, however many.
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
    /// Whether a consumer gets its own ring: always when it is not trusted, and when this
    /// says so.
    pub fn own_ring(self, trusted: bool) -> bool {
        !trusted || self == Self::PerConsumer
    }
}

/// What a producer-side ring copies frames into.
enum RingKind {
    /// Shared host memory.
    Host(HostRing),
    /// Textures on the consumer's GPU.
    Remote(Box<dyn RemoteRing>),
}

/// A producer-side host (or remote) ring, and which frame each of its slots holds.
pub(super) struct ProducerRing {
    ring: RingKind,
    frames: Vec<Option<u64>>,
    /// Copy the frame being presented into this ring (a consumer it serves will be sent it).
    wanted: bool,
}

impl ProducerRing {
    fn download(&mut self, id: FrameId, texture: &VulkanTexture, ready: Option<u64>) -> Result<()> {
        // Forget the slot's old frame first: a failed copy leaves nothing announced.
        self.frames[id.slot_index()] = None;
        match &mut self.ring {
            RingKind::Host(ring) => ring.download(id.slot_index(), texture)?,
            RingKind::Remote(ring) => ring.copy(id, ready)?,
        }
        self.frames[id.slot_index()] = Some(id.frame);
        Ok(())
    }
}

/// The host rings of consumers that cannot import the producer's textures.
#[derive(Default)]
pub(super) struct HostRings {
    /// The ring every such consumer shares, made when the first connects.
    shared: Option<ProducerRing>,
    /// Per-consumer rings, by peer id; those of consumers that left are dropped by the
    /// service thread or at the next `present`.
    own: Vec<(u64, ProducerRing)>,
}

impl HostRings {
    pub fn lock(m: &Mutex<Self>) -> MutexGuard<'_, Self> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`Self::lock`] for callers that hold `state` and must not wait for a `present` that is
    /// copying into the rings: `None` while one is.
    pub fn try_lock(m: &Mutex<Self>) -> Option<MutexGuard<'_, Self>> {
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

    pub fn want_none(&mut self) {
        self.all().for_each(|r| r.wanted = false);
    }

    /// Marks the ring that serves consumer `peer` for the next download.
    pub fn want(&mut self, peer: u64) {
        if let Some(ring) = self.of_mut(peer) {
            ring.wanted = true;
        }
    }

    pub fn any_wanted(&mut self) -> bool {
        self.all().any(|r| r.wanted)
    }

    /// Drops the rings of consumers that left.
    pub fn prune(&mut self, peers: &[Peer]) {
        self.own.retain(|(id, _)| peers.iter().any(|p| p.id == *id));
    }

    /// Whether the ring that serves consumer `peer` holds frame `id` (one that connected after
    /// the frame was copied does not).
    pub fn holds(&self, peer: u64, id: FrameId) -> bool {
        self.of(peer)
            .is_some_and(|r| r.frames.get(id.slot_index()) == Some(&Some(id.frame)))
    }

    /// Copies `texture` (holding frame `id`; in timeline mode written once the ready
    /// timeline reaches `ready`) into every wanted ring. Host rings need the write done
    /// already; remote rings wait for `ready` on their GPU.
    pub fn download(
        &mut self,
        id: FrameId,
        texture: &VulkanTexture,
        ready: Option<u64>,
    ) -> Result<()> {
        for ring in self.all().filter(|r| r.wanted) {
            ring.download(id, texture, ready)?;
        }
        Ok(())
    }
}

/// Sets up a consumer that gets a host ring (made on first use): checks that it can be served,
/// then sends our Hello and `HostRingSetup` with the ring's shared memory.
pub(super) fn setup_host_ring(shared: &Shared, peer: &mut Peer, hello: &Hello) -> Result<()> {
    if !shared.options.host_ring_consumers {
        return Err(Error::unsupported(
            "host-ring consumers",
            "the producer was started with ProducerOptions::host_ring_consumers = false",
        ));
    }
    if !hello.sync_modes.contains(&SyncMode::Host) {
        return Err(Error::unsupported(
            "host-ring consumers",
            "the ring is host-synchronized and the consumer does not offer host sync",
        ));
    }
    let info = &shared.exports[0].info;
    if !info.descriptor.has_usage(TextureUsage::CopySrc) {
        return Err(Error::unsupported(
            "host-ring consumers",
            "the frames lack TextureUsage::CopySrc, which the copy into host memory needs",
        ));
    }
    let slots = shared.exports.len();
    let make = || -> Result<ProducerRing> {
        Ok(ProducerRing {
            ring: RingKind::Host(HostRing::create(&shared.manager, info, slots)?),
            frames: vec![None; slots],
            wanted: false,
        })
    };
    let mut rings = HostRings::lock(&shared.host_rings);
    let ring: &ProducerRing = if shared.options.host_rings.own_ring(peer.trusted) {
        let made = make()?;
        if let RingKind::Host(r) = &made.ring {
            tracing::info!(consumer = peer.id, path = %r.path(), "own host ring");
        }
        rings.own.push((peer.id, made));
        let last = rings.own.len() - 1;
        &rings.own[last].1
    } else {
        match rings.shared.take() {
            Some(ring) => rings.shared.insert(ring),
            None => {
                let made = make()?;
                if let RingKind::Host(r) = &made.ring {
                    tracing::info!(path = %r.path(), "shared host ring");
                }
                rings.shared.insert(made)
            }
        }
    };
    let RingKind::Host(host) = &ring.ring else {
        return Err(Error::Internal(
            "a remote ring where a host ring was made".into(),
        ));
    };
    peer.send(&Message::Hello(shared.hello.clone()), &[])?;
    let setup = Message::HostRingSetup {
        generation: 1,
        info: info.clone(),
        slots: slots as u32,
        slot_bytes: host.region_bytes(),
    };
    peer.send(&setup, &[borrow_os_handle(host.handle())])
}

/// Sets up a consumer on another GPU through a remote ring of its own when
/// `ProducerOptions::remote_rings` reaches its device: sends our Hello and `PeerRingSetup`
/// with the ring's textures. `Ok(false)`: not reachable that way (a host ring then).
pub(super) fn setup_remote_ring(shared: &Shared, peer: &mut Peer, hello: &Hello) -> Result<bool> {
    let Some(provider) = &shared.options.remote_rings else {
        return Ok(false);
    };
    if !hello.sync_modes.contains(&SyncMode::Host) {
        return Ok(false);
    }
    let Some(remote) = provider.open(
        &shared.exports,
        shared.ready.as_ref(),
        hello.device_uuid,
        hello.driver_uuid,
    )?
    else {
        return Ok(false);
    };
    let exports = remote.exports()?;
    let slots = exports.iter().map(|e| e.info.clone()).collect();
    let fds: Vec<_> = exports
        .iter()
        .map(|e| borrow_os_handle(e.os_handle()))
        .collect();
    peer.send(&Message::Hello(shared.hello.clone()), &[])?;
    peer.send(
        &Message::PeerRingSetup {
            generation: 1,
            slots,
        },
        &fds,
    )?;
    let count = shared.exports.len();
    HostRings::lock(&shared.host_rings).own.push((
        peer.id,
        ProducerRing {
            ring: RingKind::Remote(remote),
            frames: vec![None; count],
            wanted: false,
        },
    ));
    Ok(true)
}
