//! [`TextureLayout`]: where every subresource of a texture (each aspect, each mip level, all
//! array layers or depth slices) sits when all its texels are packed into one buffer. Both
//! sides of a host ring, the Vulkan copy helpers and tools that read whole textures compute it
//! the same way from the descriptor, so bytes written by one are read correctly by the other.

use super::{TextureAspect, TextureDescriptor, TextureDimension, TextureExtent};

/// Every region starts at a multiple of this many bytes: what Vulkan asks of buffer offsets in
/// image copies (a multiple of 4 for depth/stencil, of the texel or block size otherwise; every
/// table format's is a power of two up to 16).
pub const REGION_ALIGN: u64 = 16;

/// One aspect of one mip level, all layers (2D, cube) or all depth slices (3D), tightly
/// packed: rows of blocks, then the next row, then the next layer or slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// Which aspect.
    pub aspect: TextureAspect,
    /// Mip level.
    pub mip: u32,
    /// Byte offset of its first texel in the packed buffer (a multiple of [`REGION_ALIGN`]).
    pub offset: u64,
    /// Width of the level in texels.
    pub width: u32,
    /// Height of the level in texels.
    pub height: u32,
    /// Depth of the level (3D textures; 1 otherwise).
    pub depth: u32,
    /// Array layers (2D and cube textures; 1 for 3D).
    pub layers: u32,
    /// Bytes of one row of blocks.
    pub row_bytes: u64,
    /// Bytes of one layer or depth slice.
    pub slice_bytes: u64,
    /// Bytes of the whole region.
    pub bytes: u64,
}

impl Subresource {
    /// Layers or depth slices, whichever the texture has.
    pub fn slices(&self) -> u32 {
        self.layers * self.depth
    }

    /// The byte range of the region in the packed buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset as usize..(self.offset + self.bytes) as usize
    }
}

/// The packed layout of a texture's subresources: aspects in [`TextureAspect::all_of`] order,
/// each with its mip levels from 0 up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextureLayout {
    regions: Vec<Subresource>,
    size: u64,
}

impl TextureLayout {
    /// The layout of every aspect, mip level and layer of `desc` with `extent`.
    pub fn new(desc: &TextureDescriptor, extent: &TextureExtent) -> Self {
        Self::with_aspects(desc, extent, TextureAspect::all_of(desc.format))
    }

    /// The layout of the given aspects only (each must be one of the format's).
    pub fn with_aspects(
        desc: &TextureDescriptor,
        extent: &TextureExtent,
        aspects: &[TextureAspect],
    ) -> Self {
        let mut regions = Vec::with_capacity(aspects.len() * extent.mip_level_count as usize);
        let mut offset = 0u64;
        for &aspect in aspects {
            let bytes_per_block = u64::from(desc.format.aspect_copy_bytes(aspect));
            for mip in 0..extent.mip_level_count {
                let (width, height) = ((desc.width >> mip).max(1), (desc.height >> mip).max(1));
                let (depth, layers) = match extent.dimension {
                    TextureDimension::D3 => ((extent.depth_or_array_layers >> mip).max(1), 1),
                    TextureDimension::D2 | TextureDimension::Cube => {
                        (1, extent.depth_or_array_layers)
                    }
                };
                let (bx, by) = desc.format.blocks(width, height);
                let row_bytes = u64::from(bx) * bytes_per_block;
                let slice_bytes = row_bytes * u64::from(by);
                let bytes = slice_bytes * u64::from(depth) * u64::from(layers);
                regions.push(Subresource {
                    aspect,
                    mip,
                    offset,
                    width,
                    height,
                    depth,
                    layers,
                    row_bytes,
                    slice_bytes,
                    bytes,
                });
                offset = (offset + bytes).div_ceil(REGION_ALIGN) * REGION_ALIGN;
            }
        }
        Self {
            regions,
            size: offset,
        }
    }

    /// The regions, in buffer order.
    pub fn regions(&self) -> &[Subresource] {
        &self.regions
    }

    /// Bytes of the whole packed texture (the end of the last region, aligned).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The region of one aspect and mip level.
    pub fn find(&self, aspect: TextureAspect, mip: u32) -> Option<&Subresource> {
        self.regions
            .iter()
            .find(|r| r.aspect == aspect && r.mip == mip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{TextureFormat, TextureUsage};

    fn desc(w: u32, h: u32, f: TextureFormat) -> TextureDescriptor {
        TextureDescriptor::new(w, h, f, &[TextureUsage::CopySrc])
    }

    #[test]
    fn a_plain_texture_is_one_tight_region() {
        let d = desc(61, 37, TextureFormat::Rgba8Unorm);
        let l = TextureLayout::new(&d, &TextureExtent::default());
        assert_eq!(l.regions().len(), 1);
        assert_eq!(l.regions()[0].bytes, 61 * 37 * 4);
        assert_eq!(l.regions()[0].bytes, d.tight_size());
    }

    #[test]
    fn mips_halve_and_regions_are_aligned() {
        let d = desc(16, 8, TextureFormat::R8Unorm);
        let e = TextureExtent {
            depth_or_array_layers: 6,
            mip_level_count: 5,
            ..Default::default()
        };
        let l = TextureLayout::new(&d, &e);
        let sizes: Vec<_> = l.regions().iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(sizes, [(16, 8), (8, 4), (4, 2), (2, 1), (1, 1)]);
        assert!(l.regions().iter().all(|r| r.offset % REGION_ALIGN == 0));
        assert_eq!(l.regions()[1].bytes, 8 * 4 * 6);
        assert_eq!(l.regions()[4].offset, 768 + 192 + 48 + 16);
    }

    #[test]
    fn a_3d_texture_halves_its_depth_too() {
        let d = desc(8, 8, TextureFormat::Rgba8Unorm);
        let e = TextureExtent {
            dimension: TextureDimension::D3,
            depth_or_array_layers: 4,
            mip_level_count: 3,
            ..Default::default()
        };
        let l = TextureLayout::new(&d, &e);
        let depths: Vec<_> = l.regions().iter().map(|r| (r.depth, r.layers)).collect();
        assert_eq!(depths, [(4, 1), (2, 1), (1, 1)]);
    }

    #[test]
    fn compressed_levels_round_up_to_blocks() {
        let d = desc(10, 6, TextureFormat::Bc1RgbaUnorm);
        let e = TextureExtent {
            mip_level_count: 4,
            ..Default::default()
        };
        let l = TextureLayout::new(&d, &e);
        // 10x6 -> 3x2 blocks, 5x3 -> 2x1, 2x1 -> 1x1, 1x1 -> 1x1; 8 bytes each.
        let bytes: Vec<_> = l.regions().iter().map(|r| r.bytes).collect();
        assert_eq!(bytes, [48, 16, 8, 8]);
    }

    #[test]
    fn depth_stencil_has_a_region_per_aspect() {
        let d = desc(4, 4, TextureFormat::Depth32FloatStencil8);
        let l = TextureLayout::new(&d, &TextureExtent::default());
        assert_eq!(l.regions().len(), 2);
        assert_eq!(l.regions()[0].bytes, 64);
        assert_eq!(l.regions()[1].aspect, TextureAspect::Stencil);
        assert_eq!(l.regions()[1].bytes, 16);
        assert_eq!(l.size(), 80);
    }
}
