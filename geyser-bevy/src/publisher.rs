//! [`GeyserPublisher`]: a camera that renders into a Geyser producer's ring. Each Bevy frame the
//! render world acquires a free slot, points the camera's [`ManualTextureView`] at it, and
//! presents it once Bevy's frame is submitted: with a timeline signal where the consumers
//! negotiated one (no host wait), otherwise after waiting for that submission.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bevy::camera::{ManualTextureViewHandle, NormalizedRenderTarget, RenderTarget};
use bevy::ecs::lifecycle::{Discard, Insert};
use bevy::prelude::*;
use bevy::render::camera::ExtractedCamera;
use bevy::render::render_resource::{
    Extent3d, PipelineCache, TextureDimension, TextureUsages, TextureView, TextureViewDescriptor,
};
use bevy::render::renderer::RenderDevice;
use bevy::render::texture::{ManualTextureView, ManualTextureViews};
use bevy::render::view::ViewTarget;
use bevy::render::Extract;
use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
use geyser::ipc::{ProducerOptions, SyncMode, WriteSlot};
use geyser::webgpu::WgpuProducer;

use crate::device::{GeyserDevice, Unshareable};

/// Put it on a camera entity: the camera renders into a ring of shared textures, and every
/// frame it renders is presented to the Geyser endpoint `name`, where any Geyser consumer
/// (Vulkan, wgpu, another Bevy app's [`crate::GeyserSubscriber`], `geyser demo`'s consumers)
/// receives it. The camera's [`RenderTarget`] is set for you; while the endpoint cannot be
/// served (no sharing on this GPU, the name taken) the camera renders into a private texture
/// and [`GeyserPublisherStatus`] says why.
///
/// The fields are read when the component is inserted; insert a new one to change them.
#[derive(Component, Clone, Debug)]
#[require(GeyserPublisherStatus)]
pub struct GeyserPublisher {
    /// The endpoint name consumers connect to.
    pub name: String,
    /// Frame size in pixels.
    pub size: UVec2,
    /// Frame format. The default `Rgba8UnormSrgb` gives consumers Bevy's colours as shown on
    /// screen; a UNORM format gets the same bytes read as linear values.
    pub format: TextureFormat,
    /// Every consumer gets every frame, and the camera waits (up to a second per frame) for
    /// a free slot; default `false`: a slow consumer skips frames and never slows Bevy down.
    pub lossless: bool,
    /// Textures in the ring (default 3; see [`ProducerOptions::slots`]).
    pub slots: usize,
}

impl GeyserPublisher {
    /// A lossy publisher of `width`×`height` `Rgba8UnormSrgb` frames, three slots.
    pub fn new(name: impl Into<String>, width: u32, height: u32) -> Self {
        Self {
            name: name.into(),
            size: UVec2::new(width, height),
            format: TextureFormat::Rgba8UnormSrgb,
            lossless: false,
            slots: 3,
        }
    }

    /// What consumers receive: the size, format and the usages a camera target and consumers
    /// need (rendered into, sampled, copied from for host-ring consumers on other GPUs).
    pub fn descriptor(&self) -> TextureDescriptor {
        TextureDescriptor::new(
            self.size.x,
            self.size.y,
            self.format,
            &[
                TextureUsage::RenderAttachment,
                TextureUsage::TextureBinding,
                TextureUsage::CopySrc,
            ],
        )
    }
}

/// How a [`GeyserPublisher`] is doing (updated every frame, in `First`).
#[derive(Component, Clone, Debug, Default, PartialEq, Eq)]
pub struct GeyserPublisherStatus {
    /// Whether the endpoint is bound (consumers can connect).
    pub live: bool,
    /// The socket consumers connect to.
    pub endpoint: Option<PathBuf>,
    /// Frames presented.
    pub frames: u64,
    /// Bevy frames not published: no free slot (lossless mode with busy consumers), or the
    /// endpoint was down.
    pub skipped: u64,
    /// Consumers connected now.
    pub consumers: usize,
    /// The best synchronization the producer offers (`Timeline` on GPUs that export
    /// semaphores: no host wait at all).
    pub sync: Option<SyncMode>,
    /// The last thing that went wrong, if anything.
    pub last_error: Option<String>,
}

