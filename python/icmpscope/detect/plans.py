"""What each detector reads, how its rows group, and the bound that tells which groups may alert
(see :mod:`icmpscope.detect.engine`). A plan mirrors its detector: when a detector learns to
read other rows, its plan must route them too (tests run every detector with and without its
plan over every scenario and corpus capture)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import polars as pl

from icmpscope.detect.base import ECHO_REPLY, ECHO_REQUEST, is_broadcast, is_multicast_mac
from icmpscope.detect.engine import Bound, Plan, Route, options
from icmpscope.detect.errors import is_error
from icmpscope.detect.mtu import below_minimum, is_mtu_message
from icmpscope.detect.neighbors import NEIGHBOR_ADVERT, NEIGHBOR_SOLICIT, UNSPECIFIED, claimed_mac, on_link_nd
from icmpscope.detect.forged import judged
from icmpscope.detect.unreachables import is_prohibited
from icmpscope.detect.routers import ADVERTS, REDIRECTS
from icmpscope.detect.sweeps import PROBES, TIME_EXCEEDED, answer_kind, ttl_expired
from icmpscope.detect.fingerprint import is_plain, is_query

# What every windowed detector reads: the evidence (file, frame, ts) and the messages' kind and ends.
_READ = ("file", "frame", "ts", "ip_version", "src", "dst", "icmp_type", "icmp_code")
_QUOTE = ("inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport")
_ECHO = ("src_mac", "dst_mac", "icmp_id", "icmp_seq", "checksum", "payload_len", "payload_entropy",
         "payload_digest", "datagram_len")


def of(detectors: Iterable[Callable[..., pl.DataFrame]], thresholds: dict[str, object]) -> dict:
    """Each detector's plan, for the thresholds it takes (its defaults for the others)."""
    return {d: globals()[d.__name__](**options(d, thresholds)) for d in detectors}


def _in(column: str, values: pl.Series) -> pl.Expr:
    return pl.col(column).is_in(values.implode()) if values.len() else pl.lit(False)


def _broadcast(networks) -> Callable[[pl.DataFrame], list[pl.Expr]]:
    """``_broadcast``: is_broadcast, judged once per distinct address and MAC."""

    def helpers(frame: pl.DataFrame) -> list[pl.Expr]:
        requests = frame.lazy().filter(pl.col("icmp_type").is_in(ECHO_REQUEST))
        addrs = requests.select(pl.col("dst").unique().cast(pl.String)).collect()["dst"]
        macs = requests.select(pl.col("dst_mac").unique().cast(pl.String)).collect()["dst_mac"]
        group_addr = addrs.filter(pl.select(is_broadcast(pl.lit(addrs), pl.lit(None, pl.String), networks)
                                            ).to_series())
        group_mac = macs.filter(pl.select(is_multicast_mac(pl.lit(macs)).fill_null(False)).to_series())
        return [(_in("dst", group_addr) | _in("dst_mac", group_mac)).alias("_broadcast")]

    return helpers


def echo_floods(*, flood_window, flood_rate, flood_byte_rate, ddos_rate, ddos_min_sources,
                networks) -> Plan:
    # Keyed by target: a pair's requests are among its target's.
    w = flood_window
    return Plan(routes=(Route(pl.col("icmp_type").is_in(ECHO_REQUEST), (pl.col("dst"),)),),
                bounds=(Bound(w, {"n": (pl.len(), "sum"), "bytes": (pl.col("datagram_len").sum(), "sum")},
                              (pl.col("n") >= min(flood_rate, ddos_rate) * w)
                              | (pl.col("bytes") >= flood_byte_rate * w)),),
                columns=(*_READ, *_ECHO))


def sweeps(*, sweep_window, sweep_min_targets, sweep_revisit) -> Plan:
    probe = pl.any_horizontal(*[(pl.col("ip_version") == v) & (pl.col("icmp_type") == t)
                                for v, t in PROBES])
    answer = pl.col("icmp_type").is_in(sorted({a for _, a in PROBES.values()}))
    expired = pl.any_horizontal(*[(pl.col("ip_version") == v) & (pl.col("icmp_type") == t)
                                  for v, t in TIME_EXCEEDED.items()])
    return Plan(routes=(Route(probe, (pl.col("src"),)),          # the prober's probes
                        Route(answer, (pl.col("dst"),)),         # the answers it got
                        Route(expired, (pl.col("inner_src"),))),  # the routes it traced
                bounds=(Bound(sweep_window,
                              # Of the probes alone (``only``; a filter in the group costs as much as
                              # the count), as codes: equal codes are equal addresses in a process.
                              {"targets": (pl.col("dst").to_physical().n_unique(), "sum")},
                              pl.col("targets") >= sweep_min_targets, only=pl.col("_role") == 0,
                              least=sweep_min_targets),),
                columns=(*_READ, *_QUOTE))


