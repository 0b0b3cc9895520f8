//! `geyser info`: one screen that tells what this machine can share.

use geyser::common::{uuid_string, Compression, TextureUsage};
use geyser::vulkan::{enumerate_devices, DeviceCaps, DeviceSelector, SyncExportCaps};

fn usage_short(u: TextureUsage) -> &'static str {
    match u {
        TextureUsage::CopySrc => "src",
        TextureUsage::CopyDst => "dst",
        TextureUsage::TextureBinding => "sampled",
        TextureUsage::StorageBinding => "storage",
        TextureUsage::RenderAttachment => "attach",
    }
}

fn sync_str(c: &SyncExportCaps) -> String {
    let mut v = Vec::new();
    if c.opaque_fd {
        v.push("OPAQUE_FD");
    }
    if c.sync_fd {
        v.push("SYNC_FD");
    }
    if v.is_empty() {
        "none (host-synchronized fallback)".into()
    } else {
        v.join(", ")
    }
}

fn print_device(d: &DeviceCaps, selected: bool) {
    let id = &d.identity;
    let mark = if selected {
        "   <- selected (GEYSER_DEVICE)"
    } else {
        ""
    };
    println!(
        "Device {}: {} ({}){mark}",
        id.index, id.name, id.device_type
    );
    println!("  driver        {} — {}", id.driver_name, id.driver_info);
    println!(
        "  Vulkan        {}   vendor {:#06x} device {:#06x}",
        id.api_version, id.vendor_id, id.device_id
    );
    println!("  device UUID   {}", uuid_string(&id.device_uuid));
    println!("  driver UUID   {}", uuid_string(&id.driver_uuid));
    if let Some(pci) = &id.pci_bus {
        println!("  PCI           {pci}");
    }
    let mem: Vec<String> = d
        .memory_handle_types
        .iter()
        .map(|t| format!("{t:?}"))
        .collect();
    println!(
        "  memory export {}",
        if mem.is_empty() {
            "none".into()
        } else {
            mem.join(", ")
        }
    );
    println!("  memory FDs    {}", d.memory_exposure.describe());
    println!(
        "  DRM modifiers {}   host memory import {}",
        if d.drm_format_modifiers { "yes" } else { "no" },
        if d.external_memory_host { "yes" } else { "no" }
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!(
        "  DMA-BUF       import {}   export {}   explicit modifiers {}",
        yes(d.dma_buf.import),
        yes(d.dma_buf.export),
        yes(d.dma_buf.modifiers)
    );
    println!(
        "  binary semaphore export   {}",
        sync_str(&d.binary_semaphore_export)
    );
    println!(
        "  timeline semaphores       {}; export {}",
        if d.timeline_semaphores { "yes" } else { "no" },
        sync_str(&d.timeline_semaphore_export)
    );
    println!("  fence export              {}", sync_str(&d.fence_export));
    println!("  max 2D image side         {}", d.max_image_dimension_2d);
    println!();
    let dma = d.formats.iter().any(|f| f.dma_buf.is_some());
    println!(
        "  {:<22} {:<36} {}",
        "format",
        "opaque FD: exportable usages",
        if dma { "DMA-BUF import (LINEAR)" } else { "" }
    );
    for f in &d.formats {
        let show = |s: &geyser::vulkan::FormatShareSupport| {
            if s.usages.is_empty() {
                match f.format.compression() {
                    Some(c) if !has_family(d, c) => format!("- (no {})", c.vulkan_feature()),
                    _ => "-".to_string(),
                }
            } else {
                let mut out = s
                    .usages
                    .iter()
                    .map(|u| usage_short(*u))
                    .collect::<Vec<_>>()
                    .join(" ");
                if s.dedicated_only {
                    out.push_str(" (dedicated)");
                }
                out
            }
        };
        let dma_col = f.dma_buf.as_ref().map(show).unwrap_or_default();
        println!(
            "  {:<22} {:<36} {}",
            f.format.to_string(),
            show(&f.opaque_fd),
            dma_col
        );
    }
    let shareable = d
        .formats
        .iter()
        .filter(|f| !f.opaque_fd.usages.is_empty())
        .count();
    println!(
        "  {shareable} of {} formats shareable through opaque FDs",
        d.formats.len()
    );
    let families = [Compression::Bc, Compression::Etc2, Compression::AstcLdr].map(|c| {
        let of = || {
            d.formats
                .iter()
                .filter(move |f| f.format.compression() == Some(c))
        };
        let ok = of().filter(|f| !f.opaque_fd.usages.is_empty()).count();
        format!("{c:?} {ok}/{}", of().count())
    });
    println!("  compressed formats exportable: {}", families.join(", "));
}

/// Whether the device has a compression family: some format of it is shareable, or the reason
/// none is does not name the family's feature.
fn has_family(d: &DeviceCaps, c: Compression) -> bool {
    d.formats
        .iter()
        .filter(|f| f.format.compression() == Some(c))
        .any(|f| {
            !f.opaque_fd.usages.is_empty()
                || !f
                    .opaque_fd
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.contains(c.vulkan_feature()))
        })
}

