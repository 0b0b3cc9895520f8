//! `geyser demo`: one producer and K consumers as separate processes (this binary re-executed
//! with hidden subcommands) stream frames through Geyser; every delivered frame is verified on
//! the GPU, and a summary table per consumer ends the run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use geyser::ipc::{ConsumerOptions, ProducerOptions};
use geyser::vulkan::VulkanTextureShareManager;
#[cfg(any(target_os = "linux", target_os = "android"))]
use geyser::webgpu::WgpuTextureShareManager;
use geyser_harness::args::{parse_size, parse_sync};
use geyser_harness::demo::{
    demo_descriptor, run_consumer_with, run_producer, ConsumeLoop, ProduceConfig,
};
use geyser_harness::report::{ConsumeReport, GpuHandoff, ProduceReport};
#[cfg(any(target_os = "linux", target_os = "android"))]
use geyser_harness::wgpu_demo::run_wgpu_consumer;
use indicatif::{ProgressBar, ProgressStyle};

/// Options shared by the demo and its child processes.
#[derive(Args, Clone, Debug)]
pub struct DemoArgs {
    /// Consumer processes.
    #[arg(long, short = 'k', default_value_t = 2)]
    pub consumers: usize,
    /// Frames to stream.
    #[arg(long, short = 'n', default_value_t = 600)]
    pub frames: u64,
    /// Frame size.
    #[arg(long, default_value = "1920x1080")]
    pub size: String,
    /// Texel format (a colour format; see `geyser info`).
    #[arg(long, default_value = "rgba8unorm")]
    pub format: String,
    /// Textures in the ring (default: consumers + 1, at least 3).
    #[arg(long)]
    pub slots: Option<usize>,
    /// Every consumer gets every frame; the producer waits for slow consumers.
    #[arg(long)]
    pub lossless: bool,
    /// Synchronization: auto, host, binary or timeline.
    #[arg(long, default_value = "auto")]
    pub sync: String,
    /// Endpoint name (default: unique per run).
    #[arg(long)]
    pub name: Option<String>,
    /// Pace the producer to this many frames per second (0: as fast as it can).
    #[arg(long, default_value_t = 0.0)]
    pub fps: f64,
    /// Devices for the producer and the consumers, comma-separated (what `GEYSER_DEVICE`
    /// takes: index, name, UUID, `pci:`): the first is the producer's, then one per consumer
    /// (the last repeats). A consumer on another device gets frames through the host-memory
    /// ring. Default: `GEYSER_DEVICE` for all.
    #[arg(long)]
    pub devices: Option<String>,
    /// Every consumer takes the host ring, even on the producer's device.
    #[arg(long)]
    pub host_transfer: bool,
    /// Host-memory rings of consumers on other devices: auto, shared (one copy per frame) or
    /// per-consumer (one copy per frame and consumer; no consumer can alter another's frames).
    #[arg(long, default_value = "auto")]
    pub host_rings: String,
    /// The API of each consumer, comma-separated (`vulkan`, `wgpu` or `gl`; the last
    /// repeats): a wgpu consumer receives each frame as a `wgpu::Texture` and checks it in a
    /// compute pass, a GL consumer as a GL texture (headless EGL) read back through GL.
    #[arg(long, default_value = "vulkan")]
    pub apis: String,
    /// Low-latency wake-up: each consumer polls without sleeping for at most this many µs
    /// per frame, from just before the frame is due (0: sleep until the message).
    #[arg(long, default_value_t = 0)]
    pub spin_us: u64,
    /// Consumers submit each frame's check before the frame arrives, waiting on the GPU
    /// (timeline sync; implies --lossless and a producer writing slots in order).
    #[arg(long)]
    pub presubmit: bool,
    /// Checks in flight per consumer (timeline sync): 1 waits for each frame's check before
    /// taking the next; more check each frame a few frames later.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Consumers on another GPU: `auto` serves those a peer copy reaches (CUDA devices with
    /// peer access, NVLink or PCIe) through a ring on their GPU, the rest through host
    /// memory; `off` (the default) uses host memory for all: on two H200s the remote ring,
    /// host-synchronized per frame, reached 0.49 of one GPU's fps and host memory 0.63
    /// (BENCHMARKS.md).
    #[arg(long, default_value = "off")]
    pub remote_rings: String,
    /// Memory of the producer's ring: opaque, dma-buf (the driver's DMA-BUF export) or
    /// host-dma-buf (a memfd imported as a DMA-BUF, for CPU drivers).
    #[arg(long, default_value = "opaque")]
    pub memory: String,
    /// What the producer draws: `picture` (the frame word's band, a moving gradient and the
    /// frame number: what you see in `geyser view`) or `solid` (the frame word in every texel:
    /// the same GPU work as the benchmark's other paths). Consumers accept both.
    #[arg(long, default_value = "picture", value_parser = ["picture", "solid"])]
    pub pattern: String,
}

