"""Receives frames from any Geyser producer and uses them as arrays.

    python consume.py NAME [--device cpu|cuda[:N]] [--frames N] [--verify]

On the CPU each frame becomes a NumPy array (a host copy). With ``--device cuda`` and
PyTorch installed, each frame becomes a CUDA tensor without a copy (``torch.from_dlpack``;
the tensor's stream waits on the GPU for the producer's write) and is reduced with a torch
op; without PyTorch, CuPy is tried, else NumPy host copies. ``--verify`` checks every frame
against the solid pattern of Geyser's test producers (``ipc_producer --pattern solid`` and
``publish.py``). Prints one summary line and exits non-zero if a frame was wrong.
"""

import argparse
import sys
import time

import numpy as np

import geyser


def frame_word(n):
    """The 32-bit word Geyser's test producers fill frame ``n`` with."""
    return (((n & 0xFFFFFFFF) ^ 0x5EED0000) * 0x9E3779B1) & 0xFFFFFFFF


def word_bytes(n):
    return np.frombuffer(np.uint32(frame_word(n)).astype("<u4").tobytes(), dtype=np.uint8)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="the producer's endpoint name")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--layout", default=None, help="linear or texture (default: linear on CUDA)")
    p.add_argument("--frames", type=int, default=0, help="stop after N frames (0: until the stream ends)")
    p.add_argument("--lossless", action="store_true", help="keep every frame (producer in lossless mode)")
    p.add_argument("--verify", action="store_true", help="check the test pattern of every frame")
    p.add_argument("--api", default="auto", choices=["auto", "torch", "cupy", "numpy"],
                   help="how CUDA frames become arrays (auto: torch, else cupy, else numpy)")
    args = p.parse_args()

    consumer = geyser.Consumer(args.name, device=args.device, layout=args.layout, lossless=args.lossless)
    api = "numpy" if args.api == "auto" else args.api
    if consumer.device != "cpu" and args.api == "auto":
        try:
            import torch

            api = "torch"
        except ImportError:
            try:
                import cupy  # noqa: F401

                api = "cupy"
            except ImportError:
                pass
    print(f"consumer of {args.name!r}: {consumer.shape} {consumer.dtype} on {consumer.device} "
          f"({consumer.layout} layout, {consumer.sync} sync, arrays via {api})")

    count = bad = 0
    start = None
    for frame in consumer:
        if start is None:
            start = time.perf_counter()
        if api == "torch":
            import torch

            t = torch.from_dlpack(frame)  # zero-copy; torch's stream waits for the producer
            if args.verify:
                expected = torch.from_numpy(word_bytes(frame.number)).to(t.device)
                ok = bool((t.view(-1, 4) == expected).all())  # every pixel, on the GPU
            else:
                ok = True
                t.float().mean()
        elif api == "cupy":
            import cupy

            a = cupy.from_dlpack(frame)
            ok = (not args.verify) or bool((a.reshape(-1, 4) == cupy.asarray(word_bytes(frame.number))).all())
        else:
            a = frame.numpy()
            ok = (not args.verify) or bool((a.reshape(-1, 4) == word_bytes(frame.number)).all())
        frame.release()
        count += 1
        bad += not ok
        if args.frames and count >= args.frames:
            break
    seconds = (time.perf_counter() - start) if start else 0.0
    fps = count / seconds if seconds > 0 else 0.0
    print(f"received {count} frames in {seconds:.2f} s ({fps:.1f} fps), "
          f"{'verified, ' if args.verify else ''}{bad} bad, counters {consumer.counters}")
    return 1 if bad or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
