//! Verifiable frames without the CPU touching texels: [`PatternWriter`] fills a texture on the
//! GPU with a 32-bit word derived from the frame number, [`ProbeReader`] copies a few probe
//! texels back and checks them. Used by the demo, examples and tests to prove frame content.
//! Built only on Geyser's public Vulkan API ([`Submitter`], [`Buffer`], [`record_copy`]).

use geyser::common::{TextureAspect, TextureUsage};
use geyser::vulkan::ash::vk;
use geyser::vulkan::{
    aspect_size, record_copy, Buffer, CopyDirection, Submitter, TimelinePoint, VulkanTexture,
    VulkanTextureShareManager, SUBMIT_TIMEOUT,
};
use geyser::{Error, Result};

/// The 32-bit word frame `frame` is filled with: a bijection of the frame number (mod 2^32),
/// so two different frames never look alike.
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

/// Bytes of the texel at linear texel index `index` when the texture is filled with `word`
/// (the word's little-endian bytes repeat through the image's tightly packed bytes).
pub fn expected_texel(word: u32, index: u64, texel_bytes: u32) -> impl Iterator<Item = u8> {
    let bytes = word.to_le_bytes();
    let start = index * u64::from(texel_bytes);
    (start..start + u64::from(texel_bytes)).map(move |o| bytes[(o % 4) as usize])
}

