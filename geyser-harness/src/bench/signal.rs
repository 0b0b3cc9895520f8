//! How long a timeline semaphore's signal takes to start a GPU queue that waits for it, with
//! none of Geyser's protocol in between: the floor under the GPU handoff that `geyser bench
//! latency` measures between processes. Each sample submits the waiting side first (a command
//! buffer that waits for the value, then writes a `TOP_OF_PIPE` timestamp), leaves it pending
//! on the GPU for a lead time, then signals:
//! - [`SignalPath::SameQueue`]: from a command buffer submitted after it on the same queue of
//!   the same context (the signal's submission first, so the queue cannot deadlock; here the
//!   wait is submitted second and is not pending for the lead time);
//! - [`SignalPath::OtherContext`]: from a command buffer of a second context (`VkDevice`) in
//!   this process, through a timeline exported by one and imported by the other: the
//!   cross-process case without the process boundary, which the GPU does not see;
//! - [`SignalPath::Host`]: `vkSignalSemaphore` on the CPU.
//!
//! And the other way, [`SignalPath::OtherContextToHost`]: a thread blocked in
//! `vkWaitSemaphores` on the imported timeline, until it returns. Two controls of the host
//! path tell whether exportable timelines are slower in themselves:
//! [`SignalPath::HostExportable`] waits on an exportable timeline of the waiting context, and
//! in [`SignalPath::HostSignalingExportable`] the waiting submission also signals one.
//!
//! The signal side's stamp is a `BOTTOM_OF_PIPE` timestamp just before the signal (GPU
//! signals) or `CLOCK_MONOTONIC` just before the call (host); GPU timestamps are put on
//! `CLOCK_MONOTONIC` with a calibration taken right after each sample (one for both stamps of
//! the same queue, whose difference is then exact).

use std::sync::Arc;
use std::time::Duration;

use geyser::ipc::clock::monotonic_ns;
use geyser::vulkan::ash::vk;
use geyser::vulkan::{
    Calibration, GpuTimestamps, SharedTimelineSemaphore, Submitter, TimelinePoint,
    VulkanTextureShareManager, SUBMIT_TIMEOUT,
};
use geyser::{Error, Result};
use serde::Serialize;

use crate::report::percentile;

/// Who signals the timeline the GPU waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SignalPath {
    /// A later submission on the same queue.
    SameQueue,
    /// A submission of another context (`VkDevice`), through an exported timeline.
    OtherContext,
    /// The CPU (`vkSignalSemaphore`).
    Host,
    /// Another context's submission, waited for on the CPU (`vkWaitSemaphores`).
    OtherContextToHost,
    /// The CPU, on an exportable timeline (made by the waiting context, not imported).
    HostExportable,
    /// The CPU, on a local timeline; the waiting submission also signals an exportable one.
    HostSignalingExportable,
}

impl SignalPath {
    /// Every path, in table order.
    pub const ALL: [SignalPath; 6] = [
        Self::SameQueue,
        Self::OtherContext,
        Self::Host,
        Self::OtherContextToHost,
        Self::HostExportable,
        Self::HostSignalingExportable,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::SameQueue => "GPU → GPU, same queue",
            Self::OtherContext => "GPU → GPU, other context",
            Self::Host => "host → GPU",
            Self::OtherContextToHost => "GPU → host, other context",
            Self::HostExportable => "host → GPU, exportable",
            Self::HostSignalingExportable => "host → GPU, signaling one",
        }
    }
}

/// Signal → the waiting queue's first command, µs (sorted samples and their summary).
#[derive(Clone, Debug, Serialize)]
pub struct SignalLatency {
    /// Who signaled.
    pub path: SignalPath,
    /// Median µs.
    pub p50_us: f64,
    /// 99th percentile µs.
    pub p99_us: f64,
    /// Smallest sample µs.
    pub min_us: f64,
    /// The largest deviation of the calibrations behind the samples, µs.
    pub deviation_us: f64,
    /// Samples.
    pub samples: usize,
}

/// Both contexts' queries and submitters.
struct Side {
    stamps: GpuTimestamps,
    submit: Submitter,
}

impl Side {
    fn new(manager: &VulkanTextureShareManager) -> Result<Self> {
        let stamps = GpuTimestamps::new(manager, 2)?;
        if !stamps.can_calibrate() {
            // The same error the calibration itself gives.
            stamps.calibrate()?;
        }
        Ok(Self {
            stamps,
            submit: Submitter::new(manager, 2)?,
        })
    }

    /// Submits a command buffer that writes timestamp `index` at `stage`, after `waits` and
    /// before `signals`.
    fn stamp(
        &self,
        index: u32,
        stage: vk::PipelineStageFlags,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
    ) -> Result<()> {
        self.submit.submit(
            // SAFETY: recording on this side's command buffer, on its device's queue family;
            // the query is written by this submission only, and read after `finish`.
            |device, cmd| unsafe { self.stamps.record(device, cmd, index, stage) },
            waits,
            signals,
            false,
        )
    }

    /// Waits for this side's submissions; then timestamps `indices` on `CLOCK_MONOTONIC`
    /// (one calibration for all) and the calibration's deviation.
    fn finish<const N: usize>(&self, indices: [u32; N]) -> Result<([u64; N], u64)> {
        self.submit.drain(SUBMIT_TIMEOUT)?;
        let mut ticks = [0; N];
        for (t, &index) in ticks.iter_mut().zip(&indices) {
            *t = self.stamps.read(index)?.ok_or_else(|| {
                Error::Internal("a finished submission's timestamp is not available".into())
            })?;
        }
        let c: Calibration = self.stamps.calibrate()?;
        Ok((ticks.map(|t| c.host_ns(t)), c.max_deviation_ns))
    }
}

