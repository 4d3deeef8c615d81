"""The polars formulation of the window kernels of ``icmpscope._core`` (``count_hot``,
``distinct_hot``, ``episodes`` of :mod:`icmpscope.detect.base`; ``count_hot`` with a weight
was ``rate_hot``, polars' rolling windows): the reference the tests hold
the kernels to, detector by detector, on every scenario and corpus capture. Before the kernels
these were the detectors' code."""
from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from icmpscope.detect.base import run_starts, seconds


def count_hot(rows: pl.LazyFrame, *, by: Sequence[str], window: float, minimum: float,
              weight: str | None = None) -> pl.LazyFrame:
    """The times at which a ``by`` group has at least ``minimum`` rows within the trailing
    window ``(ts - window, ts]``: the same times as :func:`rate_hot` with a count (``hot`` =
    ``count >= minimum``), without sorting by the group. With the rows in time order, a group
    has k rows within the window ending at a row exactly when that row and the group's k-1th
    row before it are less than a window apart (the last of rows with equal times answers for
    them all, and the times are what episodes read)."""
    if weight is not None:
        return rate_hot(rows, by=by, window=window, aggs=[pl.col(weight).sum().alias("_sum")],
                        hot=pl.col("_sum") >= minimum)
    k = max(math.ceil(minimum), 1)
    rows = rows.select(*by, "ts")
    if k > 1:
        # Only groups with k rows in all can (a window over millions of small groups costs
        # seconds, a count per group a fraction of that).
        busy = rows.group_by(by).agg(pl.len().alias("_n")).filter(pl.col("_n") >= k).select(by)
        rows = rows.join(busy, on=list(by), how="semi", nulls_equal=True)
    return (rows.sort("ts", maintain_order=True)
            .filter((pl.col("ts") - pl.col("ts").shift(k - 1).over(list(by))) < seconds(window))
            .select(*by, "ts"))


def distinct_hot(rows: pl.LazyFrame, *, by: Sequence[str], target: str | Sequence[str],
                 window: float, minimum: int, pair: str | None = None) -> pl.LazyFrame:
    """The times of the rows whose ``by`` group has at least ``minimum`` distinct ``target``
    values within the trailing window. ``pair``: a column of ``rows`` that tells the (``by``,
    ``target``) combinations apart on its own (one int: a sort by one key costs less).

    A sweep line: each target is active from a probe until one window after it, so the number
    of distinct targets within ``(t - window, t]`` is the number active at ``t``. Linear in the
    rows, where a rolling ``n_unique`` is quadratic in a busy window. A target's spans (its
    probes with no pause longer than the window) start at the first row of a run and end one
    window after its last, read off the sorted rows (no group-by); the count active at each
    time is the running sum of the events of its group, sorted by group and time, at the last
    event of that time (a group's events add up to zero, so the sum restarts at each group).
    """
    w = seconds(window)
    targets = [target] if isinstance(target, str) else list(target)
    key = [*by, *targets]
    runs_by = [pair] if pair is not None else key
    ordered = (rows.select(*dict.fromkeys([*key, *runs_by]), "ts").drop_nulls(key).sort(*runs_by, "ts")
               .with_columns(run_starts(runs_by, w).alias("_start")))
    ordered = ordered.with_columns(pl.col("_start").shift(-1).fill_null(True).alias("_end"))
    events = pl.concat([
        ordered.filter("_start").select(*by, "ts", pl.lit(1, pl.Int64).alias("delta")),
        ordered.filter("_end").select(*by, (pl.col("ts") + w).alias("ts"), pl.lit(-1, pl.Int64).alias("delta")),
    ]).sort(*by, "ts")
    last = pl.any_horizontal(*(pl.col(c).ne_missing(pl.col(c).shift(-1)) for c in [*by, "ts"])).fill_null(True)
    active = (events.with_columns(pl.col("delta").cum_sum().alias("active"))
              .filter(last).select(*by, "ts", "active")
              .sort("ts"))
    return (rows.select(*by, "ts").drop_nulls(by).sort("ts")
            .join_asof(active, on="ts", by=list(by), strategy="backward", check_sortedness=False)
            .filter(pl.col("active") >= minimum)
            .select(*by, "ts"))


def episodes(rows: pl.LazyFrame, hot: pl.LazyFrame, *, by: Sequence[str],
             window: float) -> pl.LazyFrame:
    """``rows`` that belong to an episode of their ``by`` group, with an ``episode`` number."""
    w = seconds(window)
    # Each run of hot times is read off the sorted times: its first and last rows, in one pass
    # (no group-by; ``hot`` is read once, as it may be a costly plan; repeated times change no
    # run, so they need no unique()). The episode numbers are those of `runs`.
    spans = (hot.select(*by, "ts").sort(*by, "ts")
             .with_columns(run_starts(by, w).alias("_start"))
             .with_columns(pl.col("_start").cum_sum().alias("episode"),
                           pl.col("_start").shift(-1).fill_null(True).alias("_end"))
             .filter(pl.col("_start") | pl.col("_end"))
             # A run's first row is its last too, or the next row kept is its last.
             .with_columns(pl.when("_end").then(pl.col("ts")).otherwise(pl.col("ts").shift(-1)).alias("_hi"))
             .filter("_start")
             .select(*by, "episode", (pl.col("ts") - w).alias("_lo"), "_hi")
             .sort("_lo"))
    return (rows.sort("ts")
            .join_asof(spans, left_on="ts", right_on="_lo", by=list(by), strategy="backward",
                       allow_exact_matches=False, check_sortedness=False)
            .filter(pl.col("ts") <= pl.col("_hi"))
            .drop("_lo", "_hi"))


def rate_hot(rows: pl.LazyFrame, *, by: Sequence[str], window: float, hot: pl.Expr,
             aggs: Sequence[pl.Expr] = (pl.len().alias("count"),)) -> pl.LazyFrame:
    """Times at which ``aggs`` over the trailing window of each ``by`` group satisfy ``hot``.

    ``aggs`` must be cheap over overlapping windows (counts, sums): polars computes them with
    rolling kernels.
    """
    return (rows.sort(*by, "ts")
            .rolling("ts", period=f"{round(window * 1e9)}ns", group_by=list(by)).agg(*aggs)
            .filter(hot).select(*by, "ts"))


def hot_episodes(rows: pl.LazyFrame, *, by: Sequence[str], window: float, over) -> pl.LazyFrame:
    """``episodes`` of the hot times of every threshold of ``over`` (base.Over), together."""
    hot = [distinct_hot(rows, by=by, target=o.target, window=window, minimum=o.minimum) if o.target
           else count_hot(rows, by=by, window=window, minimum=o.minimum, weight=o.weight) for o in over]
    return episodes(rows, pl.concat([h.select(*by, "ts") for h in hot]), by=by, window=window)
