"""geyser.Producer: arrays published as frames, read by the Rust `ipc_consumer` example (which
probes every frame on the GPU against its number's pattern) and by Python consumers."""

import numpy as np
import pytest

import geyser
from conftest import binary, connect, pattern


def test_python_frames_reach_a_rust_consumer_intact(endpoint, spawn):
    shape = (120, 160, 4)
    frames = 30
    with geyser.Producer(endpoint, shape, dtype="uint8", lossless=True) as producer:
        assert producer.format == "rgba8unorm" and producer.device == "cpu"
        consumer = spawn(binary("ipc_consumer"), "--name", endpoint, "--lossless", "--frames", frames)
        producer.wait_for_consumers(1, timeout=30)
        for n in range(frames):
            assert producer.publish(pattern(n, shape), timeout=30) == n
        code, out = consumer.wait(timeout=60)
        assert producer.frames == frames
    assert code == 0, out
    assert f"{frames} frames" in out and "0 corrupted" in out, out


@pytest.mark.parametrize(
    "shape,dtype,fmt",
    [((32, 48), "float32", "r32float"), ((32, 48, 2), "uint16", "rg16unorm"), ((32, 48, 4), "float16", "rgba16float")],
)
def test_python_to_python_round_trip(shape, dtype, fmt):
    name = f"pytest-rt-{fmt}"
    rng = np.random.default_rng(7)
    with geyser.Producer(name, shape, dtype=dtype, lossless=True) as producer:
        assert producer.format == fmt and producer.dtype == dtype
        consumer = connect(name, lossless=True)
        assert consumer.shape == list(shape) and consumer.dtype == dtype
        producer.wait_for_consumers(1, timeout=10)
        for n in range(3):
            if dtype == "uint16":
                array = rng.integers(0, 65535, size=shape, dtype=np.uint16)
            else:
                array = rng.standard_normal(shape).astype(dtype)
            # Padded rows publish too (texels contiguous, rows apart).
            padded = np.zeros((shape[0], shape[1] + 3, *shape[2:]), dtype=dtype)
            padded[:, : shape[1]] = array
            producer.publish(padded[:, : shape[1]], timeout=10)
            with consumer.next_frame(timeout=10) as frame:
                assert frame.number == n
                np.testing.assert_array_equal(frame.numpy(), array)
        consumer.close()


def test_publish_through_dlpack_of_a_non_numpy_array():
    class Wrapped:
        """Any object with __dlpack__ publishes (here a NumPy array behind it)."""

        def __init__(self, a):
            self.a = a

        def __dlpack__(self, **kwargs):
            return self.a.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

    name = "pytest-wrapped"
    shape = (8, 8, 4)
    with geyser.Producer(name, shape, lossless=True) as producer:
        consumer = connect(name, lossless=True)
        producer.wait_for_consumers(1, timeout=10)
        producer.publish(Wrapped(pattern(5, shape)), timeout=10)
        with consumer.next_frame(timeout=10) as frame:
            np.testing.assert_array_equal(frame.numpy(), pattern(5, shape))
        consumer.close()
