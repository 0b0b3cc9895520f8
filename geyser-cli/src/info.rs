//! `geyser info`: one screen that tells what this machine can share.

use geyser::common::{uuid_string, TextureUsage};
use geyser::vulkan::{enumerate_devices, DeviceCaps, SyncExportCaps};

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

fn print_device(d: &DeviceCaps) {
    let id = &d.identity;
    println!("Device {}: {} ({})", id.index, id.name, id.device_type);
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
                "-".to_string()
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
}

/// Runs `geyser info`.
pub fn run(json: bool) -> Result<(), geyser::Error> {
    let devices = enumerate_devices()?;
    if json {
        let s = serde_json::to_string_pretty(&devices).map_err(|e| geyser::Error::Io(e.into()))?;
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
        print_device(d);
    }
    // How each pair of devices gets texels to each other.
    if devices.len() > 1 {
        println!();
        println!("Between devices (direct: same device and driver UUID; DMA-BUF: one exports, the other imports; otherwise a copy):");
        for a in &devices {
            for b in devices
                .iter()
                .filter(|b| b.identity.index > a.identity.index)
            {
                let path = geyser::vulkan::TransferPath::between(a, b);
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
