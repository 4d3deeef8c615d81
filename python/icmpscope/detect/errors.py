"""Error floods: ICMP error messages reaching one target far faster than any network sends them
(BlackNurse: destination unreachables at tens of thousands a second, which keep a firewall's
CPU busy)."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (Data, by_frequency, episodes, evidence, finish, icmp_of, listing,
                                   count_hot, seconds_between, several_files, type_code)

__all__ = ["error_floods", "ERRORS", "is_error", "flooded"]

ENDPOINT_DOS = "T1499"
# Error message types: v4 unreachable, source quench, redirect, time exceeded, parameter problem;
# v6 unreachable, packet too big, time exceeded, parameter problem.
ERRORS = {4: (3, 4, 5, 11, 12), 6: (1, 2, 3, 4)}


def is_error() -> pl.Expr:
    return pl.any_horizontal(*[(pl.col("ip_version") == v) & pl.col("icmp_type").is_in(types)
                               for v, types in ERRORS.items()])


def flooded(errors: pl.LazyFrame, *, rate: float, window: float) -> pl.LazyFrame:
    """The rows of ``errors`` (error messages) that are part of an error flood at their ``dst``:
    at least ``rate`` per second over a ``window``-second window, with an ``episode`` number."""
    hot = count_hot(errors, by=["dst"], window=window, minimum=rate * window)
    return episodes(errors, hot, by=["dst"], window=window)


def error_floods(data: Data, *, error_flood_rate: float = 1000.0,
                 error_flood_window: float = 1.0) -> pl.DataFrame:
    """``error_flood``: ICMP error messages (ICMPv4 unreachable, source quench, redirect, time
    exceeded, parameter problem; ICMPv6 unreachable, packet too big, time exceeded, parameter
    problem) reaching one target at ``error_flood_rate`` per second or more over an
    ``error_flood_window``-second window, from one source or many (``src`` is null when many,
    e.g. spoofed). The detail gives the rate, the type/code mix and the top sources.

    The errors a network sends back — a traceroute's, path-MTU discovery's, a failed service's
    port unreachables — come a few a second, far below the rate; so do unreachable scans, whose
    answers follow the prober's own pace (see :func:`unreachable_scans`, which leaves the rows
    of an error flood to this detector).

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.blacknurse().read()
    >>> ic.detect.error_floods(cap).select("kind", "src", "dst", "packets").rows()
    [('error_flood', None, '192.0.2.254', 3000)]
    """
    errors = icmp_of(data).filter(is_error())
    alerts = (flooded(errors, rate=error_flood_rate, window=error_flood_window)
              .with_columns(type_code().alias("_kind"))
              .sort("ts", "file", "frame")
              .group_by("dst", "episode")
              .agg(*evidence(), pl.col("src").n_unique().alias("sources"),
                   pl.col("src").first().alias("_src"), listing(by_frequency("src")).alias("top"),
                   listing(by_frequency("_kind")).alias("kinds"))
              .with_columns(
                  pl.lit("error_flood").alias("kind"),
                  pl.when(pl.col("sources") == 1).then(pl.col("_src")).alias("src"),
                  pl.lit(ENDPOINT_DOS).alias("technique"),
                  ((pl.col("end") - pl.col("start")).dt.total_nanoseconds() / 1e9).alias("_span"))
              .with_columns(
                  pl.format("{} ICMP errors (type/code {}) in {} s, about {}/s, from {} source(s) "
                            "(e.g. {}); threshold {}/s over {} s",
                            "packets", "kinds", seconds_between(),
                            (pl.col("packets") / pl.max_horizontal(pl.col("_span"), pl.lit(error_flood_window)))
                            .round(0).cast(pl.Int64).cast(pl.String),
                            "sources", "top", pl.lit(error_flood_rate), pl.lit(error_flood_window))
                  .alias("detail")))
    return finish(alerts, several=several_files(data))
