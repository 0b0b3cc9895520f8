//! Verifiable frames without the CPU touching texels per frame: [`PatternWriter`] fills a
//! texture on the GPU with frame `n`'s picture ([`crate::frame_image`]: a band holding a
//! 32-bit word derived from `n`, a moving gradient, the frame number in large digits), with
//! copies from buffers prepared once; [`ProbeReader`] copies a few probe texels back and
//! checks them. Producers that fill the whole frame with the word ([`frame_word`]: the wgpu
//! pattern, host-side patterns) pass the probes too: a frame must match one of the two
//! pictures at every probe. Used by the demo, examples and tests to prove frame content.
//! Built only on Geyser's public Vulkan API ([`Submitter`], [`Buffer`], [`record_copy`]).

use std::sync::Mutex;

use geyser::common::{TextureDimension, TextureUsage};
use geyser::vulkan::ash::vk;
use geyser::vulkan::{
    Buffer, Submitter, TimelinePoint, VulkanTexture, VulkanTextureShareManager, SUBMIT_TIMEOUT,
};
use geyser::{Error, Result, SharedTexture};

use crate::frame_image::{digit, glyph_texel, gradient, shift, FrameLayout, DIGITS};
use crate::texels::TexelReader;

/// The 32-bit word frame `frame` is known by: a bijection of the frame number (mod 2^32), so
/// two different frames never look alike.
pub fn frame_word(frame: u64) -> u32 {
    ((frame as u32) ^ 0x5eed_0000).wrapping_mul(0x9e37_79b1)
}

/// The frame number (mod 2^32) whose [`frame_word`] is `word`: the inverse of that bijection,
/// for checks that find a frame's word in read-back texels without knowing which frame it is.
pub fn frame_of_word(word: u32) -> u32 {
    // The inverse of the odd multiplier mod 2^32, by Newton's iteration (each step doubles
    // the correct low bits: 3, 6, 12, 24, 48).
    const M: u32 = 0x9e37_79b1;
    let mut inverse = M;
    for _ in 0..4 {
        inverse = inverse.wrapping_mul(2u32.wrapping_sub(M.wrapping_mul(inverse)));
    }
    word.wrapping_mul(inverse) ^ 0x5eed_0000
}

/// Bytes of the texel at linear texel index `index` when a texture is filled with `word` (the
/// word's little-endian bytes repeat through the image's tightly packed bytes): the solid
/// pattern, and the band of the demo picture.
pub fn expected_texel(word: u32, index: u64, texel_bytes: u32) -> impl Iterator<Item = u8> {
    let bytes = word.to_le_bytes();
    let start = index * u64::from(texel_bytes);
    (start..start + u64::from(texel_bytes)).map(move |o| bytes[(o % 4) as usize])
}

pub(crate) fn check_color(texture: &VulkanTexture, usage: TextureUsage, what: &str) -> Result<u32> {
    let d = &texture.export_info().descriptor;
    if d.format.is_depth_stencil() || d.format.is_compressed() {
        return Err(Error::unsupported(
            format!("{what} on {}", d.format),
            "test patterns are written and probed on uncompressed colour formats only",
        ));
    }
    if !d.has_usage(usage) {
        return Err(Error::InvalidArgument {
            what: "texture usage",
            reason: format!("{what} needs TextureUsage::{usage:?}"),
        });
    }
    Ok(d.format.block_bytes())
}

/// Where the prepared parts of one frame geometry sit in the writer's device buffer: the band
/// (filled with the frame word per frame), the gradient strip (two widths wide, so any shift
/// is one window of it) and the digit atlas (the ten glyphs side by side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Prepared {
    width: u32,
    height: u32,
    texel_bytes: u32,
    layout: FrameLayout,
    strip: u64,
    atlas: u64,
}

const fn align16(v: u64) -> u64 {
    v.div_ceil(16) * 16
}

impl Prepared {
    fn new(width: u32, height: u32, texel_bytes: u32, solid: bool) -> Self {
        let layout = match solid {
            true => FrameLayout::solid(width, height),
            false => FrameLayout::new(width, height),
        };
        let bpp = u64::from(texel_bytes);
        let band = align16(u64::from(width) * u64::from(layout.band_rows) * bpp);
        let strip_bytes = 2 * u64::from(width) * u64::from(height - layout.band_rows) * bpp;
        Self {
            width,
            height,
            texel_bytes,
            layout,
            strip: band,
            atlas: align16(band + strip_bytes),
        }
    }

