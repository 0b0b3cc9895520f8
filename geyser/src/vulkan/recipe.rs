//! The device recipe: what Geyser enables on a device it opens, as data (the extensions every
//! share needs, those it uses when offered, the timeline feature), and its check against one
//! physical device. Geyser's own devices and devices opened through another API share it.

use std::ffi::CStr;

use super::identity::{self, DeviceIdentity};
use super::os;
use crate::{Error, Result};

/// Device extensions and features sharing needs or uses.
pub(crate) struct DeviceRecipe {
    /// Extensions every share needs: a device without them cannot share.
    pub(crate) required: &'static [&'static CStr],
    /// Extensions enabled when the device offers them.
    pub(crate) optional: &'static [&'static CStr],
}

/// What Geyser enables on every device it opens: external memory (required), and DMA-BUF,
/// DRM format modifiers, semaphore and fence export, host-memory import, the foreign queue
/// family and calibrated timestamps where the device offers them; timeline semaphores and
/// texture compression families where the device has them.
pub(crate) const SHARING: DeviceRecipe = DeviceRecipe {
    required: &[os::MEMORY_EXTENSION],
    optional: &[
        ash::ext::external_memory_dma_buf::NAME,
        ash::ext::image_drm_format_modifier::NAME,
        os::SEMAPHORE_EXTENSION,
        os::FENCE_EXTENSION,
        ash::ext::external_memory_host::NAME,
        ash::ext::queue_family_foreign::NAME,
        // GPU timestamps on the host's clock (`timestamps.rs`); the KHR form where offered.
        ash::khr::calibrated_timestamps::NAME,
        ash::ext::calibrated_timestamps::NAME,
    ],
};

/// A recipe applied to one physical device: what to enable on it.
pub(crate) struct DeviceSetup {
    /// The required extensions, then the optional ones the device offers.
    pub(crate) extensions: Vec<&'static CStr>,
    /// The Vulkan version the device is used at: its own, capped at the instance's.
    pub(crate) api_version: u32,
    /// Whether to enable the Vulkan 1.2 `timelineSemaphore` feature (the device offers it).
    pub(crate) timeline_semaphore: bool,
    /// Vulkan 1.0 features to enable: the texture compression families the device offers
    /// (`textureCompressionBC`, `ETC2`, `ASTC_LDR`), so compressed formats can be shared.
    pub(crate) features: ash::vk::PhysicalDeviceFeatures,
}

impl DeviceRecipe {
    /// Checks the recipe against `device` (of `instance`, created with `instance_api_version`):
    /// [`Error::Unsupported`] naming the first required extension it lacks, otherwise what to
    /// enable on it.
    pub(crate) fn check(
        &self,
        instance: &ash::Instance,
        device: &DeviceIdentity,
        instance_api_version: u32,
    ) -> Result<DeviceSetup> {
        let available = identity::device_extensions(instance, device.physical)?;
        let offers = |e: &CStr| available.iter().any(|a| a.as_c_str() == e);
        if let Some(missing) = self.required.iter().find(|e| !offers(e)) {
            let ext = missing.to_string_lossy();
            return Err(Error::unsupported(
                ext.clone(),
                format!(
                    "{} does not offer {ext}, which every share needs",
                    device.name
                ),
            ));
        }
        let extensions = self
            .required
            .iter()
            .chain(self.optional)
            .copied()
            .filter(|e| offers(e))
            .collect();
        // SAFETY: `device.physical` was enumerated from `instance`.
        let props = unsafe { instance.get_physical_device_properties(device.physical) };
        let api_version = props.api_version.min(instance_api_version);
        // SAFETY: as above.
        let offered = unsafe { instance.get_physical_device_features(device.physical) };
        let features = ash::vk::PhysicalDeviceFeatures::default()
            .texture_compression_bc(offered.texture_compression_bc == ash::vk::TRUE)
            .texture_compression_etc2(offered.texture_compression_etc2 == ash::vk::TRUE)
            .texture_compression_astc_ldr(offered.texture_compression_astc_ldr == ash::vk::TRUE);
        Ok(DeviceSetup {
            extensions,
            api_version,
            timeline_semaphore: identity::offers_timelines(instance, device.physical, api_version),
            features,
        })
    }
}
