"""Peak RSS of streaming a capture larger than a few GB through scan_pcap.

    python bench/scan_memory.py [--gigabytes 4.2] [--detect]

Generates (or reuses) bench/out/big_mixed.pcap with ../shared/perf/gen_pcap.py, then in a fresh
process runs scan_pcap(...).select("ts", "src", "icmp_type").collect(engine="streaming") and
reports the capture size, the rows and the process's peak RSS (ru_maxrss). With --detect it
runs ic.detect.all(scan_pcap(...)) instead: detection streamed in two passes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "perf" / "gen_pcap.py"
BYTES_PER_PACKET = 309  # mixed profile average, from gen_pcap's output

CHILD = """
import resource, sys, time
import polars as pl
import icmpscope as ic
t = time.perf_counter()
frame = ic.scan_pcap(sys.argv[1]).select("ts", "src", "icmp_type").collect(engine="streaming")
print(frame.height, round(time.perf_counter() - t, 1), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""
DETECT = """
import resource, sys, time
import icmpscope as ic
t = time.perf_counter()
alerts = ic.detect.all(ic.scan_pcap(sys.argv[1]))
print(alerts.height, round(time.perf_counter() - t, 1), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gigabytes", type=float, default=4.2)
    parser.add_argument("--detect", action="store_true", help="streamed detect.all instead of a 3-column scan")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / "big_mixed.pcap"
    packets = int(args.gigabytes * 1e9 / BYTES_PER_PACKET)
    if not path.exists() or path.stat().st_size < args.gigabytes * 1e9 * 0.95:
        subprocess.run([sys.executable, str(GENERATOR), "--packets", str(packets), "--profile", "mixed", "--seed", "2", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([sys.executable, "-c", DETECT if args.detect else CHILD, str(path)], check=True, capture_output=True, text=True).stdout.split()
    rows, seconds, rss = int(out[0]), float(out[1]), int(out[2])
    size = path.stat().st_size
    if args.detect:
        print(f"capture {size / 1e9:.2f} GB; detect.all(scan_pcap): {rows:,} alerts in {seconds} s; peak RSS {rss} MiB")
        return
    print(f"capture {size / 1e9:.2f} GB; scan_pcap → 3 columns, streaming: {rows:,} rows in {seconds} s; "
          f"peak RSS {rss} MiB (the result alone holds about {rows * 13 / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
