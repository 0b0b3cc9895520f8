//! Shares an IOSurface-backed Metal texture with another process through Geyser's mach
//! transport. The producer fills a texture on the GPU (a blit, then
//! `MetalSharedEvent::encode_signal`), waits for it on the host (across processes the handoff
//! is host-synchronized), exports the surface as a mach port and sends it with a small header;
//! the consumer imports the port, reads the pixels back, checks them, and answers.
//!
//! `cargo run --example metal_ipc --features metal` runs the producer, which spawns this binary
//! again as the consumer. `--role producer --name N` and `--role consumer --name N` run one side
//! each (two terminals of one login session). Exits non-zero when a pixel differs or anything
//! fails. macOS only (feature `metal`); elsewhere it says so and exits with 0. Compiles in CI for
//! Apple targets; it has never run on Apple hardware.

#[cfg(target_os = "macos")]
mod mac {
    use std::process::{Command, ExitCode};
    use std::ptr::NonNull;
    use std::time::{Duration, Instant};

    use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
    use geyser::metal::mach::{MachConnection, MachServer};
    use geyser::metal::{MetalSharedEvent, MetalTexture, MetalTextureShareManager};
    use geyser::{Error, Result, TextureShareManager};
    use objc2_metal::{
        MTLBlitCommandEncoder, MTLCommandBuffer, MTLCommandEncoder, MTLCommandQueue, MTLDevice,
        MTLOrigin, MTLRegion, MTLResourceOptions, MTLSize, MTLTexture,
    };
    use serde::{Deserialize, Serialize};

    const WIDTH: u32 = 256;
    const HEIGHT: u32 = 128;
    const FORMAT: TextureFormat = TextureFormat::Bgra8Unorm;
    const FRAME: u64 = 1;
    const TIMEOUT: Duration = Duration::from_secs(30);

    /// What travels with the surface's port.
    #[derive(Debug, Serialize, Deserialize)]
    struct FrameHeader {
        width: u32,
        height: u32,
        format: TextureFormat,
        frame: u64,
    }

    /// The consumer's answer.
    #[derive(Debug, Serialize, Deserialize)]
    struct FrameResult {
        frame: u64,
        mismatches: u64,
        first_mismatch: Option<(u32, u32)>,
    }

    /// The texel the producer writes at (x, y) for `frame` (BGRA8, 4 bytes).
    fn texel(x: u32, y: u32, frame: u64) -> [u8; 4] {
        [x as u8, y as u8, (x ^ y) as u8 ^ frame as u8, 0xff]
    }

