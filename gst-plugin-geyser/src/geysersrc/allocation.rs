//! `geysersrc`'s buffer pool: downstream's pool if it offers one, else a video pool; with
//! downstream's allocator if it offers one (shmsink's shared memory), else system memory;
//! aligned to `align` bytes so the GPU can copy straight into the buffers.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{GeyserSrc, CAT};

/// Sets up the pool for the allocation `query` and puts it first in the query.
pub(super) fn decide(
    imp: &GeyserSrc,
    query: &mut gst::query::Allocation,
    align: usize,
) -> Result<(), gst::LoggableError> {
    let (caps, _) = query.get_owned();
    let caps = caps.ok_or_else(|| gst::loggable_error!(CAT, "no caps in allocation query"))?;
    let info = gst_video::VideoInfo::from_caps(&caps)
        .map_err(|_| gst::loggable_error!(CAT, "caps without video info"))?;
    let size = info.size().div_ceil(align) * align;
    let offered = query.allocation_pools().next();
    let (min, max) = offered
        .as_ref()
        .map(|(_, _, min, max)| (*min, *max))
        .unwrap_or((0, 0));
    let min = min.max(2);
    let video_meta = query
        .find_allocation_meta::<gst_video::VideoMeta>()
        .is_some();
    // Downstream's allocator, when it offers one (shmsink: memory in its shared area),
    // with our alignment so the GPU can still copy straight into it.
    let allocator = query.allocation_params().next().and_then(|(a, _)| a);
    let configure = |pool: &gst::BufferPool| -> bool {
        let mut config = pool.config();
        config.set_params(Some(&caps), size as u32, min, max);
        let params = gst::AllocationParams::new(gst::MemoryFlags::empty(), align - 1, 0, 0);
        config.set_allocator(allocator.as_ref(), Some(&params));
        if video_meta {
            config.add_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META.as_ref());
        }
        if pool.set_config(config).is_ok() {
            return true;
        }
        // The pool adjusted the config (e.g. its own size): take its version if valid.
        let adjusted = pool.config();
        adjusted
            .validate_params(Some(&caps), size as u32, min, max)
            .is_ok()
            && pool.set_config(adjusted).is_ok()
    };
    let downstream = offered.and_then(|(pool, ..)| pool).filter(|p| configure(p));
    let pool = match downstream {
        Some(pool) => pool,
        None => {
            let pool: gst::BufferPool = gst_video::VideoBufferPool::new().upcast();
            if !configure(&pool) {
                return Err(gst::loggable_error!(CAT, "cannot configure a video pool"));
            }
            pool
        }
    };
    gst::debug!(
        CAT,
        imp = imp,
        "buffer pool {} of {size}-byte buffers",
        pool.name()
    );
    if query.allocation_pools().next().is_some() {
        query.set_nth_allocation_pool(0, Some(&pool), size as u32, min, max);
    } else {
        query.add_allocation_pool(Some(&pool), size as u32, min, max);
    }
    Ok(())
}
