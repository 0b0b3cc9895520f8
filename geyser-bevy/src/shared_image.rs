//! [`SharedImages`]: a Geyser texture on Bevy's device (made with [`GeyserDevice`], or imported
//! from another Vulkan or wgpu context of this process) shown as a Bevy `Handle<Image>`, with
//! no copy: Bevy samples it, or a camera renders into it. Bevy's frame and the other context
//! take turns through [`SharedImageAccess`] (host-synchronized).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use bevy::asset::RenderAssetUsages;
use bevy::prelude::*;
use bevy::render::render_asset::RenderAssets;
use bevy::render::render_resource::{
    DefaultImageSampler, Texture, TextureDimension, TextureView, TextureViewDescriptor,
};
use bevy::render::texture::GpuImage;
use geyser::webgpu::WgpuTexture;

use crate::device::GeyserDevice;

/// Shows Geyser textures as Bevy images. A main-world resource.
///
/// ```no_run
/// # use bevy::prelude::*;
/// # use geyser_bevy::{GeyserDevice, SharedImages};
/// # fn system(device: Res<GeyserDevice>, shared: Res<SharedImages>, mut images: ResMut<Assets<Image>>,
/// #           exported: geyser::common::ExportedTexture) -> geyser::Result<()> {
/// // A texture another Vulkan context of this process exported:
/// let texture = device.import(exported)?;
/// let (image, access) = shared.add(texture, &mut images);
/// // `image` goes into a sprite, UI node or material, or is a camera's `RenderTarget::Image`.
/// // The other context uses the texture only while it holds `access.lock()`.
/// # Ok(()) }
/// ```
#[derive(Resource, Clone, Default)]
pub struct SharedImages(Arc<Mutex<Vec<Added>>>);

/// An image added in the main world, not yet taken over by the render world.
type Added = (AssetId<Image>, WgpuTexture, SharedImageAccess);

impl SharedImages {
    /// Shows `texture` (on [`GeyserDevice`]'s device) as a new image in `images`. Returns the
    /// handle and the gate the rest of the process uses the texture through. Bevy acquires
    /// and releases the texture around each of its frames; it stays shown for the app's
    /// lifetime.
    pub fn add(
        &self,
        texture: WgpuTexture,
        images: &mut Assets<Image>,
    ) -> (Handle<Image>, SharedImageAccess) {
        let t = texture.texture();
        // A stand-in of the same size, format and usages for the main world (sizes of sprites
        // and camera targets); the render world puts the shared texture behind it.
        let mut image = Image::new_uninit(
            t.size(),
            TextureDimension::D2,
            t.format(),
            RenderAssetUsages::default(),
        );
        image.texture_descriptor.usage = t.usage();
        let handle = images.add(image);
        let access = SharedImageAccess::default();
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((
            handle.id(),
            texture,
            access.clone(),
        ));
        (handle, access)
    }
}

/// Whose turn it is to use a shared image's texture: Bevy's frame (from before its first use
/// in the frame until that frame's GPU work is done) or the holder of [`Self::lock`]. A holder
/// records its own acquire and release (e.g. `VulkanTexture::access_barriers`) and waits for
/// its GPU work before dropping the guard; Bevy's render thread waits meanwhile, so hold it
/// briefly.
#[derive(Clone, Default, Debug)]
pub struct SharedImageAccess(Arc<(Mutex<bool>, Condvar)>);

/// The turn taken by [`SharedImageAccess::lock`]; dropping it gives the texture back.
#[must_use = "the turn ends when the guard is dropped"]
#[derive(Debug)]
pub struct SharedImageGuard(SharedImageAccess);

impl SharedImageAccess {
    /// Waits for Bevy's current frame to be done with the texture, then takes the turn. For
    /// threads of your own: inside a Bevy system use [`Self::try_lock`], because a system that
    /// blocks holds a task-pool thread that Bevy's render schedule may need to finish its frame.
    pub fn lock(&self) -> SharedImageGuard {
        self.take();
        SharedImageGuard(self.clone())
    }

