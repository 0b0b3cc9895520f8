//! Texture shapes beyond one 2D level (arrays, cube maps, cube arrays, 3D textures, each with
//! a mip chain) and packed test data for them: every layer, face, slice and level gets its own
//! bytes, so a copy that mixes any two up is caught.

use geyser::common::{
    TextureDescriptor, TextureDimension, TextureExtent, TextureFormat, TextureLayout, TextureUsage,
};

use super::{pattern, same_texels};

/// One shape to share.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// For messages.
    pub name: &'static str,
    /// Width and height of level 0.
    pub size: (u32, u32),
    /// Dimension, layers or depth, and mips.
    pub extent: TextureExtent,
}

impl Shape {
    /// The descriptor of this shape in `format` with `usage`.
    pub fn descriptor(&self, format: TextureFormat, usage: &[TextureUsage]) -> TextureDescriptor {
        TextureDescriptor::new(self.size.0, self.size.1, format, usage)
            .with_label(format!("{}-{format}", self.name))
    }
}

const fn extent(dimension: TextureDimension, layers: u32, mips: u32) -> TextureExtent {
    TextureExtent {
        dimension,
        depth_or_array_layers: layers,
        mip_level_count: mips,
        sample_count: 1,
    }
}

/// A 2D array, a cube map, a cube array and a 3D texture, each with a full (or long) mip
/// chain; non-square and odd sizes so each level's extent is rounded.
pub const SHAPES: [Shape; 4] = [
    Shape {
        name: "array",
        size: (36, 20),
        extent: extent(TextureDimension::D2, 3, 6),
    },
    Shape {
        name: "cube",
        size: (16, 16),
        extent: extent(TextureDimension::Cube, 6, 5),
    },
    Shape {
        name: "cube-array",
        size: (8, 8),
        extent: extent(TextureDimension::Cube, 12, 4),
    },
    Shape {
        name: "3d",
        size: (20, 12),
        extent: extent(TextureDimension::D3, 5, 4),
    },
];

/// Packed data for every subresource of `desc` with `extent` (see [`TextureLayout`]); each
/// region's bytes depend on `seed`, its aspect and its level, and on the position in it (so
/// layers and slices differ too). Valid texel values for every format (depth in [0, 1]).
pub fn packed_pattern(desc: &TextureDescriptor, extent: &TextureExtent, seed: u32) -> Vec<u8> {
    let layout = TextureLayout::new(desc, extent);
    let mut out = vec![0u8; layout.size() as usize];
    for (i, r) in layout.regions().iter().enumerate() {
        let bytes = pattern(
            desc.format,
            r.aspect,
            r.bytes as usize,
            seed.wrapping_mul(131).wrapping_add(i as u32 * 7919),
        );
        out[r.range()].copy_from_slice(&bytes);
    }
    out
}

/// Compares two packed buffers region by region (masking what Vulkan leaves undefined);
/// names the first region that differs.
pub fn compare_packed(
    desc: &TextureDescriptor,
    extent: &TextureExtent,
    want: &[u8],
    got: &[u8],
) -> Result<(), String> {
    if want.len() != got.len() {
        return Err(format!("{} bytes, expected {}", got.len(), want.len()));
    }
    let layout = TextureLayout::new(desc, extent);
    for r in layout.regions() {
        if !same_texels(desc.format, r.aspect, &want[r.range()], &got[r.range()]) {
            let per_slice = r.slice_bytes as usize;
            let slice = want[r.range()]
                .chunks(per_slice)
                .zip(got[r.range()].chunks(per_slice))
                .position(|(a, b)| !same_texels(desc.format, r.aspect, a, b))
                .unwrap_or(0);
            return Err(format!(
                "{:?} level {} ({}x{}) layer/slice {slice} of {} differs",
                r.aspect,
                r.mip,
                r.width,
                r.height,
                r.slices()
            ));
        }
    }
    Ok(())
}
