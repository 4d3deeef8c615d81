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
    distinct = (pl.col(column) if isinstance(column, str) else column).drop_nulls().unique(maintain_order=True)
    text = distinct.head(limit).cast(pl.String).str.join(", ")
    return (pl.when(distinct.len() == 0).then(pl.lit("-"))
            .when(distinct.len() > limit).then(text + "…").otherwise(text))


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


def rate_hot(rows: pl.LazyFrame, *, by: Sequence[str], window: float, hot: pl.Expr,
             aggs: Sequence[pl.Expr] = (pl.len().alias("count"),)) -> pl.LazyFrame:
    """Times at which ``aggs`` over the trailing window of each ``by`` group satisfy ``hot``.

    ``aggs`` must be cheap over overlapping windows (counts, sums): polars computes them with
    rolling kernels.
    """
    return (rows.sort(*by, "ts")
            .rolling("ts", period=f"{round(window * 1e9)}ns", group_by=list(by)).agg(*aggs)
            .filter(hot).select(*by, "ts"))


def count_hot(rows: pl.LazyFrame, *, by: Sequence[str], window: float, minimum: float) -> pl.LazyFrame:
    """The times at which a ``by`` group has at least ``minimum`` rows within the trailing
    window ``(ts - window, ts]``: the same times as :func:`rate_hot` with a count (``hot`` =
    ``count >= minimum``), without sorting by the group. With the rows in time order, a group
    has k rows within the window ending at a row exactly when that row and the group's k-1th
    row before it are less than a window apart (the last of rows with equal times answers for
    them all, and the times are what episodes read)."""
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