impl DemoArgs {
    fn slots(&self) -> usize {
        self.slots
            .unwrap_or((self.consumers + 1).max(3))
            .min(geyser::ipc::wire::MAX_SLOTS)
    }

    /// Every consumer gets every frame (`--lossless`, or implied by `--presubmit`).
    fn lossless(&self) -> bool {
        self.lossless || self.presubmit
    }

    pub(crate) fn child_args(&self, name: &str) -> Vec<String> {
        let mut v = vec![
            "--consumers".into(),
            self.consumers.to_string(),
            "--frames".into(),
            self.frames.to_string(),
            "--size".into(),
            self.size.clone(),
            "--format".into(),
            self.format.clone(),
            "--slots".into(),
            self.slots().to_string(),
            "--sync".into(),
            self.sync.clone(),
            "--name".into(),
            name.to_string(),
        ];
        if self.lossless() {
            v.push("--lossless".into());
        }
        if self.presubmit {
            v.push("--presubmit".into());
        }
        v.push("--spin-us".into());
        v.push(self.spin_us.to_string());
        v.push("--pipeline".into());
        v.push(self.pipeline.to_string());
        if self.host_transfer {
            v.push("--host-transfer".into());
        }
        v.push("--host-rings".into());
        v.push(self.host_rings.clone());
        v.push("--remote-rings".into());
        v.push(self.remote_rings.clone());
        v.push("--fps".into());
        v.push(self.fps.to_string());
        v.push("--memory".into());
        v.push(self.memory.clone());
        v.push("--pattern".into());
        v.push(self.pattern.clone());
        v
    }

    /// The API of consumer `i` (0-based).
    fn api(&self, i: usize) -> &str {
        nth_or_last(&self.apis, i).unwrap_or("vulkan")
    }

    /// The device selector of child `i` (0: the producer, then the consumers), if given.
    fn device(&self, i: usize) -> Option<&str> {
        nth_or_last(self.devices.as_deref()?, i)
    }
}

/// Item `i` of a comma-separated list, the last one repeating past the end.
fn nth_or_last(list: &str, i: usize) -> Option<&str> {
    let mut items = list.split(',').map(str::trim);
    items.clone().nth(i).or_else(|| items.next_back())
}

/// Hidden subcommand: the producer child. Prints `P <n>` progress lines and `R <json>`.
pub fn produce(args: &DemoArgs) -> geyser::Result<()> {
    let (w, h) = parse_size(&args.size)?;
    let manager = Arc::new(VulkanTextureShareManager::create_default()?);
    let config = ProduceConfig {
        name: args.name.clone().unwrap_or_else(|| "geyser-demo".into()),
        descriptor: demo_descriptor(w, h, args.format.parse()?),
        frames: args.frames,
        wait_consumers: args.consumers,
        wait_timeout: Duration::from_secs(60),
        options: ProducerOptions {
            slots: args.slots(),
            lossless: args.lossless(),
            sync: parse_sync(&args.sync)?,
            max_consumers: Some(args.consumers.max(1)),
            host_rings: args.host_rings.parse()?,
            ordered_slots: args.presubmit,
            remote_rings: remote_rings(&args.remote_rings)?,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            ring_memory: geyser_harness::args::parse_memory(&args.memory)?,
            ..Default::default()
        },
        frame_interval: (args.fps > 0.0).then(|| Duration::from_secs_f64(1.0 / args.fps)),
        timestamps: true,
        picture: args.pattern == "picture",
    };
    let report = run_producer(manager, &config, |n| {
        if n % 10 == 0 {
            println!("P {n}");
        }
    })?;
    println!("R {}", serde_json::to_string(&report).unwrap_or_default());
    check_validation()
}

