//! [`WgpuTexture`]: a Geyser image wrapped as a [`wgpu::Texture`], and the begin/end access
//! brackets that hand it between wgpu's tracking and `VK_QUEUE_FAMILY_EXTERNAL`.
//!
//! wgpu tracks each texture's state itself. Between accesses a shared texture is, for wgpu,
//! in its *rest state* (below), and for everyone else in [`SHARED_LAYOUT`] owned by
//! `VK_QUEUE_FAMILY_EXTERNAL`. `begin_access` records, in a command buffer of its own, the
//! acquire (external -> wgpu's family, shared layout) and the move to the rest state's layout;
//! `end_access` asks wgpu to bring the texture back to the rest state (`transition_resources`,
//! recorded after all of the application's work) and then records the move to the shared
//! layout and the release. So wgpu's idea of the layout is right at every point.

use ash::vk;
use wgpu_hal::api::Vulkan;

use super::conv;
use super::manager::WgpuTextureShareManager;
use crate::common::{
    Backend, TextureDescriptor, TextureDimension, TextureExtent, TextureFormat, TextureUsage,
};
use crate::vulkan::{TimelinePoint, VulkanTexture, SHARED_LAYOUT};
use crate::{Error, Result, SharedTexture};

/// A shareable texture on a wgpu device: the [`wgpu::Texture`] and the Vulkan image under it.
/// Dropping it (and every clone of the `wgpu::Texture`) frees the image and memory once wgpu's
/// GPU work with them is done.
#[derive(Debug)]
pub struct WgpuTexture {
    texture: wgpu::Texture,
    vk: VulkanTexture,
    rest: RestState,
}

/// The wgpu state a shared texture is in between accesses, and the Vulkan layout wgpu-hal
/// derives from it.
#[derive(Clone, Copy, Debug)]
struct RestState {
    uses: wgpu::TextureUses,
    layout: vk::ImageLayout,
}

impl WgpuTexture {
    /// The wgpu texture. Use it between [`WgpuTextureShareManager::begin_access`] and
    /// [`WgpuTextureShareManager::end_access`].
    pub fn texture(&self) -> &wgpu::Texture {
        &self.texture
    }

    /// The Vulkan texture under it (for export and for Vulkan-side inspection).
    pub fn vulkan(&self) -> &VulkanTexture {
        &self.vk
    }
}

impl SharedTexture for WgpuTexture {
    fn descriptor(&self) -> &TextureDescriptor {
        self.vk.descriptor()
    }

    fn extent(&self) -> &TextureExtent {
        self.vk.extent()
    }

    fn backend(&self) -> Backend {
        Backend::WebGpu
    }