    /// Takes the turn if Bevy's frame is not using the texture now; `None` otherwise (try
    /// again next frame).
    pub fn try_lock(&self) -> Option<SharedImageGuard> {
        let mut busy = self.busy();
        if *busy {
            return None;
        }
        *busy = true;
        Some(SharedImageGuard(self.clone()))
    }

    fn busy(&self) -> MutexGuard<'_, bool> {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) {
        let mut busy = self.busy();
        while *busy {
            busy = self.0 .1.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        *busy = true;
    }

    fn give(&self) {
        *self.busy() = false;
        self.0 .1.notify_all();
    }
}

impl Drop for SharedImageGuard {
    fn drop(&mut self) {
        self.0.give();
    }
}

/// Render world: the shared images and what Bevy renders them with.
#[derive(Resource, Default)]
pub(crate) struct RenderSharedImages {
    entries: Vec<Entry>,
    /// Images Bevy's frame holds now (between `begin_access` and `end_access`).
    held: Vec<usize>,
}

struct Entry {
    id: AssetId<Image>,
    texture: WgpuTexture,
    access: SharedImageAccess,
    gpu_image: GpuImage,
}

/// Render world, `ExtractSchedule`: takes over newly added images.
pub(crate) fn extract(
    shared: Res<SharedImages>,
    sampler: Res<DefaultImageSampler>,
    mut render: ResMut<RenderSharedImages>,
) {
    let added = std::mem::take(&mut *shared.0.lock().unwrap_or_else(PoisonError::into_inner));
    for (id, texture, access) in added {
        let t = texture.texture();
        let gpu_image = GpuImage {
            texture: Texture::from(t.clone()),
            texture_view: TextureView::from(t.create_view(&TextureViewDescriptor::default())),
            sampler: (**sampler).clone(),
            texture_descriptor: bevy::render::render_resource::TextureDescriptor {
                label: None,
                size: t.size(),
                mip_level_count: t.mip_level_count(),
                sample_count: t.sample_count(),
                dimension: t.dimension(),
                format: t.format(),
                usage: t.usage(),
                view_formats: &[],
            },
            texture_view_descriptor: None,
            had_data: false,
        };
        render.entries.push(Entry {
            id,
            texture,
            access,
            gpu_image,
        });
    }
}

/// Render world, right after Bevy prepared its images: puts each shared texture behind its
/// handle (again, whenever Bevy re-prepared the stand-in).
pub(crate) fn inject(render: Res<RenderSharedImages>, mut images: ResMut<RenderAssets<GpuImage>>) {
    for entry in &render.entries {
        let current = images.get(entry.id).map(|g| g.texture.id());
        if current != Some(entry.gpu_image.texture.id()) {
            images.insert(entry.id, entry.gpu_image.clone());
        }
    }
}

/// Render world, before anything of this frame uses the images: takes each image's turn and
/// acquires its texture for wgpu. Exclusive: nothing else submits in between.
pub(crate) fn begin_access(world: &mut World) {
    let Some(device) = world.get_resource::<GeyserDevice>().cloned() else {
        return;
    };
    let mut render = world.resource_mut::<RenderSharedImages>();
    let render = &mut *render;
    for (index, entry) in render.entries.iter().enumerate() {
        entry.access.take();
        if let Err(e) = device.begin_access(&entry.texture, &[]) {
            error!("geyser: acquiring a shared image: {e}");
            entry.access.give();
            continue;
        }
        render.held.push(index);
    }
}

/// Render world, after Bevy's frame was submitted: releases each texture, waits for the
/// frame's GPU work, and gives the turn back.
pub(crate) fn end_access(world: &mut World) {
    let Some(device) = world.get_resource::<GeyserDevice>().cloned() else {
        return;
    };
    let mut render = world.resource_mut::<RenderSharedImages>();
    let render = &mut *render;
    for index in render.held.drain(..) {
        let entry = &render.entries[index];
        let done = device
            .end_access(&entry.texture, None)
            .and_then(|submission| device.wait_for_submission(submission));
        if let Err(e) = done {
            error!("geyser: releasing a shared image: {e}");
        }
        entry.access.give();
    }
}
