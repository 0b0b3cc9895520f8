//! The Vulkan validation layer on Bevy's device, and its errors counted, for tests and CI.
//! [`enable`] turns the Khronos layer on for Bevy's instance with its messages going to the log,
//! and [`layer`] counts those at error level:
//!
//! ```no_run
//! use bevy::log::LogPlugin;
//! use bevy::prelude::*;
//! use bevy::render::{settings::RenderCreation, RenderPlugin};
//!
//! let mut app = App::new();
//! let wgpu = geyser_bevy::validation::enable(&mut app); // before DefaultPlugins
//! app.add_plugins(geyser_bevy::GeyserPlugin).add_plugins(
//!     DefaultPlugins
//!         .set(LogPlugin { custom_layer: geyser_bevy::validation::layer, ..default() })
//!         .set(RenderPlugin { render_creation: RenderCreation::Automatic(Box::new(wgpu)), ..default() }),
//! );
//! // … run, then:
//! assert!(geyser_bevy::validation::errors().is_empty());
//! ```

use std::sync::{Mutex, PoisonError};

use bevy::log::tracing::field::{Field, Visit};
use bevy::log::tracing::{Event, Level, Subscriber};
use bevy::log::tracing_subscriber::layer::Context;
use bevy::log::tracing_subscriber::Layer;
use bevy::log::BoxedLayer;
use bevy::prelude::App;
use bevy::render::renderer::raw_vulkan_init::{AdditionalVulkanFeatures, RawVulkanInitSettings};
use bevy::render::settings::{InstanceFlags, WgpuSettings};
use geyser::vulkan::ash::ext::debug_utils;
use geyser::webgpu::wgpu::hal::vulkan::CreateInstanceCallbackArgs;

/// Bevy's default wgpu settings with the validation layer on, for `RenderPlugin`; call it
/// before `RenderPlugin` is added (it registers an instance callback).
///
/// wgpu-hal routes the layer's messages to the log only through `VK_EXT_debug_utils`, which it
/// enables with `InstanceFlags::DEBUG`. That flag also makes naga name WGSL as the SPIR-V source
/// language, which validation layers older than the SPIR-V tools that know it (Debian
/// bookworm's 1.3.239) report as invalid SPIR-V in every shader. So `DEBUG` stays off and the
/// callback enables the extension itself, where the instance offers it.
pub fn enable(app: &mut App) -> WgpuSettings {
    let add_debug_utils = |args: &mut CreateInstanceCallbackArgs,
                           _: &mut AdditionalVulkanFeatures| {
        // SAFETY: enumerating instance extensions needs only a loaded entry.
        let offered = unsafe { args.entry.enumerate_instance_extension_properties(None) };
        let offered = offered
            .unwrap_or_default()
            .iter()
            .any(|e| e.extension_name_as_c_str() == Ok(debug_utils::NAME));
        if offered && !args.extensions.contains(&debug_utils::NAME) {
            args.extensions.push(debug_utils::NAME);
        }
    };
    let mut settings = app
        .world_mut()
        .get_resource_or_init::<RawVulkanInitSettings>();
    // SAFETY: the callback only adds an instance extension that the instance reports (checked);
    // it removes nothing.
    unsafe { settings.add_create_instance_callback(add_debug_utils) };
    let mut wgpu = WgpuSettings::default();
    wgpu.instance_flags.insert(InstanceFlags::VALIDATION);
    wgpu.instance_flags.remove(InstanceFlags::DEBUG);
    wgpu
}

/// Validation errors logged in this process so far.
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// For `LogPlugin::custom_layer`: counts wgpu-hal's error-level messages (the validation
/// layer's errors on Bevy's Vulkan device).
pub fn layer(_app: &mut App) -> Option<BoxedLayer> {
    Some(Box::new(ValidationLayer))
}

/// The validation errors counted so far (their text).
pub fn errors() -> Vec<String> {
    ERRORS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

struct ValidationLayer;

/// A structure the layer does not know, chained into `vkCreateDevice`: the layer's Vulkan
/// headers are older than the driver's (Debian bookworm's layer is 1.3.239; wgpu enables
/// newer features that Mesa 25 offers). The layer says itself that it cannot check it.
fn is_newer_than_the_layer(message: &str) -> bool {
    message.contains("VUID-VkDeviceCreateInfo-pNext-pNext")
        && message.contains("unknown VkStructureType")
}

/// What one event says: its message, and for events bridged from the `log` crate (wgpu-hal
/// logs through it) the original target.
#[derive(Default)]
struct Fields {
    message: String,
    log_target: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "log.target" => self.log_target = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for ValidationLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let target = fields.log_target.as_deref().unwrap_or(meta.target());
        // wgpu-hal logs a message, then its objects, queues and command buffers on lines of
        // their own that start with a tab.
        if !target.starts_with("wgpu_hal::vulkan") || fields.message.starts_with('\t') {
            return;
        }
        if is_newer_than_the_layer(&fields.message) {
            return;
        }
        ERRORS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(fields.message);
    }
}
