//! `geyser view NAME`: a window (winit) that shows a producer's stream live through
//! `geyser::webgpu` (frames arrive as `wgpu::Texture`s and are drawn scaled to the window,
//! letterboxed). The title shows fps, handoff latency, sync mode, path and dropped frames.
//! When the producer goes, the window waits and reconnects to the next producer of that name.
//! `--frames N --screenshot PATH` stops after N frames and saves the last one as drawn.
//! `view/draw.rs`: drawing a frame, letterboxed, and the screenshot's offscreen copy.

mod draw;

use std::sync::Arc;
use std::time::{Duration, Instant};

use geyser::common::TextureDimension;
use geyser::ipc::{ConsumerOptions, SyncMode};
use geyser::webgpu::{wgpu, WgpuConsumer, WgpuTextureShareManager};
use geyser::{Error, SharedTexture};
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::window::{Window, WindowId};

use draw::show;

pub use crate::view_args::ViewArgs;

const SHADER: &str = r#"
struct Out { @builtin(position) pos: vec4<f32>, @location(0) uv: vec2<f32> };

@vertex
fn vs(@builtin(vertex_index) i: u32) -> Out {
    let uv = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    var o: Out;
    o.pos = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    o.uv = uv;
    return o;
}

@group(0) @binding(0) var frame: texture_2d<f32>;
@group(0) @binding(1) var smp: sampler;

@fragment
fn fs(in: Out) -> @location(0) vec4<f32> {
    return textureSampleLevel(frame, smp, in.uv, 0.0);
}
"#;

/// Runs `geyser view`: returns whether it showed the frames asked for.
pub fn run(args: &ViewArgs) -> geyser::Result<bool> {
    if args.screenshot.is_some() && args.frames == 0 {
        return Err(Error::InvalidArgument {
            what: "--screenshot",
            reason: "needs --frames N (the screenshot is of frame N)".into(),
        });
    }
    let size = geyser_harness::args::parse_size(&args.size)?;
    let manager = Arc::new(WgpuTextureShareManager::create_default()?);
    let event_loop = EventLoop::new()
        .map_err(|e| Error::unsupported("a window", format!("no display to open one on: {e}")))?;
    event_loop.set_control_flow(ControlFlow::Poll);
    let mut viewer = Viewer::new(args.clone(), size, manager);
    event_loop
        .run_app(&mut viewer)
        .map_err(|e| Error::unsupported("a window", e.to_string()))?;
    let shown = viewer.outcome.take().unwrap_or(Ok(false))?;
    drop(viewer);
    crate::demo::check_validation()?;
    Ok(shown)
}

/// The window and what is drawn into it.
struct Screen {
    window: Arc<Window>,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
}

/// A connected producer: the consumer, and what draws its frames.
struct Connected {
    consumer: WgpuConsumer,
    drawer: Drawer,
}

/// What draws each ring slot into the window.
struct Drawer {
    bind_groups: Vec<wgpu::BindGroup>,
    pipeline: wgpu::RenderPipeline,
    frame_size: (u32, u32),
}

/// What the title shows, over the last second.
#[derive(Default)]
struct Stats {
    shown: u64,
    window_start: Option<Instant>,
    window_frames: u64,
    fps: f64,
    latencies_us: Vec<u64>,
    latency_p50_us: u64,
    reconnects: u64,
}

struct Viewer {
    args: ViewArgs,
    size: (u32, u32),
    manager: Arc<WgpuTextureShareManager>,
    screen: Option<Screen>,
    connected: Option<Connected>,
    next_attempt: Instant,
    waiting_since: Instant,
    stats: Stats,
    last_title: Instant,
    outcome: Option<geyser::Result<bool>>,
}

impl Viewer {
    fn new(args: ViewArgs, size: (u32, u32), manager: Arc<WgpuTextureShareManager>) -> Self {
        let now = Instant::now();
        Self {
            args,
            size,
            manager,
            screen: None,
            connected: None,
            next_attempt: now,
            waiting_since: now,
            stats: Stats::default(),
            last_title: now,
            outcome: None,
        }
    }

