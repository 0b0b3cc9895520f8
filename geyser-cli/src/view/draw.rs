//! Drawing a frame into the window, scaled and letterboxed, and for `--screenshot` into an
//! offscreen copy that is read back and saved.

use geyser::webgpu::{wgpu, WgpuTextureShareManager};
use geyser::Error;
use geyser_harness::image_out::{write_png, Rgba8Image};

use super::{Drawer, Screen, Stats, ViewArgs};

/// Draws `frame` into the window (and, for the screenshot frame, into an offscreen copy that is
/// saved); returns whether the viewer has shown all the frames it was asked for.
pub(super) fn show(
    frame: geyser::webgpu::WgpuFrame<'_>,
    screen: &Screen,
    drawer: &Drawer,
    manager: &WgpuTextureShareManager,
    stats: &mut Stats,
    args: &ViewArgs,
) -> geyser::Result<bool> {
    let target = match screen.surface.get_current_texture() {
        wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
        _ => {
            // Not drawable now (occluded, outdated): release the frame unread and configure
            // the surface again.
            drop(frame);
            screen.surface.configure(manager.device(), &screen.config);
            return Ok(false);
        }
    };
    let number = frame.frame().number();
    let latency = frame.frame().latency();
    let slot = frame.frame().slot();
    let device = manager.device();
    let done = stats.shown + 1 == args.frames;
    let shot = args.screenshot.as_ref().filter(|_| done);
    let config = &screen.config;
    let offscreen = shot.map(|_| Offscreen::new(device, config));
    frame.begin()?;
    let mut encoder = device.create_command_encoder(&Default::default());
    let view = target.texture.create_view(&Default::default());
    let viewport = letterbox(drawer.frame_size, (config.width, config.height));
    draw(&mut encoder, &view, drawer, slot, viewport);
    if let Some(o) = &offscreen {
        let view = o.texture.create_view(&Default::default());
        draw(&mut encoder, &view, drawer, slot, viewport);
        o.copy_out(&mut encoder);
    }
    manager.queue().submit([encoder.finish()]);
    frame.end()?;
    manager.queue().present(target);
    stats.record(latency);
    if let (Some(path), Some(o)) = (shot, offscreen) {
        let image = o.read(manager)?;
        write_png(path, &image)?;
        println!("screenshot of frame {number}: {}", path.display());
    }
    if stats.shown == 1 || stats.shown.is_multiple_of(30) {
        println!("shown {} frames (frame {number})", stats.shown);
    }
    Ok(done)
}

/// The largest rectangle of the frame's aspect ratio centred in the window: x, y, w, h.
fn letterbox(frame: (u32, u32), window: (u32, u32)) -> [f32; 4] {
    let (fw, fh) = (frame.0 as f32, frame.1 as f32);
    let (ww, wh) = (window.0 as f32, window.1 as f32);
    let scale = (ww / fw).min(wh / fh);
    let (w, h) = (fw * scale, fh * scale);
    [(ww - w) / 2.0, (wh - h) / 2.0, w, h]
}

fn draw(
    encoder: &mut wgpu::CommandEncoder,
    view: &wgpu::TextureView,
    drawer: &Drawer,
    slot: usize,
    [x, y, w, h]: [f32; 4],
) {
    let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some("geyser view"),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                store: wgpu::StoreOp::Store,
            },
        })],
        ..Default::default()
    });
    pass.set_pipeline(&drawer.pipeline);
    pass.set_bind_group(0, &drawer.bind_groups[slot], &[]);
    pass.set_viewport(x, y, w, h, 0.0, 1.0);
    pass.draw(0..3, 0..1);
}

/// A copy of what the window shows, for `--screenshot`: the same draw into a texture of the
/// surface's format and size, read back.
struct Offscreen {
    texture: wgpu::Texture,
    buffer: wgpu::Buffer,
    padded_row: u32,
}

impl Offscreen {
    fn new(device: &wgpu::Device, config: &wgpu::SurfaceConfiguration) -> Self {
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("geyser view screenshot"),
            size: wgpu::Extent3d {
                width: config.width,
                height: config.height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: config.format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let padded_row = (config.width * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
            * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("geyser view screenshot"),
            size: u64::from(padded_row * config.height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        Self {
            texture,
            buffer,
            padded_row,
        }
    }

    fn copy_out(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.copy_texture_to_buffer(
            self.texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &self.buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(self.padded_row),
                    rows_per_image: None,
                },
            },
            self.texture.size(),
        );
    }

    fn read(&self, manager: &WgpuTextureShareManager) -> geyser::Result<Rgba8Image> {
        let slice = self.buffer.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        manager
            .device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::unsupported("reading the screenshot back", e.to_string()))?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| Error::unsupported("reading the screenshot back", e.to_string()))?;
        let (w, h) = (self.texture.width(), self.texture.height());
        let bgra = matches!(
            self.texture.format(),
            wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Bgra8UnormSrgb
        );
        let mut pixels = Vec::with_capacity((w * h * 4) as usize);
        for row in 0..h as usize {
            let start = row * self.padded_row as usize;
            for p in data[start..start + (w * 4) as usize].chunks_exact(4) {
                let rgba = if bgra {
                    [p[2], p[1], p[0], p[3]]
                } else {
                    [p[0], p[1], p[2], p[3]]
                };
                pixels.extend_from_slice(&rgba);
            }
        }
        Ok(Rgba8Image {
            width: w,
            height: h,
            pixels,
        })
    }
}
