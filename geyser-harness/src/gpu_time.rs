//! GPU timestamps of the loops on the host clock: [`FrameStamps`] writes one timestamp per
//! frame into a command buffer (when the producer's write finished, when the consumer's read
//! started), reads it once that submission has finished, and turns it into `CLOCK_MONOTONIC`
//! nanoseconds with calibrations taken along the run. A producer's and a consumer's stamps of
//! the same frame give the **GPU handoff**: last write finished → first read started.

use std::time::{Duration, Instant};

use geyser::vulkan::ash::vk;
use geyser::vulkan::{Calibration, GpuTimestamps, VulkanTextureShareManager};
use geyser::Result;

/// Calibrate again after this long, so drift between the GPU and host clocks is interpolated
/// away.
const RECALIBRATE: Duration = Duration::from_millis(100);

/// Stamps on the host clock, (frame, `CLOCK_MONOTONIC` ns) each, and the largest deviation of
/// the calibrations behind them (ns).
pub type HostStamps = (Vec<(u64, u64)>, u64);

/// Timestamps of frames, one per frame, in a ring of `queries` queries.
#[derive(Debug)]
pub struct FrameStamps {
    queries: GpuTimestamps,
    /// Frames recorded and not read yet: (frame, query index).
    pending: std::collections::VecDeque<(u64, u32)>,
    ticks: Vec<(u64, u64)>,
    calibrations: Vec<Calibration>,
    calibrated_at: Instant,
    lost: u64,
}

impl FrameStamps {
    /// Stamps on `manager`'s device with a ring of `queries` queries, room for `frames`
    /// samples without allocating; `None` when the device cannot put its timestamps on the
    /// host clock (no calibrated timestamps).
    pub fn new(
        manager: &VulkanTextureShareManager,
        queries: u32,
        frames: usize,
    ) -> Result<Option<Self>> {
        let queries = match GpuTimestamps::new(manager, queries) {
            Ok(q) if q.can_calibrate() => q,
            Ok(_) | Err(geyser::Error::Unsupported { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let first = queries.calibrate()?;
        let mut calibrations = Vec::with_capacity(1024);
        calibrations.push(first);
        Ok(Some(Self {
            pending: std::collections::VecDeque::with_capacity(queries.len() as usize),
            queries,
            ticks: Vec::with_capacity(frames.max(16)),
            calibrations,
            calibrated_at: Instant::now(),
            lost: 0,
        }))
    }

    /// Records frame `frame`'s timestamp into query `index` of `cmd` (see
    /// [`GpuTimestamps::record`]); [`Self::finished`] reads it once the submission is done.
    ///
    /// # Safety
    /// The contract of [`GpuTimestamps::record`]; in particular the submission that last used
    /// query `index` has finished and was passed to [`Self::finished`].
    pub unsafe fn record(
        &mut self,
        device: &geyser::vulkan::ash::Device,
        cmd: vk::CommandBuffer,
        frame: u64,
        index: u32,
        stage: vk::PipelineStageFlags,
    ) {
        // SAFETY: the caller's contract.
        unsafe { self.queries.record(device, cmd, index, stage) };
        self.pending.push_back((frame, index));
    }

    /// Reads the stamps recorded so far except the newest `keep` (whose submissions may still
    /// run; all older ones must have finished), oldest first.
    pub fn finished(&mut self, keep: usize) -> Result<()> {
        while self.pending.len() > keep {
            let Some((f, index)) = self.pending.pop_front() else {
                break;
            };
            match self.queries.read(index)? {
                Some(t) if self.ticks.len() < self.ticks.capacity() => self.ticks.push((f, t)),
                _ => self.lost += 1,
            }
        }
        if self.calibrated_at.elapsed() >= RECALIBRATE
            && self.calibrations.len() < self.calibrations.capacity()
        {
            self.calibrations.push(self.queries.calibrate()?);
            self.calibrated_at = Instant::now();
        }
        Ok(())
    }

    /// Frames recorded and not read yet (their submissions may still run).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Every frame's stamp on the host clock (frame, `CLOCK_MONOTONIC` ns), after a final
    /// calibration, and the largest calibration deviation the driver reported (ns).
    pub fn into_host_ns(mut self) -> Result<HostStamps> {
        self.calibrations.push(self.queries.calibrate()?);
        let cals = &self.calibrations;
        let deviation = cals.iter().map(|c| c.max_deviation_ns).max().unwrap_or(0);
        let host = self
            .ticks
            .iter()
            .map(|&(f, t)| {
                // The calibrations on either side of the stamp (they are in time order).
                let after = cals.partition_point(|c| c.gpu_ticks <= t);
                let ns = match (after.checked_sub(1), cals.get(after)) {
                    (Some(a), Some(b)) => Calibration::interpolate(&cals[a], b, t),
                    (Some(a), None) => cals[a].host_ns(t),
                    (None, _) => cals[0].host_ns(t),
                };
                (f, ns)
            })
            .collect();
        if self.lost > 0 {
            tracing::warn!("{} GPU timestamps were not available", self.lost);
        }
        Ok((host, deviation))
    }
}

/// Per-frame differences `later - earlier` (µs) of two stamp lists joined on the frame
/// number, e.g. consumer read start − producer write end. Sorted.
pub fn handoffs_us(earlier: &[(u64, u64)], later: &[(u64, u64)]) -> Vec<f64> {
    let mut by_frame: std::collections::HashMap<u64, u64> = earlier.iter().copied().collect();
    let mut out: Vec<f64> = later
        .iter()
        .filter_map(|(f, t)| {
            let e = by_frame.remove(f)?;
            Some((*t as f64 - e as f64) / 1e3)
        })
        .collect();
    out.sort_by(|a, b| a.total_cmp(b));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoffs_join_on_frame_numbers() {
        let producer = [(0, 1_000), (1, 2_000), (2, 3_000)];
        let consumer = [(2, 3_500), (0, 11_000), (7, 9)];
        assert_eq!(handoffs_us(&producer, &consumer), vec![0.5, 10.0]);
    }
}
