//! What frame `n` of the demo looks like, as a pure function of `(n, x, y)`: a band of rows
//! holding [`frame_word`]`(n)` (unique per frame, what the probes identify a frame by), a
//! colour gradient that moves 4 texels to the left per frame, and the frame number in large
//! digits (white on black, 8 digits, `n mod 10^8`) in the middle. [`crate::pattern`] writes it
//! on the GPU with copies only (no shader, no CPU upload per frame) and checks probe texels
//! against it; `geyser snapshot` and the tests compare whole images with [`frame_image`].
//!
//! Texels are defined as RGBA8 bytes; a format of another size takes the bytes
//! `rgba[i % 4]` for its `i`-th byte (so 8-bit RGBA formats show the picture, others hold the
//! same bytes). The band is the exception: its bytes repeat the word through the band's
//! tightly packed bytes, exactly as the solid pattern does (see [`expected_texel`]).

use crate::pattern::{expected_texel, frame_word};

/// Digits shown (the frame number modulo 10^8, zero-padded).
pub const DIGITS: u32 = 8;
/// Texels the gradient moves per frame.
pub const SPEED: u32 = 4;
/// Glyph cell in font units: 5x7 glyph, one unit of spacing right, one of margin above and
/// below.
const CELL: (u32, u32) = (6, 9);

/// 5x7 glyphs of the digits, one row per byte, bit 4 the leftmost column.
const GLYPHS: [[u8; 7]; 10] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
];

/// Where the parts of a `width` x `height` frame are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLayout {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Rows `0..band_rows` hold the frame word.
    pub band_rows: u32,
    /// The digit box, if the frame is large enough for one: top-left corner and the size of
    /// one font unit in texels.
    pub digits: Option<DigitBox>,
}

/// The box the frame number is drawn in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigitBox {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Texels per font unit.
    pub scale: u32,
}

impl DigitBox {
    /// Width and height in texels.
    pub fn size(&self) -> (u32, u32) {
        (DIGITS * CELL.0 * self.scale, CELL.1 * self.scale)
    }

    /// Width and height of one digit's cell in texels.
    pub fn cell(&self) -> (u32, u32) {
        (CELL.0 * self.scale, CELL.1 * self.scale)
    }

    fn contains(&self, x: u32, y: u32) -> bool {
        let (w, h) = self.size();
        (self.x..self.x + w).contains(&x) && (self.y..self.y + h).contains(&y)
    }
}

impl FrameLayout {
    /// The layout of a `width` x `height` frame: a band of `height / 16` rows (at least one),
    /// digits as large as fit in three quarters of the width and half the height below the
    /// band, centred there.
    pub fn new(width: u32, height: u32) -> Self {
        let band_rows = (height / 16).clamp(1, height);
        let below = height - band_rows;
        let scale = (width * 3 / 4 / (DIGITS * CELL.0)).min(below / 2 / CELL.1);
        let digits = (scale > 0).then(|| {
            let (w, h) = (DIGITS * CELL.0 * scale, CELL.1 * scale);
            DigitBox {
                x: (width - w) / 2,
                y: band_rows + (below - h) / 2,
                scale,
            }
        });
        Self {
            width,
            height,
            band_rows,
            digits,
        }
    }

    /// The layout of the solid pattern: the band is the whole frame (every texel holds the
    /// frame word), no gradient, no digits.
    pub fn solid(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            band_rows: height,
            digits: None,
        }
    }

    /// The RGBA8 colour of texel `(x, y)` of frame `frame` outside the band.
    pub fn rgba(&self, frame: u64, x: u32, y: u32) -> [u8; 4] {
        if let Some(d) = self.digits.filter(|d| d.contains(x, y)) {
            return digit_texel(&d, frame, x - d.x, y - d.y);
        }
        gradient(self, (x + shift(frame, self.width)) % self.width, y)
    }

    /// The bytes of texel `(x, y)` of frame `frame` in a format of `texel_bytes` (at most 16)
    /// bytes: the first `texel_bytes` of the result. Allocates nothing (the probes run it
    /// every frame).
    pub fn texel(&self, frame: u64, x: u32, y: u32, texel_bytes: u32) -> [u8; 16] {
        let mut out = [0u8; 16];
        let n = (texel_bytes as usize).min(16);
        if y < self.band_rows {
            let index = u64::from(y) * u64::from(self.width) + u64::from(x);
            for (o, b) in
                out[..n]
                    .iter_mut()
                    .zip(expected_texel(frame_word(frame), index, texel_bytes))
            {
                *o = b;
            }
            return out;
        }
        let rgba = self.rgba(frame, x, y);
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = rgba[i % 4];
        }
        out
    }
}

