//! [`TexturePool`]: exportable textures reused by descriptor. Creating an exportable texture
//! is a dedicated driver allocation (milliseconds at 4K on NVIDIA), and importing it into
//! another context is another; a pool keeps both for the next texture of the same kind, for
//! producers that rebuild their ring and applications that create shared textures on the fly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;

use super::image::VulkanTexture;
use super::manager::VulkanTextureShareManager;
use crate::common::{TextureDescriptor, TextureExtent};
use crate::Result;

/// A free texture, and the imports of it made so far (one per importing device).
struct Entry {
    texture: VulkanTexture,
    imports: Vec<(vk::Device, VulkanTexture)>,
}

struct PoolInner {
    manager: Arc<VulkanTextureShareManager>,
    free: Mutex<Vec<Entry>>,
    max_free: usize,
    created: AtomicU64,
    recycled: AtomicU64,
}

/// Exportable textures on one manager's device, reused by descriptor and extent (the label is
/// not compared). [`Self::create`] hands out a free texture of the same kind when there is
/// one, else creates it; dropping the [`PooledTexture`] gives it back, with the imports made
/// of it ([`PooledTexture::import_into`]), so the next user of the same kind pays neither
/// allocation. `Send + Sync`.
///
/// A texture comes back with its old texels (treat it as uninitialized) and may still be
/// imported elsewhere: give it back only once nobody reads it any more, as you would destroy
/// it, and keep textures that other processes hold out of the pool.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use geyser::common::*;
/// # use geyser::vulkan::{TexturePool, VulkanTextureShareManager};
/// # fn main() -> geyser::Result<()> {
/// let a = Arc::new(VulkanTextureShareManager::create_default()?);
/// let b = VulkanTextureShareManager::create_default()?;
/// let pool = TexturePool::new(a.clone(), 8);
/// let desc = TextureDescriptor::new(3840, 2160, TextureFormat::Rgba8Unorm, &[TextureUsage::CopyDst]);
/// let mut t = pool.create(&desc)?;       // allocates the first time
/// let on_b = t.import_into(&b)?;         // exports and imports the first time
/// drop((on_b, t));                       // back into the pool, import included
/// let mut t = pool.create(&desc)?;       // the same allocation again
/// let on_b = t.import_into(&b)?;         // the same import again
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TexturePool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for TexturePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TexturePool")
            .field("free", &self.free_count())
            .field("max_free", &self.inner.max_free)
            .finish()
    }
}

/// Counters of a [`TexturePool`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Textures the pool created (allocations).
    pub created: u64,
    /// Textures handed out again from the free list.
    pub recycled: u64,
    /// Textures free in the pool now.
    pub free: usize,
}

impl TexturePool {
    /// A pool on `manager`'s device that keeps at most `max_free` free textures (more are
    /// destroyed when given back).
    pub fn new(manager: Arc<VulkanTextureShareManager>, max_free: usize) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                manager,
                free: Mutex::new(Vec::with_capacity(max_free)),
                max_free,
                created: AtomicU64::new(0),
                recycled: AtomicU64::new(0),
            }),
        }
    }

    /// A plain 2D texture of `desc` (see [`Self::create_with`]).
    pub fn create(&self, desc: &TextureDescriptor) -> Result<PooledTexture> {
        self.create_with(desc, &TextureExtent::default())
    }

    /// A texture of `desc` and `extent`: a free one of the same kind if there is one, else a
    /// new one ([`VulkanTextureShareManager::create_texture_with`], same errors).
    pub fn create_with(
        &self,
        desc: &TextureDescriptor,
        extent: &TextureExtent,
    ) -> Result<PooledTexture> {
        let same = |e: &Entry| {
            let info = e.texture.export_info();
            desc.check_matches(&info.descriptor).is_ok() && info.extent == *extent
        };
        let found = {
            let mut free = self.lock();
            free.iter().position(same).map(|i| free.swap_remove(i))
        };
        let (entry, recycled) = match found {
            Some(entry) => {
                self.inner.recycled.fetch_add(1, Ordering::Relaxed);
                (entry, true)
            }
            None => {
                let texture = self.inner.manager.create_texture_with(desc, extent)?;
                self.inner.created.fetch_add(1, Ordering::Relaxed);
                let imports = Vec::new();
                (Entry { texture, imports }, false)
            }
        };
        Ok(PooledTexture {
            entry: Some(entry),
            pool: self.inner.clone(),
            recycled,
        })
    }

    /// The manager whose device the pool's textures are on.
    pub fn manager(&self) -> &Arc<VulkanTextureShareManager> {
        &self.inner.manager
    }

    /// Free textures in the pool now.
    pub fn free_count(&self) -> usize {
        self.lock().len()
    }

    /// Counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            created: self.inner.created.load(Ordering::Relaxed),
            recycled: self.inner.recycled.load(Ordering::Relaxed),
            free: self.free_count(),
        }
    }

    /// Destroys every free texture (and its imports) now.
    pub fn clear(&self) {
        let freed = std::mem::take(&mut *self.lock());
        drop(freed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        lock(&self.inner.free)
    }
}

/// The pool's lock; a poisoned one is still a valid list of textures.
fn lock(free: &Mutex<Vec<Entry>>) -> std::sync::MutexGuard<'_, Vec<Entry>> {
    free.lock().unwrap_or_else(|p| p.into_inner())
}

/// A texture on loan from a [`TexturePool`]; dropping it gives it back. Dereferences to the
/// [`VulkanTexture`].
pub struct PooledTexture {
    entry: Option<Entry>,
    pool: Arc<PoolInner>,
    recycled: bool,
}

impl std::fmt::Debug for PooledTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledTexture")
            .field("texture", &self.entry.as_ref().map(|e| &e.texture))
            .field("recycled", &self.recycled)
            .finish()
    }
}

impl PooledTexture {
    fn entry(&self) -> &Entry {
        self.entry.as_ref().expect("present until dropped")
    }

    /// The texture.
    pub fn texture(&self) -> &VulkanTexture {
        &self.entry().texture
    }

    /// Whether it came from the pool's free list (rather than a new allocation).
    pub fn recycled(&self) -> bool {
        self.recycled
    }

    /// The texture imported into `manager`'s device: made the first time (export + import),
    /// and kept with the texture in the pool, so the next loan of it imports nothing.
    pub fn import_into(&mut self, manager: &VulkanTextureShareManager) -> Result<VulkanTexture> {
        let device = manager.device().handle();
        let entry = self.entry.as_mut().expect("present until dropped");
        if let Some((_, t)) = entry.imports.iter().find(|(d, _)| *d == device) {
            return Ok(t.clone());
        }
        let exporter = &self.pool.manager;
        let imported = manager.import(exporter.export(&entry.texture)?)?;
        entry.imports.push((device, imported.clone()));
        Ok(imported)
    }
}

impl std::ops::Deref for PooledTexture {
    type Target = VulkanTexture;
    fn deref(&self) -> &VulkanTexture {
        self.texture()
    }
}

impl Drop for PooledTexture {
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        let mut free = lock(&self.pool.free);
        if free.len() < self.pool.max_free {
            free.push(entry);
        }
        // Otherwise `entry` drops here: the texture and its imports are destroyed once their
        // last clones go.
    }
}