    fn finish(&mut self, event_loop: &ActiveEventLoop, outcome: geyser::Result<bool>) {
        if let Err(e) = &outcome {
            eprintln!("geyser view: {e}");
        }
        self.outcome = Some(outcome);
        event_loop.exit();
    }

    fn open(&mut self, event_loop: &ActiveEventLoop) -> geyser::Result<()> {
        let attributes = Window::default_attributes()
            .with_title(format!(
                "geyser view {}: waiting for the producer",
                self.args.name
            ))
            .with_inner_size(winit::dpi::PhysicalSize::new(self.size.0, self.size.1));
        let window = Arc::new(
            event_loop
                .create_window(attributes)
                .map_err(|e| Error::unsupported("a window", e.to_string()))?,
        );
        let instance = self.manager.instance().ok_or_else(|| {
            Error::unsupported("a window", "the wgpu device was not created by Geyser")
        })?;
        let surface = instance
            .create_surface(window.clone())
            .map_err(|e| Error::unsupported("a wgpu surface", e.to_string()))?;
        let inner = window.inner_size();
        let mut config = surface
            .get_default_config(
                self.manager.adapter(),
                inner.width.max(1),
                inner.height.max(1),
            )
            .ok_or_else(|| {
                Error::unsupported("a wgpu surface", "the adapter cannot present to it")
            })?;
        config.present_mode = wgpu::PresentMode::AutoVsync;
        let screen = Screen {
            window,
            surface,
            config,
        };
        self.screen = Some(screen);
        self.configure(None);
        Ok(())
    }

    /// Picks the surface format for frames of `frame_format`: one that shows their bytes as
    /// they are for UNORM frames (no sRGB encode), an sRGB one for float and sRGB frames (so
    /// linear values are encoded on the way to the display), as `geyser snapshot` does.
    fn configure(&mut self, frame_format: Option<wgpu::TextureFormat>) {
        let Some(screen) = self.screen.as_mut() else {
            return;
        };
        let caps = screen.surface.get_capabilities(self.manager.adapter());
        let want_srgb = frame_format.is_some_and(|f| {
            f.is_srgb()
                || matches!(
                    f.sample_type(None, None),
                    Some(wgpu::TextureSampleType::Float { .. })
                ) && !matches!(
                    f,
                    wgpu::TextureFormat::Rgba8Unorm
                        | wgpu::TextureFormat::Bgra8Unorm
                        | wgpu::TextureFormat::R8Unorm
                        | wgpu::TextureFormat::Rg8Unorm
                        | wgpu::TextureFormat::Rgba8Snorm
                        | wgpu::TextureFormat::R16Unorm
                        | wgpu::TextureFormat::Rg16Unorm
                        | wgpu::TextureFormat::Rgba16Unorm
                        | wgpu::TextureFormat::Rgb10a2Unorm
                )
        });
        if let Some(f) = caps
            .formats
            .iter()
            .find(|f| f.is_srgb() == want_srgb)
            .or(caps.formats.first())
        {
            screen.config.format = *f;
        }
        let inner = screen.window.inner_size();
        screen.config.width = inner.width.max(1);
        screen.config.height = inner.height.max(1);
        screen
            .surface
            .configure(self.manager.device(), &screen.config);
    }

