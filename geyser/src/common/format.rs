//! Texture formats, described once in [`FORMAT_TABLE`]: every API's value for a format
//! (Vulkan, wgpu, Metal, DXGI, IOSurface, DRM fourcc), its block layout and, for block-compressed
//! formats, the compression family (which says the device feature each API needs) are columns
//! of one row. `format/raw.rs`: the raw Vulkan and GL enum values the table uses.

mod raw;

use serde::{Deserialize, Serialize};

use raw::{gl_raw, vk_raw};

/// Which parts of a texel a format stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FormatAspect {
    /// Colour channels only.
    Color,
    /// Depth only.
    Depth,
    /// Stencil only.
    Stencil,
    /// Depth and stencil, copied as two separate aspects.
    DepthStencil,
}

impl FormatAspect {
    /// Whether the format has a depth component.
    pub fn has_depth(self) -> bool {
        matches!(self, Self::Depth | Self::DepthStencil)
    }

    /// Whether the format has a stencil component.
    pub fn has_stencil(self) -> bool {
        matches!(self, Self::Stencil | Self::DepthStencil)
    }
}

/// A family of block-compressed formats. Each needs a device feature in each API: Vulkan's
/// `textureCompressionBC` / `textureCompressionETC2` / `textureCompressionASTC_LDR`, wgpu's
/// `TEXTURE_COMPRESSION_BC` / `TEXTURE_COMPRESSION_ETC2` / `TEXTURE_COMPRESSION_ASTC`.
/// Desktop GPUs usually have BC only, mobile GPUs ETC2 and ASTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compression {
    /// BC1–BC7 (S3TC/DXT, RGTC, BPTC).
    Bc,
    /// ETC2 (and EAC).
    Etc2,
    /// ASTC, low dynamic range profile.
    AstcLdr,
}

impl Compression {
    /// The Vulkan `VkPhysicalDeviceFeatures` member that says a device supports the family.
    pub fn vulkan_feature(self) -> &'static str {
        match self {
            Compression::Bc => "textureCompressionBC",
            Compression::Etc2 => "textureCompressionETC2",
            Compression::AstcLdr => "textureCompressionASTC_LDR",
        }
    }
}

/// The number type of a texel's elements when the texel is read as an array of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElementType {
    /// Unsigned 8-bit integer (also 8-bit unorm/sRGB channels, undecoded).
    U8,
    /// Signed 8-bit integer (8-bit snorm channels, undecoded).
    I8,
    /// Unsigned 16-bit integer (16-bit unorm channels, undecoded).
    U16,
    /// Unsigned 32-bit integer (also packed 32-bit formats, one word per texel).
    U32,
    /// IEEE half float.
    F16,
    /// IEEE single float.
    F32,
}

impl ElementType {
    /// Bytes of one element.
    pub fn bytes(self) -> u32 {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::U16 | Self::F16 => 2,
            Self::U32 | Self::F32 => 4,
        }
    }
}

/// How a colour texel reads as an array of numbers (CUDA arrays, DLPack, NumPy): `count`
/// elements of `element`, in memory order (BGRA stays BGRA; sRGB and unorm values are not
/// decoded). Packed formats (10:10:10:2, 11:11:10) read as one 32-bit word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TexelElements {
    /// The number type.
    pub element: ElementType,
    /// Elements per texel: 1, 2 or 4.
    pub count: u8,
}