/// The device `GEYSER_DEVICE` selects, when it is set: its index, or [`geyser::Error::NoDevice`]
/// (listing the devices present) when it matches none of `devices`.
fn selected(devices: &[DeviceCaps]) -> Result<Option<usize>, geyser::Error> {
    if std::env::var_os("GEYSER_DEVICE").is_none() {
        return Ok(None);
    }
    let ids: Vec<_> = devices.iter().map(|d| d.identity.clone()).collect();
    let chosen = DeviceSelector::from_env().select(&ids)?;
    Ok(Some(chosen.index))
}

/// The CUDA devices (feature `cuda`), each with the Vulkan device it is.
#[cfg(target_os = "linux")]
fn print_cuda(devices: &[DeviceCaps]) {
    println!();
    let listed = geyser::cuda::init().and_then(|v| Ok((v, geyser::cuda::devices()?)));
    match listed {
        Ok((version, cuda)) => {
            println!(
                "CUDA: driver {}.{}, {} device(s)",
                version / 1000,
                version % 1000 / 10,
                cuda.len()
            );
            for c in &cuda {
                let vulkan = devices
                    .iter()
                    .find(|d| d.identity.device_uuid == c.uuid)
                    .map(|d| format!("Vulkan device {}", d.identity.index))
                    .unwrap_or_else(|| "no Vulkan device".into());
                println!("  cuda:{} {} ({vulkan})", c.ordinal, c.name);
            }
        }
        Err(e) => println!("CUDA: {e}"),
    }
}

/// Runs `geyser info`. With `GEYSER_DEVICE` set, marks the device it selects (JSON: each
/// device's `selected` field), and fails with [`geyser::Error::NoDevice`] when it selects none.
pub fn run(json: bool) -> Result<(), geyser::Error> {
    let devices = enumerate_devices()?;
    let selected = selected(&devices)?;
    if json {
        let json_err = |e: serde_json::Error| geyser::Error::Io(e.into());
        let mut out = Vec::with_capacity(devices.len());
        for d in &devices {
            let mut v = serde_json::to_value(d).map_err(json_err)?;
            if let Some(obj) = v.as_object_mut() {
                let is = selected == Some(d.identity.index);
                obj.insert("selected".into(), serde_json::Value::Bool(is));
            }
            out.push(v);
        }
        let s = serde_json::to_string_pretty(&out).map_err(json_err)?;
        println!("{s}");
        return Ok(());
    }
    if devices.is_empty() {
        println!("No Vulkan device found. On Debian/Ubuntu: sudo bash scripts/ensure-vulkan.sh");
        return Ok(());
    }
    for (i, d) in devices.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_device(d, selected == Some(d.identity.index));
    }
    #[cfg(target_os = "linux")]
    print_cuda(&devices);
    // How each pair of devices gets texels to each other.
    if devices.len() > 1 {
        println!();
        println!(
            "Between devices (direct: same device and driver UUID; peer: CUDA peer copies; DMA-BUF: one exports, the other imports; otherwise through host memory):"
        );
        for a in &devices {
            for b in devices
                .iter()
                .filter(|b| b.identity.index > a.identity.index)
            {
                #[cfg(target_os = "linux")]
                let path = geyser::cuda::transfer_path_between(a, b);
                #[cfg(not(target_os = "linux"))]
                let path = geyser::vulkan::TransferPath::between(a, b);
                #[cfg(target_os = "linux")]
                let back = geyser::cuda::transfer_path_between(b, a);
                #[cfg(not(target_os = "linux"))]
                let back = geyser::vulkan::TransferPath::between(b, a);
                let note = if back != path {
                    format!(
                        " (from {} to {}: {back})",
                        b.identity.index, a.identity.index
                    )
                } else {
                    String::new()
                };
                println!(
                    "  {} -> {}: {path}{note}",
                    a.identity.index, b.identity.index
                );
            }
        }
    }
    #[cfg(target_os = "linux")]
    print_gl(&devices);
    Ok(())
}

/// The headless GL context Geyser would open, what it shares, and the Vulkan device it matches.
#[cfg(target_os = "linux")]
fn print_gl(devices: &[DeviceCaps]) {
    println!();
    match geyser::gl::GlContext::headless() {
        Ok(gl) => {
            let c = gl.caps();
            let yes = |b: bool| if b { "yes" } else { "no" };
            println!(
                "OpenGL (headless EGL, {} platform): {} — {}",
                c.platform, c.renderer, c.version
            );
            println!(
                "  memory objects (opaque FD) {}   semaphores {}{}",
                yes(c.memory_object_fd),
                yes(c.semaphore_fd),
                if c.timeline_semaphore {
                    " (+timelines)"
                } else {
                    " (host-synchronized handoff)"
                }
            );
            println!(
                "  DMA-BUF import {} (modifiers {})   export {}",
                yes(c.dma_buf_import),
                yes(c.dma_buf_import_modifiers),
                yes(c.dma_buf_export)
            );
            let matched = devices.iter().find(|d| {
                c.device_uuids.contains(&d.identity.device_uuid)
                    && c.driver_uuid == Some(d.identity.driver_uuid)
            });
            match matched {
                Some(d) => println!(
                    "  same device and driver as Vulkan device {} ({}): shares its opaque FDs",
                    d.identity.index, d.identity.name
                ),
                None => println!(
                    "  no Vulkan device has GL's device and driver UUIDs: shares DMA-BUFs only"
                ),
            }
        }
        Err(e) => println!("OpenGL: no headless EGL context ({e})"),
    }
}
