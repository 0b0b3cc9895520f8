//! [`GeyserSubscriber`]: the newest frame of a Geyser endpoint as a Bevy `Handle<Image>`. The
//! render world connects in the background, takes the newest frame each Bevy frame without
//! waiting, and copies it on the GPU into the subscriber's image (one copy, no CPU), so the one
//! handle works in materials, sprites, UI and anywhere else an image does. When the producer
//! stalls or dies the image keeps the last frame; when a producer comes (back) under the name,
//! the subscriber connects to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bevy::asset::RenderAssetUsages;
use bevy::ecs::lifecycle::Insert;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy::render::render_asset::RenderAssets;
use bevy::render::render_resource::{
    CommandEncoderDescriptor, Extent3d, TextureDimension, TextureUsages,
};
use bevy::render::renderer::RenderQueue;
use bevy::render::texture::GpuImage;
use bevy::render::Extract;
use geyser::common::TextureFormat;
use geyser::ipc::{ConsumerOptions, SyncMode};
use geyser::webgpu::WgpuConsumer;
use geyser::SharedTexture;

use crate::device::{GeyserDevice, Unshareable};

/// Put it on any entity: [`Self::image`] shows the newest frame of the Geyser endpoint
/// `name` (a [`crate::GeyserPublisher`] of another app, `geyser demo`, a Vulkan or wgpu
/// producer). Until the first frame arrives the image is 1×1 transparent; on connection it
/// takes the producer's size and format. [`GeyserSubscriberStatus`] says how it is doing.
#[derive(Component, Clone, Debug)]
#[require(GeyserSubscriberStatus)]
pub struct GeyserSubscriber {
    /// The endpoint name.
    pub name: String,
    /// The image the frames are copied into.
    pub image: Handle<Image>,
}

impl GeyserSubscriber {
    /// A subscriber to `name` with a new image in `images`.
    pub fn new(name: impl Into<String>, images: &mut Assets<Image>) -> Self {
        Self {
            name: name.into(),
            image: images.add(frame_image(
                UVec2::ONE,
                wgpu_format(TextureFormat::Rgba8UnormSrgb),
            )),
        }
    }
}

/// How a [`GeyserSubscriber`] is doing (updated every frame, in `First`).
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct GeyserSubscriberStatus {
    /// Connected to a producer now.
    pub connected: bool,
    /// The producer's frame size (its last one, once connected).
    pub size: Option<UVec2>,
    /// The producer's frame format.
    pub format: Option<TextureFormat>,
    /// The synchronization negotiated with the producer (`Timeline`: the copy waits on the
    /// GPU; `Host`: the producer waited before announcing the frame).
    pub sync: Option<SyncMode>,
    /// Frames copied into the image since the app started.
    pub frames: u64,
    /// The producer's number of the frame the image holds.
    pub frame: Option<u64>,
    /// Frames copied per second, over the last second or so.
    pub fps: f32,
    /// Handoff latency of the last frame: from the producer's message to its receipt.
    pub latency: Option<Duration>,
    /// How many times it connected (more than one: it reconnected after the producer left).
    pub connections: u64,
    /// The last thing that went wrong, if anything (also while waiting for a producer).
    pub last_error: Option<String>,
}

/// The image frames are copied into: the producer's size and format, zero-filled until the
/// first copy.
fn frame_image(size: UVec2, format: bevy::render::render_resource::TextureFormat) -> Image {
    let extent = Extent3d {
        width: size.x,
        height: size.y,
        depth_or_array_layers: 1,
    };
    let texel = format.block_copy_size(None).unwrap_or(4) as usize;
    let data = vec![0; texel * size.x as usize * size.y as usize];
    let mut image = Image::new(
        extent,
        TextureDimension::D2,
        data,
        format,
        RenderAssetUsages::default(),
    );
    image.texture_descriptor.usage =
        TextureUsages::TEXTURE_BINDING | TextureUsages::COPY_DST | TextureUsages::COPY_SRC;
    image
}

/// Largest frame a subscriber shows (its image also lives on the CPU, zero-filled, until the
/// first copy): 1 GiB.
const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// How long a subscriber waits before it looks again at a producer whose frames it cannot show.
const UNSHOWABLE_RETRY: Duration = Duration::from_secs(5);

/// Why frames of `desc` cannot become a Bevy image, if they cannot: depth/stencil and
/// block-compressed formats, formats wgpu lacks, and frames over [`MAX_IMAGE_BYTES`].
fn unshowable(desc: &geyser::common::TextureDescriptor) -> Option<String> {
    let format = desc.format;
    if format.is_depth_stencil() || format.is_compressed() || format.to_wgpu().is_none() {
        return Some(format!(
            "the producer's {format} frames cannot be shown in a Bevy image (colour formats \
             with a wgpu equivalent only)"
        ));
    }
    let bytes = u64::from(desc.width) * u64::from(desc.height) * u64::from(format.block_bytes());
    (bytes > MAX_IMAGE_BYTES).then(|| {
        format!(
            "the producer's {}x{} {format} frames are larger than a subscriber shows \
             ({bytes} bytes, at most {MAX_IMAGE_BYTES})",
            desc.width, desc.height
        )
    })
}

