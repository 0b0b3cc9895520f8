//! Verifiable frames on the GL side, compatible with [`crate::pattern::PatternWriter`] and
//! [`crate::pattern::ProbeReader`]: [`GlPatternWriter`] fills frame `n` with
//! [`frame_word`]`(n)` (a `glClearTexImage` for texels of 4, 8 or 16 bytes, else an upload),
//! [`GlProbe`] reads the probe texels back (`glGetTextureSubImage`) and checks them.

use geyser::gl::GlTexture;
use geyser::Result;

use crate::pattern::{expected_texel, frame_word, ProbeReader, ProbeResult};

/// Fills GL textures with frame patterns.
#[derive(Debug, Default)]
pub struct GlPatternWriter {
    /// Whole-frame bytes for formats whose texels do not hold whole words (R8, RG8, R16, …).
    upload: Vec<u8>,
}

impl GlPatternWriter {
    /// Issues the GL commands that fill `texture` with frame `frame`'s pattern (not waited
    /// for: the caller's handoff orders them).
    pub fn write(&mut self, texture: &GlTexture, frame: u64) -> Result<()> {
        let d = texture.descriptor();
        let bpp = d.format.block_bytes();
        let word = frame_word(frame);
        if bpp.is_multiple_of(4) {
            let texel: Vec<u8> = expected_texel(word, 0, bpp).collect();
            return texture.clear(&texel);
        }
        let texels = u64::from(d.width) * u64::from(d.height);
        self.upload.clear();
        self.upload
            .extend((0..texels).flat_map(|i| expected_texel(word, i, bpp)));
        texture.upload(&self.upload)
    }
}

/// Checks frame patterns in GL textures: reads [`ProbeReader::PROBES`] texels back.
#[derive(Debug, Default)]
pub struct GlProbe;

impl GlProbe {
    /// Reads the probe texels of `texture` (waits for GL) and compares them with frame
    /// `frame`'s picture or solid pattern ([`ProbeResult::judge`]).
    pub fn check(&self, texture: &GlTexture, frame: u64) -> Result<ProbeResult> {
        let d = texture.descriptor();
        let (w, h, bpp) = (d.width, d.height, d.format.block_bytes());
        let points = ProbeReader::points(w, h);
        let texels = points
            .iter()
            .map(|(x, y)| texture.read_texels(*x, *y, 1, 1))
            .collect::<Result<Vec<_>>>()?;
        Ok(ProbeResult::judge(
            frame,
            (w, h, bpp),
            &points,
            texels.iter().map(Vec::as_slice),
        ))
    }
}
