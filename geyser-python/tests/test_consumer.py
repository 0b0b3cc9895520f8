"""geyser.Consumer on the host path (NumPy; lavapipe in CI): frames from the Rust
`ipc_producer` example, every pixel checked against its frame number's pattern."""

import gc

import numpy as np
import pytest

import geyser
from conftest import binary, connect, pattern

SIZE = (48, 64)  # height, width


def producer_args(name, frames, *extra):
    h, w = SIZE
    return [binary("ipc_producer"), "--name", name, "--size", f"{w}x{h}", "--frames", frames, "--wait", 1, "--pattern", "solid", *extra]


@pytest.mark.parametrize("layout", ["texture", "linear"])
def test_every_frame_from_ipc_producer_has_its_pattern(endpoint, spawn, layout):
    producer = spawn(*producer_args(endpoint, 40, "--lossless"))
    consumer = connect(endpoint, layout=layout, lossless=True)
    assert consumer.shape == [SIZE[0], SIZE[1], 4]
    assert consumer.dtype == "uint8" and consumer.format == "rgba8unorm"
    assert consumer.layout == layout and consumer.device == "cpu"
    numbers = []
    for frame in consumer:
        with frame:
            pixels = frame.numpy()
            assert pixels.shape == (SIZE[0], SIZE[1], 4) and pixels.dtype == np.uint8
            np.testing.assert_array_equal(pixels, pattern(frame.number, pixels.shape))
            numbers.append(frame.number)
        assert frame.released
    assert numbers == list(range(40))
    code, out = producer.wait()
    assert code == 0, out


def test_numpy_from_dlpack_reads_a_host_frame(endpoint, spawn):
    spawn(*producer_args(endpoint, 5, "--lossless"))
    consumer = connect(endpoint, lossless=True)
    frame = consumer.next_frame(timeout=20)
    assert frame.__dlpack_device__() == (1, 0)
    via_dlpack = np.from_dlpack(frame)
    np.testing.assert_array_equal(via_dlpack, pattern(frame.number, via_dlpack.shape))
    copy = frame.numpy()
    frame.release()
    # Host copies outlive their frame.
    np.testing.assert_array_equal(copy, via_dlpack)
    with pytest.raises(geyser.InvalidArgumentError, match="released"):
        frame.numpy()
    assert not hasattr(frame, "__cuda_array_interface__")


def test_producer_death_raises_peer_gone(endpoint, spawn):
    producer = spawn(*producer_args(endpoint, 0, "--interval-ms", 5))
    consumer = connect(endpoint)
    consumer.next_frame(timeout=20)
    producer.kill()
    with pytest.raises(geyser.PeerGoneError) as error:
        for _ in range(1000):
            consumer.next_frame(timeout=20)
    assert isinstance(error.value, ConnectionError) and error.value.kind == "PeerGone"
    # Iterating does not end quietly either: the producer died, it did not end the stream.
    with pytest.raises(geyser.PeerGoneError):
        next(iter(consumer))


def test_the_next_frame_and_garbage_collection_release_frames():
    name = f"pytest-gc-{id(object())}"
    shape = (16, 16, 4)
    with geyser.Producer(name, shape, slots=2, lossless=True) as producer:
        consumer = connect(name, lossless=True)
        producer.wait_for_consumers(1, timeout=10)
        producer.publish(pattern(0, shape))
        frame = consumer.next_frame(timeout=10)
        producer.publish(pattern(1, shape))
        # Both slots are held (frame 0 here, frame 1 sent and unread): no slot is free.
        with pytest.raises(geyser.TimeoutError) as error:
            producer.publish(pattern(2, shape), timeout=0.3)
        assert isinstance(error.value, TimeoutError)
        del frame
        gc.collect()
        producer.publish(pattern(2, shape), timeout=10)
        # Asking for the next frame releases the one before.
        second = consumer.next_frame(timeout=10)
        assert second.number == 1
        third = consumer.next_frame(timeout=10)
        assert second.released and third.number == 2
        np.testing.assert_array_equal(third.numpy(), pattern(2, shape))
        producer.publish(pattern(3, shape), timeout=10)
        consumer.close()


def test_bad_arguments_raise_typed_errors(endpoint, spawn):
    with pytest.raises(geyser.InvalidArgumentError, match="endpoint name"):
        geyser.Consumer("")
    with pytest.raises(geyser.NotFoundError) as missing:
        geyser.Consumer(endpoint)
    assert isinstance(missing.value, FileNotFoundError)
    for kwargs in ({"device": "tpu"}, {"device": -1}, {"layout": "tiled"}, {"sync": "binary!"}, {"timeout": -1}):
        with pytest.raises(geyser.InvalidArgumentError) as error:
            geyser.Consumer(endpoint, **kwargs)
        assert isinstance(error.value, ValueError), kwargs
    for args, kwargs in (
        (((0, 4),), {}),
        (((4, 4, 3),), {}),
        (((4, 4),), {"dtype": "complex64"}),
        (((4, 4, 4),), {"format": "depth32float"}),
        (((4, 4, 2),), {"format": "rgba8unorm"}),
        (((4,),), {}),
    ):
        with pytest.raises(geyser.InvalidArgumentError):
            geyser.Producer(endpoint, *args, **kwargs)
    with geyser.Producer(endpoint, (8, 8), dtype="float32") as producer:
        assert producer.format == "r32float" and producer.shape == [8, 8]
        for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.float32), [[0.0] * 8] * 8, np.zeros((8, 16), np.float32)[:, ::2]):
            with pytest.raises(geyser.InvalidArgumentError):
                producer.publish(bad, timeout=1)
        with pytest.raises(geyser.InvalidArgumentError):
            producer.publish(np.zeros((8, 8), np.float32), timeout=-2)
        with pytest.raises(geyser.AddressInUseError):
            geyser.Producer(endpoint, (8, 8))
    # A consumer of another process's producer, asking for what a host cannot give.
    spawn(*producer_args(endpoint + "x", 0, "--interval-ms", 5))
    consumer = connect(endpoint + "x")
    frame = consumer.next_frame(timeout=20)
    with pytest.raises(BufferError):
        frame.__dlpack__(dl_device=(2, 0))
    consumer.close()
    with pytest.raises(geyser.InvalidArgumentError, match="closed"):
        consumer.next_frame(timeout=1)


def test_cuda_without_a_driver_is_unsupported(endpoint, spawn):
    try:
        devices = geyser.cuda_devices()
    except geyser.UnsupportedError as e:
        assert "CUDA" in str(e) and e.kind == "Unsupported"
    else:
        pytest.skip(f"this machine has CUDA devices: {devices}")
    spawn(*producer_args(endpoint, 0, "--interval-ms", 5))
    with pytest.raises(geyser.UnsupportedError):
        connect(endpoint, device="cuda")
    with pytest.raises(geyser.UnsupportedError):
        geyser.Producer(endpoint + "c", (8, 8), device="cuda:0")
