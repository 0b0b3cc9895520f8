//! `ipc_producer` with timeline semaphore synchronization forced: frames are handed over with no
//! host wait between the processes (the GPU waits on shared timelines). Fails with
//! `Unsupported` on devices that do not export timeline semaphores (lavapipe).
//!
//! Terminal 1: `cargo run --release --example timeline_ipc_producer -- --frames 10000`
//! Terminal 2: `cargo run --release --example timeline_ipc_consumer`

use std::process::Command;

fn main() {
    // Same program as ipc_producer, re-executed with --sync timeline (and any other arguments).
    let exe = std::env::current_exe().expect("current_exe");
    let sibling = exe.with_file_name(format!("ipc_producer{}", std::env::consts::EXE_SUFFIX));
    let status = Command::new(&sibling)
        .arg("--sync")
        .arg("timeline")
        .args(std::env::args().skip(1))
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "run {}: {e} (build it: cargo build --example ipc_producer)",
                sibling.display()
            )
        });
    std::process::exit(status.code().unwrap_or(1));
}
