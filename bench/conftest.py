"""Benchmark captures, generated once per session into bench/out/ (opt-in suites: `pytest bench`).

ICMPSCOPE_BENCH_PACKETS sets the size (default 1,000,000; CI's smoke run uses a few thousand with
--benchmark-disable so the suites never rot).
"""
from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

OUT = Path(__file__).resolve().parent / "out"
GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "perf" / "gen_pcap.py"
PACKETS = int(os.environ.get("ICMPSCOPE_BENCH_PACKETS", "1000000"))
# Scripts, not test modules: importing them (--doctest-modules) would run them.
collect_ignore = ["peers", "compare.py", "scan_memory.py", "cluster_memory.py"]


def _generate(path: Path, packets: int, profile: str) -> Path:
    if path.exists():
        return path
    OUT.mkdir(exist_ok=True)
    if GENERATOR.exists():
        subprocess.run([sys.executable, str(GENERATOR), "--packets", str(packets), "--profile", profile, "--seed", "1", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    else:  # without ../shared/perf: the same kind of traffic from synth
        from icmpscope import synth as s

        frames = (s.Frame(1_700_000_000_000_000_000 + i * 1000, s.ethernet(s.ping("10.0.0.1", f"10.0.{i % 250}.{i % 200}", seq=i % 65536)))
                  for i in range(packets))
        s.write_pcap(path, frames)
    return path


@pytest.fixture(scope="session")
def mixed() -> Path:
    return _generate(OUT / f"bench_mixed_{PACKETS}.pcap", PACKETS, "mixed")


@pytest.fixture(scope="session")
def minimal() -> Path:
    return _generate(OUT / f"bench_min_{PACKETS}.pcap", PACKETS, "minimal")


@pytest.fixture(scope="session")
def mixed_gzip(mixed: Path) -> Path:
    path = mixed.with_suffix(".pcap.gz")
    if not path.exists():
        with open(mixed, "rb") as src, gzip.open(path, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return path


@pytest.fixture(scope="session")
def mixed_zstd(mixed: Path) -> Path:
    path = mixed.with_suffix(".pcap.zst")
    if not path.exists():
        subprocess.run(["zstd", "-q", "-3", "-f", str(mixed), "-o", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def rotated(mixed: Path) -> list[Path]:
    """The mixed capture cut into 8 rotated files at record boundaries (as a capture tool rotates)."""
    folder = OUT / f"rotated_{PACKETS}"
    if not folder.exists():
        folder.mkdir(parents=True)
        data = mixed.read_bytes()
        header, at, starts = data[:24], 24, []
        while at < len(data):
            starts.append(at)
            at += 16 + struct.unpack_from("<I", data, at + 8)[0]
        step = -(-len(starts) // 8)
        for i in range(8):
            chunk = starts[i * step:(i + 1) * step]
            end = starts[(i + 1) * step] if (i + 1) * step < len(starts) else len(data)
            (folder / f"part-{i}.pcap").write_bytes(header + data[chunk[0]:end])
    return sorted(folder.glob("part-*.pcap"))


def mean_seconds(benchmark: object) -> float | None:
    """The benchmark's mean time; None under --benchmark-disable (CI's smoke run)."""
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else stats.stats.mean


def report_rate(benchmark: object, packets: int, nbytes: int) -> None:
    """Packets/s and MB/s beside pytest-benchmark's times (nothing asserted on them)."""
    mean = mean_seconds(benchmark)
    if mean is None:
        return
    benchmark.extra_info["Mpps"] = round(packets / mean / 1e6, 3)
    benchmark.extra_info["MB/s"] = round(nbytes / mean / 1e6, 1)
    print(f"\n{benchmark.name}: {packets / mean / 1e6:.2f} Mpps, {nbytes / mean / 1e6:.0f} MB/s")
