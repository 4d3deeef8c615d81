"""Reading into polars: every table, projections, compressed input, many files."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import PACKETS, report_rate

import icmpscope as ic


@pytest.mark.parametrize("threads", [1, 2])
def test_read_pcap_icmp_table(benchmark, mixed: Path, threads: int) -> None:
    """One file; on 2 threads a file over 32 MiB is decoded in two pieces."""
    cap = benchmark(ic.read_pcap, mixed, threads=threads)
    assert cap.stats["packets"].item() == PACKETS
    report_rate(benchmark, PACKETS, mixed.stat().st_size)


@pytest.mark.parametrize("threads", [1, 2])
def test_read_pcap_minimal_frames(benchmark, minimal: Path, threads: int) -> None:
    cap = benchmark(ic.read_pcap, minimal, threads=threads)
    assert cap.icmp.height == PACKETS
    report_rate(benchmark, PACKETS, minimal.stat().st_size)


@pytest.mark.parametrize("table", ["icmp", "fragments", "datagrams", "stats", "errors"])
def test_each_table_alone(benchmark, mixed: Path, table: str) -> None:
    frame = benchmark(lambda: ic.scan_pcap(mixed, table).collect())
    assert frame.width > 0
    report_rate(benchmark, PACKETS, mixed.stat().st_size)


def test_scan_three_columns(benchmark, mixed: Path) -> None:
    frame = benchmark(lambda: ic.scan_pcap(mixed).select("ts", "src", "icmp_type").collect(engine="streaming"))
    assert frame.width == 3
    report_rate(benchmark, PACKETS, mixed.stat().st_size)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compressed_input(benchmark, request, kind: str) -> None:
    path = request.getfixturevalue(f"mixed_{kind}")
    cap = benchmark(ic.read_pcap, path)
    assert cap.stats["compression"].item() == kind
    report_rate(benchmark, PACKETS, path.stat().st_size)


def test_many_files_parallel(benchmark, rotated: list[Path]) -> None:
    cap = benchmark(ic.read_pcap, rotated)
    assert cap.stats["packets"].sum() == PACKETS
    report_rate(benchmark, PACKETS, sum(p.stat().st_size for p in rotated))


def test_analyze_rotated(benchmark, rotated: list[Path]) -> None:
    report = benchmark.pedantic(lambda: ic.analyze(rotated, progress=False), rounds=1, iterations=1)
    assert report.stats["packets"].sum() == PACKETS
    report_rate(benchmark, PACKETS, sum(p.stat().st_size for p in rotated))


def test_detect_all_on_large_icmp_table(benchmark, mixed: Path) -> None:
    icmp = ic.read_pcap(mixed).icmp
    alerts = benchmark(ic.detect.all, icmp)
    assert isinstance(alerts, pl.DataFrame)
    report_rate(benchmark, icmp.height, 0)
