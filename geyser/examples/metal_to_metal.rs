//! Shares an IOSurface-backed Metal texture between two `MTLTexture` objects through the
//! `TextureShareManager` trait, then hands the surface out as a mach port and opens it again,
//! as another process would, and orders two command queues with an `MTLSharedEvent` timeline
//! (`encode_wait`/`encode_signal`). macOS/iOS only (feature `metal`); elsewhere it says so and exits
//! with 0. Compiles in CI for Apple targets; never run on Apple hardware.

#[cfg(target_vendor = "apple")]
fn main() -> geyser::Result<()> {
    use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
    use geyser::metal::{MetalSharedEvent, MetalTextureShareManager};
    use geyser::TextureShareManager;
    use objc2_metal::{MTLCommandBuffer, MTLCommandQueue, MTLDevice};
    use std::time::Duration;

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

    // The sync model within a process: a producer queue signals 2 when "frame 2" is done, a
    // consumer queue's command buffer waits for 2 before it runs and signals 3 after; the host
    // only waits for the end. (Empty command buffers: the point is the ordering.)
    let event = MetalSharedEvent::new(&manager)?;
    event.signal(1)?;
    event.wait(1, Duration::from_secs(1))?;
    let nil = |what: &str| geyser::Error::unsupported(what, "Metal returned nil");
    let device = manager.device();
    let producer = device
        .newCommandQueue()
        .ok_or_else(|| nil("newCommandQueue"))?;
    let consumer = device
        .newCommandQueue()
        .ok_or_else(|| nil("newCommandQueue"))?;
    let consume = consumer
        .commandBuffer()
        .ok_or_else(|| nil("commandBuffer"))?;
    event.encode_wait(&consume, 2);
    event.encode_signal(&consume, 3);
    consume.commit(); // waits on the GPU, not here
    let produce = producer
        .commandBuffer()
        .ok_or_else(|| nil("commandBuffer"))?;
    event.encode_signal(&produce, 2);
    produce.commit();
    event.wait(3, Duration::from_secs(5))?;
    println!(
        "MTLSharedEvent timeline: host 1, producer queue 2, consumer queue 3; now at {}",
        event.value()
    );
    Ok(())
}

#[cfg(not(target_vendor = "apple"))]
fn main() {
    println!("metal_to_metal needs macOS or iOS (Metal and IOSurface); nothing to do here");
}
