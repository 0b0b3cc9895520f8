//! [`WgpuTextureShareManager`]: a wgpu device with Geyser's sharing extensions, and the
//! create / export / import / access operations on it.

use std::sync::Arc;
use std::time::Duration;

use ash::vk;
use wgpu_hal::api::Vulkan;

use super::texture::{self, WgpuTexture};
use crate::common::{
    self, ApiTextureHandle, Backend, ExportedTexture, TextureDescriptor, TextureExtent,
};
use crate::vulkan::device::{DeviceShared, SharedDevice};
use crate::vulkan::instance::{self, InstanceRecipe, OwnedInstance};
use crate::vulkan::recipe::SHARING;
use crate::vulkan::SUBMIT_TIMEOUT;
use crate::vulkan::{ContextOptions, DeviceIdentity, TimelinePoint, VulkanTextureShareManager};
use crate::{Error, Result, SharedTexture, TextureShareManager};

/// wgpu features Geyser asks for when it creates the device, where the adapter has them: they
/// make more of the format table usable from wgpu.
const WANTED_FEATURES: wgpu::Features = wgpu::Features::TEXTURE_FORMAT_16BIT_NORM
    .union(wgpu::Features::DEPTH32FLOAT_STENCIL8)
    .union(wgpu::Features::BGRA8UNORM_STORAGE)
    .union(wgpu::Features::TEXTURE_ADAPTER_SPECIFIC_FORMAT_FEATURES)
    .union(wgpu::Features::FLOAT32_FILTERABLE)
    .union(wgpu::Features::TEXTURE_COMPRESSION_BC)
    .union(wgpu::Features::TEXTURE_COMPRESSION_ETC2)
    .union(wgpu::Features::TEXTURE_COMPRESSION_ASTC)
    .union(wgpu::Features::VULKAN_EXTERNAL_MEMORY_DMA_BUF);

/// Shares textures on one wgpu device (Vulkan backend). `Send + Sync`.
///
/// Field order matters: the Vulkan view of the device drops before the wgpu handles, so the
/// last reference to wgpu's device is released after Geyser's objects on it.
pub struct WgpuTextureShareManager {
    vk: Arc<VulkanTextureShareManager>,
    queue: wgpu::Queue,
    device: wgpu::Device,
    adapter: wgpu::Adapter,
    _instance: Option<wgpu::Instance>,
}

impl std::fmt::Debug for WgpuTextureShareManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuTextureShareManager")
            .field("device", &self.vk.identity().name)
            .finish()
    }
}

/// Polls a future that is already complete on native wgpu (error scopes resolve at pop).
fn ready<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

