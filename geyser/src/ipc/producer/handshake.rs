//! The producer's handshake handlers: a consumer's Hello (host ring, the DMA-BUF ring to a
//! consumer of another driver that imports it, or pool and sync setup by the negotiated mode)
//! and the second step of the timeline and binary modes, after which the consumer is active.

use std::sync::Arc;
use std::time::Instant;

use super::host_ring::{setup_host_ring, setup_remote_ring};
use super::linear::setup_linear;
use super::service::{reject, Offer};
use super::state::{Peer, Phase, Shared};
use crate::common::{
    borrow_os_handle, BorrowedOsHandle, ExternalHandleType, MemoryLayout, OwnedOsHandle,
    RejectReason, DRM_FORMAT_MOD_LINEAR,
};
use crate::ipc::binary::{self, ProducerLink};
use crate::ipc::wire::negotiate::negotiate_sync;
use crate::ipc::wire::{Hello, Message, Role, SyncMode};
use crate::vulkan::SharedTimelineSemaphore;
use crate::{Error, Result};

/// A consumer's Hello: admits it through a host ring (another device, it asked, or it is not
/// trusted) unless it is on another device or driver and imports the ring's DMA-BUFs (then it
/// gets the ring itself, host-synchronized), or sends the pool and, in timeline mode, our
/// timeline (it becomes active once its own arrives).
pub(super) fn on_hello(
    shared: &Shared,
    peer: &mut Peer,
    hello: Hello,
    offer: &Offer,
) -> Result<()> {
    if hello.role != Role::Consumer {
        return Err(Error::Protocol("a producer connected to a producer".into()));
    }
    let ours = &shared.hello;
    let other_device =
        hello.device_uuid != ours.device_uuid || hello.driver_uuid != ours.driver_uuid;
    if other_device || peer.wants_host_ring || !peer.trusted {
        let why = if !peer.trusted {
            "consumer is not trusted with the ring's memory (ProducerOptions::trusted)"
        } else if other_device {
            "consumer runs on another GPU or driver"
        } else {
            "consumer asked for a host ring"
        };
        if peer.wants_linear {
            let detail = format!(
                "linear frames are shared memory on the producer's GPU, and this consumer cannot \
                 import it: {why}"
            );
            return Err(reject(&peer.conn, RejectReason::Device, detail));
        }
        if other_device && peer.trusted && !peer.wants_host_ring && dma_buf_importable(shared, peer)
        {
            send_pool(shared, peer, ours, SyncMode::Host)?;
            peer.name = hello.name;
            peer.sync = SyncMode::Host;
            peer.phase = Phase::Active;
            tracing::info!(
                consumer = peer.id,
                pid = peer.creds.pid,
                "consumer on another GPU or driver imports the ring's DMA-BUFs (host sync)"
            );
            return offer.latest_to(shared, peer);
        }
        if other_device && peer.trusted && !peer.wants_host_ring {
            match setup_remote_ring(shared, peer, &hello) {
                Ok(true) => {
                    peer.name = hello.name;
                    peer.sync = SyncMode::Host;
                    peer.host_ring = true;
                    peer.remote_ring = true;
                    peer.phase = Phase::Active;
                    tracing::info!(
                        consumer = peer.id,
                        pid = peer.creds.pid,
                        "consumer on another GPU connected through a remote ring (GPU-to-GPU copies)"
                    );
                    return offer.latest_to(shared, peer);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    consumer = peer.id,
                    "a remote ring failed ({e}); serving it through a host ring"
                ),
            }
        }
        if let Err(e) = setup_host_ring(shared, peer, &hello) {
            let detail = format!("{why}, and it cannot be served through a host ring: {e}");
            let reason = if peer.trusted {
                RejectReason::Device
            } else {
                RejectReason::Policy
            };
            return Err(reject(&peer.conn, reason, detail));
        }
        peer.name = hello.name;
        peer.sync = SyncMode::Host;
        peer.host_ring = true;
        peer.phase = Phase::Active;
        tracing::info!(
            consumer = peer.id,
            pid = peer.creds.pid,
            "consumer connected through a host ring ({why})"
        );
        return offer.latest_to(shared, peer);
    }
    let Some(sync) = negotiate_sync(&shared.sync_modes, &hello.sync_modes) else {
        let detail = format!(
            "no common sync mode: producer offers {:?}, consumer {:?}",
            shared.sync_modes, hello.sync_modes
        );
        return Err(reject(&peer.conn, RejectReason::Sync, detail));
    };
    send_pool(shared, peer, ours, sync)?;
    if peer.wants_linear {
        if let Err(e) = setup_linear(shared, peer, sync) {
            let detail = format!("it asked for linear frames, which cannot be made: {e}");
            return Err(reject(&peer.conn, RejectReason::Device, detail));
        }
        peer.linear = true;
    }
    peer.name = hello.name;
    peer.sync = sync;
    if sync == SyncMode::Timeline {
        let ready = shared.ready.as_ref().ok_or_else(|| {
            Error::Internal("timeline sync negotiated without a ready timeline".into())
        })?;
        let fd = ready.export()?;
        peer.send(&Message::SyncSetup { sync }, &[borrow_os_handle(&fd)])?;
        peer.phase = Phase::AwaitSync {
            deadline: Instant::now() + shared.options.handshake_timeout,
        };
        return Ok(());
    }
    if sync == SyncMode::BinarySemaphore {
        let slots = shared.exports.len();
        let (ready, fds) = binary::create(&shared.manager, slots)?;
        let handles: Vec<BorrowedOsHandle<'_>> = fds.iter().map(borrow_os_handle).collect();
        let setup = Message::BinarySyncSetup {
            slots: slots as u32,
        };
        peer.send(&setup, &handles)?;
        peer.binary_ready = ready;
        peer.phase = Phase::AwaitSync {
            deadline: Instant::now() + shared.options.handshake_timeout,
        };
        return Ok(());
    }
    peer.phase = Phase::Active;
    tracing::info!(
        consumer = peer.id,
        pid = peer.creds.pid,
        ?sync,
        "consumer connected"
    );
    offer.latest_to(shared, peer)
}

