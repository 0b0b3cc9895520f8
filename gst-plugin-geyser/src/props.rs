//! What both elements share: the `endpoint`, `device` and `sync` properties, and opening the
//! Vulkan device they name.

use std::sync::Arc;

use geyser::ipc::SyncMode;
use geyser::vulkan::{ContextOptions, DeviceSelector, Validation, VulkanTextureShareManager};
use gst::glib;
use gst::prelude::*;

/// The `sync` property: how GPU work is ordered between the element and its Geyser peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstGeyserSync")]
pub enum SyncChoice {
    /// The best mode both sides support.
    #[default]
    #[enum_value(name = "Auto: the best mode both sides support", nick = "auto")]
    Auto,
    /// The host waits for each side's GPU work before handing a frame over.
    #[enum_value(
        name = "Host: wait for the GPU on the host, then hand over",
        nick = "host"
    )]
    Host,
    /// Shared timeline semaphores: the GPUs wait for each other, the host does not.
    #[enum_value(
        name = "Timeline: shared timeline semaphores, no host wait",
        nick = "timeline"
    )]
    Timeline,
}

impl SyncChoice {
    /// The mode to force, `None` for auto.
    pub(crate) fn mode(self) -> Option<SyncMode> {
        match self {
            SyncChoice::Auto => None,
            SyncChoice::Host => Some(SyncMode::Host),
            SyncChoice::Timeline => Some(SyncMode::Timeline),
        }
    }
}

/// The three properties every Geyser element has.
pub(crate) fn common_properties(endpoint_blurb: &str) -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("endpoint")
            .nick("Endpoint")
            .blurb(endpoint_blurb)
            .default_value(Some(DEFAULT_ENDPOINT))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("device")
            .nick("Device")
            .blurb(
                "Vulkan device: index, name substring, device UUID or pci:DOMAIN:BUS:DEV.FN \
                 (as GEYSER_DEVICE and `geyser info`); empty: GEYSER_DEVICE, else the best device",
            )
            .default_value(Some(""))
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder::<SyncChoice>("sync-mode")
            .nick("Sync mode")
            .blurb("How GPU work is ordered with the Geyser peer")
            .mutable_ready()
            .build(),
    ]
}

/// The endpoint elements use when none is set.
pub(crate) const DEFAULT_ENDPOINT: &str = "geyser-demo";

/// Options for Geyser's own Vulkan device named by `device` (empty: `GEYSER_DEVICE`, else the
/// best one); `GEYSER_VALIDATION` turns the validation layer on.
pub(crate) fn context_options(device: &str) -> ContextOptions {
    let selector = if device.trim().is_empty() {
        DeviceSelector::from_env()
    } else {
        DeviceSelector::parse(device)
    };
    ContextOptions {
        device: selector,
        validation: Validation::from_env(),
    }
}

/// Opens the Vulkan device [`context_options`] names, for an element.
pub(crate) fn open_device(
    device: &str,
) -> Result<Arc<VulkanTextureShareManager>, gst::ErrorMessage> {
    VulkanTextureShareManager::create(&context_options(device))
        .map(Arc::new)
        .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ["Vulkan device: {e}"]))
}

/// Marks the enum types for the documentation (gst-inspect shows their values either way).
pub(crate) fn mark_types() {
    SyncChoice::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
}