/// The remote-ring provider `--remote-rings` names: CUDA peer copies (`auto`), or none.
fn remote_rings(mode: &str) -> geyser::Result<Option<Arc<dyn geyser::ipc::RemoteRings>>> {
    match mode {
        #[cfg(target_os = "linux")]
        "auto" => Ok(Some(geyser::cuda::PeerRings::new())),
        #[cfg(not(target_os = "linux"))]
        "auto" => Ok(None),
        "off" => Ok(None),
        other => Err(geyser::Error::InvalidArgument {
            what: "--remote-rings",
            reason: format!("`{other}`: use auto or off"),
        }),
    }
}

/// Fails a child whose Vulkan validation layer (when `GEYSER_VALIDATION` enabled it) reported
/// errors, so the demo's PASS means validation-clean too.
pub(crate) fn check_validation() -> geyser::Result<()> {
    let n = geyser::vulkan::diagnostics::validation_error_count();
    if n == 0 {
        return Ok(());
    }
    let first = geyser::vulkan::diagnostics::validation_messages()
        .into_iter()
        .next()
        .unwrap_or_default();
    Err(geyser::Error::Io(std::io::Error::other(format!(
        "{n} Vulkan validation error(s); first: {first}"
    ))))
}

/// Hidden subcommand: a consumer child. Prints `P <frames> <corrupted>` and `R <json>`.
pub fn consume(args: &DemoArgs) -> geyser::Result<()> {
    let api = std::env::var("GEYSER_DEMO_API").unwrap_or_else(|_| "vulkan".into());
    enum Api {
        Vulkan(Arc<VulkanTextureShareManager>),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Wgpu(Arc<WgpuTextureShareManager>),
        #[cfg(target_os = "linux")]
        Gl(geyser::gl::GlContext),
    }
    let manager = match api.as_str() {
        "vulkan" => Api::Vulkan(Arc::new(VulkanTextureShareManager::create_default()?)),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        "wgpu" => Api::Wgpu(Arc::new(WgpuTextureShareManager::create_default()?)),
        #[cfg(target_os = "linux")]
        "gl" => Api::Gl(geyser::gl::GlContext::headless()?),
        #[cfg(not(target_os = "linux"))]
        "gl" => {
            return Err(geyser::Error::unsupported(
                "GL consumers in the demo",
                "Geyser's GL endpoints run on Linux (EGL) only",
            ))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        "wgpu" => {
            return Err(geyser::Error::unsupported(
                "wgpu consumers in the demo",
                "Geyser's wgpu endpoints share opaque FDs (Linux/Android only so far)",
            ))
        }
        other => {
            return Err(geyser::Error::InvalidArgument {
                what: "--apis",
                reason: format!("`{other}`: use vulkan, wgpu or gl"),
            })
        }
    };
    let name = args.name.clone().unwrap_or_else(|| "geyser-demo".into());
    let options = ConsumerOptions {
        sync: parse_sync(&args.sync)?,
        lossless: args.lossless(),
        host_ring: args.host_transfer,
        spin: Duration::from_micros(args.spin_us),
        ..Default::default()
    };
    let config = ConsumeLoop {
        pipeline: args.pipeline,
        presubmit: args.presubmit,
        timestamps: true,
        ..ConsumeLoop::simple(0, Duration::from_secs(30))
    };
    // The producer may still be binding: retry NotFound briefly.
    let mut tries = 0;
    let report = loop {
        let progress = |r: &ConsumeReport| {
            if r.frames.is_multiple_of(10) {
                println!("P {} {}", r.frames, r.corrupted);
            }
        };
        // The wgpu and GL consumers' idle timeout (the Vulkan loop takes `config`'s).
        #[cfg_attr(
            not(any(target_os = "linux", target_os = "android")),
            allow(unused_variables)
        )]
        let idle = Duration::from_secs(30);
        let result = match &manager {
            Api::Vulkan(m) => {
                run_consumer_with(m.clone(), &name, options.clone(), &config, progress)
            }
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Api::Wgpu(w) => run_wgpu_consumer(w.clone(), &name, options.clone(), 0, idle, progress),
            #[cfg(target_os = "linux")]
            Api::Gl(gl) => geyser_harness::gl_demo::run_gl_consumer(
                gl,
                &name,
                options.clone(),
                0,
                idle,
                progress,
            ),
        };
        match result {
            Err(geyser::Error::NotFound { .. }) if tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            other => break other?,
        }
    };
    println!("R {}", serde_json::to_string(&report).unwrap_or_default());
    check_validation()
}

