"""Who may redirect and advertise: the routers a site declares, or those the capture shows, and
the redirects and router advertisements that come from anyone else.

Without ``known_routers=``, routers are inferred from the first ``router_learning`` seconds of the
capture, so that an attacker who shows up later is not learned as one (:func:`infer_routers`):

1. *Forwarding routers*: the link-layer addresses through which traffic to off-link destinations
   flows — a MAC that sends ICMP errors about packets addressed to someone else (time exceeded,
   unreachable, packet too big...), or behind which at least ``router_min_addresses`` unicast
   (not link-local) addresses send or receive. The router's addresses are those that send
   control messages (errors, advertisements, neighbour discovery...) from such a MAC, not the
   forwarded pings. Captures without MACs use the IP addresses that send such errors.
2. When no router of an IP version forwards in that time, the *first advertiser*: the sender
   of the first router advertisement of that version (routers may advertise only every few
   minutes, so not necessarily in that time).

A message is from a router when its source MAC is a router's (when MACs are known: a spoofed
router address from another MAC is not), else when its source address is.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from icmpscope.detect.base import (ALERT_SCHEMA, Data, coded_of, episodes, distinct_hot, evidence, finish, has_column, icmp_of,
                                   ipv4_int, is_link_local, listing, seconds, seconds_between, several_files,
                                   usable_mac, whole)

__all__ = ["infer_routers", "redirects", "router_adverts", "learning_rows", "representatives"]

ADVERSARY_IN_THE_MIDDLE = "T1557"
ENDPOINT_DOS = "T1499"
ADVERTS = (9, 134)
REDIRECTS = (5, 137)
# Errors a router sends about a packet it forwards (redirects excluded: they are what is judged).
_FORWARDING_ERRORS = {4: (3, 4, 11, 12), 6: (1, 2, 3, 4)}
# Queries and answers hosts exchange through a router (not control messages of its own).
_HOST_TRAFFIC = (0, 8, 13, 14, 15, 16, 17, 128, 129, 139, 140)
# The columns infer_routers reads.
LEARNS_FROM = ["file", "frame", "ts", "ip_version", "icmp_type", "src", "dst", "src_mac", "dst_mac",
               "inner_dst", "tunnel"]
# Neighbour discovery and redirects: messages of the link itself, never forwarded, whose source
# addresses anyone can forge (parasite6 answers for every address from its own MAC), so no
# sign that a MAC forwards for the addresses they name.
_LINK_CONTROL = (133, 134, 135, 136, 137)
_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$", re.IGNORECASE)


def _is_error(version: pl.Expr, kind: pl.Expr) -> pl.Expr:
    return pl.any_horizontal(*[(version == v) & kind.is_in(types) for v, types in _FORWARDING_ERRORS.items()])


def infer_routers(data: Data, *, router_learning: float = 60.0,
                  router_min_addresses: int = 3) -> pl.DataFrame:
    """The routers seen early in the capture (see the module): one row per IP version and
    MAC (null when the capture has none) with the ``addresses`` that speak from it and the
    ``reason`` it counts as a router ("forwards" or "advertises").

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.rogue_router_advert().read()
    >>> ic.detect.infer_routers(cap).rows()
    [(6, '02:00:00:00:00:fe', ['2001:db8:1::1', 'fe80::1'], 'forwards')]
    """
    # Text columns as Categorical (equal codes, equal text; sorted by their text), cast to
    # String in the result only: a cast of every row's addresses and MACs cost most of it.
    everything = coded_of(data)
    # The first seconds of the capture, tunnelled or not (a streamed capture keeps those).
    early = on_link(everything.filter(pl.col("ts") <= pl.col("ts").min() + seconds(router_learning)))
    icmp = on_link(everything)
    # A station's MAC, judged once per distinct MAC.
    macs = everything.select(pl.col("src_mac").drop_nulls().unique()).collect().to_series()
    stations = macs.filter(pl.select(usable_mac(pl.lit(macs).cast(pl.String))).to_series())
    mac = pl.when(pl.col("src_mac").is_in(stations.implode())).then(pl.col("src_mac"))
    errors = (early.filter(_is_error(pl.col("ip_version"), pl.col("icmp_type"))
                           & pl.col("inner_dst").is_not_null() & (pl.col("inner_dst") != pl.col("src")))
              .select("ip_version", mac.alias("mac"), "src"))

    def behind(mac_col: str, addr_col: str) -> pl.LazyFrame:
        # Judged once per distinct (MAC, address): the text tests cost a cast per row otherwise.
        addr = pl.col("addr").cast(pl.String)
        unicast = ~is_link_local(addr) & ~addr.str.starts_with("ff") & ~addr.str.ends_with(".255")
        forwarded = ~((pl.col("ip_version") == 6) & pl.col("icmp_type").is_in(_LINK_CONTROL))
        return (early.filter(forwarded)
                .select("ip_version", pl.col(mac_col).alias("mac"), pl.col(addr_col).alias("addr"))
                .unique()
                .filter(usable_mac(pl.col("mac").cast(pl.String)) & unicast)
                .group_by("ip_version", "mac")
                .agg(pl.len().alias("n")).filter(pl.col("n") >= router_min_addresses)
                .select("ip_version", "mac"))

    forwarding_macs = pl.concat([errors.filter(pl.col("mac").is_not_null()).select("ip_version", "mac"),
                                 behind("src_mac", "src"), behind("dst_mac", "dst")]).unique()
    # A router's own addresses are those it sends control messages from, not the forwarded ones.
    speakers = (early.filter(~pl.col("icmp_type").is_in(_HOST_TRAFFIC))
                .select("ip_version", mac.alias("mac"), "src"))
    forwarders = pl.concat([
        forwarding_macs.join(speakers, on=["ip_version", "mac"], how="left"),
        errors.filter(pl.col("mac").is_null()),
    ]).with_columns(pl.lit("forwards").alias("reason"))
    first_advert = (icmp.filter(pl.col("icmp_type").is_in(ADVERTS))
                    .filter(pl.col("ts") == pl.col("ts").min().over("ip_version")))
    advertisers = (first_advert
                   .select("ip_version", mac.alias("mac"), "src", pl.lit("advertises").alias("reason"))
                   .join(forwarders.select("ip_version").unique(), on="ip_version", how="anti"))
    return (pl.concat([forwarders, advertisers])
            .group_by("ip_version", "mac", "reason")
            .agg(pl.col("src").drop_nulls().unique().sort().alias("addresses"))
            .select("ip_version", "mac", "addresses", "reason")
            .sort("ip_version", "mac", nulls_last=True)
            .with_columns(pl.col("mac").cast(pl.String), pl.col("addresses").cast(pl.List(pl.String)))
            .collect())


def on_link(icmp: pl.LazyFrame) -> pl.LazyFrame:
    """The messages of the link itself: those carried in a tunnel (a Teredo server's
    qualification, 6in4) are the tunnel's, and say nothing of the routers on this link."""
    return icmp.filter(pl.col("tunnel").is_null()) if has_column(icmp, "tunnel") else icmp


