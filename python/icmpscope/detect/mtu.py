"""Path-MTU attacks: packet too big (ICMPv6 type 2) and fragmentation needed (ICMPv4 type 3
code 4) messages that would shrink a host's MTU below what its protocol allows, or that shrink
the MTU of many of its flows at once from many senders."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (ALERT_SCHEMA, Data, distinct_hot, episodes, evidence, finish, icmp_of,
                                   listing, seconds_between, several_files)

__all__ = ["path_mtu", "is_mtu_message", "below_minimum"]

ENDPOINT_DOS = "T1499"
# The smallest MTU each protocol allows every link (RFC 8200 5, RFC 791).
MINIMUM_MTU = {6: 1280, 4: 68}


def is_mtu_message() -> pl.Expr:
    """Packet too big (ICMPv6 2) and fragmentation needed (ICMPv4 3/4) with an MTU (an ICMPv4
    MTU of 0 is a router older than RFC 1191 that names none)."""
    v4, v6 = pl.col("ip_version") == 4, pl.col("ip_version") == 6
    return ((v6 & (pl.col("icmp_type") == 2)) | (v4 & (pl.col("icmp_type") == 3) & (pl.col("icmp_code") == 4))) \
        & (pl.col("mtu").fill_null(0) > 0)


def below_minimum() -> pl.Expr:
    """An MTU below its protocol's minimum."""
    return pl.col("mtu") < pl.col("ip_version").replace_strict(MINIMUM_MTU, default=0)


def path_mtu(data: Data, *, mtu_window: float = 10.0, mtu_min_flows: int = 10,
             mtu_min_senders: int = 10) -> pl.DataFrame:
    """``mtu_attack`` (T1499): packet too big / fragmentation needed messages advertising an
    MTU below the protocol's minimum (1280 for IPv6, 68 for IPv4) — a stack that believes them
    fragments everything or stalls (THC toobig6) — one alert per sender and receiver; and one
    host told within ``mtu_window`` seconds to shrink the MTU of at least ``mtu_min_flows``
    of its flows (quoted destination, protocol and ports) by at least ``mtu_min_senders``
    senders — routers each finding a bottleneck at the same moment do not happen, forged
    messages in the names of the flows' routers or peers do — one alert per host, ``src``
    null. The detail names the MTUs advertised, the senders and the flows' destinations.

    Left alone: path-MTU discovery with real MTUs, however many flows a router (or a few)
    reports on (1400 behind a tunnel, the IPv6 minimum 1280); ICMPv4 messages with an MTU of 0
    (routers older than RFC 1191). Limits: a forger who stays at or above the minimum and
    speaks from one address looks like a router; only what the capture's link carries.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.mtu_attack().read()
    >>> ic.detect.path_mtu(cap).select("kind", "src", "dst", "packets").rows()
    [('mtu_attack', '2001:db8:ff::66', '2001:db8:1::10', 3), ('mtu_attack', None, '192.0.2.10', 30)]
    """
    rows = icmp_of(data).filter(is_mtu_message()).sort("ts", "file", "frame")
    flow = pl.struct("inner_dst", "inner_proto", "inner_sport", "inner_dport")
    by = ["dst"]
    flows = distinct_hot(rows.with_columns(flow.alias("_flow")), by=by, target="_flow", window=mtu_window,
                         minimum=mtu_min_flows)
    senders = distinct_hot(rows, by=by, target="src", window=mtu_window, minimum=mtu_min_senders)
    many = episodes(rows, flows.join(senders.unique(), on=[*by, "ts"], how="semi"), by=by, window=mtu_window)
    shrinking = (many.group_by(*by, "episode")
                 .agg(*evidence(), flow.n_unique().alias("n_flows"), pl.col("src").n_unique().alias("n_senders"),
                      listing("mtu").alias("mtus"), listing("src").alias("senders"),
                      listing("inner_dst").alias("peers"))
                 .with_columns(pl.lit(None, pl.String).alias("src"),
                               pl.format("{} messages in {} s shrinking the MTU of {} flows of {} (to {}) from {} "
                                         "senders ({}), for {}", "packets", seconds_between(), "n_flows", "dst",
                                         "mtus", "n_senders", "senders", "peers").alias("detail")))
    pair = ["src", "dst"]
    low = rows.filter(below_minimum()).join(many.select("file", "frame"), on=["file", "frame"], how="anti")
    tiny = (episodes(low, low.select(*pair, "ts"), by=pair, window=mtu_window)
            .group_by(*pair, "episode")
            .agg(*evidence(), listing("mtu").alias("mtus"), listing("inner_dst").alias("peers"),
                 pl.col("ip_version").first().alias("v"))
            .with_columns(pl.format("{} message(s) from {} advertising MTU {} to {} for {}, below the "
                                    "IPv{} minimum of {}", "packets", "src", "mtus", "dst", "peers", "v",
                                    pl.col("v").replace_strict(MINIMUM_MTU).cast(pl.String)).alias("detail")))
    columns = [*ALERT_SCHEMA, "files"]
    alerts = (pl.concat([tiny, shrinking], how="diagonal_relaxed")
              .with_columns(pl.lit("mtu_attack").alias("kind"), pl.lit(ENDPOINT_DOS).alias("technique"))
              .select(columns))
    return finish(alerts, several=several_files(data))
