//! The host-memory ring on Windows: not implemented. The Unix ring is a sealed memfd that both
//! processes map and import (`VK_EXT_external_memory_host`); Windows would need a section
//! object and its own sealing story. [`HostRing`] is uninhabited here, so no value of it can
//! exist: the producer refuses consumers on other devices and a consumer refuses a
//! `HostPoolSetup`, both with [`Error::Unsupported`].

use std::convert::Infallible;

use crate::common::{ExportInfo, OwnedOsHandle};
use crate::vulkan::{TransferPath, VulkanTexture, VulkanTextureShareManager};
use crate::{Error, Result};

fn unsupported() -> Error {
    Error::unsupported(
        "consumers on another device over the Windows named pipe",
        "the host-memory ring is implemented on Linux only (a sealed memfd); \
         connect the consumer to the producer's GPU",
    )
}

/// Never constructed on Windows (see the module docs).
pub(crate) struct HostRing(Infallible);

impl HostRing {
    pub(crate) fn create(
        _manager: &VulkanTextureShareManager,
        _info: &ExportInfo,
        _slots: usize,
    ) -> Result<Self> {
        Err(unsupported())
    }

    pub(crate) fn open(
        _manager: &VulkanTextureShareManager,
        _handle: OwnedOsHandle,
        _info: &ExportInfo,
        _slots: usize,
        _slot_bytes: u64,
    ) -> Result<Self> {
        Err(unsupported())
    }

    pub(crate) fn path(&self) -> TransferPath {
        match self.0 {}
    }

    pub(crate) fn fd(&self) -> &OwnedOsHandle {
        match self.0 {}
    }

    pub(crate) fn region_bytes(&self) -> u64 {
        match self.0 {}
    }

    pub(crate) fn download(&mut self, _slot: usize, _texture: &VulkanTexture) -> Result<()> {
        match self.0 {}
    }

    pub(crate) fn upload(&mut self, _slot: usize, _texture: &VulkanTexture) -> Result<()> {
        match self.0 {}
    }
}
