"""Detection beside reading: detect.all over a capture read into memory, over scan_pcap
(streamed twice), and analyze over several files. detect ÷ read is printed (never asserted)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import PACKETS, mean_seconds

import icmpscope as ic


@pytest.fixture(scope="module")
def mixed_capture(mixed: Path) -> ic.Capture:
    return ic.read_pcap(mixed)


def _ratio(benchmark, mixed: Path, rows: int) -> None:
    mean = mean_seconds(benchmark)
    if mean is None:
        return
    start = time.perf_counter()
    ic.read_pcap(mixed)
    read = time.perf_counter() - start
    benchmark.extra_info["rows/s"] = round(rows / mean)
    benchmark.extra_info["detect/read"] = round(mean / read, 2)
    print(f"\n{benchmark.name}: {rows / mean / 1e6:.2f} M rows/s, detect ÷ read {mean / read:.2f}")


def test_detect_all_in_memory(benchmark, mixed: Path, mixed_capture: ic.Capture) -> None:
    alerts = benchmark(ic.detect.all, mixed_capture)
    assert alerts.equals(ic.detect.all(mixed_capture.icmp.lazy()))
    _ratio(benchmark, mixed, mixed_capture.icmp.height)


def test_detect_all_streamed(benchmark, mixed: Path, mixed_capture: ic.Capture) -> None:
    alerts = benchmark.pedantic(lambda: ic.detect.all(ic.scan_pcap(mixed)), rounds=1, iterations=1)
    assert alerts.equals(ic.detect.all(mixed_capture.icmp))
    _ratio(benchmark, mixed, mixed_capture.icmp.height)


def test_analyze_two_files(benchmark, mixed: Path, mixed_capture: ic.Capture) -> None:
    report = benchmark.pedantic(lambda: ic.analyze([mixed, mixed], progress=False), rounds=1, iterations=1)
    assert report.stats["packets"].sum() == 2 * PACKETS