def learning_rows(early: list[pl.DataFrame], adverts: pl.DataFrame) -> pl.DataFrame:
    """What :func:`infer_routers` needs of a capture read in parts: the :func:`representatives`
    of the rows of its first ``router_learning`` seconds (``early``) and of its router
    advertisements (the first one may come later)."""
    return representatives(pl.concat([*early, adverts.select(LEARNS_FROM)]))


def representatives(rows: pl.DataFrame) -> pl.DataFrame:
    """The earliest row of each kind of message (version, type, and what else it is judged by)
    between each MAC and address, each way: :func:`infer_routers` tells the same routers from
    them as from ``rows``, so the parts of a capture (batches, files) send these, which grow
    with the hosts seen, not with the traffic."""
    quotes_other = (pl.col("inner_dst").is_not_null() & (pl.col("inner_dst") != pl.col("src"))).alias("_quotes")
    judged = [c for c in LEARNS_FROM if c not in ("file", "frame", "ts", "inner_dst")]
    ways = [[c for c in judged if c not in ("dst", "dst_mac")] + ["_quotes"],
            [c for c in judged if c not in ("src", "src_mac")]]
    first = rows.lazy().with_columns(quotes_other).sort("ts", "file", "frame")
    return (pl.concat([first.unique(subset=way, keep="first", maintain_order=True) for way in ways])
            .unique(subset=["file", "frame"], keep="first", maintain_order=True)
            .select(LEARNS_FROM).collect())