def smurf(*, smurf_window, smurf_rate, smurf_reply_rate, smurf_min_reflectors, networks) -> Plan:
    # Keyed by victim: the requests in its name, the replies it receives (and, to pair them,
    # the requests it sent itself).
    w = smurf_window
    return Plan(routes=(Route(pl.col("icmp_type").is_in(ECHO_REQUEST), (pl.col("src"),)),
                        Route(pl.col("icmp_type").is_in(ECHO_REPLY), (pl.col("dst"),))),
                bounds=(Bound(w, {"broadcast": (((pl.col("_role") == 0) & pl.col("_broadcast")).sum(), "sum"),
                                  "replies": ((pl.col("_role") == 1).sum(), "sum")},
                              (pl.col("broadcast") >= smurf_rate * w)
                              | (pl.col("replies") >= smurf_reply_rate * w),
                              only=(pl.col("_role") == 1) | pl.col("_broadcast"),
                              least=min(smurf_rate, smurf_reply_rate) * w),),
                helpers=_broadcast(networks),
                columns=(*_READ, *_ECHO))


def tunnels(*, tunnel_min_packets, tunnel_min_duration, tunnel_idle, **_) -> Plan:
    # A session is one pair of addresses, both ways; it is no longer than the pair's traffic.
    # Ordered by text (categorical comparison is lexical: the same in every process, without
    # a cast per row), so both directions and every worker name a pair alike.
    echo = pl.col("icmp_type").is_in(ECHO_REQUEST + ECHO_REPLY)
    a, b = pl.col("src"), pl.col("dst")
    first = a < b
    return Plan(routes=(Route(echo, (pl.when(first).then(a).otherwise(b), pl.when(first).then(b).otherwise(a))),),
                bounds=(Bound(None, {"n": (pl.len(), "sum"), "first": (pl.col("ts").min(), "min"),
                                     "last": (pl.col("ts").max(), "max")},
                              (pl.col("n") >= tunnel_min_packets)
                              & ((pl.col("last") - pl.col("first")).dt.total_nanoseconds()
                                 >= round(tunnel_min_duration * 1e9)), idle=tunnel_idle,
                              least=tunnel_min_packets),),
                columns=(*_READ, *_ECHO))


def unreachable_scans(*, unreach_window, unreach_min_ports, unreach_min_hosts, **_) -> Plan:
    # The error floods it leaves out are among its routed rows (a target's unreachables).
    unreachable = ((((pl.col("ip_version") == 4) & (pl.col("icmp_type") == 3) & (pl.col("icmp_code") != 4))
                    | ((pl.col("ip_version") == 6) & (pl.col("icmp_type") == 1)))
                   & pl.col("inner_dst").is_not_null())
    expired = pl.any_horizontal(*[(pl.col("ip_version") == v) & (pl.col("icmp_type") == t)
                                  for v, t in TIME_EXCEEDED.items()])
    first = pl.col("_role") == 0
    w = unreach_window
    return Plan(routes=(Route(unreachable, (pl.col("dst"),)), Route(expired, (pl.col("inner_src"),))),
                bounds=(Bound(w, {"hosts": (pl.col("inner_dst").filter(first).n_unique(), "sum")},
                              pl.col("hosts") >= unreach_min_hosts, least=unreach_min_hosts),
                        Bound(w, {"services": (first.sum(), "sum")}, pl.col("services") >= unreach_min_ports,
                              sub=pl.col("inner_dst"), least=unreach_min_ports)),
                columns=(*_READ, *_QUOTE))


def _by_source(rows: pl.Expr, columns: tuple[str, ...]) -> Plan:
    """Rare messages, all of them read: every sender is a candidate."""
    return Plan(routes=(Route(rows, (pl.col("src"),)),), columns=columns)


# What router inference and the router detectors read of a message.
_ROUTER = ("src_mac", "dst_mac", "ttl", "tunnel", "inner_dst")


def mask_replies(**_) -> Plan:
    return _by_source((pl.col("ip_version") == 4) & (pl.col("icmp_type") == 18), (*_READ, *_QUOTE, "mask"))


def redirects(**_) -> Plan:
    return _by_source(pl.col("icmp_type").is_in(REDIRECTS), (*_READ, *_ROUTER, "gateway"))


def router_adverts(**_) -> Plan:
    # Keyed by IP version: an ra_flood counts the advertisements of many sources together.
    return Plan(routes=(Route(pl.col("icmp_type").is_in(ADVERTS), (pl.col("ip_version"),)),),
                columns=(*_READ, *_ROUTER, "router_lifetime", "advertised"))


def fragment_attacks(*, max_datagram, **_) -> Plan:
    return _by_source(pl.col("reassembled") & (pl.col("datagram_len") > max_datagram),
                      (*_READ, "reassembled", "datagram_len"))


def forged_errors(**_) -> Plan:
    """Hard errors and path-MTU messages quoting TCP, all read (a Capture's run gets its flows)."""
    return _by_source(judged(), (*_READ, *_QUOTE, "inner_seq"))


def error_floods(*, error_flood_rate, error_flood_window) -> Plan:
    w = error_flood_window
    return Plan(routes=(Route(is_error(), (pl.col("dst"),)),),
                bounds=(Bound(w, {"n": (pl.len(), "sum")}, pl.col("n") >= error_flood_rate * w,
                              least=error_flood_rate * w),),
                columns=_READ)


