//! A consumer's handshake: Hello, then the ring the producer sends (`PoolSetup`,
//! `HostRingSetup` or `PeerRingSetup`), its import and the timeline or binary-semaphore setup.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::interop::{Extras, RetainedHandles};
use super::wake::Wake;
use super::{dmabuf, Consumer, ConsumerCounters, ConsumerOptions, Timelines};
use crate::common::{borrow_os_handle, ExportedTexture, OwnedOsHandle, TextureDescriptor};
use crate::common::{ExportInfo, TextureUsage};
use crate::ipc::binary::{self, ConsumerLink};
use crate::ipc::host_ring::HostRing;
use crate::ipc::linear::{self, FrameLayout};
use crate::ipc::transport::Connection;
use crate::ipc::wire::negotiate::{supported_sync_modes, unsupported_sync};
use crate::ipc::wire::{Hello, Message, Role, SyncMode, MAX_SLOTS};
use crate::vulkan::TransferPath;
use crate::vulkan::{SharedTimelineSemaphore, VulkanTexture, VulkanTextureShareManager};
use crate::{Error, Result};

/// What importing the pool gives: the ring, the timelines and, in binary mode, the semaphores.
type Pool = (Vec<VulkanTexture>, Option<Timelines>, Option<ConsumerLink>);

