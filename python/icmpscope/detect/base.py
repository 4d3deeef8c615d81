"""What every detector shares: its input as a LazyFrame of the ``icmp`` table, the alert schema,
and *episodes* — the stretches of capture time in which a group of rows is over a threshold.

A row is *hot* when its group (say, one source and one target) crossed a threshold over the
trailing ``window`` of capture time that ends at the row, ``(ts - window, ts]``; this is the
exact maximum over every sliding window, so a threshold holds "within any ``window``". Hot rows
less than a window apart form one episode, and an episode's rows are those of its group from
one window before its first hot row to its last: that is the evidence of one alert.
"""
from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Union

import polars as pl

from icmpscope import _core
from icmpscope.io import Capture

Data = Union[Capture, pl.DataFrame, pl.LazyFrame]

MAX_FRAMES = 20
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "start": pl.Datetime("ns", "UTC"),
    "end": pl.Datetime("ns", "UTC"),
    "src": pl.String(),
    "dst": pl.String(),
    "packets": pl.UInt64(),
    "detail": pl.String(),
    "technique": pl.String(),
    "frames": pl.List(pl.UInt64()),
}
FILES_TYPE = pl.List(pl.String())

# Text columns (Categorical in our tables, `file` aside): compared and joined as String across files.
_TEXT = ("file", "src", "dst", "src_mac", "dst_mac", "gateway", "mask", "inner_src", "inner_dst",
         "outer_src", "outer_dst")

ECHO_REQUEST = (8, 128)
ECHO_REPLY = (0, 129)
ORDER = ("ts", "file", "frame")  # capture time; ties in the order of the files' records


