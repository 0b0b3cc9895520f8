//! (g) What a wgpu user would write without Geyser to get frames into another process: render
//! the frame, copy it into a `MAP_READ` buffer, `map_async` and wait, copy the bytes into
//! shared memory; in the other process `Queue::write_texture` from the shared memory, then
//! use the texture. The same memfd ring and messages as the CPU-copy path (c), the same
//! frames (a render pass clear to the frame's word) and a check of every frame in a compute
//! pass. Only the wgpu device comes from Geyser (`WgpuTextureShareManager::create_default`,
//! for the same adapter selection and validation as the other rows); textures and buffers are
//! plain wgpu.

use std::os::fd::AsFd;
use std::time::Instant;

use geyser::common::TextureDescriptor;
use geyser::ipc::clock::{cpu_time_ns, monotonic_ns};
use geyser::ipc::testing::{fd_passing, Connection, Listener, SharedRegion};
use geyser::webgpu::{wgpu, WgpuTextureShareManager};
use geyser::{Error, Result};

use super::cpu_copy::{pack, recv_raw, END, READY, RELEASED, SETUP, STARTED};
use super::{finish_consumer, RING};
use crate::report::{ConsumeReport, ProduceReport};
use crate::wgpu_pattern::{WgpuPatternWriter, WgpuProbe};

fn extent(desc: &TextureDescriptor) -> wgpu::Extent3d {
    wgpu::Extent3d {
        width: desc.width,
        height: desc.height,
        depth_or_array_layers: 1,
    }
}

fn rgba8(desc: &TextureDescriptor) -> Result<()> {
    if desc.format != geyser::common::TextureFormat::Rgba8Unorm {
        return Err(Error::unsupported(
            format!("the wgpu copy path on {}", desc.format),
            "it renders the Rgba8Unorm test pattern",
        ));
    }
    Ok(())
}