    /// Tries to connect (at most every 250 ms).
    fn try_connect(&mut self) -> geyser::Result<()> {
        if Instant::now() < self.next_attempt {
            return Ok(());
        }
        self.next_attempt = Instant::now() + Duration::from_millis(250);
        let options = ConsumerOptions {
            name: format!("geyser-view-{}", std::process::id()),
            ..Default::default()
        };
        let consumer =
            match WgpuConsumer::connect_with(&self.args.name, self.manager.clone(), options) {
                Ok(c) => c,
                Err(Error::NotFound { .. } | Error::PeerGone(_)) => return Ok(()),
                Err(Error::Rejected { reason, .. }) if reason.is_retryable() => return Ok(()),
                Err(e) => return Err(e),
            };
        let format = consumer.textures()[0].texture().format();
        self.configure(Some(format));
        let connected = self.connected_with(consumer)?;
        let c = connected.consumer.consumer();
        let d = c.descriptor();
        println!(
            "connected to `{}`: {}x{} {}, sync {:?}, path {:?}",
            self.args.name,
            d.width,
            d.height,
            d.format,
            c.sync_mode(),
            c.transfer_path()
        );
        if self.stats.shown > 0 {
            self.stats.reconnects += 1;
            println!("reconnected ({} so far)", self.stats.reconnects);
        }
        self.connected = Some(connected);
        Ok(())
    }

    /// The pipeline and per-slot bind groups for a consumer's ring (first layer, mip 0).
    fn connected_with(&self, consumer: WgpuConsumer) -> geyser::Result<Connected> {
        let device = self.manager.device();
        let first = &consumer.textures()[0];
        let d = first.descriptor();
        let unsupported = |why: &str| {
            Err(Error::unsupported(
                format!("viewing {} frames", d.format),
                format!("{why}; `geyser snapshot` writes any uncompressed frame as a PNG"),
            ))
        };
        if first.extent().dimension == TextureDimension::D3 {
            return unsupported("the window draws 2D frames (the first layer of arrays and cubes)");
        }
        let format = first.texture().format();
        let filterable = match format.sample_type(None, Some(device.features())) {
            Some(wgpu::TextureSampleType::Float { filterable }) => filterable,
            _ => return unsupported("the window samples float colour frames only"),
        };
        if !first
            .texture()
            .usage()
            .contains(wgpu::TextureUsages::TEXTURE_BINDING)
        {
            return unsupported("the frames lack TextureUsage::TextureBinding");
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("geyser view"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(if filterable {
                        wgpu::SamplerBindingType::Filtering
                    } else {
                        wgpu::SamplerBindingType::NonFiltering
                    }),
                    count: None,
                },
            ],
        });
        let filter = if filterable {
            wgpu::FilterMode::Linear
        } else {
            wgpu::FilterMode::Nearest
        };
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("geyser view"),
            mag_filter: filter,
            min_filter: filter,
            ..Default::default()
        });
        let bind_groups = consumer
            .textures()
            .iter()
            .map(|t| {
                let view = t.texture().create_view(&wgpu::TextureViewDescriptor {
                    dimension: Some(wgpu::TextureViewDimension::D2),
                    base_mip_level: 0,
                    mip_level_count: Some(1),
                    base_array_layer: 0,
                    array_layer_count: Some(1),
                    ..Default::default()
                });
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("geyser view"),
                    layout: &layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::TextureView(&view),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::Sampler(&sampler),
                        },
                    ],
                })
            })
            .collect();
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("geyser view"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("geyser view"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let target = self
            .screen
            .as_ref()
            .map_or(wgpu::TextureFormat::Bgra8Unorm, |s| s.config.format);
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("geyser view"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: Default::default(),
            depth_stencil: None,
            multisample: Default::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(target.into())],
            }),
            multiview_mask: None,
            cache: None,
        });
        let drawer = Drawer {
            frame_size: (d.width, d.height),
            bind_groups,
            pipeline,
        };
        Ok(Connected { consumer, drawer })
    }

    /// Shows the next frame if one came; returns whether the viewer is done.
    fn redraw(&mut self) -> geyser::Result<bool> {
        if self.connected.is_none() {
            self.try_connect()?;
            if self.connected.is_none() {
                self.draw_waiting();
                let give_up = self.args.give_up;
                if give_up > 0 && self.waiting_since.elapsed() > Duration::from_secs(give_up) {
                    return Err(Error::Timeout(format!(
                        "no producer at `{}` for {give_up} s",
                        self.args.name
                    )));
                }
                return Ok(false);
            }
        }
        let Some(screen) = self.screen.as_ref() else {
            return Ok(false);
        };
        let Connected { consumer, drawer } = self.connected.as_mut().expect("connected above");
        let gone = match consumer.next_frame(Some(Duration::from_millis(50))) {
            Ok(frame) => {
                return show(
                    frame,
                    screen,
                    drawer,
                    &self.manager,
                    &mut self.stats,
                    &self.args,
                )
            }
            Err(Error::Timeout(_)) => return Ok(false),
            Err(e) => e,
        };
        println!("producer gone ({gone}); waiting for it to come back");
        self.connected = None;
        self.waiting_since = Instant::now();
        Ok(false)
    }

    /// A dark window and a title saying what it waits for.
    fn draw_waiting(&mut self) {
        let Some(screen) = self.screen.as_ref() else {
            return;
        };
        let wgpu::CurrentSurfaceTexture::Success(target) = screen.surface.get_current_texture()
        else {
            return;
        };
        let view = target.texture.create_view(&Default::default());
        let mut encoder = self
            .manager
            .device()
            .create_command_encoder(&Default::default());
        drop(encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("geyser view: waiting"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color {
                        r: 0.05,
                        g: 0.05,
                        b: 0.08,
                        a: 1.0,
                    }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        }));
        self.manager.queue().submit([encoder.finish()]);
        self.manager.queue().present(target);
        std::thread::sleep(Duration::from_millis(20));
    }

    fn update_title(&mut self) {
        if self.last_title.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last_title = Instant::now();
        let Some(screen) = self.screen.as_ref() else {
            return;
        };
        let title = match &self.connected {
            None => format!(
                "geyser view {}: waiting for the producer ({} frames shown, {} reconnects)",
                self.args.name, self.stats.shown, self.stats.reconnects
            ),
            Some(c) => {
                let consumer = c.consumer.consumer();
                let counters = consumer.counters();
                let sync = match consumer.sync_mode() {
                    SyncMode::BinarySemaphore => "binary".to_string(),
                    other => format!("{other:?}").to_lowercase(),
                };
                format!(
                    "geyser view {}: {:.1} fps, handoff p50 {} µs, sync {sync}, path {:?}, dropped {}",
                    self.args.name,
                    self.stats.fps,
                    self.stats.latency_p50_us,
                    consumer.transfer_path(),
                    counters.skipped + counters.superseded
                )
            }
        };
        screen.window.set_title(&title);
    }
}

