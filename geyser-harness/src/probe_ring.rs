//! [`ProbeRing`]: frame checks that do not stall the loop. Up to `depth` probes are in flight;
//! each one's result is read when its place is needed again (a few frames later) or at the
//! end, so a consumer measures sharing rather than one fence round trip per frame, and still
//! checks every frame. Optionally stamps when each probe's read started on the GPU.

use std::collections::VecDeque;

use geyser::vulkan::ash::vk;
use geyser::vulkan::{TimelinePoint, VulkanTexture, VulkanTextureShareManager};
use geyser::{Error, Result};

use crate::gpu_time::{FrameStamps, HostStamps};
use crate::pattern::{ProbeReader, ProbeResult};

/// A finished probe: the frame it checked, the caller's tag, and what it found.
pub type Checked = (u64, usize, ProbeResult);

/// Up to `depth` [`ProbeReader`]s in flight, oldest read first.
pub struct ProbeRing {
    readers: Vec<ProbeReader>,
    /// In flight: reader index, frame, tag, texture (kept until the probe finished).
    in_flight: VecDeque<(usize, u64, usize, VulkanTexture)>,
    next: usize,
    stamps: Option<FrameStamps>,
}

impl std::fmt::Debug for ProbeRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeRing")
            .field("depth", &self.readers.len())
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl ProbeRing {
    /// `depth` (1..=16) probes on `manager`'s device; with `stamps`, room for that many GPU
    /// timestamps of read starts (none are taken where the device cannot calibrate them).
    pub fn new(
        manager: &VulkanTextureShareManager,
        depth: usize,
        stamps: Option<usize>,
    ) -> Result<Self> {
        if !(1..=16).contains(&depth) {
            return Err(Error::InvalidArgument {
                what: "probe depth",
                reason: format!("{depth}; use 1..=16"),
            });
        }
        let readers = (0..depth)
            .map(|_| ProbeReader::new(manager))
            .collect::<Result<Vec<_>>>()?;
        let stamps = match stamps {
            Some(n) => FrameStamps::new(manager, depth as u32, n)?,
            None => None,
        };
        Ok(Self {
            readers,
            in_flight: VecDeque::with_capacity(depth),
            next: 0,
            stamps,
        })
    }

    /// Probes in flight at most.
    pub fn depth(&self) -> usize {
        self.readers.len()
    }

    /// Submits the probe of frame `frame` in `texture` (its GPU work waits for `waits` and
    /// signals `signals`), `tag` coming back with its result. When the ring is full, first
    /// waits for the oldest probe and returns its result.
    pub fn submit(
        &mut self,
        texture: &VulkanTexture,
        frame: u64,
        tag: usize,
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
    ) -> Result<Option<Checked>> {
        let done = if self.in_flight.len() == self.readers.len() {
            self.complete_oldest()?
        } else {
            None
        };
        let index = self.next;
        self.next = (self.next + 1) % self.readers.len();
        let stamps = &mut self.stamps;
        self.readers[index].submit(texture, waits, signals, |device, cmd| {
            if let Some(s) = stamps.as_mut() {
                // SAFETY: recording on this reader's command buffer; query `index` was last
                // used by this reader's previous probe, which `complete_oldest` waited for
                // and read before this one.
                unsafe {
                    s.record(
                        device,
                        cmd,
                        frame,
                        index as u32,
                        vk::PipelineStageFlags::TOP_OF_PIPE,
                    )
                }
            }
        })?;
        self.in_flight
            .push_back((index, frame, tag, texture.clone()));
        Ok(done)
    }

    /// Waits for the oldest probe in flight and returns its result (`None`: none in flight).
    pub fn complete_oldest(&mut self) -> Result<Option<Checked>> {
        let Some((index, frame, tag, texture)) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        let result = self.readers[index].result(&texture, frame)?;
        if let Some(s) = self.stamps.as_mut() {
            // Probes finish in submission order: all but the newer ones in flight are done.
            s.finished(self.in_flight.len())?;
        }
        Ok(Some((frame, tag, result)))
    }

    /// Probes in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The read-start stamps on the host clock (frame, ns) and the calibration deviation, once
    /// every probe has completed; `None` without stamps.
    pub fn into_stamps(self) -> Result<Option<HostStamps>> {
        if !self.in_flight.is_empty() {
            return Err(Error::InvalidArgument {
                what: "probe ring",
                reason: format!("{} probes still in flight", self.in_flight.len()),
            });
        }
        self.stamps.map(FrameStamps::into_host_ns).transpose()
    }
}
