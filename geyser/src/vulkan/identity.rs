//! What a device is: its identity ([`DeviceIdentity`]: names, type, UUIDs, PCI address), its
//! extensions and whether it offers timeline semaphores.

use std::ffi::CString;

use ash::vk;
use serde::Serialize;

use crate::common::uuid_string;
use crate::{Error, Result};

/// Who a device is: the facts used to select it and to check that two sides can share.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceIdentity {
    /// Position in `vkEnumeratePhysicalDevices` order.
    pub index: usize,
    /// `deviceName`.
    pub name: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: String,
    /// Supported Vulkan version, `major.minor.patch`.
    pub api_version: String,
    /// `driverName` (Vulkan 1.2), e.g. `llvmpipe` or `NVIDIA`.
    pub driver_name: String,
    /// `driverInfo`: the driver's version string.
    pub driver_info: String,
    /// PCI vendor ID.
    pub vendor_id: u32,
    /// PCI device ID.
    pub device_id: u32,
    /// `deviceUUID`.
    #[serde(serialize_with = "ser_uuid")]
    pub device_uuid: [u8; 16],
    /// `driverUUID`.
    #[serde(serialize_with = "ser_uuid")]
    pub driver_uuid: [u8; 16],
    /// PCI address `dddd:bb:dd.f`, when the device reports one (`VK_EXT_pci_bus_info`).
    pub pci_bus: Option<String>,
    #[serde(skip)]
    pub(crate) physical: vk::PhysicalDevice,
    #[serde(skip)]
    pub(crate) raw_type: vk::PhysicalDeviceType,
    /// `driverID` (Vulkan 1.2; zero before).
    #[serde(skip)]
    pub(crate) driver_id: vk::DriverId,
}

fn ser_uuid<S: serde::Serializer>(u: &[u8; 16], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&uuid_string(u))
}

impl DeviceIdentity {
    /// One line for lists and error messages.
    pub fn summary(&self) -> String {
        format!(
            "[{}] {} ({}, driver {}, uuid {})",
            self.index,
            self.name,
            self.device_type,
            self.driver_name,
            uuid_string(&self.device_uuid)
        )
    }

    pub(crate) fn type_rank(&self) -> u8 {
        match self.raw_type {
            vk::PhysicalDeviceType::DISCRETE_GPU => 0,
            vk::PhysicalDeviceType::INTEGRATED_GPU => 1,
            vk::PhysicalDeviceType::VIRTUAL_GPU => 2,
            vk::PhysicalDeviceType::CPU => 3,
            _ => 4,
        }
    }
}

pub(crate) fn device_extensions(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
) -> Result<Vec<CString>> {
    // SAFETY: `physical` was enumerated from `instance`.
    let exts = unsafe { instance.enumerate_device_extension_properties(physical) }
        .map_err(Error::vk("vkEnumerateDeviceExtensionProperties"))?;
    Ok(exts
        .iter()
        .filter_map(|e| e.extension_name_as_c_str().ok().map(|c| c.to_owned()))
        .collect())
}

/// Whether `physical` offers the Vulkan 1.2 `timelineSemaphore` feature when used at
/// `api_version` (never below 1.2).
pub(crate) fn offers_timelines(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    api_version: u32,
) -> bool {
    if api_version < vk::API_VERSION_1_2 {
        return false;
    }
    let mut features12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut features2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut features12);
    // SAFETY: `physical` belongs to `instance`; the chain holds only Vulkan 1.2 structs, and
    // the device is used at 1.2 or later.
    unsafe { instance.get_physical_device_features2(physical, &mut features2) };
    features12.timeline_semaphore == vk::TRUE
}

fn version_string(v: u32) -> String {
    format!(
        "{}.{}.{}",
        vk::api_version_major(v),
        vk::api_version_minor(v),
        vk::api_version_patch(v)
    )
}

/// Identity of one physical device.
pub(crate) fn identity(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    index: usize,
) -> Result<DeviceIdentity> {
    let exts = device_extensions(instance, physical)?;
    let has_pci = exts
        .iter()
        .any(|e| e.as_c_str() == ash::ext::pci_bus_info::NAME);
    let mut id = vk::PhysicalDeviceIDProperties::default();
    let mut driver = vk::PhysicalDeviceDriverProperties::default();
    let mut pci = vk::PhysicalDevicePCIBusInfoPropertiesEXT::default();
    // SAFETY: `physical` belongs to `instance`.
    let base = unsafe { instance.get_physical_device_properties(physical) };
    let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut id);
    if base.api_version >= vk::API_VERSION_1_2 {
        props2 = props2.push_next(&mut driver);
    }
    if has_pci {
        props2 = props2.push_next(&mut pci);
    }
    // SAFETY: the chain holds only structs the device supports (checked above).
    unsafe { instance.get_physical_device_properties2(physical, &mut props2) };
    let props = props2.properties;
    let name = props
        .device_name_as_c_str()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (driver_name, driver_info) = if base.api_version >= vk::API_VERSION_1_2 {
        (
            driver
                .driver_name_as_c_str()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
            driver
                .driver_info_as_c_str()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    } else {
        (
            String::from("unknown"),
            version_string(props.driver_version),
        )
    };
    Ok(DeviceIdentity {
        index,
        name,
        device_type: match props.device_type {
            vk::PhysicalDeviceType::DISCRETE_GPU => "discrete GPU",
            vk::PhysicalDeviceType::INTEGRATED_GPU => "integrated GPU",
            vk::PhysicalDeviceType::VIRTUAL_GPU => "virtual GPU",
            vk::PhysicalDeviceType::CPU => "CPU",
            _ => "other",
        }
        .to_string(),
        api_version: version_string(props.api_version),
        driver_name,
        driver_info,
        vendor_id: props.vendor_id,
        device_id: props.device_id,
        device_uuid: id.device_uuid,
        driver_uuid: id.driver_uuid,
        pci_bus: has_pci.then(|| {
            format!(
                "{:04x}:{:02x}:{:02x}.{:x}",
                pci.pci_domain, pci.pci_bus, pci.pci_device, pci.pci_function
            )
        }),
        physical,
        raw_type: props.device_type,
        driver_id: if base.api_version >= vk::API_VERSION_1_2 {
            driver.driver_id
        } else {
            vk::DriverId::default()
        },
    })
}

/// Identities of all physical devices, in enumeration order.
pub(crate) fn enumerate_identities(instance: &ash::Instance) -> Result<Vec<DeviceIdentity>> {
    // SAFETY: `instance` is live.
    let physicals = unsafe { instance.enumerate_physical_devices() }
        .map_err(Error::vk("vkEnumeratePhysicalDevices"))?;
    physicals
        .into_iter()
        .enumerate()
        .map(|(i, p)| identity(instance, p, i))
        .collect()
}
