//! `geyser::cuda` where CUDA cannot run: no driver library, a driver without an entry point
//! Geyser calls, a driver without devices. Each gives a typed error, never a panic. The driver
//! stand-ins are tiny C libraries built here with `cc` and put on `LD_LIBRARY_PATH` of a child
//! process (the driver is loaded once per process). On a machine with CUDA the first test is
//! skipped; the GPU paths run on the device machine (scripts/device/issue19.sh).

#![cfg(all(target_os = "linux", feature = "cuda"))]

use std::path::{Path, PathBuf};
use std::process::Command;

use geyser::cuda::{devices, init, CudaConsumer, CudaDevice, DRIVER_SYMBOLS};
use geyser::Error;

/// Not a test: the body of a child process that loads a stand-in driver (`GT_CUDA_CHILD`)
/// and prints what each entry point answered.
#[test]
fn child_cuda_entry() {
    if std::env::var_os("GT_CUDA_CHILD").is_none() {
        return;
    }
    println!("INIT {}", describe(init().map(|_| ())));
    println!(
        "DEVICES {}",
        describe(devices().map(|d| d.len().to_string()))
    );
    println!("DEVICE0 {}", describe(CudaDevice::new(0).map(|_| ())));
}

fn describe<T: std::fmt::Debug>(r: geyser::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e @ Error::Unsupported { .. }) => format!("unsupported: {e}"),
        Err(e @ Error::NoDevice { .. }) => format!("no-device: {e}"),
        Err(e) => format!("other: {e}"),
    }
}

#[test]
fn without_a_driver_every_entry_point_is_unsupported() {
    if init().is_ok() {
        eprintln!("skipped: this machine has a CUDA driver");
        return;
    }
    for e in [
        init().map(|_| ()).unwrap_err(),
        devices().map(|_| ()).unwrap_err(),
        CudaDevice::new(0).map(|_| ()).unwrap_err(),
        CudaDevice::with_uuid(&[7; 16]).map(|_| ()).unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::Unsupported { feature, .. } if feature == "CUDA"),
            "{e}"
        );
    }
    // Nothing is tried before the device: not even the connection.
    let missing = CudaDevice::new(0)
        .and_then(|d| CudaConsumer::connect("no-such-endpoint", &d, Default::default()))
        .unwrap_err();
    assert!(matches!(missing, Error::Unsupported { .. }), "{missing}");
}

/// Builds a stand-in `libcuda.so` from `source` into `dir`; `None` without a C compiler.
fn stub(dir: &Path, source: &str) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let c = dir.join("stub.c");
    std::fs::write(&c, source).unwrap();
    let lib = dir.join("libcuda.so");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&c)
        .status();
    match built {
        Ok(s) if s.success() => Some(dir.to_path_buf()),
        _ => None,
    }
}

/// Runs `child_cuda_entry` with the stand-in in `dir` first on the library path.
fn run_child(dir: &Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_cuda_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GT_CUDA_CHILD", "1")
        .env("LD_LIBRARY_PATH", dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed (a panic?): {stdout}\n{stderr}"
    );
    stdout
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.split_once(&format!("{key} ")).map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no {key} line in {out}"))
}

/// C definitions of every entry point Geyser calls, returning `result` (0 = success), with
/// `overrides` (name → full definition) instead for some.
fn all_symbols(result: i32, overrides: &[(&str, &str)]) -> String {
    DRIVER_SYMBOLS
        .iter()
        .map(|name| match overrides.iter().find(|(n, _)| n == name) {
            Some((_, def)) => format!("{def}\n"),
            None => format!("int {name}(void) {{ return {result}; }}\n"),
        })
        .collect()
}

#[test]
fn an_old_or_empty_driver_is_unsupported_or_has_no_device_never_a_panic() {
    let base = std::env::temp_dir().join(format!("geyser-cuda-stubs-{}", std::process::id()));
    // A driver missing an entry point Geyser calls (here: everything but cuInit).
    let Some(partial) = stub(
        &base.join("partial"),
        "int cuInit(unsigned f) { return 0; }\n",
    ) else {
        eprintln!("skipped: no C compiler (cc) to build the stand-in drivers");
        return;
    };
    let out = run_child(&partial);
    let init = line(&out, "INIT");
    assert!(
        init.starts_with("unsupported") && init.contains("lacks"),
        "{out}"
    );
    assert!(line(&out, "DEVICE0").starts_with("unsupported"), "{out}");

    // Every entry point, but cuInit says there is no device (CUDA_ERROR_NO_DEVICE).
    let source = all_symbols(0, &[("cuInit", "int cuInit(unsigned f) { return 100; }")]);
    let no_device = stub(&base.join("no-device"), &source).unwrap();
    let out = run_child(&no_device);
    let init = line(&out, "INIT");
    assert!(
        init.starts_with("unsupported") && init.contains("CUDA_ERROR_NO_DEVICE"),
        "{out}"
    );

    // A working driver with zero devices: device 0 is `NoDevice`.
    let source = all_symbols(
        0,
        &[
            (
                "cuDriverGetVersion",
                "int cuDriverGetVersion(int *v) { *v = 12080; return 0; }",
            ),
            (
                "cuDeviceGetCount",
                "int cuDeviceGetCount(int *n) { *n = 0; return 0; }",
            ),
        ],
    );
    let empty = stub(&base.join("empty"), &source).unwrap();
    let out = run_child(&empty);
    assert_eq!(line(&out, "INIT"), "ok ()", "{out}");
    assert_eq!(line(&out, "DEVICES"), "ok \"0\"", "{out}");
    assert!(line(&out, "DEVICE0").starts_with("no-device"), "{out}");
    let _ = std::fs::remove_dir_all(&base);
}
