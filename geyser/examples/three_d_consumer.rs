//! A `three-d` (0.19) window that shows a Geyser stream as the texture of a spinning cube.
//! The ring's slots become three-d `Texture2D`s whose storage is the producer's memory
//! (imported in `Texture2D::new_unchecked`'s callback with `GlContext::import_into_bound`:
//! memory objects for opaque FDs, EGLImages for DMA-BUFs): no copy, no CPU upload. Frames are
//! handed over host-synchronized on Mesa, with GL semaphores where GL has them.
//!
//! Terminal 1: `cargo run --release --example ipc_producer -- --frames 100000 --size 640x360 --interval-ms 16`
//! Terminal 2: `cargo run --release --features gl --example three_d_consumer`
//!
//! For CI (under Xvfb): `--frames N --screenshot out.png` exits after N frames and saves the
//! window; it prints `SHOWN frame <n>`, the frame the screenshot shows. GL's t = 0 is the
//! image's top row (Vulkan's row 0), so the cube's UVs are flipped.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use geyser::common::TextureFormat;
use geyser::gl::{GlConsumer, GlContext};
use geyser::Error;
use geyser_harness::args::{retry_not_found, ConsumerArgs};
use three_d::*;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    consumer: ConsumerArgs,
    /// Save the window as a PNG when the run ends (after `--frames` frames).
    #[arg(long)]
    screenshot: Option<std::path::PathBuf>,
}

/// The consumer before the textures: its GL textures (memory objects, EGLImages) must be
/// released before three-d deletes the texture names.
struct Stream {
    consumer: GlConsumer,
    textures: Vec<Arc<Texture2D>>,
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("GEYSER_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("three_d_consumer: error: {e}");
        std::process::exit(1);
    }
}

fn connect(args: &Args, context: &Context, gl: &GlContext) -> geyser::Result<Stream> {
    let c = &args.consumer;
    retry_not_found(Duration::from_secs(30), || {
        let mut textures = Vec::new();
        let consumer = GlConsumer::connect_importing(&c.name, gl, c.options()?, &mut |exported| {
            let d = &exported.info.descriptor;
            if !matches!(
                d.format,
                TextureFormat::Rgba8Unorm | TextureFormat::Rgba8UnormSrgb
            ) {
                return Err(Error::unsupported(
                    format!("{} in three_d_consumer", d.format),
                    "this example shows RGBA8 streams",
                ));
            }
            let mut imported = None;
            // SAFETY: the callback runs with the new texture bound and gives it its storage
            // (the producer's memory) exactly once; three-d sets its parameters before.
            let texture = unsafe {
                Texture2D::new_unchecked::<[u8; 4]>(
                    context,
                    d.width,
                    d.height,
                    Interpolation::Nearest,
                    Interpolation::Nearest,
                    None,
                    Wrapping::ClampToEdge,
                    Wrapping::ClampToEdge,
                    |_| imported = Some(gl.import_into_bound(exported)),
                )
            };
            textures.push(Arc::new(texture));
            imported.unwrap_or_else(|| Err(Error::Internal("three-d skipped the callback".into())))
        })?;
        Ok(Stream { consumer, textures })
    })
}

