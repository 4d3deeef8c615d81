"""Where `detect.all` spends its time, in process (issue #18): `read_pcap(flows=False)` and
`detect.all` timed whole, then each stage of `detect.all` (the bounds, the candidates' rows, each
detector over its rows, router inference) timed alone. Pin it: `taskset -c 0 python
bench/detect_stages.py CAPTURE [--runs N]`. Medians of N runs of CPU seconds (``--wall``: wall clock); prints a Markdown table.
``--alerts OUT.parquet`` also writes the alerts (to compare two versions of the code)."""
from __future__ import annotations

import argparse
import inspect
import statistics
import time

import polars as pl

import icmpscope as ic
from icmpscope.detect import DETECTORS, FROM_CAPTURE, engine, infer_routers, redirects
from icmpscope.detect import plans as plans_of
from icmpscope.detect.base import part_of


# CPU seconds of the process (all its threads, pinned to one core): on a shared, loaded machine
# the wall clock mostly measures the neighbours; CPU time is what the code costs.
clock = time.process_time


def timed(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        start = clock()
        out = fn()
        times.append(clock() - start)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stage-runs", type=int, default=None, help="runs of each stage (default: --runs)")
    ap.add_argument("--alerts")
    ap.add_argument("--whole-only", action="store_true")
    ap.add_argument("--wall", action="store_true", help="wall-clock seconds instead of CPU seconds")
    args = ap.parse_args()
    if args.wall:
        global clock
        clock = time.perf_counter
    ic.read_pcap(args.capture, flows=False)  # warm-up
    read, cap = timed(lambda: ic.read_pcap(args.capture, flows=False), args.runs)
    ic.detect.all(cap)  # warm-up
    detect, alerts = timed(lambda: ic.detect.all(cap), args.runs)
    print(f"{args.capture}: {cap.icmp.height:,} ICMP rows, {alerts.height:,} alerts")
    print(f"read_pcap(flows=False) {read:.3f} s, detect.all {detect:.3f} s, detect ÷ read {detect / read:.2f}")
    if args.alerts:
        alerts.write_parquet(args.alerts)
    if args.whole_only:
        return
    runs = args.stage_runs or args.runs
    icmp = cap.icmp
    plans = plans_of.of(DETECTORS, {})

    def bounds():
        parts = {d: engine.partial_bounds(icmp, plan, whole=True) for d, plan in plans.items()}
        computed = iter(pl.collect_all([q for qs in parts.values() for q in qs]))
        return {d: engine.candidates([next(computed) for _ in parts[d]], plan) for d, plan in plans.items()}

    t_bounds, chosen = timed(bounds, runs)
    rows, t_select = {}, {}
    for d in DETECTORS:
        t_select[d], rows[d] = timed(lambda d=d: engine.select_rows(icmp, plans[d], chosen[d]), runs)
    whole = engine.whole_of(icmp, several=False)
    learn = {k: p.default for k, p in inspect.signature(infer_routers).parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY}
    t_routers, found = timed(lambda: infer_routers(icmp, **learn), runs)
    whole.routers[(learn["router_learning"], learn["router_min_addresses"])] = found
    t_run = {}
    with part_of(whole):
        for d in DETECTORS:
            if d in FROM_CAPTURE:
                t_run[d], _ = timed(lambda d=d: d(cap), runs)
            elif not rows[d].is_empty():
                t_run[d], _ = timed(lambda d=d: d(rows[d]), runs)
    print(f"\nbounds (all plans, partial + candidates): {t_bounds:.3f} s; router inference: {t_routers:.3f} s;"
          f" whole_of: {timed(lambda: engine.whole_of(icmp, several=False), runs)[0]:.3f} s\n")
    print("| detector | candidates | rows read | select_rows | detector |")
    print("|---|---:|---:|---:|---:|")
    for d in DETECTORS:
        n = "all" if chosen[d] is None else f"{chosen[d].height:,}"
        run = f"{t_run[d]:.3f} s" if d in t_run else "–"
        print(f"| {d.__name__} | {n} | {rows[d].height:,} | {t_select[d]:.3f} s | {run} |")
    print(f"| **sum** | | | {sum(t_select.values()):.3f} s | {sum(t_run.values()):.3f} s |")


if __name__ == "__main__":
    main()
