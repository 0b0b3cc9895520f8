//! Geyser texture formats as GStreamer video formats, read from the format table's DRM fourcc
//! column (both name the same bytes in memory): RGBA, BGRA, GRAY8, GRAY16_LE, RGB10A2_LE.

use drm_fourcc::DrmFourcc;
use geyser::common::TextureFormat;
use gst_video::VideoFormat;

/// The DRM fourccs the elements carry, with their GStreamer names.
const BY_FOURCC: [(DrmFourcc, VideoFormat); 5] = [
    (DrmFourcc::Abgr8888, VideoFormat::Rgba),
    (DrmFourcc::Argb8888, VideoFormat::Bgra),
    (DrmFourcc::R8, VideoFormat::Gray8),
    (DrmFourcc::R16, VideoFormat::Gray16Le),
    (DrmFourcc::Abgr2101010, VideoFormat::Rgb10a2Le),
];

/// The video formats the elements accept and produce.
pub(crate) fn video_formats() -> impl Iterator<Item = VideoFormat> {
    BY_FOURCC.iter().map(|(_, v)| *v)
}

/// The GStreamer format whose bytes are those of `format` (sRGB textures map to their linear
/// twin's format: the bytes are the same), if there is one.
pub fn video_format(format: TextureFormat) -> Option<VideoFormat> {
    let fourcc = format.info().drm_fourcc?;
    BY_FOURCC
        .iter()
        .find(|(f, _)| *f == fourcc)
        .map(|(_, v)| *v)
}

/// The (non-sRGB) texture format that holds `format`'s bytes, if there is one.
pub fn texture_format(format: VideoFormat) -> Option<TextureFormat> {
    let (fourcc, _) = BY_FOURCC.iter().find(|(_, v)| *v == format)?;
    TextureFormat::all().find(|t| !t.is_srgb() && t.info().drm_fourcc == Some(*fourcc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_carried_format_round_trips() {
        gst::init().unwrap();
        for v in video_formats() {
            let t = texture_format(v).unwrap_or_else(|| panic!("{v:?} has no texture format"));
            assert_eq!(video_format(t), Some(v));
            // Same bytes per texel on both sides.
            let info = gst_video::VideoFormatInfo::from_format(v);
            assert_eq!(info.pixel_stride()[0] as u32, t.block_bytes(), "{v:?}");
        }
        assert_eq!(
            texture_format(VideoFormat::Rgba),
            Some(TextureFormat::Rgba8Unorm)
        );
        assert_eq!(
            video_format(TextureFormat::Bgra8UnormSrgb),
            Some(VideoFormat::Bgra)
        );
        assert_eq!(video_format(TextureFormat::Rgba32Float), None);
    }
}