/// How far the gradient has moved at `frame`, in texels (mod `width`).
pub fn shift(frame: u64, width: u32) -> u32 {
    ((frame % u64::from(width)) * u64::from(SPEED) % u64::from(width)) as u32
}

/// The gradient at gradient column `p` (`0..width`) and row `y`: red and blue a seamless
/// triangle wave across the width (so it scrolls without a seam), green down the height.
pub fn gradient(layout: &FrameLayout, p: u32, y: u32) -> [u8; 4] {
    let t = u64::from(p) * 512 / u64::from(layout.width);
    let r = if t < 256 { t } else { 511 - t } as u8;
    let g = (u64::from(y) * 255 / u64::from(layout.height.max(2) - 1)) as u8;
    [r, g, 255 - r, 255]
}

/// Digit `i` (0 = most significant) of frame `frame`'s number.
pub fn digit(frame: u64, i: u32) -> u8 {
    let n = frame % 10u64.pow(DIGITS);
    ((n / 10u64.pow(DIGITS - 1 - i)) % 10) as u8
}

/// Texel `(dx, dy)` of the digit box: white where the glyph is, black around it.
fn digit_texel(d: &DigitBox, frame: u64, dx: u32, dy: u32) -> [u8; 4] {
    let (cw, _) = d.cell();
    glyph_texel(digit(frame, dx / cw), (dx % cw) / d.scale, dy / d.scale)
}

/// Font unit `(ux, uy)` of digit `value`'s cell (`0..6` x `0..9`).
pub fn glyph_texel(value: u8, ux: u32, uy: u32) -> [u8; 4] {
    let on = ux < 5
        && (1..8).contains(&uy)
        && GLYPHS[value as usize][(uy - 1) as usize] & (0x10 >> ux) != 0;
    if on {
        [255, 255, 255, 255]
    } else {
        [0, 0, 0, 255]
    }
}

/// The whole frame, tightly packed rows of `texel_bytes`-byte texels.
pub fn frame_image(frame: u64, width: u32, height: u32, texel_bytes: u32) -> Vec<u8> {
    let layout = FrameLayout::new(width, height);
    let mut out = Vec::with_capacity((width * height * texel_bytes) as usize);
    for y in 0..height {
        for x in 0..width {
            out.extend_from_slice(&layout.texel(frame, x, y, texel_bytes)[..texel_bytes as usize]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digits_spell_the_frame_number() {
        let d: Vec<u8> = (0..DIGITS).map(|i| digit(1_234_567, i)).collect();
        assert_eq!(d, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(digit(123_456_789, 0), 2, "mod 10^8");
    }

    #[test]
    fn a_1080p_frame_has_a_band_large_digits_and_a_moving_gradient() {
        let l = FrameLayout::new(1920, 1080);
        assert_eq!(l.band_rows, 67);
        let d = l.digits.unwrap();
        assert!(d.scale >= 20, "{d:?}");
        let (w, h) = d.size();
        assert!(d.x + w <= 1920 && d.y + h <= 1080 && d.y >= l.band_rows);
        // The gradient moves left by SPEED texels per frame.
        assert_eq!(l.rgba(1, 10, 900), l.rgba(0, 10 + SPEED, 900));
        assert_ne!(l.rgba(0, 10, 900), l.rgba(1, 10, 900));
        // And wraps without a seam.
        let a = gradient(&l, 1919, 900);
        let b = gradient(&l, 0, 900);
        assert!(a[0].abs_diff(b[0]) <= 1);
    }

    #[test]
    fn tiny_frames_have_no_digits_but_a_band() {
        for (w, h) in [(1, 1), (4, 4), (16, 8)] {
            let l = FrameLayout::new(w, h);
            assert!(l.digits.is_none(), "{w}x{h}");
            assert!(l.band_rows >= 1);
            assert_eq!(frame_image(3, w, h, 4).len(), (w * h * 4) as usize);
        }
    }

    #[test]
    fn the_glyph_of_one_is_a_stem() {
        // Column 2 of "1" is lit on all 7 rows; column 0 only on no row but the base.
        assert!((1..8).all(|uy| glyph_texel(1, 2, uy) == [255; 4]));
        assert_eq!(glyph_texel(1, 0, 1), [0, 0, 0, 255]);
        assert_eq!(glyph_texel(1, 5, 4), [0, 0, 0, 255], "spacing column");
    }
}
