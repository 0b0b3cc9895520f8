//! The frame pattern on the CPU, for frames that left the GPU (GStreamer buffers, PipeWire
//! buffers, frames that crossed a network): [`fill_frame`] writes frame `n`'s pattern into host
//! memory, [`identify_frame`] checks every texel of a host frame and says which frame it is.
//! The patterns are [`crate::pattern`]'s: the solid one (every texel of frame `n` holds the
//! little-endian bytes of [`frame_word`]`(n)`, repeating through the tightly packed image),
//! which [`fill_frame`] writes, and the demo picture ([`crate::frame_image`], whose band holds
//! the same word), which Geyser's example producers draw; [`identify_frame`] accepts either.

use crate::frame_image::FrameLayout;
use crate::pattern::{expected_texel, frame_of_word, frame_word};

/// Where a host frame sits in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostLayout {
    /// Texels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bytes per texel.
    pub texel_bytes: u32,
    /// Bytes from one row's start to the next (at least `width × texel_bytes`).
    pub stride: usize,
}

impl HostLayout {
    /// A tightly packed layout.
    pub fn packed(width: u32, height: u32, texel_bytes: u32) -> Self {
        Self {
            width,
            height,
            texel_bytes,
            stride: width as usize * texel_bytes as usize,
        }
    }

    fn row_bytes(&self) -> usize {
        self.width as usize * self.texel_bytes as usize
    }

    /// Bytes a frame of this layout covers.
    pub fn frame_bytes(&self) -> usize {
        match self.height {
            0 => 0,
            h => (h as usize - 1) * self.stride + self.row_bytes(),
        }
    }
}

/// Why a host frame is not a frame of the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameMismatch {
    /// The data is smaller than the layout says.
    TooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// A texel differs from the frame the first texel names.
    Texel {
        /// Column.
        x: u32,
        /// Row.
        y: u32,
        /// The frame number the first texel names (mod 2^32).
        frame: u32,
    },
}

impl std::fmt::Display for FrameMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameMismatch::TooSmall { needed, got } => {
                write!(f, "frame needs {needed} bytes, got {got}")
            }
            FrameMismatch::Texel { x, y, frame } => write!(
                f,
                "texel ({x}, {y}) differs from frame {frame}'s pattern (named by texel (0, 0))"
            ),
        }
    }
}

fn row_pattern(word: u32, y: u32, layout: &HostLayout) -> impl Iterator<Item = u8> {
    let (width, texel_bytes) = (u64::from(layout.width), layout.texel_bytes);
    let first = u64::from(y) * width;
    (first..first + width).flat_map(move |i| expected_texel(word, i, texel_bytes))
}

/// Writes frame `frame`'s pattern into `data` laid out as `layout` (padding bytes between
/// rows are left alone). Panics if `data` is smaller than the layout: callers size it.
pub fn fill_frame(data: &mut [u8], layout: &HostLayout, frame: u64) {
    let word = frame_word(frame);
    let row = layout.row_bytes();
    // Rows of texels with 1, 2 or 4 bytes start at a multiple of 4 bytes of the packed image
    // only sometimes; the pattern of a row depends on its first texel's index, so build each.
    for y in 0..layout.height {
        let start = y as usize * layout.stride;
        for (dst, src) in data[start..start + row]
            .iter_mut()
            .zip(row_pattern(word, y, layout))
        {
            *dst = src;
        }
    }
}

