//! The README's usage snippet, unchanged, over Vulkan objects the application creates itself
//! (Geyser never destroys them: the application does, after dropping everything Geyser made).
//!
//! Run: `cargo run --example readme_usage`

use ash::vk;
use geyser::{
    common::{TextureDescriptor, TextureFormat, TextureUsage},
    vulkan::VulkanTextureShareManager,
    TextureShareManager,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // --- The application's own Vulkan setup (what an engine already has) ----------------
    // SAFETY: loads the system's Vulkan loader.
    let entry = unsafe { ash::Entry::load()? };
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    // SAFETY: valid create info pointing at a local.
    let instance = unsafe {
        entry.create_instance(
            &vk::InstanceCreateInfo::default().application_info(&app),
            None,
        )?
    };
    // SAFETY: `instance` is live.
    let physical_device = unsafe { instance.enumerate_physical_devices()? }
        .into_iter()
        .next()
        .ok_or("no Vulkan device; run scripts/ensure-vulkan.sh")?;
    // SAFETY: `physical_device` belongs to `instance`.
    let queue_family =
        unsafe { instance.get_physical_device_queue_family_properties(physical_device) }
            .iter()
            .position(|f| {
                f.queue_flags.contains(vk::QueueFlags::TRANSFER)
                    || f.queue_flags.contains(vk::QueueFlags::GRAPHICS)
            })
            .ok_or("no queue family")? as u32;
    let priorities = [1.0];
    let queues = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(queue_family)
        .queue_priorities(&priorities)];
    // Sharing needs VK_KHR_external_memory_fd on the application's device.
    let extensions = [ash::khr::external_memory_fd::NAME.as_ptr()];
    let device_info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queues)
        .enabled_extension_names(&extensions);
    // SAFETY: valid create info; the extension is checked by the driver (error if missing).
    let device = unsafe { instance.create_device(physical_device, &device_info, None)? };

    run(
        instance.clone(),
        device.clone(),
        physical_device,
        queue_family,
    )?;

    // SAFETY: everything Geyser made on this device was dropped inside `run`.
    unsafe {
        device.destroy_device(None);
        instance.destroy_instance(None);
    }
    println!("readme_usage: OK");
    Ok(())
}

fn run(
    instance: ash::Instance,
    device: ash::Device,
    physical_device: vk::PhysicalDevice,
    queue_family: u32,
) -> geyser::Result<()> {
    // --- The README snippet, unchanged -----------------------------------------------------
    let manager = VulkanTextureShareManager::new(instance, device, physical_device, queue_family)?;
    let desc = TextureDescriptor {
        width: 1920,
        height: 1080,
        format: TextureFormat::Rgba8Unorm,
        usage: vec![TextureUsage::RenderAttachment, TextureUsage::TextureBinding],
        label: Some("MyTexture".to_string()),
    };
    let texture = manager.create_shareable_texture(&desc)?; // Box<dyn SharedTexture>
    let handle = manager.export_texture(texture.as_ref())?; // ApiTextureHandle: Copy token
    let imported = manager.import_texture(handle, &desc)?; // same or other context
    manager.release_texture_handle(handle)?; // closes the exported handle
                                             // ----------------------------------------------------------------------------------------
    println!(
        "created {:?}, imported {:?}",
        texture.descriptor().label,
        imported.descriptor().label
    );
    Ok(())
}
