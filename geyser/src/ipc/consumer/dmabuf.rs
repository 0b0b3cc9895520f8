//! DMA-BUF rings across drivers: what a consumer tells the producer it imports
//! ([`Message::DmaBufImport`], before its Hello), and whether the ring it got is the producer's
//! DMA-BUF memory from another device or driver ([`crate::vulkan::TransferPath::DmaBuf`]).

use crate::common::{ExportInfo, ExternalHandleType};
use crate::ipc::wire::{Hello, Message};
use crate::vulkan::{DeviceIdentity, VulkanTextureShareManager};

/// The `DmaBufImport` this consumer sends, `None` when its device imports no DMA-BUF (tested
/// on RGBA8, the format every DMA-BUF importer takes LINEAR). Its modifiers: those the device
/// imports for some format with a DRM fourcc, LINEAR left out (always implied), at most
/// [`MAX_MODIFIERS`](crate::ipc::wire::MAX_MODIFIERS). The import of the ring itself checks the
/// ring's format and modifier.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn import_offer(manager: &VulkanTextureShareManager) -> Option<Message> {
    use crate::common::{TextureFormat, DRM_FORMAT_MOD_LINEAR};
    use crate::ipc::wire::MAX_MODIFIERS;
    let rgba8 = manager.importable_modifiers(TextureFormat::Rgba8Unorm);
    if rgba8.is_empty() {
        return None;
    }
    let mut modifiers = Vec::new();
    // LINEAR alone: no modifier extension (then every format is LINEAR only), nothing to list.
    if rgba8 != [DRM_FORMAT_MOD_LINEAR] {
        let formats = TextureFormat::all().filter(|f| f.info().drm_fourcc.is_some());
        for m in formats.flat_map(|f| manager.importable_modifiers(f)) {
            if m != DRM_FORMAT_MOD_LINEAR
                && !modifiers.contains(&m)
                && modifiers.len() < MAX_MODIFIERS
            {
                modifiers.push(m);
            }
        }
    }
    Some(Message::DmaBufImport { modifiers })
}

/// No DMA-BUFs off Linux.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn import_offer(_manager: &VulkanTextureShareManager) -> Option<Message> {
    None
}

/// The device and driver UUIDs this consumer reports in its Hello: its own, or, under
/// [`crate::ipc::testing::simulate_other_driver`], another driver's.
pub(super) fn reported_identity(id: &DeviceIdentity) -> ([u8; 16], [u8; 16]) {
    let mut driver = id.driver_uuid;
    if crate::ipc::testing::simulating_other_driver() {
        driver.iter_mut().for_each(|b| *b ^= 0xff);
    }
    (id.device_uuid, driver)
}

/// Whether a `PoolSetup` ring from the producer that said `producer` is DMA-BUF memory of
/// another device or driver than the one this consumer reported (`ours`).
pub(super) fn across_drivers(
    slots: &[ExportInfo],
    producer: &Hello,
    ours: ([u8; 16], [u8; 16]),
) -> bool {
    (producer.device_uuid, producer.driver_uuid) != ours
        && slots
            .iter()
            .all(|s| s.handle_type == ExternalHandleType::DmaBuf)
}
