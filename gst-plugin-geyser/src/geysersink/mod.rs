//! `geysersink`: a pipeline's video published as a Geyser producer.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `geysersink` element.
    pub struct GeyserSink(ObjectSubclass<imp::GeyserSink>)
        @extends gst_base::BaseSink, gst::Element, gst::Object;
}

/// Registers `geysersink` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::props::mark_types();
    gst::Element::register(
        Some(plugin),
        "geysersink",
        gst::Rank::NONE,
        GeyserSink::static_type(),
    )
}
