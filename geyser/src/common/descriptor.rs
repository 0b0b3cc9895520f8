//! What a shared texture is: [`TextureDescriptor`] (the five fields every user writes) and
//! [`TextureExtent`] (depth, layers, mips, samples; 2D single-level by default), plus the checks
//! that run before any GPU call.

use serde::{Deserialize, Serialize};

use super::{usage_bits, TextureFormat, TextureUsage};
use crate::{Error, Result};

/// The largest width, height or depth/layer count Geyser accepts before asking the device.
/// Vulkan guarantees at least 4096 for 2D images; devices report their own limit, which the
/// backend checks too. This bound only rejects values no GPU supports.
pub const MAX_DIMENSION: u32 = 1 << 16;

/// Describes a shareable texture. Both sides of a share use the same descriptor: import checks
/// that the importer's descriptor matches the exporter's.
///
/// Dimensions beyond width/height (array layers, mips, 3D) live in [`TextureExtent`], so this
/// struct literal stays exactly as users write it:
///
/// ```
/// use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
/// let desc = TextureDescriptor {
///     width: 1920, height: 1080,
///     format: TextureFormat::Rgba8Unorm,
///     usage: vec![TextureUsage::RenderAttachment, TextureUsage::TextureBinding],
///     label: Some("MyTexture".to_string()),
/// };
/// assert!(desc.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextureDescriptor {
    /// Width in texels (1..=[`MAX_DIMENSION`] and the device's limit).
    pub width: u32,
    /// Height in texels (1..=[`MAX_DIMENSION`] and the device's limit).
    pub height: u32,
    /// Texel format.
    pub format: TextureFormat,
    /// Usages; at least one. Order and duplicates do not matter.
    pub usage: Vec<TextureUsage>,
    /// Debug label (Vulkan object name, log messages). Not compared on import.
    pub label: Option<String>,
}

/// Image dimensionality.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextureDimension {
    /// A 2D image, possibly with array layers.
    #[default]
    D2,
    /// A 3D image (`depth_or_array_layers` is its depth).
    D3,
    /// A cube map (`depth_or_array_layers` is a multiple of 6).
    Cube,
}

/// The dimensions of a texture beyond width and height. `Default` is a plain 2D texture with
/// one layer, one mip level and one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TextureExtent {
    /// 2D, 3D or cube.
    pub dimension: TextureDimension,
    /// Depth of a 3D texture, or number of array layers otherwise.
    pub depth_or_array_layers: u32,
    /// Mip levels, 1..=floor(log2(max dimension))+1.
    pub mip_level_count: u32,
    /// Samples per texel: 1, 2, 4, 8, 16, 32 or 64.
    pub sample_count: u32,
}

impl Default for TextureExtent {
    fn default() -> Self {
        Self {
            dimension: TextureDimension::D2,
            depth_or_array_layers: 1,
            mip_level_count: 1,
            sample_count: 1,
        }
    }
}

impl TextureDescriptor {
    /// A descriptor with no label.
    pub fn new(width: u32, height: u32, format: TextureFormat, usage: &[TextureUsage]) -> Self {
        Self {
            width,
            height,
            format,
            usage: usage.to_vec(),
            label: None,
        }
    }

    /// Sets the label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Whether the usages contain `usage`.
    pub fn has_usage(&self, usage: TextureUsage) -> bool {
        self.usage.contains(&usage)
    }

    /// Bytes of the top mip level of one layer when tightly packed (colour formats; whole
    /// blocks for compressed ones), or of the in-memory texels (depth/stencil formats). All
    /// levels and layers: [`super::TextureLayout`].
    pub fn tight_size(&self) -> u64 {
        let (bx, by) = self.format.blocks(self.width, self.height);
        u64::from(bx) * u64::from(by) * u64::from(self.format.block_bytes())
    }

    /// Checks what can be checked without a device: non-zero extent within
    /// [`MAX_DIMENSION`], at least one usage. Returns [`Error::InvalidDescriptor`].
    pub fn validate(&self) -> Result<()> {
        self.validate_with(&TextureExtent::default())
    }