/// One row of the format table: what a [`TextureFormat`] is called in every API we speak.
/// Columns of optional APIs exist with their feature (`wgpu` with `webgpu`), so rows are made
/// only by the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FormatInfo {
    /// The format this row describes.
    pub format: TextureFormat,
    /// `VkFormat` raw value (`ash::vk::Format::from_raw`).
    pub vk_format: i32,
    /// The matching `wgpu::TextureFormat`, when wgpu has one (feature `webgpu`).
    #[cfg(feature = "webgpu")]
    pub wgpu: Option<wgpu::TextureFormat>,
    /// `MTLPixelFormat` raw value, when Metal has one.
    pub mtl_pixel_format: Option<u64>,
    /// `DXGI_FORMAT` raw value (D3D11/D3D12, e.g. for a Vulkan image shared with D3D on
    /// Windows), when DXGI has the format (it has no ETC2 or ASTC).
    pub dxgi_format: Option<u32>,
    /// IOSurface pixel format (`kIOSurfacePixelFormat`, a CoreVideo fourcc) when an IOSurface
    /// can back a Metal texture of this format; its bytes per element is [`Self::block_bytes`].
    /// sRGB formats share their linear format's fourcc (sRGB is a property of the view).
    pub iosurface_fourcc: Option<u32>,
    /// DRM fourcc code (`drm_fourcc::DrmFourcc`), for DMA-BUF sharing, when one exists.
    pub drm_fourcc: Option<drm_fourcc::DrmFourcc>,
    /// OpenGL: sized internal format for storage, and the format and type that read a texel's
    /// bytes back in memory order, when GL has the format.
    pub gl: Option<GlFormat>,
    /// Bytes per block: one texel for uncompressed formats, a 4x4 (ASTC: up to 8x8) texel block
    /// for compressed ones.
    pub block_bytes: u32,
    /// Block width and height in texels ((1, 1) for uncompressed formats).
    pub block_size: (u32, u32),
    /// The compression family of a block-compressed format (it says which device feature the
    /// format needs); `None` for uncompressed formats.
    pub compression: Option<Compression>,
    /// Colour, depth and/or stencil.
    pub aspect: FormatAspect,
    /// Whether reads and writes convert between sRGB and linear.
    pub srgb: bool,
    /// Its texels as arrays of numbers (CUDA arrays, DLPack, NumPy); `None` for depth, stencil
    /// and compressed formats.
    pub texels: Option<TexelElements>,
}

/// A format in OpenGL terms (raw GL enums, so the table needs no GL crate): the GL column of
/// [`FORMAT_TABLE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlFormat {
    /// Sized internal format of the texture storage (`GL_RGBA8`, …).
    pub internal: u32,
    /// Pixel format that reads the texel's bytes in memory order (`GL_RGBA`, `GL_RED_INTEGER`, …).
    pub format: u32,
    /// Pixel type of that read (`GL_UNSIGNED_BYTE`, `GL_HALF_FLOAT`, …).
    pub ty: u32,
    /// The memory holds B, G, R, A (BGRA formats): a texture over the same bytes declared
    /// `GL_RGBA8` samples with red and blue swapped, so importers set a swizzle.
    pub swap_rb: bool,
}

