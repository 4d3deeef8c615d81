"""ICMP errors held against the traffic they quote: each error joined to the direction of
``flows`` its quoted datagram belongs to.

An error quotes the start of the datagram that caused it; the quote's addresses, protocol and
ports name a direction of a conversation, in the VLAN and tunnel the error travelled in. Whether
that direction carried traffic after the error says what the error did: a port unreachable for a
UDP probe ends it, a fragmentation-needed is followed by smaller segments, a forged hard error
against a live TCP connection is ignored (or kills it).
"""
from __future__ import annotations

import polars as pl

from icmpscope import _core
from icmpscope.detect.base import Data, icmp_of, lazy
from icmpscope.detect.errors import is_error
from icmpscope.io import Capture

__all__ = ["error_flows"]

_KEY = ["file", "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport", "vlan", "tunnel"]
_FLOW = {"first_ts": "flow_first_ts", "last_ts": "flow_last_ts", "packets": "flow_packets", "bytes": "flow_bytes",
         "tcp_flags": "tcp_flags", "seq_first": "seq_first", "seq_next": "seq_next", "ack_last": "ack_last"}
COLUMNS = ["file", "frame", "ts", "ip_version", "src", "dst", "icmp_type", "icmp_code", "mtu", "inner_src", "inner_dst", "inner_proto",
           "inner_sport", "inner_dport", "inner_seq", "inner_flow_seen", "vlan", "tunnel", *_FLOW.values(),
           "carried_on", "peer_last_ts", "peer_carried_on"]


def _flows_of(data: Data, flows: pl.DataFrame | pl.LazyFrame | None) -> pl.LazyFrame:
    if flows is None:
        flows = data.flows if isinstance(data, Capture) else pl.DataFrame(_core.empty_table("flows"))
    return lazy(flows)


def error_flows(data: Data, *, flows: pl.DataFrame | pl.LazyFrame | None = None,
                rows: pl.Expr | None = None) -> pl.DataFrame:
    """Each ICMP error that quotes a datagram (``detect.errors.ERRORS``), with the direction of
    ``flows`` it quotes.

    ``data``: a Capture (its ``flows`` are used), or an ``icmp`` DataFrame/LazyFrame with
    ``flows=`` (e.g. ``scan_pcap(path, "flows")``). One row per error, in capture order: the
    error's ``file``, ``frame``, ``ts``, ``ip_version``, ``src``, ``dst``, type, code, ``mtu`` and quote
    (``inner_*``, ``inner_seq``, ``inner_flow_seen``); the quoted direction's ``flow_first_ts``,
    ``flow_last_ts``, ``flow_packets``, ``flow_bytes``, ``tcp_flags``, ``seq_first``,
    ``seq_next``, ``ack_last`` (null when the capture holds no such direction);
    ``carried_on`` (the direction sent after the error), and the reverse direction's
    ``peer_last_ts`` and ``peer_carried_on``. Directions are matched within a file, VLAN and
    tunnel, as ``flows`` keeps them. ``rows`` keeps only the errors where it holds (an
    expression over ``icmp`` columns), before any flow is looked at.

    >>> import icmpscope as ic
    >>> s = ic.synth
    >>> probe = s.ipv4("10.0.0.1", "10.0.0.3", s.udp(41000, 9999, b"x", src="10.0.0.1", dst="10.0.0.3"), proto=17)
    >>> error = s.ipv4("10.0.0.3", "10.0.0.1", s.dest_unreachable(3, probe[:28]))
    >>> cap = ic.read_pcap(s.pcap_bytes([(0, s.ethernet(probe)), (1000, s.ethernet(error))]))
    >>> ic.error_flows(cap).select("frame", "inner_dport", "flow_packets", "carried_on").rows()
    [(2, 9999, 1, False)]
    """
    icmp = icmp_of(data)
    names = icmp.collect_schema().names()
    extra = [c for c in ("mtu", "inner_seq", "inner_flow_seen", "vlan", "tunnel") if c not in names]
    wanted = is_error() & pl.col("inner_src").is_not_null()
    errors = (icmp.filter(wanted if rows is None else wanted & rows)
              .with_columns(pl.lit(None).alias(c) for c in extra)).collect().lazy()
    # Only the flows between the quoted addresses (a capture may hold millions).
    quoted = errors.select(pl.col("file").cast(pl.String), "inner_src", "inner_dst").unique().collect()
    addrs = pl.concat([quoted["inner_src"], quoted["inner_dst"]]).unique()
    table = _flows_of(data, flows).filter(pl.col("src").is_in(addrs.implode()) & pl.col("dst").is_in(addrs.implode()))
    direction = table.select(pl.col("file"), pl.col("src").alias("inner_src"), pl.col("dst").alias("inner_dst"),
                             pl.col("proto").alias("inner_proto"), pl.col("sport").alias("inner_sport"),
                             pl.col("dport").alias("inner_dport"), "vlan", "tunnel",
                             *(pl.col(k).alias(v) for k, v in _FLOW.items()))
    peer = table.select(pl.col("file"), pl.col("dst").alias("inner_src"), pl.col("src").alias("inner_dst"),
                        pl.col("proto").alias("inner_proto"), pl.col("dport").alias("inner_sport"),
                        pl.col("sport").alias("inner_dport"), "vlan", "tunnel", pl.col("last_ts").alias("peer_last_ts"))
    schema = errors.collect_schema()
    cast = [pl.col(c).cast(schema[c]) for c in _KEY if c in schema and c != "file"]
    joined = (errors.with_columns(pl.col("file").cast(pl.String))
              .join(direction.with_columns(cast), on=_KEY, how="left", nulls_equal=True, maintain_order="left")
              .join(peer.with_columns(cast), on=_KEY, how="left", nulls_equal=True, maintain_order="left"))
    return (joined.with_columns((pl.col("flow_last_ts") > pl.col("ts")).alias("carried_on"),
                                (pl.col("peer_last_ts") > pl.col("ts")).alias("peer_carried_on"))
            .select(COLUMNS).collect())
