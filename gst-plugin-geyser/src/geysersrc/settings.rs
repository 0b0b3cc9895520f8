//! `geysersrc`'s properties: their values ([`Settings`]) and their specs, documented for
//! `gst-inspect-1.0`.

use gst::glib;
use gst::prelude::*;

use super::OnDisconnect;
use crate::props::{common_properties, SyncChoice, DEFAULT_ENDPOINT};

/// The property values, taken by `start`.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub endpoint: String,
    pub device: String,
    pub sync: SyncChoice,
    pub lossless: bool,
    pub on_disconnect: OnDisconnect,
    /// Milliseconds; 0 waits forever.
    pub connect_timeout: u32,
    /// Milliseconds.
    pub latency: u32,
    pub framerate: gst::Fraction,
    pub dmabuf: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.into(),
            device: String::new(),
            sync: SyncChoice::Auto,
            lossless: false,
            on_disconnect: OnDisconnect::Error,
            connect_timeout: 10_000,
            latency: 20,
            framerate: gst::Fraction::new(0, 1),
            dmabuf: true,
        }
    }
}

/// The element's property specs.
pub(super) fn specs() -> Vec<glib::ParamSpec> {
    let mut props = common_properties("Name of the Geyser producer's endpoint to consume");
    props.extend([
        glib::ParamSpecBoolean::builder("lossless")
            .nick("Lossless")
            .blurb(
                "Take every frame the producer sends (for a lossless producer) instead \
                 of skipping to the newest",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder::<OnDisconnect>("on-disconnect")
            .nick("On disconnect")
            .blurb("What to do when the producer goes away")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("connect-timeout")
            .nick("Connect timeout")
            .blurb(
                "Milliseconds to wait for a producer at start, and for the next one \
                 with on-disconnect=wait (0: forever)",
            )
            .default_value(Settings::default().connect_timeout)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("latency")
            .nick("Latency")
            .blurb(
                "Milliseconds reported as this live source's latency: how late after \
                 the producer's present a frame may be pushed (covers the GPU copy)",
            )
            .default_value(Settings::default().latency)
            .mutable_ready()
            .build(),
        gst::ParamSpecFraction::builder("framerate")
            .nick("Frame rate")
            .blurb(
                "Nominal frame rate put in the caps (Geyser streams have none; 0/1 means \
                 variable). Timestamps always come from the producer's present time",
            )
            .minimum(gst::Fraction::new(0, 1))
            .maximum(gst::Fraction::new(i32::MAX, 1))
            .default_value(gst::Fraction::new(0, 1))
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("dmabuf")
            .nick("DMA-BUF")
            .blurb(
                "Also offer video/x-raw(memory:DMABuf) (after system memory) when the \
                 device exports DMA-BUF: for downstream elements that ask for it, one \
                 GPU copy into exported linear buffers and no CPU copy",
            )
            .default_value(true)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb(
                "frames, skipped, superseded, connects, direct-copies (GPU straight \
                 into buffer memory), staged-copies (through a staging buffer), \
                 host-imports",
            )
            .read_only()
            .build(),
    ]);
    props
}

impl Settings {
    /// Sets property `name` from `value`; `false` for a name that is not a writable setting.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let s = self;
        match name {
            "endpoint" => {
                s.endpoint = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| DEFAULT_ENDPOINT.into())
            }
            "device" => {
                s.device = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            "sync-mode" => s.sync = value.get().unwrap_or_default(),
            "lossless" => s.lossless = value.get().unwrap_or(false),
            "on-disconnect" => s.on_disconnect = value.get().unwrap_or_default(),
            "connect-timeout" => s.connect_timeout = value.get().unwrap_or(s.connect_timeout),
            "latency" => s.latency = value.get().unwrap_or(s.latency),
            "framerate" => s.framerate = value.get().unwrap_or(s.framerate),
            "dmabuf" => s.dmabuf = value.get().unwrap_or(true),
            _ => return false,
        }
        true
    }

    /// The value of property `name`, if it is a setting.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        let s = self;
        Some(match name {
            "endpoint" => s.endpoint.to_value(),
            "device" => s.device.to_value(),
            "sync-mode" => s.sync.to_value(),
            "lossless" => s.lossless.to_value(),
            "on-disconnect" => s.on_disconnect.to_value(),
            "connect-timeout" => s.connect_timeout.to_value(),
            "latency" => s.latency.to_value(),
            "framerate" => s.framerate.to_value(),
            "dmabuf" => s.dmabuf.to_value(),
            _ => return None,
        })
    }
}
