//! Arrays, cube maps, 3D textures, mip chains, depth/stencil and compressed frames across
//! processes: a producer process streams rings of such textures (every layer, face, slice and
//! level written with data unique to the frame) to a consumer that imports the ring directly
//! and to one that gets it through a host ring; each checks every byte of every frame.
//! Validation layers are on in every process.
#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::child::{env, env_u64, unique, ChildProc};
use common::shapes::{compare_packed, packed_pattern, SHAPES};
use common::{exit_child, manager};
use geyser::common::{TextureFormat, TextureUsage};
use geyser::ipc::{Consumer, ConsumerOptions, Producer, ProducerOptions};
use geyser::Error;

const USAGE: [TextureUsage; 3] = [
    TextureUsage::CopySrc,
    TextureUsage::CopyDst,
    TextureUsage::TextureBinding,
];

/// Not a test: the body of a child process (`GT_ROLE`).
#[test]
fn child_role_entry() {
    match env("GT_ROLE").as_deref() {
        Some("shape-producer") => exit_child(shape_producer()),
        Some("shape-consumer") => exit_child(shape_consumer()),
        _ => common::child::role_entry(),
    }
}

fn shape_and_format() -> (&'static common::shapes::Shape, TextureFormat) {
    let shape = &SHAPES[env_u64("GT_SHAPE", 0) as usize];
    let format = env("GT_FORMAT").unwrap().parse().unwrap();
    (shape, format)
}

/// Presents `GT_FRAMES` frames of the shape, each written whole from the host (waiting for
/// consumers' releases and signaling the ready point from the host when the mode has them).
fn shape_producer() -> i32 {
    let (shape, format) = shape_and_format();
    let m = Arc::new(manager());
    let desc = shape.descriptor(format, &USAGE);
    let options = ProducerOptions {
        lossless: true,
        extent: shape.extent,
        ..Default::default()
    };
    let run = || -> geyser::Result<()> {
        let producer = Producer::bind(&env("GT_NAME").unwrap(), m.clone(), &desc, options)?;
        producer.wait_for_consumers(env_u64("GT_WAIT", 2) as usize, Duration::from_secs(30))?;
        for frame in 0..env_u64("GT_FRAMES", 4) {
            let slot = producer.acquire(Some(Duration::from_secs(20)))?;
            for w in &slot.waits {
                w.semaphore.wait(w.value, Duration::from_secs(5))?;
            }
            let data = packed_pattern(&desc, &shape.extent, frame as u32);
            m.write_packed(&slot.texture, &data)?;
            if let Some(signal) = &slot.signal {
                signal.semaphore.signal(signal.value)?;
            }
            producer.present(slot)?;
        }
        // Every frame released before the producer goes (lossless: wait for a free ring).
        let last = producer.acquire(Some(Duration::from_secs(20)));
        drop(last);
        Ok(())
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shape producer: {e}");
            1
        }
    }
}

/// Receives frames until the producer leaves; checks every byte of each against the frame's
/// pattern; prints `RESULT frames=N path=P`.
fn shape_consumer() -> i32 {
    let (shape, format) = shape_and_format();
    let m = Arc::new(manager());
    let desc = shape.descriptor(format, &USAGE);
    let options = ConsumerOptions {
        lossless: true,
        host_ring: env("GT_HOST_TRANSFER").is_some(),
        ..Default::default()
    };
    let name = env("GT_NAME").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut consumer = loop {
        match Consumer::connect_with(&name, m.clone(), options.clone()) {
            Ok(c) => break c,
            Err(Error::NotFound { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => {
                eprintln!("connect: {e}");
                return 1;
            }
        }
    };
    let path = format!("{:?}", consumer.transfer_path());
    let mut frames = 0u64;
    loop {
        let frame = match consumer.next_frame(Some(Duration::from_secs(20))) {
            Ok(f) => f,
            Err(Error::PeerGone(_)) => break,
            Err(e) => {
                eprintln!("next_frame: {e}");
                return 1;
            }
        };
        if let Err(e) = frame.wait_ready(Duration::from_secs(5)) {
            eprintln!("wait_ready: {e}");
            return 1;
        }
        let got = match m.read_packed(frame.texture()) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("read_packed: {e}");
                return 1;
            }
        };
        let want = packed_pattern(&desc, &shape.extent, frame.number() as u32);
        if let Err(e) = compare_packed(&desc, &shape.extent, &want, &got) {
            eprintln!("frame {} ({path}): {e}", frame.number());
            return 3;
        }
        frames += 1;
    }
    println!("RESULT frames={frames} path={path}");
    0
}

/// One producer of `shape` in `format`, a direct consumer and a host-ring consumer.
fn stream(shape: usize, format: TextureFormat) {
    let name = unique(&format!("shape{shape}-{format}"));
    let shape_s = shape.to_string();
    let format_s = format.to_string();
    let vars = [
        ("GT_SHAPE", shape_s.as_str()),
        ("GT_FORMAT", format_s.as_str()),
        ("GT_FRAMES", "4"),
    ];
    let p = ChildProc::spawn("shape-producer", &name, &vars);
    let direct = ChildProc::spawn("shape-consumer", &name, &vars);
    let mut ring_vars = vars.to_vec();
    ring_vars.push(("GT_HOST_TRANSFER", "1"));
    let ring = ChildProc::spawn("shape-consumer", &name, &ring_vars);
    let (code, _, out) = p.finish(Duration::from_secs(120));
    assert_eq!(
        code,
        Some(0),
        "{} {format} producer: {out}",
        SHAPES[shape].name
    );
    for (c, path) in [(direct, "Direct"), (ring, "HostMemory")] {
        let (code, result, out) = c.finish(Duration::from_secs(30));
        assert_eq!(
            code,
            Some(0),
            "{} {format} consumer: {out}",
            SHAPES[shape].name
        );
        assert_eq!(
            result.as_deref(),
            Some(format!("frames=4 path={path}").as_str()),
            "{out}"
        );
    }
}

#[test]
fn a_float_texture_array_with_mips_streams_to_direct_and_host_ring_consumers() {
    stream(0, TextureFormat::Rgba16Float);
}

#[test]
fn a_depth_stencil_cube_map_with_mips_streams_to_direct_and_host_ring_consumers() {
    stream(1, TextureFormat::Depth24UnormStencil8);
}

#[test]
fn a_compressed_cube_array_with_mips_streams_to_direct_and_host_ring_consumers() {
    stream(2, TextureFormat::Bc1RgbaUnorm);
}

#[test]
fn a_3d_texture_with_mips_streams_to_direct_and_host_ring_consumers() {
    stream(3, TextureFormat::Rgba8Unorm);
}