@dataclass(frozen=True)
class _Routers:
    """The known routers, as a test on message rows and as text for alert details."""

    macs: dict[int, frozenset[str]]
    addresses: dict[int, frozenset[str]]
    declared: bool
    text: str

    @classmethod
    def of(cls, data: Data, known_routers: Iterable[str] | None, learning: float,
           min_addresses: int) -> _Routers:
        if known_routers is not None:
            names = [str(r).strip().lower().replace("-", ":") for r in known_routers]
            macs = frozenset(n for n in names if _MAC.match(n))
            addresses = frozenset(str(ipaddress.ip_address(n)) for n in names if n not in macs)
            text = "declared routers: " + (", ".join(sorted(names)) or "none")
            return cls({4: macs, 6: macs}, {4: addresses, 6: addresses}, True, text)
        context = whole()
        inferred = context.routers.get((learning, min_addresses)) if context is not None else None
        found = (infer_routers(data, router_learning=learning, router_min_addresses=min_addresses)
                 if inferred is None else inferred)
        macs = {v: frozenset(found.filter((pl.col("ip_version") == v) & pl.col("mac").is_not_null())["mac"])
                for v in (4, 6)}
        addresses = {v: frozenset(found.filter(pl.col("ip_version") == v)["addresses"].explode().drop_nulls())
                     for v in (4, 6)}
        parts = [f"{mac or 'no MAC'} [{', '.join(addrs) or 'no address of its own seen'}] ({reason})"
                 for _, mac, addrs, reason in found.iter_rows()]
        text = "routers inferred early in the capture: " + ("; ".join(parts) or "none")
        return cls(macs, addresses, False, text)

    def known(self) -> pl.Expr:
        """Whether a row's sender is a known router."""
        mac, src, version = pl.col("src_mac"), pl.col("src"), pl.col("ip_version")
        tests = []
        for v in (4, 6):
            by_ip = src.is_in(list(self.addresses[v]))
            if self.declared:
                test = mac.is_in(list(self.macs[v])).fill_null(False) | by_ip
            elif self.macs[v]:
                test = pl.when(usable_mac(mac)).then(mac.is_in(list(self.macs[v]))).otherwise(by_ip)
            else:
                test = by_ip
            tests.append((version == v) & test)
        return pl.any_horizontal(*tests)


def _reasons(*pairs: tuple[pl.Expr, str | pl.Expr]) -> pl.Expr:
    """The texts whose conditions hold, as a list per row."""
    return pl.concat_list([pl.when(cond).then(pl.lit(text) if isinstance(text, str) else text)
                           for cond, text in pairs]).list.drop_nulls()


def _alerts(rows: pl.LazyFrame, *, kind: str, window: float, describe: pl.Expr,
            routers: _Routers) -> pl.LazyFrame:
    """Anomalous rows (non-empty ``reasons``) as alerts per sender and receiver."""
    # Collected once: the episodes read it twice (its reasons cost most of a detector's time).
    flagged = rows.filter(pl.col("reasons").list.len() > 0).collect().lazy()
    by = ["src", "dst"]
    return (episodes(flagged, flagged.select(*by, "ts"), by=by, window=window)
            .group_by(*by, "episode")
            .agg(*evidence(), describe.alias("what"), listing("src_mac").alias("macs"),
                 pl.col("reasons").explode().drop_nulls().unique(maintain_order=True).str.join("; ")
                 .alias("why"))
            .with_columns(pl.lit(kind).alias("kind"), pl.lit(ADVERSARY_IN_THE_MIDDLE).alias("technique"),
                          pl.format("{} from {} (MAC {}): {}; {}", "what", "src", "macs", "why",
                                    pl.lit(routers.text)).alias("detail")))


