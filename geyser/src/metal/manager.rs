//! [`MetalTextureShareManager`] and [`MetalTexture`]: IOSurface-backed `MTLTexture`s, exported
//! as the surface itself (in-process) or as a mach port (for another process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2_core_foundation::{CFDictionary, CFNumber, CFRetained, CFString};
use objc2_io_surface::{
    kIOSurfaceBytesPerElement, kIOSurfaceBytesPerRow, kIOSurfaceHeight, kIOSurfacePixelFormat,
    kIOSurfaceWidth, IOSurfaceRef,
};
use objc2_metal::{
    MTLCreateSystemDefaultDevice, MTLDevice, MTLPixelFormat, MTLTexture, MTLTextureDescriptor,
    MTLTextureUsage,
};

use super::plan::{plan, SurfacePlan};
use super::port::OwnedMachPort;
use crate::common::{self, ApiTextureHandle, Backend, TextureDescriptor, TextureExtent};
use crate::{Error, Result, SharedTexture, TextureShareManager};

/// Manager ids start here so that a Vulkan manager's handle is never mistaken for ours.
static NEXT_MANAGER: AtomicU32 = AtomicU32::new(1 << 31);

/// An IOSurface-backed Metal texture. Cheap to share: the surface and texture are
/// reference-counted by the OS and released when the last holder drops them.
pub struct MetalTexture {
    desc: TextureDescriptor,
    extent: TextureExtent,
    surface: CFRetained<IOSurfaceRef>,
    texture: Retained<ProtocolObject<dyn MTLTexture>>,
    manager: u32,
    imported: bool,
}

// SAFETY: IOSurface objects and Metal resources are documented thread-safe (any thread may
// use or release them); GPU access to the contents is ordered by the sync model
// (MTLSharedEvent), not by Rust ownership.
unsafe impl Send for MetalTexture {}
// SAFETY: as above; `&MetalTexture` only hands out the retained objects.
unsafe impl Sync for MetalTexture {}

impl std::fmt::Debug for MetalTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetalTexture")
            .field("format", &self.desc.format)
            .field("width", &self.desc.width)
            .field("height", &self.desc.height)
            .field("iosurface_id", &self.surface.id())
            .field("imported", &self.imported)
            .finish()
    }
}

impl MetalTexture {
    /// The `MTLTexture`.
    pub fn raw(&self) -> &ProtocolObject<dyn MTLTexture> {
        &self.texture
    }

    /// The IOSurface holding the texels.
    pub fn surface(&self) -> &IOSurfaceRef {
        &self.surface
    }
}

impl SharedTexture for MetalTexture {
    fn descriptor(&self) -> &TextureDescriptor {
        &self.desc
    }
    fn extent(&self) -> &TextureExtent {
        &self.extent
    }
    fn backend(&self) -> Backend {
        Backend::Metal
    }
    fn is_imported(&self) -> bool {
        self.imported
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// One export in the manager's table: the surface (retained) and the descriptor it was made
/// with.
struct Export {
    surface: CFRetained<IOSurfaceRef>,
    desc: TextureDescriptor,
}

/// Creates, exports and imports IOSurface-backed textures on one `MTLDevice`.
pub struct MetalTextureShareManager {
    device: Retained<ProtocolObject<dyn MTLDevice>>,
    id: u32,
    next_handle: AtomicU64,
    exports: Mutex<HashMap<u64, Export>>,
}

// SAFETY: `MTLDevice` is Send + Sync; the export table is behind a mutex; the retained
// IOSurfaces in it are thread-safe objects (see `MetalTexture`).
unsafe impl Send for MetalTextureShareManager {}
// SAFETY: as above.
unsafe impl Sync for MetalTextureShareManager {}

impl std::fmt::Debug for MetalTextureShareManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetalTextureShareManager")
            .field("id", &self.id)
            .field("device", &self.device.name().to_string())
            .finish()
    }
}

impl MetalTextureShareManager {
    /// Wraps an application's device.
    pub fn new(device: Retained<ProtocolObject<dyn MTLDevice>>) -> Self {
        Self {
            device,
            id: NEXT_MANAGER.fetch_add(1, Ordering::Relaxed),
            next_handle: AtomicU64::new(1),
            exports: Mutex::new(HashMap::new()),
        }
    }