/// (g) Producer: render, read back with `map_async`, copy into a memfd ring slot, announce.
pub fn run_wgpu_copy_producer(
    name: &str,
    desc: &TextureDescriptor,
    frames: u64,
) -> Result<ProduceReport> {
    rgba8(desc)?;
    let wgpu_m = WgpuTextureShareManager::create_default()?;
    let (device, queue) = (wgpu_m.device(), wgpu_m.queue());
    let size = desc.tight_size() as usize;
    let row = desc.width as usize * 4;
    // Buffer rows are padded to wgpu's copy alignment; the shared ring holds tight rows.
    let align = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize;
    let padded = row.div_ceil(align) * align;
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("frame"),
        size: extent(desc),
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: (padded * desc.height as usize) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let listener = Listener::bind(name)?;
    let mut shm = SharedRegion::create("geyser-wgpu-copy", RING * size)?;
    let conn = loop {
        if let Some(c) = listener.accept(false)? {
            break c;
        }
    };
    conn.check_peer(&Default::default())?;
    fd_passing::send(
        conn.as_fd(),
        &pack(SETUP, RING as u32, size as u64, 0),
        &[shm.handle().as_fd()],
    )?;
    let mut free: Vec<u32> = (0..RING as u32).rev().collect();
    let mut fds = Vec::new();
    if recv_raw(&conn, &mut fds)?.0 != STARTED {
        return Err(Error::Protocol("expected the consumer's start".into()));
    }
    let start = Instant::now();
    let cpu0 = cpu_time_ns();
    let mut memcpy_ns = 0u64;
    for f in 0..frames {
        while free.is_empty() {
            let (tag, slot, _, _) = recv_raw(&conn, &mut fds)?;
            if tag != RELEASED || slot as usize >= RING {
                return Err(Error::Protocol("expected a release".into()));
            }
            free.push(slot);
        }
        let slot = free.pop().unwrap_or(0);
        let mut encoder = device.create_command_encoder(&Default::default());
        WgpuPatternWriter.record(&mut encoder, &texture, f)?;
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded as u32),
                    rows_per_image: None,
                },
            },
            extent(desc),
        );
        let submission = queue.submit([encoder.finish()]);
        let slice = readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        wgpu_m.wait_for_submission(submission)?;
        {
            let data = slice
                .get_mapped_range()
                .map_err(|e| Error::unsupported("wgpu readback", e.to_string()))?;
            let dst = shm.slot(slot as usize, size);
            let t = monotonic_ns();
            for (d, s) in dst.chunks_exact_mut(row).zip(data.chunks(padded)) {
                d.copy_from_slice(&s[..row]);
            }
            memcpy_ns += monotonic_ns() - t;
        }
        readback.unmap();
        fd_passing::send(conn.as_fd(), &pack(READY, slot, f, monotonic_ns()), &[])?;
    }
    while free.len() < RING {
        let (tag, slot, _, _) = recv_raw(&conn, &mut fds)?;
        if tag == RELEASED {
            free.push(slot);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_time_ns() - cpu0;
    fd_passing::send(conn.as_fd(), &pack(END, 0, 0, 0), &[])?;
    Ok(ProduceReport {
        frames,
        seconds,
        fps: frames as f64 / seconds.max(1e-9),
        sync: "wgpu copy".into(),
        consumers_connected: 1,
        cpu_us_per_frame: cpu as f64 / 1e3 / frames.max(1) as f64,
        memcpy_us_per_frame: memcpy_ns as f64 / 1e3 / frames.max(1) as f64,
        ..Default::default()
    })
}

/// (g) Consumer: `write_texture` from the memfd ring slot, release it, check the frame.
pub fn run_wgpu_copy_consumer(name: &str, desc: &TextureDescriptor) -> Result<ConsumeReport> {
    rgba8(desc)?;
    let wgpu_m = WgpuTextureShareManager::create_default()?;
    let (device, queue) = (wgpu_m.device(), wgpu_m.queue());
    let size = desc.tight_size() as usize;
    let conn = Connection::connect(name)?;
    conn.check_peer(&Default::default())?;
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("frame"),
        size: extent(desc),
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::TEXTURE_BINDING,
        view_formats: &[],
    });
    let probe = WgpuProbe::for_textures(&wgpu_m, &[&texture])?;
    let mut fds = Vec::new();
    let (tag, slots, slot_bytes, _) = recv_raw(&conn, &mut fds)?;
    let memfd = fds
        .pop()
        .ok_or_else(|| Error::Protocol("setup without its memfd".into()))?;
    if tag != SETUP || slot_bytes as usize != size || slots as usize != RING {
        return Err(Error::Protocol("unexpected wgpu-copy setup".into()));
    }
    let mut shm = SharedRegion::open(memfd, RING * size)?;
    fd_passing::send(conn.as_fd(), &pack(STARTED, 0, 0, 0), &[])?;
    let mut report = ConsumeReport {
        sync: "wgpu copy".into(),
        ..Default::default()
    };
    let mut latencies = Vec::with_capacity(1024);
    let (mut start, mut cpu0) = (None, 0);
    let (mut n, mut memcpy_ns) = (0u64, 0u64);
    loop {
        let (tag, slot, frame, present_ns) = recv_raw(&conn, &mut fds)?;
        match tag {
            END => break,
            READY if (slot as usize) < RING => {}
            _ => return Err(Error::Protocol("unexpected wgpu-copy message".into())),
        }
        let received = monotonic_ns();
        if start.is_none() {
            start = Some(Instant::now());
            cpu0 = cpu_time_ns();
        }
        latencies.push(received.saturating_sub(present_ns) as f64 / 1e3);
        // write_texture copies the bytes into wgpu's staging memory before it returns.
        let t = monotonic_ns();
        queue.write_texture(
            texture.as_image_copy(),
            shm.slot(slot as usize, size),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(desc.width * 4),
                rows_per_image: None,
            },
            extent(desc),
        );
        memcpy_ns += monotonic_ns() - t;
        n += 1;
        fd_passing::send(conn.as_fd(), &pack(RELEASED, slot, frame, 0), &[])?;
        let submission = probe.submit(&wgpu_m, 0)?;
        let result = probe.result(&wgpu_m, submission, frame)?;
        report.checked(frame, slot as usize, &result);
    }
    finish_consumer(&mut report, start, cpu0, &mut latencies);
    report.memcpy_us_per_frame = memcpy_ns as f64 / 1e3 / n.max(1) as f64;
    report.clean_end = true;
    report.end = "end of stream".into();
    Ok(report)
}