def redirects(data: Data, *, known_routers: Iterable[str] | None = None, router_learning: float = 60.0,
              router_min_addresses: int = 3, redirect_window: float = 10.0,
              redirect_burst: int = 10, onlink_prefix: int = 16,
              networks: Sequence[str] = ()) -> pl.DataFrame:
    """``icmp_redirect``: ICMP redirects (IPv4 type 5, ICMPv6 137) that are anomalous —
    from a sender that is not a known router; to a gateway off the receiver's link (IPv4: outside
    its network in ``networks``, else outside its ``/onlink_prefix``; ICMPv6: a target that is
    neither link-local nor the destination itself); ICMPv6 with a hop limit other than 255 (sent
    from off-link); or a burst redirecting at least ``redirect_burst`` destinations within
    ``redirect_window`` seconds. One alert per sender and receiver, the redirected destinations
    and gateways in the detail. Redirects from a known router to an on-link gateway raise nothing.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.icmp_redirect().read()
    >>> ic.detect.redirects(cap).select("kind", "src", "dst", "packets").rows()
    [('icmp_redirect', '192.0.2.66', '192.0.2.10', 2)]
    """
    routers = _Routers.of(data, known_routers, router_learning, router_min_addresses)
    rows = icmp_of(data).filter(pl.col("icmp_type").is_in(REDIRECTS))
    burst_hot = distinct_hot(rows, by=["src"], target="inner_dst", window=redirect_window,
                             minimum=redirect_burst)
    in_burst = episodes(rows, burst_hot, by=["src"], window=redirect_window).select(
        "file", "frame", pl.lit(True).alias("_burst"))
    v4, v6, gateway = pl.col("ip_version") == 4, pl.col("ip_version") == 6, pl.col("gateway")
    rows = rows.join(in_burst, on=["file", "frame"], how="left").with_columns(_reasons(
        (~routers.known(), "sender is not a known router"),
        (v4 & ~_same_network(gateway, pl.col("dst"), onlink_prefix, networks).fill_null(True),
         "gateway off the receiver's link"),
        (v6 & ~is_link_local(gateway) & (gateway != pl.col("inner_dst")),
         "target neither link-local nor the destination"),
        (v6 & (pl.col("ttl") != 255), "hop limit below 255 (sent from off-link)"),
        (pl.col("_burst").fill_null(False),
         f"{redirect_burst}+ destinations redirected within {redirect_window:g} s"),
    ).alias("reasons"))
    describe = pl.format("{} redirect(s) to gateway {} for {}", pl.len(), listing("gateway"),
                         listing("inner_dst"))
    alerts = _alerts(rows, kind="icmp_redirect", window=redirect_window, describe=describe, routers=routers)
    return finish(alerts, several=several_files(data))


