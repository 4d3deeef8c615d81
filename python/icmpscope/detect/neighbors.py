"""Who is at which address on the link: the bindings (IPv6 address -> MAC) neighbour discovery
shows, and the neighbour advertisements that contradict them.

A *claim* is a neighbour discovery message that tells the link an address is at a MAC, as a
neighbour cache learns it (RFC 4861 7.2.3-7.2.5): a neighbour advertisement binds its target
to its target link-layer address option, a neighbour or router solicitation or a router
advertisement its source address to its source link-layer address option. Messages without
the option bind nothing (a forged router advertisement without one, as kill_router6 sends,
claims no address), nor do duplicate address detection's solicitations, from ``::``. Without ``known_neighbors=``,
the bindings are inferred from the claims themselves (:func:`infer_neighbors`): an address is
bound to the MAC of its first claim, and a claim after ``nd_silence`` seconds in which nobody
claimed the address starts over (a NIC swapped, a host that came back with another MAC).

Only the link the capture sees: messages inside a tunnel (Teredo, 6in4 ...) are the tunnel's
business, not claims on this link, and are left out. 
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta

import polars as pl

from icmpscope.detect.base import (ALERT_SCHEMA, Data, distinct_hot, episodes, evidence, finish, icmp_of, listing, runs,
                                   seconds, several_files, usable_mac)

__all__ = ["infer_neighbors", "neighbor_discovery"]

ADVERSARY_IN_THE_MIDDLE = "T1557"
ENDPOINT_DOS = "T1499"
ROUTER_SOLICIT, ROUTER_ADVERT, NEIGHBOR_SOLICIT, NEIGHBOR_ADVERT = 133, 134, 135, 136
ND = (ROUTER_SOLICIT, ROUTER_ADVERT, NEIGHBOR_SOLICIT, NEIGHBOR_ADVERT)
UNSPECIFIED = "::"
# Neighbour advertisement flags (RFC 4861 4.4), in the nd_flags column.
SOLICITED, OVERRIDE = 0x40, 0x20
_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$", re.IGNORECASE)

Neighbors = Mapping[str, str] | Iterable[tuple[str, str]]


def on_link_nd() -> pl.Expr:
    """ICMPv6 neighbour discovery messages of the link itself (not carried in a tunnel)."""
    return (pl.col("ip_version") == 6) & pl.col("icmp_type").is_in(ND) & pl.col("tunnel").is_null()


def claimed_address() -> pl.Expr:
    """The address a message claims: a neighbour advertisement's target, else its source (none
    for duplicate address detection, sent from ``::``)."""
    src = pl.col("src").cast(pl.String)
    return (pl.when(pl.col("icmp_type") == NEIGHBOR_ADVERT).then(pl.col("nd_target").cast(pl.String))
            .when(src != UNSPECIFIED).then(src))


def claimed_mac() -> pl.Expr:
    """The MAC a message binds its address to: its link-layer address option (a neighbour
    cache learns from nothing else; a forged message without one, kill_router6's advertisements
    say, binds nothing)."""
    option = pl.col("lladdr").cast(pl.String)  # as text: plans judge the tables' Categorical columns
    return pl.when(usable_mac(option)).then(option)


def _declared(known_neighbors: Neighbors) -> pl.LazyFrame:
    pairs = known_neighbors.items() if isinstance(known_neighbors, Mapping) else known_neighbors
    rows = []
    for address, mac in pairs:
        mac = str(mac).strip().lower().replace("-", ":")
        if not _MAC.match(mac):
            raise ValueError(f"known_neighbors: {mac!r} is not a MAC (for {address!r})")
        rows.append((str(ipaddress.ip_address(str(address).strip())), mac))
    return pl.LazyFrame(rows, schema={"_addr": pl.String, "_owner": pl.String}, orient="row")


def _claims(data: Data, nd_silence: float) -> pl.LazyFrame:
    """Every claim, in time order, with its run of the address (``_run``: claims of the address
    no more than ``nd_silence`` apart), the run's first MAC (``_first``) and when each MAC of
    the run last claimed the address (``_seen``, up to and including the row)."""
    return (icmp_of(data).filter(on_link_nd())
            .with_columns(claimed_address().alias("_addr"), claimed_mac().alias("_mac"))
            .filter(pl.col("_addr").is_not_null() & pl.col("_mac").is_not_null())
            .sort("_addr", "ts", "file", "frame")
            .with_columns(runs(["_addr"], seconds(nd_silence)).alias("_run"))
            .with_columns(pl.col("_mac").first().over("_run").alias("_first")))


def infer_neighbors(data: Data, *, nd_silence: float = 60.0) -> pl.DataFrame:
    """The bindings the link shows (see the module): one row per address and stretch of claims
    no more than ``nd_silence`` seconds apart, with the ``mac`` of its first claim, when it was
    ``first_seen`` and ``last_confirmed`` (the last claim from that MAC) and how many ``claims``
    other MACs made for it meanwhile (``contested``).

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.nd_spoofing().read()
    >>> ic.detect.infer_neighbors(cap).select("address", "mac", "contested").rows()
    [('2001:db8:1::10', '02:00:00:00:00:10', 4), ('2001:db8:1::20', '02:00:00:00:00:20', 0)]
    """
    return (_claims(data, nd_silence)
            .group_by("_addr", "_run")
            .agg(pl.col("_first").first().alias("mac"),
                 pl.col("ts").filter(pl.col("_mac") == pl.col("_first")).min().alias("first_seen"),
                 pl.col("ts").filter(pl.col("_mac") == pl.col("_first")).max().alias("last_confirmed"),
                 (pl.col("_mac") != pl.col("_first")).sum().cast(pl.UInt64).alias("contested"))
            .sort("_addr", "first_seen")
            .select(pl.col("_addr").alias("address"), "mac", "first_seen", "last_confirmed", "contested")
            .collect())


def _spoofing(claims: pl.LazyFrame, known_neighbors: Neighbors | None, nd_silence: float) -> pl.LazyFrame:
    """Neighbour advertisements claiming an address its owner holds: the run's first MAC, or
    the declared one. One alert per claiming MAC and stretch of its false claims."""
    if known_neighbors is not None:
        declared = _declared(known_neighbors)
        claims = (claims.join(declared, on="_addr", how="left")
                  .with_columns(pl.coalesce("_owner", "_first").alias("_owner")))
        source = pl.lit("declared bindings, else the first claim")
    else:
        claims = claims.with_columns(pl.col("_first").alias("_owner"))
        source = pl.lit("bindings inferred from the capture")
    owned = pl.col("_mac") == pl.col("_owner")
    claims = claims.with_columns(
        pl.col("ts").filter(owned).max().over("_run").alias("_confirmed"))
    false = claims.filter((pl.col("icmp_type") == NEIGHBOR_ADVERT) & ~owned)
    flags = pl.col("nd_flags").fill_null(0)
    binding = pl.format("{} at {} (last confirmed {})", "_addr", "_owner",
                        pl.col("_confirmed").dt.strftime("%Y-%m-%d %H:%M:%S%.3f UTC"))
    return (episodes(false, false.select("_mac", "ts"), by=["_mac"], window=nd_silence)
            .group_by("_mac", "episode")
            .agg(*evidence(),
                 pl.col("_addr").n_unique().alias("_n"), pl.col("_addr").first().alias("_one"),
                 pl.col("dst").n_unique().alias("_nd"), pl.col("dst").first().alias("_dst"),
                 listing("_addr").alias("claimed"), listing(binding).alias("bound"),
                 ((flags & SOLICITED) != 0).sum().alias("solicited"),
                 (((flags & SOLICITED) == 0) & ((flags & OVERRIDE) != 0)).sum().alias("unsolicited"))
            .with_columns(pl.lit("nd_spoofing").alias("kind"), pl.lit(ADVERSARY_IN_THE_MIDDLE).alias("technique"),
                          pl.when(pl.col("_n") == 1).then("_one").alias("src"),
                          pl.when(pl.col("_nd") == 1).then("_dst").alias("dst"),
                          pl.format("{} neighbour advertisement(s) from MAC {} claiming {} ({} solicited "
                                    "answers, {} unsolicited overrides), which the link knows at another MAC: "
                                    "{} ({})", "packets", "_mac", "claimed", "solicited", "unsolicited", "bound",
                                    source).alias("detail")))


def _dad_denial(icmp: pl.LazyFrame, *, dad_timeout: float, dad_window: float,
                dad_min_addresses: int) -> pl.LazyFrame:
    """Neighbour advertisements answering duplicate address detection (a solicitation from
    ``::`` for the same target at most ``dad_timeout`` seconds before), per answering MAC."""
    nd = icmp.filter(on_link_nd())
    probes = (nd.filter((pl.col("icmp_type") == NEIGHBOR_SOLICIT) & (pl.col("src") == UNSPECIFIED))
              .select(pl.col("nd_target").cast(pl.String).alias("_addr"), pl.col("ts").alias("_probed"),
                      pl.col("src_mac").alias("_prober")).sort("_probed"))
    answers = (nd.filter(pl.col("icmp_type") == NEIGHBOR_ADVERT)
               .with_columns(pl.col("nd_target").cast(pl.String).alias("_addr"),
                             pl.coalesce(claimed_mac(), pl.col("src_mac"), pl.col("src")).alias("_mac"))
               .sort("ts")
               .join_asof(probes, left_on="ts", right_on="_probed", by="_addr", strategy="backward",
                          tolerance=timedelta(seconds=dad_timeout), check_sortedness=False)
               # The prober announcing its new address after the wait is no answer.
               .filter(pl.col("_probed").is_not_null() & pl.col("_mac").ne_missing(pl.col("_prober"))))
    hot = distinct_hot(answers, by=["_mac"], target="_addr", window=dad_window, minimum=dad_min_addresses)
    return (episodes(answers, hot, by=["_mac"], window=dad_window)
            .group_by("_mac", "episode")
            .agg(*evidence(), pl.col("_addr").n_unique().alias("_n"), listing("_addr").alias("tentative"),
                 pl.col("src").n_unique().alias("_ns"), pl.col("src").first().alias("_src"))
            .with_columns(pl.lit("dad_dos").alias("kind"), pl.lit(ENDPOINT_DOS).alias("technique"),
                          pl.when(pl.col("_ns") == 1).then("_src").alias("src"),
                          pl.lit(None, pl.String).alias("dst"),
                          pl.format("{} neighbour advertisement(s) from {} answering duplicate address "
                                    "detection for {} tentative address(es) ({}) within {} s of each probe: "
                                    "no host can configure them", "packets", "_mac", "_n", "tentative",
                                    pl.lit(f"{dad_timeout:g}")).alias("detail")))


def neighbor_discovery(data: Data, *, known_neighbors: Neighbors | None = None, nd_silence: float = 60.0,
                       dad_timeout: float = 1.0, dad_window: float = 60.0,
                       dad_min_addresses: int = 2) -> pl.DataFrame:
    """``nd_spoofing``: ICMPv6 neighbour advertisements claiming an address for another MAC
    than the one the link knows it at (T1557) — solicited answers racing the owner's
    (parasite6), unsolicited override advertisements (fake_advertise6). The link knows an
    address at the MAC of its first claim (see the module; ``known_neighbors``, a mapping of
    address to MAC or pairs of them, declares bindings instead) until nobody claims it for
    ``nd_silence`` seconds. One alert per claiming MAC; ``src`` is the address claimed (null
    when many), the detail names the addresses, both MACs and when each binding was last
    confirmed.

    ``dad_dos``: duplicate address detection (a neighbour solicitation from ``::``) answered
    by a neighbour advertisement for its target within ``dad_timeout`` seconds (from another
    MAC than the probe's: a host announcing its new address is no answer), for at least
    ``dad_min_addresses`` tentative addresses within ``dad_window`` seconds from one MAC
    (T1499): no host can configure an address (dos-new-ip6).

    Left alone: duplicate address detection nobody answers, neighbour unreachability
    detection (the owner confirming its own binding), a host with several addresses, an
    address that moves to a new MAC after ``nd_silence`` seconds of silence (a NIC swapped),
    a single genuine duplicate address. Limits: an attacker who claims an address before its
    owner is first seen makes the owner look like the spoofer (the alert still names the
    address and both MACs); one whose victim was silent for ``nd_silence`` seconds looks like
    a NIC swap; a capture without MACs or link-layer options shows no bindings.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.nd_spoofing().read()
    >>> ic.detect.neighbor_discovery(cap).select("kind", "src", "dst", "packets").rows()
    [('nd_spoofing', '2001:db8:1::10', None, 4)]
    >>> cap = ic.synth.scenarios.dad_dos().read()
    >>> ic.detect.neighbor_discovery(cap).select("kind", "src", "packets").rows()
    [('dad_dos', None, 3)]
    """
    claims = _claims(data, nd_silence)
    spoofing = _spoofing(claims, known_neighbors, nd_silence)
    denial = _dad_denial(icmp_of(data), dad_timeout=dad_timeout, dad_window=dad_window,
                         dad_min_addresses=dad_min_addresses)
    columns = [*ALERT_SCHEMA, "files"]
    return finish(pl.concat([spoofing.select(columns), denial.select(columns)]), several=several_files(data))
