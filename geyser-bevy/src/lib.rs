//! Geyser for Bevy: cameras that publish what they render to Geyser endpoints, and Geyser
//! streams shown as Bevy images, on Bevy's own render device (Bevy 0.20, wgpu 30, Vulkan).
//!
//! ```no_run
//! use bevy::prelude::*;
//! use geyser_bevy::{GeyserPlugin, GeyserPublisher, GeyserSubscriber};
//!
//! App::new()
//!     // Before DefaultPlugins: it adds Geyser's extensions when Bevy opens its device.
//!     .add_plugins(GeyserPlugin)
//!     .add_plugins(DefaultPlugins)
//!     .add_systems(Startup, |mut commands: Commands, mut images: ResMut<Assets<Image>>| {
//!         // Any Geyser consumer can attach to "scene" (e.g. `geyser demo`'s, or another app).
//!         commands.spawn((Camera3d::default(), GeyserPublisher::new("scene", 1280, 720)));
//!         // The newest frame of "camera" as an image, here in a sprite.
//!         let subscriber = GeyserSubscriber::new("camera", &mut images);
//!         commands.spawn((Sprite::from_image(subscriber.image.clone()), subscriber));
//!     })
//!     .run();
//! ```
//!
//! - [`GeyserPlugin`] brings Bevy's device up with Geyser's extensions (through Bevy's
//!   `raw_vulkan_init` device callback) and wraps it for Geyser. [`GeyserSupport`] says whether
//!   sharing works and, if not, why; the app runs either way.
//! - [`GeyserPublisher`] on a camera: the camera renders straight into a ring of shared textures
//!   (no copy); each frame is presented to the endpoint, with timeline semaphores where the
//!   GPU exports them (the handoff needs no host wait), host-synchronized otherwise.
//! - [`GeyserSubscriber`]: [`GeyserSubscriber::image`] holds the newest frame of an endpoint,
//!   copied once on the GPU; it keeps the last frame when the producer stalls and reconnects
//!   when it comes back.
//! - In-process: [`GeyserDevice`] is Bevy's device as a Geyser manager (create, export and
//!   import shared textures), and [`SharedImages`] shows such a texture as a Bevy image with
//!   no copy, for rendering into or sampling.
//!
//! Bevy owns the wgpu queue. Geyser submits only through it, from the render world's exclusive
//! systems: before the camera's work (acquire), and after Bevy's frame was submitted (release).

#![warn(missing_docs)]

mod device;
mod publisher;
mod shared_image;
mod subscriber;
pub mod validation;

pub use device::{GeyserDevice, GeyserSupport};
pub use publisher::{GeyserPublisher, GeyserPublisherStatus};
pub use shared_image::{SharedImageAccess, SharedImageGuard, SharedImages};
pub use subscriber::{GeyserSubscriber, GeyserSubscriberStatus};

use bevy::prelude::*;
use bevy::render::render_asset::prepare_assets;
use bevy::render::renderer::render_system;
use bevy::render::texture::GpuImage;
use bevy::render::view::prepare_view_attachments;
use bevy::render::{ExtractSchedule, Render, RenderApp, RenderStartup, RenderSystems};

/// Geyser on Bevy's render device. Add it **before** `DefaultPlugins` (or insert it into the
/// group with `add_before::<RenderPlugin>`): its device callback must be registered before
/// Bevy opens the device. Added later, sharing still works where wgpu enabled external
/// memory by itself, but every handoff is host-synchronized (it says so in the log).
#[derive(Debug, Default, Clone, Copy)]
pub struct GeyserPlugin;

impl Plugin for GeyserPlugin {
    fn build(&self, app: &mut App) {
        device::register_device_callback(app);
        app.init_resource::<GeyserSupport>()
            .init_resource::<device::SupportLink>()
            .init_resource::<publisher::NextViewHandle>()
            .init_resource::<SharedImages>()
            .add_observer(publisher::on_insert)
            .add_observer(publisher::on_discard)
            .add_observer(subscriber::on_insert)
            .add_systems(
                First,
                (
                    device::pick_up_support,
                    publisher::update_status,
                    subscriber::update_status,
                ),
            );
    }

    fn finish(&self, app: &mut App) {
        let link = app.world().resource::<device::SupportLink>().clone();
        let shared = app.world().resource::<SharedImages>().clone();
        let Some(render_app) = app.get_sub_app_mut(RenderApp) else {
            let reason = "Bevy has no renderer (RenderPlugin missing, or no GPU backend)";
            warn!("geyser: {reason}; nothing will be shared");
            app.insert_resource(GeyserSupport::Unavailable {
                reason: reason.into(),
            });
            return;
        };
        render_app
            .insert_resource(link)
            .insert_resource(shared)
            .init_resource::<publisher::RenderPublishers>()
            .init_resource::<subscriber::RenderSubscribers>()
            .init_resource::<shared_image::RenderSharedImages>()
            .add_systems(RenderStartup, device::start_device)
            .add_systems(
                ExtractSchedule,
                (
                    publisher::extract,
                    subscriber::extract,
                    shared_image::extract,
                ),
            )
            .add_systems(
                Render,
                (
                    (subscriber::receive_frames, shared_image::inject)
                        .in_set(RenderSystems::PrepareAssets)
                        .after(prepare_assets::<GpuImage>),
                    shared_image::begin_access
                        .in_set(RenderSystems::PrepareAssets)
                        .after(shared_image::inject),
                    publisher::begin_frames
                        .in_set(RenderSystems::PrepareViews)
                        .before(prepare_view_attachments),
                    (publisher::present_frames, shared_image::end_access)
                        .chain()
                        .in_set(RenderSystems::Cleanup)
                        .after(render_system),
                ),
            );
    }
}
