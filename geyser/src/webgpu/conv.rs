//! Geyser's types in wgpu terms: the usage table's wgpu column as `wgpu::TextureUsages`, the
//! wgpu-hal uses derived from it, and sizes. The format table's wgpu column is typed already
//! ([`TextureFormat::to_wgpu`]).

use crate::common::{
    usage_column, Compression, TextureDescriptor, TextureDimension, TextureExtent, TextureFormat,
};

/// The wgpu feature a compression family needs (the format table's compression column in
/// wgpu terms).
pub(super) fn compression_feature(family: Compression) -> wgpu::Features {
    match family {
        Compression::Bc => wgpu::Features::TEXTURE_COMPRESSION_BC,
        Compression::Etc2 => wgpu::Features::TEXTURE_COMPRESSION_ETC2,
        Compression::AstcLdr => wgpu::Features::TEXTURE_COMPRESSION_ASTC,
    }
}

/// The `wgpu::TextureUsages` of a descriptor's usages (the usage table's wgpu column).
pub(super) fn usages(desc: &TextureDescriptor) -> wgpu::TextureUsages {
    wgpu::TextureUsages::from_bits_truncate(usage_column(&desc.usage, |u| u.wgpu))
}

/// The wgpu-hal uses of `usages` on a texture of `format`: a render attachment is a colour
/// target or a depth/stencil write by format, storage is read/write.
pub(super) fn hal_uses(usages: wgpu::TextureUsages, format: TextureFormat) -> wgpu::TextureUses {
    use wgpu::{TextureUsages as U, TextureUses as H};
    let attachment = if format.is_depth_stencil() {
        H::DEPTH_STENCIL_WRITE
    } else {
        H::COLOR_TARGET
    };
    [
        (U::COPY_SRC, H::COPY_SRC),
        (U::COPY_DST, H::COPY_DST),
        (U::TEXTURE_BINDING, H::RESOURCE),
        (U::STORAGE_BINDING, H::STORAGE_READ_WRITE),
        (U::RENDER_ATTACHMENT, attachment),
    ]
    .into_iter()
    .filter(|(usage, _)| usages.contains(*usage))
    .fold(H::empty(), |acc, (_, uses)| acc | uses)
}

/// The wgpu size and dimension of a descriptor with `extent` (a cube is 2D with 6 layers).
pub(super) fn size(
    desc: &TextureDescriptor,
    extent: &TextureExtent,
) -> (wgpu::Extent3d, wgpu::TextureDimension) {
    let size = wgpu::Extent3d {
        width: desc.width,
        height: desc.height,
        depth_or_array_layers: extent.depth_or_array_layers,
    };
    let dimension = match extent.dimension {
        TextureDimension::D3 => wgpu::TextureDimension::D3,
        TextureDimension::D2 | TextureDimension::Cube => wgpu::TextureDimension::D2,
    };
    (size, dimension)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::TextureUsage;

    #[test]
    fn compression_column_matches_wgpu_required_features() {
        for row in crate::common::FORMAT_TABLE {
            let Some(format) = row.wgpu else { continue };
            let need = format.required_features();
            match row.compression {
                Some(family) => assert_eq!(need, compression_feature(family), "{:?}", row.format),
                None => assert!(
                    !need.intersects(
                        wgpu::Features::TEXTURE_COMPRESSION_BC
                            | wgpu::Features::TEXTURE_COMPRESSION_ETC2
                            | wgpu::Features::TEXTURE_COMPRESSION_ASTC
                    ),
                    "{:?}",
                    row.format
                ),
            }
            let (bw, bh) = format.block_dimensions();
            assert_eq!((bw, bh), row.block_size, "{:?}", row.format);
            if row.aspect == crate::common::FormatAspect::Color {
                let bytes = format.block_copy_size(None);
                assert_eq!(bytes, Some(row.block_bytes), "{:?}", row.format);
            }
        }
    }

    #[test]
    fn usage_column_matches_wgpu() {
        use wgpu::TextureUsages as U;
        let expect = [
            (TextureUsage::CopySrc, U::COPY_SRC),
            (TextureUsage::CopyDst, U::COPY_DST),
            (TextureUsage::TextureBinding, U::TEXTURE_BINDING),
            (TextureUsage::StorageBinding, U::STORAGE_BINDING),
            (TextureUsage::RenderAttachment, U::RENDER_ATTACHMENT),
        ];
        for (u, bits) in expect {
            let desc = TextureDescriptor::new(1, 1, TextureFormat::Rgba8Unorm, &[u]);
            assert_eq!(usages(&desc), bits, "{u:?}");
        }
    }

    #[test]
    fn hal_uses_follow_the_usage_table() {
        use wgpu::TextureUses as H;
        let expect = [
            (TextureUsage::CopySrc, H::COPY_SRC, H::COPY_SRC),
            (TextureUsage::CopyDst, H::COPY_DST, H::COPY_DST),
            (TextureUsage::TextureBinding, H::RESOURCE, H::RESOURCE),
            (
                TextureUsage::StorageBinding,
                H::STORAGE_READ_WRITE,
                H::STORAGE_READ_WRITE,
            ),
            (
                TextureUsage::RenderAttachment,
                H::COLOR_TARGET,
                H::DEPTH_STENCIL_WRITE,
            ),
        ];
        for (u, colour, depth) in expect {
            for (format, want) in [
                (TextureFormat::Rgba8Unorm, colour),
                (TextureFormat::Depth24UnormStencil8, depth),
            ] {
                let desc = TextureDescriptor::new(1, 1, format, &[u]);
                assert_eq!(hal_uses(usages(&desc), format), want, "{u:?} {format:?}");
            }
        }
        let all = TextureDescriptor::new(1, 1, TextureFormat::Rgba8Unorm, &TextureUsage::ALL);
        assert_eq!(
            hal_uses(usages(&all), all.format),
            H::COPY_SRC | H::COPY_DST | H::RESOURCE | H::STORAGE_READ_WRITE | H::COLOR_TARGET
        );
    }
}