/// First texture-view handle the plugin uses; one per publisher from here on.
const FIRST_HANDLE: u32 = 0x6765_0000;

/// Main world: the next free texture-view handle.
#[derive(Resource, Default)]
pub(crate) struct NextViewHandle(u32);

/// Main world, private: ties a publisher entity to its render-world state.
#[derive(Component, Clone)]
pub(crate) struct PublisherLink {
    handle: ManualTextureViewHandle,
    placeholder: ManualTextureView,
    status: Arc<Mutex<GeyserPublisherStatus>>,
}

/// Main world: a publisher was inserted (or replaced): give its camera a target.
pub(crate) fn on_insert(
    event: On<Insert<GeyserPublisher>>,
    publishers: Query<(&GeyserPublisher, Option<&PublisherLink>)>,
    device: Option<Res<RenderDevice>>,
    views: Option<ResMut<ManualTextureViews>>,
    mut next: ResMut<NextViewHandle>,
    mut commands: Commands,
) {
    let entity = event.entity;
    let Ok((publisher, old)) = publishers.get(entity) else {
        return;
    };
    let made = match (device, views) {
        (Some(device), Some(views)) => placeholder(publisher, &device).map(|p| (p, views)),
        _ => Err("Bevy's renderer is not running".into()),
    };
    let (placeholder, mut views) = match made {
        Ok(made) => made,
        Err(e) => {
            error!("geyser: publisher {:?}: {e}", publisher.name);
            let status = GeyserPublisherStatus {
                last_error: Some(e),
                ..default()
            };
            commands.entity(entity).insert(status);
            return;
        }
    };
    let handle = match old {
        Some(link) => link.handle,
        None => {
            next.0 += 1;
            ManualTextureViewHandle(FIRST_HANDLE + next.0)
        }
    };
    views.insert(handle, placeholder.clone());
    commands.entity(entity).insert((
        RenderTarget::TextureView(handle),
        PublisherLink {
            handle,
            placeholder,
            status: Arc::default(),
        },
        GeyserPublisherStatus::default(),
    ));
}

/// Main world: a publisher is going away (removed, replaced or despawned).
pub(crate) fn on_discard(
    event: On<Discard<GeyserPublisher>>,
    links: Query<(&PublisherLink, &GeyserPublisher)>,
    views: Option<ResMut<ManualTextureViews>>,
    mut commands: Commands,
) {
    let Ok((link, publisher)) = links.get(event.entity) else {
        return;
    };
    if let Some(mut views) = views {
        views.remove(&link.handle);
    }
    // A camera must not target a view that no longer exists. (A replacing publisher sets the
    // target again right after.)
    commands
        .entity(event.entity)
        .try_remove::<PublisherLink>()
        .try_insert(RenderTarget::None {
            size: publisher.size,
        });
}

