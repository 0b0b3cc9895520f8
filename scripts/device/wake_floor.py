"""The floor under any handoff that crosses processes through a socket: one-way latency of a
few-byte SOCK_SEQPACKET message between two processes, sent at a steady pace, with the
receiver blocking in poll (what a Geyser consumer does by default) or spinning on a
non-blocking receive from shortly before each message is due (what ConsumerOptions::spin
does). No GPU, no Geyser: the machine's wake-up cost alone.

    python3 scripts/device/wake_floor.py [fps] [messages] [spin_lead_us]

Prints `RESULT wake-floor ...` lines: p50 and p99 one-way latency in µs for each receiver.
"""

import os
import select
import socket
import struct
import sys
import time


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    rank = round(p / 100 * (len(sorted_values) - 1))
    return sorted_values[min(rank, len(sorted_values) - 1)]


def receive(sock, count, spin, interval_ns, lead_ns):
    """One-way latencies (µs) of `count` messages carrying their send time."""
    out = []
    last = None
    for _ in range(count):
        if spin and last is not None:
            # Sleep until shortly before the next message is due, then poll without sleeping.
            due = last + interval_ns - lead_ns
            while time.monotonic_ns() < due:
                left = (due - time.monotonic_ns()) / 1e9
                if left > 0:
                    select.select([sock], [], [], left)
                    break
            sock.setblocking(False)
            while True:
                try:
                    data = sock.recv(64)
                    break
                except BlockingIOError:
                    continue
            sock.setblocking(True)
        else:
            data = sock.recv(64)
        now = time.monotonic_ns()
        (sent,) = struct.unpack("<Q", data[:8])
        out.append((now - sent) / 1e3)
        last = now
    return out


def main():
    fps = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    lead_us = float(sys.argv[3]) if len(sys.argv) > 3 else 100.0
    interval_ns = int(1e9 / fps)
    for spin in (False, True):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            a.close()
            start = time.monotonic_ns()
            for n in range(count + 1):
                due = start + n * interval_ns
                left = (due - time.monotonic_ns()) / 1e9
                if left > 0:
                    time.sleep(left)
                b.send(struct.pack("<Q", time.monotonic_ns()))
            os._exit(0)
        b.close()
        a.recv(64)  # the first message only starts the schedule
        lat = sorted(receive(a, count, spin, interval_ns, int(lead_us * 1000)))
        os.waitpid(pid, 0)
        a.close()
        mode = f"spin (from {lead_us:.0f} us before due)" if spin else "blocking (poll)"
        print(
            f"RESULT wake-floor receiver={'spin' if spin else 'block'} fps={fps:g} messages={count} "
            f"p50_us={percentile(lat, 50):.1f} p99_us={percentile(lat, 99):.1f}  # {mode}"
        )


if __name__ == "__main__":
    main()