/// What a child process reported: `P <progress> <corrupted>` lines, the `R <json>` result,
/// and its stderr.
#[derive(Default)]
pub(crate) struct ChildState {
    pub(crate) progress: u64,
    pub(crate) corrupted: u64,
    pub(crate) result: Option<String>,
    pub(crate) errors: Vec<String>,
}

/// Runs this binary again with `args`, output piped.
pub(crate) fn spawn_self<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

fn spawn(role: &str, args: &DemoArgs, name: &str, index: usize) -> std::io::Result<Child> {
    let mut v = vec![role.to_string()];
    v.extend(args.child_args(name));
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(&v).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(device) = args.device(index) {
        cmd.env("GEYSER_DEVICE", device);
    }
    if index > 0 {
        cmd.env("GEYSER_DEMO_API", args.api(index - 1));
    }
    cmd.spawn()
}

/// Collects a child's output into `state` on two threads.
pub(crate) fn watch(
    child: &mut Child,
    state: Arc<Mutex<ChildState>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let s1 = state.clone();
    let out = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut s = s1.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(rest) = line.strip_prefix("P ") {
                let mut it = rest
                    .split_whitespace()
                    .map(|v| v.parse::<u64>().unwrap_or(0));
                s.progress = it.next().unwrap_or(0);
                s.corrupted = it.next().unwrap_or(0);
            } else if let Some(json) = line.strip_prefix("R ") {
                s.result = Some(json.to_string());
            }
        }
    });
    let err = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .errors
                .push(line);
        }
    });
    vec![out, err]
}

