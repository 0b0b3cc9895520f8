//! GPU time on the host's clock: [`GpuTimestamps`], a ring of timestamp queries written by
//! command buffers, and [`Calibration`], one reading of the device's timestamp counter and
//! `CLOCK_MONOTONIC` at the same instant (`VK_KHR_calibrated_timestamps`, or its EXT form),
//! which turns GPU ticks of any process on the machine into host nanoseconds.

use ash::vk;

use super::device::SharedDevice;
use super::manager::VulkanTextureShareManager;
use crate::{Error, Result};

/// The calibration entry point, from whichever form of the extension the device enabled.
type CalibrateFn = vk::PFN_vkGetCalibratedTimestampsKHR;

/// A ring of `count` timestamp queries on one device. Record a write into a command buffer
/// with [`Self::record`], read the tick count back with [`Self::read`] once that command
/// buffer has finished, and turn ticks into host time with a [`Calibration`]
/// ([`Self::calibrate`]).
///
/// Ticks of two devices on the same GPU (two contexts or two processes) count the same clock,
/// so a calibration in each process puts both on `CLOCK_MONOTONIC`, the clock frame messages
/// are stamped with.
pub struct GpuTimestamps {
    dev: SharedDevice,
    pool: vk::QueryPool,
    count: u32,
    /// Nanoseconds per tick (`VkPhysicalDeviceLimits::timestampPeriod`).
    tick_ns: f64,
    /// Mask of the bits the queue family's timestamps carry.
    valid: u64,
    calibrate: Option<CalibrateFn>,
}

impl std::fmt::Debug for GpuTimestamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuTimestamps")
            .field("count", &self.count)
            .field("tick_ns", &self.tick_ns)
            .field("calibrated", &self.calibrate.is_some())
            .finish()
    }
}

/// The device's timestamp counter and the host clock read together: maps ticks to host
/// nanoseconds within `max_deviation_ns` (plus drift since the reading; calibrate again, or
/// interpolate between two readings, for long runs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// The device's timestamp counter.
    pub gpu_ticks: u64,
    /// `CLOCK_MONOTONIC` at the same instant, nanoseconds.
    pub host_ns: u64,
    /// The driver's bound on how far apart the two readings were, nanoseconds.
    pub max_deviation_ns: u64,
    /// Nanoseconds per tick.
    pub tick_ns: f64,
}

