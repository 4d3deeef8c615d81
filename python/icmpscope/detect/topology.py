"""Topology mapping: one source tracing the routes to many destinations, told by the
time-exceeded replies it gets from many routers."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (Data, by_frequency, distinct_hot, episodes, evidence, finish,
                                   icmp_of, listing, seconds_between, several_files)
from icmpscope.detect.sweeps import ttl_expired

__all__ = ["topology"]

NETWORK_TOPOLOGY = "T1590.004"


def topology(data: Data, *, topology_window: float = 120.0, topology_min_targets: int = 10,
             topology_min_routers: int = 10, topology_min_hops: float = 2.0) -> pl.DataFrame:
    """``topology_mapping``: time-exceeded-in-transit messages (ICMPv4 type 11, ICMPv6 type 3,
    code 0) reaching one host — the prober, ``src`` of the alert — within ``topology_window``
    seconds from at least ``topology_min_routers`` routers, quoting its TTL-limited probes to at
    least ``topology_min_targets`` destinations (T1590.004), through ``topology_min_hops``
    routers per destination or more on average: a route traced hop by hop, not one stray error
    per destination. The evidence is the first message for each destination; the detail names
    routers and destinations.

    Left alone: a traceroute or mtr to one destination however long it runs, and a monitor
    tracing a few fixed destinations on a schedule (both stay under the destination count);
    spoofed time-exceeded messages count as any others.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.topology_mapping().read()
    >>> ic.detect.topology(cap).select("kind", "src", "dst", "packets").rows()
    [('topology_mapping', '192.0.2.40', None, 234)]
    """
    rows = icmp_of(data).filter(ttl_expired()).sort("ts", "file", "frame")
    window = topology_window
    by = ["dst"]
    targets = distinct_hot(rows, by=by, target="inner_dst", window=window, minimum=topology_min_targets)
    routers = distinct_hot(rows, by=by, target="src", window=window, minimum=topology_min_routers)
    hot = targets.join(routers.unique(), on=[*by, "ts"], how="semi")
    alerts = (episodes(rows, hot, by=by, window=window).sort("ts", "file", "frame")
              .group_by(*by, "episode")
              .agg(*evidence(first=pl.col("inner_dst").is_first_distinct()),
                   pl.col("inner_dst").n_unique().alias("n_targets"), pl.col("src").n_unique().alias("n_routers"),
                   pl.struct("inner_dst", "src").n_unique().alias("_hops"),
                   listing("inner_dst").alias("targets"), listing(by_frequency("src")).alias("routers"))
              .filter(pl.col("_hops") >= topology_min_hops * pl.col("n_targets"))
              .with_columns(pl.lit("topology_mapping").alias("kind"), pl.col("dst").alias("src"),
                            pl.lit(None, pl.String).alias("dst"), pl.lit(NETWORK_TOPOLOGY).alias("technique"),
                            pl.format("{} time-exceeded messages in {} s from {} routers ({}) for probes to "
                                      "{} destinations ({})", "packets", seconds_between(), "n_routers",
                                      "routers", "n_targets", "targets").alias("detail")))
    return finish(alerts, several=several_files(data))
