"""Publishes frames from Python for any Geyser consumer (Rust, wgpu, CUDA or Python).

    python publish.py NAME [--device cpu|cuda[:N]] [--frames N] [--size WxH] [--wait K]

Each frame is filled with the pattern of Geyser's test producers (its number's 32-bit word,
repeated), so ``ipc_consumer`` and ``consume.py --verify`` check every pixel. On the CPU the
frames are NumPy arrays; with ``--device cuda`` and PyTorch they are CUDA tensors, copied on
the GPU into the shared slot (CuPy is tried without PyTorch).
"""

import argparse
import sys
import time

import numpy as np

import geyser


def frame_word(n):
    return (((n & 0xFFFFFFFF) ^ 0x5EED0000) * 0x9E3779B1) & 0xFFFFFFFF


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="endpoint name to publish on")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    p.add_argument("--wait", type=int, default=1, help="consumers to wait for before publishing")
    p.add_argument("--lossless", action="store_true", help="deliver every frame to every consumer")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    make = None
    if args.device != "cpu":
        try:
            import torch

            dev = torch.device(args.device)

            def make(n):
                word = torch.tensor(list(np.uint32(frame_word(n)).astype("<u4").tobytes()), dtype=torch.uint8, device=dev)
                return word.repeat(height * width).view(height, width, 4)
        except ImportError:
            import cupy

            def make(n):
                word = cupy.asarray(np.frombuffer(np.uint32(frame_word(n)).astype("<u4").tobytes(), dtype=np.uint8))
                return cupy.tile(word, height * width).reshape(height, width, 4)
    if make is None:

        def make(n):
            word = np.frombuffer(np.uint32(frame_word(n)).astype("<u4").tobytes(), dtype=np.uint8)
            return np.tile(word, height * width).reshape(height, width, 4)

    with geyser.Producer(args.name, (height, width, 4), dtype="uint8", device=args.device,
                         lossless=args.lossless) as producer:
        print(f"producer {args.name!r}: {width}x{height} rgba8unorm on {producer.device}, "
              f"{producer.sync} sync; waiting for {args.wait} consumer(s)")
        if args.wait:
            producer.wait_for_consumers(args.wait, timeout=60)
        start = time.perf_counter()
        for n in range(args.frames):
            producer.publish(make(n))
        seconds = time.perf_counter() - start
        print(f"published {args.frames} frames in {seconds:.2f} s ({args.frames / seconds:.1f} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
