"""Detection over a LazyFrame (``scan_pcap``) in memory bounded by the detectors' state: one
streamed pass adds up every plan's bounds batch by batch (they merge by addition), a second
keeps only the candidate groups' rows, and the detectors run over those (see
:mod:`icmpscope.detect.engine`)."""
from __future__ import annotations

import polars as pl

from icmpscope.detect import engine
from icmpscope.detect import plans as plans_of
from icmpscope.detect.base import Whole, empty, seconds
from icmpscope.detect.routers import LEARNS_FROM, learning_rows

# Partial bounds are merged whenever this many batches' worth have piled up.
_MERGE_EVERY = 16


def detect_streamed(lf: pl.LazyFrame, thresholds: dict[str, object]) -> pl.DataFrame:
    from icmpscope.detect import DETECTORS, redirects, router_adverts, run_parts

    plans = plans_of.of(DETECTORS, thresholds)
    merged: dict = {d: [[] for _ in plan.bounds] for d, plan in plans.items()}
    files: set[str] = set()
    starts: list[pl.DataFrame] = []
    first_ts = None
    routing = {redirects: False, router_adverts: False}  # whether any row is theirs
    for batch in lf.collect_batches():
        if batch.is_empty():
            continue
        files.update(batch["file"].unique().cast(pl.String).to_list())
        starts.append(engine.file_starts(batch))
        low = batch["ts"].min()
        first_ts = low if first_ts is None else min(first_ts, low)
        for d in routing:
            routing[d] = routing[d] or not engine.select_rows(batch, plans[d], None).is_empty()
        parts = {d: engine.partial_bounds(batch, plan) for d, plan in plans.items()}
        computed = iter(pl.collect_all([q for qs in parts.values() for q in qs]))
        for d, plan in plans.items():
            for i, _ in enumerate(plan.bounds):
                merged[d][i].append(next(computed))
                if len(merged[d][i]) >= _MERGE_EVERY:
                    merged[d][i] = [engine.merge_bounds(merged[d][i], plan, i)]
    if first_ts is None:
        return empty(several=False)
    chosen = {d: engine.candidates([engine.merge_bounds(p, plans[d], i) for i, p in enumerate(merged[d])],
                                   plans[d]) for d in DETECTORS}
    learning = thresholds.get("router_learning", 60.0)
    early_until = pl.lit(first_ts) + seconds(float(learning))
    # Router inference, only where there is something to judge, reads a few columns.
    inferring = thresholds.get("known_routers") is None and routing[redirects] | routing[router_adverts]
    kept: dict = {d: [] for d in DETECTORS}
    early: list[pl.DataFrame] = []
    for batch in lf.collect_batches():
        for d in DETECTORS:
            rows = engine.select_rows(batch, plans[d], chosen[d])
            if not rows.is_empty():
                kept[d].append(rows)
        if inferring:
            early.append(batch.lazy().filter(pl.col("ts") <= early_until).select(LEARNS_FROM).collect())
    schema = lf.collect_schema()
    rows = {d: pl.concat(kept[d]) if kept[d] else pl.DataFrame(schema=schema) for d in DETECTORS}
    # Router inference reads the first seconds, and the first advertisement wherever it is.
    early_rows = learning_rows(early, rows[router_adverts])
    starts_all = (pl.concat(starts).group_by("file").agg(pl.col("_file_start").min())
                  if starts else pl.DataFrame(schema={"file": pl.String, "_file_start": schema["ts"]}))
    whole = Whole(several=len(files) > 1, file_starts=starts_all)
    return run_parts(rows, whole, thresholds, early=early_rows)