def topology(*, topology_window, topology_min_targets, topology_min_routers, **_) -> Plan:
    return Plan(routes=(Route(ttl_expired(), (pl.col("dst"),)),),
                bounds=(Bound(topology_window, {"targets": (pl.col("inner_dst").n_unique(), "sum"),
                                                "routers": (pl.col("src").n_unique(), "sum")},
                              (pl.col("targets") >= topology_min_targets)
                              & (pl.col("routers") >= topology_min_routers),
                              least=max(topology_min_targets, topology_min_routers)),),
                columns=(*_READ, *_QUOTE))


def firewall_probes(*, firewalk_window, firewalk_min_ports, prohibited_window, prohibited_min_probes) -> Plan:
    # Keyed by prober: the time-exceeded it gets (per target and router, the services they
    # quote) and the refusals it gets (the services of hosts they quote).
    service = pl.struct("inner_proto", "inner_dport")
    walk, refusal = pl.col("_role") == 0, pl.col("_role") == 1
    return Plan(routes=(Route(ttl_expired(), (pl.col("dst"),)),
                        Route(is_prohibited() & pl.col("inner_dst").is_not_null(), (pl.col("dst"),))),
                bounds=(Bound(firewalk_window, {"services": (service.filter(walk).n_unique(), "sum")},
                              pl.col("services") >= firewalk_min_ports, sub=pl.struct("inner_dst", "src"),
                              least=firewalk_min_ports),
                        Bound(prohibited_window,
                              {"probes": (pl.struct("inner_dst", "inner_proto", "inner_dport").filter(refusal)
                                          .n_unique(), "sum")},
                              pl.col("probes") >= prohibited_min_probes, least=prohibited_min_probes)),
                columns=(*_READ, *_QUOTE))


def fingerprinting(*, fingerprint_window, fingerprint_min_shapes, fingerprint_min_queries, **_) -> Plan:
    # Keyed by (prober, target): its queries and the target's answers. A pair that sends only
    # plain echo requests (code 0, TOS 0) has one shape, one query type and nothing crafted.
    # One unusual query makes a pair a candidate, in whatever bucket: the buckets only let a
    # stream forget the plain pairs as it passes them.
    crafted = (pl.col("_role") == 0) & ~is_plain().fill_null(False)
    anyone = fingerprint_min_shapes <= 1 or fingerprint_min_queries <= 1
    return Plan(routes=(Route(is_query(), (pl.col("src"), pl.col("dst"))),
                        Route(answer_kind().is_not_null(), (pl.col("dst"), pl.col("src")))),
                bounds=(Bound(fingerprint_window, {"unusual": (crafted.sum(), "sum")},
                              pl.lit(True) if anyone else pl.col("unusual") >= 1, only=crafted),),
                columns=(*_READ, "checksum_ok", "df", "tos"))


def neighbor_discovery(*, known_neighbors, **_) -> Plan:
    # Bounded per address claimed (or probed by duplicate address detection): a spoofed claim
    # needs a second MAC for its address (or a declared one), an answered probe a probe and an
    # advertisement. A second MAC is the least and the greatest claimed differing: exact however
    # the rows are cut (distinct counts added up over batches made most addresses candidates).
    target, src = pl.col("nd_target").cast(pl.String), pl.col("src").cast(pl.String)
    address = (pl.when((pl.col("icmp_type") == NEIGHBOR_ADVERT) | (src == UNSPECIFIED)).then(target)
               .otherwise(src))
    probe = (pl.col("icmp_type") == NEIGHBOR_SOLICIT) & (pl.col("src") == UNSPECIFIED)
    declared = known_neighbors is not None
    # One group, the link (an alert gathers a MAC's claims over many addresses), of which only
    # the hot addresses' rows are read: a false claim is on an address with a second MAC (or a
    # declared one), an answered probe on one probed and advertised.
    return Plan(routes=(Route(on_link_nd(), (pl.col("ip_version"),)),),
                bounds=(Bound(None, {"mac_lo": (claimed_mac().min(), "min"), "mac_hi": (claimed_mac().max(), "max"),
                                     "probes": (probe.sum(), "sum"),
                                     "adverts": ((pl.col("icmp_type") == NEIGHBOR_ADVERT).sum(), "sum")},
                              (pl.col("mac_hi").is_not_null() if declared else pl.col("mac_lo") != pl.col("mac_hi"))
                              | ((pl.col("probes") >= 1) & (pl.col("adverts") >= 1)), sub=address),),
                by_sub=True,
                columns=(*_READ, "src_mac", "tunnel", "lladdr", "nd_flags", "nd_target"))


def path_mtu(*, mtu_window, mtu_min_senders, **_) -> Plan:
    # Keyed by the host told: messages below the minimum, or many senders within the window.
    w = mtu_window
    return Plan(routes=(Route(is_mtu_message(), (pl.col("dst"),)),),
                bounds=(Bound(w, {"low": (below_minimum().sum(), "sum"), "senders": (pl.col("src").n_unique(), "sum")},
                              (pl.col("low") >= 1) | (pl.col("senders") >= mtu_min_senders)),),
                columns=(*_READ, *_QUOTE, "mtu"))