fn wgpu_format(format: TextureFormat) -> bevy::render::render_resource::TextureFormat {
    format
        .to_wgpu()
        .unwrap_or(bevy::render::render_resource::TextureFormat::Rgba8UnormSrgb)
}

/// Main world, private: the render world's status for this subscriber.
#[derive(Component, Clone, Default)]
pub(crate) struct SubscriberLink(Arc<Mutex<GeyserSubscriberStatus>>);

/// Main world: a subscriber was inserted (or replaced): a fresh link makes the render world
/// start over with it.
pub(crate) fn on_insert(event: On<Insert<GeyserSubscriber>>, mut commands: Commands) {
    commands
        .entity(event.entity)
        .insert((SubscriberLink::default(), GeyserSubscriberStatus::default()));
}

/// Main world, `First`: copies the render world's status into the components, and gives
/// each image the size and format of the frames it will receive.
pub(crate) fn update_status(
    mut subscribers: Query<(
        &GeyserSubscriber,
        &SubscriberLink,
        &mut GeyserSubscriberStatus,
    )>,
    mut images: ResMut<Assets<Image>>,
) {
    for (subscriber, link, mut status) in &mut subscribers {
        let now = link
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let (Some(size), Some(format)) = (now.size, now.format) {
            let format = wgpu_format(format);
            let fits = images
                .get(&subscriber.image)
                .is_some_and(|i| i.texture_descriptor.format == format && i.size() == size);
            if !fits {
                if let Err(e) = images.insert(&subscriber.image, frame_image(size, format)) {
                    warn!("geyser: subscriber {:?}: {e}", subscriber.name);
                }
            }
        }
        status.set_if_neq(now);
    }
}

/// Render world: the subscribers, by main-world entity.
#[derive(Resource, Default)]
pub(crate) struct RenderSubscribers(HashMap<Entity, SubscriberState>);

/// How long after a failed or lost connection the next attempt starts.
const RECONNECT: Duration = Duration::from_millis(250);

struct SubscriberState {
    config: GeyserSubscriber,
    link: SubscriberLink,
    consumer: Option<SyncCell<WgpuConsumer>>,
    /// A connection attempt running on its own thread (connecting imports the producer's
    /// ring and must not stall Bevy's frame).
    connecting: Option<SyncCell<JoinHandle<geyser::Result<WgpuConsumer>>>>,
    next_attempt: Instant,
    /// Frames copied since `window_start`, for the fps figure.
    window: (Instant, u32),
}