    /// Uses the system's default Metal device. [`Error::Unsupported`] when there is none.
    pub fn create_default() -> Result<Self> {
        let device = MTLCreateSystemDefaultDevice()
            .ok_or_else(|| Error::unsupported("Metal", "MTLCreateSystemDefaultDevice is nil"))?;
        Ok(Self::new(device))
    }

    /// The `MTLDevice`.
    pub fn device(&self) -> &ProtocolObject<dyn MTLDevice> {
        &self.device
    }

    /// Creates an IOSurface for `desc` and a texture on it.
    pub fn create_texture(&self, desc: &TextureDescriptor) -> Result<MetalTexture> {
        let extent = TextureExtent::default();
        let plan = plan(desc, &extent)?;
        let surface = create_surface(desc, &plan)?;
        self.texture_on(surface, desc, &plan, false)
    }

    fn texture_on(
        &self,
        surface: CFRetained<IOSurfaceRef>,
        desc: &TextureDescriptor,
        plan: &SurfacePlan,
        imported: bool,
    ) -> Result<MetalTexture> {
        // SAFETY: width and height were validated (1..=MAX_DIMENSION) by `plan`; the pixel
        // format value comes from the format table.
        let td = unsafe {
            MTLTextureDescriptor::texture2DDescriptorWithPixelFormat_width_height_mipmapped(
                MTLPixelFormat(plan.mtl_pixel_format as usize),
                desc.width as usize,
                desc.height as usize,
                false,
            )
        };
        td.setUsage(MTLTextureUsage::from_bits_retain(plan.mtl_usage as usize));
        let texture = self
            .device
            .newTextureWithDescriptor_iosurface_plane(&td, &surface, 0)
            .ok_or_else(|| {
                Error::unsupported(
                    format!("{} texture on an IOSurface", desc.format),
                    format!(
                        "{} returned no texture for this descriptor",
                        self.device.name()
                    ),
                )
            })?;
        Ok(MetalTexture {
            desc: desc.clone(),
            extent: TextureExtent::default(),
            surface,
            texture,
            manager: self.id,
            imported,
        })
    }

    /// A send right for an export's IOSurface, to move to another process (in a mach message
    /// or over XPC), where [`Self::import_mach_port`] opens it.
    pub fn export_mach_port(&self, handle: ApiTextureHandle) -> Result<OwnedMachPort> {
        let table = self.table(handle)?;
        let entry = table.get(&handle.id).ok_or(Error::UnknownHandle {
            handle,
            reason: "was never issued or was already released",
        })?;
        let port = entry.surface.create_mach_port();
        // SAFETY: IOSurfaceCreateMachPort returns a new send right that the caller owns.
        unsafe { OwnedMachPort::from_raw(port) }.ok_or_else(|| {
            Error::Io(std::io::Error::other(
                "IOSurfaceCreateMachPort returned MACH_PORT_NULL",
            ))
        })
    }

    /// Opens an IOSurface received as a mach port and makes a texture on it. The surface's
    /// size and pixel format must match `desc` ([`Error::DescriptorMismatch`] otherwise).
    /// The port is released either way.
    pub fn import_mach_port(
        &self,
        port: OwnedMachPort,
        desc: &TextureDescriptor,
    ) -> Result<MetalTexture> {
        let plan = plan(desc, &TextureExtent::default())?;
        let surface = IOSurfaceRef::lookup_from_mach_port(port.as_raw()).ok_or_else(|| {
            Error::InvalidArgument {
                what: "mach port",
                reason: "IOSurfaceLookupFromMachPort found no IOSurface behind it".into(),
            }
        })?;
        drop(port);
        check_surface(&surface, desc, &plan)?;
        self.texture_on(surface, desc, &plan, true)
    }

