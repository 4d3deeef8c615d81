"""Peer comparison, same files, one run: icmpscope against the reference walker (the practical
single-core limit), cat (the bandwidth limit), dpkt, scapy, tshark and tcpdump.

Two kinds of figure. Whole process, for every command: what a one-shot command pays (Python's
start-up and polars' import included). In process, for icmpscope: what a notebook or a pipeline
pays, read_pcap timed in this warm interpreter (imports excluded, one warm-up read) pinned to one
core and alternating run by run with the walker pinned to the same core; the ratios to the walker
use these.

    python bench/compare.py [--runs 3] [--quick]

Generates (or reuses) the standard captures of ../shared/perf in bench/out/, builds the walker,
times each command (median of --runs, page cache warm), and writes bench/RESULTS.md with Mpps, MB/s,
peak RSS and the ratios. Absolute times on a shared machine move from run to run; the ratios of
one run are what count. --quick uses small captures (the CI smoke run).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PERF = ROOT.parent / "shared" / "perf"
OUT = BENCH / "out"
PEERS = BENCH / "peers"


@dataclass
class Timing:
    name: str
    capture: str
    packets: int
    nbytes: int
    wall: float
    cpu: float | None  # None: timed in process, where neither is the read's own
    rss_mib: float | None

    @property
    def mpps(self) -> float:
        return self.packets / self.wall / 1e6 if self.packets else 0.0


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(name: str, capture: Path, packets: int, cmd: list[str], runs: int, env: dict[str, str] | None = None,
            nbytes: int | None = None) -> Timing:
    run_once(cmd, env)  # warm the page cache and the interpreter's imports
    samples = [run_once(cmd, env) for _ in range(runs)]
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples)
    rss = max(s[2] for s in samples)
    t = Timing(name, capture.name, packets, capture.stat().st_size if nbytes is None else nbytes, wall, cpu, rss)
    print(f"{name:28s} {capture.name:16s} {t.wall:8.3f} s {t.mpps:7.2f} Mpps {rss:8.1f} MiB", flush=True)
    return t


def ensure_capture(name: str, packets: int, profile: str) -> Path:
    path = OUT / name
    if not path.exists():
        subprocess.run([sys.executable, str(PERF / "gen_pcap.py"), "--packets", str(packets), "--profile", profile,
                        "--seed", "1", str(path)], check=True, stdout=subprocess.DEVNULL)
    return path


def walker() -> Path:
    target = OUT / "walker-target"
    subprocess.run(["cargo", "build", "-q", "--release", "--manifest-path", str(PERF / "walker" / "Cargo.toml"),
                    "--target-dir", str(target)], check=True)
    return target / "release" / "walker"


def versions() -> list[str]:
    def first_line(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "not installed"

    import polars
    import pyarrow

    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"python {platform.python_version()}, polars {polars.__version__}, pyarrow {pyarrow.__version__}, icmpscope {importlib.metadata.version('icmpscope')}",
        first_line(["tshark", "--version"]),
        first_line(["tcpdump", "--version"]),
    ]
    try:
        import dpkt

        lines.append(f"dpkt {dpkt.__version__}")
    except ImportError:
        lines.append("dpkt not installed")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--in-process-runs", type=int, default=5, help="median of these for the in-process figures")
    parser.add_argument("--quick", action="store_true", help="small captures, one run (CI smoke)")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    runs = 1 if args.quick else args.runs
    scale = 100 if args.quick else 1
    mixed_n, minimal_n = 2_000_000 // scale, 5_000_000 // scale
    mixed = ensure_capture(f"mixed_{mixed_n}.pcap" if args.quick else "mixed_2m.pcap", mixed_n, "mixed")
    minimal = ensure_capture(f"min_{minimal_n}.pcap" if args.quick else "min_5m.pcap", minimal_n, "minimal")
    walk = walker()
    py = sys.executable
    one_thread = {**os.environ, "RAYON_NUM_THREADS": "1", "POLARS_MAX_THREADS": "1"}
    ours = [py, str(PEERS / "icmpscope_read.py")]
    results: list[Timing] = []
    arrow_mib: dict[str, float] = {}
    for capture, n in ((mixed, mixed_n), (minimal, minimal_n)):
        results.append(measure("icmpscope read_pcap (1 thread)", capture, n, [*ours, str(capture)], runs, one_thread))
        results.append(measure("icmpscope read_pcap (2 threads)", capture, n, [*ours, str(capture)], runs))
        results.append(measure("walker walk-buf", capture, n, [str(walk), "walk-buf", str(capture)], runs))
        results.append(measure("cat", capture, n, ["cat", str(capture)], runs))
        size = subprocess.run([*ours, "--arrow-mib", str(capture)], capture_output=True, text=True, check=True).stdout
        arrow_mib[capture.name] = float(size)
    baseline = measure("python, polars and icmpscope imported", mixed, 0, [py, "-c", "import polars, icmpscope"], runs)
    # compressed input against decompression alone (gzip -1 and zstd -3: what archives use)
    for suffix, compress, decompress in ((".gz", ["gzip", "-1", "-c"], ["gzip", "-dc"]), (".zst", ["zstd", "-q", "-3", "-c"], ["zstd", "-q", "-dc"])):
        if not shutil.which(compress[0]):
            continue
        packed = OUT / (mixed.name + suffix)
        if not packed.exists():
            # Written aside first: a failed compression (zstd skips a symbolic link) leaves no file.
            part = packed.with_name(packed.name + ".part")
            with open(part, "wb") as out:
                subprocess.run([*compress, str(mixed.resolve())], stdout=out, check=True)
            part.rename(packed)
        results.append(measure(f"icmpscope read_pcap ({suffix}, 2 threads)", packed, mixed_n, [*ours, str(packed)], runs))
        results.append(measure(f"{' '.join(decompress)} (decompression alone)", packed, mixed_n, [*decompress, str(packed)], runs))
    # two files on two threads against one thread on one file
    copy = OUT / f"copy_{mixed.name}"
    if not copy.exists():
        shutil.copyfile(mixed, copy)
    two = measure("icmpscope 2 files, 2 threads", mixed, 2 * mixed_n, [py, str(PEERS / "icmpscope_read.py"), str(mixed), str(copy)], runs,
                  nbytes=2 * mixed.stat().st_size)
    results.append(two)
    slow = 1
    if shutil.which("tshark"):
        fields = [x for f in ("frame.time_epoch", "ip.src", "ip.dst", "ip.ttl", "icmp.type", "icmp.code", "icmp.ident", "icmp.seq",
                              "ipv6.src", "ipv6.dst", "icmpv6.type", "icmpv6.code") for x in ("-e", f)]
        results.append(measure("tshark -T fields", mixed, mixed_n, ["tshark", "-n", "-r", str(mixed), "-Y", "icmp or icmpv6", "-T", "fields", *fields], slow))
    if shutil.which("tcpdump"):
        results.append(measure("tcpdump -nr (icmp)", mixed, mixed_n, ["tcpdump", "-nr", str(mixed), "icmp or icmp6"], slow))
    try:
        import dpkt  # noqa: F401

        results.append(measure("dpkt → pyarrow", mixed, mixed_n, [py, str(PEERS / "dpkt_read.py"), str(mixed)], slow))
    except ImportError:
        print("dpkt not installed: skipped")
    try:
        import scapy  # noqa: F401

        sl = min(100_000, mixed_n)
        results.append(measure("scapy (100k-packet slice)", mixed, sl, [py, str(PEERS / "scapy_read.py"), str(mixed), str(sl)], slow,
                               nbytes=mixed.stat().st_size * sl // mixed_n))
    except ImportError:
        print("scapy not installed: skipped")
    results.append(baseline)
    results += in_process(((mixed, mixed_n), (minimal, minimal_n)), copy, walk, 1 if args.quick else args.in_process_runs)
    write_results(results, mixed, minimal, args.quick, arrow_mib)


IN_PROCESS = "icmpscope read_pcap in process (1 thread, pinned)"
WALKER_PINNED = "walker walk-buf (pinned, alternating)"
IN_PROCESS_NO_FLOWS = "icmpscope read_pcap(flows=False) in process (1 thread, pinned)"
IN_PROCESS_2T = "icmpscope read_pcap in process (2 threads)"
IN_PROCESS_2F = "icmpscope in process, 2 files, 2 threads"


def in_process(captures: tuple[tuple[Path, int], ...], copy: Path, walk: Path, runs: int) -> list[Timing]:
    """read_pcap timed in this process (see the module), the walker alternating with it."""
    import icmpscope as ic

    def timed(name: str, capture: Path, packets: int, read, walker: bool = False,
              nbytes: int | None = None) -> list[Timing]:
        read()  # warm-up: the allocator's pages, polars' thread pool, the page cache
        ours, walked = [], []
        for _ in range(runs):
            start = time.perf_counter()
            read()
            ours.append(time.perf_counter() - start)
            if walker:
                walked.append(run_once(["taskset", "-c", "0", str(walk), "walk-buf", str(capture)])[0])
        size = capture.stat().st_size if nbytes is None else nbytes
        out = [Timing(name, capture.name, packets, size, statistics.median(ours), None, None)]
        if walker:
            out.append(Timing(WALKER_PINNED, capture.name, packets, size, statistics.median(walked), None, None))
        for t in out:
            print(f"{t.name:28s} {t.capture:16s} {t.wall:8.3f} s {t.mpps:7.2f} Mpps", flush=True)
        return out

    every = os.sched_getaffinity(0)
    results: list[Timing] = []
    os.sched_setaffinity(0, {min(every)})
    try:
        for capture, n in captures:
            results += timed(IN_PROCESS, capture, n, lambda c=capture: ic.read_pcap(c, threads=1), walker=True)
            results += timed(IN_PROCESS_NO_FLOWS, capture, n, lambda c=capture: ic.read_pcap(c, threads=1, flows=False))
    finally:
        os.sched_setaffinity(0, every)
    mixed, n = captures[0]
    results += timed(IN_PROCESS_2T, mixed, n, lambda: ic.read_pcap(mixed, threads=2))
    results += timed(IN_PROCESS_2F, mixed, 2 * n, lambda: ic.read_pcap([mixed, copy], threads=2),
                     nbytes=2 * mixed.stat().st_size)
    return results


def write_results(results: list[Timing], mixed: Path, minimal: Path, quick: bool, arrow_mib: dict[str, float]) -> None:
    def pick(name: str, capture: Path) -> Timing | None:
        return next((t for t in results if t.name == name and t.capture == capture.name), None)

    lines = ["# Benchmark results", "", "Written by `python bench/compare.py`" + (" --quick (smoke run: small captures)" if quick else "") +
             f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Whole-process times, median of runs, warm page cache.", ""]
    lines += [f"- {v}" for v in versions()]
    lines += ["", "| command | capture | packets | wall s | Mpps | MB/s | CPU s | peak RSS MiB |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for t in results:
        rates = f"{t.mpps:.2f} | {t.nbytes / t.wall / 1e6:.0f}" if t.packets else "– | –"
        cpu, rss = ("–", "–") if t.cpu is None else (f"{t.cpu:.2f}", f"{t.rss_mib:.0f}")
        lines.append(f"| {t.name} | {t.capture} | {t.packets:,} | {t.wall:.3f} | {rates} | {cpu} | {rss} |")
    lines += ["", "## Ratios (packets/s of icmpscope ÷ packets/s of the other, same run)", "",
              "In process (a warm interpreter, pinned, alternating with the walker; median of runs):", "",
              "| ratio | value |", "|---|---:|"]
    inside = pick(IN_PROCESS, mixed)
    for capture in (mixed, minimal):
        ours, walker = pick(IN_PROCESS, capture), pick(WALKER_PINNED, capture)
        if ours and walker:
            lines.append(f"| ours ÷ walker walk-buf ({capture.name}) | {ours.mpps / walker.mpps:.2f} |")
    for capture in (mixed, minimal):
        ours, bare = pick(IN_PROCESS, capture), pick(IN_PROCESS_NO_FLOWS, capture)
        if ours and bare:
            lines.append(f"| cost of the flows table: read_pcap() ÷ read_pcap(flows=False) ({capture.name}) | {ours.wall / bare.wall:.2f} |")
    dpkt = pick("dpkt → pyarrow", mixed)
    if inside and dpkt:
        lines.append(f"| ours ÷ dpkt → pyarrow (dpkt a whole process) | {inside.mpps / dpkt.mpps:.1f} |")
    for name, label in ((IN_PROCESS_2F, "2 files on 2 threads ÷ 1 file on 1 thread"),
                        (IN_PROCESS_2T, "one file on 2 threads ÷ 1 thread (mixed)")):
        t = pick(name, mixed)
        if inside and t:
            lines.append(f"| {label} | {t.mpps / inside.mpps:.2f} |")
    lines += ["", "Whole process (start-up and imports included):", "", "| ratio | value |", "|---|---:|"]
    for capture in (mixed, minimal):
        ours = pick("icmpscope read_pcap (1 thread)", capture)
        for other in ("walker walk-buf", "cat"):
            t = pick(other, capture)
            if ours and t:
                lines.append(f"| ours ÷ {other} ({capture.name}) | {ours.mpps / t.mpps:.2f} |")
    ours = pick("icmpscope read_pcap (1 thread)", mixed)
    for other in ("tshark -T fields", "tcpdump -nr (icmp)", "dpkt → pyarrow", "scapy (100k-packet slice)"):
        t = pick(other, mixed)
        if ours and t:
            lines.append(f"| ours ÷ {other} | {ours.mpps / t.mpps:.1f} |")
    two = pick("icmpscope 2 files, 2 threads", mixed)
    if ours and two:
        lines.append(f"| 2 files on 2 threads ÷ 1 file on 1 thread | {two.mpps / ours.mpps:.2f} |")
    for capture in (mixed, minimal):
        one, both = pick("icmpscope read_pcap (1 thread)", capture), pick("icmpscope read_pcap (2 threads)", capture)
        if one and both:
            lines.append(f"| one file on 2 threads ÷ 1 thread ({capture.name}) | {both.mpps / one.mpps:.2f} |")
    for suffix, tool in ((".gz", "gzip -dc"), (".zst", "zstd -q -dc")):
        packed = mixed.name + suffix
        read = next((t for t in results if t.capture == packed and t.name.startswith("icmpscope")), None)
        alone = next((t for t in results if t.capture == packed and t.name.startswith(tool)), None)
        if read and alone:
            lines.append(f"| wall of read_pcap ({suffix}) ÷ wall of {tool} | {read.wall / alone.wall:.2f} |")
    lines += ["", "## Other targets", ""]
    both = pick("icmpscope read_pcap (2 threads)", minimal)
    if both:
        lines.append(f"- minimal frames on both cores: {both.mpps:.2f} Mpps (10 GbE line rate at 64-byte frames: 14.88 Mpps)")
    for capture in (mixed, minimal):
        one = pick("icmpscope read_pcap (1 thread)", capture)
        if one and capture.name in arrow_mib:
            size = arrow_mib[capture.name]
            lines.append(f"- read_pcap peak RSS on {capture.name}: {one.rss_mib:.0f} MiB for {size:.0f} MiB of Arrow tables"
                         f" (bound 1.5 × Arrow + 64 MiB = {1.5 * size + 64:.0f} MiB)")
    baseline = next((t for t in results if t.name.startswith("python, polars")), None)
    if baseline:
        lines.append(f"- of that, the interpreter with polars and icmpscope imported: {baseline.rss_mib:.0f} MiB")
    out = BENCH / ("RESULTS.quick.md" if quick else "RESULTS.md")
    # The detection figures (bench/test_bench_detect.py, cluster_memory.py) are kept as written.
    kept = (BENCH / "RESULTS.md").read_text().partition(DETECTION)
    out.write_text("\n".join(lines) + "\n" + ("\n" + DETECTION + kept[2] if kept[1] else ""))
    print("\n".join(lines))


DETECTION = "## Detection"

if __name__ == "__main__":
    main()
