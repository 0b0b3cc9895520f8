//! Frames as pictures: [`to_rgba8`] turns the texels of one layer of any uncompressed table
//! format into 8-bit sRGB RGBA, [`write_png`] and [`read_png`] store and load them. What
//! `geyser snapshot` and `geyser view --screenshot` write, and what their tests read.
//!
//! How each kind of format becomes a display value:
//! - 8-bit and 16-bit UNORM colour, 10-bit RGB: taken as already display-encoded (what video,
//!   UI and most 8-bit content hold), scaled to 8 bits; sRGB formats are encoded by definition.
//! - SNORM: -1..1 mapped to 0..255. Integer (UINT): the value, clamped to 255.
//! - Float (16/32-bit, 11/11/10): linear light, clamped to 0..1 and sRGB-encoded.
//! - Depth: 0..1 as linear grey (D16 and D24 normalized, D32F clamped); stencil is not drawn.
//! - One or two channels: grey, or red/green.
//! - Block-compressed formats are not decoded ([`Error::Unsupported`]).

use std::path::Path;

use geyser::common::{TextureAspect, TextureFormat};
use geyser::{Error, Result};

/// An 8-bit sRGB RGBA picture, rows top to bottom, tightly packed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgba8Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

impl Rgba8Image {
    /// The RGBA bytes of pixel `(x, y)`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        [
            self.pixels[i],
            self.pixels[i + 1],
            self.pixels[i + 2],
            self.pixels[i + 3],
        ]
    }
}

/// The sRGB transfer function of a linear value, to 8 bits (clamped to 0..1 first).
pub fn srgb_encode(linear: f32) -> u8 {
    let c = if linear.is_nan() {
        0.0
    } else {
        linear.clamp(0.0, 1.0)
    };
    let s = if c <= 0.003_130_8 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    };
    (s * 255.0 + 0.5) as u8
}