impl Calibration {
    /// Host time (`CLOCK_MONOTONIC`, nanoseconds) of the GPU timestamp `ticks`.
    pub fn host_ns(&self, ticks: u64) -> u64 {
        let delta = ticks as i128 - self.gpu_ticks as i128;
        let ns = self.host_ns as i128 + (delta as f64 * self.tick_ns).round() as i128;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// Host time of `ticks` interpolated between two calibrations `a` and `b` (taken in that
    /// order): the drift between the two clocks over the interval is taken out.
    pub fn interpolate(a: &Calibration, b: &Calibration, ticks: u64) -> u64 {
        let span = b.gpu_ticks as i128 - a.gpu_ticks as i128;
        if span <= 0 {
            return a.host_ns(ticks);
        }
        let host_span = b.host_ns as i128 - a.host_ns as i128;
        let delta = ticks as i128 - a.gpu_ticks as i128;
        let ns =
            a.host_ns as i128 + (delta as f64 * host_span as f64 / span as f64).round() as i128;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// The host time domain frame messages use: `CLOCK_MONOTONIC`.
#[cfg(unix)]
const HOST_DOMAIN: Option<vk::TimeDomainKHR> = Some(vk::TimeDomainKHR::CLOCK_MONOTONIC);
/// Windows stamps frames with the performance counter in nanoseconds; mapping the raw counter
/// domain is not done (compiles, never run), so calibration is unsupported there.
#[cfg(not(unix))]
const HOST_DOMAIN: Option<vk::TimeDomainKHR> = None;

impl GpuTimestamps {
    /// A ring of `count` (1..=4096) queries on `manager`'s device. [`Error::Unsupported`] when
    /// its queue family writes no timestamps. Calibration is available where the device
    /// enabled `VK_KHR_calibrated_timestamps` or `VK_EXT_calibrated_timestamps` with the device
    /// and `CLOCK_MONOTONIC` domains ([`Self::can_calibrate`]).
    pub fn new(manager: &VulkanTextureShareManager, count: u32) -> Result<Self> {
        Self::on_device(&manager.dev, count)
    }

    pub(crate) fn on_device(dev: &SharedDevice, count: u32) -> Result<Self> {
        if !(1..=4096).contains(&count) {
            return Err(Error::InvalidArgument {
                what: "timestamp queries",
                reason: format!("{count}; use 1..=4096"),
            });
        }
        // SAFETY: `physical` belongs to `instance`.
        let (families, limits) = unsafe {
            (
                dev.instance
                    .get_physical_device_queue_family_properties(dev.physical),
                dev.instance
                    .get_physical_device_properties(dev.physical)
                    .limits,
            )
        };
        let bits = families
            .get(dev.queue_family as usize)
            .map_or(0, |f| f.timestamp_valid_bits);
        if bits == 0 || limits.timestamp_period <= 0.0 {
            return Err(Error::unsupported(
                "GPU timestamps",
                format!(
                    "{}'s queue family {} writes no timestamps",
                    dev.identity.name, dev.queue_family
                ),
            ));
        }
        let info = vk::QueryPoolCreateInfo::default()
            .query_type(vk::QueryType::TIMESTAMP)
            .query_count(count);
        // SAFETY: valid create info on a live device.
        let pool = unsafe { dev.device.create_query_pool(&info, None) }
            .map_err(Error::vk("vkCreateQueryPool"))?;
        Ok(Self {
            dev: dev.clone(),
            pool,
            count,
            tick_ns: f64::from(limits.timestamp_period),
            valid: if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            },
            calibrate: calibration_fn(dev),
        })
    }

    /// Queries in the ring.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Always false: a ring has at least one query.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether [`Self::calibrate`] works on this device.
    pub fn can_calibrate(&self) -> bool {
        self.calibrate.is_some()
    }

    /// Records into `cmd` a reset of query `index` and a timestamp write at `stage`:
    /// `TOP_OF_PIPE` as the first command marks when the command buffer started (after its
    /// semaphore waits), `BOTTOM_OF_PIPE` as the last when all earlier commands finished.
    ///
    /// # Safety
    /// - `cmd` is a command buffer of this device in the recording state, outside a render
    ///   pass, on the queue family the manager submits to.
    /// - No other submission that writes query `index` is pending when this one executes, and
    ///   [`Self::read`] of it comes after this submission finished.
    pub unsafe fn record(
        &self,
        device: &ash::Device,
        cmd: vk::CommandBuffer,
        index: u32,
        stage: vk::PipelineStageFlags,
    ) {
        let index = index % self.count;
        // SAFETY: the caller's contract; the pool is ours and `index` is in range.
        unsafe {
            device.cmd_reset_query_pool(cmd, self.pool, index, 1);
            device.cmd_write_timestamp(cmd, stage, self.pool, index);
        }
    }

    /// The ticks query `index` holds, or `None` when its write has not executed yet (never
    /// waits).
    pub fn read(&self, index: u32) -> Result<Option<u64>> {
        let index = index % self.count;
        let mut out = [[0u64; 2]];
        // SAFETY: one query of our pool into a correctly sized array of (value, availability).
        let r = unsafe {
            self.dev.device.get_query_pool_results(
                self.pool,
                index,
                &mut out,
                vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WITH_AVAILABILITY,
            )
        };
        match r {
            Ok(()) | Err(vk::Result::NOT_READY) => {}
            Err(e) => return Err(Error::vk("vkGetQueryPoolResults")(e)),
        }
        let [value, available] = out[0];
        Ok((available != 0).then_some(value & self.valid))
    }

    /// Reads the timestamp counter and `CLOCK_MONOTONIC` together. Allocates nothing (safe to
    /// call in a frame loop). [`Error::Unsupported`] without the calibrated-timestamps
    /// extension ([`Self::can_calibrate`]).
    pub fn calibrate(&self) -> Result<Calibration> {
        let (Some(f), Some(host)) = (self.calibrate, HOST_DOMAIN) else {
            return Err(Error::unsupported(
                "calibrated GPU timestamps",
                format!(
                    "{} has no VK_KHR/EXT_calibrated_timestamps with the device and CLOCK_MONOTONIC domains",
                    self.dev.identity.name
                ),
            ));
        };
        let infos = [
            vk::CalibratedTimestampInfoKHR::default().time_domain(vk::TimeDomainKHR::DEVICE),
            vk::CalibratedTimestampInfoKHR::default().time_domain(host),
        ];
        let mut stamps = [0u64; 2];
        let mut deviation = 0u64;
        // SAFETY: the function belongs to this device (looked up on it); two infos, two
        // output slots, one deviation, all on the stack for the call.
        let r = unsafe {
            f(
                self.dev.device.handle(),
                2,
                infos.as_ptr(),
                stamps.as_mut_ptr(),
                &mut deviation,
            )
        };
        if r != vk::Result::SUCCESS {
            return Err(Error::vk("vkGetCalibratedTimestampsKHR")(r));
        }
        Ok(Calibration {
            gpu_ticks: stamps[0] & self.valid,
            host_ns: stamps[1],
            max_deviation_ns: deviation,
            tick_ns: self.tick_ns,
        })
    }
}

impl Drop for GpuTimestamps {
    fn drop(&mut self) {
        // SAFETY: the pool is ours; command buffers that write it must have finished (the
        // contract of `record`, whose callers wait for their submissions before dropping).
        unsafe { self.dev.device.destroy_query_pool(self.pool, None) };
    }
}

/// `vkGetCalibratedTimestamps{KHR,EXT}` of `dev`, when it enabled the extension and offers
/// the device and host domains.
fn calibration_fn(dev: &SharedDevice) -> Option<CalibrateFn> {
    let host = HOST_DOMAIN?;
    let device_fn = |name: &std::ffi::CStr| {
        // SAFETY: looking up a command of a live device; null means "not enabled".
        unsafe {
            dev.instance
                .get_device_proc_addr(dev.device.handle(), name.as_ptr())
        }
    };
    let (calibrate, domains_name) = match device_fn(c"vkGetCalibratedTimestampsKHR") {
        Some(f) => (f, c"vkGetPhysicalDeviceCalibrateableTimeDomainsKHR"),
        None => (
            device_fn(c"vkGetCalibratedTimestampsEXT")?,
            c"vkGetPhysicalDeviceCalibrateableTimeDomainsEXT",
        ),
    };
    // The physical-device query is an instance-level command: look it up through the loader
    // (already loaded by whoever made the instance; this only takes another reference).
    let entry = super::instance::load_entry().ok()?;
    // SAFETY: looking up a command of the device's live instance; null means "not offered".
    let domains_fn =
        unsafe { entry.get_instance_proc_addr(dev.instance.handle(), domains_name.as_ptr()) }?;
    // SAFETY: the looked-up pointer is vkGetPhysicalDeviceCalibrateableTimeDomains{KHR,EXT},
    // whose signature this is.
    let domains_fn = unsafe {
        std::mem::transmute::<
            unsafe extern "system" fn(),
            vk::PFN_vkGetPhysicalDeviceCalibrateableTimeDomainsKHR,
        >(domains_fn)
    };
    let mut domains = [vk::TimeDomainKHR::DEVICE; 8];
    let mut n = domains.len() as u32;
    // SAFETY: `physical` belongs to the instance; `n` says how many entries fit.
    let r = unsafe { domains_fn(dev.physical, &mut n, domains.as_mut_ptr()) };
    if r != vk::Result::SUCCESS && r != vk::Result::INCOMPLETE {
        return None;
    }
    let offered = &domains[..(n as usize).min(domains.len())];
    if !offered.contains(&vk::TimeDomainKHR::DEVICE) || !offered.contains(&host) {
        return None;
    }
    // SAFETY: the looked-up pointer is vkGetCalibratedTimestamps{KHR,EXT}, whose signature
    // this is.
    Some(unsafe { std::mem::transmute::<unsafe extern "system" fn(), CalibrateFn>(calibrate) })
}
