//! What interop layers and linear-frame consumers take from a [`Consumer`]: the linear frames'
//! handles, and duplicates of the handles it imported (for CUDA and GL, which import the same
//! memory and timelines again), and the connection that keeps those duplicates.

use std::sync::Arc;

use super::{Consumer, ConsumerOptions};
use crate::common::{ExportedTexture, OwnedOsHandle};
use crate::ipc::linear::{LinearFrames, LinearLayout};
use crate::vulkan::{SharedTimelineSemaphore, VulkanTextureShareManager};
use crate::Result;

/// Duplicates of the handles a consumer imported, for an interop layer (CUDA, GL) that imports
/// the same memory and timeline into its own API.
#[derive(Debug, Default)]
pub(crate) struct RetainedHandles {
    /// The ring's textures, in slot order.
    pub(crate) memory: Vec<ExportedTexture>,
    /// Timeline mode: the producer's "frame ready" timeline.
    pub(crate) ready: Option<OwnedOsHandle>,
}

/// What a connection brings besides the ring.
pub(super) struct Extras {
    pub(super) linear: Option<LinearFrames>,
    pub(super) retained: Option<RetainedHandles>,
}

impl Consumer {
    /// [`Self::connect_with`], keeping a duplicate of every handle it imports
    /// ([`Self::take_retained`]) for an interop layer that imports them again.
    #[cfg_attr(
        not(any(
            all(feature = "cuda", target_os = "linux"),
            all(feature = "gl", any(target_os = "linux", target_os = "android"))
        )),
        allow(dead_code)
    )]
    pub(crate) fn connect_retaining(
        name: &str,
        manager: Arc<VulkanTextureShareManager>,
        options: ConsumerOptions,
    ) -> Result<Consumer> {
        let own = manager.clone();
        Self::connect_impl(name, manager, options, &move || Ok(own.clone()), true)
    }

    /// Where linear frames lie, when they were asked for
    /// ([`FrameLayout::Linear`](crate::ipc::FrameLayout::Linear)).
    pub fn linear_layout(&self) -> Option<LinearLayout> {
        self.linear_layout
    }

    /// The linear frames' buffer and timeline handles, once (import them into the API that
    /// reads them); `None` without linear frames or when already taken.
    pub fn take_linear_frames(&mut self) -> Option<LinearFrames> {
        self.linear.take()
    }

    /// The handle duplicates kept by [`Self::connect_retaining`], once.
    #[cfg_attr(
        not(any(
            all(feature = "cuda", target_os = "linux"),
            all(feature = "gl", any(target_os = "linux", target_os = "android"))
        )),
        allow(dead_code)
    )]
    pub(crate) fn take_retained(&mut self) -> Option<RetainedHandles> {
        self.retained.take()
    }

    /// Timeline mode: our "released" timeline (the producer waits for its values).
    #[cfg_attr(
        not(any(
            all(feature = "cuda", target_os = "linux"),
            all(feature = "gl", any(target_os = "linux", target_os = "android"))
        )),
        allow(dead_code)
    )]
    pub(crate) fn release_timeline(&self) -> Option<&Arc<SharedTimelineSemaphore>> {
        self.timelines.as_ref().map(|(_, released)| released)
    }
}
