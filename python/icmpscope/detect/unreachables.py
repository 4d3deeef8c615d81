"""Unreachable scans: a storm of destination unreachables at one host, whose quoted packets show
it probing many ports of a host, or many hosts."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (Data, distinct_hot, episodes, evidence, finish, icmp_of,
                                   listing, seconds_between, several_files)
from icmpscope.detect.errors import flooded
from icmpscope.detect.sweeps import REMOTE_SYSTEM_DISCOVERY, traceroute_pairs

__all__ = ["unreachable_scans", "is_prohibited", "service"]

NETWORK_SERVICE_DISCOVERY = "T1046"
# ICMPv6 codes 5 (source address failed ingress/egress policy) and 6 (reject route to
# destination) are "more informative subsets of code 1" (RFC 4443 3.1): ip6tables REJECT sends
# each (icmp6-adm-prohibited, icmp6-policy-fail, icmp6-reject-route).
PROHIBITED = {4: (9, 10, 13), 6: (1, 5, 6)}
_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}


def service() -> pl.Expr:
    """The quoted packet's protocol and destination port as text, e.g. "udp/53", "icmp/-"."""
    proto = pl.col("inner_proto").replace_strict(_PROTOCOLS, default=pl.col("inner_proto").cast(pl.String),
                                                 return_dtype=pl.String)
    return pl.format("{}/{}", proto, pl.col("inner_dport").cast(pl.String).fill_null("-"))


def is_prohibited() -> pl.Expr:
    """Administratively-prohibited unreachables: a filter's answer (ICMPv4 type 3 codes 9, 10,
    13; ICMPv6 type 1 codes 1, 5 and 6)."""
    return (((pl.col("ip_version") == 4) & (pl.col("icmp_type") == 3) & pl.col("icmp_code").is_in(PROHIBITED[4]))
            | ((pl.col("ip_version") == 6) & (pl.col("icmp_type") == 1) & pl.col("icmp_code").is_in(PROHIBITED[6])))


def unreachable_scans(data: Data, *, unreach_window: float = 60.0, unreach_min_ports: int = 10,
                      unreach_min_hosts: int = 20, error_flood_rate: float = 1000.0,
                      error_flood_window: float = 1.0) -> pl.DataFrame:
    """``unreachable_scan``: destination unreachables (ICMPv4 type 3 except fragmentation needed,
    ICMPv6 type 1) sent to one host — the prober — within ``unreach_window`` seconds, quoting
    its packets to at least ``unreach_min_ports`` services (protocol and port) of one host
    (a port scan: ``dst`` is that host, T1046) or to at least ``unreach_min_hosts`` hosts (a host
    scan: ``dst`` null, T1018). The evidence is the first unreachable for each service or host.

    Not counted: path-MTU messages, unreachables for targets the prober traced with TTL-limited
    probes (a UDP traceroute's last hop answers each probe port), and, by the thresholds,
    the port unreachables of a failed DNS or other UDP service, which repeat one port.
    Nor the administratively-prohibited ones (ICMPv4 codes 9, 10, 13; ICMPv6 codes 1, 5, 6): a
    filter's answers, which :func:`firewall_probes` reads. Nor an error flood: unreachables
    reaching the host at ``error_flood_rate`` per second or more over ``error_flood_window``
    seconds (the keywords of :func:`error_floods`) come from a flooder, not from hosts the
    host probed (BlackNurse quotes whatever it likes).

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.unreachable_scan().read()
    >>> ic.detect.unreachable_scans(cap).select("kind", "src", "dst", "packets").rows()
    [('unreachable_scan', '203.0.113.9', '192.0.2.20', 12)]
    """
    icmp = icmp_of(data)
    unreachable = (((pl.col("ip_version") == 4) & (pl.col("icmp_type") == 3) & (pl.col("icmp_code") != 4))
                   | ((pl.col("ip_version") == 6) & (pl.col("icmp_type") == 1)))
    answers = icmp.filter(unreachable & pl.col("inner_dst").is_not_null())
    flood = flooded(answers, rate=error_flood_rate, window=error_flood_window).select("file", "frame")
    traced = traceroute_pairs(icmp).rename({"prober": "dst", "target": "inner_dst"})
    rows = (answers.filter(~is_prohibited())
            .join(flood, on=["file", "frame"], how="anti")
            .join(traced, on=["dst", "inner_dst"], how="anti")
            .with_columns(service().alias("service"))
            .sort("ts", "file", "frame"))
    window = unreach_window

    def scans(by: list[str], target: str, minimum: int) -> pl.LazyFrame:
        hot = distinct_hot(rows, by=by, target=target, window=window, minimum=minimum)
        return (episodes(rows, hot, by=by, window=window).sort("ts", "file", "frame")
                .group_by(*by, "episode")
                .agg(*evidence(first=pl.col(target).is_first_distinct()),
                     pl.col(target).n_unique().alias("n"), listing(target).alias("sample"),
                     listing("inner_src").alias("quoted")))

    ports = scans(["dst", "inner_dst"], "service", unreach_min_ports).with_columns(
        pl.col("inner_dst").alias("target"),
        pl.lit(NETWORK_SERVICE_DISCOVERY).alias("technique"),
        pl.format("{} unreachables in {} s quote probes from {} to {} services of {} ({})",
                  "packets", seconds_between(), "quoted", "n", "inner_dst", "sample").alias("detail"))
    hosts = scans(["dst"], "inner_dst", unreach_min_hosts).with_columns(
        pl.lit(None, pl.String).alias("target"),
        pl.lit(REMOTE_SYSTEM_DISCOVERY).alias("technique"),
        pl.format("{} unreachables in {} s quote probes from {} to {} hosts ({})",
                  "packets", seconds_between(), "quoted", "n", "sample").alias("detail"))
    alerts = (pl.concat([ports.drop("inner_dst"), hosts], how="diagonal_relaxed")
              .with_columns(pl.lit("unreachable_scan").alias("kind"), pl.col("dst").alias("src"),
                            pl.col("target").alias("dst")))
    return finish(alerts, several=several_files(data))