    /// Like [`Self::validate`], also checking `extent`.
    pub fn validate_with(&self, extent: &TextureExtent) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidDescriptor {
                label: self.label.clone(),
                reason,
            })
        };
        if self.width == 0 || self.height == 0 {
            return bad(format!(
                "extent {}x{} is empty; width and height must be at least 1",
                self.width, self.height
            ));
        }
        if self.width > MAX_DIMENSION || self.height > MAX_DIMENSION {
            return bad(format!(
                "extent {}x{} exceeds {MAX_DIMENSION} texels per side, which no GPU supports",
                self.width, self.height
            ));
        }
        if self.usage.is_empty() {
            return bad("no usage given; add at least one TextureUsage".into());
        }
        let layers = extent.depth_or_array_layers;
        if layers == 0 || layers > MAX_DIMENSION {
            return bad(format!(
                "depth_or_array_layers {layers} must be in 1..={MAX_DIMENSION}"
            ));
        }
        if extent.dimension == TextureDimension::Cube {
            if !layers.is_multiple_of(6) {
                return bad(format!(
                    "a cube texture needs a multiple of 6 layers, got {layers}"
                ));
            }
            if self.width != self.height {
                return bad(format!(
                    "a cube texture must be square, got {}x{}",
                    self.width, self.height
                ));
            }
        }
        let max_side = match extent.dimension {
            TextureDimension::D3 => self.width.max(self.height).max(layers),
            _ => self.width.max(self.height),
        };
        let max_mips = 32 - max_side.leading_zeros();
        if extent.mip_level_count == 0 || extent.mip_level_count > max_mips {
            return bad(format!(
                "mip_level_count {} must be in 1..={max_mips} for a {max_side}-texel side",
                extent.mip_level_count
            ));
        }
        if !matches!(extent.sample_count, 1 | 2 | 4 | 8 | 16 | 32 | 64) {
            return bad(format!(
                "sample_count {} is not a power of two up to 64",
                extent.sample_count
            ));
        }
        if extent.sample_count > 1
            && (extent.mip_level_count > 1 || extent.dimension != TextureDimension::D2)
        {
            return bad("multisampled textures must be 2D with one mip level".into());
        }
        Ok(())
    }

    /// Compares what must be equal for an import to alias the exporter's memory correctly:
    /// extent, format and usages (the label is not compared). Returns
    /// [`Error::DescriptorMismatch`] naming the first field that differs.
    pub fn check_matches(&self, exported: &TextureDescriptor) -> Result<()> {
        let mismatch = |field: &'static str, expected: String, got: String| {
            Err(Error::DescriptorMismatch {
                field,
                expected,
                got,
            })
        };
        if (self.width, self.height) != (exported.width, exported.height) {
            return mismatch(
                "extent",
                format!("{}x{}", exported.width, exported.height),
                format!("{}x{}", self.width, self.height),
            );
        }
        if self.format != exported.format {
            return mismatch(
                "format",
                exported.format.to_string(),
                self.format.to_string(),
            );
        }
        if usage_bits(&self.usage) != usage_bits(&exported.usage) {
            return mismatch(
                "usage",
                format!("{:?}", exported.usage),
                format!("{:?}", self.usage),
            );
        }
        Ok(())
    }
}

impl TextureExtent {
    /// Compares two extents for import, like [`TextureDescriptor::check_matches`].
    pub fn check_matches(&self, exported: &TextureExtent) -> Result<()> {
        if self != exported {
            return Err(Error::DescriptorMismatch {
                field: "extent",
                expected: format!("{exported:?}"),
                got: format!("{self:?}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(w: u32, h: u32) -> TextureDescriptor {
        TextureDescriptor::new(w, h, TextureFormat::Rgba8Unorm, &[TextureUsage::CopySrc])
    }

    #[test]
    fn seed_literal_compiles_and_validates() {
        let d = TextureDescriptor {
            width: 1920,
            height: 1080,
            format: TextureFormat::Rgba8Unorm,
            usage: vec![TextureUsage::RenderAttachment, TextureUsage::TextureBinding],
            label: Some("MyTexture".to_string()),
        };
        d.validate().unwrap();
    }

    #[test]
    fn empty_and_oversized_extents_are_rejected() {
        for (w, h) in [(0, 1), (1, 0), (MAX_DIMENSION + 1, 1)] {
            let err = desc(w, h).validate().unwrap_err();
            assert!(
                matches!(err, Error::InvalidDescriptor { .. }),
                "{w}x{h}: {err}"
            );
        }
        let mut d = desc(4, 4);
        d.usage.clear();
        assert!(d.validate().is_err());
    }

    #[test]
    fn extent_limits() {
        let d = desc(256, 256);
        let mut e = TextureExtent {
            mip_level_count: 9,
            ..Default::default()
        };
        d.validate_with(&e).unwrap();
        e.mip_level_count = 10;
        assert!(d.validate_with(&e).is_err());
        let cube = TextureExtent {
            dimension: TextureDimension::Cube,
            depth_or_array_layers: 5,
            ..Default::default()
        };
        assert!(d.validate_with(&cube).is_err());
        let ms = TextureExtent {
            sample_count: 3,
            ..Default::default()
        };
        assert!(d.validate_with(&ms).is_err());
    }

    #[test]
    fn mismatch_names_the_field() {
        let a = desc(4, 4);
        let mut b = a.clone().with_label("other label is fine");
        a.check_matches(&b).unwrap();
        b.format = TextureFormat::Bgra8Unorm;
        match a.check_matches(&b) {
            Err(Error::DescriptorMismatch {
                field: "format", ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let c = desc(4, 5);
        assert!(matches!(
            a.check_matches(&c),
            Err(Error::DescriptorMismatch {
                field: "extent",
                ..
            })
        ));
    }
}