def lazy(table: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """``table`` as a LazyFrame whose address, MAC and file columns are String."""
    lf = table.lazy()
    names = lf.collect_schema().names()
    return lf.with_columns(pl.col(c).cast(pl.String) for c in _TEXT if c in names)


def coded_of(data: Data) -> pl.LazyFrame:
    """The ``icmp`` table of ``data`` with its text columns Categorical (as read; String ones
    cast), for detectors that group, join and sort by :func:`code` and cast to text only what
    their alerts show."""
    if isinstance(data, Capture):
        data = data.icmp
    if not isinstance(data, (pl.DataFrame, pl.LazyFrame)):
        return icmp_of(data)  # raises the TypeError that names what is expected
    lf = data.lazy()
    schema = lf.collect_schema()
    return lf.with_columns(pl.col(c).cast(pl.Categorical) for c in _TEXT
                           if c in schema and schema[c] != pl.Categorical)


def code(column: str) -> pl.Expr:
    """A Categorical column's integer code: equal codes are equal text in one process (polars'
    categories are global), and ints sort, group and join several times faster than text.
    The order of codes is not the order of the text."""
    return pl.col(column).to_physical()


def icmp_of(data: Data) -> pl.LazyFrame:
    """The ``icmp`` table of a Capture, DataFrame or LazyFrame (e.g. from ``scan_pcap``)."""
    if isinstance(data, Capture):
        return lazy(data.icmp)
    if isinstance(data, (pl.DataFrame, pl.LazyFrame)):
        return lazy(data)
    raise TypeError(f"expected a Capture, a polars DataFrame or LazyFrame, not {type(data).__name__}")


@dataclass(frozen=True)
class Whole:
    """What a detector run over part of a capture (the rows of some groups) must know of the
    whole: whether it spans several files, each file's first echo timestamp (echo pairing
    orders files by it), and the routers inferred from it (by the inference's parameters)."""

    several: bool
    file_starts: pl.DataFrame
    routers: dict[tuple[Any, ...], pl.DataFrame] = field(default_factory=dict)


_WHOLE: ContextVar[Whole | None] = ContextVar("icmpscope_whole", default=None)


@contextmanager
def part_of(context: Whole) -> Iterator[None]:
    """Detectors called inside see ``context`` where they would look at the whole capture."""
    token = _WHOLE.set(context)
    try:
        yield
    finally:
        _WHOLE.reset(token)


def whole() -> Whole | None:
    """The whole capture the rows being detected over are part of, if they are a part."""
    return _WHOLE.get()


def several_files(data: Data) -> bool:
    """Whether ``data`` comes from more than one capture file (alerts then name the files)."""
    if (context := _WHOLE.get()) is not None:
        return context.several
    if isinstance(data, Capture):
        return data.stats.height > 1
    return bool(icmp_of(data).select(pl.col("file").n_unique()).collect().item() > 1)


def has_column(lf: pl.LazyFrame, name: str) -> bool:
    return name in lf.collect_schema().names()


def seconds(window: float) -> pl.Expr:
    """``window`` seconds as a nanosecond Duration (the unit of ``ts``)."""
    if window <= 0:
        raise ValueError(f"a window must be positive, got {window}")
    return pl.duration(nanoseconds=round(window * 1e9), time_unit="ns")


def evidence(first: pl.Expr | None = None, *, ordered: bool = False) -> list[pl.Expr]:
    """Aggregates every alert carries: time span, packet count, and up to 20 frames (with their
    files) in capture order — of the rows where ``first`` holds, if given (e.g. one per target).
    ``ordered``: the rows are sorted by ``ORDER`` already (a group keeps its rows' order), so
    the first frames need no sort."""
    frame, file = pl.col("frame"), pl.col("file")
    if first is not None:
        frame, file = frame.filter(first), file.filter(first)
    if not ordered:
        # One struct key, not one filtered key per column: polars 2.1 panics sorting a group by
        # several filtered keys (an error flood's unreachables, grouped by quoted service, did).
        order = pl.struct(*ORDER) if first is None else pl.struct(*ORDER).filter(first)
        frame, file = frame.sort_by(order), file.sort_by(order)
    return [
        pl.col("ts").min().alias("start"),
        pl.col("ts").max().alias("end"),
        pl.len().cast(pl.UInt64).alias("packets"),
        frame.head(MAX_FRAMES).alias("frames"),
        file.head(MAX_FRAMES).alias("files"),
    ]


def finish(alerts: pl.LazyFrame, *, several: bool) -> pl.DataFrame:
    """Alerts in the schema of SPEC "Detections", in time order (``files`` only if ``several``)."""
    columns = [pl.col(name).cast(dtype) for name, dtype in ALERT_SCHEMA.items()]
    if several:
        columns.append(pl.col("files").cast(FILES_TYPE))
    return alerts.select(columns).sort("start", "kind", "src", "dst", nulls_last=True).collect()


def empty(*, several: bool) -> pl.DataFrame:
    schema = dict(ALERT_SCHEMA, **({"files": FILES_TYPE} if several else {}))
    return pl.DataFrame(schema=schema)


def seconds_between(start: str = "start", end: str = "end") -> pl.Expr:
    """The span from ``start`` to ``end`` in seconds, as text with one decimal (half up)."""
    # In integers: polars rounds a float like 5.85 to 5.8 or 5.9 depending on the series' length,
    # so a streamed and an in-memory run could word the same alert differently.
    tenths = ((pl.col(end) - pl.col(start)).dt.total_milliseconds() + 50) // 100
    return pl.format("{}.{}", tenths // 10, tenths % 10)


def type_code() -> pl.Expr:
    """A message's ICMP type and code as text, e.g. "3/3"."""
    return pl.format("{}/{}", pl.col("icmp_type").cast(pl.String), pl.col("icmp_code").cast(pl.String))


def listing(column: str | pl.Expr, limit: int = 5) -> pl.Expr:
    """Up to ``limit`` distinct values as text, "a, b, c…" when there are more, "-" for none."""
    # Distinct first, then text: casting every row of a busy group costs more than the rest.
    # The distinct values are found once and worded in a list.eval: three references to them
    # made polars find them three times (a sweep's 1000 targets a group).
    distinct = (pl.col(column) if isinstance(column, str) else column).drop_nulls().unique(maintain_order=True)
    values = pl.element()
    text = values.head(limit).str.join(", ")
    worded = (pl.when(values.len() == 0).then(pl.lit("-"))
              .when(values.len() > limit).then(text + "…").otherwise(text))
    return distinct.head(limit + 1).cast(pl.String).implode().list.eval(worded).list.first()


def by_frequency(column: str) -> pl.Expr:
    """The distinct values of ``column``, most frequent first (ties in value order)."""
    runs = pl.col(column).drop_nulls().sort().rle()  # sorted first: the same runs every time
    return runs.sort_by(runs.struct.field("len"), descending=True, maintain_order=True).struct.field("value")


# --------------------------------------------------------------------------- episodes

def runs(by: Sequence[str], gap: pl.Expr) -> pl.Expr:
    """Over rows sorted by ``by`` then ``ts``: a number for each run of rows of one group with no
    pause longer than ``gap`` (a global count, cheaper than windows over many groups)."""
    return run_starts(by, gap).cum_sum()


def run_starts(by: Sequence[str], gap: pl.Expr) -> pl.Expr:
    """Over rows sorted by ``by`` then ``ts``: whether a row starts a run (see :func:`runs`)."""
    new_group = pl.any_horizontal(*(pl.col(c).ne_missing(pl.col(c).shift()) for c in by))
    return (new_group | (pl.col("ts").diff() > gap)).fill_null(True)


def _window_ns(window: float) -> int:
    if window <= 0:
        raise ValueError(f"a window must be positive, got {window}")
    return round(window * 1e9)


def _codes(column: pl.Series) -> pl.Series:
    """One column's values as u64 codes (equal values, equal codes, in any frame of this
    process: polars' categories are global); null stays null."""
    if column.dtype == pl.String:
        column = column.cast(pl.Categorical)
    if column.dtype == pl.Categorical:
        return column.to_physical().cast(pl.UInt64)
    if column.dtype.is_unsigned_integer():
        return column.cast(pl.UInt64)
    return column.rank("dense").cast(pl.UInt64)


def group_ids(frames: Sequence[pl.DataFrame], columns: Sequence[str], *, nulls_equal: bool = False) -> list[pl.Series]:
    """The ``columns`` of each frame as one u64 id per row, equal ids for equal values across
    the frames, for the window kernels; null where a value is null, unless ``nulls_equal``
    (a null is then a value like any other)."""
    whole = pl.concat([f.select(columns) for f in frames], how="vertical_relaxed")
    codes = [_codes(whole.get_column(c)) for c in columns]
    if len(codes) == 1 and not (nulls_equal and codes[0].has_nulls()):
        ids = codes[0]
    elif len(codes) == 2 and not nulls_equal and all(c.max() is None or c.max() < 1 << 32 for c in codes):
        ids = codes[0] * (1 << 32) + codes[1]  # two u32 codes in one int; a null stays null
    else:
        ranked = pl.struct(codes).rank("dense").cast(pl.UInt64)
        ids = pl.select(ranked if nulls_equal else
                        pl.when(pl.any_horizontal(c.is_null() for c in codes)).then(None).otherwise(ranked)).to_series()
    out, at = [], 0
    for f in frames:
        out.append(ids.slice(at, f.height))
        at += f.height
    return out


def in_time_order(rows: pl.LazyFrame) -> pl.DataFrame:
    """``rows`` collected, in time order (stable): most come so already, and checking costs
    less than polars' sort of wide rows."""
    frame = rows.collect()
    return frame if frame.get_column("ts").is_sorted() else frame.sort("ts", maintain_order=True)


def in_capture_order(rows: pl.LazyFrame) -> pl.LazyFrame:
    """``rows`` collected and sorted by ``ORDER``, so that :func:`evidence` may take them as
    ``ordered`` (sorting each alert's rows cost a second over a flood's millions). Rows whose
    times strictly increase are in that order already: checked, not sorted."""
    frame = rows.collect()
    increasing = frame.select((pl.col("ts").diff() > pl.duration(nanoseconds=0)).all()).item()
    return (frame if increasing else frame.sort(*ORDER)).lazy()


def _ns(frame: pl.DataFrame) -> pl.Series:
    return frame.get_column("ts").dt.epoch("ns")


def trailing_counts(rows: pl.DataFrame, *, by: Sequence[str], window: float, target: Sequence[str] = (),
                    weight: str | None = None, nulls_equal: bool = False) -> pl.Series:
    """Per row of ``rows`` (in time order), over the rows of its ``by`` group within the
    trailing window ``(ts - window, ts]``: how many there are, the sum of their ``weight``
    column, or (with ``target``) how many distinct non-null targets they have; null for a group
    with a null. Counted in the core (``icmpscope._core.trailing_counts``)."""
    groups, = group_ids([rows], by, nulls_equal=nulls_equal)
    sums = rows.get_column(weight).cast(pl.UInt64) if weight is not None else None
    distinct = group_ids([rows], target)[0] if target else None
    counts = _core.trailing_counts(groups, _ns(rows), _window_ns(window), sums=sums, distinct=distinct)
    return pl.DataFrame(counts).to_series()


def may_reach(rows: pl.DataFrame, *, by: Sequence[str], least: float, weight: str | None = None) -> pl.Series:
    """Per row of ``rows``: whether its ``by`` group may have ``least`` rows in all (or rows
    whose ``weight`` sums to that): true for every row of each group that does, and for a few
    other rows (hashed counters, ``icmpscope._core.at_least``); rows of groups with a null
    count as one group. A filter before counting exactly."""
    groups, = group_ids([rows], by)
    weights = rows.get_column(weight).cast(pl.UInt64) if weight is not None else None
    kept = _core.at_least(groups, max(math.ceil(least), 0), weights=weights)
    return pl.DataFrame(kept).to_series()


def count_hot(rows: pl.LazyFrame, *, by: Sequence[str], window: float, minimum: float,
              weight: str | None = None) -> pl.LazyFrame:
    """The times at which a ``by`` group (a null is a value) has at least ``minimum`` rows
    within the trailing window ``(ts - window, ts]`` (with ``weight``: rows whose ``weight``
    column sums to at least ``minimum``, bytes say)."""
    rows = rows.select(*dict.fromkeys([*by, *([weight] if weight else [])]), "ts")
    if minimum > 1:
        # Only groups with that much in all can: the kernel's per-group counters miss the
        # cache over millions of groups (5M requests over 2.85M pairs), and so does an exact
        # count of them; the few groups :func:`may_reach` leaves are counted exactly.
        rows = rows.collect()
        rows = rows.filter(may_reach(rows, by=by, least=minimum, weight=weight)).lazy()
    ordered = in_time_order(rows)
    counts = trailing_counts(ordered, by=by, window=window, weight=weight, nulls_equal=True)
    return ordered.filter(counts >= minimum).select(*by, "ts").lazy()


def distinct_hot(rows: pl.LazyFrame, *, by: Sequence[str], target: str | Sequence[str],
                 window: float, minimum: int) -> pl.LazyFrame:
    """The times of the rows whose ``by`` group has at least ``minimum`` distinct ``target``
    values within the trailing window (groups and targets with a null take no part)."""
    targets = [target] if isinstance(target, str) else list(target)
    ordered = in_time_order(rows.select(*dict.fromkeys([*by, *targets]), "ts"))
    counts = trailing_counts(ordered, by=by, target=targets, window=window)
    return ordered.filter(counts >= minimum).select(*by, "ts").lazy()


def episodes(rows: pl.LazyFrame, hot: pl.LazyFrame, *, by: Sequence[str],
             window: float) -> pl.LazyFrame:
    """``rows`` that belong to an episode of their ``by`` group, with an ``episode`` number
    (unique across groups), in time order: hot times of a group at most ``window`` apart make
    one episode, which holds the group's rows from one window before its first hot time to its
    last. Found in the core (``icmpscope._core.episodes``)."""
    ordered, times = in_time_order(rows), in_time_order(hot.select(*by, "ts"))
    groups, hot_groups = group_ids([ordered, times], by)
    found = pl.DataFrame(_core.episodes(hot_groups, _ns(times), groups, _ns(ordered), _window_ns(window))).to_series()
    ordered = ordered.with_columns(found)
    # A filter copies every column, and often keeps them all.
    return (ordered if found.null_count() == 0 else ordered.filter(pl.col("episode").is_not_null())).lazy()


@dataclass(frozen=True)
class Over:
    """A threshold over a trailing window: ``minimum`` rows of a group, or rows whose
    ``weight`` column sums to ``minimum``, or ``minimum`` distinct non-null ``target`` values."""

    minimum: float
    weight: str | None = None
    target: str | None = None


def hot_episodes(rows: pl.LazyFrame, *, by: Sequence[str], window: float, over: Sequence[Over]) -> pl.LazyFrame:
    """:func:`episodes` of ``rows`` made by the times at which one of ``over`` holds for a row's
    ``by`` group (:func:`count_hot`, :func:`distinct_hot`), found in one pass: the rows are
    ordered and their groups numbered once, and the hot times never leave the kernels' arrays."""
    ordered = in_time_order(rows)
    groups, = group_ids([ordered], by)
    ns = _ns(ordered)
    hot = pl.repeat(False, ordered.height, dtype=pl.Boolean, eager=True)
    for threshold in over:
        extra = [c for c in (threshold.weight, threshold.target) if c is not None]
        counted = ordered.select(*dict.fromkeys([*by, *extra]), "ts")
        # A group needs that many rows in all (or that much weight; distinct targets are rows).
        kept = may_reach(counted, by=by, least=threshold.minimum, weight=threshold.weight)
        every = kept.all()
        counts = trailing_counts(counted if every else counted.filter(kept), by=by, window=window,
                                 target=[threshold.target] if threshold.target else (), weight=threshold.weight)
        reached = (counts >= threshold.minimum).fill_null(False)
        hot = hot | reached if every else hot.scatter(kept.arg_true().filter(reached), True)
    found = pl.DataFrame(_core.episodes(groups.filter(hot), ns.filter(hot), groups, ns, _window_ns(window))).to_series()
    ordered = ordered.with_columns(found)
    return (ordered if found.null_count() == 0 else ordered.filter(pl.col("episode").is_not_null())).lazy()


# --------------------------------------------------------------------------- addresses

def is_multicast_mac(mac: pl.Expr) -> pl.Expr:
    """Group (broadcast or multicast) MACs have the low bit of the first octet set."""
    return (mac.str.slice(0, 2).str.to_integer(base=16, strict=False) % 2) == 1


def usable_mac(mac: pl.Expr) -> pl.Expr:
    """A unicast MAC that names a station (not a group address, not all zeros)."""
    return mac.is_not_null() & ~is_multicast_mac(mac) & (mac != "00:00:00:00:00:00")


def ipv4_int(addr: pl.Expr) -> pl.Expr:
    """An IPv4 address as an integer (null for anything else)."""
    octets = addr.str.extract_groups(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$")
    return sum(octets.struct.field(str(i + 1)).cast(pl.Int64, strict=False) * (1 << (24 - 8 * i))
               for i in range(4))


def is_link_local(addr: pl.Expr) -> pl.Expr:
    return addr.str.starts_with("fe80:")


def is_broadcast(addr: pl.Expr, mac: pl.Expr, networks: Sequence[str] = ()) -> pl.Expr:
    """Broadcast and multicast destinations: 255.255.255.255, 224.0.0.0/4, ff00::/8, any
    address sent to a group MAC, the directed broadcast (all-ones host part) of ``networks``,
    and, without ``networks``, IPv4 addresses ending in .255 (the directed broadcast of any
    network of /24 or shorter)."""
    first_octet = addr.str.extract(r"^(\d+)\.", 1).cast(pl.Int32, strict=False)
    directed = (pl.lit(False) if networks else addr.str.ends_with(".255"))
    for net in networks:
        directed = directed | (addr == directed_broadcast(net))
    return (
        (addr == "255.255.255.255")
        | first_octet.is_between(224, 239).fill_null(False)
        | addr.str.starts_with("ff")
        | is_multicast_mac(mac).fill_null(False)
        | directed
    ).fill_null(False)


def directed_broadcast(network: str) -> str:
    """The all-ones host address of an IPv4 network, e.g. "10.1.0.0/16" -> "10.1.255.255"."""
    net = ipaddress.ip_network(network, strict=False)
    if net.version != 4:
        raise ValueError(f"directed broadcast exists only in IPv4, not {network!r}")
    return str(net.broadcast_address)