impl Stats {
    fn record(&mut self, latency: Duration) {
        self.shown += 1;
        self.window_frames += 1;
        self.latencies_us.push(latency.as_micros() as u64);
        let start = *self.window_start.get_or_insert_with(Instant::now);
        let elapsed = start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            self.fps = self.window_frames as f64 / elapsed.as_secs_f64();
            self.latencies_us.sort_unstable();
            self.latency_p50_us = self.latencies_us[self.latencies_us.len() / 2];
            self.latencies_us.clear();
            self.window_frames = 0;
            self.window_start = Some(Instant::now());
        }
    }
}

impl ApplicationHandler for Viewer {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.screen.is_none() {
            if let Err(e) = self.open(event_loop) {
                self.finish(event_loop, Err(e));
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => {
                let shown = self.stats.shown;
                self.finish(
                    event_loop,
                    Ok(self.args.frames == 0 || shown >= self.args.frames),
                );
            }
            WindowEvent::Resized(_) => self.configure(None),
            WindowEvent::RedrawRequested => {
                match self.redraw() {
                    Ok(true) => self.finish(event_loop, Ok(true)),
                    Ok(false) => {}
                    Err(e) => self.finish(event_loop, Err(e)),
                }
                self.update_title();
            }
            _ => {}
        }
    }

    fn about_to_wait(&mut self, _event_loop: &ActiveEventLoop) {
        if let Some(screen) = &self.screen {
            screen.window.request_redraw();
        }
    }
}
