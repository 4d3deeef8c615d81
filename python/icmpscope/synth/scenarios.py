"""Labelled traffic scenarios built from the packet builders: the demo sample, and one scenario
per alert kind (and benign look-alikes) for tests and benchmarks.

>>> frames = demo_frames()
>>> len(frames) > 0
True
"""
from __future__ import annotations

from .packets import ethernet, fragment_ipv4_payload, ping, echo_request
from .writer import Frame, write_pcap

__all__ = ["DEMO_START_NS", "demo_frames", "write_demo"]

DEMO_START_NS = 1_700_000_000_000_000_000
_SECOND = 1_000_000_000


def demo_frames(*, start: int = DEMO_START_NS) -> list[Frame]:
    """A small mixed sample: monitoring pings with replies, a ping sweep and a fragmented echo."""
    frames: list[Frame] = []
    for seq in range(5):  # a monitor pinging its gateway once a second
        t = start + seq * _SECOND
        frames.append(Frame(t, ethernet(ping("192.0.2.10", "192.0.2.1", id=7, seq=seq))))
        frames.append(Frame(t + 300_000, ethernet(ping("192.0.2.1", "192.0.2.10", id=7, seq=seq, reply=True))))
    for host in range(1, 41):  # a sweep of 198.51.100.0/24
        t = start + 6 * _SECOND + host * 10_000_000
        frames.append(Frame(t, ethernet(ping("203.0.113.66", f"198.51.100.{host}", id=99, seq=host))))
    big = echo_request(1, 1, bytes(range(256)) * 12)
    for i, fragment in enumerate(fragment_ipv4_payload("192.0.2.20", "192.0.2.30", big, ident=4242, size=1480)):
        frames.append(Frame(start + 8 * _SECOND + i * 1000, ethernet(fragment)))
    return sorted(frames, key=lambda f: f.ts)


def write_demo(path: str) -> str:
    """Write the demo sample as a pcap and return its path."""
    write_pcap(path, demo_frames())
    return path
