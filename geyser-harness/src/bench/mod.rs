//! What `geyser bench` and the criterion benches compare, each with the same GPU work per
//! frame (the producer fills the frame on the GPU, the consumer probes it on the GPU):
//! (a) [`run_in_process`]: two Vulkan contexts in one process, zero-copy, frames announced over
//! a channel; (b) the cross-process zero-copy path ([`crate::demo`]); (c) the CPU-copy path a
//! user would otherwise write ([`run_cpu_copy_producer`] / [`run_cpu_copy_consumer`]): GPU →
//! persistently mapped buffer → memfd shared memory → mapped buffer → GPU, no per-frame
//! allocation.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use geyser::common::TextureDescriptor;
use geyser::ipc::clock::{cpu_time_ns, monotonic_ns};
use geyser::vulkan::{SharedTimelineSemaphore, TimelinePoint, VulkanTextureShareManager};
use geyser::{Error, Result};

use crate::pattern::{PatternWriter, ProbeReader};
use crate::report::{percentile, ConsumeReport, ProduceReport};

/// Ring size of the in-process and CPU-copy paths (the IPC default, for a fair comparison).
pub const RING: usize = 3;

/// (a) Two contexts in one process share a ring of [`RING`] textures; the producer thread fills
/// frames, the consumer thread probes them. Timeline semaphores synchronize on the GPU where
/// the device exports them, else the host waits per frame. Every frame is delivered.
pub fn run_in_process(
    producer: &Arc<VulkanTextureShareManager>,
    consumer: &Arc<VulkanTextureShareManager>,
    desc: &TextureDescriptor,
    frames: u64,
) -> Result<(ProduceReport, ConsumeReport)> {
    run_in_process_ring(producer, consumer, desc, frames, RING)
}

