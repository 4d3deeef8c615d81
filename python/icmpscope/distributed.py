"""``analyze`` on a Dask cluster: the cluster reads, detects and merges; the client receives the
alerts, summaries, stats and errors only.

A per-file task reads the file and returns the detectors' bounds (see
:mod:`icmpscope.detect.engine`), its summaries, stats and talkers; one task merges the bounds into
each detector's candidate groups; per-file tasks read the file again and cut out the candidates'
rows, in shares by group; a task per share runs the detectors over them. Reading twice is cheap
next to holding every capture: a worker holds one capture at a time (holding them, 2 workers of
4 GiB died on 8 files of 2M packets). A lost worker costs its tasks, which Dask runs again from
the file; a file that fails to read is a row of ``errors``.
"""
from __future__ import annotations

import dataclasses
import inspect
import operator
import warnings
from dataclasses import dataclass
from typing import Any

import polars as pl

from icmpscope import _core
from icmpscope.batch import failure_rows
from icmpscope.detect import DETECTORS, FROM_CAPTURE, engine, infer_routers, run_parts
from icmpscope.detect import plans as plans_of
from icmpscope.detect.base import Whole, empty, seconds
from icmpscope.detect.forged import quoting
from icmpscope.detect.fragments import attack_datagrams
from icmpscope.detect.stream import SHARE_ROWS
from icmpscope.detect.routers import LEARNS_FROM, learning_rows, representatives
from icmpscope.io import TABLES, Capture, is_url, read_pcap
from icmpscope.report import Report, talker_pairs, top_talkers

__all__ = ["analyze_on_cluster"]

_FROM_CAPTURE = {d.__name__ for d in FROM_CAPTURE}  # judged from their evidence, in the first share


def _register_sizes() -> None:
    """Tell Dask what polars frames weigh. Without it Dask sizes a frame of a million rows at
    56 bytes (``sys.getsizeof``), so a worker holding files' pieces never spills them and dies
    at its memory limit instead."""
    from dask.sizeof import sizeof

    sizeof.register(pl.DataFrame)(lambda frame: int(frame.estimated_size()))
    sizeof.register(pl.Series)(lambda series: int(series.estimated_size()))


_register_sizes()


@dataclass(frozen=True)
class Facts:
    """What a file tells the merge: bounds per detector, and its share of the report."""

    path: str
    failure: str | None
    bounds: dict[str, list[pl.DataFrame]]
    file_starts: pl.DataFrame | None
    first_ts: Any
    routing: bool  # it has redirects or router advertisements
    summary: pl.DataFrame | None
    timeline: pl.DataFrame | None
    stats: pl.DataFrame | None
    errors: pl.DataFrame | None
    talkers: pl.DataFrame | None  # per pair, merged into the report's top talkers

    def __sizeof__(self) -> int:  # what Dask weighs a file's facts by (bounds are large)
        from dask.sizeof import sizeof

        return object.__sizeof__(self) + sum(sizeof(value) for value in vars(self).values())


@dataclass(frozen=True)
class Candidates:
    several: bool
    file_starts: pl.DataFrame
    first_ts: Any
    inferring: bool
    chosen: dict[str, pl.DataFrame | None]


def _plans(thresholds: dict[str, object]) -> dict:
    return {d.__name__: plan for d, plan in plans_of.of(DETECTORS, thresholds).items()}