    fn atlas_size(&self) -> (u32, u32) {
        self.layout.digits.map_or((0, 0), |d| {
            let (cw, ch) = d.cell();
            (10 * cw, ch)
        })
    }

    fn size(&self) -> u64 {
        let (aw, ah) = self.atlas_size();
        self.atlas + u64::from(aw) * u64::from(ah) * u64::from(self.texel_bytes)
    }

    /// The strip and atlas bytes (the band is filled per frame), at their offsets.
    fn contents(&self, out: &mut [u8]) {
        let bpp = self.texel_bytes as usize;
        let put = |out: &mut [u8], at: usize, rgba: [u8; 4]| {
            for i in 0..bpp {
                out[at + i] = rgba[i % 4];
            }
        };
        let (w, band) = (self.width, self.layout.band_rows);
        let mut at = self.strip as usize;
        for y in band..self.height {
            for u in 0..2 * w {
                put(out, at, gradient(&self.layout, u % w, y));
                at += bpp;
            }
        }
        let Some(d) = self.layout.digits else { return };
        let (cw, _) = d.cell();
        let (aw, ah) = self.atlas_size();
        let mut at = self.atlas as usize;
        for ay in 0..ah {
            for ax in 0..aw {
                let value = (ax / cw) as u8;
                put(
                    out,
                    at,
                    glyph_texel(value, (ax % cw) / d.scale, ay / d.scale),
                );
                at += bpp;
            }
        }
    }

    /// The copies that draw frame `frame` into layer (or depth slice) `slice` of a texture of
    /// this geometry, appended to `out`. No two overlap.
    fn regions(
        &self,
        frame: u64,
        slice: u32,
        dim: TextureDimension,
        out: &mut Vec<vk::BufferImageCopy>,
    ) {
        let bpp = u64::from(self.texel_bytes);
        let (w, h, band) = (self.width, self.height, self.layout.band_rows);
        let (layer, z) = match dim {
            TextureDimension::D3 => (0, slice),
            _ => (slice, 0),
        };
        let mut push = |offset: u64, row_length: u32, x: u32, y: u32, rw: u32, rh: u32| {
            if rw == 0 || rh == 0 {
                return;
            }
            out.push(
                vk::BufferImageCopy::default()
                    .buffer_offset(offset)
                    .buffer_row_length(row_length)
                    .image_subresource(vk::ImageSubresourceLayers {
                        aspect_mask: vk::ImageAspectFlags::COLOR,
                        mip_level: 0,
                        base_array_layer: layer,
                        layer_count: 1,
                    })
                    .image_offset(vk::Offset3D {
                        x: x as i32,
                        y: y as i32,
                        z: z as i32,
                    })
                    .image_extent(vk::Extent3D {
                        width: rw,
                        height: rh,
                        depth: 1,
                    }),
            );
        };
        push(0, 0, 0, 0, w, band);
        let sh = shift(frame, w);
        let strip = |x: u32, y: u32| {
            self.strip + (u64::from(y - band) * 2 * u64::from(w) + u64::from(x + sh)) * bpp
        };
        match self.layout.digits {
            None => push(strip(0, band), 2 * w, 0, band, w, h - band),
            Some(d) => {
                let (bw, bh) = d.size();
                push(strip(0, band), 2 * w, 0, band, w, d.y - band);
                push(strip(0, d.y + bh), 2 * w, 0, d.y + bh, w, h - d.y - bh);
                push(strip(0, d.y), 2 * w, 0, d.y, d.x, bh);
                push(strip(d.x + bw, d.y), 2 * w, d.x + bw, d.y, w - d.x - bw, bh);
                let (cw, ch) = d.cell();
                for i in 0..DIGITS {
                    let glyph = self.atlas + u64::from(digit(frame, i)) * u64::from(cw) * bpp;
                    push(glyph, 10 * cw, d.x + i * cw, d.y, cw, ch);
                }
            }
        }
    }
}

/// The writer's mutable part: the geometry its buffer holds, the host buffer that uploads a
/// new one, and the copy regions (reused per frame).
struct Prepare {
    geometry: Option<Prepared>,
    staging: Buffer,
    regions: Vec<vk::BufferImageCopy>,
}

/// Writes frame pictures into textures on the GPU: `vkCmdFillBuffer` of the band with
/// [`frame_word`], then one buffer→image copy of the band, the gradient strip at the frame's
/// shift and the frame number's glyphs. The strip and glyphs are built on the CPU once per
/// frame geometry (size and texel size) and uploaded; nothing per frame.
pub struct PatternWriter {
    submit: Submitter,
    buffer: Buffer,
    state: Mutex<Prepare>,
    /// The solid pattern (the word in every texel) instead of the demo picture.
    solid: bool,
}