fn check_color(texture: &VulkanTexture, usage: TextureUsage, what: &str) -> Result<u32> {
    let d = &texture.export_info().descriptor;
    if d.format.is_depth_stencil() {
        return Err(Error::unsupported(
            format!("{what} on {}", d.format),
            "test patterns are written and probed on colour formats only",
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

/// Writes frame patterns into textures on the GPU: `vkCmdFillBuffer` of a device-local buffer
/// with [`frame_word`], then a buffer→image copy. No CPU upload per frame.
pub struct PatternWriter {
    submit: Submitter,
    buffer: Buffer,
}

impl PatternWriter {
    /// A writer for textures of up to `max_bytes` (mip 0, one layer) on `manager`'s device.
    pub fn new(manager: &VulkanTextureShareManager, max_bytes: u64) -> Result<Self> {
        let size = max_bytes.div_ceil(4) * 4;
        let buffer = Buffer::device_local(
            manager,
            size,
            vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST,
        )?;
        Ok(Self {
            submit: Submitter::new(manager, 3)?,
            buffer,
        })
    }

    /// Fills `texture` with frame `frame`'s word and releases it to `VK_QUEUE_FAMILY_EXTERNAL`;
    /// returns when the GPU has finished (host-synchronized). Needs `CopyDst`.
    pub fn write(&self, texture: &VulkanTexture, frame: u64) -> Result<()> {
        self.write_synced(texture, frame, &[], &[], true)
    }

    /// Like [`Self::write`], with the GPU waiting for `waits` before writing and signaling
    /// `signals` when done. With `block = false` it returns once submitted (up to three writes
    /// in flight); [`Self::finish`] waits for all of them.
    pub fn write_synced(
        &self,
        texture: &VulkanTexture,
        frame: u64,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        block: bool,
    ) -> Result<()> {
        check_color(texture, TextureUsage::CopyDst, "PatternWriter::write")?;
        let bytes = aspect_size(texture, TextureAspect::Color);
        if bytes > self.buffer.size() {
            return Err(Error::InvalidArgument {
                what: "texture",
                reason: format!(
                    "{bytes} bytes exceed the writer's {} byte buffer",
                    self.buffer.size()
                ),
            });
        }
        let family = self.submit.queue_family();
        let layout = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
        // The whole image is overwritten: discard old contents.
        let [acquire, release] =
            texture.access_barriers(family, false, layout, vk::AccessFlags::TRANSFER_WRITE);
        let fill_done = self.buffer.barrier(
            vk::AccessFlags::TRANSFER_WRITE,
            vk::AccessFlags::TRANSFER_READ,
        );
        let region = vk::BufferImageCopy::default()
            .image_subresource(vk::ImageSubresourceLayers {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                mip_level: 0,
                base_array_layer: 0,
                layer_count: texture.subresource_range().layer_count,
            })
            .image_extent(texture.vk_extent());
        let word = frame_word(frame);
        let fill_size = bytes.div_ceil(4) * 4;
        self.submit.submit(
            |device, cmd| {
                // SAFETY: recording on our command buffer; the image and buffer are live and large
                // enough (checked above).
                unsafe {
                    // Earlier writes still in flight may be reading the buffer.
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
                        &[region],
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
            },
            waits,
            signals,
            block,
        )?;
        texture.mark_initialized();
        Ok(())
    }

    /// Waits until every write submitted so far has finished.
    pub fn finish(&self) -> Result<()> {
        self.submit.drain(SUBMIT_TIMEOUT)
    }
}

/// Reads texels of a texture back to the host: copies up to [`TexelReader::MAX_TEXELS`] texels
/// at given points into a small host buffer. What [`ProbeReader`] checks patterns with, and what
/// checks of other known content (e.g. a rendered scene's colours) use.
pub struct TexelReader {
    submit: Submitter,
    buffer: Buffer,
}

impl TexelReader {
    /// Most texels per read.
    pub const MAX_TEXELS: usize = 16;

    /// A reader on `manager`'s device.
    pub fn new(manager: &VulkanTextureShareManager) -> Result<Self> {
        let buffer = Buffer::host(
            manager,
            (Self::MAX_TEXELS * 16) as u64,
            vk::BufferUsageFlags::TRANSFER_DST,
        )?;
        Ok(Self {
            submit: Submitter::new(manager, 1)?,
            buffer,
        })
    }

    /// Copies the texels at `points` of `texture` (acquired from and released back to
    /// `VK_QUEUE_FAMILY_EXTERNAL`; needs `CopySrc`), the GPU waiting for `waits` first and
    /// signaling `signals` after. `submitted` runs right after the submission, before the host
    /// waits for the copy (e.g. to release the frame to its producer at once). Returns each
    /// texel's bytes, in the order of `points`. Allocates nothing.
    pub fn read(
        &self,
        texture: &VulkanTexture,
        points: &[(u32, u32)],
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        submitted: impl FnOnce() -> Result<()>,
    ) -> Result<Texels> {
        let bpp = check_color(texture, TextureUsage::CopySrc, "TexelReader::read")?;
        let d = &texture.export_info().descriptor;
        let outside = points.iter().find(|(x, y)| *x >= d.width || *y >= d.height);
        if points.len() > Self::MAX_TEXELS || outside.is_some() {
            return Err(Error::InvalidArgument {
                what: "points",
                reason: format!(
                    "at most {} points inside {}x{} (got {}, outside: {outside:?})",
                    Self::MAX_TEXELS,
                    d.width,
                    d.height,
                    points.len()
                ),
            });
        }
        let family = self.submit.queue_family();
        let regions: [vk::BufferImageCopy; Self::MAX_TEXELS] = std::array::from_fn(|i| {
            let (x, y) = points.get(i).copied().unwrap_or_default();
            vk::BufferImageCopy::default()
                .buffer_offset((i * 16) as u64)
                .image_subresource(vk::ImageSubresourceLayers {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    mip_level: 0,
                    base_array_layer: 0,
                    layer_count: 1,
                })
                .image_offset(vk::Offset3D {
                    x: x as i32,
                    y: y as i32,
                    z: 0,
                })
                .image_extent(vk::Extent3D {
                    width: 1,
                    height: 1,
                    depth: 1,
                })
        });
        let regions = &regions[..points.len()];
        self.submit.submit(
            // SAFETY: the submitter's command buffer is recording on the texture's device; the
            // points are inside the image (checked above) and each region fits its 16-byte
            // slot of the buffer (texels are at most 16 bytes); the host waits for the GPU
            // below before the texture or buffer can go.
            |device, cmd| unsafe {
                record_copy(
                    device,
                    cmd,
                    family,
                    texture,
                    regions,
                    &self.buffer,
                    CopyDirection::Download,
                )
            },
            waits,
            signals,
            false,
        )?;
        let sent = submitted();
        self.submit.drain(SUBMIT_TIMEOUT)?;
        sent?;
        let bytes = self.buffer.bytes();
        Ok(Texels {
            bytes: std::array::from_fn(|i| {
                let mut texel = [0; 16];
                if i < points.len() {
                    texel.copy_from_slice(&bytes[i * 16..i * 16 + 16]);
                }
                texel
            }),
            len: points.len(),
            texel_bytes: bpp as usize,
        })
    }
}

/// Texels read by [`TexelReader::read`], in the order of the points asked for.
#[derive(Clone, Copy, Debug)]
pub struct Texels {
    bytes: [[u8; 16]; TexelReader::MAX_TEXELS],
    len: usize,
    texel_bytes: usize,
}

impl Texels {
    /// Number of texels.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no texel was read.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of texel `i` (its format's size); empty past the end.
    pub fn get(&self, i: usize) -> &[u8] {
        match self.bytes.get(i).filter(|_| i < self.len) {
            Some(texel) => &texel[..self.texel_bytes],
            None => &[],
        }
    }

    /// Each texel's bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len).map(|i| self.get(i))
    }
}

/// Checks frame patterns on the GPU side: reads [`ProbeReader::PROBES`] texels (corners,
/// centre, two inner points) of a texture and compares them with the frame's word.
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

    fn points(w: u32, h: u32) -> [(u32, u32); Self::PROBES] {
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
    /// compares with frame `frame`'s word. Returns when the GPU is done. Needs `CopySrc`.
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
        let d = &texture.export_info().descriptor;
        let (w, bpp) = (d.width, d.format.block_bytes());
        let points = Self::points(d.width, d.height);
        let texels = self
            .texels
            .read(texture, &points, waits, signals, submitted)?;
        let word = frame_word(frame);
        let matched = points
            .iter()
            .zip(texels.iter())
            .filter(|((x, y), got)| {
                let index = u64::from(*y) * u64::from(w) + u64::from(*x);
                expected_texel(word, index, bpp).eq(got.iter().copied())
            })
            .count();
        let first = texels.get(0);
        let first_word =
            u32::from_le_bytes(std::array::from_fn(|i| first.get(i).copied().unwrap_or(0)));
        Ok(ProbeResult {
            matched,
            probes: Self::PROBES,
            first_word,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_of_word_inverts_frame_word() {
        for frame in (0..100_000u64).chain([u64::from(u32::MAX), 1 << 40]) {
            assert_eq!(
                u64::from(frame_of_word(frame_word(frame))),
                frame % (1 << 32)
            );
        }
    }

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
}