def read_file(path: str, storage_options: dict[str, Any] | None) -> Capture | str:
    """A file's (or an object's) tables, or the failure that stopped its reading (as text)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut-short file is reported in its stats and errors
            return read_pcap(path, threads=1, storage_options=storage_options if is_url(path) else None)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row of Report.errors
        return f"{type(exc).__name__}: {exc}"


def file_facts(path: str, storage_options: dict[str, Any] | None, thresholds: dict[str, object]) -> Facts:
    capture = read_file(path, storage_options)
    if isinstance(capture, str):
        return Facts(path, capture, {}, None, None, False, None, None, None, None, None)
    icmp = capture.icmp
    plans = _plans(thresholds)
    parts = {name: engine.partial_bounds(icmp, plan) for name, plan in plans.items()}
    computed = iter(pl.collect_all([q for qs in parts.values() for q in qs]))
    bounds = {name: [next(computed) for _ in qs] for name, qs in parts.items()}
    routing = any(engine.routes_any(icmp, plans[n]) for n in ("redirects", "router_adverts"))
    report = Report.from_capture(capture, pl.DataFrame())
    return Facts(path, None, bounds, engine.file_starts(icmp), icmp["ts"].min(), routing,
                 report.summary, report.timeline, capture.stats, capture.errors, talker_pairs(icmp))


def choose(facts: list[Facts], thresholds: dict[str, object]) -> Candidates:

    read = [f for f in facts if f.failure is None]
    plans = _plans(thresholds)
    chosen = {name: engine.candidates([engine.merge_bounds([f.bounds[name][i] for f in read], plan, i)
                                       for i in range(len(plan.bounds))], plan) if read else None
              for name, plan in plans.items()}
    starts = [f.file_starts for f in read]
    firsts = [f.first_ts for f in read if f.first_ts is not None]
    return Candidates(several=len(read) > 1,
                      file_starts=pl.concat(starts) if starts else pl.DataFrame(),
                      first_ts=min(firsts) if firsts else None,
                      inferring=thresholds.get("known_routers") is None and any(f.routing for f in read),
                      chosen=chosen)


def file_rows(path: str, storage_options: dict[str, Any] | None, candidates: Candidates,
              thresholds: dict[str, object], shares: int) -> list[dict[str, pl.DataFrame]]:
    """The candidates' rows of one file for each detector, in ``shares`` shares by group, and
    last what the whole needs of it: its fragment-attack and forged-error evidence, its router
    advertisements and, where routers are inferred, its rows of the capture's first seconds."""
    capture = read_file(path, storage_options)
    if isinstance(capture, str):
        return [{} for _ in range(shares + 1)]
    icmp = capture.icmp
    plans = _plans(thresholds)
    out: list[dict[str, pl.DataFrame]] = [
        {name: engine.owned(engine.select_rows(icmp, plan, candidates.chosen[name], (i, shares)))
         for name, plan in plans.items() if name not in _FROM_CAPTURE} for i in range(shares)]
    extra: dict[str, pl.DataFrame] = {}
    if candidates.inferring:
        learning = float(thresholds.get("router_learning", 60.0))  # type: ignore[arg-type]
        until = pl.lit(candidates.first_ts) + seconds(learning)
        extra["early"] = representatives(icmp.lazy().filter(pl.col("ts") <= until).select(LEARNS_FROM).collect())
        extra["adverts"] = engine.select_rows(icmp, plans["router_adverts"], None).select(LEARNS_FROM)
    # A fragmented datagram's alert needs that datagram's row and fragments only.
    extra["datagrams"], extra["fragments"] = attack_datagrams(
        capture, max_datagram=int(thresholds.get("max_datagram", 65535)))  # type: ignore[arg-type]
    # An error is judged against the flows of its own file, between the addresses it quotes.
    extra["quoting"], extra["flows"] = (engine.owned(t) for t in quoting(capture))
    return [*out, extra]


def whole_of(extras: list[dict[str, pl.DataFrame]], candidates: Candidates,
             thresholds: dict[str, object]) -> tuple[Whole, Capture]:
    """What every share needs of the whole: its files, the routers it shows, and the evidence of
    its fragments and of its errors quoting TCP (as a Capture for fragment_attacks and
    forged_errors)."""
    extras = [e for e in extras if e]
    whole = Whole(several=candidates.several, file_starts=candidates.file_starts)
    early = [e["early"] for e in extras if "early" in e]
    if early:
        rows = learning_rows(early, pl.concat([e["adverts"] for e in extras])).sort("ts", maintain_order=True)
        learn = {k: thresholds.get(k, p.default) for k, p in inspect.signature(infer_routers).parameters.items()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY}
        whole.routers[(learn["router_learning"], learn["router_min_addresses"])] = infer_routers(rows, **learn)
    empty_of = {name: pl.DataFrame(_core.empty_table(name)) for name in TABLES}
    def joined(table: str) -> pl.DataFrame:
        return pl.concat([e[table] for e in extras], how="vertical_relaxed")

    evidence = (Capture(icmp=joined("quoting").sort("ts", maintain_order=True), stats=empty_of["stats"],
                        errors=empty_of["errors"], flows=joined("flows"),
                        datagrams=joined("datagrams"), fragments=joined("fragments"))
                if extras else Capture(**empty_of))
    return whole, evidence