impl PatternWriter {
    /// A writer of the solid pattern (frame `n`'s word in every texel, what checks of whole
    /// frames compare with) for textures of up to `max_bytes` per layer (mip 0) on
    /// `manager`'s device.
    pub fn new(manager: &VulkanTextureShareManager, max_bytes: u64) -> Result<Self> {
        Self::with_pattern(manager, max_bytes, true)
    }

    /// A writer of the demo picture ([`crate::frame_image`]: the word's band, a moving
    /// gradient, the frame number in digits), what people look at; the probes accept it.
    pub fn picture(manager: &VulkanTextureShareManager, max_bytes: u64) -> Result<Self> {
        Self::with_pattern(manager, max_bytes, false)
    }

    fn with_pattern(
        manager: &VulkanTextureShareManager,
        max_bytes: u64,
        solid: bool,
    ) -> Result<Self> {
        // Band + strip (two widths) + atlas stay under three frames for any geometry.
        let size = 3 * max_bytes.div_ceil(4) * 4 + 4096;
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        Ok(Self {
            submit: Submitter::new(manager, Self::IN_FLIGHT)?,
            buffer: Buffer::device_local(manager, size, usage)?,
            state: Mutex::new(Prepare {
                geometry: None,
                staging: Buffer::host(manager, size, vk::BufferUsageFlags::TRANSFER_SRC)?,
                regions: Vec::new(),
            }),
            solid,
        })
    }

    /// Fills `texture` with frame `frame`'s pattern (solid or picture) and releases it to
    /// `VK_QUEUE_FAMILY_EXTERNAL`; returns when the GPU has finished (host-synchronized).
    /// Needs `CopyDst`.
    pub fn write(&self, texture: &VulkanTexture, frame: u64) -> Result<()> {
        self.write_synced(texture, frame, &[], &[], true)
    }

    /// Uploads the strip and atlas of a geometry, after every write still in flight (they read
    /// the buffer).
    fn prepare(&self, state: &mut Prepare, geometry: Prepared) -> Result<()> {
        if geometry.size() > self.buffer.size() {
            return Err(Error::InvalidArgument {
                what: "texture",
                reason: format!(
                    "its picture takes {} bytes, the writer's buffer {}",
                    geometry.size(),
                    self.buffer.size()
                ),
            });
        }
        self.submit.drain(SUBMIT_TIMEOUT)?;
        state.geometry = None;
        geometry.contents(state.staging.bytes_mut());
        let copy = vk::BufferCopy::default()
            .src_offset(geometry.strip)
            .dst_offset(geometry.strip)
            .size(geometry.size() - geometry.strip);
        let (src, dst) = (state.staging.raw(), self.buffer.raw());
        // The solid pattern has no strip or atlas: nothing to upload.
        if copy.size > 0 {
            self.submit.submit(
                // SAFETY: both buffers are ours and large enough; the call blocks until done.
                |device, cmd| unsafe { device.cmd_copy_buffer(cmd, src, dst, &[copy]) },
                &[],
                &[],
                true,
            )?;
        }
        state.geometry = Some(geometry);
        Ok(())
    }

    /// Like [`Self::write`], with the GPU waiting for `waits` before writing and signaling
    /// `signals` when done. With `block = false` it returns once submitted (up to three writes
    /// in flight); [`Self::finish`] waits for all of them. Writes mip 0 of every layer (or
    /// depth slice).
    pub fn write_synced(
        &self,
        texture: &VulkanTexture,
        frame: u64,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        block: bool,
    ) -> Result<()> {
        self.write_with(texture, frame, waits, signals, block, |_, _| {})
    }

