//! (c) The CPU-copy path, the best a user would write without sharing: a memfd ring over the
//! Unix socket. The producer's GPU fills the frame and copies it into one of two persistently
//! mapped, CPU-cached buffers while the CPU copies the previous frame into the shared ring;
//! the consumer copies a frame out of the ring into one of two mapped buffers, releases the
//! ring slot at once, and uploads and checks it on its GPU while it takes the next. No
//! per-frame allocation.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use geyser::common::TextureDescriptor;
use geyser::ipc::clock::{cpu_time_ns, monotonic_ns};
use geyser::ipc::testing::{fd_passing, Connection, Listener, SharedRegion};
use geyser::vulkan::ash::vk;
use geyser::vulkan::{
    record_copy, Buffer, CopyDirection, Submitter, VulkanTexture, VulkanTextureShareManager,
    SUBMIT_TIMEOUT,
};
use geyser::{Error, Result};

use super::{finish_consumer, RING};
use crate::demo::{write_end_stamp, write_stamped_done, STAMP_QUERIES};
use crate::gpu_time::FrameStamps;
use crate::pattern::PatternWriter;
use crate::probe_ring::ProbeRing;
use crate::report::{ConsumeReport, ProduceReport};

pub(super) const SETUP: u8 = 1;
pub(super) const READY: u8 = 2;
pub(super) const RELEASED: u8 = 3;
pub(super) const END: u8 = 4;
pub(super) const STARTED: u8 = 5;

/// Frames each side has on its GPU while its CPU copies another.
const STAGES: usize = 2;

/// The CPU-copy path's fixed 32-byte message: tag, slot, frame (or slot bytes), timestamp.
pub(super) fn pack(tag: u8, slot: u32, a: u64, b: u64) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0] = tag;
    m[4..8].copy_from_slice(&slot.to_le_bytes());
    m[8..16].copy_from_slice(&a.to_le_bytes());
    m[16..24].copy_from_slice(&b.to_le_bytes());
    m
}

fn unpack(m: &[u8]) -> Result<(u8, u32, u64, u64)> {
    if m.len() != 32 {
        return Err(Error::Protocol(format!(
            "CPU-copy message of {} bytes",
            m.len()
        )));
    }
    let u32_at = |i: usize| u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
    let u64_at = |i: usize| u64::from_le_bytes(m[i..i + 8].try_into().unwrap_or([0; 8]));
    Ok((m[0], u32_at(4), u64_at(8), u64_at(16)))
}

pub(super) fn recv_raw(conn: &Connection, fds: &mut Vec<OwnedFd>) -> Result<(u8, u32, u64, u64)> {
    let mut buf = [0u8; 64];
    let n = fd_passing::recv(conn.as_fd(), &mut buf, fds, false)?.unwrap_or(0);
    unpack(&buf[..n])
}

/// One persistently mapped buffer and the command buffer that copies a whole frame between it
/// and a texture; [`Self::wait`] waits for that copy only.
struct Stage {
    submit: Submitter,
    buffer: Buffer,
}

impl Stage {
    /// A stage for copies in direction `dir`: a CPU-cached buffer for readbacks (the CPU
    /// reads it), the device's first host-visible memory (often write-combined) for uploads.
    fn new(manager: &VulkanTextureShareManager, bytes: u64, dir: CopyDirection) -> Result<Self> {
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let buffer = match dir {
            CopyDirection::Download => Buffer::readback(manager, bytes, usage)?,
            CopyDirection::Upload => Buffer::host(manager, bytes, usage)?,
        };
        Ok(Self {
            submit: Submitter::new(manager, 1)?,
            buffer,
        })
    }

