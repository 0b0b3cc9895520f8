//! Bevy's render device as a Geyser device: the `raw_vulkan_init` callback that adds Geyser's
//! extensions when Bevy opens its Vulkan device, and [`GeyserDevice`], made once the renderer
//! is up, or [`GeyserSupport::Unavailable`] with the reason when it cannot share.

use std::ffi::CStr;
use std::sync::{Arc, Mutex, PoisonError};

use bevy::prelude::*;
use bevy::render::renderer::raw_vulkan_init::{AdditionalVulkanFeatures, RawVulkanInitSettings};
use bevy::render::renderer::{RenderAdapter, RenderDevice, RenderQueue};
use geyser::webgpu::WgpuTextureShareManager;

/// Marker in Bevy's `AdditionalVulkanFeatures`: our device callback ran.
struct CallbackRan;
/// Marker: `VK_KHR_external_semaphore_fd` was enabled (GPU-side handoff possible).
struct ExternalSemaphores;

/// Registers the device callback. Must run before `RenderPlugin::build`, which opens the
/// device; afterwards the callback would never be called.
pub(crate) fn register_device_callback(app: &mut App) {
    let mut settings = app
        .world_mut()
        .get_resource_or_init::<RawVulkanInitSettings>();
    // SAFETY: the callback only adds extensions the physical device reports (checked one by
    // one); it removes nothing and turns no feature off.
    unsafe {
        settings.add_create_device_callback(|args, adapter, features| {
            let caps = adapter.physical_device_capabilities();
            for ext in geyser::webgpu::sharing_extensions() {
                if caps.supports_extension(ext) && !args.extensions.contains(&ext) {
                    args.extensions.push(ext);
                }
            }
            features.insert::<CallbackRan>();
            let semaphores: &CStr = geyser::vulkan::ash::khr::external_semaphore_fd::NAME;
            if args.extensions.contains(&semaphores) {
                features.insert::<ExternalSemaphores>();
            }
        });
    }
}

/// Whether Geyser can share textures on Bevy's render device. A main-world resource, `Pending`
/// until the renderer has started.
#[derive(Resource, Clone, Debug, Default)]
pub enum GeyserSupport {
    /// The renderer has not started yet.
    #[default]
    Pending,
    /// Sharing works; [`GeyserDevice`] is present.
    Ready {
        /// The GPU's name.
        device: String,
        /// Whether timeline semaphores can be shared with other processes (GPU-side handoff);
        /// otherwise every handoff is host-synchronized.
        timelines: bool,
    },
    /// Sharing does not work on this renderer; publishers and subscribers stay idle and say
    /// so in their status. The app itself runs on.
    Unavailable {
        /// Why, and what to do about it.
        reason: String,
    },
}

impl GeyserSupport {
    /// Whether sharing works.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready { .. })
    }
}

/// Bevy's render device as a Geyser [`WgpuTextureShareManager`]: create, export and import
/// shared textures on it (see [`crate::SharedImages`] to show one as a Bevy image). Present in
/// the main world and the render world once [`GeyserSupport`] is `Ready`.
#[derive(Resource, Clone, Debug)]
pub struct GeyserDevice(pub Arc<WgpuTextureShareManager>);

impl std::ops::Deref for GeyserDevice {
    type Target = WgpuTextureShareManager;

    fn deref(&self) -> &WgpuTextureShareManager {
        &self.0
    }
}

/// Render world: why sharing is unavailable (when it is).
#[derive(Resource, Clone, Debug)]
pub(crate) struct Unshareable(pub(crate) String);

/// What the render world found: whether sharing works, and the device when it does.
type Found = (GeyserSupport, Option<GeyserDevice>);

/// The render world's findings, picked up by the main world.
#[derive(Resource, Clone, Default)]
pub(crate) struct SupportLink(Arc<Mutex<Option<Found>>>);

impl SupportLink {
    fn put(&self, support: GeyserSupport, device: Option<GeyserDevice>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((support, device));
    }

    fn take(&self) -> Option<Found> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Render world, `RenderStartup` (the first frame, and again after Bevy re-creates its device):
/// wraps Bevy's device for Geyser, or records why it cannot.
pub(crate) fn start_device(world: &mut World) {
    let link = world.resource::<SupportLink>().clone();
    if world.remove_resource::<GeyserDevice>().is_some() {
        // A second start: Bevy recovered from a device loss with a new device.
        world
            .resource_mut::<crate::publisher::RenderPublishers>()
            .forget_device();
        world
            .resource_mut::<crate::subscriber::RenderSubscribers>()
            .forget_device();
    }
    let features = world.get_resource::<AdditionalVulkanFeatures>();
    let callback_ran = features.is_some_and(|f| f.has::<CallbackRan>());
    let semaphores = features.is_some_and(|f| f.has::<ExternalSemaphores>());
    let made = match (
        world.get_resource::<RenderAdapter>(),
        world.get_resource::<RenderDevice>(),
        world.get_resource::<RenderQueue>(),
    ) {
        (Some(adapter), Some(device), Some(queue)) => {
            WgpuTextureShareManager::from_wgpu(adapter, device.wgpu_device(), queue)
                .map_err(|e| e.to_string())
        }
        _ => Err("Bevy's renderer has no device".to_string()),
    };
    let (support, device) = match made {
        Ok(manager) => {
            let timelines = manager.can_share_timelines();
            if !callback_ran {
                warn!(
                    "geyser: GeyserPlugin was added after RenderPlugin (add it before DefaultPlugins), \
                     so Bevy's device lacks external semaphores: every handoff is host-synchronized"
                );
            } else if !semaphores {
                info!(
                    "geyser: {} exports no semaphores; handoffs are host-synchronized",
                    manager.identity().name
                );
            }
            let support = GeyserSupport::Ready {
                device: manager.identity().name.clone(),
                timelines,
            };
            (support, Some(GeyserDevice(Arc::new(manager))))
        }
        Err(e) => {
            let reason = format!("Geyser cannot share textures on Bevy's render device: {e}");
            error!("geyser: {reason}");
            (GeyserSupport::Unavailable { reason }, None)
        }
    };
    match (&device, &support) {
        (Some(d), _) => {
            world.insert_resource(d.clone());
            world.remove_resource::<Unshareable>();
        }
        (None, GeyserSupport::Unavailable { reason }) => {
            world.insert_resource(Unshareable(reason.clone()));
        }
        (None, _) => {}
    }
    link.put(support, device);
}

/// Main world, `First`: takes over what the render world found.
pub(crate) fn pick_up_support(
    link: Res<SupportLink>,
    mut support: ResMut<GeyserSupport>,
    mut commands: Commands,
) {
    if let Some((found, device)) = link.take() {
        *support = found;
        match device {
            Some(d) => commands.insert_resource(d),
            None => commands.remove_resource::<GeyserDevice>(),
        }
    }
}
