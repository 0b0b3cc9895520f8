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
}
