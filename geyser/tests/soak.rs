//! Soak test with fault injection: one producer (this process), four consumer processes (this
//! test binary re-executed), 100,000 frames by default (`GEYSER_SOAK_FRAMES` for the long run),
//! consumers SIGKILLed and restarted at random, the producer restarted once mid-run. Every frame
//! a consumer receives is probed on the GPU; none may be corrupted. The producer's open FDs,
//! resident memory and live Vulkan objects must be flat between warm-up and the end.

// Linux only: Unix-socket IPC, SCM_RIGHTS, /proc FD accounting and lavapipe.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_validation_clean, exit_child, manager};
use geyser::common::TextureFormat;
use geyser::ipc::{ConsumerOptions, Producer, ProducerOptions};
use geyser::vulkan::diagnostics::live_objects;
use geyser::Error;
use geyser_harness::demo::{demo_descriptor, run_consumer, write_slot};
use geyser_harness::pattern::PatternWriter;

const CONSUMERS: usize = 4;

/// Not a test: the consumer process. Prints `PROGRESS <frames> <corrupted>` lines.
#[test]
fn soak_consumer_entry() {
    let Ok(name) = std::env::var("SOAK_NAME") else {
        return;
    };
    let m = Arc::new(manager());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last_corrupted = 0;
    let result = loop {
        let r = run_consumer(
            m.clone(),
            &name,
            ConsumerOptions::default(),
            0,
            Duration::from_secs(10),
            |r| {
                if r.frames % 200 == 0 || r.corrupted != last_corrupted {
                    last_corrupted = r.corrupted;
                    println!("\nPROGRESS {} {}", r.frames, r.corrupted);
                }
            },
        );
        match r {
            Err(Error::NotFound { .. }) | Err(Error::Rejected { .. })
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => break other,
        }
    };
    let code = match result {
        Ok(r) => {
            println!("\nPROGRESS {} {}", r.frames, r.corrupted);
            if r.corrupted > 0 {
                3
            } else {
                0
            }
        }
        // A producer restart can also end a handshake midway.
        Err(Error::PeerGone(_)) | Err(Error::Timeout(_)) => 0,
        Err(e) => {
            eprintln!("soak consumer: {e}");
            1
        }
    };
    exit_child(code);
}