impl SubscriberState {
    fn status(&self, f: impl FnOnce(&mut GeyserSubscriberStatus)) {
        f(&mut self.link.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Starts or finishes a connection attempt.
    fn connect(&mut self, device: &GeyserDevice) {
        if let Some(attempt) = &mut self.connecting {
            if !attempt.get().is_finished() {
                return;
            }
            let attempt = self.connecting.take().expect("checked above");
            let result = SyncCell::to_inner(attempt).join().unwrap_or_else(|_| {
                Err(geyser::Error::Internal(
                    "the connecting thread panicked".into(),
                ))
            });
            self.next_attempt = Instant::now() + RECONNECT;
            match result {
                Ok(consumer) => {
                    let desc = consumer.consumer().descriptor().clone();
                    if let Some(why) = unshowable(&desc) {
                        // Not an image Bevy can sample: say so, and look again much later.
                        warn!("geyser: subscriber {:?}: {why}", self.config.name);
                        self.next_attempt = Instant::now() + UNSHOWABLE_RETRY;
                        self.status(|s| {
                            s.connected = false;
                            s.last_error = Some(why);
                        });
                        return;
                    }
                    let sync = consumer.consumer().sync_mode();
                    info!(
                        "geyser: subscribed to {:?}: {}x{} {}, sync {sync:?}",
                        self.config.name, desc.width, desc.height, desc.format
                    );
                    self.consumer = Some(SyncCell::new(consumer));
                    self.status(|s| {
                        s.connected = true;
                        s.size = Some(UVec2::new(desc.width, desc.height));
                        s.format = Some(desc.format);
                        s.sync = Some(sync);
                        s.connections += 1;
                        s.last_error = None;
                    });
                }
                Err(e) => {
                    let message = match e {
                        geyser::Error::NotFound { .. } => {
                            format!("waiting for a producer at {:?}", self.config.name)
                        }
                        e => format!("connecting: {e}"),
                    };
                    self.status(|s| s.last_error = Some(message));
                }
            }
            return;
        }
        if Instant::now() < self.next_attempt {
            return;
        }
        let (name, manager) = (self.config.name.clone(), device.0.clone());
        let options = ConsumerOptions {
            name: format!("bevy-{}", std::process::id()),
            ..default()
        };
        let attempt = std::thread::Builder::new()
            .name("geyser connect".into())
            .spawn(move || WgpuConsumer::connect_with(&name, manager, options));
        match attempt {
            Ok(handle) => self.connecting = Some(SyncCell::new(handle)),
            Err(e) => self.status(|s| s.last_error = Some(format!("starting a thread: {e}"))),
        }
    }

    /// Takes the newest frame, if one came, and copies it into the image.
    fn receive(
        &mut self,
        device: &GeyserDevice,
        images: &RenderAssets<GpuImage>,
        queue: &RenderQueue,
    ) {
        let Some(consumer) = self.consumer.as_mut().map(SyncCell::get) else {
            self.connect(device);
            return;
        };
        let received = match consumer.next_frame(Some(Duration::ZERO)) {
            Ok(frame) => {
                let target = images.get(&self.config.image).filter(|image| {
                    image.texture.format() == frame.texture().format()
                        && image.texture.size() == frame.texture().size()
                        && image.texture.usage().contains(TextureUsages::COPY_DST)
                });
                // Until the main world has resized the image, frames are released unseen.
                let Some(target) = target else {
                    return;
                };
                let number = frame.frame().number();
                let latency = frame.frame().latency();
                copy(&frame, target, device, queue)
                    .and_then(|()| frame.end())
                    .map(|()| (number, latency))
            }
            Err(geyser::Error::Timeout(_)) => return,
            Err(e) => Err(e),
        };
        match received {
            Ok((number, latency)) => {
                let (start, count) = &mut self.window;
                *count += 1;
                let elapsed = start.elapsed();
                let fps = (elapsed >= Duration::from_secs(1))
                    .then(|| *count as f32 / elapsed.as_secs_f32());
                if fps.is_some() {
                    self.window = (Instant::now(), 0);
                }
                self.status(|s| {
                    s.frames += 1;
                    s.frame = Some(number);
                    s.latency = Some(latency);
                    if let Some(fps) = fps {
                        s.fps = fps;
                    }
                });
            }
            Err(e) => {
                // The producer left (or broke the protocol): keep the last frame, connect again.
                let message = format!("lost the producer: {e}");
                info!("geyser: subscriber {:?}: {message}", self.config.name);
                self.consumer = None;
                self.next_attempt = Instant::now() + RECONNECT;
                self.status(|s| {
                    s.connected = false;
                    s.fps = 0.0;
                    s.last_error = Some(message);
                });
            }
        }
    }
}

/// Acquires the frame for wgpu and copies it into the image; `frame.end()` releases it.
fn copy(
    frame: &geyser::webgpu::WgpuFrame<'_>,
    target: &GpuImage,
    device: &GeyserDevice,
    queue: &RenderQueue,
) -> geyser::Result<()> {
    if !frame
        .frame()
        .texture()
        .descriptor()
        .has_usage(geyser::common::TextureUsage::CopySrc)
    {
        return Err(geyser::Error::unsupported(
            "copying frames into a Bevy image",
            "the producer's frames lack TextureUsage::CopySrc",
        ));
    }
    frame.begin()?;
    let mut encoder = device
        .device()
        .create_command_encoder(&CommandEncoderDescriptor {
            label: Some("geyser subscriber copy"),
        });
    encoder.copy_texture_to_texture(
        frame.texture().as_image_copy(),
        target.texture.as_image_copy(),
        frame.texture().size(),
    );
    queue.submit([encoder.finish()]);
    Ok(())
}

impl RenderSubscribers {
    /// Bevy made a new device (it recovered from a device loss): connections on the old one
    /// go, and are made again on the new one.
    pub(crate) fn forget_device(&mut self) {
        for state in self.0.values_mut() {
            state.consumer = None;
            state.connecting = None;
            state.status(|s| s.connected = false);
        }
    }
}

/// Render world, `ExtractSchedule`: follows the main world's subscribers.
pub(crate) fn extract(
    subscribers: Extract<Query<(Entity, &GeyserSubscriber, &SubscriberLink)>>,
    mut render: ResMut<RenderSubscribers>,
) {
    render
        .0
        .retain(|entity, state| match subscribers.get(*entity) {
            Ok((_, _, link)) => Arc::ptr_eq(&link.0, &state.link.0),
            Err(_) => false,
        });
    for (entity, subscriber, link) in &subscribers {
        render.0.entry(entity).or_insert_with(|| SubscriberState {
            config: subscriber.clone(),
            link: link.clone(),
            consumer: None,
            connecting: None,
            next_attempt: Instant::now(),
            window: (Instant::now(), 0),
        });
    }
}

/// Render world, after the images are prepared and before anything samples them: connects
/// subscribers and copies each new frame. Exclusive: timeline waits attach to wgpu's next
/// submission, which must be ours.
pub(crate) fn receive_frames(world: &mut World) {
    let Some(device) = world.get_resource::<GeyserDevice>().cloned() else {
        if let Some(reason) = world.get_resource::<Unshareable>().map(|u| u.0.clone()) {
            for state in world.resource::<RenderSubscribers>().0.values() {
                state.status(|s| s.last_error = Some(reason.clone()));
            }
        }
        return;
    };
    world.resource_scope(|world, mut subscribers: Mut<RenderSubscribers>| {
        let images = world.resource::<RenderAssets<GpuImage>>();
        let queue = world.resource::<RenderQueue>();
        for state in subscribers.0.values_mut() {
            state.receive(&device, images, queue);
        }
    });
}