/// Measures `samples` signals of `path`, each waited for after `lead` (see the module).
/// [`Error::Unsupported`] when the device has no calibrated timestamps or timelines, or (for
/// [`SignalPath::OtherContext`]) cannot export them.
pub fn measure_signal(path: SignalPath, samples: usize, lead: Duration) -> Result<SignalLatency> {
    let a = VulkanTextureShareManager::create_default()?;
    let waiter = Side::new(&a)?;
    let (b, signaler_timeline, waiter_timeline) = match path {
        SignalPath::OtherContext | SignalPath::OtherContextToHost => {
            let b = VulkanTextureShareManager::create_default()?;
            let theirs = SharedTimelineSemaphore::new(&b, 0)?;
            let ours = SharedTimelineSemaphore::import(&a, theirs.export()?)?;
            (Some(b), Some(Arc::new(theirs)), Arc::new(ours))
        }
        SignalPath::HostExportable => (None, None, Arc::new(SharedTimelineSemaphore::new(&a, 0)?)),
        SignalPath::SameQueue | SignalPath::Host | SignalPath::HostSignalingExportable => {
            (None, None, Arc::new(SharedTimelineSemaphore::local(&a, 0)?))
        }
    };
    // HostSignalingExportable: what the waiting submission signals besides.
    let also = match path {
        SignalPath::HostSignalingExportable => Some(Arc::new(SharedTimelineSemaphore::new(&a, 0)?)),
        _ => None,
    };
    let signaler = b.as_ref().map(Side::new).transpose()?;
    let mut us = Vec::with_capacity(samples);
    let mut deviation = 0;
    for value in 1..=samples as u64 {
        let wait = [TimelinePoint {
            semaphore: waiter_timeline.clone(),
            value,
        }];
        let top = vk::PipelineStageFlags::TOP_OF_PIPE;
        let bottom = vk::PipelineStageFlags::BOTTOM_OF_PIPE;
        let (signaled, started, dev) = match path {
            SignalPath::SameQueue => {
                waiter.stamp(0, bottom, &[], &wait)?;
                waiter.stamp(1, top, &wait, &[])?;
                let ([signaled, started], dev) = waiter.finish([0, 1])?;
                (signaled, started, dev)
            }
            SignalPath::OtherContext => {
                waiter.stamp(1, top, &wait, &[])?;
                std::thread::sleep(lead);
                let ([signaled], dev) = signal_from(&signaler, &signaler_timeline, value)?;
                let ([started], dev2) = waiter.finish([1])?;
                (signaled, started, dev + dev2)
            }
            SignalPath::Host | SignalPath::HostExportable | SignalPath::HostSignalingExportable => {
                let also: Vec<TimelinePoint> = also
                    .iter()
                    .map(|t| TimelinePoint {
                        semaphore: t.clone(),
                        value,
                    })
                    .collect();
                waiter.stamp(1, top, &wait, &also)?;
                std::thread::sleep(lead);
                let signaled = monotonic_ns();
                waiter_timeline.signal(value)?;
                let ([started], dev) = waiter.finish([1])?;
                (signaled, started, dev)
            }
            SignalPath::OtherContextToHost => {
                let timeline = waiter_timeline.clone();
                let blocked = std::thread::spawn(move || -> Result<u64> {
                    timeline.wait(value, SUBMIT_TIMEOUT)?;
                    Ok(monotonic_ns())
                });
                std::thread::sleep(lead);
                let ([signaled], dev) = signal_from(&signaler, &signaler_timeline, value)?;
                let started = blocked
                    .join()
                    .map_err(|_| Error::Internal("the waiting thread panicked".into()))??;
                (signaled, started, dev)
            }
        };
        deviation = deviation.max(dev);
        let sample = (started as f64 - signaled as f64) / 1e3;
        // A wait that ended before its signal would be a broken measurement (or driver).
        if sample < -(dev as f64 / 1e3) - 1.0 {
            return Err(Error::Internal(format!(
                "{}: the wait ended {:.1} µs before the signal (calibration deviation {dev} ns)",
                path.name(),
                -sample,
            )));
        }
        us.push(sample);
    }
    us.sort_by(|x, y| x.total_cmp(y));
    Ok(SignalLatency {
        path,
        p50_us: percentile(&us, 50.0),
        p99_us: percentile(&us, 99.0),
        min_us: us.first().copied().unwrap_or(0.0),
        deviation_us: deviation as f64 / 1e3,
        samples: us.len(),
    })
}

/// Signals `value` on the second context after a `BOTTOM_OF_PIPE` timestamp; that stamp on
/// `CLOCK_MONOTONIC` once done.
fn signal_from(
    signaler: &Option<Side>,
    timeline: &Option<Arc<SharedTimelineSemaphore>>,
    value: u64,
) -> Result<([u64; 1], u64)> {
    let (Some(signaler), Some(timeline)) = (signaler, timeline) else {
        return Err(Error::Internal("no second context".into()));
    };
    let signal = [TimelinePoint {
        semaphore: timeline.clone(),
        value,
    }];
    signaler.stamp(0, vk::PipelineStageFlags::BOTTOM_OF_PIPE, &[], &signal)?;
    signaler.finish([0])
}