/// Checks every texel of the host frame in `data` and returns the frame number (mod 2^32) its
/// pattern names: the first texel names a frame, every other texel must belong to the same
/// one.
pub fn identify_frame(data: &[u8], layout: &HostLayout) -> Result<u32, FrameMismatch> {
    let needed = layout.frame_bytes();
    if data.len() < needed {
        return Err(FrameMismatch::TooSmall {
            needed,
            got: data.len(),
        });
    }
    if needed == 0 {
        return Ok(0);
    }
    // The word's bytes are the first 4 bytes of the packed image (they span texels, and rows
    // when a row is shorter than 4 bytes). Bytes past a tiny image's end stay 0.
    let mut first = [0u8; 4];
    let tb = layout.texel_bytes as usize;
    let row = layout.row_bytes();
    let packed = (0..layout.height as usize).flat_map(|y| {
        data[y * layout.stride..y * layout.stride + row]
            .iter()
            .copied()
    });
    for (b, v) in first.iter_mut().zip(packed) {
        *b = v;
    }
    let word = u32::from_le_bytes(first);
    let frame = frame_of_word(word);
    // The solid pattern, else the demo picture: a frame must be one of the two throughout.
    let solid = first_mismatch(data, layout, |y| row_pattern(word, y, layout));
    let Some((x, y)) = solid else {
        return Ok(frame);
    };
    let picture = FrameLayout::new(layout.width, layout.height);
    let pictured = first_mismatch(data, layout, |y| {
        (0..layout.width).flat_map(move |x| {
            let texel = picture.texel(u64::from(frame), x, y, layout.texel_bytes);
            (0..tb).map(move |i| texel[i])
        })
    });
    match pictured {
        None => Ok(frame),
        // Report the mismatch that came later: the pattern the frame follows longer.
        Some(p) if (p.1, p.0) > (y, x) => Err(FrameMismatch::Texel {
            x: p.0,
            y: p.1,
            frame,
        }),
        Some(_) => Err(FrameMismatch::Texel { x, y, frame }),
    }
}

/// The first texel `(x, y)` of `data` whose bytes differ from `expected(y)`'s row.
fn first_mismatch<I: Iterator<Item = u8>>(
    data: &[u8],
    layout: &HostLayout,
    expected: impl Fn(u32) -> I,
) -> Option<(u32, u32)> {
    let (tb, row) = (layout.texel_bytes as usize, layout.row_bytes());
    (0..layout.height).find_map(|y| {
        let start = y as usize * layout.stride;
        data[start..start + row]
            .iter()
            .zip(expected(y))
            .position(|(a, b)| *a != b)
            .map(|i| ((i / tb) as u32, y))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_picture_is_identified_and_a_wrong_texel_in_it_found() {
        let (w, h) = (64u32, 48u32);
        let layout = HostLayout::packed(w, h, 4);
        let mut data = crate::frame_image::frame_image(77, w, h, 4);
        assert_eq!(identify_frame(&data, &layout), Ok(77));
        let at = (40 * w as usize + 10) * 4;
        data[at] ^= 0x80;
        assert_eq!(
            identify_frame(&data, &layout),
            Err(FrameMismatch::Texel {
                x: 10,
                y: 40,
                frame: 77
            })
        );
    }

    #[test]
    fn a_filled_frame_is_identified_with_padding_and_small_texels() {
        for (w, h, tb, pad) in [(7u32, 5u32, 4u32, 12usize), (3, 4, 1, 1), (5, 3, 2, 6)] {
            let layout = HostLayout {
                width: w,
                height: h,
                texel_bytes: tb,
                stride: (w * tb) as usize + pad,
            };
            let mut data = vec![0xaa; layout.frame_bytes()];
            fill_frame(&mut data, &layout, 1234);
            assert_eq!(identify_frame(&data, &layout), Ok(1234));
        }
    }

    #[test]
    fn one_wrong_texel_is_found() {
        let layout = HostLayout::packed(16, 8, 4);
        let mut data = vec![0; layout.frame_bytes()];
        fill_frame(&mut data, &layout, 7);
        data[(3 * 16 + 5) * 4 + 2] ^= 1;
        assert_eq!(
            identify_frame(&data, &layout),
            Err(FrameMismatch::Texel {
                x: 5,
                y: 3,
                frame: 7
            })
        );
        assert!(matches!(
            identify_frame(&data[..10], &layout),
            Err(FrameMismatch::TooSmall { .. })
        ));
    }
}
