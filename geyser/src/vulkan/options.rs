//! How Geyser creates its own instance and device: which physical device
//! ([`DeviceSelector`]) and whether the validation layer is on ([`Validation`]).

use super::identity::{self, DeviceIdentity};
use crate::common::{parse_uuid, uuid_string};
use crate::{Error, Result};

/// Whether to enable `VK_LAYER_KHRONOS_validation` on an instance Geyser creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Validation {
    /// No validation layer.
    Off,
    /// Enable it when installed; continue without it (with a warning) otherwise.
    #[default]
    IfAvailable,
    /// Enable it, or fail with [`Error::Unsupported`] when it is not installed.
    Required,
}

impl Validation {
    /// From `GEYSER_VALIDATION`: `1`/`on`/`required` → Required, `auto` → IfAvailable,
    /// unset or anything else → Off.
    pub fn from_env() -> Self {
        match std::env::var("GEYSER_VALIDATION").as_deref() {
            Ok("1" | "on" | "required" | "true") => Validation::Required,
            Ok("auto") => Validation::IfAvailable,
            _ => Validation::Off,
        }
    }
}

/// Which physical device to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DeviceSelector {
    /// The first discrete GPU, else integrated, else virtual, else CPU (lavapipe).
    #[default]
    Best,
    /// By position in `vkEnumeratePhysicalDevices` order (as `geyser info` lists them).
    Index(usize),
    /// By `deviceUUID`.
    Uuid([u8; 16]),
    /// By PCI address `domain:bus:device.function` (needs `VK_EXT_pci_bus_info`).
    PciBus(String),
    /// By case-insensitive substring of the device name.
    Name(String),
}

impl DeviceSelector {
    /// Parses `GEYSER_DEVICE`-style text: a number is an index, 32 hex digits (dashes allowed)
    /// a UUID, `pci:0000:01:00.0` a PCI address, anything else a name substring.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if let Ok(i) = s.parse::<usize>() {
            DeviceSelector::Index(i)
        } else if let Some(uuid) = parse_uuid(s) {
            DeviceSelector::Uuid(uuid)
        } else if let Some(pci) = s.strip_prefix("pci:") {
            DeviceSelector::PciBus(pci.to_ascii_lowercase())
        } else if s.is_empty() {
            DeviceSelector::Best
        } else {
            DeviceSelector::Name(s.to_string())
        }
    }

    /// The selector named by `GEYSER_DEVICE`, or [`DeviceSelector::Best`] when it is unset.
    pub fn from_env() -> Self {
        std::env::var("GEYSER_DEVICE")
            .map(|s| Self::parse(&s))
            .unwrap_or_default()
    }

    fn describe(&self) -> String {
        match self {
            DeviceSelector::Best => "best device".into(),
            DeviceSelector::Index(i) => format!("index {i}"),
            DeviceSelector::Uuid(u) => format!("uuid {}", uuid_string(u)),
            DeviceSelector::PciBus(p) => format!("pci {p}"),
            DeviceSelector::Name(n) => format!("name containing `{n}`"),
        }
    }

    /// Enumerates `instance`'s physical devices and picks one.
    pub(crate) fn pick(&self, instance: &ash::Instance) -> Result<DeviceIdentity> {
        let devices = identity::enumerate_identities(instance)?;
        self.select(&devices).cloned()
    }

    /// Picks a device from `devices` (in enumeration order).
    pub fn select<'a>(&self, devices: &'a [DeviceIdentity]) -> Result<&'a DeviceIdentity> {
        let found = match self {
            DeviceSelector::Best => devices.iter().min_by_key(|d| d.type_rank()),
            DeviceSelector::Index(i) => devices.get(*i),
            DeviceSelector::Uuid(u) => devices.iter().find(|d| &d.device_uuid == u),
            DeviceSelector::PciBus(p) => devices
                .iter()
                .find(|d| d.pci_bus.as_deref() == Some(p.as_str())),
            DeviceSelector::Name(n) => {
                let n = n.to_lowercase();
                devices.iter().find(|d| d.name.to_lowercase().contains(&n))
            }
        };
        found.ok_or_else(|| Error::NoDevice {
            request: self.describe(),
            available: devices.iter().map(|d| d.summary()).collect(),
        })
    }
}

/// How to create Geyser's own Vulkan instance and device.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Which device.
    pub device: DeviceSelector,
    /// Validation layer policy.
    pub validation: Validation,
}

impl ContextOptions {
    /// `GEYSER_DEVICE` and `GEYSER_VALIDATION` from the environment.
    pub fn from_env() -> Self {
        Self {
            device: DeviceSelector::from_env(),
            validation: Validation::from_env(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_parses_each_key() {
        assert_eq!(DeviceSelector::parse("1"), DeviceSelector::Index(1));
        assert_eq!(
            DeviceSelector::parse("pci:0000:01:00.0"),
            DeviceSelector::PciBus("0000:01:00.0".into())
        );
        assert_eq!(
            DeviceSelector::parse("llvmpipe"),
            DeviceSelector::Name("llvmpipe".into())
        );
        let u = "00112233-4455-6677-8899-aabbccddeeff";
        assert!(matches!(DeviceSelector::parse(u), DeviceSelector::Uuid(_)));
        assert_eq!(DeviceSelector::parse(""), DeviceSelector::Best);
    }
}