impl WgpuTextureShareManager {
    /// Creates a Vulkan instance and a wgpu device on the device `options` selects, with every
    /// sharing extension the device offers (the validation layer per `options.validation`;
    /// its errors are counted by [`crate::vulkan::diagnostics::validation_error_count`]).
    pub fn create(options: &ContextOptions) -> Result<Self> {
        let flags = wgpu::InstanceFlags::empty();
        let entry = instance::load_entry()?;
        let wanted =
            wgpu_hal::vulkan::Instance::desired_extensions(&entry, vk::API_VERSION_1_3, flags)
                .map_err(|e| Error::unsupported("wgpu Vulkan instance", e.to_string()))?;
        let recipe = InstanceRecipe::new(&entry, options, wanted)?;
        let owned = OwnedInstance::create(entry.clone(), &recipe)?;
        let raw_instance = owned.raw().clone();
        let chosen = options.device.pick(&raw_instance)?;
        let drop_instance: wgpu_hal::DropCallback = Box::new(move || drop(owned));
        // SAFETY: the instance was created from `entry` with `recipe` (its API version, and
        // extensions that include wgpu-hal's desired ones) and no wgpu flags; it stays valid
        // until wgpu-hal calls or drops `drop_instance`, which destroys it (and our messenger)
        // exactly once.
        let hal_instance = unsafe {
            wgpu_hal::vulkan::Instance::from_raw(
                entry,
                raw_instance.clone(),
                recipe.api_version,
                0,
                None,
                recipe.extensions.clone(),
                flags,
                wgpu::MemoryBudgetThresholds::default(),
                false,
                Some(drop_instance),
            )
        }
        .map_err(|e| Error::unsupported("wgpu Vulkan instance", e.to_string()))?;

        let exposed = hal_instance
            .expose_adapter(chosen.physical)
            .ok_or_else(|| {
                Error::unsupported(
                    "wgpu adapter",
                    format!(
                        "wgpu does not expose {} (it lacks a feature wgpu requires)",
                        chosen.name
                    ),
                )
            })?;
        let extra = SHARING
            .check(&raw_instance, &chosen, recipe.api_version)?
            .extensions;
        let features = exposed.features & WANTED_FEATURES;
        let limits = exposed.capabilities.limits.clone();
        let callback: Box<wgpu_hal::vulkan::CreateDeviceCallback<'_>> = Box::new(move |args| {
            for ext in extra {
                if !args.extensions.contains(&ext) {
                    args.extensions.push(ext);
                }
            }
        });
        // SAFETY: the callback only adds extensions the physical device offers (checked
        // above); it removes nothing and turns no feature off.
        let open = unsafe {
            exposed.adapter.open_with_callback(
                features,
                &limits,
                &wgpu::MemoryHints::Performance,
                Some(callback),
            )
        }
        .map_err(|e| Error::unsupported("wgpu device", e.to_string()))?;
        // SAFETY: `hal_instance` is a valid wgpu-hal Vulkan instance.
        let instance = unsafe { wgpu::Instance::from_hal::<Vulkan>(hal_instance) };
        // SAFETY: `exposed` came from this instance.
        let adapter = unsafe { instance.create_adapter_from_hal(exposed) };
        let desc = wgpu::DeviceDescriptor {
            label: Some("geyser"),
            required_features: features,
            required_limits: limits,
            ..Default::default()
        };
        // SAFETY: `open` was opened from this adapter with exactly these features and limits.
        let (device, queue) = unsafe { adapter.create_device_from_hal(open, &desc) }
            .map_err(|e| Error::unsupported("wgpu device", e.to_string()))?;
        Self::wrap(Some(instance), adapter, device, queue)
    }

    /// [`Self::create`] with `GEYSER_DEVICE` and `GEYSER_VALIDATION` from the environment.
    pub fn create_default() -> Result<Self> {
        Self::create(&ContextOptions::from_env())
    }

    /// Wraps an application's wgpu device. It must use the Vulkan backend and have
    /// `VK_KHR_external_memory_fd` enabled ([`Error::Unsupported`] otherwise; wgpu 30 enables
    /// it whenever the device offers it, and `wgpu::Features::VULKAN_EXTERNAL_MEMORY_FD`
    /// requires it).
    /// Exportable semaphores (for GPU-side waits) are used when the device has
    /// `VK_KHR_external_semaphore_fd` enabled.
    pub fn from_wgpu(
        adapter: &wgpu::Adapter,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
    ) -> Result<Self> {
        Self::wrap(None, adapter.clone(), device.clone(), queue.clone())
    }

    fn wrap(
        instance: Option<wgpu::Instance>,
        adapter: wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Result<Self> {
        let shared = {
            // SAFETY: only used to read wgpu's raw handles; nothing is destroyed through it.
            let hal = unsafe { device.as_hal::<Vulkan>() }.ok_or_else(|| {
                Error::unsupported(
                    "wgpu interop",
                    "the wgpu device does not use the Vulkan backend",
                )
            })?;
            let enabled = hal.enabled_device_extensions();
            if let Some(missing) = SHARING.required.iter().find(|e| !enabled.contains(e)) {
                return Err(Error::unsupported(
                    missing.to_string_lossy(),
                    "the wgpu device was created without it; request wgpu::Features::VULKAN_EXTERNAL_MEMORY_FD or use WgpuTextureShareManager::create",
                ));
            }
            // wgpu owns queue 0 and submits to it without Geyser's lock.
            let dev = DeviceShared::borrowed(
                hal.shared_instance().raw_instance().clone(),
                hal.raw_device().clone(),
                hal.raw_physical_device(),
                hal.queue_family_index(),
                true,
            )?;
            VulkanTextureShareManager::from_device(dev)
        };
        Ok(Self {
            vk: Arc::new(shared),
            queue,
            device,
            adapter,
            _instance: instance,
        })
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue (queue 0 of the device; every Geyser submission goes through it).
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The wgpu adapter.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    /// The wgpu instance, when Geyser created it ([`Self::create`]): e.g. to make a surface
    /// for a window (the instance has the platform's surface extensions). `None` for a
    /// wrapped application device ([`Self::from_wgpu`]), whose instance the application has.
    pub fn instance(&self) -> Option<&wgpu::Instance> {
        self._instance.as_ref()
    }

    /// The Vulkan device under wgpu (name, UUIDs, driver).
    pub fn identity(&self) -> &DeviceIdentity {
        self.vk.identity()
    }

    /// Whether timeline semaphores can be shared (GPU-side waits); otherwise accesses are
    /// synchronized on the host with [`Self::wait_for_submission`].
    pub fn can_share_timelines(&self) -> bool {
        self.vk.can_share_timelines()
    }

    #[cfg(all(feature = "ipc", any(target_os = "linux", target_os = "android")))]
    pub(crate) fn vulkan(&self) -> &Arc<VulkanTextureShareManager> {
        &self.vk
    }

    pub(crate) fn shared_device(&self) -> &SharedDevice {
        &self.vk.dev
    }

    /// Creates a 2D shareable texture usable as a [`wgpu::Texture`].
    pub fn create_texture(&self, desc: &TextureDescriptor) -> Result<WgpuTexture> {
        self.create_texture_with(desc, &TextureExtent::default())
    }

    /// Creates a shareable texture with `extent` (layers, mips, 3D, cube). Checks first that
    /// wgpu can represent the format and usages on this device ([`Error::Unsupported`]).
    pub fn create_texture_with(
        &self,
        desc: &TextureDescriptor,
        extent: &TextureExtent,
    ) -> Result<WgpuTexture> {
        texture::check_representable(self, desc, extent)?;
        let vk = self.vk.create_texture_with(desc, extent)?;
        texture::wrap(self, vk)
    }

    /// Exports a texture for another context or process (each call makes a new OS handle).
    pub fn export(&self, texture: &WgpuTexture) -> Result<ExportedTexture> {
        self.vk.export(texture.vulkan())
    }

    /// Imports an export from a Vulkan or wgpu context (same or other process, same GPU and
    /// driver) as a [`wgpu::Texture`], after checking that `desc` matches the exporter's.
    /// Descriptors wgpu cannot represent fail with [`Error::Unsupported`] before any import.
    pub fn import_with(
        &self,
        exported: ExportedTexture,
        desc: &TextureDescriptor,
    ) -> Result<WgpuTexture> {
        texture::check_representable(self, desc, &exported.info.extent)?;
        let vk = self.vk.import_with(exported, desc)?;
        texture::wrap(self, vk)
    }

    /// Imports an export with the descriptor it carries.
    pub fn import(&self, exported: ExportedTexture) -> Result<WgpuTexture> {
        let desc = exported.info.descriptor.clone();
        self.import_with(exported, &desc)
    }

    /// A new owned copy of an export in this manager's table.
    pub fn exported(&self, handle: ApiTextureHandle) -> Result<ExportedTexture> {
        self.vk.exported(handle)
    }

    /// Begins an access: submits (through wgpu) the acquire of `texture` from
    /// `VK_QUEUE_FAMILY_EXTERNAL`, waiting on the GPU for each of `waits` (timeline points on
    /// this device, e.g. an IPC frame's ready point). A texture never written is not
    /// acquired: its contents are discarded instead. Record and submit wgpu work that uses
    /// the texture after this call, on the same thread as the call (the waits attach to
    /// wgpu's next submission).
    pub fn begin_access(&self, texture: &WgpuTexture, waits: &[TimelinePoint]) -> Result<()> {
        texture::begin_access(self, texture, waits)
    }

    /// Ends an access: records the transition back to the shared layout and the release to
    /// `VK_QUEUE_FAMILY_EXTERNAL` after all wgpu work submitted so far, and submits it,
    /// signalling `signal` when it is given (GPU-side handoff). Returns the submission's index;
    /// for a host-synchronized peer, wait for it with [`Self::wait_for_submission`] before
    /// telling the peer.
    pub fn end_access(
        &self,
        texture: &WgpuTexture,
        signal: Option<&TimelinePoint>,
    ) -> Result<wgpu::SubmissionIndex> {
        texture::end_access(self, texture, signal)
    }

    /// Host fallback: blocks until the GPU has finished submission `index` (only that one,
    /// not the whole device), up to [`SUBMIT_TIMEOUT`].
    pub fn wait_for_submission(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        self.wait_for_submission_timeout(index, SUBMIT_TIMEOUT)
    }

    /// [`Self::wait_for_submission`] with an explicit timeout ([`Error::Timeout`] past it).
    pub fn wait_for_submission_timeout(
        &self,
        index: wgpu::SubmissionIndex,
        timeout: Duration,
    ) -> Result<()> {
        self.poll_wait(Some(index), timeout)
    }

    /// Blocks until submission `index` (`None`: everything submitted so far) has finished,
    /// up to `timeout`.
    pub(crate) fn poll_wait(
        &self,
        index: Option<wgpu::SubmissionIndex>,
        timeout: Duration,
    ) -> Result<()> {
        match self.device.poll(wgpu::PollType::Wait {
            submission_index: index,
            timeout: Some(timeout),
        }) {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(Error::Timeout(format!(
                "wgpu submission not finished after {timeout:?}"
            ))),
            Err(e) => Err(Error::unsupported("wgpu poll", e.to_string())),
        }
    }

    /// Runs `f` inside a wgpu validation error scope, turning a wgpu validation error into
    /// `err(message)` instead of wgpu's default (a panic in the uncaptured-error handler).
    pub(crate) fn scoped<R>(
        &self,
        f: impl FnOnce() -> R,
        err: impl FnOnce(String) -> Error,
    ) -> Result<R> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        match ready(scope.pop()).flatten() {
            None => Ok(value),
            Some(e) => Err(err(e.to_string())),
        }
    }
}

impl TextureShareManager for WgpuTextureShareManager {
    fn create_shareable_texture(&self, desc: &TextureDescriptor) -> Result<Box<dyn SharedTexture>> {
        Ok(Box::new(self.create_texture(desc)?))
    }

    fn export_texture(&self, texture: &dyn SharedTexture) -> Result<ApiTextureHandle> {
        let texture = common::downcast::<WgpuTexture>(texture, Backend::WebGpu)?;
        self.vk.export_texture(texture.vulkan())
    }

    fn import_texture(
        &self,
        handle: ApiTextureHandle,
        desc: &TextureDescriptor,
    ) -> Result<Box<dyn SharedTexture>> {
        let exported = self.vk.exported(handle)?;
        Ok(Box::new(self.import_with(exported, desc)?))
    }

    fn release_texture_handle(&self, handle: ApiTextureHandle) -> Result<()> {
        self.vk.release_texture_handle(handle)
    }
}
