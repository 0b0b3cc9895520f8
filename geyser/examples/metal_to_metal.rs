//! Shares an IOSurface-backed Metal texture between two `MTLTexture` objects through the
//! `TextureShareManager` trait, then hands the surface out as a mach port and opens it again,
//! as another process would. macOS/iOS only (feature `metal`); elsewhere it says so and exits
//! with 0. Compiles in CI for Apple targets; never run on Apple hardware.

#[cfg(target_vendor = "apple")]
fn main() -> geyser::Result<()> {
    use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
    use geyser::metal::{MetalSharedEvent, MetalTextureShareManager};
    use geyser::TextureShareManager;

    let manager = MetalTextureShareManager::create_default()?;
    let desc = TextureDescriptor {
        width: 1920,
        height: 1080,
        format: TextureFormat::Bgra8Unorm,
        usage: vec![TextureUsage::RenderAttachment, TextureUsage::TextureBinding],
        label: Some("metal_to_metal".to_string()),
    };
    let texture = manager.create_shareable_texture(&desc)?;
    let handle = manager.export_texture(texture.as_ref())?;
    let imported = manager.import_texture(handle, &desc)?;
    println!("in-process: {texture:?} -> {imported:?}");

    let port = manager.export_mach_port(handle)?;
    let reopened = manager.import_mach_port(port, &desc)?;
    println!("through a mach port: {reopened:?}");
    manager.release_texture_handle(handle)?;

    let event = MetalSharedEvent::new(&manager)?;
    event.signal(1)?;
    event.wait(1, std::time::Duration::from_secs(1))?;
    println!("MTLSharedEvent at {}", event.value());
    Ok(())
}

#[cfg(not(target_vendor = "apple"))]
fn main() {
    println!("metal_to_metal needs macOS or iOS (Metal and IOSurface); nothing to do here");
}
