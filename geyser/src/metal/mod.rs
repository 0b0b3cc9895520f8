//! Metal backend (macOS/iOS, feature `metal`): textures whose memory is an IOSurface, shared
//! within a process (a new `MTLTexture` on the same surface) and across processes (a mach port
//! for the surface), with `MTLSharedEvent` as the shared fence of the synchronization model.
//!
//! Compiles in CI for `aarch64-apple-darwin` and `aarch64-apple-ios`
//! (`scripts/check-targets`); it has never run on Apple hardware. On other platforms only
//! [`plan`] (the platform-independent part, unit-tested everywhere) exists.
//!
//! Not implemented yet: moving the mach port to another process (a mach message or XPC
//! transport), `MTLSharedEvent` across processes (`MTLSharedEventHandle` over XPC), and
//! Vulkan↔Metal through MoltenVK's `VK_EXT_metal_objects` (export an `IOSurfaceRef` or
//! `MTLSharedEvent` from a `VkDeviceMemory`/`VkSemaphore`, import one into Vulkan).

pub mod mach_wire;
pub mod plan;

#[cfg(all(feature = "metal", target_vendor = "apple"))]
mod event;
#[cfg(all(feature = "metal", target_os = "macos"))]
pub mod mach;
#[cfg(all(feature = "metal", target_vendor = "apple"))]
mod manager;
#[cfg(all(feature = "metal", target_vendor = "apple"))]
mod port;

#[cfg(all(feature = "metal", target_vendor = "apple"))]
pub use event::MetalSharedEvent;
#[cfg(all(feature = "metal", target_vendor = "apple"))]
pub use manager::{MetalTexture, MetalTextureShareManager};
#[cfg(all(feature = "metal", target_vendor = "apple"))]
pub use port::OwnedMachPort;
