//! `geyser bench signal`: how long a timeline semaphore's signal takes to start a GPU queue
//! that waits for it, signaled by the same queue, by another context (`VkDevice`) through an
//! exported timeline, and by the CPU; no Geyser protocol in between. The floor under the GPU
//! handoff of `geyser bench latency`: the other-context path is what a pre-submitted
//! consumer's wait goes through, without the process boundary.

use std::time::Duration;

use clap::Args;
use geyser_harness::bench::signal::{measure_signal, SignalPath};

use super::{write_json, BenchArgs};

/// Options of `geyser bench signal`.
#[derive(Args, Clone, Debug)]
pub struct SignalArgs {
    /// Signals per path (default 500; 50 with --quick).
    #[arg(long)]
    pub samples: Option<usize>,
    /// How long each wait is pending on the GPU before its signal, µs.
    #[arg(long, default_value_t = 1000)]
    pub lead_us: u64,
}

/// Runs each path; returns whether every path the device supports was measured.
pub(super) fn run(args: &SignalArgs, bench: &BenchArgs) -> geyser::Result<bool> {
    let samples = args.samples.unwrap_or(if bench.quick { 50 } else { 500 });
    let lead = Duration::from_micros(args.lead_us);
    println!(
        "geyser bench signal: {samples} signals per path, each waited for on the GPU {} µs before it",
        args.lead_us
    );
    println!();
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>12}",
        "signaled by", "p50", "p99", "min", "calibration"
    );
    let mut results = Vec::new();
    let mut ok = true;
    for path in SignalPath::ALL {
        match measure_signal(path, samples, lead) {
            Ok(r) => {
                println!(
                    "{:<26} {:>7.1} µs {:>7.1} µs {:>7.1} µs {:>7.1} µs ±",
                    path.name(),
                    r.p50_us,
                    r.p99_us,
                    r.min_us,
                    r.deviation_us
                );
                ok &= r.samples == samples;
                results.push(serde_json::to_value(&r).unwrap_or_default());
            }
            Err(geyser::Error::Unsupported { feature, reason }) => {
                println!("{:<26} n/a: {feature}: {reason}", path.name());
            }
            Err(e) => {
                println!("{:<26} FAILED: {e}", path.name());
                ok = false;
            }
        }
    }
    println!();
    println!(
        "From the signal (a BOTTOM_OF_PIPE timestamp right before a GPU signal, CLOCK_MONOTONIC right before \
         vkSignalSemaphore) to the first command of the waiting submission (a TOP_OF_PIPE timestamp), both on \
         CLOCK_MONOTONIC through calibrated timestamps (calibration: the largest deviation the driver reported); \
         GPU → host: to the return of a thread's vkWaitSemaphores. Same queue: the wait is submitted right after \
         the signal; the others wait {} µs first.",
        args.lead_us
    );
    if let Some(dir) = &bench.out {
        let json =
            serde_json::json!({ "samples": samples, "lead_us": args.lead_us, "paths": results });
        write_json(dir, "signal.json", &json)?;
        println!("wrote {}", dir.join("signal.json").display());
    }
    println!(
        "{}",
        if ok {
            "PASS: every path the device supports was measured"
        } else {
            "FAIL: a path failed"
        }
    );
    Ok(ok)
}
