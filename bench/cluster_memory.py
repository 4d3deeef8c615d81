"""Client and worker peaks of ``analyze`` on a Dask LocalCluster (2 worker processes × 4 GiB).

    python bench/cluster_memory.py [--files 8]

The archive is copies of bench/out/mixed_2m.pcap (generate it with ../shared/perf/gen_pcap.py);
prints the alerts, the time, the client's peak RSS and each worker's.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

MIXED = Path(__file__).resolve().parent / "out" / "mixed_2m.pcap"


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    import icmpscope as ic
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = [shutil.copy(MIXED, Path(folder) / f"sensor{i}.pcap") for i in range(args.files)]
        with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="4GiB",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            start = time.perf_counter()
            report = ic.analyze(paths, executor=client, progress=False)
            seconds = time.perf_counter() - start
            workers = sorted(client.run(_peak).values())
            alive = len(client.scheduler_info()["workers"])
    rows = int(report.summary["packets"].sum())
    print(f"{args.files} files, {rows:,} ICMP rows: {report.alerts.height} alerts in {seconds:.1f} s; "
          f"client peak RSS {_peak()} MiB, worker peaks {workers} MiB, {alive} workers at the end")


if __name__ == "__main__":
    main()