    fn pattern(width: u32, height: u32, frame: u64) -> Vec<u8> {
        (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| texel(x, y, frame)))
            .collect()
    }

    fn descriptor(width: u32, height: u32, format: TextureFormat) -> TextureDescriptor {
        TextureDescriptor {
            width,
            height,
            format,
            usage: vec![
                TextureUsage::CopyDst,
                TextureUsage::CopySrc,
                TextureUsage::TextureBinding,
            ],
            label: Some("metal_ipc".to_string()),
        }
    }

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
        postcard::to_stdvec(value).map_err(|e| Error::Protocol(e.to_string()))
    }

    fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
        postcard::from_bytes(bytes).map_err(|e| Error::Protocol(e.to_string()))
    }

    fn value(args: &[String], flag: &str) -> Option<String> {
        let at = args.iter().position(|a| a == flag)?;
        args.get(at + 1).cloned()
    }

    pub fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let name =
            value(&args, "--name").unwrap_or_else(|| format!("metal-ipc-{}", std::process::id()));
        let outcome = match value(&args, "--role").as_deref() {
            None => producer(&name, true),
            Some("producer") => producer(&name, false),
            Some("consumer") => consumer(&name),
            Some(other) => {
                eprintln!("metal_ipc: unknown role `{other}`; use producer or consumer");
                return ExitCode::from(2);
            }
        };
        match outcome {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("metal_ipc: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// Registers `name`, optionally spawns the consumer, serves one frame. Ok(true) when the
    /// consumer saw every pixel right (and, if spawned, exited with 0).
    fn producer(name: &str, spawn: bool) -> Result<bool> {
        let mut server = MachServer::register(name)?;
        let mut child = if spawn {
            let exe = std::env::current_exe()?;
            Some(
                Command::new(exe)
                    .args(["--role", "consumer", "--name", name])
                    .spawn()?,
            )
        } else {
            println!("producer: waiting for `metal_ipc --role consumer --name {name}`");
            None
        };
        let served = serve(&mut server);
        let Some(child) = child.as_mut() else {
            return served;
        };
        if served.is_err() {
            let _ = child.kill();
        }
        let status = child.wait()?;
        let served = served?;
        if !status.success() {
            eprintln!("producer: the consumer exited with {status}");
        }
        Ok(served && status.success())
    }

    fn serve(server: &mut MachServer) -> Result<bool> {
        let manager = MetalTextureShareManager::create_default()?;
        let desc = descriptor(WIDTH, HEIGHT, FORMAT);
        let texture = manager.create_texture(&desc)?;
        let event = MetalSharedEvent::new(&manager)?;
        fill(&manager, &texture, &event, FRAME)?;
        let handle = manager.export_texture(&texture)?;
        let port = manager.export_mach_port(handle)?;

        let mut conn = server.accept(Some(TIMEOUT))?;
        let header = encode(&FrameHeader {
            width: WIDTH,
            height: HEIGHT,
            format: FORMAT,
            frame: FRAME,
        })?;
        conn.send(&header, &[&port])?;
        println!(
            "producer: sent frame {FRAME} ({WIDTH}x{HEIGHT} {FORMAT}, IOSurface {}) as a mach port",
            texture.surface().id()
        );
        let reply = conn.recv(Some(TIMEOUT))?;
        let result: FrameResult = decode(&reply.bytes)?;
        manager.release_texture_handle(handle)?;
        let ok = result.frame == FRAME && result.mismatches == 0;
        println!(
            "producer: consumer (pid {}) {} frame {}: {} of {} texels differ{}",
            reply.sender_pid,
            if ok { "verified" } else { "REJECTED" },
            result.frame,
            result.mismatches,
            u64::from(WIDTH) * u64::from(HEIGHT),
            result
                .first_mismatch
                .map(|(x, y)| format!(", first at ({x}, {y})"))
                .unwrap_or_default()
        );
        Ok(ok)
    }

    /// Writes frame `frame`'s pattern into the texture on the GPU (a blit from a buffer),
    /// signals `event` to `frame` after it, and waits for that on the host: the frame message
    /// may only go out once the GPU is done, because the consumer cannot wait on our event.
    fn fill(
        manager: &MetalTextureShareManager,
        texture: &MetalTexture,
        event: &MetalSharedEvent,
        frame: u64,
    ) -> Result<()> {
        let nil = |what: &str| Error::unsupported(what, "Metal returned nil");
        let device = manager.device();
        let queue = device
            .newCommandQueue()
            .ok_or_else(|| nil("newCommandQueue"))?;
        let pixels = pattern(WIDTH, HEIGHT, frame);
        let row = WIDTH as usize * 4;
        // SAFETY: `pixels` is a live allocation of `pixels.len()` bytes; Metal copies them into
        // the new buffer before returning and keeps no pointer to them.
        let buffer = unsafe {
            device.newBufferWithBytes_length_options(
                NonNull::from(pixels.as_slice()).cast(),
                pixels.len(),
                MTLResourceOptions::StorageModeShared,
            )
        }
        .ok_or_else(|| nil("newBufferWithBytes"))?;
        let commands = queue.commandBuffer().ok_or_else(|| nil("commandBuffer"))?;
        let blit = commands
            .blitCommandEncoder()
            .ok_or_else(|| nil("blitCommandEncoder"))?;
        // SAFETY: the buffer holds `row * HEIGHT` bytes, exactly the region copied (BGRA8,
        // tightly packed rows); the texture is WIDTH x HEIGHT with one level and one slice;
        // both stay alive (retained here, and by the command buffer) until it completes,
        // which `event.wait` below waits for.
        unsafe {
            blit.copyFromBuffer_sourceOffset_sourceBytesPerRow_sourceBytesPerImage_sourceSize_toTexture_destinationSlice_destinationLevel_destinationOrigin(
                &buffer,
                0,
                row,
                row * HEIGHT as usize,
                MTLSize {
                    width: WIDTH as usize,
                    height: HEIGHT as usize,
                    depth: 1,
                },
                texture.raw(),
                0,
                0,
                MTLOrigin { x: 0, y: 0, z: 0 },
            )
        };
        blit.endEncoding();
        event.encode_signal(&commands, frame);
        commands.commit();
        let waited = event.wait(frame, Duration::from_secs(5));
        if let Some(error) = commands.error() {
            return Err(Error::Io(std::io::Error::other(format!(
                "the blit command buffer failed: {error:?}"
            ))));
        }
        waited
    }

    /// Connects (retrying while the producer is not registered yet), imports the frame,
    /// checks every texel and answers. Ok(true) when all match.
    fn consumer(name: &str) -> Result<bool> {
        let deadline = Instant::now() + TIMEOUT;
        let mut conn = loop {
            match MachConnection::connect(name) {
                Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                other => break other?,
            }
        };
        let message = conn.recv(Some(TIMEOUT))?;
        let header: FrameHeader = decode(&message.bytes)?;
        if header.format != FORMAT {
            return Err(Error::Protocol(format!(
                "frame in {}, this example reads {FORMAT} only",
                header.format
            )));
        }
        let mut ports = message.ports.into_iter();
        let (Some(port), None) = (ports.next(), ports.next()) else {
            return Err(Error::Protocol(
                "expected exactly one mach port with the frame".into(),
            ));
        };
        let manager = MetalTextureShareManager::create_default()?;
        let desc = descriptor(header.width, header.height, header.format);
        // Checks the surface's size and format against the header before anything is read.
        let texture = manager.import_mach_port(port, &desc)?;
        let pixels = read_back(&texture, header.width, header.height);

        let mut mismatches = 0u64;
        let mut first_mismatch = None;
        for (i, got) in pixels.chunks_exact(4).enumerate() {
            let (x, y) = (i as u32 % header.width, i as u32 / header.width);
            if got != texel(x, y, header.frame) {
                mismatches += 1;
                first_mismatch.get_or_insert((x, y));
            }
        }
        let result = FrameResult {
            frame: header.frame,
            mismatches,
            first_mismatch,
        };
        conn.send(&encode(&result)?, &[])?;
        println!(
            "consumer: frame {} from pid {} through IOSurface {}: {}",
            header.frame,
            message.sender_pid,
            texture.surface().id(),
            if mismatches == 0 {
                "every texel matches".to_string()
            } else {
                format!("{mismatches} texels differ, first at {first_mismatch:?}")
            }
        );
        Ok(mismatches == 0)
    }

    /// The texture's texels, tightly packed (4 bytes each), read on the CPU with `getBytes`.
    fn read_back(texture: &MetalTexture, width: u32, height: u32) -> Vec<u8> {
        let row = width as usize * 4;
        let mut out = vec![0u8; row * height as usize];
        let region = MTLRegion {
            origin: MTLOrigin { x: 0, y: 0, z: 0 },
            size: MTLSize {
                width: width as usize,
                height: height as usize,
                depth: 1,
            },
        };
        // SAFETY: `out` holds `row * height` bytes, exactly `region` at `row` bytes per row for
        // a 4-byte format (checked by the caller); it is live and exclusively borrowed for the
        // call, which writes the texels and keeps no pointer.
        unsafe {
            texture.raw().getBytes_bytesPerRow_fromRegion_mipmapLevel(
                NonNull::from(out.as_mut_slice()).cast(),
                row,
                region,
                0,
            )
        };
        out
    }
}

#[cfg(target_os = "macos")]
fn main() -> std::process::ExitCode {
    mac::main()
}

#[cfg(not(target_os = "macos"))]
fn main() {
    println!(
        "metal_ipc needs macOS (Metal, IOSurface and the bootstrap server's mach ports); \
         nothing to do here"
    );
}