/// The texture the camera renders into while nothing is published: private, of the frame's
/// size and format. Fails on settings no publisher could serve.
fn placeholder(
    publisher: &GeyserPublisher,
    device: &RenderDevice,
) -> Result<ManualTextureView, String> {
    publisher
        .descriptor()
        .validate()
        .map_err(|e| e.to_string())?;
    let format = publisher.format.to_wgpu().ok_or_else(|| {
        format!(
            "{} has no wgpu equivalent; Bevy cannot render into it",
            publisher.format
        )
    })?;
    let texture = device.create_texture(&bevy::render::render_resource::TextureDescriptor {
        label: Some("geyser publisher placeholder"),
        size: Extent3d {
            width: publisher.size.x,
            height: publisher.size.y,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: TextureDimension::D2,
        format,
        usage: TextureUsages::RENDER_ATTACHMENT | TextureUsages::TEXTURE_BINDING,
        view_formats: &[],
    });
    Ok(ManualTextureView {
        texture_view: texture.create_view(&TextureViewDescriptor::default()),
        size: publisher.size,
        view_format: format,
    })
}

/// Main world, `First`: copies the render world's status into the components.
pub(crate) fn update_status(mut publishers: Query<(&PublisherLink, &mut GeyserPublisherStatus)>) {
    for (link, mut status) in &mut publishers {
        let now = link
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        status.set_if_neq(now);
    }
}

/// Render world: the publishers, by main-world entity.
#[derive(Resource, Default)]
pub(crate) struct RenderPublishers(HashMap<Entity, PublisherState>);

struct PublisherState {
    config: GeyserPublisher,
    link: PublisherLink,
    producer: Option<Live>,
    /// When to try binding the endpoint again after a failure.
    retry_at: Option<Instant>,
    /// The slot the camera renders into this frame (between `begin_frames` and
    /// `present_frames`).
    writing: Option<WriteSlot>,
}

/// A bound endpoint with a view of each ring texture.
struct Live {
    producer: WgpuProducer,
    views: Vec<ManualTextureView>,
}

/// How long a failed endpoint waits before it is bound again.
const RETRY: Duration = Duration::from_secs(1);
/// Lossless publishers wait at most this long per frame for a free slot.
const LOSSLESS_WAIT: Duration = Duration::from_secs(1);

impl PublisherState {
    fn status(&self, f: impl FnOnce(&mut GeyserPublisherStatus)) {
        f(&mut self
            .link
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner));
    }

    fn fail(&mut self, what: &str, e: impl std::fmt::Display) {
        let message = format!("{what}: {e}");
        let repeated = self
            .link
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_error
            .as_ref()
            == Some(&message);
        if !repeated {
            warn!("geyser: publisher {:?}: {message}", self.config.name);
        }
        // Dropping the producer closes the endpoint; it is bound again after `RETRY`.
        self.producer = None;
        self.writing = None;
        self.retry_at = Some(Instant::now() + RETRY);
        self.status(|s| {
            s.live = false;
            s.consumers = 0;
            s.last_error = Some(message);
        });
    }

    fn bind(&mut self, device: &GeyserDevice) {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let options = ProducerOptions {
            slots: self.config.slots,
            lossless: self.config.lossless,
            ..default()
        };
        let desc = self.config.descriptor();
        match WgpuProducer::bind(&self.config.name, device.0.clone(), &desc, options) {
            Ok(producer) => {
                let format = self.link.placeholder.view_format;
                let views = producer
                    .textures()
                    .iter()
                    .map(|t| ManualTextureView {
                        texture_view: TextureView::from(t.texture().create_view(
                            &TextureViewDescriptor {
                                format: Some(format),
                                ..default()
                            },
                        )),
                        size: self.config.size,
                        view_format: format,
                    })
                    .collect();
                info!(
                    "geyser: publishing {:?} at {}",
                    self.config.name,
                    producer.producer().path().display()
                );
                let (path, sync) = (
                    producer.producer().path().to_owned(),
                    producer.producer().sync_mode(),
                );
                self.producer = Some(Live { producer, views });
                self.retry_at = None;
                self.status(|s| {
                    s.live = true;
                    s.endpoint = Some(path);
                    s.sync = Some(sync);
                    s.last_error = None;
                });
            }
            Err(e) => self.fail("binding the endpoint", e),
        }
    }

    /// Acquires a slot and begins wgpu's access to it; returns the view the camera renders
    /// into this frame.
    fn begin(&mut self) -> ManualTextureView {
        let Some(live) = &self.producer else {
            self.status(|s| s.skipped += 1);
            return self.link.placeholder.clone();
        };
        // A slot Bevy did not draw into last frame is still begun: draw into it now.
        if let Some(slot) = &self.writing {
            return live.views[slot.id.slot_index()].clone();
        }
        let timeout = if self.config.lossless {
            LOSSLESS_WAIT
        } else {
            Duration::ZERO
        };
        let begun = live.producer.acquire(Some(timeout)).and_then(|slot| {
            slot.begin()?;
            Ok(slot.detach())
        });
        match begun {
            Ok(slot) => {
                let view = live.views[slot.id.slot_index()].clone();
                self.writing = Some(slot);
                view
            }
            Err(geyser::Error::Timeout(_)) => {
                self.status(|s| s.skipped += 1);
                self.link.placeholder.clone()
            }
            Err(e) => {
                self.fail("acquiring a slot", e);
                self.link.placeholder.clone()
            }
        }
    }

    /// Ends wgpu's access to the slot rendered this frame and presents it. A slot Bevy did not
    /// draw into, or drew while pipelines were still compiling (its first frames), is kept for
    /// the next frame: consumers get only complete frames.
    fn present(&mut self, drawn: bool) {
        if !drawn {
            return;
        }
        let (Some(live), Some(slot)) = (&self.producer, self.writing.take()) else {
            return;
        };
        let presented = live.producer.resume(slot).and_then(|slot| slot.present());
        match presented {
            Ok(_) => {
                let consumers = live.producer.producer().consumer_count();
                self.status(|s| {
                    s.frames += 1;
                    s.consumers = consumers;
                });
            }
            Err(e) => self.fail("presenting a frame", e),
        }
    }
}

