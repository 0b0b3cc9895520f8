//! [`Submitter`]: the submission path of Geyser's own GPU work, and of applications that record
//! theirs on a manager's device: a command pool with a ring of command buffers and fences,
//! submitting through the manager's queue lock with timeline waits/signals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ash::vk;

use super::device::SharedDevice;
use super::manager::VulkanTextureShareManager;
use super::sync::{SharedSemaphore, SharedTimelineSemaphore};
use crate::{Error, Result};

/// A timeline value to wait for or signal in a submission.
#[derive(Clone, Debug)]
pub struct TimelinePoint {
    /// The timeline.
    pub semaphore: Arc<SharedTimelineSemaphore>,
    /// The value.
    pub value: u64,
}

/// Most timeline waits or signals in one submission (one per consumer at most).
pub const MAX_POINTS: usize = 32;

/// Longest host wait for one of Geyser's own submissions: a peer that died before signaling
/// what the submission waits on gives an error instead of a hang.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(5);

struct InFlight {
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    submitted: bool,
    /// Semaphores the submission uses, kept alive until its fence signals.
    keep: Vec<Arc<SharedTimelineSemaphore>>,
    /// Binary semaphores the submission uses, likewise.
    keep_binary: Vec<Arc<SharedSemaphore>>,
}

/// A command pool with a ring of `depth` command buffers and fences on one manager's device;
/// submits through the manager's queue lock, optionally waiting for and signaling timeline
/// values. Up to `depth` submissions are in flight; the next one waits for the oldest.
///
/// ```no_run
/// # use geyser::vulkan::{ash::vk, Submitter, VulkanTextureShareManager, SUBMIT_TIMEOUT};
/// # fn main() -> geyser::Result<()> {
/// let manager = VulkanTextureShareManager::create_default()?;
/// let submitter = Submitter::new(&manager, 2)?;
/// submitter.submit(|device, cmd| { /* record with `device.cmd_*(cmd, ..)` */ }, &[], &[], false)?;
/// submitter.drain(SUBMIT_TIMEOUT)?; // every submission has finished
/// # Ok(()) }
/// ```
pub struct Submitter {
    pub(crate) dev: SharedDevice,
    pool: vk::CommandPool,
    ring: Mutex<(Vec<InFlight>, usize)>,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter")
            .field("queue_family", &self.dev.queue_family)
            .finish_non_exhaustive()
    }
}

impl Submitter {
    /// A submitter with `depth` (at least 1) command buffers on `manager`'s device. Fails with
    /// [`Error::Unsupported`] when the device's queue belongs to another API, such as wgpu
    /// (record the work in that API instead).
    pub fn new(manager: &VulkanTextureShareManager, depth: usize) -> Result<Self> {
        Self::on_device(&manager.dev, depth)
    }

    /// The queue family its command buffers are for (the manager's).
    pub fn queue_family(&self) -> u32 {
        self.dev.queue_family
    }