    fn is_imported(&self) -> bool {
        self.vk.is_imported()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Colour textures rest as storage read/write, which wgpu-hal keeps in `GENERAL` (the shared
/// layout itself, valid for every usage). Depth/stencil has no wgpu state in `GENERAL`, so it
/// rests in a layout its usages allow (the read-only depth layout needs the attachment usage).
fn rest_state(desc: &TextureDescriptor) -> Result<RestState> {
    let has = |u| desc.usage.contains(&u);
    let (uses, layout) = if !desc.format.is_depth_stencil() {
        (
            wgpu::TextureUses::STORAGE_READ_WRITE,
            vk::ImageLayout::GENERAL,
        )
    } else if has(TextureUsage::RenderAttachment) {
        (
            wgpu::TextureUses::DEPTH_STENCIL_READ,
            vk::ImageLayout::DEPTH_STENCIL_READ_ONLY_OPTIMAL,
        )
    } else if has(TextureUsage::CopySrc) {
        (
            wgpu::TextureUses::COPY_SRC,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
        )
    } else if has(TextureUsage::CopyDst) {
        (
            wgpu::TextureUses::COPY_DST,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        )
    } else if has(TextureUsage::TextureBinding) {
        (
            wgpu::TextureUses::RESOURCE,
            vk::ImageLayout::DEPTH_STENCIL_READ_ONLY_OPTIMAL,
        )
    } else {
        return Err(Error::InvalidDescriptor {
            label: desc.label.clone(),
            reason: "a depth/stencil texture needs at least one usage".into(),
        });
    };
    Ok(RestState { uses, layout })
}

/// Checks that wgpu can represent `desc` on this device: a wgpu format exists and maps to the
/// same `VkFormat`, the device has the features the format needs, and the format allows the
/// usages and sample count. Runs before any Vulkan object is made.
pub(super) fn check_representable(
    manager: &WgpuTextureShareManager,
    desc: &TextureDescriptor,
    extent: &TextureExtent,
) -> Result<()> {
    desc.validate_with(extent)?;
    let unsupported = |reason: String| {
        Err(Error::unsupported(
            format!("{} with usages {:?} in wgpu", desc.format, desc.usage),
            reason,
        ))
    };
    let Some(format) = desc.format.to_wgpu() else {
        return unsupported("wgpu has no equivalent format".into());
    };
    if desc.format == TextureFormat::Depth24UnormStencil8 && !d24s8_native(manager) {
        return unsupported(format!(
            "wgpu maps Depth24PlusStencil8 to D32_SFLOAT_S8_UINT on {}, not to this texture's D24_UNORM_S8_UINT",
            manager.identity().name
        ));
    }
    let device = manager.device();
    if let Some(family) = desc.format.compression() {
        let feature = conv::compression_feature(family);
        if !device.features().contains(feature) {
            let offered = manager.adapter().features().contains(feature);
            return unsupported(format!(
                "the wgpu device lacks {feature:?} (its adapter {} it)",
                if offered { "offers" } else { "does not offer" }
            ));
        }
    }
    let (bw, bh) = desc.format.block_size();
    if !desc.width.is_multiple_of(bw) || !desc.height.is_multiple_of(bh) {
        return unsupported(format!(
            "WebGPU sizes compressed textures in whole {bw}x{bh} blocks; {}x{} is not",
            desc.width, desc.height
        ));
    }
    let missing = format.required_features() - device.features();
    if !missing.is_empty() {
        return unsupported(format!("the wgpu device lacks {missing:?}"));
    }
    let features = if device
        .features()
        .contains(wgpu::Features::TEXTURE_ADAPTER_SPECIFIC_FORMAT_FEATURES)
    {
        manager.adapter().get_texture_format_features(format)
    } else {
        format.guaranteed_format_features(device.features())
    };
    let wanted = conv::usages(desc);
    if !features.allowed_usages.contains(wanted) {
        return unsupported(format!(
            "wgpu allows only {:?} for {format:?} on this device",
            features.allowed_usages
        ));
    }
    if extent.sample_count > 1 {
        // WebGPU's rules for multisampled textures (wgpu would refuse to create one otherwise).
        if !features.flags.sample_count_supported(extent.sample_count) {
            return unsupported(format!("{} samples are not supported", extent.sample_count));
        }
        if !wanted.contains(wgpu::TextureUsages::RENDER_ATTACHMENT)
            || wanted.intersects(
                wgpu::TextureUsages::STORAGE_BINDING
                    | wgpu::TextureUsages::COPY_SRC
                    | wgpu::TextureUsages::COPY_DST,
            )
            || extent.mip_level_count != 1
            || extent.depth_or_array_layers != 1
            || extent.dimension != TextureDimension::D2
        {
            return unsupported(
                "WebGPU multisampled textures are single-layer, single-mip 2D render attachments without copy or storage usages".into(),
            );
        }
    }
    let limits = device.limits();
    let max = match extent.dimension {
        TextureDimension::D3 => limits.max_texture_dimension_3d,
        _ => limits.max_texture_dimension_2d,
    };
    if desc.width > max || desc.height > max {
        return unsupported(format!(
            "the wgpu device allows at most {max} texels per side"
        ));
    }
    Ok(())
}

/// Whether wgpu-hal maps `Depth24PlusStencil8` to `D24_UNORM_S8_UINT` on this device (it
/// does when the format supports optimal-tiling depth/stencil attachments).
fn d24s8_native(manager: &WgpuTextureShareManager) -> bool {
    let dev = manager.shared_device();
    // SAFETY: `physical` belongs to `instance`; a format query has no other requirement.
    let props = unsafe {
        dev.instance
            .get_physical_device_format_properties(dev.physical, vk::Format::D24_UNORM_S8_UINT)
    };
    props
        .optimal_tiling_features
        .contains(vk::FormatFeatureFlags::DEPTH_STENCIL_ATTACHMENT)
}

/// Wraps a Geyser image (created on or imported into wgpu's device) as a `wgpu::Texture`.
pub(super) fn wrap(manager: &WgpuTextureShareManager, vk: VulkanTexture) -> Result<WgpuTexture> {
    let desc = vk.descriptor().clone();
    let extent = *vk.extent();
    let rest = rest_state(&desc)?;
    let format = desc.format.to_wgpu().ok_or_else(|| {
        Error::unsupported(desc.format.to_string(), "wgpu has no equivalent format")
    })?;
    let usage = conv::usages(&desc);
    let (size, dimension) = conv::size(&desc, &extent);
    let hal_desc = wgpu_hal::TextureDescriptor {
        label: desc.label.as_deref(),
        size,
        mip_level_count: extent.mip_level_count,
        sample_count: extent.sample_count,
        dimension,
        format,
        usage: conv::hal_uses(usage, desc.format),
        memory_flags: wgpu_hal::MemoryFlags::empty(),
        view_formats: Vec::new(),
    };
    let keep_alive = vk.clone();
    let hal_texture = {
        // SAFETY: used only to wrap an image of this device; nothing is destroyed through it.
        let hal = unsafe { manager.device().as_hal::<Vulkan>() }.ok_or_else(|| {
            Error::unsupported(
                "wgpu interop",
                "the wgpu device does not use the Vulkan backend",
            )
        })?;
        // SAFETY: the image was created on this device from `desc` and `extent` (the same
        // parameters wgpu-hal would derive; no MUTABLE_FORMAT, so no view formats). The drop
        // callback owns a clone of the texture, which keeps the image and its memory alive
        // until wgpu-hal drops the texture, after wgpu's last GPU use of it.
        unsafe {
            hal.texture_from_raw(
                vk.image(),
                &hal_desc,
                Some(Box::new(move || drop(keep_alive))),
                wgpu_hal::vulkan::TextureMemory::External,
            )
        }
    };
    let wgpu_desc = wgpu::TextureDescriptor {
        label: desc.label.as_deref(),
        size,
        mip_level_count: extent.mip_level_count,
        sample_count: extent.sample_count,
        dimension,
        format,
        usage,
        view_formats: &[],
    };
    let texture = manager.scoped(
        // SAFETY: `hal_texture` was made on this device from an image matching `wgpu_desc`;
        // wgpu's tracker starts in the rest state, which is the state `begin_access` leaves
        // the image in (and a never-written image is discarded into it).
        || unsafe {
            manager
                .device()
                .create_texture_from_hal::<Vulkan>(hal_texture, &wgpu_desc, rest.uses)
        },
        |e| Error::unsupported(format!("{} as a wgpu texture", desc.format), e),
    )?;
    Ok(WgpuTexture { texture, vk, rest })
}

fn barrier(
    texture: &VulkanTexture,
    (old, new): (vk::ImageLayout, vk::ImageLayout),
    (src_family, dst_family): (u32, u32),
) -> vk::ImageMemoryBarrier<'static> {
    vk::ImageMemoryBarrier::default()
        .image(texture.image())
        .subresource_range(texture.subresource_range())
        .old_layout(old)
        .new_layout(new)
        .src_queue_family_index(src_family)
        .dst_queue_family_index(dst_family)
        .src_access_mask(vk::AccessFlags::MEMORY_READ | vk::AccessFlags::MEMORY_WRITE)
        .dst_access_mask(vk::AccessFlags::MEMORY_READ | vk::AccessFlags::MEMORY_WRITE)
}

/// Records `barriers` into a wgpu encoder, one `vkCmdPipelineBarrier` each (so they apply in
/// order), all commands before and after.
fn record_barriers(
    manager: &WgpuTextureShareManager,
    encoder: &mut wgpu::CommandEncoder,
    barriers: &[vk::ImageMemoryBarrier<'static>],
) -> Result<()> {
    let device = &manager.shared_device().device;
    // SAFETY: the callback records only pipeline barriers on images of this device into
    // wgpu's open command buffer; it does not end, submit or free it.
    let recorded = unsafe {
        encoder.as_hal_mut::<Vulkan, _, _>(|hal| {
            hal.map(|hal| {
                let cb = hal.raw_handle();
                for b in barriers {
                    // SAFETY: `cb` is in the recording state (wgpu opened it for us) and the
                    // barrier names an image of this device with its full subresource range.
                    device.cmd_pipeline_barrier(
                        cb,
                        vk::PipelineStageFlags::ALL_COMMANDS,
                        vk::PipelineStageFlags::ALL_COMMANDS,
                        vk::DependencyFlags::empty(),
                        &[],
                        &[],
                        std::slice::from_ref(b),
                    );
                }
            })
        })
    };
    recorded.ok_or_else(|| {
        Error::unsupported(
            "wgpu interop",
            "the wgpu command encoder is not a Vulkan one",
        )
    })
}

pub(super) fn begin_access(
    manager: &WgpuTextureShareManager,
    texture: &WgpuTexture,
    waits: &[TimelinePoint],
) -> Result<()> {
    let family = manager.shared_device().queue_family;
    let vk = &texture.vk;
    let barriers: Vec<_> = if vk.is_initialized() {
        let mut b = vec![barrier(
            vk,
            (SHARED_LAYOUT, SHARED_LAYOUT),
            (vk::QUEUE_FAMILY_EXTERNAL, family),
        )];
        if texture.rest.layout != SHARED_LAYOUT {
            b.push(barrier(
                vk,
                (SHARED_LAYOUT, texture.rest.layout),
                (vk::QUEUE_FAMILY_IGNORED, vk::QUEUE_FAMILY_IGNORED),
            ));
        }
        b
    } else {
        // Never written anywhere: discard, no ownership transfer.
        vec![barrier(
            vk,
            (vk::ImageLayout::UNDEFINED, texture.rest.layout),
            (vk::QUEUE_FAMILY_IGNORED, vk::QUEUE_FAMILY_IGNORED),
        )]
    };
    let mut encoder = manager
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("geyser begin_access"),
        });
    record_barriers(manager, &mut encoder, &barriers)?;
    if !waits.is_empty() {
        // SAFETY: only stages waits on wgpu's next submission; the queue is not destroyed.
        let queue = unsafe { manager.queue().as_hal::<Vulkan>() }.ok_or_else(|| {
            Error::unsupported("wgpu interop", "the wgpu queue is not a Vulkan one")
        })?;
        for w in waits {
            queue.add_wait_semaphore(
                w.semaphore.raw(),
                Some(w.value),
                vk::PipelineStageFlags::ALL_COMMANDS,
            );
        }
    }
    manager.scoped(
        || manager.queue().submit([encoder.finish()]),
        |e| Error::unsupported("wgpu begin_access submission", e),
    )?;
    Ok(())
}

pub(super) fn end_access(
    manager: &WgpuTextureShareManager,
    texture: &WgpuTexture,
    signal: Option<&TimelinePoint>,
) -> Result<wgpu::SubmissionIndex> {
    let family = manager.shared_device().queue_family;
    let vk = &texture.vk;
    // wgpu forbids raw commands in an encoder that also uses its API: the transition back to
    // the rest state and the release go in two command buffers of one submission (barriers
    // order all commands earlier and later in submission order on the queue).
    let mut transition = manager
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("geyser end_access transition"),
        });
    transition.transition_resources(
        std::iter::empty(),
        std::iter::once(wgpu::TextureTransition {
            texture: &texture.texture,
            selector: None,
            state: texture.rest.uses,
        }),
    );
    let mut encoder = manager
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("geyser end_access release"),
        });
    let mut barriers = Vec::with_capacity(2);
    if texture.rest.layout != SHARED_LAYOUT {
        barriers.push(barrier(
            vk,
            (texture.rest.layout, SHARED_LAYOUT),
            (vk::QUEUE_FAMILY_IGNORED, vk::QUEUE_FAMILY_IGNORED),
        ));
    }
    barriers.push(barrier(
        vk,
        (SHARED_LAYOUT, SHARED_LAYOUT),
        (family, vk::QUEUE_FAMILY_EXTERNAL),
    ));
    record_barriers(manager, &mut encoder, &barriers)?;
    if let Some(point) = signal {
        // SAFETY: only stages a signal on wgpu's next submission, which is ours below.
        let queue = unsafe { manager.queue().as_hal::<Vulkan>() }.ok_or_else(|| {
            Error::unsupported("wgpu interop", "the wgpu queue is not a Vulkan one")
        })?;
        queue.add_signal_semaphore(point.semaphore.raw(), Some(point.value));
    }
    let index = manager.scoped(
        || {
            manager
                .queue()
                .submit([transition.finish(), encoder.finish()])
        },
        |e| Error::unsupported("wgpu end_access submission", e),
    )?;
    vk.mark_initialized();
    Ok(index)
}