    /// Submits the whole-frame copy `dir` between `texture` and this stage's buffer, after
    /// everything submitted before it on the queue (the fill before a download, the check of
    /// the texture's previous frame before an upload); does not wait.
    fn copy(&self, texture: &VulkanTexture, dir: CopyDirection) -> Result<()> {
        let family = self.submit.queue_family();
        let region = vk::BufferImageCopy::default()
            .image_subresource(vk::ImageSubresourceLayers {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                mip_level: 0,
                base_array_layer: 0,
                layer_count: 1,
            })
            .image_extent(texture.vk_extent());
        self.submit.submit(
            // SAFETY: recording on this stage's command buffer; the region is the texture's
            // whole mip 0, which the buffer holds (sized to the tight frame); callers `wait`
            // before touching the buffer or dropping the texture.
            |device, cmd| unsafe {
                let earlier = vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::MEMORY_READ | vk::AccessFlags::MEMORY_WRITE)
                    .dst_access_mask(
                        vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE,
                    );
                device.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::DependencyFlags::empty(),
                    &[earlier],
                    &[],
                    &[],
                );
                record_copy(device, cmd, family, texture, &[region], &self.buffer, dir)
            },
            &[],
            &[],
            false,
        )?;
        texture.mark_initialized();
        Ok(())
    }

    fn wait(&self) -> Result<()> {
        self.submit.drain(SUBMIT_TIMEOUT)
    }
}

