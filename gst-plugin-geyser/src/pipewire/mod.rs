//! A Geyser endpoint published as a PipeWire `Video/Source` node (feature `pipewire`), so
//! `pipewiresrc`, OBS's PipeWire source and any PipeWire client can take its frames without a
//! Geyser plugin.
//!
//! Two threads: the caller's runs PipeWire's main loop and owns the stream (formats, buffers,
//! queueing); a feed thread owns the Geyser [`Consumer`] and the GPU copier. The node owns
//! its buffers: one memfd per PipeWire buffer, mapped here and imported into Vulkan once, so
//! each frame costs one GPU copy into memory the consumers map (no CPU copy). The loop hands
//! the feed thread an empty buffer, the feed thread fills it with the next frame and hands it
//! back, the loop queues it and drives the graph (the node is its own driver).
//!
//! PipeWire never sees a Geyser texture: DMA-BUF export of the shared textures is not there
//! yet (and lavapipe, which CI runs, exports no DMA-BUF PipeWire could use), so MemFd is what
//! the node offers.

mod feed;
mod node;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use geyser::ipc::Consumer;
use geyser::Result;

use crate::props::SyncChoice;

/// How [`publish`] publishes.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// The node's `node.name` (what `pipewiresrc target-object=` names).
    pub node_name: String,
    /// Frame rate announced in the format (frames go out as the producer presents them).
    pub framerate: (u32, u32),
    /// Vulkan device (as `GEYSER_DEVICE`; empty: the environment's or the best).
    pub device: String,
    /// Sync mode with the Geyser producer.
    pub sync: SyncChoice,
    /// How long to wait for the producer at start.
    pub connect_timeout: Duration,
    /// Every frame: take frames from a lossless producer one by one, each waiting for a free
    /// PipeWire buffer (the producer waits in turn), instead of the newest frame whenever a
    /// buffer is free.
    pub lossless: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            node_name: "geyser".into(),
            framerate: (30, 1),
            device: String::new(),
            sync: SyncChoice::Auto,
            connect_timeout: Duration::from_secs(10),
            lossless: false,
        }
    }
}

/// What a [`publish`] run did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PublishStats {
    /// Frames queued to PipeWire.
    pub frames: u64,
    /// Of those, copied by the GPU straight into the PipeWire buffer.
    pub direct: u64,
    /// Of those, copied through a staging buffer (no host-memory import on this device).
    pub staged: u64,
    /// Producer frames nobody asked for (every PipeWire buffer was with consumers).
    pub dropped: u64,
    /// Seconds from the first frame filled to the last.
    pub seconds: f64,
    /// CPU time of this process (all threads) per frame over those seconds, microseconds.
    pub cpu_us_per_frame: f64,
}

/// Publishes the Geyser endpoint `endpoint` as a PipeWire Video/Source node and serves it
/// until the producer ends its stream (`Ok`), `stop` turns true (`Ok`), or a failure (the
/// producer dies, PipeWire goes away: `Err`). Blocks the calling thread, which runs
/// PipeWire's loop. Needs a running PipeWire daemon (`PIPEWIRE_REMOTE` or
/// `$XDG_RUNTIME_DIR/pipewire-0`).
pub fn publish(
    endpoint: &str,
    options: &PublishOptions,
    stop: Arc<AtomicBool>,
) -> Result<PublishStats> {
    let consumer = feed::connect(endpoint, options)?;
    node::run(consumer, options, stop)
}

/// The consumer the feed thread takes over, with what the node needs to know of it.
pub(crate) struct Source {
    pub consumer: Consumer,
    pub manager: Arc<geyser::vulkan::VulkanTextureShareManager>,
}
