//! Types every backend shares: formats, usages, descriptors, packed layouts, handles, errors.
//! No GPU code.

mod descriptor;
mod dmabuf;
mod error;
mod format;
mod handle;
mod layout;
mod name;
mod usage;

pub use descriptor::{TextureDescriptor, TextureDimension, TextureExtent, MAX_DIMENSION};
pub use dmabuf::{
    check_linear_plane, modifier_name, negotiate_modifiers, plane_formats, DrmFourcc, DrmModifier,
    PlaneFormat, PlaneLayout, DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR, MAX_PLANES,
};
#[cfg(unix)]
pub use dmabuf::{DmaBuf, DmaBufBuilder, DmaBufPlane, WeakDmaBuf};
pub use error::{Error, RejectReason, Result};
pub use format::{
    Compression, ElementType, FormatAspect, FormatInfo, GlFormat, TexelElements, TextureFormat,
    FORMAT_TABLE,
};
#[cfg(any(unix, windows))]
pub use handle::{borrow_os_handle, BorrowedOsHandle, OwnedOsHandle};
pub use handle::{
    parse_uuid, uuid_string, ApiTextureHandle, ExportInfo, ExportedTexture, ExternalHandleType,
    MemoryLayout,
};
pub use layout::{Subresource, TextureLayout, REGION_ALIGN};
pub use name::{check_endpoint_name, MAX_ENDPOINT_NAME};
pub use usage::{
    usage_bits, usage_column, usages_from_bits, usages_from_bits_checked, TextureUsage, UsageInfo,
    USAGE_TABLE,
};

use serde::{Deserialize, Serialize};

/// One aspect of a texture, for copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextureAspect {
    /// The colour texels.
    Color,
    /// The depth component.
    Depth,
    /// The stencil component.
    Stencil,
}

impl TextureAspect {
    /// The aspects a format has, in copy order.
    pub fn all_of(format: TextureFormat) -> &'static [TextureAspect] {
        match format.aspect() {
            FormatAspect::Color => &[TextureAspect::Color],
            FormatAspect::Depth => &[TextureAspect::Depth],
            FormatAspect::Stencil => &[TextureAspect::Stencil],
            FormatAspect::DepthStencil => &[TextureAspect::Depth, TextureAspect::Stencil],
        }
    }
}

/// Which API a texture object belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backend {
    /// Vulkan (ash).
    Vulkan,
    /// wgpu / WebGPU.
    WebGpu,
    /// Metal.
    Metal,
}

/// `texture` as the backend texture type `T`, or [`Error::WrongTexture`] saying whose texture
/// it is instead; `expected` is `T`'s backend. What every manager's `export_texture` does
/// first.
#[cfg(any(feature = "vulkan", all(feature = "metal", target_vendor = "apple")))]
pub(crate) fn downcast<T: crate::SharedTexture + 'static>(
    texture: &dyn crate::SharedTexture,
    expected: Backend,
) -> Result<&T> {
    texture.as_any().downcast_ref::<T>().ok_or_else(|| {
        Error::WrongTexture(format!(
            "{:?} texture given to a {expected:?} manager; export it with its own manager and import the export",
            texture.backend()
        ))
    })
}
