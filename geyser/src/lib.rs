//! Geyser: zero-copy GPU texture sharing between Vulkan contexts, between processes and between
//! APIs, with the GPU synchronization that makes it safe.
//!
//! - [`common`]: formats, descriptors, usages, handles, errors and the two traits below.
//! - [`vulkan`] (feature `vulkan`): the ash backend: exportable images with dedicated external
//!   memory (opaque FD), import into other `VkDevice`s, capability queries.
//! - [`ipc`] (feature `ipc`; Linux/Android and Windows): producer/consumer endpoints that move
//!   textures between processes (Unix sockets with SCM_RIGHTS; on Windows a named pipe with
//!   handles duplicated into the peer), with a ring of frames and GPU (timeline) or
//!   host-synchronized handoff.
//! - `cuda` (feature `cuda`, Linux): shared textures, linear frames and timeline semaphores
//!   imported into CUDA (driver loaded at run time), CUDA consumers and producers, peer copies
//!   between GPUs.
//! - [`gl`] (feature `gl`, Linux): OpenGL through EGL: shared textures as GL textures
//!   (memory objects, DMA-BUF EGLImages), GL semaphores, GL producers and consumers.
//! - [`metal`] (feature `metal`, macOS/iOS): IOSurface-backed `MTLTexture`s and
//!   `MTLSharedEvent`, and on macOS a mach-message transport that moves IOSurface ports
//!   between processes; its platform-independent parts ([`metal::plan`],
//!   [`metal::mach_wire`]) are always built.
//!
//! Windows and Apple code compiles in CI for those targets (`scripts/check-targets`) and has
//! never run on real hardware; see the README's "Platforms" section.
//!
//! ```no_run
//! use geyser::{
//!     vulkan::VulkanTextureShareManager,
//!     common::{TextureDescriptor, TextureFormat, TextureUsage},
//!     TextureShareManager,
//! };
//! # fn main() -> geyser::Result<()> {
//! let manager = VulkanTextureShareManager::create_default()?;
//! let desc = TextureDescriptor {
//!     width: 1920, height: 1080,
//!     format: TextureFormat::Rgba8Unorm,
//!     usage: vec![TextureUsage::RenderAttachment, TextureUsage::TextureBinding],
//!     label: Some("MyTexture".to_string()),
//! };
//! let texture = manager.create_shareable_texture(&desc)?;
//! let handle = manager.export_texture(texture.as_ref())?;
//! let imported = manager.import_texture(handle, &desc)?;
//! manager.release_texture_handle(handle)?;
//! # drop(imported); Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod common;
#[cfg(all(feature = "cuda", target_os = "linux"))]
pub mod cuda;
#[cfg(all(feature = "gl", any(target_os = "linux", target_os = "android")))]
pub mod gl;
#[cfg(all(
    feature = "ipc",
    any(target_os = "linux", target_os = "android", windows)
))]
pub mod ipc;
pub mod metal;
#[cfg(feature = "vulkan")]
pub mod vulkan;
#[cfg(feature = "webgpu")]
pub mod webgpu;

pub use common::{Error, Result};

use common::{ApiTextureHandle, Backend, TextureDescriptor, TextureExtent};

/// A texture whose memory can be shared. Cheap to hold: backends reference-count the GPU
/// objects, which are destroyed once, when the last holder drops them.
pub trait SharedTexture: Send + Sync + std::fmt::Debug {
    /// The descriptor it was created or imported with.
    fn descriptor(&self) -> &TextureDescriptor;
    /// Its dimensions beyond width and height.
    fn extent(&self) -> &TextureExtent;
    /// The API it belongs to.
    fn backend(&self) -> Backend;
    /// Whether this object was imported (aliases another's memory) rather than created.
    fn is_imported(&self) -> bool;
    /// For downcasting to the backend's texture type.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Creates, exports and imports shareable textures for one device context.
pub trait TextureShareManager: Send + Sync {
    /// Creates a texture whose memory can be exported. Fails with
    /// [`Error::InvalidDescriptor`] before any GPU call when the descriptor is bad, and with
    /// [`Error::Unsupported`] when the device cannot export this format/usage combination.
    fn create_shareable_texture(&self, desc: &TextureDescriptor) -> Result<Box<dyn SharedTexture>>;

    /// Exports a texture made by this manager; returns a token for the export, which holds an
    /// OS handle until [`Self::release_texture_handle`].
    fn export_texture(&self, texture: &dyn SharedTexture) -> Result<ApiTextureHandle>;

    /// Imports an export of this manager's table as a new texture object that aliases the same
    /// memory. `desc` must match the exporter's ([`Error::DescriptorMismatch`] otherwise).
    fn import_texture(
        &self,
        handle: ApiTextureHandle,
        desc: &TextureDescriptor,
    ) -> Result<Box<dyn SharedTexture>>;

    /// Closes an export's OS handle. Textures imported from it stay valid. Unknown or already
    /// released handles give [`Error::UnknownHandle`].
    fn release_texture_handle(&self, handle: ApiTextureHandle) -> Result<()>;
}