struct ConsumerProc {
    child: Child,
    frames: Arc<AtomicU64>,
    corrupted: Arc<AtomicU64>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ConsumerProc {
    fn spawn(name: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "soak_consumer_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SOAK_NAME", name)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn consumer");
        let (frames, corrupted) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let out = child.stdout.take().unwrap();
        let (f, c) = (frames.clone(), corrupted.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("PROGRESS ") {
                    let mut it = rest
                        .split_whitespace()
                        .map(|v| v.parse::<u64>().unwrap_or(0));
                    f.store(it.next().unwrap_or(0), Ordering::Relaxed);
                    c.store(it.next().unwrap_or(0), Ordering::Relaxed);
                }
            }
        });
        ConsumerProc {
            child,
            frames,
            corrupted,
            reader: Some(reader),
        }
    }

    /// Waits for the process and its output; returns (frames verified, corrupted, exit code).
    fn reap(mut self) -> (u64, u64, Option<i32>) {
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (
            self.frames.load(Ordering::Relaxed),
            self.corrupted.load(Ordering::Relaxed),
            status.code(),
        )
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// A small deterministic PRNG (xorshift), so runs are reproducible from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Default, Debug)]
struct Tally {
    verified: u64,
    corrupted: u64,
    kills: u64,
    restarts: u64,
    failures: Vec<String>,
}

impl Tally {
    fn reap(&mut self, p: ConsumerProc, killed: bool) {
        let (frames, corrupted, code) = p.reap();
        self.verified += frames;
        self.corrupted += corrupted;
        if !killed && code != Some(0) {
            self.failures.push(format!(
                "consumer exited with {code:?} after {frames} frames"
            ));
        }
    }
}

#[test]
fn soak_with_killed_consumers_and_a_restarted_producer() {
    let total: u64 = std::env::var("GEYSER_SOAK_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed = std::env::var("GEYSER_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    let name = format!("soak{}", std::process::id());
    let m = Arc::new(manager());
    let desc = demo_descriptor(32, 32, TextureFormat::Rgba8Unorm);
    let options = ProducerOptions {
        slots: CONSUMERS + 1,
        max_consumers: Some(CONSUMERS),
        ..Default::default()
    };
    let writer = PatternWriter::new(&m, desc.tight_size()).unwrap();
    let mut producer = Some(Producer::bind(&name, m.clone(), &desc, options.clone()).unwrap());
    let mut procs: Vec<ConsumerProc> = (0..CONSUMERS).map(|_| ConsumerProc::spawn(&name)).collect();
    producer
        .as_ref()
        .unwrap()
        .wait_for_consumers(CONSUMERS, Duration::from_secs(60))
        .unwrap();
    let mut tally = Tally::default();
    let warmup = 2_000.min(total / 4);
    let mut baseline = None;
    let mut next_kill = 2_000 + rng.next() % 4_000;
    let restart_at = total / 2;
    let start = Instant::now();

    for frame in 0..total {
        let p = producer.as_ref().unwrap();
        let slot = p
            .acquire(Some(Duration::from_secs(20)))
            .expect("producer never stalls for long");
        write_slot(&writer, &slot).unwrap();
        p.present(slot).unwrap();

        if frame == warmup {
            p.wait_for_consumers(CONSUMERS, Duration::from_secs(60))
                .unwrap();
            baseline = Some((open_fds(), rss_bytes(), live_objects()));
        }
        if frame == next_kill {
            let victim = (rng.next() % procs.len() as u64) as usize;
            let mut p = procs.swap_remove(victim);
            let _ = p.child.kill();
            tally.reap(p, true);
            tally.kills += 1;
            procs.push(ConsumerProc::spawn(&name));
            next_kill = frame + 2_000 + rng.next() % 4_000;
        }
        if frame == restart_at {
            // Restart the producer: consumers see the end of the stream and exit; new ones
            // connect to the new producer at the same name. First let every consumer spawned so
            // far connect: one still starting (a kill's replacement, slow on a loaded machine)
            // would otherwise wait for a producer that is bound only after it is reaped.
            p.wait_for_consumers(CONSUMERS, Duration::from_secs(60))
                .unwrap();
            writer.finish().unwrap();
            drop(producer.take());
            for p in procs.drain(..) {
                tally.reap(p, false);
            }
            tally.restarts += 1;
            producer = Some(Producer::bind(&name, m.clone(), &desc, options.clone()).unwrap());
            procs = (0..CONSUMERS).map(|_| ConsumerProc::spawn(&name)).collect();
            producer
                .as_ref()
                .unwrap()
                .wait_for_consumers(CONSUMERS, Duration::from_secs(60))
                .unwrap();
        }
        // Consumers that ended on their own (e.g. during the restart) are replaced.
        let mut i = 0;
        while i < procs.len() {
            if matches!(procs[i].child.try_wait(), Ok(Some(_))) {
                let p = procs.swap_remove(i);
                tally.reap(p, false);
                procs.push(ConsumerProc::spawn(&name));
            } else {
                i += 1;
            }
        }
    }
    writer.finish().unwrap();
    // Measure with the same number of consumers connected as at warm-up.
    producer
        .as_ref()
        .unwrap()
        .wait_for_consumers(CONSUMERS, Duration::from_secs(60))
        .unwrap();
    let end = (open_fds(), rss_bytes(), live_objects());
    let elapsed = start.elapsed();
    drop(producer.take());
    for p in procs.drain(..) {
        tally.reap(p, false);
    }
    let (fds0, rss0, obj0) = baseline.expect("warm-up reached");
    println!(
        "soak: {total} frames presented in {:.1} s; consumers verified {} frames, corrupted {}; {} kills, {} producer restart(s)",
        elapsed.as_secs_f64(),
        tally.verified,
        tally.corrupted,
        tally.kills,
        tally.restarts
    );
    println!(
        "  after warm-up: {fds0} FDs, RSS {} KiB, {obj0:?}",
        rss0 / 1024
    );
    println!(
        "  at the end:    {} FDs, RSS {} KiB, {:?}",
        end.0,
        end.1 / 1024,
        end.2
    );
    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
    assert_eq!(tally.corrupted, 0);
    assert!(tally.kills >= 1 && tally.restarts == 1);
    assert!(
        tally.verified > total / 2,
        "consumers verified only {} frames",
        tally.verified
    );
    assert_eq!(end.0, fds0, "open FDs must be flat");
    assert_eq!(end.2, obj0, "live Vulkan objects must be flat");
    assert!(
        end.1 < rss0 + 32 * 1024 * 1024,
        "RSS grew from {} to {} KiB",
        rss0 / 1024,
        end.1 / 1024
    );
    assert_validation_clean();
}
