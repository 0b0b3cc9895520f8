//! How a shared texture may be used. Both sides of a share must create their image with the
//! same usages, so usages travel with the texture as a compact bit set.

use serde::{Deserialize, Serialize};

/// One way a texture can be used (WebGPU's names; each backend maps them to its own flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TextureUsage {
    /// Source of copies (`TRANSFER_SRC`).
    CopySrc,
    /// Destination of copies (`TRANSFER_DST`).
    CopyDst,
    /// Sampled in shaders (`SAMPLED`).
    TextureBinding,
    /// Read/written as a storage image (`STORAGE`).
    StorageBinding,
    /// Render target: colour or depth/stencil attachment depending on the format.
    RenderAttachment,
}

impl TextureUsage {
    /// Every usage, in bit order.
    pub const ALL: [TextureUsage; 5] = [
        Self::CopySrc,
        Self::CopyDst,
        Self::TextureBinding,
        Self::StorageBinding,
        Self::RenderAttachment,
    ];

    /// This usage's bit in [`usage_bits`].
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// One row of [`USAGE_TABLE`]: a usage and what each API calls it, as raw flag values (the
/// backends read their column; nothing else maps usages per API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageInfo {
    /// The usage.
    pub usage: TextureUsage,
    /// `VkImageUsageFlags` for colour formats.
    pub vk: u32,
    /// `VkImageUsageFlags` for depth/stencil formats.
    pub vk_depth_stencil: u32,
    /// `wgpu::TextureUsages` bits.
    pub wgpu: u32,
    /// `MTLTextureUsage` bits (copies need none in Metal).
    pub metal: u64,
}

/// Raw `MTLTextureUsage` bits (`<Metal/MTLTexture.h>`), so that the table needs no Metal
/// bindings; on Apple targets a unit test of the Metal backend checks them against
/// objc2-metal's.
mod mtl_raw {
    /// `MTLTextureUsageShaderRead`.
    pub const SHADER_READ: u64 = 1;
    /// `MTLTextureUsageShaderWrite`.
    pub const SHADER_WRITE: u64 = 2;
    /// `MTLTextureUsageRenderTarget`.
    pub const RENDER_TARGET: u64 = 4;
}

/// Every usage, in [`TextureUsage::ALL`] order (row `u as usize` is usage `u`).
pub const USAGE_TABLE: [UsageInfo; 5] = [
    // TRANSFER_SRC; COPY_SRC.
    UsageInfo {
        usage: TextureUsage::CopySrc,
        vk: 0x1,
        vk_depth_stencil: 0x1,
        wgpu: 1 << 0,
        metal: 0,
    },
    // TRANSFER_DST; COPY_DST.
    UsageInfo {
        usage: TextureUsage::CopyDst,
        vk: 0x2,
        vk_depth_stencil: 0x2,
        wgpu: 1 << 1,
        metal: 0,
    },
    // SAMPLED; TEXTURE_BINDING; ShaderRead.
    UsageInfo {
        usage: TextureUsage::TextureBinding,
        vk: 0x4,
        vk_depth_stencil: 0x4,
        wgpu: 1 << 2,
        metal: mtl_raw::SHADER_READ,
    },
    // STORAGE; STORAGE_BINDING; ShaderRead | ShaderWrite.
    UsageInfo {
        usage: TextureUsage::StorageBinding,
        vk: 0x8,
        vk_depth_stencil: 0x8,
        wgpu: 1 << 3,
        metal: mtl_raw::SHADER_READ | mtl_raw::SHADER_WRITE,
    },
    // COLOR_ATTACHMENT or DEPTH_STENCIL_ATTACHMENT; RENDER_ATTACHMENT; RenderTarget.
    UsageInfo {
        usage: TextureUsage::RenderAttachment,
        vk: 0x10,
        vk_depth_stencil: 0x20,
        wgpu: 1 << 4,
        metal: mtl_raw::RENDER_TARGET,
    },
];

impl TextureUsage {
    /// This usage's row of [`USAGE_TABLE`].
    pub const fn info(self) -> &'static UsageInfo {
        &USAGE_TABLE[self as usize]
    }
}

/// The union of one column of [`USAGE_TABLE`] over `usages`.
pub fn usage_column<T: std::ops::BitOr<Output = T> + Default>(
    usages: &[TextureUsage],
    column: impl Fn(&UsageInfo) -> T,
) -> T {
    usages
        .iter()
        .fold(T::default(), |acc, u| acc | column(u.info()))
}

/// A set of usages as bits (see [`TextureUsage::bit`]), order- and duplicate-insensitive.
pub fn usage_bits(usages: &[TextureUsage]) -> u32 {
    usages.iter().fold(0, |acc, u| acc | u.bit())
}

/// The usages in a bit set, in bit order. Unknown bits are ignored; use
/// [`usages_from_bits_checked`] for bits that came from a peer.
pub fn usages_from_bits(bits: u32) -> Vec<TextureUsage> {
    TextureUsage::ALL
        .into_iter()
        .filter(|u| bits & u.bit() != 0)
        .collect()
}

/// The usages in a bit set, or `None` when it has bits no usage owns.
pub fn usages_from_bits_checked(bits: u32) -> Option<Vec<TextureUsage>> {
    let known = usage_bits(&TextureUsage::ALL);
    (bits & !known == 0).then(|| usages_from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_and_ignore_order_and_duplicates() {
        let a = usage_bits(&[
            TextureUsage::CopyDst,
            TextureUsage::CopySrc,
            TextureUsage::CopyDst,
        ]);
        let b = usage_bits(&[TextureUsage::CopySrc, TextureUsage::CopyDst]);
        assert_eq!(a, b);
        assert_eq!(
            usages_from_bits(a),
            vec![TextureUsage::CopySrc, TextureUsage::CopyDst]
        );
        assert_eq!(usages_from_bits_checked(1 << 7), None);
    }

    #[test]
    fn table_rows_follow_enum_order() {
        for (i, row) in USAGE_TABLE.iter().enumerate() {
            assert_eq!(row.usage as usize, i);
            assert_eq!(TextureUsage::ALL[i], row.usage);
        }
    }
}
