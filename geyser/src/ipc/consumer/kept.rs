//! What a [`Consumer`] keeps besides what it imports into Vulkan: duplicates of the ring's and
//! the ready timeline's handles, for endpoints that import them into another API too (GL).

use std::sync::Arc;
use std::time::Instant;

use super::Consumer;
use super::ConsumerOptions;
use crate::common::{ExportInfo, ExportedTexture, OwnedOsHandle};
use crate::ipc::wire::SyncMode;
use crate::vulkan::{SharedTimelineSemaphore, VulkanTextureShareManager};
use crate::Result;

/// Handles a consumer keeps besides importing them into Vulkan.
#[derive(Debug, Default)]
pub(crate) struct KeptHandles {
    /// The ring, slot by slot.
    pub(crate) ring: Vec<ExportedTexture>,
    /// The producer's "frame ready" timeline (timeline mode).
    pub(crate) ready: Option<OwnedOsHandle>,
}

/// A `PoolSetup` as received, with the handshake's deadline.
pub(super) struct Pool {
    pub(super) sync: SyncMode,
    pub(super) infos: Vec<ExportInfo>,
    pub(super) fds: Vec<OwnedOsHandle>,
    pub(super) deadline: Instant,
}

#[cfg_attr(
    not(all(feature = "gl", any(target_os = "linux", target_os = "android"))),
    allow(dead_code)
)]
impl Consumer {
    /// [`Self::connect_with`], keeping duplicates of the handles it imports
    /// ([`Self::kept_handles`]) for an endpoint that imports them into another API too.
    pub(crate) fn connect_keeping_handles(
        name: &str,
        manager: Arc<VulkanTextureShareManager>,
        options: ConsumerOptions,
    ) -> Result<Consumer> {
        let own = manager.clone();
        Self::connect_inner(name, manager, options, &move || Ok(own.clone()), true)
    }

    /// The handles kept by [`Self::connect_keeping_handles`] (empty otherwise, and for a
    /// host-ring consumer, whose frames arrive in its own textures).
    pub(crate) fn kept_handles(&mut self) -> &mut KeptHandles {
        &mut self.kept
    }

    /// Timeline mode: our "released" timeline (exportable: we made it).
    pub(crate) fn release_timeline(&self) -> Option<&Arc<SharedTimelineSemaphore>> {
        self.timelines.as_ref().map(|(_, released)| released)
    }
}