/// Unique ids of consumers in this process (to tell whose a [`super::DetachedFrame`] is).
static NEXT_CONSUMER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Consumer {
    /// The handshake: Hello (with the host-ring, linear and DMA-BUF requests before it), then
    /// the ring the producer sends (`PeerRingSetup`, `PoolSetup` or `HostRingSetup`). `retain`:
    /// an interop layer (CUDA, GL) keeps duplicates of the handles.
    pub(super) fn connect_impl(
        name: &str,
        manager: Arc<VulkanTextureShareManager>,
        options: ConsumerOptions,
        copier: &dyn Fn() -> Result<Arc<VulkanTextureShareManager>>,
        retain: bool,
    ) -> Result<Consumer> {
        let mut conn = Connection::connect(name)?;
        let producer = conn.check_peer(&options.peer_policy)?;
        let id = manager.identity();
        let mut modes = supported_sync_modes(&manager)?;
        if retain {
            // An interop layer (CUDA, GL) imports the ready and release timelines itself; binary
            // mode relays into local timelines it could not import, so it is not offered.
            modes.retain(|m| *m != SyncMode::BinarySemaphore);
            if options.sync == Some(SyncMode::BinarySemaphore) {
                return Err(Error::unsupported(
                    "binary-semaphore sync for an interop consumer",
                    "CUDA and GL consumers import the shared timelines; use timeline or host sync",
                ));
            }
        }
        let offer = match options.sync {
            Some(forced) if !modes.contains(&forced) => {
                return Err(unsupported_sync(forced, &manager))
            }
            Some(forced) => vec![forced],
            None => modes,
        };
        let deadline = Instant::now() + options.handshake_timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        let reported = dmabuf::reported_identity(id);
        let hello = Hello::new(
            Role::Consumer,
            reported.0,
            reported.1,
            offer,
            options.name.clone(),
        );
        let linear_wanted = options.layout == FrameLayout::Linear;
        let sent = if options.host_ring {
            conn.send(&Message::HostRingRequest, &[])
        } else {
            Ok(())
        }
        .and_then(|()| {
            if linear_wanted {
                conn.send(&Message::LinearRequest, &[])
            } else {
                Ok(())
            }
        })
        .and_then(|()| match dmabuf::import_offer(&manager) {
            Some(m) if !options.host_ring => conn.send(&m, &[]),
            _ => Ok(()),
        })
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
        let mut extras = Extras {
            linear: None,
            retained: retain.then(RetainedHandles::default),
        };
        let (mut peer_ring, mut dma_buf) = (false, false);
        let (sync, (textures, timelines, binary), host_ring, ordered) =
            match conn.recv(Some(left()))? {
                (Message::PeerRingSetup { slots, .. }, fds) => {
                    // A ring on our own GPU that the producer copies frames into: imported
                    // like its own ring, host-synchronized.
                    peer_ring = true;
                    let pool = Self::import_pool(
                        &manager,
                        &mut conn,
                        (SyncMode::Host, slots, fds),
                        deadline,
                        false,
                        &mut extras,
                    )?;
                    (SyncMode::Host, pool, None, false)
                }
                (
                    Message::PoolSetup {
                        sync,
                        slots,
                        ordered,
                        ..
                    },
                    fds,
                ) => {
                    dma_buf = dmabuf::across_drivers(&slots, &hello, reported);
                    let pool = Self::import_pool(
                        &manager,
                        &mut conn,
                        (sync, slots, fds),
                        deadline,
                        linear_wanted,
                        &mut extras,
                    )?;
                    (sync, pool, None, ordered)
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
                    (SyncMode::Host, (textures, None, None), Some(ring), false)
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
        let path = match &host_ring {
            _ if peer_ring => TransferPath::Peer,
            _ if dma_buf => TransferPath::DmaBuf,
            Some(ring) => ring.path(),
            None => TransferPath::Direct,
        };
        tracing::info!(producer = %hello.name, pid = producer.pid, slots = textures.len(), ?sync, %path, "connected");
        Ok(Consumer {
            id: NEXT_CONSUMER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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
            binary,
            release_value: 0,
            host_ring,
            ordered,
            expected: None,
            wake: Wake::new(options.spin),
            ended: false,
            linear_layout: extras.linear.as_ref().map(|l| l.layout),
            linear: extras.linear,
            retained: extras.retained,
            peer_ring,
            dma_buf,
        })
    }

    /// Imports the producer's ring (`PoolSetup`), receives the linear frames when they were
    /// asked for, and exchanges the timelines (timeline mode) or the per-slot semaphores
    /// (binary mode).
    fn import_pool(
        manager: &Arc<VulkanTextureShareManager>,
        conn: &mut Connection,
        (sync, infos, fds): (SyncMode, Vec<ExportInfo>, Vec<OwnedOsHandle>),
        deadline: Instant,
        linear_wanted: bool,
        extras: &mut Extras,
    ) -> Result<Pool> {
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
        if linear_wanted {
            extras.linear = Some(linear::receive_setup(conn, left(), &infos)?);
        }
        let mut textures = Vec::with_capacity(infos.len());
        for (info, fd) in infos.into_iter().zip(fds) {
            let exported = ExportedTexture::new(info, fd);
            if let Some(retained) = extras.retained.as_mut() {
                retained.memory.push(exported.try_clone()?);
            }
            // Import checks device/driver UUIDs, sizes and memory types; the FD is consumed.
            textures.push(manager.import(exported)?);
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
                    if let Some(retained) = extras.retained.as_mut() {
                        retained.ready = Some(fd.try_clone()?);
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
        if sync == SyncMode::BinarySemaphore {
            let slots = textures.len();
            let ready = match conn.recv(Some(left()))? {
                (Message::BinarySyncSetup { slots: n }, fds) if n as usize == slots => {
                    binary::import(manager, fds, slots)?
                }
                (other, _) => {
                    return Err(Error::Protocol(format!(
                        "expected BinarySyncSetup for {slots} slots, got {}",
                        other.kind()
                    )))
                }
            };
            let (released, fds) = binary::create(manager, slots)?;
            let handles: Vec<_> = fds.iter().map(borrow_os_handle).collect();
            let setup = Message::BinarySyncSetup {
                slots: slots as u32,
            };
            conn.send(&setup, &handles)?;
            let local = (
                Arc::new(SharedTimelineSemaphore::local(manager, 0)?),
                Arc::new(SharedTimelineSemaphore::local(manager, 0)?),
            );
            let link = ConsumerLink::new(manager, ready, released)?;
            return Ok((textures, Some(local), Some(link)));
        }
        Ok((textures, timelines, None))
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