/// Our Hello and the ring itself (`PoolSetup`, one FD per slot) in `sync` mode.
fn send_pool(shared: &Shared, peer: &Peer, ours: &Hello, sync: SyncMode) -> Result<()> {
    peer.send(&Message::Hello(ours.clone()), &[])?;
    let setup = Message::PoolSetup {
        generation: 1,
        sync,
        slots: shared.exports.iter().map(|e| e.info.clone()).collect(),
        ordered: shared.options.ordered_slots,
    };
    let pool_fds: Vec<BorrowedOsHandle<'_>> = shared
        .exports
        .iter()
        .map(|e| borrow_os_handle(e.os_handle()))
        .collect();
    peer.send(&setup, &pool_fds)
}

/// Whether the consumer said it imports DMA-BUFs (`DmaBufImport`) and every slot of the ring
/// is a DMA-BUF laid out LINEAR or by a modifier it listed: then another driver can share the
/// ring's memory itself.
fn dma_buf_importable(shared: &Shared, peer: &Peer) -> bool {
    let Some(modifiers) = &peer.dma_buf_import else {
        return false;
    };
    shared.exports.iter().all(|e| {
        e.info.handle_type == ExternalHandleType::DmaBuf
            && matches!(e.info.layout, MemoryLayout::DrmModifier(m)
                if m == DRM_FORMAT_MOD_LINEAR || modifiers.contains(&m))
    })
}

/// Timeline mode: the consumer's release timeline arrives; it becomes active. (Only trusted
/// consumers get here: the producer imports nothing from any other.)
pub(super) fn on_sync_setup(
    shared: &Shared,
    peer: &mut Peer,
    fds: Vec<OwnedOsHandle>,
    offer: &Offer,
) -> Result<()> {
    let fd = fds
        .into_iter()
        .next()
        .ok_or_else(|| Error::Protocol("SyncSetup without its FD".into()))?;
    // The peer's FD must look like the semaphores this driver exports (ours) before the
    // driver is asked to import it: some drivers break on garbage (SECURITY.md).
    #[cfg(unix)]
    if let Some(ready) = &shared.ready {
        let own = ready.export()?;
        crate::ipc::transport::fd_passing::check_fd_like(
            std::os::fd::AsFd::as_fd(&fd),
            std::os::fd::AsFd::as_fd(&own),
            "a timeline semaphore",
        )?;
    }
    let released = SharedTimelineSemaphore::import(&shared.manager, fd)?;
    peer.released = Some((Arc::new(released), 0));
    peer.phase = Phase::Active;
    tracing::info!(
        consumer = peer.id,
        pid = peer.creds.pid,
        "consumer connected (timeline sync)"
    );
    offer.latest_to(shared, peer)
}

/// Binary mode: the consumer's "released" semaphores arrive; it becomes active. (Only trusted
/// consumers get here.)
pub(super) fn on_binary_sync_setup(
    shared: &Shared,
    peer: &mut Peer,
    fds: Vec<OwnedOsHandle>,
    offer: &Offer,
) -> Result<()> {
    let released = binary::import(&shared.manager, fds, shared.exports.len())?;
    shared.relay()?;
    let ready = std::mem::take(&mut peer.binary_ready);
    peer.binary = Some(ProducerLink::new(&shared.manager, ready, released)?);
    peer.phase = Phase::Active;
    tracing::info!(
        consumer = peer.id,
        pid = peer.creds.pid,
        "consumer connected (binary-semaphore sync)"
    );
    offer.latest_to(shared, peer)
}
