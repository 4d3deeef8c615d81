"""How :func:`icmpscope.detect.all` runs the detectors at the reader's speed and scale.

Every alert depends only on the rows of its group (a source, a target, a pair of addresses), so
a detector run over the rows of some groups finds exactly their alerts. Each detector's
:class:`Plan` names the rows it reads and the group key of each (its *routes*), and, where the
detector counts over a window, a :class:`Bound`: per group and time bucket as long as the
window, measures that can only over-count what the detector counts (counts, distinct counts
added up). A window of length W overlaps at most two consecutive buckets of length W, so a group
whose two-bucket sums stay under the thresholds cannot alert: only the other groups' rows (the
candidates, few in most captures) reach the polars detector. The measures add up across
batches, files and machines, so the same filter serves a capture in memory and one streamed
from ``scan_pcap``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

from icmpscope.detect.base import ECHO_REPLY, ECHO_REQUEST, Whole, may_reach

__all__ = ["Bound", "Plan", "Route", "candidates", "partial_bounds", "merge_bounds", "settle", "late_keys",
           "select_rows", "whole_of", "file_starts", "options", "owned"]


@dataclass(frozen=True)
class Route:
    """Rows a detector reads (``rows``) and the group key of each (one or two expressions)."""

    rows: pl.Expr
    key: tuple[pl.Expr, ...]


@dataclass(frozen=True)
class Bound:
    """Per group (and ``sub`` value) and bucket of ``window`` seconds (``None``: one bucket for
    the whole capture), ``measures`` (name -> aggregation over the routed rows, with ``_role``
    the route's index, and how two partial values merge: "sum", "min" or "max"); a group is a
    candidate when ``hot`` holds over the sums of two consecutive buckets. Without a window,
    ``idle`` (seconds) says that a group's episode ends after that long without rows, so a
    stream may judge and forget the group then (see :func:`settle`)."""

    window: float | None
    measures: dict[str, tuple[pl.Expr, str]]
    hot: pl.Expr
    sub: pl.Expr | None = None
    idle: float | None = None
    # Of the routed rows, those the measures (all sums) count: the others add nothing, so they
    # are left out before grouping (millions of groups of plain echo requests otherwise). Used
    # only where ``hot`` is false with every measure zero (a group without such rows).
    only: pl.Expr | None = None
    # A group with fewer of the rows it counts than this, in all, cannot be hot: over a whole
    # capture, the rows of groups that may not have that many are left out before grouping
    # (base.may_reach). A busy capture's millions of pairs of a ping or two go there.
    least: float | None = None

    @property
    def counted(self) -> pl.Expr | None:
        """``only``, where it may be used."""
        if self.only is None or any(how != "sum" for _, how in self.measures.values()):
            return None
        zero = pl.DataFrame({name: [0] for name in self.measures})
        return None if zero.select(self.hot).to_series().item() else self.only

    @property
    def all_measures(self) -> dict[str, tuple[pl.Expr, str]]:
        """``measures``, and the group's latest row where it has an ``idle``."""
        if self.idle is None:
            return self.measures
        return {**self.measures, "_last": (pl.col("ts").max(), "max")}


@dataclass(frozen=True)
class Plan:
    routes: tuple[Route, ...]
    bounds: tuple[Bound, ...] = ()
    # The columns the detector reads (None: all): its rows are gathered, held and shipped with
    # only these, where the capture's rows are wide.
    columns: tuple[str, ...] | None = None
    # Columns some measures need, computed over the distinct values of a batch (string tests
    # on addresses cost a cast per row otherwise).
    helpers: Callable[[pl.DataFrame], list[pl.Expr]] | None = field(default=None)
    # Candidates are (group, ``sub``) pairs, not groups: the detector's alerts depend only on the
    # rows of hot sub-groups (its bounds share one ``sub``). A group of the whole link, say,
    # then holds the rows of its few hot addresses, not all of the link's.
    by_sub: bool = False

    @property
    def width(self) -> int:
        return len(self.routes[0].key)

    def counted_columns(self) -> set[str]:
        """The columns its routes and bounds read (helpers are opaque: all of ``columns``)."""
        exprs = [e for r in self.routes for e in (r.rows, *r.key)]
        exprs += [e for b in self.bounds for e in (*(m for m, _ in b.measures.values()),
                                                   *([b.sub] if b.sub is not None else []),
                                                   *([b.only] if b.only is not None else []))]
        names = {name for e in exprs for name in e.meta.root_names()} | {"ts"}
        return names | set(self.columns or ()) if self.helpers is not None else names

    def read_columns(self, schema: Iterable[str]) -> set[str]:
        """The columns its routes, bounds and detector read, of ``schema``'s."""
        return self.counted_columns() | set(self.columns or schema)


def _keys(width: int) -> list[str]:
    return [f"_k{i}" for i in range(width)]


def _chosen(plan: Plan) -> list[str]:
    """The columns of the plan's candidates."""
    return [*_keys(plan.width), *(["_sub"] if plan.by_sub else [])]


def _with_sub(rows: pl.LazyFrame, plan: Plan) -> pl.LazyFrame:
    return rows.with_columns(plan.bounds[0].sub.alias("_sub")) if plan.by_sub else rows


def routed(frame: pl.LazyFrame, plan: Plan) -> pl.LazyFrame:
    """The rows of ``frame`` each route reads, with their key (``_k0``, ``_k1``) and ``_role``."""
    names = _keys(plan.width)
    return pl.concat([frame.filter(route.rows).with_columns(
        *(k.alias(n) for k, n in zip(route.key, names)), pl.lit(i, pl.UInt8).alias("_role"))
        for i, route in enumerate(plan.routes)], how="vertical_relaxed")


def _bucket(window: float | None) -> pl.Expr:
    if window is None:
        return pl.lit(0, pl.Int64).alias("_bucket")
    return (pl.col("ts").dt.epoch("ns") // round(window * 1e9)).alias("_bucket")


def partial_bounds(frame: pl.DataFrame, plan: Plan, *, whole: bool = False) -> list[pl.LazyFrame]:
    """Each bound's measures over ``frame`` (a capture, a batch of one), per group and bucket.
    ``whole``: ``frame`` is all of the capture (its measures are not merged with others'), so
    groups that cannot be hot may be left out (``Bound.least``)."""
    rows = routed(frame.lazy(), plan)
    if plan.helpers is not None:
        rows = rows.with_columns(plan.helpers(frame))
    out = []
    for bound in plan.bounds:
        group = [*_keys(plan.width), *(["_sub"] if bound.sub is not None else [])]
        only = bound.counted
        counted = rows if only is None else rows.filter(only)
        if bound.sub is not None:
            counted = counted.with_columns(bound.sub.alias("_sub"))
        if whole and bound.least is not None and bound.least > 1:
            counted = _of_groups_that_may_reach(counted, bound, group)
        out.append(counted.group_by(*group, _bucket(bound.window))
                   .agg(expr.alias(name) for name, (expr, _) in bound.all_measures.items()))
    return out


def _of_groups_that_may_reach(rows: pl.LazyFrame, bound: Bound, group: list[str]) -> pl.LazyFrame:
    """``rows`` (those a bound counts), collected with the columns it reads, but for the groups
    that cannot have ``bound.least`` rows."""
    read = {name for expr, _ in bound.all_measures.values() for name in expr.meta.root_names()}
    frame = rows.select(*dict.fromkeys([*group, "ts", *sorted(read)])).collect()
    return frame.filter(may_reach(frame, by=group, least=bound.least)).lazy()


_MERGE = {"sum": pl.Expr.sum, "min": pl.Expr.min, "max": pl.Expr.max}


def merge_bounds(parts: Iterable[pl.DataFrame], plan: Plan, index: int) -> pl.DataFrame:
    """Partial measures of one bound (from batches, files) merged into one table."""
    bound = plan.bounds[index]
    by = [*_keys(plan.width), *(["_sub"] if bound.sub is not None else []), "_bucket"]
    return (pl.concat(list(parts), how="vertical_relaxed").group_by(by)
            .agg(_MERGE[how](pl.col(name)) for name, (_, how) in bound.all_measures.items()))


def candidates(merged: Sequence[pl.DataFrame], plan: Plan) -> pl.DataFrame | None:
    """The groups that may alert (``None``: every group, the plan has no bound)."""
    if not plan.bounds:
        return None
    return pl.concat([_hot(table, bound, plan) for bound, table in zip(plan.bounds, merged)]).unique()


def _hot(table: pl.DataFrame, bound: Bound, plan: Plan) -> pl.DataFrame:
    """The keys of the groups of one bound's merged measures that may alert."""
    keys = _keys(plan.width)
    group = [*keys, *(["_sub"] if bound.sub is not None else [])]
    if bound.window is not None:
        if all(how == "sum" for _, how in bound.measures.values()):
            # ``hot`` only grows with the measures (over-counting must stay safe), and no two
            # buckets add up to more than all of a group's: groups whose totals are not hot
            # cannot be, and most groups of a busy capture (millions of pairs) go here, unsorted.
            # First the table's total: where even all groups together are not hot (no unusual
            # query in a capture, say), none is.
            total = table.select(pl.col(name).sum() for name in bound.measures)
            if not total.select(bound.hot).to_series().any():
                return table.clear().select(_chosen(plan))
            # Totals per hash of the key (one u64: a group-by of millions of two-column keys
            # cost seconds); two groups sharing a hash only over-count, which is safe.
            rows = table.lazy().with_columns(pl.struct(group).hash(seed=0).alias("_h"))
            hot = (rows.group_by("_h").agg(pl.col(name).sum() for name in bound.measures)
                   .filter(bound.hot).select("_h"))
            table = rows.join(hot, on="_h", how="semi").drop("_h").collect()
        # Sorted by the keys' codes: any order that brings a group's buckets together will do,
        # and text (Categorical sorts by it) costs several times more.
        table = table.sort(*(pl.col(c).to_physical() for c in group), "_bucket")
        follows = (pl.all_horizontal(pl.col(c).eq_missing(pl.col(c).shift()) for c in group)
                   & (pl.col("_bucket") - pl.col("_bucket").shift() == 1)).fill_null(False)
        table = table.with_columns(
            pl.col(name) + pl.when(follows).then(pl.col(name).shift()).otherwise(0)
            for name, (_, how) in bound.measures.items() if how == "sum")
    return table.filter(bound.hot).select(_chosen(plan))


def settle(table: pl.DataFrame, plan: Plan, index: int, until: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Of one bound's merged measures over a stream whose rows to come are at ``until`` (ns since
    the epoch) or later (the latest time seen; rows before it are late, see
    :func:`late_keys`): the keys of the
    groups that may alert among those no such row can change, and the measures still to hold.
    A bucket ends before ``until`` is complete and is kept only to pair with the next; a group
    of an ``idle`` bound whose last row is more than ``idle`` before ``until`` has ended its
    episode (a row to come starts another). So a capture streamed in time order holds the
    measures of its last two buckets, not of all of them."""
    bound = plan.bounds[index]
    if bound.window is not None:
        complete = until // round(bound.window * 1e9) - 1
        return _hot(table.filter(pl.col("_bucket") <= complete), bound, plan), table.filter(pl.col("_bucket") >= complete)
    if bound.idle is not None:
        ended = pl.col("_last").dt.epoch("ns") < until - round(bound.idle * 1e9)
        return _hot(table.filter(ended), bound, plan), table.filter(~ended)
    return table.clear().select(_chosen(plan)), table


def routes_any(frame: pl.DataFrame, plan: Plan) -> bool:
    """Whether any row of ``frame`` is the plan's (``frame`` needs only the columns its routes read)."""
    return routed(frame.lazy(), plan).select(pl.len()).collect().item() > 0


def late_keys(frame: pl.DataFrame, plan: Plan, before: int) -> pl.DataFrame:
    """The keys of ``frame``'s routed rows earlier than ``before``: rows a stream meets after it
    settled their buckets, whose groups are then candidates outright (over-counting is safe)."""
    rows = routed(frame.lazy().filter(pl.col("ts").dt.epoch("ns") < before), plan)
    return _with_sub(rows, plan).select(_chosen(plan)).unique().collect()


def select_rows(frame: pl.DataFrame, plan: Plan, chosen: pl.DataFrame | None,
                part: tuple[int, int] | None = None) -> pl.DataFrame:
    """The rows of ``frame`` that the plan's routes give to candidate groups, in frame order;
    with ``part`` = (i, n), those of the groups in the i-th of n shares (by a hash of the key's
    text, the same in every process)."""
    rows = routed(frame.lazy().with_row_index("_row"), plan)
    if chosen is not None:
        rows = _with_sub(rows, plan).join(chosen.lazy(), on=_chosen(plan), how="semi", nulls_equal=True)
    if part is not None:
        share = pl.concat_str([pl.col(k).cast(pl.String) for k in _keys(plan.width)], separator=" ",
                              ignore_nulls=True).hash(seed=0) % part[1]
        rows = rows.filter(share == part[0])
    # The rows as a mask, in frame order: a row given twice (by two routes) is set twice, and a
    # filter of most rows costs less than sorting their indices and gathering.
    index = rows.select("_row").collect().to_series()
    if plan.columns is not None:
        frame = frame.select(plan.columns)
    mask = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).scatter(index, True)
    return frame if mask.all() else frame.filter(mask)


def owned(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (of :func:`select_rows`, or alerts) in buffers of their own, to hold or to ship:
    polars' text columns gathered from a frame still point into the whole frame's text, so a few kept
    rows pinned every streamed batch (~1 GiB over 4 GB of capture), and shipped the capture's.
    The file's name becomes categorical (held once, not per row); other text and list columns,
    on the few rows of rare messages, are copied."""
    if "file" in rows.columns:
        rows = rows.with_columns(pl.col("file").cast(pl.Categorical))
    if any(dtype == pl.String or isinstance(dtype, pl.List) for dtype in rows.schema.values()):
        return pl.from_arrow(rows.to_arrow())  # type: ignore[return-value]
    return rows


def whole_of(icmp: pl.DataFrame, *, several: bool) -> Whole:
    """What parts of ``icmp`` need to know of it (see :class:`icmpscope.detect.base.Whole`)."""
    return Whole(several=several, file_starts=file_starts(icmp))


# What file_starts reads.
FILE_STARTS_READ = ("file", "ts", "icmp_type", "icmp_id", "icmp_seq")


def file_starts(icmp: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Each file's first echo timestamp, the order echo pairing puts files in."""
    echo = (pl.col("icmp_type").is_in(ECHO_REQUEST + ECHO_REPLY)
            & pl.col("icmp_id").is_not_null() & pl.col("icmp_seq").is_not_null())
    return (icmp.lazy().filter(echo).group_by(pl.col("file").cast(pl.String))
            .agg(pl.col("ts").min().alias("_file_start")).collect())


def options(detector: Callable[..., pl.DataFrame], thresholds: dict[str, object]) -> dict[str, object]:
    """The keywords ``detector`` runs with: its defaults, overridden by ``thresholds``."""
    params = inspect.signature(detector).parameters
    return {name: thresholds.get(name, p.default) for name, p in params.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}