/// (c) Producer of the CPU-copy path: per frame, the same GPU fill as the zero-copy path and a
/// GPU readback into a mapped buffer; meanwhile the CPU copies the previous frame into a memfd
/// ring slot and announces it.
pub fn run_cpu_copy_producer(
    manager: &Arc<VulkanTextureShareManager>,
    name: &str,
    desc: &TextureDescriptor,
    frames: u64,
) -> Result<ProduceReport> {
    let size = desc.tight_size() as usize;
    let listener = Listener::bind(name)?;
    let texture = manager.create_texture(desc)?;
    let writer = PatternWriter::new(manager, size as u64)?;
    let stages = (0..STAGES)
        .map(|_| Stage::new(manager, size as u64, CopyDirection::Download))
        .collect::<Result<Vec<_>>>()?;
    let mut stamps = FrameStamps::new(manager, STAMP_QUERIES, frames as usize)?;
    let mut shm = SharedRegion::create("geyser-cpu-copy", RING * size)?;
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
    // Time from when the consumer has mapped the ring and is waiting for frames.
    if recv_raw(&conn, &mut fds)?.0 != STARTED {
        return Err(Error::Protocol("expected the consumer's start".into()));
    }
    let start = Instant::now();
    let cpu0 = cpu_time_ns();
    let mut memcpy_ns = 0u64;
    // Copies frame `f` (read back into its stage) into a free ring slot and announces it.
    let mut publish = |f: u64, shm: &mut SharedRegion| -> Result<()> {
        let stage = &stages[f as usize % STAGES];
        stage.wait()?;
        while free.is_empty() {
            let (tag, slot, _, _) = recv_raw(&conn, &mut fds)?;
            if tag != RELEASED || slot as usize >= RING {
                return Err(Error::Protocol("expected a release".into()));
            }
            free.push(slot);
        }
        let slot = free.pop().unwrap_or(0);
        let t = monotonic_ns();
        shm.slot(slot as usize, size)
            .copy_from_slice(&stage.buffer.bytes()[..size]);
        memcpy_ns += monotonic_ns() - t;
        fd_passing::send(conn.as_fd(), &pack(READY, slot, f, monotonic_ns()), &[])
    };
    for f in 0..frames {
        let last = write_end_stamp(stamps.as_mut(), f);
        writer.write_with(&texture, f, &[], &[], false, last)?;
        write_stamped_done(stamps.as_mut(), false)?;
        stages[f as usize % STAGES].copy(&texture, CopyDirection::Download)?;
        if f > 0 {
            publish(f - 1, &mut shm)?;
        }
    }
    if frames > 0 {
        publish(frames - 1, &mut shm)?;
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
    writer.finish()?;
    let mut report = ProduceReport {
        frames,
        seconds,
        fps: frames as f64 / seconds.max(1e-9),
        sync: "CPU copy".into(),
        consumers_connected: 1,
        cpu_us_per_frame: cpu as f64 / 1e3 / frames.max(1) as f64,
        memcpy_us_per_frame: memcpy_ns as f64 / 1e3 / frames.max(1) as f64,
        ..Default::default()
    };
    if let Some(mut s) = stamps {
        s.finished(0)?;
        (report.gpu_stamps, report.gpu_deviation_ns) = s.into_host_ns()?;
    }
    Ok(report)
}

/// (c) Consumer of the CPU-copy path: per frame, a memcpy from the ring slot into a mapped
/// buffer, the slot's release, then an upload into one of its two textures and the same GPU
/// probe as the zero-copy path, checked a couple of frames later.
pub fn run_cpu_copy_consumer(
    manager: &Arc<VulkanTextureShareManager>,
    name: &str,
    desc: &TextureDescriptor,
) -> Result<ConsumeReport> {
    let size = desc.tight_size() as usize;
    let conn = Connection::connect(name)?;
    conn.check_peer(&Default::default())?;
    let textures = (0..STAGES)
        .map(|_| manager.create_texture(desc))
        .collect::<Result<Vec<_>>>()?;
    let mut stages = (0..STAGES)
        .map(|_| Stage::new(manager, size as u64, CopyDirection::Upload))
        .collect::<Result<Vec<_>>>()?;
    let mut probes = ProbeRing::new(manager, STAGES, Some(1 << 16))?;
    let mut fds = Vec::new();
    let (tag, slots, slot_bytes, _) = recv_raw(&conn, &mut fds)?;
    let memfd = fds
        .pop()
        .ok_or_else(|| Error::Protocol("setup without its memfd".into()))?;
    if tag != SETUP || slot_bytes as usize != size || slots as usize != RING {
        return Err(Error::Protocol("unexpected CPU-copy setup".into()));
    }
    let mut shm = SharedRegion::open(memfd, RING * size)?;
    fd_passing::send(conn.as_fd(), &pack(STARTED, 0, 0, 0), &[])?;
    let mut report = ConsumeReport {
        sync: "CPU copy".into(),
        ..Default::default()
    };
    let mut latencies = Vec::with_capacity(1024);
    let (mut start, mut cpu0) = (None, 0);
    let mut n = 0usize;
    let mut memcpy_ns = 0u64;
    loop {
        let (tag, slot, frame, present_ns) = recv_raw(&conn, &mut fds)?;
        match tag {
            END => break,
            READY if (slot as usize) < RING => {}
            _ => return Err(Error::Protocol("unexpected CPU-copy message".into())),
        }
        let received = monotonic_ns();
        if start.is_none() {
            start = Some(Instant::now());
            cpu0 = cpu_time_ns();
        }
        latencies.push(received.saturating_sub(present_ns) as f64 / 1e3);
        let i = n % STAGES;
        n += 1;
        // The stage's previous upload has read its buffer before the CPU writes it again.
        stages[i].wait()?;
        let t = monotonic_ns();
        stages[i].buffer.bytes_mut()[..size].copy_from_slice(shm.slot(slot as usize, size));
        memcpy_ns += monotonic_ns() - t;
        fd_passing::send(conn.as_fd(), &pack(RELEASED, slot, frame, 0), &[])?;
        stages[i].copy(&textures[i], CopyDirection::Upload)?;
        if let Some((f, tag, result)) = probes.submit(&textures[i], frame, i, &[], &[])? {
            report.checked(f, tag, &result);
        }
    }
    while let Some((f, tag, result)) = probes.complete_oldest()? {
        report.checked(f, tag, &result);
    }
    for stage in &stages {
        stage.wait()?;
    }
    finish_consumer(&mut report, start, cpu0, &mut latencies);
    report.memcpy_us_per_frame = memcpy_ns as f64 / 1e3 / n.max(1) as f64;
    if let Some((s, deviation)) = probes.into_stamps()? {
        (report.gpu_stamps, report.gpu_deviation_ns) = (s, deviation);
    }
    report.clean_end = true;
    report.end = "end of stream".into();
    Ok(report)
}
