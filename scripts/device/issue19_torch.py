"""PyTorch consumer for scripts/device/issue19.sh (the NVIDIA machine): frames from a Geyser
producer become CUDA tensors without a copy (torch.from_dlpack), and every frame is checked
against its number's pattern by a torch op on the GPU.

    python3 issue19_torch.py consume NAME --frames N [--lossless] [--layout linear|texture]
    python3 issue19_torch.py latency NAME --frames N

`consume` keeps the GPU busy the way a model would: the check of frame n and the release of
frame n are queued on torch's stream, the host never waits for them (the count of bad frames
is read once at the end); prints fps. `latency` waits for each tensor to be usable (torch's
stream synchronized after from_dlpack) and reports the time from the producer sending the
frame message to that moment (CLOCK_MONOTONIC in both processes), p50/p99. One `RESULT {json}`
line each.
"""

import argparse
import json
import sys
import time

import numpy as np
import torch

import geyser


def frame_word(n):
    return (((n & 0xFFFFFFFF) ^ 0x5EED0000) * 0x9E3779B1) & 0xFFFFFFFF


def expected_words(count, device):
    """The pattern's four bytes for frames 0..count, on the GPU."""
    words = np.array([frame_word(n) for n in range(count)], dtype="<u4")
    return torch.from_numpy(words.view(np.uint8).reshape(count, 4).copy()).to(device)


def connect(name, **kwargs):
    deadline = time.monotonic() + 60
    while True:
        try:
            return geyser.Consumer(name, **kwargs)
        except geyser.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def consume(args):
    consumer = connect(args.name, device="cuda", layout=args.layout, lossless=args.lossless)
    device = torch.device(consumer.device)
    words = expected_words(args.frames + 16, device)
    bad = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    first = last = None
    numbers = []
    for frame in consumer:
        t = torch.from_dlpack(frame)  # zero-copy; torch's stream waits for the producer's write
        if first is None:
            first = time.perf_counter()
            assert t.data_ptr() != 0 and t.is_cuda, "not a CUDA tensor"
        bad += (t.view(-1, 4) != words[frame.number]).any()
        frame.release()  # on torch's stream: the producer's GPU waits for the check, not us
        numbers.append(frame.number)
        count += 1
        last = time.perf_counter()
        if count >= args.frames:
            break
    torch.cuda.synchronize()
    seconds = (last - first) if count > 1 else 0.0
    result = {
        "frames": count,
        "fps": (count - 1) / seconds if seconds > 0 else 0.0,
        "bad": int(bad.item()),
        "gaps": sum(1 for a, b in zip(numbers, numbers[1:]) if b != a + 1),
        "sync": consumer.sync,
        "layout": consumer.layout,
        "path": consumer.transfer_path,
        "torch": torch.__version__,
    }
    print("RESULT " + json.dumps(result))
    return 0 if count == args.frames and result["bad"] == 0 else 1


def latency(args):
    consumer = connect(args.name, device="cuda", layout=args.layout)
    device = torch.device(consumer.device)
    words = expected_words(args.frames + 1000, device)
    samples = []
    bad = 0
    stream = torch.cuda.current_stream()
    for frame in consumer:
        t = torch.from_dlpack(frame)
        stream.synchronize()  # the tensor's data is written: usable
        usable = time.monotonic_ns()
        samples.append((usable - frame.sent_ns) / 1e3)
        bad += int((t.view(-1, 4) != words[frame.number % len(words)]).any().item())
        frame.release()
        if len(samples) >= args.frames:
            break
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q / 100 * len(samples)))]
    result = {"frames": len(samples), "p50_us": pick(50), "p99_us": pick(99), "bad": bad, "sync": consumer.sync}
    print("RESULT " + json.dumps(result))
    return 0 if bad == 0 and samples else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["consume", "latency"])
    p.add_argument("name")
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--lossless", action="store_true")
    p.add_argument("--layout", default="linear")
    args = p.parse_args()
    return consume(args) if args.mode == "consume" else latency(args)


if __name__ == "__main__":
    sys.exit(main())
