//! The raw Vulkan and OpenGL enum values of [`super::FORMAT_TABLE`]'s columns.

/// Raw `VkFormat` values (from the Vulkan registry), so that the format table does not need the
/// `vulkan` feature. The Vulkan backend's `conv.rs` turns them into `ash::vk::Format`, and its
/// unit tests check them against ash's constants.
#[allow(non_upper_case_globals, missing_docs)]
pub(super) mod vk_raw {
    pub const R8_UNORM: i32 = 9;
    pub const R8_UINT: i32 = 13;
    pub const R8G8_UNORM: i32 = 16;
    pub const R8G8B8A8_UNORM: i32 = 37;
    pub const R8G8B8A8_SNORM: i32 = 38;
    pub const R8G8B8A8_UINT: i32 = 41;
    pub const R8G8B8A8_SRGB: i32 = 43;
    pub const B8G8R8A8_UNORM: i32 = 44;
    pub const B8G8R8A8_SRGB: i32 = 50;
    pub const A2B10G10R10_UNORM_PACK32: i32 = 64;
    pub const R16_UNORM: i32 = 70;
    pub const R16_UINT: i32 = 74;
    pub const R16_SFLOAT: i32 = 76;
    pub const R16G16_UNORM: i32 = 77;
    pub const R16G16_SFLOAT: i32 = 83;
    pub const R16G16B16A16_UNORM: i32 = 91;
    pub const R16G16B16A16_UINT: i32 = 95;
    pub const R16G16B16A16_SFLOAT: i32 = 97;
    pub const R32_UINT: i32 = 98;
    pub const R32_SFLOAT: i32 = 100;
    pub const R32G32_SFLOAT: i32 = 103;
    pub const R32G32B32A32_UINT: i32 = 107;
    pub const R32G32B32A32_SFLOAT: i32 = 109;
    pub const B10G11R11_UFLOAT_PACK32: i32 = 122;
    pub const D16_UNORM: i32 = 124;
    pub const D32_SFLOAT: i32 = 126;
    pub const D24_UNORM_S8_UINT: i32 = 129;
    pub const D32_SFLOAT_S8_UINT: i32 = 130;
    pub const BC1_RGBA_UNORM_BLOCK: i32 = 133;
    pub const BC1_RGBA_SRGB_BLOCK: i32 = 134;
    pub const BC2_UNORM_BLOCK: i32 = 135;
    pub const BC2_SRGB_BLOCK: i32 = 136;
    pub const BC3_UNORM_BLOCK: i32 = 137;
    pub const BC3_SRGB_BLOCK: i32 = 138;
    pub const BC4_UNORM_BLOCK: i32 = 139;
    pub const BC4_SNORM_BLOCK: i32 = 140;
    pub const BC5_UNORM_BLOCK: i32 = 141;
    pub const BC5_SNORM_BLOCK: i32 = 142;
    pub const BC6H_UFLOAT_BLOCK: i32 = 143;
    pub const BC6H_SFLOAT_BLOCK: i32 = 144;
    pub const BC7_UNORM_BLOCK: i32 = 145;
    pub const BC7_SRGB_BLOCK: i32 = 146;
    pub const ETC2_R8G8B8_UNORM_BLOCK: i32 = 147;
    pub const ETC2_R8G8B8_SRGB_BLOCK: i32 = 148;
    pub const ETC2_R8G8B8A1_UNORM_BLOCK: i32 = 149;
    pub const ETC2_R8G8B8A1_SRGB_BLOCK: i32 = 150;
    pub const ETC2_R8G8B8A8_UNORM_BLOCK: i32 = 151;
    pub const ETC2_R8G8B8A8_SRGB_BLOCK: i32 = 152;
    pub const ASTC_4X4_UNORM_BLOCK: i32 = 157;
    pub const ASTC_4X4_SRGB_BLOCK: i32 = 158;
    pub const ASTC_8X8_UNORM_BLOCK: i32 = 171;
    pub const ASTC_8X8_SRGB_BLOCK: i32 = 172;
}

/// Raw OpenGL enum values (from the GL registry), so that the format table needs no GL crate. The
/// GL backend's unit tests check them against glow's constants.
#[allow(non_upper_case_globals, missing_docs)]
pub(super) mod gl_raw {
    pub const RGBA8: u32 = 0x8058;
    pub const SRGB8_ALPHA8: u32 = 0x8C43;
    pub const RGBA8_SNORM: u32 = 0x8F97;
    pub const RGBA8UI: u32 = 0x8D7C;
    pub const R8: u32 = 0x8229;
    pub const R8UI: u32 = 0x8232;
    pub const RG8: u32 = 0x822B;
    pub const R16: u32 = 0x822A;
    pub const R16UI: u32 = 0x8234;
    pub const R16F: u32 = 0x822D;
    pub const RG16: u32 = 0x822C;
    pub const RG16F: u32 = 0x822F;
    pub const RGBA16: u32 = 0x805B;
    pub const RGBA16UI: u32 = 0x8D76;
    pub const RGBA16F: u32 = 0x881A;
    pub const R32UI: u32 = 0x8236;
    pub const R32F: u32 = 0x822E;
    pub const RG32F: u32 = 0x8230;
    pub const RGBA32F: u32 = 0x8814;
    pub const RGBA32UI: u32 = 0x8D70;
    pub const RGB10_A2: u32 = 0x8059;
    pub const R11F_G11F_B10F: u32 = 0x8C3A;
    pub const RGBA: u32 = 0x1908;
    pub const RGB: u32 = 0x1907;
    pub const RED: u32 = 0x1903;
    pub const RG: u32 = 0x8227;
    pub const RGBA_INTEGER: u32 = 0x8D99;
    pub const RED_INTEGER: u32 = 0x8D94;
    pub const UNSIGNED_BYTE: u32 = 0x1401;
    pub const BYTE: u32 = 0x1400;
    pub const UNSIGNED_SHORT: u32 = 0x1403;
    pub const UNSIGNED_INT: u32 = 0x1405;
    pub const HALF_FLOAT: u32 = 0x140B;
    pub const FLOAT: u32 = 0x1406;
    pub const UNSIGNED_INT_2_10_10_10_REV: u32 = 0x8368;
    pub const UNSIGNED_INT_10F_11F_11F_REV: u32 = 0x8C3B;
}
