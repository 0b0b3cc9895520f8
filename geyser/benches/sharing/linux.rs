//! The benchmarks (Linux: Unix-socket IPC and lavapipe or a GPU).

use std::hint::black_box;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, BatchSize, Criterion};
use geyser::common::{TextureDescriptor, TextureFormat, TextureUsage};
use geyser::ipc::testing::fd_passing;
use geyser::ipc::{Consumer, ConsumerOptions, Producer, ProducerOptions, SyncMode};
use geyser::vulkan::VulkanTextureShareManager;
use geyser_harness::args::retry_not_found;
use geyser_harness::bench::run_in_process;
use geyser_harness::demo::{
    demo_descriptor, run_consumer, run_producer, write_slot, ProduceConfig,
};
use geyser_harness::pattern::{PatternWriter, ProbeReader};

fn managers() -> (
    Arc<VulkanTextureShareManager>,
    Arc<VulkanTextureShareManager>,
) {
    let m = || Arc::new(VulkanTextureShareManager::create_default().expect("a Vulkan device"));
    (m(), m())
}

const SIZES: [(u32, u32, &str); 3] = [
    (256, 256, "256x256"),
    (1920, 1080, "1080p"),
    (3840, 2160, "4k"),
];
const FORMATS: [(TextureFormat, &str); 2] = [
    (TextureFormat::Rgba8Unorm, "rgba8"),
    (TextureFormat::Rgba16Float, "rgba16f"),
];

fn textures(c: &mut Criterion) {
    let (a, b) = managers();
    let usage = [
        TextureUsage::TextureBinding,
        TextureUsage::CopySrc,
        TextureUsage::CopyDst,
    ];
    let mut g = c.benchmark_group("texture");
    for (w, h, size) in SIZES {
        for (format, fname) in FORMATS {
            let desc = TextureDescriptor::new(w, h, format, &usage);
            let id = format!("{size}/{fname}");
            g.bench_function(format!("create/{id}"), |bench| {
                bench.iter(|| black_box(a.create_texture(&desc).unwrap()))
            });
            let t = a.create_texture(&desc).unwrap();
            g.bench_function(format!("export/{id}"), |bench| {
                bench.iter(|| black_box(a.export(&t).unwrap()))
            });
            g.bench_function(format!("import/{id}"), |bench| {
                bench.iter_batched(
                    || a.export(&t).unwrap(),
                    |e| b.import(e).unwrap(),
                    BatchSize::SmallInput,
                )
            });
            g.bench_function(format!("create_export_import/{id}"), |bench| {
                bench.iter(|| {
                    let t = a.create_texture(&desc).unwrap();
                    let i = b.import(a.export(&t).unwrap()).unwrap();
                    (t, i)
                })
            });
        }
    }
    g.finish();
}

fn fd_transfer(c: &mut Criterion) {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    let (tx, rx) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let mem = rustix::fs::memfd_create("geyser-bench", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let mut buf = [0u8; 64];
    let mut fds = Vec::with_capacity(1);
    c.bench_function("fd_transfer/send_recv_close_one_fd", |bench| {
        bench.iter(|| {
            fd_passing::send(tx.as_fd(), b"geyser!!", &[mem.as_fd()]).unwrap();
            fd_passing::recv(rx.as_fd(), &mut buf, &mut fds, false).unwrap();
            fds.clear(); // closes the received FD
        })
    });
}

fn handoff(c: &mut Criterion) {
    let (pm, cm) = managers();
    let desc = demo_descriptor(16, 16, TextureFormat::Rgba8Unorm);
    let modes = geyser::ipc::supported_sync_modes(&pm).unwrap();
    let mut g = c.benchmark_group("handoff_round_trip_16x16");
    for mode in [SyncMode::Timeline, SyncMode::Host] {
        if !modes.contains(&mode) {
            continue;
        }
        let name = format!("bench-handoff-{}-{mode:?}", std::process::id());
        let options = ProducerOptions {
            sync: Some(mode),
            ..Default::default()
        };
        let producer = Producer::bind(&name, pm.clone(), &desc, options).unwrap();
        let writer = PatternWriter::new(&pm, desc.tight_size()).unwrap();
        let copts = ConsumerOptions {
            sync: Some(mode),
            ..Default::default()
        };
        let mut consumer = Consumer::connect_with(&name, cm.clone(), copts).unwrap();
        let probe = ProbeReader::new(&cm).unwrap();
        // One iteration: acquire, GPU write, present, receive, GPU probe, release.
        g.bench_function(format!("{mode:?}"), |bench| {
            bench.iter(|| {
                let slot = producer.acquire(Some(Duration::from_secs(5))).unwrap();
                write_slot(&writer, &slot).unwrap();
                producer.present(slot).unwrap();
                let mut f = consumer.next_frame(Some(Duration::from_secs(5))).unwrap();
                let (wait, signal) = (f.wait_point(), f.release_point());
                let (tex, n) = (f.texture().clone(), f.number());
                let mut f = Some(f);
                probe
                    .check_synced(&tex, n, wait.as_slice(), signal.as_slice(), || {
                        f.take().map_or(Ok(()), |f| f.release())
                    })
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let (a, b) = managers();
    let desc = demo_descriptor(1920, 1080, TextureFormat::Rgba8Unorm);
    let mut g = c.benchmark_group("pipeline_1080p");
    g.sample_size(10);
    g.bench_function("in_process", |bench| {
        bench.iter_custom(|iters| {
            let (_, report) = run_in_process(&a, &b, &desc, iters.max(2)).unwrap();
            Duration::from_secs_f64(
                report.seconds * iters as f64 / (report.frames.max(2) - 1) as f64,
            )
        })
    });
    g.bench_function("ipc_socket", |bench| {
        bench.iter_custom(|iters| {
            let name = format!("bench-pipe-{}-{iters}-{}", std::process::id(), rand_tag());
            let config = ProduceConfig {
                name: name.clone(),
                descriptor: desc.clone(),
                frames: iters.max(2),
                wait_consumers: 1,
                wait_timeout: Duration::from_secs(30),
                options: ProducerOptions {
                    lossless: true,
                    ..Default::default()
                },
                frame_interval: None,
                timestamps: false,
                picture: false,
            };
            let pm = a.clone();
            let t = std::thread::spawn(move || run_producer(pm, &config, |_| {}).unwrap());
            let opts = ConsumerOptions {
                lossless: true,
                ..Default::default()
            };
            let r = retry_not_found(Duration::from_secs(10), || {
                run_consumer(
                    b.clone(),
                    &name,
                    opts.clone(),
                    0,
                    Duration::from_secs(10),
                    |_| {},
                )
            })
            .unwrap();
            t.join().unwrap();
            Duration::from_secs_f64(r.seconds * iters as f64 / (r.frames.max(2) - 1) as f64)
        })
    });
    g.finish();
}

fn rand_tag() -> u64 {
    geyser::ipc::clock::monotonic_ns()
}

criterion_group!(benches, textures, fd_transfer, handoff, pipeline);
/// What `criterion_main!(benches)` would generate, as a function `main.rs` calls on Linux.
pub fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