def router_adverts(data: Data, *, known_routers: Iterable[str] | None = None,
                   router_learning: float = 60.0, router_min_addresses: int = 3,
                   advert_window: float = 60.0, ra_flood_window: float = 10.0, ra_flood_sources: int = 10,
                   ra_flood_prefixes: int = 20) -> pl.DataFrame:
    """``rogue_router_advert``: router advertisements (IPv4 type 9, ICMPv6 134) from a sender
    that is not a known router, ICMPv6 ones with a hop limit other than 255, and a known
    router's advertisements whose router lifetime changed from its first (a forged lifetime 0
    removes the default route: THC's kill_router6) or whose set of ``advertised`` prefixes
    (ICMPv4: router addresses) differs from its first's — a prefix injected by someone who
    spoofs the router (hosts configure addresses in it and route through the attacker), or one
    withdrawn or replaced; the detail names both sets. The order of the options, and a router
    repeating its prefixes, do not count. Advertisements less than ``advert_window`` seconds
    apart make one alert per sender and receiver.

    ``ra_flood``: advertisements from senders that are not known routers, from at least
    ``ra_flood_sources`` source addresses, or advertising at least ``ra_flood_prefixes``
    prefixes, within ``ra_flood_window`` seconds (flood_router6: hosts configure an address
    per prefix and a route per router until they stall; T1499). One alert per flood (its
    ``src`` null when many), and its advertisements raise no ``rogue_router_advert`` each.

    Advertisements carried in a tunnel (a Teredo server's answers to its client's
    solicitations, relayed over UDP) are the tunnel's qualification, not a router on the link,
    and are left alone.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.rogue_router_advert().read()
    >>> ic.detect.router_adverts(cap).select("kind", "src", "dst", "packets").rows()
    [('rogue_router_advert', 'fe80::bad', 'ff02::1', 3)]
    >>> cap = ic.synth.scenarios.ra_prefix_change().read()
    >>> print(ic.detect.router_adverts(cap)["detail"][0])  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    3 advertisement(s), ...: advertised prefixes changed from its first advertisement's
    (2001:db8:1::/64) to 2001:db8:1::/64, 2001:db8:bad::/64; ...
    """
    routers = _Routers.of(data, known_routers, router_learning, router_min_addresses)
    known = routers.known()
    icmp = icmp_of(data)
    advertised = (pl.col("advertised").list.unique().list.sort() if has_column(icmp, "advertised")
                  else pl.lit(None, pl.List(pl.String)))
    rows = (on_link(icmp).filter(pl.col("icmp_type").is_in(ADVERTS)).sort("ts", "file", "frame")
            .with_columns(advertised.alias("_set")))
    flood = _flood(rows.filter(~known), window=ra_flood_window, sources=ra_flood_sources,
                   prefixes=ra_flood_prefixes)
    rows = rows.join(flood.select("file", "frame"), on=["file", "frame"], how="anti")

    def first(column: str) -> pl.Expr:
        """The value of a known router's first advertisement."""
        return pl.col(column).filter(known).first().over("ip_version", "src")

    def changed(column: str) -> pl.Expr:
        return known & (pl.col(column) != first(column)).fill_null(False)

    def text(values: pl.Expr) -> pl.Expr:
        return pl.when(values.list.len() > 0).then(values.list.join(", ")).otherwise(pl.lit("none"))

    what = pl.when(pl.col("ip_version") == 6).then(pl.lit("prefixes")).otherwise(pl.lit("router addresses"))
    rows = rows.with_columns(_reasons(
        (~known, "sender is not a known router"),
        ((pl.col("ip_version") == 6) & (pl.col("ttl") != 255), "hop limit below 255 (sent from off-link)"),
        (changed("router_lifetime"), "router lifetime changed from its first advertisement"),
        (changed("_set"), pl.format("advertised {} changed from its first advertisement's ({}) to {}",
                                    what, text(first("_set")), text(pl.col("_set")))),
    ).alias("reasons"))
    describe = pl.format("{} advertisement(s), router lifetime {} s", pl.len(), listing("router_lifetime"))
    alerts = _alerts(rows, kind="rogue_router_advert", window=advert_window, describe=describe,
                     routers=routers)
    floods = (flood.group_by("ip_version", "episode")
              .agg(*evidence(), pl.col("src").n_unique().alias("n_src"), pl.col("src").first().alias("_src"),
                   pl.col("dst").n_unique().alias("_nd"), pl.col("dst").first().alias("_dst"),
                   pl.col("src_mac").n_unique().alias("n_mac"), pl.col("_set").explode().n_unique().alias("n_prefix"),
                   listing("src").alias("sources"), listing(pl.col("_set").explode()).alias("prefixes"))
              .with_columns(pl.lit("ra_flood").alias("kind"), pl.lit(ENDPOINT_DOS).alias("technique"),
                            pl.when(pl.col("n_src") == 1).then("_src").alias("src"),
                            pl.when(pl.col("_nd") == 1).then("_dst").alias("dst"),
                            pl.format("{} advertisements in {} s from {} source(s) ({}) and {} MAC(s), "
                                      "advertising {} prefix(es) ({}); {}", "packets", seconds_between(), "n_src",
                                      "sources", "n_mac", "n_prefix", "prefixes", pl.lit(routers.text))
                            .alias("detail")))
    columns = [*ALERT_SCHEMA, "files"]
    return finish(pl.concat([alerts.select(columns), floods.select(columns)]), several=several_files(data))


def _flood(rows: pl.LazyFrame, *, window: float, sources: int, prefixes: int) -> pl.LazyFrame:
    """The advertisements of floods: many senders, or many prefixes, within ``window``."""
    by = ["ip_version"]
    advertised = rows.select(*by, "ts", pl.col("_set").alias("_prefix")).explode("_prefix")
    hot = pl.concat([distinct_hot(rows, by=by, target="src", window=window, minimum=sources),
                     distinct_hot(advertised, by=by, target="_prefix", window=window, minimum=prefixes)])
    return episodes(rows, hot, by=by, window=window)


def _same_network(a: pl.Expr, b: pl.Expr, prefix: int, networks: Sequence[str]) -> pl.Expr:
    """Whether IPv4 addresses ``a`` and ``b`` share the network of ``networks`` that holds ``b``,
    or, with no such network, their first ``prefix`` bits."""
    same = (ipv4_int(a) // (1 << (32 - prefix))) == (ipv4_int(b) // (1 << (32 - prefix)))
    for net in map(ipaddress.ip_network, networks):
        if net.version == 4:
            low, high = int(net.network_address), int(net.broadcast_address)
            same = (pl.when(ipv4_int(b).is_between(low, high))
                    .then(ipv4_int(a).is_between(low, high)).otherwise(same))
    return same