def detect_share(rows: list[dict[str, pl.DataFrame]], context: tuple[Whole, Capture],
                 thresholds: dict[str, object], first: bool) -> pl.DataFrame:
    """The detectors over one share of the groups (the first share also judges the evidence of
    fragments and of errors quoting TCP)."""
    whole, evidence = context
    rows = [r for r in rows if r]
    if not rows:
        return empty(several=whole.several)
    schema = next(iter(rows[0].values())).schema
    per = {d: (pl.concat([r[d.__name__] for r in rows], how="vertical_relaxed", rechunk=True).sort("ts", maintain_order=True)
               if d not in FROM_CAPTURE else pl.DataFrame(schema=schema)) for d in DETECTORS}
    return run_parts(per, whole, thresholds, early=None, capture=evidence if first else None)


def _icmp_rows(facts: Facts) -> int:
    return 0 if facts.stats is None else int(facts.stats["icmp"].sum())


def _sorted(found: list[pl.DataFrame]) -> pl.DataFrame:
    alerts = pl.concat(found).sort("start", "kind", "src", "dst", nulls_last=True)
    # In buffers of their own before they travel: an alert's `files` pointed into the text of
    # its whole share, and shipping 16 files' alerts took the client to 2 GiB.
    return engine.owned(alerts)


def talkers(parts: list[pl.DataFrame | None]) -> pl.DataFrame:
    # Per-file pairs, not the files' rows: one task holding every capture ran out of memory.
    pairs = [p for p in parts if p is not None]
    return top_talkers(pl.concat(pairs) if pairs else talker_pairs(pl.DataFrame(_core.empty_table("icmp"))))


def analyze_on_cluster(client: Any, paths: list[str], thresholds: dict[str, object],
                       sizes: dict[str, int], bar: Any = None,
                       storage_options: dict[str, Any] | None = None) -> Any:
    """:func:`icmpscope.analyze` with ``client``, a ``distributed.Client``."""
    from dask.base import tokenize
    from distributed import as_completed

    nothing = Report.from_capture(Capture(**{n: pl.DataFrame(_core.empty_table(n)) for n in TABLES}),
                                  pl.DataFrame())

    # One task per path given, a path given twice included (as read_pcap counts it twice).
    run = tokenize(paths, storage_options, thresholds)
    facts_f = [client.submit(file_facts, p, storage_options, thresholds, key=f"icmpscope-facts-{i}-{run}")
               for i, p in enumerate(paths)]
    if bar is not None:
        for done in as_completed(facts_f):
            bar.update(sizes[paths[facts_f.index(done)]])
    chosen = client.submit(choose, facts_f, thresholds)
    # Groups in two shares per worker at least, and enough that no share's task holds more
    # rows than streamed detection does at once (a share's rows are a part of its ICMP rows).
    icmp_rows = sum(client.gather([client.submit(_icmp_rows, f) for f in facts_f]))
    shares = max(1, 2 * len(client.scheduler_info().get("workers", {})), -(-icmp_rows // SHARE_ROWS))
    rows = [client.submit(file_rows, p, storage_options, chosen, thresholds, shares, key=f"icmpscope-rows-{i}-{run}")
            for i, p in enumerate(paths)]
    share_of = [[client.submit(operator.getitem, r, i) for r in rows] for i in range(shares + 1)]
    context = client.submit(whole_of, share_of[shares], chosen, thresholds)
    found = [client.submit(detect_share, share_of[i], context, thresholds, i == 0) for i in range(shares)]
    alerts_f = client.submit(_sorted, found)
    # Each file's pairs, not its facts, travel to the merge.
    talkers_f = client.submit(talkers, [client.submit(operator.attrgetter("talkers"), f) for f in facts_f])
    # The bounds stay on the cluster: the client takes each file's share of the report.
    report_f = [client.submit(dataclasses.replace, f, bounds={}, talkers=None) for f in facts_f]
    facts, alerts, top = client.gather([report_f, alerts_f, talkers_f])
    read = [f for f in facts if f.failure is None]

    def joined(name: str, table: str) -> pl.DataFrame:
        frames = [getattr(f, name) for f in read]
        return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame(_core.empty_table(table))

    errors = pl.concat([joined("errors", "errors"),
                        failure_rows([(f.path, f.failure) for f in facts if f.failure is not None])])
    if not read:
        return Report(alerts, nothing.summary, nothing.stats, errors, nothing.timeline, nothing.talkers)
    summary = pl.concat([f.summary for f in read]).sort("file", "ip_version", "icmp_type", "icmp_code")
    timeline = (pl.concat([f.timeline for f in read]).group_by("ts", "ip_version", "icmp_type")
                .agg(pl.col("packets").sum()).sort("ts", "ip_version", "icmp_type"))
    return Report(alerts, summary, joined("stats", "stats"), errors, timeline, top)
