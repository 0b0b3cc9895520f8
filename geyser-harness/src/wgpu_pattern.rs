//! Verifiable frames on the wgpu side, compatible with [`crate::pattern::PatternWriter`] and
//! [`crate::pattern::ProbeReader`]: [`WgpuPatternWriter`] renders frame `n` as a render pass
//! clear to [`frame_word`]`(n)` (the solid pattern), [`WgpuProbe`] samples probe texels in a
//! compute pass (`textureLoad`) and checks them against frame `n`'s picture
//! ([`crate::frame_image`]) or its solid pattern, like the Vulkan probe. RGBA8 unorm only: the
//! word's bytes are the texel's bytes.

use geyser::common::TextureFormat;
use geyser::webgpu::wgpu;
use geyser::webgpu::{WgpuTexture, WgpuTextureShareManager};
use geyser::{Error, Result, SharedTexture};
use wgpu::util::DeviceExt;

use crate::frame_image::FrameLayout;
use crate::pattern::{frame_word, ProbeResult};

/// Probe texels per check.
const PROBES: u32 = 8;

const SHADER: &str = r#"
@group(0) @binding(0) var frame_tex: texture_2d<f32>;
@group(0) @binding(1) var<storage, read> probes: array<vec2<u32>, 8>;
@group(0) @binding(2) var<storage, read_write> words: array<u32, 8>;

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_index) i: u32) {
    words[i] = pack4x8unorm(textureLoad(frame_tex, probes[i], 0));
}
"#;

fn require_rgba8(texture: &WgpuTexture, what: &str) -> Result<()> {
    let format = texture.descriptor().format;
    if format != TextureFormat::Rgba8Unorm {
        return Err(Error::unsupported(
            format!("{what} on {format}"),
            "the wgpu test pattern is defined for Rgba8Unorm only",
        ));
    }
    Ok(())
}

/// Renders frame patterns with a render pass clear (the GPU writes; no CPU upload).
#[derive(Debug, Default)]
pub struct WgpuPatternWriter;

impl WgpuPatternWriter {
    /// Records into `encoder` the pass that fills `texture` with frame `frame`'s pattern.
    /// Needs `RenderAttachment` and `Rgba8Unorm`.
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        texture: &wgpu::Texture,
        frame: u64,
    ) -> Result<()> {
        if texture.format() != wgpu::TextureFormat::Rgba8Unorm {
            return Err(Error::unsupported(
                format!("WgpuPatternWriter on {:?}", texture.format()),
                "the wgpu test pattern is defined for Rgba8Unorm only",
            ));
        }
        let [r, g, b, a] = frame_word(frame)
            .to_le_bytes()
            .map(|c| f64::from(c) / 255.0);
        let view = texture.create_view(&Default::default());
        drop(encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("geyser pattern"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color { r, g, b, a }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        }));
        Ok(())
    }
}

/// Samples probe texels of RGBA8 textures in a compute pass and checks them against a frame's
/// pattern. One bind group per texture, made once.
#[derive(Debug)]
pub struct WgpuProbe {
    layout: FrameLayout,
    points: [[u32; 2]; PROBES as usize],
    pipeline: wgpu::ComputePipeline,
    bind_groups: Vec<wgpu::BindGroup>,
    words: wgpu::Buffer,
    readback: wgpu::Buffer,
}

impl WgpuProbe {
    /// A probe for `textures` (all `Rgba8Unorm` with `TextureBinding`, one size), e.g. a
    /// consumer's ring.
    pub fn new(manager: &WgpuTextureShareManager, textures: &[WgpuTexture]) -> Result<Self> {
        for t in textures {
            require_rgba8(t, "WgpuProbe")?;
        }
        let plain: Vec<&wgpu::Texture> = textures.iter().map(|t| t.texture()).collect();
        Self::for_textures(manager, &plain)
    }

    /// A probe for plain wgpu textures of `manager`'s device (`Rgba8Unorm` with
    /// `TEXTURE_BINDING`, one size), e.g. ones an application made without Geyser.
    pub fn for_textures(
        manager: &WgpuTextureShareManager,
        textures: &[&wgpu::Texture],
    ) -> Result<Self> {
        let device = manager.device();
        let first = textures.first().ok_or(Error::InvalidArgument {
            what: "textures",
            reason: "no texture to probe".into(),
        })?;
        if let Some(t) = textures
            .iter()
            .find(|t| t.format() != wgpu::TextureFormat::Rgba8Unorm)
        {
            return Err(Error::unsupported(
                format!("WgpuProbe on {:?}", t.format()),
                "the wgpu test pattern is defined for Rgba8Unorm only",
            ));
        }
        let (w, h) = (first.width(), first.height());
        // Corners, centre and three interior points.
        let points: [[u32; 2]; PROBES as usize] = [
            [0, 0],
            [w - 1, 0],
            [0, h - 1],
            [w - 1, h - 1],
            [w / 2, h / 2],
            [w / 3, h / 5],
            [(2 * w) / 3, (3 * h) / 4],
            [w / 7, (5 * h) / 6],
        ];
        let probe_bytes: Vec<u8> = points
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let probes = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("geyser probe points"),
            contents: &probe_bytes,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let words = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("geyser probe words"),
            size: u64::from(PROBES * 4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("geyser probe readback"),
            size: u64::from(PROBES * 4),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("geyser probe"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("geyser probe"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let bind_groups = textures
            .iter()
            .map(|t| {
                let view = t.create_view(&Default::default());
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("geyser probe"),
                    layout: &layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::TextureView(&view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: probes.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: words.as_entire_binding(),
                        },
                    ],
                })
            })
            .collect();
        Ok(Self {
            layout: FrameLayout::new(w, h),
            points,
            pipeline,
            bind_groups,
            words,
            readback,
        })
    }

    /// Samples texture `index` (of those given to [`Self::new`]) in a compute pass and
    /// submits it. Call between the texture's begin and end access; then [`Self::result`].
    pub fn submit(
        &self,
        manager: &WgpuTextureShareManager,
        index: usize,
    ) -> Result<wgpu::SubmissionIndex> {
        let bind_group = self.bind_groups.get(index).ok_or(Error::InvalidArgument {
            what: "probe texture index",
            reason: format!("{index} is past the {} textures", self.bind_groups.len()),
        })?;
        let mut encoder = manager.device().create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&self.words, 0, &self.readback, 0, u64::from(PROBES * 4));
        Ok(manager.queue().submit([encoder.finish()]))
    }

    /// Waits for a [`Self::submit`] and checks the sampled words against frame `frame`.
    pub fn result(
        &self,
        manager: &WgpuTextureShareManager,
        submission: wgpu::SubmissionIndex,
        frame: u64,
    ) -> Result<ProbeResult> {
        let slice = self.readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        manager.wait_for_submission(submission)?;
        let words: Vec<u32> = {
            let data = slice
                .get_mapped_range()
                .map_err(|e| Error::unsupported("wgpu probe readback", e.to_string()))?;
            data.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        self.readback.unmap();
        let solid = words.iter().filter(|w| **w == frame_word(frame)).count();
        let picture = words
            .iter()
            .zip(&self.points)
            .filter(|(w, [x, y])| {
                let t = self.layout.texel(frame, *x, *y, 4);
                **w == u32::from_le_bytes([t[0], t[1], t[2], t[3]])
            })
            .count();
        Ok(ProbeResult {
            matched: solid.max(picture),
            probes: PROBES as usize,
            first_word: words.first().copied().unwrap_or(0),
        })
    }
}