macro_rules! format_table {
    ($(
        $(#[$doc:meta])*
        $name:ident => vk $vk:ident, wgpu $wgpu:tt, mtl $mtl:tt, dxgi $dxgi:tt,
            iosurface $ios:tt, drm $drm:tt, gl $gl:tt,
            bytes $bytes:literal $(per $bw:literal x $bh:literal $comp:ident)?,
            $aspect:ident, srgb $srgb:literal, texels $texels:tt;
    )*) => {
        /// A texture format that Geyser can share. Each variant is one row of [`FORMAT_TABLE`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum TextureFormat {
            $($(#[$doc])* $name,)*
        }

        /// Every format Geyser knows, with its value in each API. The only place formats are
        /// mapped: backends read their column from here.
        pub const FORMAT_TABLE: &[FormatInfo] = &[$(
            FormatInfo {
                format: TextureFormat::$name,
                vk_format: format_table!(@vk $vk),
                #[cfg(feature = "webgpu")]
                wgpu: format_table!(@wgpu $wgpu),
                mtl_pixel_format: format_table!(@opt $mtl),
                dxgi_format: format_table!(@opt $dxgi),
                iosurface_fourcc: format_table!(@fourcc $ios),
                drm_fourcc: format_table!(@drm $drm),
                gl: format_table!(@gl $gl),
                block_bytes: $bytes,
                block_size: format_table!(@block $($bw, $bh)?),
                compression: format_table!(@comp $($comp)?),
                aspect: FormatAspect::$aspect,
                srgb: $srgb,
                texels: format_table!(@texels $texels),
            },
        )*];
    };
    (@gl -) => { None };
    (@gl ($i:ident, $f:ident, $t:ident)) => {
        Some(GlFormat { internal: gl_raw::$i, format: gl_raw::$f, ty: gl_raw::$t, swap_rb: false })
    };
    (@gl ($i:ident, $f:ident, $t:ident, swap_rb)) => {
        Some(GlFormat { internal: gl_raw::$i, format: gl_raw::$f, ty: gl_raw::$t, swap_rb: true })
    };
    (@texels -) => { None };
    (@texels ($e:ident, $n:literal)) => { Some(TexelElements { element: ElementType::$e, count: $n }) };
    (@wgpu -) => { None };
    (@wgpu $v:ident) => { Some(wgpu::TextureFormat::$v) };
    (@wgpu (astc $block:ident $channel:ident)) => {
        Some(wgpu::TextureFormat::Astc {
            block: wgpu::AstcBlock::$block,
            channel: wgpu::AstcChannel::$channel,
        })
    };
    (@block) => { (1, 1) };
    (@block $w:literal, $h:literal) => { ($w, $h) };
    (@comp) => { None };
    (@comp $c:ident) => { Some(Compression::$c) };
    (@vk $vk:ident) => { vk_raw::$vk };
    (@opt -) => { None };
    (@opt $v:literal) => { Some($v) };
    (@fourcc -) => { None };
    (@fourcc $v:literal) => { Some(u32::from_be_bytes(*$v)) };
    (@drm -) => { None };
    (@drm $v:ident) => { Some(drm_fourcc::DrmFourcc::$v) };
}

format_table! {
    /// 8-bit normalized RGBA (`VK_FORMAT_R8G8B8A8_UNORM`).
    Rgba8Unorm => vk R8G8B8A8_UNORM, wgpu Rgba8Unorm, mtl 70, dxgi 28, iosurface b"RGBA", drm Abgr8888, gl (RGBA8, RGBA, UNSIGNED_BYTE), bytes 4, Color, srgb false, texels (U8, 4);
    /// 8-bit RGBA with sRGB encoding.
    Rgba8UnormSrgb => vk R8G8B8A8_SRGB, wgpu Rgba8UnormSrgb, mtl 71, dxgi 29, iosurface b"RGBA", drm Abgr8888, gl (SRGB8_ALPHA8, RGBA, UNSIGNED_BYTE), bytes 4, Color, srgb true, texels (U8, 4);
    /// 8-bit signed normalized RGBA.
    Rgba8Snorm => vk R8G8B8A8_SNORM, wgpu Rgba8Snorm, mtl 72, dxgi 31, iosurface -, drm -, gl (RGBA8_SNORM, RGBA, BYTE), bytes 4, Color, srgb false, texels (I8, 4);
    /// 8-bit unsigned integer RGBA.
    Rgba8Uint => vk R8G8B8A8_UINT, wgpu Rgba8Uint, mtl 73, dxgi 30, iosurface -, drm -, gl (RGBA8UI, RGBA_INTEGER, UNSIGNED_BYTE), bytes 4, Color, srgb false, texels (U8, 4);
    /// 8-bit normalized BGRA, the usual swapchain and video layout.
    Bgra8Unorm => vk B8G8R8A8_UNORM, wgpu Bgra8Unorm, mtl 80, dxgi 87, iosurface b"BGRA", drm Argb8888, gl (RGBA8, RGBA, UNSIGNED_BYTE, swap_rb), bytes 4, Color, srgb false, texels (U8, 4);
    /// 8-bit BGRA with sRGB encoding.
    Bgra8UnormSrgb => vk B8G8R8A8_SRGB, wgpu Bgra8UnormSrgb, mtl 81, dxgi 91, iosurface b"BGRA", drm Argb8888, gl (SRGB8_ALPHA8, RGBA, UNSIGNED_BYTE, swap_rb), bytes 4, Color, srgb true, texels (U8, 4);
    /// One 8-bit normalized channel.
    R8Unorm => vk R8_UNORM, wgpu R8Unorm, mtl 10, dxgi 61, iosurface b"L008", drm R8, gl (R8, RED, UNSIGNED_BYTE), bytes 1, Color, srgb false, texels (U8, 1);
    /// One 8-bit unsigned integer channel.
    R8Uint => vk R8_UINT, wgpu R8Uint, mtl 13, dxgi 62, iosurface -, drm -, gl (R8UI, RED_INTEGER, UNSIGNED_BYTE), bytes 1, Color, srgb false, texels (U8, 1);
    /// Two 8-bit normalized channels.
    Rg8Unorm => vk R8G8_UNORM, wgpu Rg8Unorm, mtl 30, dxgi 49, iosurface b"2C08", drm Gr88, gl (RG8, RG, UNSIGNED_BYTE), bytes 2, Color, srgb false, texels (U8, 2);
    /// One 16-bit normalized channel.
    R16Unorm => vk R16_UNORM, wgpu R16Unorm, mtl 20, dxgi 56, iosurface b"L016", drm R16, gl (R16, RED, UNSIGNED_SHORT), bytes 2, Color, srgb false, texels (U16, 1);
    /// One 16-bit unsigned integer channel.
    R16Uint => vk R16_UINT, wgpu R16Uint, mtl 23, dxgi 57, iosurface -, drm -, gl (R16UI, RED_INTEGER, UNSIGNED_SHORT), bytes 2, Color, srgb false, texels (U16, 1);
    /// One 16-bit float channel.
    R16Float => vk R16_SFLOAT, wgpu R16Float, mtl 25, dxgi 54, iosurface b"L00h", drm -, gl (R16F, RED, HALF_FLOAT), bytes 2, Color, srgb false, texels (F16, 1);
    /// Two 16-bit normalized channels.
    Rg16Unorm => vk R16G16_UNORM, wgpu Rg16Unorm, mtl 60, dxgi 35, iosurface b"2C16", drm Gr1616, gl (RG16, RG, UNSIGNED_SHORT), bytes 4, Color, srgb false, texels (U16, 2);
    /// Two 16-bit float channels.
    Rg16Float => vk R16G16_SFLOAT, wgpu Rg16Float, mtl 65, dxgi 34, iosurface b"2C0h", drm -, gl (RG16F, RG, HALF_FLOAT), bytes 4, Color, srgb false, texels (F16, 2);
    /// 16-bit normalized RGBA.
    Rgba16Unorm => vk R16G16B16A16_UNORM, wgpu Rgba16Unorm, mtl 110, dxgi 11, iosurface b"l64r", drm -, gl (RGBA16, RGBA, UNSIGNED_SHORT), bytes 8, Color, srgb false, texels (U16, 4);
    /// 16-bit unsigned integer RGBA.
    Rgba16Uint => vk R16G16B16A16_UINT, wgpu Rgba16Uint, mtl 113, dxgi 12, iosurface -, drm -, gl (RGBA16UI, RGBA_INTEGER, UNSIGNED_SHORT), bytes 8, Color, srgb false, texels (U16, 4);
    /// 16-bit float RGBA, the common HDR format.
    Rgba16Float => vk R16G16B16A16_SFLOAT, wgpu Rgba16Float, mtl 115, dxgi 10, iosurface b"RGhA", drm Abgr16161616f, gl (RGBA16F, RGBA, HALF_FLOAT), bytes 8, Color, srgb false, texels (F16, 4);
    /// One 32-bit unsigned integer channel.
    R32Uint => vk R32_UINT, wgpu R32Uint, mtl 53, dxgi 42, iosurface -, drm -, gl (R32UI, RED_INTEGER, UNSIGNED_INT), bytes 4, Color, srgb false, texels (U32, 1);
    /// One 32-bit float channel.
    R32Float => vk R32_SFLOAT, wgpu R32Float, mtl 55, dxgi 41, iosurface b"L00f", drm -, gl (R32F, RED, FLOAT), bytes 4, Color, srgb false, texels (F32, 1);
    /// Two 32-bit float channels.
    Rg32Float => vk R32G32_SFLOAT, wgpu Rg32Float, mtl 105, dxgi 16, iosurface b"2C0f", drm -, gl (RG32F, RG, FLOAT), bytes 8, Color, srgb false, texels (F32, 2);
    /// 32-bit float RGBA.
    Rgba32Float => vk R32G32B32A32_SFLOAT, wgpu Rgba32Float, mtl 125, dxgi 2, iosurface b"RGfA", drm -, gl (RGBA32F, RGBA, FLOAT), bytes 16, Color, srgb false, texels (F32, 4);
    /// 32-bit unsigned integer RGBA.
    Rgba32Uint => vk R32G32B32A32_UINT, wgpu Rgba32Uint, mtl 123, dxgi 3, iosurface -, drm -, gl (RGBA32UI, RGBA_INTEGER, UNSIGNED_INT), bytes 16, Color, srgb false, texels (U32, 4);
    /// 10-bit RGB with 2-bit alpha, packed in 32 bits (`A2B10G10R10_UNORM_PACK32`).
    Rgb10a2Unorm => vk A2B10G10R10_UNORM_PACK32, wgpu Rgb10a2Unorm, mtl 90, dxgi 24, iosurface -, drm Abgr2101010, gl (RGB10_A2, RGBA, UNSIGNED_INT_2_10_10_10_REV), bytes 4, Color, srgb false, texels (U32, 1);
    /// Packed unsigned floats, 11/11/10 bits (`B10G11R11_UFLOAT_PACK32`).
    Rg11b10Float => vk B10G11R11_UFLOAT_PACK32, wgpu Rg11b10Ufloat, mtl 92, dxgi 26, iosurface -, drm -, gl (R11F_G11F_B10F, RGB, UNSIGNED_INT_10F_11F_11F_REV), bytes 4, Color, srgb false, texels (U32, 1);
    /// 16-bit normalized depth.
    Depth16Unorm => vk D16_UNORM, wgpu Depth16Unorm, mtl 250, dxgi 55, iosurface -, drm -, gl -, bytes 2, Depth, srgb false, texels -;
    /// 24-bit normalized depth with 8-bit stencil (wgpu's `Depth24PlusStencil8` where it maps to
    /// this Vulkan format).
    Depth24UnormStencil8 => vk D24_UNORM_S8_UINT, wgpu Depth24PlusStencil8, mtl 255, dxgi 45, iosurface -, drm -, gl -, bytes 4, DepthStencil, srgb false, texels -;
    /// 32-bit float depth.
    Depth32Float => vk D32_SFLOAT, wgpu Depth32Float, mtl 252, dxgi 40, iosurface -, drm -, gl -, bytes 4, Depth, srgb false, texels -;
    /// 32-bit float depth with 8-bit stencil.
    Depth32FloatStencil8 => vk D32_SFLOAT_S8_UINT, wgpu Depth32FloatStencil8, mtl 260, dxgi 20, iosurface -, drm -, gl -, bytes 8, DepthStencil, srgb false, texels -;
    /// BC1 (DXT1): RGB with 1-bit alpha, 4x4 blocks of 8 bytes.
    Bc1RgbaUnorm => vk BC1_RGBA_UNORM_BLOCK, wgpu Bc1RgbaUnorm, mtl 130, dxgi 71, iosurface -, drm -, gl -, bytes 8 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC1 with sRGB encoding.
    Bc1RgbaUnormSrgb => vk BC1_RGBA_SRGB_BLOCK, wgpu Bc1RgbaUnormSrgb, mtl 131, dxgi 72, iosurface -, drm -, gl -, bytes 8 per 4 x 4 Bc, Color, srgb true, texels -;
    /// BC2 (DXT3): RGB with explicit 4-bit alpha, 4x4 blocks of 16 bytes.
    Bc2RgbaUnorm => vk BC2_UNORM_BLOCK, wgpu Bc2RgbaUnorm, mtl 132, dxgi 74, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC2 with sRGB encoding.
    Bc2RgbaUnormSrgb => vk BC2_SRGB_BLOCK, wgpu Bc2RgbaUnormSrgb, mtl 133, dxgi 75, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb true, texels -;
    /// BC3 (DXT5): RGB with interpolated alpha, 4x4 blocks of 16 bytes.
    Bc3RgbaUnorm => vk BC3_UNORM_BLOCK, wgpu Bc3RgbaUnorm, mtl 134, dxgi 77, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC3 with sRGB encoding.
    Bc3RgbaUnormSrgb => vk BC3_SRGB_BLOCK, wgpu Bc3RgbaUnormSrgb, mtl 135, dxgi 78, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb true, texels -;
    /// BC4 (RGTC1): one normalized channel, 4x4 blocks of 8 bytes.
    Bc4RUnorm => vk BC4_UNORM_BLOCK, wgpu Bc4RUnorm, mtl 140, dxgi 80, iosurface -, drm -, gl -, bytes 8 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC4, signed.
    Bc4RSnorm => vk BC4_SNORM_BLOCK, wgpu Bc4RSnorm, mtl 141, dxgi 81, iosurface -, drm -, gl -, bytes 8 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC5 (RGTC2): two normalized channels, 4x4 blocks of 16 bytes.
    Bc5RgUnorm => vk BC5_UNORM_BLOCK, wgpu Bc5RgUnorm, mtl 142, dxgi 83, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC5, signed.
    Bc5RgSnorm => vk BC5_SNORM_BLOCK, wgpu Bc5RgSnorm, mtl 143, dxgi 84, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC6H: unsigned half-float RGB (HDR), 4x4 blocks of 16 bytes.
    Bc6hRgbUfloat => vk BC6H_UFLOAT_BLOCK, wgpu Bc6hRgbUfloat, mtl 151, dxgi 95, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC6H: signed half-float RGB (HDR).
    Bc6hRgbFloat => vk BC6H_SFLOAT_BLOCK, wgpu Bc6hRgbFloat, mtl 150, dxgi 96, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC7 (BPTC): high-quality RGBA, 4x4 blocks of 16 bytes.
    Bc7RgbaUnorm => vk BC7_UNORM_BLOCK, wgpu Bc7RgbaUnorm, mtl 152, dxgi 98, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb false, texels -;
    /// BC7 with sRGB encoding.
    Bc7RgbaUnormSrgb => vk BC7_SRGB_BLOCK, wgpu Bc7RgbaUnormSrgb, mtl 153, dxgi 99, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Bc, Color, srgb true, texels -;
    /// ETC2 RGB, 4x4 blocks of 8 bytes.
    Etc2Rgb8Unorm => vk ETC2_R8G8B8_UNORM_BLOCK, wgpu Etc2Rgb8Unorm, mtl 180, dxgi -, iosurface -, drm -, gl -, bytes 8 per 4 x 4 Etc2, Color, srgb false, texels -;
    /// ETC2 RGB with sRGB encoding.
    Etc2Rgb8UnormSrgb => vk ETC2_R8G8B8_SRGB_BLOCK, wgpu Etc2Rgb8UnormSrgb, mtl 181, dxgi -, iosurface -, drm -, gl -, bytes 8 per 4 x 4 Etc2, Color, srgb true, texels -;
    /// ETC2 RGB with 1-bit alpha, 4x4 blocks of 8 bytes.
    Etc2Rgb8A1Unorm => vk ETC2_R8G8B8A1_UNORM_BLOCK, wgpu Etc2Rgb8A1Unorm, mtl 182, dxgi -, iosurface -, drm -, gl -, bytes 8 per 4 x 4 Etc2, Color, srgb false, texels -;
    /// ETC2 RGB with 1-bit alpha and sRGB encoding.
    Etc2Rgb8A1UnormSrgb => vk ETC2_R8G8B8A1_SRGB_BLOCK, wgpu Etc2Rgb8A1UnormSrgb, mtl 183, dxgi -, iosurface -, drm -, gl -, bytes 8 per 4 x 4 Etc2, Color, srgb true, texels -;
    /// ETC2 RGBA (EAC alpha), 4x4 blocks of 16 bytes (Metal's `EAC_RGBA8`).
    Etc2Rgba8Unorm => vk ETC2_R8G8B8A8_UNORM_BLOCK, wgpu Etc2Rgba8Unorm, mtl 178, dxgi -, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Etc2, Color, srgb false, texels -;
    /// ETC2 RGBA with sRGB encoding.
    Etc2Rgba8UnormSrgb => vk ETC2_R8G8B8A8_SRGB_BLOCK, wgpu Etc2Rgba8UnormSrgb, mtl 179, dxgi -, iosurface -, drm -, gl -, bytes 16 per 4 x 4 Etc2, Color, srgb true, texels -;
    /// ASTC LDR, 4x4 blocks of 16 bytes (8 bits per texel).
    Astc4x4Unorm => vk ASTC_4X4_UNORM_BLOCK, wgpu (astc B4x4 Unorm), mtl 204, dxgi -, iosurface -, drm -, gl -, bytes 16 per 4 x 4 AstcLdr, Color, srgb false, texels -;
    /// ASTC LDR 4x4 with sRGB encoding.
    Astc4x4UnormSrgb => vk ASTC_4X4_SRGB_BLOCK, wgpu (astc B4x4 UnormSrgb), mtl 186, dxgi -, iosurface -, drm -, gl -, bytes 16 per 4 x 4 AstcLdr, Color, srgb true, texels -;
    /// ASTC LDR, 8x8 blocks of 16 bytes (2 bits per texel).
    Astc8x8Unorm => vk ASTC_8X8_UNORM_BLOCK, wgpu (astc B8x8 Unorm), mtl 212, dxgi -, iosurface -, drm -, gl -, bytes 16 per 8 x 8 AstcLdr, Color, srgb false, texels -;
    /// ASTC LDR 8x8 with sRGB encoding.
    Astc8x8UnormSrgb => vk ASTC_8X8_SRGB_BLOCK, wgpu (astc B8x8 UnormSrgb), mtl 194, dxgi -, iosurface -, drm -, gl -, bytes 16 per 8 x 8 AstcLdr, Color, srgb true, texels -;
}

impl TextureFormat {
    /// Its texels as arrays of numbers (the table's `texels` column); `None` for depth, stencil
    /// and compressed formats.
    pub fn texel_elements(self) -> Option<TexelElements> {
        self.info().texels
    }

    /// All formats, in table order.
    pub fn all() -> impl ExactSizeIterator<Item = TextureFormat> {
        FORMAT_TABLE.iter().map(|row| row.format)
    }

    /// This format's row of [`FORMAT_TABLE`].
    pub fn info(self) -> &'static FormatInfo {
        // The table is generated from the enum in declaration order, so the discriminant is
        // the row index; `table_rows_follow_enum_order` pins it.
        &FORMAT_TABLE[self as usize]
    }

    /// Bytes of one block: a texel for uncompressed formats, a [`Self::block_size`] block of
    /// texels for compressed ones. For depth/stencil formats this is the in-memory size;
    /// copies move each aspect separately (see [`Self::aspect_copy_bytes`]).
    pub fn block_bytes(self) -> u32 {
        self.info().block_bytes
    }

    /// Block width and height in texels: (1, 1) unless the format is compressed.
    pub fn block_size(self) -> (u32, u32) {
        self.info().block_size
    }

    /// The compression family, for block-compressed formats.
    pub fn compression(self) -> Option<Compression> {
        self.info().compression
    }

    /// Whether the format is block-compressed.
    pub fn is_compressed(self) -> bool {
        self.info().compression.is_some()
    }

    /// Blocks covering `width` x `height` texels (each side rounded up to whole blocks).
    pub fn blocks(self, width: u32, height: u32) -> (u32, u32) {
        let (bw, bh) = self.block_size();
        (width.div_ceil(bw), height.div_ceil(bh))
    }

    /// Colour, depth and/or stencil.
    pub fn aspect(self) -> FormatAspect {
        self.info().aspect
    }

    /// Whether the format is sRGB-encoded.
    pub fn is_srgb(self) -> bool {
        self.info().srgb
    }

    /// Whether the format holds depth and/or stencil rather than colour.
    pub fn is_depth_stencil(self) -> bool {
        !matches!(self.aspect(), FormatAspect::Color)
    }

    /// Bytes per texel block in a buffer when one aspect is copied to or from it, as Vulkan
    /// lays it out (`vkCmdCopyImageToBuffer`): depth of D24 takes 4 bytes, stencil always 1,
    /// a compressed block its [`Self::block_bytes`].
    pub fn aspect_copy_bytes(self, aspect: crate::common::TextureAspect) -> u32 {
        use crate::common::TextureAspect;
        match (self, aspect) {
            (_, TextureAspect::Stencil) => 1,
            (Self::Depth16Unorm, _) => 2,
            (Self::Depth24UnormStencil8 | Self::Depth32Float | Self::Depth32FloatStencil8, _) => 4,
            (f, _) => f.block_bytes(),
        }
    }

    /// The format with this raw `VkFormat` value, if it is in the table.
    pub fn from_vk_raw(raw: i32) -> Option<Self> {
        FORMAT_TABLE
            .iter()
            .find(|r| r.vk_format == raw)
            .map(|r| r.format)
    }

    /// The matching `wgpu::TextureFormat` (the table's wgpu column), if wgpu has one.
    #[cfg(feature = "webgpu")]
    pub fn to_wgpu(self) -> Option<wgpu::TextureFormat> {
        self.info().wgpu
    }

    /// The format whose wgpu column is `format`, if any.
    #[cfg(feature = "webgpu")]
    pub fn from_wgpu(format: wgpu::TextureFormat) -> Option<Self> {
        FORMAT_TABLE
            .iter()
            .find(|r| r.wgpu == Some(format))
            .map(|r| r.format)
    }

    /// The format with this `MTLPixelFormat` value, if any.
    pub fn from_mtl_pixel_format(raw: u64) -> Option<Self> {
        FORMAT_TABLE
            .iter()
            .find(|r| r.mtl_pixel_format == Some(raw))
            .map(|r| r.format)
    }

    /// The format with this `DXGI_FORMAT` value, if it is in the table.
    pub fn from_dxgi_format(raw: u32) -> Option<Self> {
        FORMAT_TABLE
            .iter()
            .find(|r| r.dxgi_format == Some(raw))
            .map(|r| r.format)
    }

    /// The linear (non-sRGB) format an IOSurface of this pixel format holds, if any.
    pub fn from_iosurface_fourcc(code: u32) -> Option<Self> {
        FORMAT_TABLE
            .iter()
            .find(|r| r.iosurface_fourcc == Some(code) && !r.srgb)
            .map(|r| r.format)
    }

    /// The linear (non-sRGB) format with this DRM fourcc, if any.
    pub fn from_drm_fourcc(code: drm_fourcc::DrmFourcc) -> Option<Self> {
        FORMAT_TABLE
            .iter()
            .find(|r| r.drm_fourcc == Some(code) && !r.srgb)
            .map(|r| r.format)
    }

    /// Short lowercase name as accepted by [`std::str::FromStr`] (`rgba8unorm`).
    pub fn name(self) -> String {
        format!("{self:?}").to_ascii_lowercase()
    }
}

impl std::fmt::Display for TextureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::str::FromStr for TextureFormat {
    type Err = crate::Error;

    /// Parses a format name case-insensitively, ignoring `-` and `_` (`rgba8unorm`,
    /// `Rgba8Unorm`, `rgba8-unorm`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let want: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        TextureFormat::all()
            .find(|f| f.name() == want)
            .ok_or_else(|| crate::Error::InvalidArgument {
                what: "texture format",
                reason: format!(
                    "unknown format `{s}`; known: {}",
                    TextureFormat::all()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests;