fn run(args: Args) -> geyser::Result<()> {
    let window = Window::new(WindowSettings {
        title: "Geyser stream on a three-d cube".into(),
        max_size: Some((640, 480)),
        ..Default::default()
    })
    .map_err(|e| Error::unsupported("a three-d window", e.to_string()))?;
    let context = window.gl();
    let gl = GlContext::current()?;
    println!(
        "three-d window on {} ({}); waiting for `{}`",
        gl.caps().renderer,
        gl.caps().platform,
        args.consumer.name
    );
    let stream = connect(&args, &context, &gl)?;
    let d = stream.consumer.consumer().descriptor().clone();
    println!(
        "streaming {}x{} {} through {:?} ({:?} sync{})",
        d.width,
        d.height,
        d.format,
        stream.consumer.consumer().transfer_path(),
        stream.consumer.consumer().sync_mode(),
        if stream.consumer.gpu_sync() {
            ", GL semaphores"
        } else {
            ""
        }
    );
    let mut camera = Camera::new_perspective(
        window.viewport(),
        vec3(0.0, 0.0, 6.0),
        vec3(0.0, 0.0, 0.0),
        vec3(0.0, 1.0, 0.0),
        degrees(45.0),
        0.1,
        10.0,
    );
    // Exact texel values on screen: no tone or colour mapping (the cube's material ignores
    // lights).
    camera.disable_tone_and_color_mapping();
    // Flip V: GL's t = 0 is the image's first (top) row.
    let flip_v = Mat3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 1.0, 1.0);
    let mut cube = Gm::new(
        Mesh::new(&context, &CpuMesh::cube()),
        ColorMaterial {
            color: Srgba::WHITE,
            texture: Some(Texture2DRef {
                texture: stream.textures[0].clone(),
                transformation: flip_v,
            }),
            ..Default::default()
        },
    );
    let limit = args.consumer.frames;
    let idle = args.consumer.idle_timeout();
    let screenshot = args.screenshot.clone();
    let mut stream = Some(stream);
    let mut shown: Option<u64> = None;
    let mut received = 0u64;
    let mut failure: Option<Error> = None;
    let mut waited = Duration::ZERO;
    window.render_loop(move |frame_input| {
        camera.set_viewport(frame_input.viewport);
        let angle = radians(frame_input.accumulated_time as f32 * 0.0007);
        cube.set_transformation(Mat4::from_angle_y(angle) * Mat4::from_angle_x(radians(0.45)));
        let screen = frame_input.screen();
        screen.clear(ClearState::color_and_depth(0.1, 0.1, 0.3, 1.0, 1.0));
        let mut exit = false;
        if let Some(s) = stream.as_mut() {
            match s.consumer.next_frame(Some(Duration::from_millis(50))) {
                Ok(frame) => {
                    waited = Duration::ZERO;
                    let slot = frame.frame().slot();
                    let number = frame.frame().number();
                    cube.material.texture = Some(Texture2DRef {
                        texture: s.textures[slot].clone(),
                        transformation: flip_v,
                    });
                    let drawn = frame.begin().map(|()| screen.render(&camera, &cube, &[]));
                    match drawn.and_then(|_| frame.end()) {
                        Ok(()) => {
                            shown = Some(number);
                            received += 1;
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                Err(Error::Timeout(_)) => {
                    waited += Duration::from_millis(50);
                    if waited > idle {
                        failure = Some(Error::Timeout("no frame from the producer".into()));
                    }
                    // Redraw the last frame's texture? It may be rewritten: show the background.
                }
                Err(Error::PeerGone(why)) => {
                    println!("stream ended: {why}");
                    exit = true;
                }
                Err(e) => failure = Some(e),
            }
        }
        if limit > 0 && received >= limit {
            exit = true;
        }
        if failure.is_some() {
            exit = true;
        }
        if exit {
            if let Some(path) = &screenshot {
                let pixels: Vec<[u8; 4]> = frame_input.screen().read_color();
                let vp = frame_input.viewport;
                match save_png(path, vp.width, vp.height, &pixels) {
                    Ok(()) => {
                        println!("screenshot {} ({}x{})", path.display(), vp.width, vp.height)
                    }
                    Err(e) => failure = Some(e),
                }
            }
            if let Some(n) = shown {
                println!("SHOWN frame {n}");
            }
            println!("received {received} frames");
            if let Some(e) = &failure {
                eprintln!("three_d_consumer: error: {e}");
            }
            // Release the imports before three-d deletes the texture names.
            drop(stream.take());
            if failure.is_some() {
                std::process::exit(1);
            }
        }
        FrameOutput {
            exit,
            ..Default::default()
        }
    });
    Ok(())
}

/// Writes RGBA8 rows (top row first, as three-d reads them) as a PNG.
fn save_png(
    path: &std::path::Path,
    width: u32,
    height: u32,
    pixels: &[[u8; 4]],
) -> geyser::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let bytes: Vec<u8> = pixels.iter().flatten().copied().collect();
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&bytes))
        .map_err(|e| Error::Io(std::io::Error::other(e)))
}
