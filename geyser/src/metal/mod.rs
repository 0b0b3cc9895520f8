//! Metal backend (macOS/iOS, feature `metal`): textures whose memory is an IOSurface, shared
//! within a process (a new `MTLTexture` on the same surface) and across processes (a mach port
//! for the surface), with `MTLSharedEvent` as the shared fence of the synchronization model.
//!
//! - `MetalTextureShareManager` / `MetalTexture`: create, export and import IOSurface-backed
//!   textures, in-process (`TextureShareManager`) and as a mach port
//!   (`export_mach_port` / `import_mach_port`, `IOSurfaceCreateMachPort` /
//!   `IOSurfaceLookupFromMachPort`).
//! - `MetalSharedEvent`: `MTLSharedEvent` with host signal/wait and
//!   `encode_wait`/`encode_signal` on command buffers: a GPU timeline within a process. Across
//!   processes the handoff is host-synchronized (see the event's docs).
//! - `mach` (macOS only): a mach-message transport that moves those ports between processes
//!   of one user: `MachServer` (a bootstrap service `geyser.<name>`) and `MachConnection`.
//!   [`mach_wire`] is its message layout and receive checks, built and tested everywhere.
//! - [`plan`]: what an IOSurface-backed texture needs, decided without Metal.
//!
//! Compiles in CI for `aarch64-apple-darwin` and `aarch64-apple-ios`
//! (`scripts/check-targets`); **it has never run on Apple hardware**. The examples
//! `metal_to_metal` and `metal_ipc` are the first things to run on a Mac. On other platforms
//! only [`plan`] and [`mach_wire`] exist.
//!
//! Not implemented yet: `MTLSharedEvent` across processes (`MTLSharedEventHandle` over XPC;
//! the mach transport does not speak XPC), a Geyser producer/consumer (ring, pool setup) on
//! top of the mach transport, and Vulkan↔Metal through MoltenVK's `VK_EXT_metal_objects`
//! (export an `IOSurfaceRef` or `MTLSharedEvent` from a `VkDeviceMemory`/`VkSemaphore`, import
//! one into Vulkan).

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