fn unorm8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// A packed unsigned float of `mantissa` mantissa bits and a 5-bit exponent (the 11- and
/// 10-bit floats of `B10G11R11_UFLOAT_PACK32`).
fn ufloat(bits: u32, mantissa: u32) -> f32 {
    let m = bits & ((1 << mantissa) - 1);
    let e = (bits >> mantissa) & 0x1f;
    let frac = m as f32 / (1u32 << mantissa) as f32;
    match e {
        0 => frac * 2f32.powi(-14),
        31 => 1.0, // infinity or NaN: shown as full intensity
        e => 2f32.powi(e as i32 - 15) * (1.0 + frac),
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[2 * i], b[2 * i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

fn half(b: &[u8], i: usize) -> f32 {
    half::f16::from_bits(u16_at(b, i)).to_f32()
}

fn float(b: &[u8], i: usize) -> f32 {
    f32::from_bits(u32_at(b, i))
}

/// One texel's bytes (`aspect` of `format`) as an sRGB RGBA pixel.
fn pixel(format: TextureFormat, aspect: TextureAspect, t: &[u8]) -> [u8; 4] {
    use TextureFormat as F;
    let grey = |v: u8| [v, v, v, 255];
    let clamp = |v: u32| v.min(255) as u8;
    match (format, aspect) {
        (F::Rgba8Unorm | F::Rgba8UnormSrgb | F::Rgba8Uint, _) => [t[0], t[1], t[2], t[3]],
        (F::Bgra8Unorm | F::Bgra8UnormSrgb, _) => [t[2], t[1], t[0], t[3]],
        (F::Rgba8Snorm, _) => {
            let s = |v: u8| unorm8(((v as i8) as f32 / 127.0).max(-1.0) * 0.5 + 0.5);
            [s(t[0]), s(t[1]), s(t[2]), s(t[3])]
        }
        (F::R8Unorm | F::R8Uint, _) => grey(t[0]),
        (F::Rg8Unorm, _) => [t[0], t[1], 0, 255],
        (F::R16Unorm, _) => grey((u16_at(t, 0) >> 8) as u8),
        (F::R16Uint, _) => grey(clamp(u32::from(u16_at(t, 0)))),
        (F::R16Float, _) => grey(srgb_encode(half(t, 0))),
        (F::Rg16Unorm, _) => [(u16_at(t, 0) >> 8) as u8, (u16_at(t, 1) >> 8) as u8, 0, 255],
        (F::Rg16Float, _) => [srgb_encode(half(t, 0)), srgb_encode(half(t, 1)), 0, 255],
        (F::Rgba16Unorm, _) => std::array::from_fn(|i| (u16_at(t, i) >> 8) as u8),
        (F::Rgba16Uint, _) => std::array::from_fn(|i| clamp(u32::from(u16_at(t, i)))),
        (F::Rgba16Float, _) => {
            let c = |i| srgb_encode(half(t, i));
            [c(0), c(1), c(2), unorm8(half(t, 3))]
        }
        (F::R32Uint, _) => grey(clamp(u32_at(t, 0))),
        (F::R32Float, _) => grey(srgb_encode(float(t, 0))),
        (F::Rg32Float, _) => [srgb_encode(float(t, 0)), srgb_encode(float(t, 1)), 0, 255],
        (F::Rgba32Float, _) => {
            let c = |i| srgb_encode(float(t, i));
            [c(0), c(1), c(2), unorm8(float(t, 3))]
        }
        (F::Rgba32Uint, _) => std::array::from_fn(|i| clamp(u32_at(t, i))),
        (F::Rgb10a2Unorm, _) => {
            let v = u32_at(t, 0);
            let c = |shift: u32| ((v >> shift) & 0x3ff) as f32 / 1023.0;
            [
                unorm8(c(0)),
                unorm8(c(10)),
                unorm8(c(20)),
                ((v >> 30) * 85) as u8,
            ]
        }
        (F::Rg11b10Float, _) => {
            let v = u32_at(t, 0);
            let (r, g, b) = (
                ufloat(v & 0x7ff, 6),
                ufloat((v >> 11) & 0x7ff, 6),
                ufloat(v >> 22, 5),
            );
            [srgb_encode(r), srgb_encode(g), srgb_encode(b), 255]
        }
        (F::Depth16Unorm, _) => grey(unorm8(f32::from(u16_at(t, 0)) / 65535.0)),
        (F::Depth24UnormStencil8, _) => {
            grey(unorm8((u32_at(t, 0) & 0xff_ffff) as f32 / 16_777_215.0))
        }
        (_, _) => grey(unorm8(float(t, 0))), // D32F, with or without stencil
    }
}

/// Converts `bytes`, the first layer of mip 0 of one aspect (tightly packed, as
/// `read_texture` returns it; the rest of the buffer is ignored), to an 8-bit sRGB image.
/// Depth/stencil formats take their depth aspect.
pub fn to_rgba8(
    format: TextureFormat,
    width: u32,
    height: u32,
    bytes: &[u8],
) -> Result<Rgba8Image> {
    if format.is_compressed() {
        return Err(Error::unsupported(
            format!("{format} as a picture"),
            "block-compressed frames are not decoded; copy them into an uncompressed texture first",
        ));
    }
    let aspect = TextureAspect::all_of(format)[0];
    let texel = format.aspect_copy_bytes(aspect) as usize;
    let need = width as usize * height as usize * texel;
    if bytes.len() < need {
        return Err(Error::InvalidArgument {
            what: "texel data",
            reason: format!(
                "{} bytes for a {width}x{height} {format} picture of {need}",
                bytes.len()
            ),
        });
    }
    let pixels = bytes[..need]
        .chunks_exact(texel)
        .flat_map(|t| pixel(format, aspect, t))
        .collect();
    Ok(Rgba8Image {
        width,
        height,
        pixels,
    })
}

/// Writes `image` as an 8-bit RGBA PNG (tagged sRGB).
pub fn write_png(path: &Path, image: &Rgba8Image) -> Result<()> {
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), image.width, image.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
    let png_err = |e: png::EncodingError| Error::Io(std::io::Error::other(e));
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(&image.pixels).map_err(png_err)?;
    writer.finish().map_err(png_err)
}

/// Reads an 8-bit RGBA PNG (what [`write_png`] writes).
pub fn read_png(path: &Path) -> Result<Rgba8Image> {
    let decoder = png::Decoder::new(std::fs::File::open(path)?);
    let png_err = |e: png::DecodingError| Error::Io(std::io::Error::other(e));
    let mut reader = decoder.read_info().map_err(png_err)?;
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).map_err(png_err)?;
    if (info.color_type, info.bit_depth) != (png::ColorType::Rgba, png::BitDepth::Eight) {
        return Err(Error::InvalidArgument {
            what: "PNG",
            reason: format!(
                "{}: {:?} {:?}, expected 8-bit RGBA",
                path.display(),
                info.color_type,
                info.bit_depth
            ),
        });
    }
    pixels.truncate(info.buffer_size());
    Ok(Rgba8Image {
        width: info.width,
        height: info.height,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bit_colour_keeps_its_bytes_and_bgra_is_swapped() {
        let t = [10, 20, 30, 40];
        assert_eq!(
            to_rgba8(TextureFormat::Rgba8Unorm, 1, 1, &t)
                .unwrap()
                .pixels,
            t
        );
        assert_eq!(
            to_rgba8(TextureFormat::Bgra8Unorm, 1, 1, &t)
                .unwrap()
                .pixels,
            [30, 20, 10, 40]
        );
    }

    #[test]
    fn floats_are_srgb_encoded_and_depth_is_grey() {
        let half_one = half::f16::from_f32(1.0).to_bits().to_le_bytes();
        let half_mid = half::f16::from_f32(0.2140).to_bits().to_le_bytes();
        let t = [half_one, half_mid, [0, 0], half_one].concat();
        let p = to_rgba8(TextureFormat::Rgba16Float, 1, 1, &t)
            .unwrap()
            .pixels;
        assert_eq!(p[0], 255);
        assert!(
            (p[1] as i32 - 128).abs() <= 1,
            "linear 0.214 is sRGB ~0.5: {}",
            p[1]
        );
        assert_eq!((p[2], p[3]), (0, 255));
        let d = 0.5f32.to_le_bytes();
        let g = to_rgba8(TextureFormat::Depth32Float, 1, 1, &d)
            .unwrap()
            .pixels;
        assert_eq!(g, [128, 128, 128, 255]);
        let d24 = 0x00ff_ffffu32.to_le_bytes();
        assert_eq!(
            to_rgba8(TextureFormat::Depth24UnormStencil8, 1, 1, &d24)
                .unwrap()
                .pixels,
            [255; 4]
        );
    }

    #[test]
    fn packed_formats_decode_their_fields() {
        // R = 1023, G = 0, B = 512, A = 3.
        let v: u32 = 1023 | (512 << 20) | (3 << 30);
        let p = to_rgba8(TextureFormat::Rgb10a2Unorm, 1, 1, &v.to_le_bytes())
            .unwrap()
            .pixels;
        assert_eq!(p, [255, 0, 128, 255]);
        // 11-bit 1.0 is exponent 15, mantissa 0.
        let one11 = 15 << 6;
        let v: u32 = one11 | (one11 << 11);
        let p = to_rgba8(TextureFormat::Rg11b10Float, 1, 1, &v.to_le_bytes())
            .unwrap()
            .pixels;
        assert_eq!(p, [255, 255, 0, 255]);
    }

    #[test]
    fn compressed_and_short_inputs_are_errors() {
        assert!(matches!(
            to_rgba8(TextureFormat::Bc1RgbaUnorm, 4, 4, &[0; 8]),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            to_rgba8(TextureFormat::Rgba8Unorm, 2, 2, &[0; 8]),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn png_round_trips() {
        let image = Rgba8Image {
            width: 3,
            height: 2,
            pixels: (0..24).collect(),
        };
        let path = std::env::temp_dir().join(format!("geyser-png-{}.png", std::process::id()));
        write_png(&path, &image).unwrap();
        assert_eq!(read_png(&path).unwrap(), image);
        std::fs::remove_file(path).unwrap();
    }
}