/// [`run_in_process`] with a ring of `ring` textures (frames in flight). In timeline mode the
/// consumer also checks that the ready timeline never goes backwards.
pub fn run_in_process_ring(
    producer: &Arc<VulkanTextureShareManager>,
    consumer: &Arc<VulkanTextureShareManager>,
    desc: &TextureDescriptor,
    frames: u64,
    ring: usize,
) -> Result<(ProduceReport, ConsumeReport)> {
    if ring == 0 || ring > geyser::ipc::wire::MAX_SLOTS {
        return Err(Error::InvalidArgument {
            what: "ring",
            reason: format!("{ring} textures; use 1..=16"),
        });
    }
    let ring_len = ring as u64;
    let timeline = producer.can_share_timelines()
        && consumer.can_share_timelines()
        && producer.caps()?.timeline_semaphore_export.opaque_fd;
    let mut ring_p = Vec::with_capacity(ring);
    let mut ring_c = Vec::with_capacity(ring);
    for _ in 0..ring {
        let t = producer.create_texture(desc)?;
        ring_c.push(consumer.import(producer.export(&t)?)?);
        ring_p.push(t);
    }
    // ready: producer → consumer ("frame f written" at f + 1); released: consumer → producer.
    let sems = if timeline {
        let ready = Arc::new(SharedTimelineSemaphore::new(producer, 0)?);
        let ready_c = Arc::new(SharedTimelineSemaphore::import(consumer, ready.export()?)?);
        let released_c = Arc::new(SharedTimelineSemaphore::new(consumer, 0)?);
        let released = Arc::new(SharedTimelineSemaphore::import(
            producer,
            released_c.export()?,
        )?);
        Some((ready, ready_c, released, released_c))
    } else {
        None
    };
    let writer = PatternWriter::new(producer, desc.tight_size())?;
    let probe = ProbeReader::new(consumer)?;
    let (tx, rx) = mpsc::sync_channel::<(u64, u64)>(ring);
    let (rel_tx, rel_rx) = mpsc::channel::<u64>();
    let consumer_sems = sems.as_ref().map(|(_, r, _, rc)| (r.clone(), rc.clone()));
    let consumer_thread = std::thread::spawn(move || -> Result<ConsumeReport> {
        let mut report = ConsumeReport {
            sync: if consumer_sems.is_some() {
                "Timeline"
            } else {
                "Host"
            }
            .into(),
            ..Default::default()
        };
        let mut latencies = Vec::with_capacity(frames as usize);
        let mut start = None;
        let mut cpu0 = 0;
        let mut last_ready = 0;
        for (f, present_ns) in rx {
            let received = monotonic_ns();
            if start.is_none() {
                start = Some(Instant::now());
                cpu0 = cpu_time_ns();
            }
            latencies.push(received.saturating_sub(present_ns) as f64 / 1e3);
            let tex = &ring_c[(f % ring_len) as usize];
            let ok = match &consumer_sems {
                Some((ready, released)) => {
                    let wait = TimelinePoint {
                        semaphore: ready.clone(),
                        value: f + 1,
                    };
                    let signal = TimelinePoint {
                        semaphore: released.clone(),
                        value: f + 1,
                    };
                    let ok = probe
                        .check_synced(tex, f, &[wait], &[signal], || Ok(()))?
                        .ok();
                    let v = ready.value()?;
                    if v < last_ready {
                        return Err(Error::Protocol(format!(
                            "ready timeline went backwards: {v} after {last_ready}"
                        )));
                    }
                    last_ready = v;
                    ok
                }
                None => probe.check(tex, f)?.ok(),
            };
            report.corrupted += u64::from(!ok);
            report.frames += 1;
            let _ = rel_tx.send(f);
        }
        finish_consumer(&mut report, start, cpu0, &mut latencies);
        report.clean_end = true;
        report.end = "end of stream".into();
        Ok(report)
    });
    let start = Instant::now();
    let cpu0 = cpu_time_ns();
    let mut released_up_to: Option<u64> = None;
    for f in 0..frames {
        let slot = (f % ring_len) as usize;
        match &sems {
            Some((ready, _, released, _)) => {
                // The GPU waits for the consumer's release of the slot's previous frame.
                let waits: Vec<TimelinePoint> = if f >= ring_len {
                    vec![TimelinePoint {
                        semaphore: released.clone(),
                        value: f + 1 - ring_len,
                    }]
                } else {
                    vec![]
                };
                let signal = TimelinePoint {
                    semaphore: ready.clone(),
                    value: f + 1,
                };
                writer.write_synced(&ring_p[slot], f, &waits, &[signal], false)?;
            }
            None => {
                // Host mode: wait until the consumer released the slot's previous frame.
                if f >= ring_len {
                    while released_up_to.is_none_or(|r| r < f - ring_len) {
                        let r = rel_rx
                            .recv()
                            .map_err(|_| Error::PeerGone("consumer thread ended".into()))?;
                        released_up_to = Some(r);
                    }
                }
                writer.write(&ring_p[slot], f)?;
            }
        }
        if tx.send((f, monotonic_ns())).is_err() {
            break;
        }
    }
    drop(tx);
    let consumer_report = consumer_thread
        .join()
        .map_err(|_| Error::Protocol("consumer thread panicked".into()))??;
    writer.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    let producer_report = ProduceReport {
        frames,
        seconds,
        fps: frames as f64 / seconds.max(1e-9),
        sync: consumer_report.sync.clone(),
        // Both threads share the process: its CPU time is split evenly for the table.
        cpu_us_per_frame: (cpu_time_ns() - cpu0) as f64 / 1e3 / frames.max(1) as f64 / 2.0,
        ..Default::default()
    };
    Ok((producer_report, consumer_report))
}

fn finish_consumer(
    report: &mut ConsumeReport,
    start: Option<Instant>,
    cpu0: u64,
    latencies: &mut [f64],
) {
    report.seconds = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
    report.fps = if report.seconds > 0.0 {
        report.frames as f64 / report.seconds
    } else {
        0.0
    };
    report.cpu_us_per_frame = (cpu_time_ns() - cpu0) as f64 / 1e3 / report.frames.max(1) as f64;
    latencies.sort_by(|a, b| a.total_cmp(b));
    report.latency_p50_us = percentile(latencies, 50.0);
    report.latency_p99_us = percentile(latencies, 99.0);
    report.age_p50_us = report.latency_p50_us;
    report.age_p99_us = report.latency_p99_us;
}

/// (c) The CPU-copy path: a memfd ring over the Unix socket (Linux/Android).
#[cfg(unix)]
mod cpu_copy {
    use std::os::fd::{AsFd, OwnedFd};

    use super::*;
    use geyser::ipc::testing::{fd_passing, Connection, Listener, SharedRegion};
    use geyser::vulkan::StagingBuffer;