    fn table(
        &self,
        handle: ApiTextureHandle,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<u64, Export>>> {
        if handle.manager != self.id {
            return Err(Error::UnknownHandle {
                handle,
                reason: "belongs to another manager",
            });
        }
        Ok(self.exports.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The IOSurface properties for a plan, and the surface.
fn create_surface(
    desc: &TextureDescriptor,
    plan: &SurfacePlan,
) -> Result<CFRetained<IOSurfaceRef>> {
    // SAFETY: the kIOSurface* keys are immutable CFStrings exported by IOSurface.framework,
    // valid for the life of the process.
    let keys: [&CFString; 5] = unsafe {
        [
            kIOSurfaceWidth,
            kIOSurfaceHeight,
            kIOSurfaceBytesPerElement,
            kIOSurfaceBytesPerRow,
            kIOSurfacePixelFormat,
        ]
    };
    let row = IOSurfaceRef::align_property(keys[3], plan.bytes_per_row as usize);
    let numbers = [
        CFNumber::new_i64(i64::from(desc.width)),
        CFNumber::new_i64(i64::from(desc.height)),
        CFNumber::new_i64(i64::from(plan.bytes_per_element)),
        CFNumber::new_i64(row as i64),
        // The fourcc is an OSType (u32); CFNumber carries its bit pattern.
        CFNumber::new_i64(i64::from(plan.iosurface_fourcc)),
    ];
    let values: Vec<&CFNumber> = numbers.iter().map(|n| &**n).collect();
    let properties = CFDictionary::<CFString, CFNumber>::from_slices(&keys, &values);
    // SAFETY: `properties` is a dictionary of the documented IOSurface keys with CFNumber
    // values of the documented meaning.
    unsafe { IOSurfaceRef::new(properties.as_ref()) }.ok_or_else(|| {
        Error::unsupported(
            format!("{}x{} {} IOSurface", desc.width, desc.height, desc.format),
            "IOSurfaceCreate refused the properties",
        )
    })
}

/// Checks an imported surface against the importer's descriptor.
fn check_surface(
    surface: &IOSurfaceRef,
    desc: &TextureDescriptor,
    plan: &SurfacePlan,
) -> Result<()> {
    let checks = [
        ("width", surface.width() as u64, u64::from(desc.width)),
        ("height", surface.height() as u64, u64::from(desc.height)),
        (
            "IOSurface pixel format",
            u64::from(surface.pixel_format()),
            u64::from(plan.iosurface_fourcc),
        ),
        (
            "bytes per element",
            surface.bytes_per_element() as u64,
            u64::from(plan.bytes_per_element),
        ),
    ];
    for (field, expected, got) in checks {
        if expected != got {
            return Err(Error::DescriptorMismatch {
                field,
                expected: expected.to_string(),
                got: got.to_string(),
            });
        }
    }
    Ok(())
}

impl TextureShareManager for MetalTextureShareManager {
    fn create_shareable_texture(&self, desc: &TextureDescriptor) -> Result<Box<dyn SharedTexture>> {
        Ok(Box::new(self.create_texture(desc)?))
    }

    fn export_texture(&self, texture: &dyn SharedTexture) -> Result<ApiTextureHandle> {
        let tex = common::downcast::<MetalTexture>(texture, Backend::Metal)?;
        if tex.manager != self.id {
            return Err(Error::WrongTexture(
                "the texture belongs to another Metal manager".into(),
            ));
        }
        let handle = ApiTextureHandle {
            manager: self.id,
            id: self.next_handle.fetch_add(1, Ordering::Relaxed),
        };
        self.exports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                handle.id,
                Export {
                    surface: tex.surface.clone(),
                    desc: tex.desc.clone(),
                },
            );
        Ok(handle)
    }

    fn import_texture(
        &self,
        handle: ApiTextureHandle,
        desc: &TextureDescriptor,
    ) -> Result<Box<dyn SharedTexture>> {
        let (surface, exported) = {
            let table = self.table(handle)?;
            let entry = table.get(&handle.id).ok_or(Error::UnknownHandle {
                handle,
                reason: "was never issued or was already released",
            })?;
            (entry.surface.clone(), entry.desc.clone())
        };
        desc.check_matches(&exported)?;
        let plan = plan(desc, &TextureExtent::default())?;
        Ok(Box::new(self.texture_on(surface, desc, &plan, true)?))
    }

    fn release_texture_handle(&self, handle: ApiTextureHandle) -> Result<()> {
        match self.table(handle)?.remove(&handle.id) {
            Some(_) => Ok(()),
            None => Err(Error::UnknownHandle {
                handle,
                reason: "was never issued or was already released",
            }),
        }
    }
}
