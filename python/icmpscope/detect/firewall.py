"""Firewall probes: firewalking (probes whose TTL expires just past a gateway, so the hop behind
it tells which ports and protocols the gateway lets through) and storms of
administratively-prohibited unreachables, a filter's answers to a prober mapping it."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (ORDER, Data, by_frequency, distinct_hot, episodes, evidence, finish,
                                   icmp_of, listing, seconds_between, several_files, type_code)
from icmpscope.detect.sweeps import ttl_expired
from icmpscope.detect.unreachables import is_prohibited, service

__all__ = ["firewall_probes"]

SECURITY_APPLIANCES = "T1590.006"


def firewall_probes(data: Data, *, firewalk_window: float = 60.0, firewalk_min_ports: int = 10,
                    prohibited_window: float = 60.0, prohibited_min_probes: int = 10) -> pl.DataFrame:
    """``firewall_probe`` (T1590.006), either of:

    - firewalking: time-exceeded-in-transit messages from one router to one prober (``src`` of
      the alert) within ``firewalk_window`` seconds quoting its probes to at least
      ``firewalk_min_ports`` services (protocol and port) of one target (``dst``), while no
      other router on the way answers that many for the target: the probes' TTL was set to
      expire one hop past a gateway, whose filter they crossed. A traceroute's routers answer
      a few probes each; a long UDP mtr's answer many, but all of them do, so neither counts.
    - administratively-prohibited unreachables (ICMPv4 type 3 codes 9, 10, 13; ICMPv6 type 1
      codes 1, 5 and 6) to one prober (``src``) within ``prohibited_window`` seconds quoting its
      packets to at least ``prohibited_min_probes`` distinct services of hosts (``dst`` the host
      if one, else null). A host refused a blocked service a few times repeats one service.

    The evidence is the first message for each service (and host).

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.firewalking().read()
    >>> ic.detect.firewall_probes(cap).select("kind", "src", "dst", "packets").rows()
    [('firewall_probe', '192.0.2.60', '198.51.100.140', 28)]
    """
    icmp = icmp_of(data).with_columns(service().alias("service"))

    expired = icmp.filter(ttl_expired()).sort(*ORDER)
    by = ["dst", "inner_dst", "src"]
    hot = distinct_hot(expired, by=by, target="service", window=firewalk_window, minimum=firewalk_min_ports)
    walks = (episodes(expired, hot, by=by, window=firewalk_window).sort(*ORDER)
             .group_by(*by, "episode")
             .agg(*evidence(first=pl.col("service").is_first_distinct()),
                  pl.col("service").n_unique().alias("n"), listing("service").alias("sample")))
    # A router is the one walked when no other router of the way answers as many at the time.
    others = walks.select("dst", "inner_dst", pl.col("src").alias("_router"), pl.col("start").alias("_s"),
                          pl.col("end").alias("_e"))
    crowded = (walks.join(others, on=["dst", "inner_dst"])
               .filter((pl.col("src") != pl.col("_router")) & (pl.col("start") <= pl.col("_e"))
                       & (pl.col("end") >= pl.col("_s")))
               .select(*by, "episode").unique())
    walks = (walks.join(crowded, on=[*by, "episode"], how="anti")
             .with_columns(pl.format("firewalking: {} time-exceeded messages in {} s from {}, one hop past "
                                     "the gateway, for probes to {} services of {} ({}) that crossed it",
                                     "packets", seconds_between(), "src", "n", "inner_dst", "sample")
                           .alias("detail"),
                           pl.col("dst").alias("src"), pl.col("inner_dst").alias("dst")))

    refused = (icmp.filter(is_prohibited() & pl.col("inner_dst").is_not_null())
               .with_columns(pl.format("{} {}", pl.col("inner_dst"), pl.col("service")).alias("probe"),
                             type_code().alias("_kind"))
               .sort(*ORDER))
    hot = distinct_hot(refused, by=["dst"], target="probe", window=prohibited_window,
                       minimum=prohibited_min_probes)
    storms = (episodes(refused, hot, by=["dst"], window=prohibited_window).sort(*ORDER)
              .group_by("dst", "episode")
              .agg(*evidence(first=pl.col("probe").is_first_distinct()),
                   pl.col("probe").n_unique().alias("n"), pl.col("inner_dst").n_unique().alias("hosts"),
                   pl.col("inner_dst").first().alias("_host"), pl.col("src").n_unique().alias("filters"),
                   listing(by_frequency("src")).alias("top"), listing("_kind").alias("kinds"),
                   listing("probe").alias("sample"))
              .with_columns(pl.format("{} administratively-prohibited unreachables (type/code {}) in {} s "
                                      "from {} filter(s) ({}) refuse probes to {} services of {} host(s) ({})",
                                      "packets", "kinds", seconds_between(), "filters", "top", "n", "hosts",
                                      "sample").alias("detail"),
                            pl.col("dst").alias("src"),
                            pl.when(pl.col("hosts") == 1).then(pl.col("_host")).alias("dst")))
    alerts = (pl.concat([walks.select("src", "dst", "start", "end", "packets", "frames", "files", "detail"),
                         storms.select("src", "dst", "start", "end", "packets", "frames", "files", "detail")])
              .with_columns(pl.lit("firewall_probe").alias("kind"), pl.lit(SECURITY_APPLIANCES).alias("technique")))
    return finish(alerts, several=several_files(data))