    /// [`Self::write_synced`], with `last` recording more commands at the end of the command
    /// buffer, after the write has finished (e.g. a timestamp).
    pub fn write_with(
        &self,
        texture: &VulkanTexture,
        frame: u64,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        block: bool,
        last: impl FnOnce(&geyser::vulkan::ash::Device, vk::CommandBuffer),
    ) -> Result<()> {
        let bpp = check_color(texture, TextureUsage::CopyDst, "PatternWriter::write")?;
        let d = &texture.export_info().descriptor;
        let geometry = Prepared::new(d.width, d.height, bpp, self.solid);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.geometry != Some(geometry) {
            self.prepare(&mut state, geometry)?;
        }
        let extent = texture.extent();
        let slices = match extent.dimension {
            TextureDimension::D3 => texture.vk_extent().depth,
            _ => extent.depth_or_array_layers,
        };
        let mut regions = std::mem::take(&mut state.regions);
        regions.clear();
        for slice in 0..slices {
            geometry.regions(frame, slice, extent.dimension, &mut regions);
        }
        let family = self.submit.queue_family();
        let layout = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
        // The whole of mip 0 is overwritten: discard old contents.
        let [acquire, release] =
            texture.access_barriers(family, false, layout, vk::AccessFlags::TRANSFER_WRITE);
        let fill_done = self.buffer.barrier(
            vk::AccessFlags::TRANSFER_WRITE,
            vk::AccessFlags::TRANSFER_READ,
        );
        let band_bytes = u64::from(d.width) * u64::from(geometry.layout.band_rows) * u64::from(bpp);
        let fill_size = band_bytes.div_ceil(4) * 4;
        let word = frame_word(frame);
        let submitted = self.submit.submit(
            |device, cmd| {
                // SAFETY: recording on our command buffer; the image and buffer are live, and
                // every region lies inside both (built from the texture's own size).
                unsafe {
                    // Earlier writes still in flight may be reading the band.
                    let reuse = self.buffer.barrier(
                        vk::AccessFlags::TRANSFER_READ,
                        vk::AccessFlags::TRANSFER_WRITE,
                    );
                    device.cmd_pipeline_barrier(
                        cmd,
                        vk::PipelineStageFlags::TRANSFER,
                        vk::PipelineStageFlags::TRANSFER,
                        vk::DependencyFlags::empty(),
                        &[],
                        &[reuse],
                        &[],
                    );
                    device.cmd_fill_buffer(cmd, self.buffer.raw(), 0, fill_size, word);
                    device.cmd_pipeline_barrier(
                        cmd,
                        vk::PipelineStageFlags::TRANSFER,
                        vk::PipelineStageFlags::TRANSFER,
                        vk::DependencyFlags::empty(),
                        &[],
                        &[fill_done],
                        &[acquire],
                    );
                    device.cmd_copy_buffer_to_image(
                        cmd,
                        self.buffer.raw(),
                        texture.image(),
                        layout,
                        &regions,
                    );
                    device.cmd_pipeline_barrier(
                        cmd,
                        vk::PipelineStageFlags::TRANSFER,
                        vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                        vk::DependencyFlags::empty(),
                        &[],
                        &[],
                        &[release],
                    );
                }
                last(device, cmd);
            },
            waits,
            signals,
            block,
        );
        state.regions = regions;
        submitted?;
        texture.mark_initialized();
        Ok(())
    }

    /// Waits until every write submitted so far has finished.
    pub fn finish(&self) -> Result<()> {
        self.submit.drain(SUBMIT_TIMEOUT)
    }

    /// Writes that may still run after a non-blocking write returns (its submitter's depth).
    pub const IN_FLIGHT: usize = 3;
}

/// Checks frame patterns on the GPU side: reads [`ProbeReader::PROBES`] texels (corners,
/// centre, two inner points: band, gradient and digits of the demo picture) of a texture with
/// a [`TexelReader`] and compares them with frame `n`'s picture, or with its word filling the
/// whole frame (the solid pattern other producers write); a frame passes when every probe
/// matches one of the two.
pub struct ProbeReader {
    texels: TexelReader,
}

/// Result of probing one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// Probes that matched.
    pub matched: usize,
    /// Probes taken.
    pub probes: usize,
    /// The first 4 bytes of the first probe, for diagnostics.
    pub first_word: u32,
}

impl ProbeResult {
    /// Whether every probe matched.
    pub fn ok(&self) -> bool {
        self.matched == self.probes
    }
}

impl ProbeReader {
    /// Number of probe texels per frame.
    pub const PROBES: usize = 7;

    /// A reader on `manager`'s device.
    pub fn new(manager: &VulkanTextureShareManager) -> Result<Self> {
        Ok(Self {
            texels: TexelReader::new(manager)?,
        })
    }

    /// The probe texels of a `w` x `h` frame: corners, centre and two inner points (every
    /// API's probe takes the same ones).
    pub fn points(w: u32, h: u32) -> [(u32, u32); Self::PROBES] {
        [
            (0, 0),
            (w - 1, 0),
            (0, h - 1),
            (w - 1, h - 1),
            (w / 2, h / 2),
            (w / 3, h / 5),
            (w * 4 / 5, h * 2 / 3),
        ]
    }

