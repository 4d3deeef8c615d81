"""Detection over a LazyFrame (``scan_pcap``) in memory bounded by the detectors' state: one
streamed pass adds up every plan's bounds batch by batch (they merge by addition), a second
keeps only the candidate groups' rows, and the detectors run over those (see
:mod:`icmpscope.detect.engine`)."""
from __future__ import annotations

import ctypes

import polars as pl

from icmpscope.detect import engine
from icmpscope.detect import plans as plans_of
from icmpscope.detect.base import Whole, empty, seconds
from icmpscope.detect.routers import LEARNS_FROM, learning_rows, representatives

# Partial bounds are merged whenever this many batches' worth have piled up.
_MERGE_EVERY = 16
# Rows a batch (None: polars' streaming engine decides, 100,000 rows; small ones are coalesced).
BATCH_ROWS: int | None = None
# Candidate rows held at once, over every detector: past it, the groups are shared out
# (each costs a pass over the capture; a million rows and their detection take ~0.4 GiB).
SHARE_ROWS = 1_000_000


def _released() -> None:
    """Hand freed memory back to the system where the C library holds on to it: glibc keeps the
    column buffers of batches gone by (its mmap threshold rises with each large free, so later
    buffers come from heaps it seldom trims), ~0.5 GiB over a 4 GB capture."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def detect_streamed(lf: pl.LazyFrame, thresholds: dict[str, object]) -> pl.DataFrame:
    from icmpscope.detect import DETECTORS, redirects, router_adverts, run_parts

    plans = plans_of.of(DETECTORS, thresholds)
    merged: dict = {d: [[] for _ in plan.bounds] for d, plan in plans.items()}
    # Keys of candidate groups found as their buckets completed, and of rows that came late.
    settled: dict = {d: [] for d in plans}
    files: set[str] = set()
    starts: list[pl.DataFrame] = []
    first_ts = None
    latest = watermark = None  # ns: the latest time seen; that at the last settling
    routing = {redirects: False, router_adverts: False}  # whether any row is theirs
    # The first pass reads only what the bounds count (a scan decodes only those columns, and
    # batches the streaming engine holds ahead of us are narrower).
    schema = lf.collect_schema()
    counted = set().union(*(plan.counted_columns() for plan in plans.values()), engine.FILE_STARTS_READ)
    for n, batch in enumerate(lf.select(c for c in schema.names() if c in counted)
                              .collect_batches(chunk_size=BATCH_ROWS)):
        if batch.is_empty():
            continue
        files.update(batch["file"].unique().cast(pl.String).to_list())
        starts.append(engine.file_starts(batch))
        low = batch["ts"].min()
        first_ts = low if first_ts is None else min(first_ts, low)
        stamps = batch["ts"].dt.epoch("ns")
        if watermark is not None and stamps.min() < watermark:
            for d, plan in plans.items():
                if plan.bounds:
                    settled[d].append(engine.late_keys(batch, plan, watermark))
        latest = stamps.max() if latest is None else max(latest, stamps.max())
        for d in routing:
            routing[d] = routing[d] or engine.routes_any(batch, plans[d])
        parts = {d: engine.partial_bounds(batch, plan) for d, plan in plans.items()}
        computed = iter(pl.collect_all([q for qs in parts.values() for q in qs]))
        for d, plan in plans.items():
            for i, _ in enumerate(plan.bounds):
                merged[d][i].append(next(computed))
        if n % _MERGE_EVERY == _MERGE_EVERY - 1:
            # Judge what no row to come can change and hold the rest: memory follows the last
            # buckets, not the capture (a capture in time order has no late rows).
            for d, plan in plans.items():
                for i, _ in enumerate(plan.bounds):
                    hot, still = engine.settle(engine.merge_bounds(merged[d][i], plan, i), plan, i, latest)
                    merged[d][i] = [still]
                    settled[d].append(hot)
                if len(settled[d]) > 1:  # a group stays hot from round to round: held once
                    settled[d] = [pl.concat(settled[d], how="vertical_relaxed").unique()]
            watermark = latest
            _released()
    if first_ts is None:
        return empty(several=False)
    chosen = {d: _union(engine.candidates([engine.merge_bounds(p, plans[d], i) for i, p in enumerate(merged[d])],
                                          plans[d]), settled[d]) for d in DETECTORS}
    del merged, settled  # judged: the passes to come hold rows instead
    _released()
    learning = thresholds.get("router_learning", 60.0)
    early_until = pl.lit(first_ts) + seconds(float(learning))
    # Router inference, only where there is something to judge, reads a few columns.
    inferring = thresholds.get("known_routers") is None and routing[redirects] | routing[router_adverts]
    starts_all = (pl.concat(starts).group_by("file").agg(pl.col("_file_start").min())
                  if starts else pl.DataFrame(schema={"file": pl.String, "_file_start": schema["ts"]}))
    whole = Whole(several=len(files) > 1, file_starts=starts_all)
    # The candidate passes read what the plans name: a scan decodes only those (no flow tracking
    # for ``inner_flow_seen``, which no detector reads) and the batches held ahead are narrower.
    read = set().union(*(plan.read_columns(schema.names()) for plan in plans.values()),
                       LEARNS_FROM if inferring else ())
    lf = lf.select(c for c in schema.names() if c in read)
    kept, early, held = _candidate_rows(lf, plans, chosen, None, early_until if inferring else None)
    if held <= SHARE_ROWS:
        return run_parts(kept, whole, thresholds, early=early)
    # Too many candidate rows to hold at once: the groups in shares, a pass over the capture
    # each, so memory follows a share (the cluster shares alike, see icmpscope.distributed).
    shares = -(-held // SHARE_ROWS)
    found = []
    for i in range(shares):
        _released()  # the last share's rows
        found.append(run_parts(_candidate_rows(lf, plans, chosen, (i, shares), None)[0], whole, thresholds, early=early))
    return pl.concat(found).sort("start", "kind", "src", "dst", nulls_last=True)


def _union(found: pl.DataFrame | None, settled: list[pl.DataFrame]) -> pl.DataFrame | None:
    if found is None:  # no bound: every group
        return None
    return pl.concat([found, *settled], how="vertical_relaxed").unique()


def _candidate_rows(lf: pl.LazyFrame, plans: dict, chosen: dict, part: tuple[int, int] | None,
                    early_until: pl.Expr | None) -> tuple[dict, pl.DataFrame | None, int]:
    """One pass: each detector's rows of its candidate groups (those of share ``part``), the
    rows router inference learns from (its first seconds until ``early_until``, and every
    router advertisement; ``None`` without ``early_until``) and how many candidate rows the
    pass met. Past ``SHARE_ROWS`` of them, a pass without ``part`` only counts: the caller
    shares the groups out."""
    from icmpscope.detect import router_adverts

    kept: dict = {d: [] for d in plans}
    early: list[pl.DataFrame] = []
    adverts: list[pl.DataFrame] = []
    held = 0
    for n, batch in enumerate(lf.collect_batches(chunk_size=BATCH_ROWS)):
        if n % _MERGE_EVERY == _MERGE_EVERY - 1:
            _released()
        for d, plan in plans.items():
            rows = engine.select_rows(batch, plan, chosen[d], part)
            held += rows.height
            if not rows.is_empty() and (part is not None or held <= SHARE_ROWS):
                kept[d].append(engine.owned(rows))
        if early_until is not None:
            early.append(representatives(batch.lazy().filter(pl.col("ts") <= early_until).select(LEARNS_FROM).collect()))
            adverts.append(engine.select_rows(batch, plans[router_adverts], None).select(LEARNS_FROM))
            if len(early) >= _MERGE_EVERY:
                early = [learning_rows(early, pl.concat(adverts))]
                adverts = []
        if part is None and held > SHARE_ROWS:
            kept = {d: [] for d in plans}
    schema = lf.collect_schema()
    # Rechunked: polars 2.1 panicked in firewall_probes' text functions over the chunks of
    # many small batches (35 scenario captures streamed 512 rows at a time).
    rows = {d: pl.concat(kept[d], rechunk=True) if kept[d] else pl.DataFrame(schema=schema).select(plans[d].columns or schema.names())
            for d in plans}
    learning = learning_rows(early, pl.concat(adverts) if adverts else early[0].clear()) if early_until is not None else None
    return rows, learning, held

