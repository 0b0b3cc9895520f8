//! `geysersrc`: a Geyser stream as a live GStreamer source.

use gst::glib;
use gst::prelude::*;

mod allocation;
mod imp;
mod settings;

/// What `geysersrc` does when its producer goes away (`on-disconnect`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstGeyserSrcOnDisconnect")]
pub enum OnDisconnect {
    /// Post an error; a producer that ends its stream cleanly gives end-of-stream instead.
    #[default]
    #[enum_value(
        name = "Error: post an error (a clean end of the stream is EOS)",
        nick = "error"
    )]
    Error,
    /// Wait for a producer to bind the endpoint again and go on, renegotiating caps when its
    /// format or size differ.
    #[enum_value(
        name = "Wait: wait for a producer to bind the endpoint again (renegotiates if its format changed)",
        nick = "wait"
    )]
    Wait,
}

glib::wrapper! {
    /// The `geysersrc` element.
    pub struct GeyserSrc(ObjectSubclass<imp::GeyserSrc>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

/// Registers `geysersrc` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::props::mark_types();
    OnDisconnect::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "geysersrc",
        gst::Rank::NONE,
        GeyserSrc::static_type(),
    )
}
