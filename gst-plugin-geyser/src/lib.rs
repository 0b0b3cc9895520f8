//! GStreamer elements for Geyser.
//!
//! - `geysersrc endpoint=NAME`: a live source. It connects to a Geyser producer as a consumer
//!   and turns each frame into a buffer: one GPU copy from the shared texture into the
//!   buffer's own memory (imported into Vulkan as host memory when the device can, through a
//!   staging buffer otherwise), timestamped with the producer's present time, with caps from
//!   the producer's format and size (renegotiated when a restarted producer has others).
//!   Downstream that asks for `video/x-raw(memory:DMABuf)` gets DMA-BUFs instead: one GPU copy
//!   into linear buffers exported once, no CPU copy.
//! - `geysersink endpoint=NAME`: publishes the video it receives as a Geyser producer: one
//!   GPU copy from each buffer's memory into a texture of the ring, lossy or lossless.
//!
//! Both take `device` (index, name substring, UUID or `pci:` address, as `GEYSER_DEVICE`) and
//! `sync` (`auto`, `host`, `timeline`). `gst-inspect-1.0 geysersrc` documents every property.
//!
//! With feature `pipewire`, [`pipewire::publish`] serves a Geyser endpoint as a PipeWire
//! `Video/Source` node (`geyser stream send NAME pipewire`).
//!
//! GStreamer loads `libgstgeyser.so` from `GST_PLUGIN_PATH`; programs that link this crate
//! call [`plugin_register_static`] instead.
#![warn(missing_docs)]

use gst::glib;

mod dmabuf;
mod format;
mod geysersink;
mod geysersrc;
mod hostmem;
#[cfg(feature = "pipewire")]
pub mod pipewire;
mod props;

pub use format::{texture_format, video_format};
pub use geysersrc::OnDisconnect;
pub use props::SyncChoice;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    geysersrc::register(plugin)?;
    geysersink::register(plugin)?;
    Ok(())
}

/// The plugin's registration: `gst_plugin_geyser_get_desc` (how GStreamer finds the plugin
/// on `GST_PLUGIN_PATH`) and `plugin_register_static`.
#[allow(missing_docs)]
mod registration {
    use super::plugin_init;

    gst::plugin_define!(
        geyser,
        env!("CARGO_PKG_DESCRIPTION"),
        plugin_init,
        concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
        // GStreamer only knows its own license names: "MIT/X11" for MIT OR Apache-2.0.
        "MIT/X11",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_REPOSITORY"),
        env!("BUILD_REL_DATE")
    );
}

/// Registers `geysersrc` and `geysersink` with GStreamer for this process (for programs that
/// link the crate; `gst::init` must have run). Plugins on `GST_PLUGIN_PATH` need no call.
pub fn plugin_register_static() -> Result<(), glib::BoolError> {
    registration::plugin_register_static()
}
