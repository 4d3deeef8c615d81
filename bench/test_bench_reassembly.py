"""Reassembly throughput and memory, on captures written by icmpscope.synth into a tmp dir.

Opt-in (bench/ is not in the default testpaths)::

    PYTHONPATH=python python -m pytest bench/test_bench_reassembly.py

Prints packets/s and peak RSS (``resource.getrusage`` of a child process that only reads the
capture); nothing here asserts a time.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import icmpscope as ic
import icmpscope.synth as synth
from conftest import mean_seconds

pytest.importorskip("pytest_benchmark")

T0 = 1_700_000_000 * 10**9
C, D = "2001:db8::1", "2001:db8::2"
MIB = 1 << 20
MIXED_PACKETS = 300_000
DISTINCT_IDS = 1_000_000
# Offset of the IPv6 fragment header's offset field and identification in an Ethernet frame.
V6_FRAG_OFFSET, V6_FRAG_ID = 14 + 40 + 2, 14 + 40 + 4


def _mixed_frames() -> Iterator[tuple[int, bytes]]:
    """Two pings, then one fragment, over and over: a third of the packets are fragments of
    2-fragment echo requests (1480 + 528 bytes)."""
    pings = [synth.ethernet(synth.ping(f"10.0.{i // 200}.{i % 200 + 1}", "10.1.0.1", id=i, seq=i)) for i in range(400)]
    datagrams = [
        [synth.ethernet(f) for f in synth.fragment_ipv4_payload(
            f"10.2.0.{i % 200 + 1}", "10.1.0.1", synth.echo_request(i, 1, bytes(2000)), ident=i, size=1480)]
        for i in range(1000)
    ]
    for k in range(MIXED_PACKETS // 3):
        yield T0 + 3 * k * 10_000, pings[(2 * k) % len(pings)]
        yield T0 + (3 * k + 1) * 10_000, pings[(2 * k + 1) % len(pings)]
        yield T0 + (3 * k + 2) * 10_000, datagrams[(k // 2) % len(datagrams)][k % 2]


def _distinct_id_frames() -> Iterator[tuple[int, bytes]]:
    """One million first fragments (IPv6, 8 bytes each) with distinct identifications: none ever
    completes, so only the budget and the cap bound what is held."""
    template = synth.ethernet(synth.fragment_ipv6_payload(C, D, synth.echo_request6(1, 1, bytes(64), src=C, dst=D),
                                                         ident=0, size=8)[0])
    head, tail = template[:V6_FRAG_ID], template[V6_FRAG_ID + 4:]
    for i in range(DISTINCT_IDS):
        yield T0 + i * 1000, head + i.to_bytes(4, "big") + tail


def _overlapping_frames(count: int) -> Iterator[tuple[int, bytes]]:
    """``count`` 16-byte fragments of one IPv6 datagram at offsets cycling over 0..64000 in a
    stride that makes each overlap its neighbours, never completing."""
    template = synth.ethernet(synth.fragment_ipv6_payload(C, D, bytes(range(16)), ident=7, size=16, more=True)[0])
    head, tail = template[:V6_FRAG_OFFSET], template[V6_FRAG_OFFSET + 2:]
    for i in range(count):
        offset = (i * 7919 % 8000) * 8
        yield T0 + i * 1000, head + (offset | 1).to_bytes(2, "big") + tail


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reassembly")
    return {
        "mixed": synth.write_pcap(root / "mixed.pcap", _mixed_frames()),
        "distinct_ids": synth.write_pcap(root / "distinct_ids.pcap", _distinct_id_frames()),
        "overlap_100k": synth.write_pcap(root / "overlap_100k.pcap", _overlapping_frames(100_000)),
        "overlap_400k": synth.write_pcap(root / "overlap_400k.pcap", _overlapping_frames(400_000)),
    }


_CHILD = """
import json, resource, sys, time
import icmpscope as ic
start = time.perf_counter()
cap = ic.read_pcap(sys.argv[1], **json.loads(sys.argv[2]))
seconds = time.perf_counter() - start
stats = cap.stats.row(0, named=True)
print(json.dumps({"seconds": seconds, "packets": stats["packets"], "datagrams": cap.datagrams.height,
                  "evictions": stats["reassembly_evictions"],
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _read_in_child(path: Path, **options) -> dict:
    """Reads ``path`` in a fresh interpreter: its peak RSS is that read's (and the interpreter's)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), json.dumps(options)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _report(capsys, benchmark, line: str, **info) -> None:
    benchmark.extra_info.update(info)
    with capsys.disabled():
        print(f"\n[reassembly] {line}")


def test_throughput_a_third_fragments(benchmark, captures, capsys):
    path = captures["mixed"]
    cap = benchmark.pedantic(ic.read_pcap, args=(path,), rounds=3, iterations=1)
    stats = cap.stats.row(0, named=True)
    rate = stats["packets"] / (mean_seconds(benchmark) or float("nan"))
    _report(capsys, benchmark, f"{stats['packets']} packets, {stats['fragment']} fragments, "
            f"{stats['reassembled']} reassembled: {rate / 1e6:.2f} M packets/s",
            packets_per_second=rate)


def test_one_million_distinct_ids_stay_within_the_budget(benchmark, captures, capsys):
    path = captures["distinct_ids"]
    run = benchmark.pedantic(_read_in_child, args=(path,), rounds=1, iterations=1)
    # The same read with (almost) no budget: same tables, (almost) nothing held in reassembly.
    bare = _read_in_child(path, max_reassembly_bytes=64 << 10)
    held = run["peak_rss"] - bare["peak_rss"]
    _report(capsys, benchmark,
            f"{run['packets']} distinct ids: {run['packets'] / run['seconds'] / 1e6:.2f} M packets/s, "
            f"{run['evictions']} evictions, peak RSS {run['peak_rss'] / MIB:.0f} MiB with the default "
            f"32 MiB budget, {bare['peak_rss'] / MIB:.0f} MiB with 64 KiB: reassembly held "
            f"{held / MIB:.1f} MiB",
            packets_per_second=run["packets"] / run["seconds"], peak_rss=run["peak_rss"],
            peak_rss_small_budget=bare["peak_rss"], evictions=run["evictions"])


@pytest.mark.parametrize("name", ["overlap_100k", "overlap_400k"])
def test_overlapping_fragments_of_one_datagram_cost_linear_time(benchmark, captures, capsys, name):
    path = captures[name]
    cap = benchmark.pedantic(ic.read_pcap, args=(path,), rounds=3, iterations=1)
    packets = cap.stats["packets"][0]
    per_packet = (mean_seconds(benchmark) or float("nan")) / packets
    _report(capsys, benchmark, f"{packets} overlapping fragments of one datagram: {per_packet * 1e9:.0f} ns "
            f"per fragment, overlap {cap.datagrams['overlap_bytes'][0]} bytes", ns_per_fragment=per_packet * 1e9)
