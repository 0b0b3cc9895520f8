//! Command-line pieces shared by the CLI and the paired examples: size and sync-mode parsers,
//! the producer and consumer arguments, and a retry for a producer that is still starting.

use std::time::{Duration, Instant};

use geyser::common::TextureFormat;
use geyser::ipc::SyncMode;
use geyser::{Error, Result};

/// Parses `WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    let bad = || Error::InvalidArgument {
        what: "size",
        reason: format!("`{s}` is not WIDTHxHEIGHT"),
    };
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    ))
}

/// Parses a sync mode name: `auto` (None), `host`, `binary`, `timeline`.
pub fn parse_sync(s: &str) -> Result<Option<SyncMode>> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(None),
        "host" => Ok(Some(SyncMode::Host)),
        "binary" => Ok(Some(SyncMode::BinarySemaphore)),
        "timeline" => Ok(Some(SyncMode::Timeline)),
        _ => Err(Error::InvalidArgument {
            what: "sync mode",
            reason: format!("`{s}`; use auto, host, binary or timeline"),
        }),
    }
}

/// Retries `f` while it fails with [`Error::NotFound`] (a producer still starting), up to
/// `timeout`.
pub fn retry_not_found<T>(timeout: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Err(Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => return other,
        }
    }
}

/// What a verifying producer example takes (`ipc_producer`, `wgpu_producer`).
#[derive(clap::Args, Clone, Debug)]
pub struct ProducerArgs {
    /// Endpoint name (a socket in $XDG_RUNTIME_DIR/geyser/).
    #[arg(long, default_value = "geyser-demo")]
    pub name: String,
    /// Frames to stream (0: forever).
    #[arg(long, default_value_t = 600)]
    pub frames: u64,
    /// Frame size, WIDTHxHEIGHT (default: the example's).
    #[arg(long)]
    pub size: Option<String>,
    /// Textures in the ring.
    #[arg(long, default_value_t = 3)]
    pub slots: usize,
    /// Consumers to wait for before streaming.
    #[arg(long, default_value_t = 1)]
    pub wait: usize,
    /// Deliver every frame to every consumer (the producer waits for slow ones).
    #[arg(long)]
    pub lossless: bool,
    /// Sync mode: auto, host, binary, timeline.
    #[arg(long, default_value = "auto")]
    pub sync: String,
    /// Pause between frames, in milliseconds.
    #[arg(long)]
    pub interval_ms: Option<u64>,
    /// Who may connect: same-user, any-user, uids:UID[,UID…].
    #[arg(long, default_value = "same-user")]
    pub policy: String,
    /// Who, of those, gets zero-copy (the others get their own host ring): same-user,
    /// any-user, uids:UID[,UID…] or none.
    #[arg(long, default_value = "same-user")]
    pub trust: String,
    /// Memory of the ring: opaque (same GPU and driver), dma-buf (the driver's DMA-BUF
    /// export, LINEAR or a DRM modifier), host-dma-buf (a memfd imported as a DMA-BUF: for
    /// CPU drivers such as lavapipe/llvmpipe).
    #[arg(long, default_value = "opaque")]
    pub memory: String,
    /// What frames show: `picture` (the frame word's band, a moving gradient and the frame
    /// number) or `solid` (the frame word in every texel, for consumers that check every
    /// texel). The probes accept both.
    #[arg(long, default_value = "picture", value_parser = ["picture", "solid"])]
    pub pattern: String,
}

/// Parses a ring memory name: `opaque`, `dma-buf`, `host-dma-buf`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn parse_memory(s: &str) -> Result<geyser::vulkan::TextureMemory> {
    use geyser::vulkan::TextureMemory;
    match s.to_ascii_lowercase().as_str() {
        "opaque" => Ok(TextureMemory::Opaque),
        "dma-buf" => Ok(TextureMemory::DmaBuf {
            modifiers: Vec::new(),
        }),
        "host-dma-buf" => Ok(TextureMemory::HostDmaBuf),
        _ => Err(Error::InvalidArgument {
            what: "memory",
            reason: format!("`{s}`; use opaque, dma-buf or host-dma-buf"),
        }),
    }
}

impl ProducerArgs {
    /// The loop's configuration for frames of `format`, `default_size` unless `--size` says
    /// otherwise.
    #[cfg(all(
        feature = "ipc",
        any(target_os = "linux", target_os = "android", windows)
    ))]
    pub fn config(
        &self,
        default_size: &str,
        format: TextureFormat,
    ) -> Result<crate::demo::ProduceConfig> {
        let (w, h) = parse_size(self.size.as_deref().unwrap_or(default_size))?;
        Ok(crate::demo::ProduceConfig {
            name: self.name.clone(),
            descriptor: crate::demo::demo_descriptor(w, h, format),
            frames: self.frames,
            wait_consumers: self.wait,
            wait_timeout: Duration::from_secs(60),
            options: geyser::ipc::ProducerOptions {
                slots: self.slots,
                lossless: self.lossless,
                sync: parse_sync(&self.sync)?,
                max_consumers: Some(self.slots.saturating_sub(1).max(self.wait)),
                peer_policy: self.policy.parse()?,
                trusted: self.trust.parse()?,
                #[cfg(any(target_os = "linux", target_os = "android"))]
                ring_memory: parse_memory(&self.memory)?,
                ..Default::default()
            },
            frame_interval: self.interval_ms.map(Duration::from_millis),
            timestamps: false,
            picture: self.pattern == "picture",
        })
    }
}

/// What a verifying consumer example takes (`ipc_consumer`, `wgpu_consumer`).
#[derive(clap::Args, Clone, Debug)]
pub struct ConsumerArgs {
    /// Endpoint name of the producer.
    #[arg(long, default_value = "geyser-demo")]
    pub name: String,
    /// Stop after this many frames (0: until the producer ends the stream).
    #[arg(long, default_value_t = 0)]
    pub frames: u64,
    /// Give up when no frame arrives for this many seconds.
    #[arg(long, default_value_t = 30)]
    pub idle_timeout: u64,
    /// Sync mode: auto, host, binary, timeline.
    #[arg(long, default_value = "auto")]
    pub sync: String,
    /// Keep every frame (for a producer started with --lossless).
    #[arg(long)]
    pub lossless: bool,
    /// Which producer to accept: same-user, any-user, uids:UID[,UID…].
    #[arg(long, default_value = "same-user")]
    pub policy: String,
}

impl ConsumerArgs {
    /// The consumer options these arguments ask for.
    #[cfg(all(
        feature = "ipc",
        any(target_os = "linux", target_os = "android", windows)
    ))]
    pub fn options(&self) -> Result<geyser::ipc::ConsumerOptions> {
        Ok(geyser::ipc::ConsumerOptions {
            sync: parse_sync(&self.sync)?,
            lossless: self.lossless,
            peer_policy: self.policy.parse()?,
            ..Default::default()
        })
    }

    /// How long to wait for a frame before giving up.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_size("1920x1080").unwrap(), (1920, 1080));
        assert!(parse_size("1920").is_err());
        assert_eq!(parse_sync("auto").unwrap(), None);
        assert!(parse_sync("fast").is_err());
    }
}