impl RenderPublishers {
    /// Bevy made a new device (it recovered from a device loss): endpoints on the old one go,
    /// and are bound again on the new one.
    pub(crate) fn forget_device(&mut self) {
        for state in self.0.values_mut() {
            state.writing = None;
            state.producer = None;
            state.retry_at = None;
        }
    }
}

/// Render world, `ExtractSchedule`: follows the main world's publishers.
pub(crate) fn extract(
    publishers: Extract<Query<(Entity, &GeyserPublisher, &PublisherLink)>>,
    mut render: ResMut<RenderPublishers>,
) {
    render
        .0
        .retain(|entity, state| match publishers.get(*entity) {
            Ok((_, _, link)) => Arc::ptr_eq(&link.status, &state.link.status),
            Err(_) => false,
        });
    for (entity, publisher, link) in &publishers {
        render.0.entry(entity).or_insert_with(|| PublisherState {
            config: publisher.clone(),
            link: link.clone(),
            producer: None,
            retry_at: None,
            writing: None,
        });
    }
}

/// Render world, before the view attachments are resolved: binds endpoints that are not up,
/// and points each publishing camera at a free slot of its ring. Exclusive, like
/// [`present_frames`]: timeline waits attach to wgpu's next submission.
pub(crate) fn begin_frames(world: &mut World) {
    let device = world.get_resource::<GeyserDevice>().cloned();
    let unshareable = world.get_resource::<Unshareable>().map(|u| u.0.clone());
    let rendered: Vec<ManualTextureViewHandle> = world
        .query::<&ExtractedCamera>()
        .iter(world)
        .filter_map(|c| match c.target {
            Some(NormalizedRenderTarget::TextureView(h)) => Some(h),
            _ => None,
        })
        .collect();
    world.resource_scope(|world, mut publishers: Mut<RenderPublishers>| {
        let mut views = world.resource_mut::<ManualTextureViews>();
        for state in publishers.0.values_mut() {
            match (&device, &unshareable) {
                (Some(device), _) if state.producer.is_none() => state.bind(device),
                (None, Some(reason)) => state.status(|s| s.last_error = Some(reason.clone())),
                _ => {}
            }
            // A camera that does not render this frame must not present a slot it never
            // wrote.
            let view = if rendered.contains(&state.link.handle) {
                state.begin()
            } else {
                state.link.placeholder.clone()
            };
            views.insert(state.link.handle, view);
        }
    });
}

/// Render world, after Bevy's frame (camera passes, screenshots, readbacks) was submitted:
/// presents each slot rendered this frame.
/// Exclusive: a timeline signal is staged on wgpu's queue and attaches to its next submission,
/// which must be ours.
pub(crate) fn present_frames(world: &mut World) {
    // Bevy skips the passes whose pipelines are not compiled yet (all of them in the first
    // frames, while shaders load): a frame drawn while some are still waiting may lack parts,
    // or be blank.
    let complete = world
        .get_resource::<PipelineCache>()
        .is_some_and(|cache| cache.waiting_pipelines().next().is_none());
    let drawn: Vec<ManualTextureViewHandle> = world
        .query::<(&ViewTarget, &ExtractedCamera)>()
        .iter(world)
        .filter(|(view, _)| complete && view.needs_present())
        .filter_map(|(_, camera)| match camera.target {
            Some(NormalizedRenderTarget::TextureView(h)) => Some(h),
            _ => None,
        })
        .collect();
    for state in world.resource_mut::<RenderPublishers>().0.values_mut() {
        let handle = state.link.handle;
        state.present(drawn.contains(&handle));
    }
}
