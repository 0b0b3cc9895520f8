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

/// Checks frame patterns on the GPU side: copies [`ProbeReader::PROBES`] texels (corners,
/// centre, two inner points) of a texture into a small host buffer and compares them with the
/// frame's word.
pub struct ProbeReader {
    submit: Submitter,
    buffer: Buffer,
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
        let buffer = Buffer::host(
            manager,
            (Self::PROBES * 16) as u64,
            vk::BufferUsageFlags::TRANSFER_DST,
        )?;
        Ok(Self {
            submit: Submitter::new(manager, 1)?,
            buffer,
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
        let bpp = check_color(texture, TextureUsage::CopySrc, "ProbeReader::check")?;
        let d = &texture.export_info().descriptor;
        let (w, h) = (d.width, d.height);
        let family = self.submit.queue_family();
        let points = Self::points(w, h);
        let regions: [vk::BufferImageCopy; Self::PROBES] = std::array::from_fn(|i| {
            vk::BufferImageCopy::default()
                .buffer_offset((i * 16) as u64)
                .image_subresource(vk::ImageSubresourceLayers {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    mip_level: 0,
                    base_array_layer: 0,
                    layer_count: 1,
                })
                .image_offset(vk::Offset3D {
                    x: points[i].0 as i32,
                    y: points[i].1 as i32,
                    z: 0,
                })
                .image_extent(vk::Extent3D {
                    width: 1,
                    height: 1,
                    depth: 1,
                })
        });
        self.submit.submit(
            // SAFETY: the submitter's command buffer is recording on the texture's device; the
            // probe points are inside the image and each region fits its 16-byte slot of the
            // buffer (texels are at most 16 bytes); the host waits for the GPU below before the
            // texture or buffer can go.
            |device, cmd| unsafe {
                record_copy(
                    device,
                    cmd,
                    family,
                    texture,
                    &regions,
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
        let word = frame_word(frame);
        let bytes = self.buffer.bytes();
        let mut matched = 0;
        for (i, (x, y)) in points.iter().enumerate() {
            let index = u64::from(*y) * u64::from(w) + u64::from(*x);
            let got = &bytes[i * 16..i * 16 + bpp as usize];
            if expected_texel(word, index, bpp).eq(got.iter().copied()) {
                matched += 1;
            }
        }
        let first_word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
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
