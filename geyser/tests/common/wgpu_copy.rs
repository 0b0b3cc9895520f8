//! Reading and writing shared textures through wgpu's own copies (between begin/end access),
//! one aspect of one mip level at a time (all layers or depth slices), in the packed layout
//! of `geyser::common::TextureLayout`: what the wgpu tests compare with Vulkan's view.

use geyser::common::{Subresource, TextureAspect, TextureFormat, TextureLayout};
use geyser::webgpu::{wgpu, WgpuTexture, WgpuTextureShareManager};
use geyser::SharedTexture;

/// The wgpu aspect of one Geyser copy aspect.
pub fn wgpu_aspect(format: TextureFormat, aspect: TextureAspect) -> wgpu::TextureAspect {
    match aspect {
        _ if !format.is_depth_stencil() => wgpu::TextureAspect::All,
        TextureAspect::Depth => wgpu::TextureAspect::DepthOnly,
        TextureAspect::Stencil => wgpu::TextureAspect::StencilOnly,
        TextureAspect::Color => wgpu::TextureAspect::All,
    }
}

/// WebGPU's copy rules: depth24plus depth cannot be copied at all, depth32float depth cannot
/// be a copy destination; everything else in the table can.
pub fn wgpu_can_copy(format: TextureFormat, aspect: TextureAspect, to_texture: bool) -> bool {
    match (format, aspect) {
        (TextureFormat::Depth24UnormStencil8, TextureAspect::Depth) => false,
        (
            TextureFormat::Depth32Float | TextureFormat::Depth32FloatStencil8,
            TextureAspect::Depth,
        ) => !to_texture,
        _ => true,
    }
}

/// One level's place in a copy: its packed region, wgpu's padded row pitch, its rows of
/// blocks and its copy size (whole blocks: WebGPU copies the level's physical size).
struct Level {
    region: Subresource,
    padded_row: u32,
    block_rows: u32,
    size: wgpu::Extent3d,
}

fn level(t: &WgpuTexture, aspect: TextureAspect, mip: u32) -> Level {
    let desc = t.descriptor();
    let layout = TextureLayout::with_aspects(desc, t.extent(), &[aspect]);
    let region = *layout.find(aspect, mip).expect("a level of the texture");
    let (bw, bh) = desc.format.block_size();
    let (bx, by) = desc.format.blocks(region.width, region.height);
    let row = region.row_bytes as u32;
    let padded_row =
        row.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    Level {
        region,
        padded_row,
        block_rows: by,
        size: wgpu::Extent3d {
            width: bx * bw,
            height: by * bh,
            depth_or_array_layers: region.slices(),
        },
    }
}

fn copy_texture<'a>(
    t: &'a WgpuTexture,
    aspect: TextureAspect,
    mip: u32,
) -> wgpu::TexelCopyTextureInfo<'a> {
    wgpu::TexelCopyTextureInfo {
        texture: t.texture(),
        mip_level: mip,
        origin: wgpu::Origin3d::ZERO,
        aspect: wgpu_aspect(t.descriptor().format, aspect),
    }
}

/// Reads one aspect of level `mip` (all layers or slices) back through a wgpu copy.
pub fn wgpu_read_level(
    w: &WgpuTextureShareManager,
    t: &WgpuTexture,
    aspect: TextureAspect,
    mip: u32,
) -> Vec<u8> {
    let l = level(t, aspect, mip);
    let slices = l.region.slices();
    let buffer = w.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: u64::from(l.padded_row * l.block_rows * slices),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    w.begin_access(t, &[]).unwrap();
    let mut enc = w.device().create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        copy_texture(t, aspect, mip),
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(l.padded_row),
                rows_per_image: Some(l.block_rows),
            },
        },
        l.size,
    );
    w.queue().submit([enc.finish()]);
    let done = w.end_access(t, None).unwrap();
    w.wait_for_submission(done).unwrap();
    let slice = buffer.slice(..);
    slice.map_async(wgpu::MapMode::Read, |r| r.expect("map readback"));
    w.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let data = slice.get_mapped_range().expect("mapped readback");
    let row = l.region.row_bytes as usize;
    let mut out = Vec::with_capacity(l.region.bytes as usize);
    for r in 0..(l.block_rows * slices) as usize {
        let start = r * l.padded_row as usize;
        out.extend_from_slice(&data[start..start + row]);
    }
    out
}

/// Level 0 of one aspect.
pub fn wgpu_read(w: &WgpuTextureShareManager, t: &WgpuTexture, aspect: TextureAspect) -> Vec<u8> {
    wgpu_read_level(w, t, aspect, 0)
}

/// Writes one aspect of level `mip` (all layers or slices, packed) with
/// `queue.write_texture`.
pub fn wgpu_write_level(
    w: &WgpuTextureShareManager,
    t: &WgpuTexture,
    aspect: TextureAspect,
    mip: u32,
    data: &[u8],
) {
    let l = level(t, aspect, mip);
    assert_eq!(data.len() as u64, l.region.bytes, "level data size");
    w.begin_access(t, &[]).unwrap();
    w.queue().write_texture(
        copy_texture(t, aspect, mip),
        data,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(l.region.row_bytes as u32),
            rows_per_image: Some(l.block_rows),
        },
        l.size,
    );
    let done = w.end_access(t, None).unwrap();
    w.wait_for_submission(done).unwrap();
}

/// Level 0 of one aspect.
pub fn wgpu_write(
    w: &WgpuTextureShareManager,
    t: &WgpuTexture,
    aspect: TextureAspect,
    data: &[u8],
) {
    wgpu_write_level(w, t, aspect, 0, data)
}