    /// Probes `texture` (acquired from and released back to `VK_QUEUE_FAMILY_EXTERNAL`) and
    /// compares with frame `frame`'s picture. Returns when the GPU is done. Needs `CopySrc`.
    pub fn check(&self, texture: &VulkanTexture, frame: u64) -> Result<ProbeResult> {
        self.check_synced(texture, frame, &[], &[], || Ok(()))
    }

    /// Like [`Self::check`], with the GPU waiting for `waits` before the probe copy and
    /// signaling `signals` after it. `submitted` runs right after the submission, before the
    /// host waits for the result (e.g. to release the frame to its producer at once).
    pub fn check_synced(
        &self,
        texture: &VulkanTexture,
        frame: u64,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        submitted: impl FnOnce() -> Result<()>,
    ) -> Result<ProbeResult> {
        self.submit(texture, waits, signals, |_, _| {})?;
        let sent = submitted();
        let result = self.result(texture, frame);
        sent?;
        result
    }

    /// Submits the probe copy of `texture` (waiting for `waits`, signaling `signals`) without
    /// waiting for it; `first` records commands at the start of the command buffer (e.g. a
    /// timestamp: when the read started). [`Self::result`] waits and compares.
    pub fn submit(
        &self,
        texture: &VulkanTexture,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        first: impl FnOnce(&geyser::vulkan::ash::Device, vk::CommandBuffer),
    ) -> Result<()> {
        let d = &texture.export_info().descriptor;
        let points = Self::points(d.width, d.height);
        self.texels.submit(texture, &points, waits, signals, first)
    }

    /// Waits for the last [`Self::submit`] (of `texture`) and compares its probes with frame
    /// `frame`'s picture.
    pub fn result(&self, texture: &VulkanTexture, frame: u64) -> Result<ProbeResult> {
        let texels = self.texels.result(texture, Self::PROBES)?;
        let d = &texture.export_info().descriptor;
        let (w, h, bpp) = (d.width, d.height, d.format.block_bytes());
        Ok(ProbeResult::judge(
            frame,
            (w, h, bpp),
            &Self::points(w, h),
            texels.iter(),
        ))
    }
}

impl ProbeResult {
    /// Compares the texels read at `points` of a `(width, height, texel_bytes)` frame with
    /// frame `frame`'s picture and with its solid pattern: the frame passes when every probe
    /// matches one of the two.
    pub fn judge<'t>(
        frame: u64,
        (w, h, bpp): (u32, u32, u32),
        points: &[(u32, u32)],
        texels: impl Iterator<Item = &'t [u8]>,
    ) -> ProbeResult {
        let (word, layout) = (frame_word(frame), FrameLayout::new(w, h));
        let (mut solid, mut picture, mut first_word) = (0, 0, 0);
        for (i, ((x, y), got)) in points.iter().zip(texels).enumerate() {
            if i == 0 {
                first_word =
                    u32::from_le_bytes(std::array::from_fn(|b| got.get(b).copied().unwrap_or(0)));
            }
            let index = u64::from(*y) * u64::from(w) + u64::from(*x);
            if expected_texel(word, index, bpp).eq(got.iter().copied()) {
                solid += 1;
            }
            if layout.texel(frame, *x, *y, bpp)[..bpp as usize] == *got {
                picture += 1;
            }
        }
        ProbeResult {
            matched: solid.max(picture),
            probes: points.len(),
            first_word,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_words_differ_between_frames() {
        let words: std::collections::HashSet<u32> = (0..100_000).map(frame_word).collect();
        assert_eq!(words.len(), 100_000);
    }

    #[test]
    fn expected_texel_follows_the_repeating_word() {
        let w = 0x4433_2211u32;
        assert_eq!(
            expected_texel(w, 0, 4).collect::<Vec<_>>(),
            vec![0x11, 0x22, 0x33, 0x44]
        );
        assert_eq!(
            expected_texel(w, 1, 2).collect::<Vec<_>>(),
            vec![0x33, 0x44]
        );
        assert_eq!(expected_texel(w, 3, 1).collect::<Vec<_>>(), vec![0x44]);
        assert_eq!(
            expected_texel(w, 1, 8).collect::<Vec<_>>(),
            vec![0x11, 0x22, 0x33, 0x44, 0x11, 0x22, 0x33, 0x44]
        );
    }

    #[test]
    fn frame_of_word_inverts_frame_word() {
        for frame in (0..100_000u64).chain([u64::from(u32::MAX), 1 << 40]) {
            assert_eq!(
                u64::from(frame_of_word(frame_word(frame))),
                frame % (1 << 32)
            );
        }
    }
}