    const SETUP: u8 = 1;
    const READY: u8 = 2;
    const RELEASED: u8 = 3;
    const END: u8 = 4;
    const STARTED: u8 = 5;

    /// The CPU-copy path's fixed 32-byte message: tag, slot, frame (or slot bytes), timestamp.
    fn pack(tag: u8, slot: u32, a: u64, b: u64) -> [u8; 32] {
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

    fn recv_raw(conn: &Connection, fds: &mut Vec<OwnedFd>) -> Result<(u8, u32, u64, u64)> {
        let mut buf = [0u8; 64];
        let n = fd_passing::recv(conn.as_fd(), &mut buf, fds, false)?.unwrap_or(0);
        unpack(&buf[..n])
    }

    /// (c) Producer of the CPU-copy path: per frame, the same GPU fill as the zero-copy path, then
    /// a GPU readback into a persistently mapped buffer and a memcpy into a memfd ring slot.
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
        let mut staging = StagingBuffer::new(manager, size as u64)?;
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
        for f in 0..frames {
            while free.is_empty() {
                let (tag, slot, _, _) = recv_raw(&conn, &mut fds)?;
                if tag != RELEASED || slot as usize >= RING {
                    return Err(Error::Protocol("expected a release".into()));
                }
                free.push(slot);
            }
            let slot = free.pop().unwrap_or(0);
            writer.write(&texture, f)?;
            let bytes = staging.download(&texture)?;
            shm.slot(slot as usize, size).copy_from_slice(bytes);
            let now = monotonic_ns();
            fd_passing::send(conn.as_fd(), &pack(READY, slot, f, now), &[])?;
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
            sync: "CPU copy".into(),
            consumers_connected: 1,
            cpu_us_per_frame: cpu as f64 / 1e3 / frames.max(1) as f64,
            ..Default::default()
        })
    }

    /// (c) Consumer of the CPU-copy path: per frame, a memcpy from the ring slot into a mapped
    /// buffer, an upload into its texture, and the same GPU probe as the zero-copy path.
    pub fn run_cpu_copy_consumer(
        manager: &Arc<VulkanTextureShareManager>,
        name: &str,
        desc: &TextureDescriptor,
    ) -> Result<ConsumeReport> {
        let size = desc.tight_size() as usize;
        let conn = Connection::connect(name)?;
        conn.check_peer(&Default::default())?;
        let texture = manager.create_texture(desc)?;
        let mut staging = StagingBuffer::new(manager, size as u64)?;
        let probe = ProbeReader::new(manager)?;
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
            staging.bytes_mut()[..size].copy_from_slice(shm.slot(slot as usize, size));
            fd_passing::send(conn.as_fd(), &pack(RELEASED, slot, frame, 0), &[])?;
            staging.upload(&texture)?;
            report.corrupted += u64::from(!probe.check(&texture, frame)?.ok());
            report.frames += 1;
        }
        finish_consumer(&mut report, start, cpu0, &mut latencies);
        report.clean_end = true;
        report.end = "end of stream".into();
        Ok(report)
    }
}

#[cfg(unix)]
pub use cpu_copy::{run_cpu_copy_consumer, run_cpu_copy_producer};

/// (c) The CPU-copy comparison path is Unix-only (a memfd over the Unix socket): on Windows
/// this returns [`Error::Unsupported`].
#[cfg(windows)]
pub fn run_cpu_copy_producer(
    _manager: &Arc<VulkanTextureShareManager>,
    _name: &str,
    _desc: &TextureDescriptor,
    _frames: u64,
) -> Result<ProduceReport> {
    Err(cpu_copy_unsupported())
}

/// (c) The CPU-copy comparison path is Unix-only (a memfd over the Unix socket): on Windows
/// this returns [`Error::Unsupported`].
#[cfg(windows)]
pub fn run_cpu_copy_consumer(
    _manager: &Arc<VulkanTextureShareManager>,
    _name: &str,
    _desc: &TextureDescriptor,
) -> Result<ConsumeReport> {
    Err(cpu_copy_unsupported())
}

#[cfg(windows)]
fn cpu_copy_unsupported() -> Error {
    Error::unsupported(
        "the CPU-copy comparison path on Windows",
        "it shares a memfd over the Unix socket; `geyser bench` compares it on Linux only",
    )
}