    pub(crate) fn on_device(dev: &SharedDevice, depth: usize) -> Result<Self> {
        if depth == 0 {
            return Err(Error::InvalidArgument {
                what: "submitter depth",
                reason: "0 command buffers; use at least 1".into(),
            });
        }
        if dev.queue_is_foreign() {
            return Err(Error::unsupported(
                "Geyser submissions",
                "this device's queue belongs to the API it was opened through (e.g. wgpu); record the work in that API instead",
            ));
        }
        let device = &dev.device;
        let info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(dev.queue_family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: valid create info on a live device.
        let pool = unsafe { device.create_command_pool(&info, None) }
            .map_err(Error::vk("vkCreateCommandPool"))?;
        let s = Submitter {
            dev: dev.clone(),
            pool,
            ring: Mutex::new((Vec::new(), 0)),
        };
        let alloc = vk::CommandBufferAllocateInfo::default()
            .command_pool(pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(depth as u32);
        // SAFETY: `pool` is ours.
        let cmds = unsafe { device.allocate_command_buffers(&alloc) }
            .map_err(Error::vk("vkAllocateCommandBuffers"))?;
        let mut ring = s.ring.lock().unwrap_or_else(|p| p.into_inner());
        for cmd in cmds {
            // SAFETY: valid create info.
            let fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
                .map_err(Error::vk("vkCreateFence"))?;
            ring.0.push(InFlight {
                cmd,
                fence,
                submitted: false,
                keep: Vec::new(),
                keep_binary: Vec::new(),
            });
        }
        drop(ring);
        Ok(s)
    }

    fn wait_slot(dev: &SharedDevice, slot: &mut InFlight, timeout: Duration) -> Result<()> {
        if !slot.submitted {
            return Ok(());
        }
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: the fence belongs to this device and was submitted.
        match unsafe { dev.device.wait_for_fences(&[slot.fence], true, ns) } {
            Ok(()) => {}
            Err(vk::Result::TIMEOUT) => {
                return Err(Error::Timeout(format!(
                    "GPU work did not finish within {timeout:?} (a semaphore it waits on was never signaled: peer gone?)"
                )))
            }
            Err(e) => return Err(Error::vk("vkWaitForFences")(e)),
        }
        // SAFETY: signaled, so no longer in use.
        unsafe { dev.device.reset_fences(&[slot.fence]) }.map_err(Error::vk("vkResetFences"))?;
        slot.submitted = false;
        slot.keep.clear();
        slot.keep_binary.clear();
        Ok(())
    }

    /// Records with `record` (the command buffer is begun and ended around it), submits with
    /// the given timeline waits (all stages wait) and signals; with `block`, waits for
    /// completion before returning. The semaphores stay alive until the submission finishes;
    /// everything else `record` uses must outlive it too (wait with [`Self::drain`] before
    /// dropping it). At most [`MAX_POINTS`] waits and signals each.
    pub fn submit(
        &self,
        record: impl FnOnce(&ash::Device, vk::CommandBuffer),
        waits: &[TimelinePoint],
        signals: &[TimelinePoint],
        block: bool,
    ) -> Result<()> {
        self.submit_inner(Some(record), waits, &[], signals, &[], block)
    }

    /// A submission without commands that waits for `waits` and the binary semaphores
    /// `binary_waits`, then signals `signals` and `binary_signals`: how the binary-semaphore
    /// IPC mode turns a peer's binary semaphores into local timeline points and back. Each
    /// binary wait must follow a signal already submitted (here or, for a shared payload, by
    /// the peer), and each binary signal an executed wait. Does not block.
    #[cfg_attr(not(feature = "ipc"), allow(dead_code))]
    pub(crate) fn relay(
        &self,
        waits: &[TimelinePoint],
        binary_waits: &[&Arc<SharedSemaphore>],
        signals: &[TimelinePoint],
        binary_signals: &[&Arc<SharedSemaphore>],
    ) -> Result<()> {
        self.submit_inner(
            None::<fn(&ash::Device, vk::CommandBuffer)>,
            waits,
            binary_waits,
            signals,
            binary_signals,
            false,
        )
    }

    fn submit_inner(
        &self,
        record: Option<impl FnOnce(&ash::Device, vk::CommandBuffer)>,
        waits: &[TimelinePoint],
        binary_waits: &[&Arc<SharedSemaphore>],
        signals: &[TimelinePoint],
        binary_signals: &[&Arc<SharedSemaphore>],
        block: bool,
    ) -> Result<()> {
        let (nw, ns) = (
            waits.len() + binary_waits.len(),
            signals.len() + binary_signals.len(),
        );
        if nw > MAX_POINTS || ns > MAX_POINTS {
            return Err(Error::InvalidArgument {
                what: "semaphore points",
                reason: format!("{nw} waits and {ns} signals; at most {MAX_POINTS} each"),
            });
        }
        let device = &self.dev.device;
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let (slots, next) = &mut *ring;
        let idx = *next;
        *next = (*next + 1) % slots.len();
        let slot = &mut slots[idx];
        Self::wait_slot(&self.dev, slot, SUBMIT_TIMEOUT)?;
        let has_commands = record.is_some();
        if let Some(record) = record {
            let begin = vk::CommandBufferBeginInfo::default()
                .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
            // SAFETY: the command buffer is idle (its fence was waited above); `record` records
            // commands on handles of this device.
            unsafe {
                device
                    .begin_command_buffer(slot.cmd, &begin)
                    .map_err(Error::vk("vkBeginCommandBuffer"))?;
                record(device, slot.cmd);
                device
                    .end_command_buffer(slot.cmd)
                    .map_err(Error::vk("vkEndCommandBuffer"))?;
            }
        }
        // Fixed-size arrays on the stack: this runs every frame and must not allocate. Binary
        // semaphores follow the timelines; their values are ignored.
        let mut wait_sems = [vk::Semaphore::null(); MAX_POINTS];
        let mut wait_vals = [0u64; MAX_POINTS];
        let wait_stages = [vk::PipelineStageFlags::ALL_COMMANDS; MAX_POINTS];
        let mut sig_sems = [vk::Semaphore::null(); MAX_POINTS];
        let mut sig_vals = [0u64; MAX_POINTS];
        for (i, w) in waits.iter().enumerate() {
            (wait_sems[i], wait_vals[i]) = (w.semaphore.raw(), w.value);
        }
        for (i, b) in binary_waits.iter().enumerate() {
            wait_sems[waits.len() + i] = b.raw();
        }
        for (i, w) in signals.iter().enumerate() {
            (sig_sems[i], sig_vals[i]) = (w.semaphore.raw(), w.value);
        }
        for (i, b) in binary_signals.iter().enumerate() {
            sig_sems[signals.len() + i] = b.raw();
        }
        let (wait_sems, wait_vals, wait_stages) =
            (&wait_sems[..nw], &wait_vals[..nw], &wait_stages[..nw]);
        let (sig_sems, sig_vals) = (&sig_sems[..ns], &sig_vals[..ns]);
        let mut timeline = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(wait_vals)
            .signal_semaphore_values(sig_vals);
        let cmds = [slot.cmd];
        let cmds: &[vk::CommandBuffer] = if has_commands { &cmds } else { &[] };
        let mut submit = vk::SubmitInfo::default()
            .command_buffers(cmds)
            .wait_semaphores(wait_sems)
            .wait_dst_stage_mask(wait_stages)
            .signal_semaphores(sig_sems);
        if !waits.is_empty() || !signals.is_empty() {
            submit = submit.push_next(&mut timeline);
        }
        {
            let q = self.dev.lock_queue();
            // SAFETY: the queue is externally synchronized by the lock; the fence is
            // unsignaled; semaphores are kept alive in `slot.keep*` until the fence signals.
            unsafe { device.queue_submit(q.queue, &[submit], slot.fence) }
                .map_err(Error::vk("vkQueueSubmit"))?;
        }
        slot.submitted = true;
        slot.keep
            .extend(waits.iter().chain(signals).map(|p| p.semaphore.clone()));
        slot.keep_binary.extend(
            binary_waits
                .iter()
                .chain(binary_signals)
                .map(|b| Arc::clone(b)),
        );
        if block {
            Self::wait_slot(&self.dev, slot, SUBMIT_TIMEOUT)?;
        }
        Ok(())
    }

    /// Waits for every submission still in flight (at most `timeout` for each);
    /// [`Error::Timeout`] when one never finishes, e.g. because it waits on a timeline a dead
    /// peer never signals.
    pub fn drain(&self, timeout: Duration) -> Result<()> {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        for slot in ring.0.iter_mut() {
            Self::wait_slot(&self.dev, slot, timeout)?;
        }
        Ok(())
    }
}

impl Drop for Submitter {
    fn drop(&mut self) {
        let ring = self.ring.get_mut().unwrap_or_else(|p| p.into_inner());
        for slot in ring.0.iter_mut() {
            if let Err(e) = Self::wait_slot(&self.dev, slot, SUBMIT_TIMEOUT) {
                // Never free what the GPU may still use: wait for the whole device instead.
                tracing::warn!("{e}; waiting for the device before freeing command buffers");
                // SAFETY: waiting for idle has no preconditions.
                let _ = unsafe { self.dev.device.device_wait_idle() };
            }
        }
        // SAFETY: nothing of ours is in flight any more (waited above).
        unsafe {
            for slot in ring.0.iter() {
                self.dev.device.destroy_fence(slot.fence, None);
            }
            self.dev.device.destroy_command_pool(self.pool, None);
        }
    }
}
