"""Fixtures for geyser's Python tests: the Rust example binaries (ipc_producer, ipc_consumer)
as real child processes, unique endpoint names, and a check that no test caused a Vulkan
validation error (run with GEYSER_VALIDATION=1, as scripts/test.sh does)."""

import os
import pathlib
import subprocess
import time
import uuid

import numpy as np
import pytest

import geyser
from geyser import _native

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("GEYSER_BIN_DIR", REPO / "target" / "debug" / "examples"))


def binary(name):
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `cargo build --example {name}` (scripts/test.sh does)")
    return str(path)


def frame_word(frame):
    """The 32-bit word ipc_producer fills frame `frame` with (geyser_harness::pattern)."""
    return (((frame & 0xFFFFFFFF) ^ 0x5EED0000) * 0x9E3779B1) & 0xFFFFFFFF


def pattern(frame, shape, dtype=np.uint8):
    """The bytes of frame `frame` as ipc_producer writes them: its word repeated, as an array
    of `shape` and `dtype`."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    word = np.frombuffer(np.uint32(frame_word(frame)).astype("<u4").tobytes(), dtype=np.uint8)
    return np.resize(word, nbytes).view(dtype).reshape(shape)


@pytest.fixture
def endpoint():
    return f"pytest-{uuid.uuid4().hex[:12]}"


class Child:
    """A child process whose output is kept for failure messages."""

    def __init__(self, args):
        self.args = args
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait(self, timeout=60):
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def spawn():
    children = []

    def start(*args):
        child = Child([str(a) for a in args])
        children.append(child)
        return child

    yield start
    for c in children:
        c.kill()


def connect(name, timeout=20.0, **kwargs):
    """A consumer of `name`, retrying while its producer is still starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return geyser.Consumer(name, **kwargs)
        except geyser.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def wait_for_endpoint(name, timeout=30.0):
    """Waits until a producer listens at `name` (its socket exists)."""
    if os.environ.get("GEYSER_RUNTIME_DIR"):
        base = pathlib.Path(os.environ["GEYSER_RUNTIME_DIR"])
    elif os.environ.get("XDG_RUNTIME_DIR"):
        base = pathlib.Path(os.environ["XDG_RUNTIME_DIR"]) / "geyser"
    else:
        base = pathlib.Path(f"/tmp/geyser-{os.getuid()}")
    deadline = time.monotonic() + timeout
    while not (base / f"{name}.sock").exists():
        if time.monotonic() > deadline:
            pytest.fail(f"no producer appeared at {base / name}.sock")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_validation_errors():
    before, _ = _native._validation_errors()
    yield
    count, messages = _native._validation_errors()
    assert count == before, f"Vulkan validation errors: {messages}"