/// Runs the demo; returns whether every frame of every consumer was verified.
pub fn run(args: &DemoArgs) -> geyser::Result<bool> {
    let (w, h) = parse_size(&args.size)?;
    let format: geyser::common::TextureFormat = args.format.parse()?;
    parse_sync(&args.sync)?;
    args.host_rings.parse::<geyser::ipc::HostRingSharing>()?;
    if args.consumers == 0 {
        return Err(geyser::Error::InvalidArgument {
            what: "consumers",
            reason: "at least one".into(),
        });
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("geyser-demo-{}", std::process::id()));
    println!(
        "geyser demo: 1 producer → {} consumer process(es), {} frames of {w}x{h} {format}, ring of {} textures",
        args.consumers,
        args.frames,
        args.slots()
    );
    let mut producer = spawn("__produce", args, &name, 0)?;
    let pstate = Arc::new(Mutex::new(ChildState::default()));
    let mut threads = watch(&mut producer, pstate.clone());
    let mut consumers = Vec::new();
    for i in 0..args.consumers {
        let mut c = spawn("__consume", args, &name, i + 1)?;
        let st = Arc::new(Mutex::new(ChildState::default()));
        threads.extend(watch(&mut c, st.clone()));
        consumers.push((c, st));
    }

    let bar = ProgressBar::new(args.frames);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} frames {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut producer_status = None;
    let mut stopped_producer = false;
    loop {
        let done = pstate.lock().unwrap_or_else(|p| p.into_inner()).progress;
        bar.set_position(done);
        let msg: Vec<String> = consumers
            .iter()
            .enumerate()
            .map(|(i, (_, s))| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                format!(
                    "c{i}: {} ok/{} bad",
                    s.progress.saturating_sub(s.corrupted),
                    s.corrupted
                )
            })
            .collect();
        bar.set_message(msg.join("  "));
        if producer_status.is_none() {
            producer_status = producer.try_wait()?;
        }
        let all_consumers_done = consumers
            .iter_mut()
            .all(|(c, _)| matches!(c.try_wait(), Ok(Some(_))));
        if producer_status.is_some() && all_consumers_done {
            break;
        }
        if producer_status.is_none() {
            // A consumer failed before the stream ended: the demo has failed, and the producer
            // would wait for it (and the other consumers for frames) until their timeouts.
            // Stop the producer; the other consumers then see it gone at once.
            let failed = consumers
                .iter_mut()
                .any(|(c, _)| matches!(c.try_wait(), Ok(Some(st)) if !st.success()));
            if failed && !stopped_producer {
                let _ = producer.kill();
                stopped_producer = true;
            }
        }
        if let Some(st) = producer_status {
            if !st.success() {
                // The producer failed: consumers would wait for frames; stop them.
                for (c, _) in consumers.iter_mut() {
                    let _ = c.kill();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    let consumer_status: Vec<_> = consumers
        .iter_mut()
        .map(|(c, _)| c.wait())
        .collect::<Result<_, _>>()?;
    for t in threads {
        let _ = t.join();
    }

    let mut ok = true;
    let p = pstate.lock().unwrap_or_else(|p| p.into_inner());
    let preport: Option<ProduceReport> = p
        .result
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    match (&preport, producer_status) {
        (Some(r), Some(st)) if st.success() => println!(
            "producer: {} frames presented in {:.2} s ({:.1} fps), sync offered: {}",
            r.frames, r.seconds, r.fps, r.sync
        ),
        _ if stopped_producer => {
            ok = false;
            println!("producer stopped: a consumer failed (below)");
        }
        _ => {
            ok = false;
            println!("producer FAILED ({producer_status:?}):");
            for e in p.errors.iter().rev().take(10).rev() {
                println!("  {e}");
            }
        }
    }
    println!();
    println!(
        "{:<9} {:>9} {:>8} {:>10} {:>10} {:>9} {:>12} {:>12} {:>10} {:>10} {:>10}  {:<15} {:<10} api",
        "consumer",
        "delivered",
        "skipped",
        "superseded",
        "corrupted",
        "fps",
        "handoff p50",
        "handoff p99",
        "age p50",
        "gpu p50",
        "gpu p99",
        "sync",
        "path",
    );
    for (i, ((_, st), status)) in consumers.iter().zip(&consumer_status).enumerate() {
        let s = st.lock().unwrap_or_else(|p| p.into_inner());
        match s
            .result
            .as_deref()
            .and_then(|j| serde_json::from_str::<ConsumeReport>(j).ok())
        {
            Some(r) if status.success() => {
                ok &= r.corrupted == 0
                    && r.frames > 0
                    && r.clean_end
                    && (!args.lossless() || r.skipped == 0);
                let gpu = preport.as_ref().and_then(|p| GpuHandoff::between(p, &r));
                let us = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0} µs"));
                println!(
                    "{:<9} {:>9} {:>8} {:>10} {:>10} {:>9.1} {:>9.0} µs {:>9.0} µs {:>7.0} µs {:>10} {:>10}  {:<15} {:<10} {}",
                    format!("c{i}"),
                    r.frames,
                    r.skipped,
                    r.superseded,
                    r.corrupted,
                    r.fps,
                    r.latency_p50_us,
                    r.latency_p99_us,
                    r.age_p50_us,
                    us(gpu.map(|g| g.p50_us)),
                    us(gpu.map(|g| g.p99_us)),
                    r.sync,
                    r.path,
                    args.api(i)
                );
                if let Some(g) = gpu.filter(|g| g.deviation_us >= 1.0) {
                    println!(
                        "          (GPU clock calibration within {:.0} µs)",
                        g.deviation_us
                    );
                }
                if r.presubmitted > 0 || r.spin_us_per_frame > 0.0 {
                    println!(
                        "          {} frames checked by work submitted before they arrived; {:.0} µs/frame spent spinning",
                        r.presubmitted, r.spin_us_per_frame
                    );
                }
            }
            _ => {
                ok = false;
                println!("c{i}        FAILED ({status})");
                for e in s.errors.iter().rev().take(10).rev() {
                    println!("  {e}");
                }
            }
        }
    }
    println!();
    println!(
        "handoff: producer sends the frame message → consumer receives it; age: producer presents → consumer \
         receives (includes time a frame waited for a busy consumer). Host clocks (CLOCK_MONOTONIC). Host sync: \
         the producer's GPU write is complete at present; timeline and binary-semaphore sync: it is submitted, and the consumer's GPU \
         waits for it. gpu: GPU handoff, the producer's write finished on the GPU → the consumer's read started \
         on the GPU (timestamp queries on both sides, put on CLOCK_MONOTONIC with calibrated timestamps; n/a \
         where the device has none). Every delivered frame was probed on the GPU against its frame number's \
         pattern."
    );
    println!(
        "{}",
        if ok {
            "PASS: every delivered frame verified, none corrupted"
        } else {
            "FAIL"
        }
    );
    Ok(ok)
}
