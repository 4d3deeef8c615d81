"""Forged ICMP errors (RFC 5927): hard errors and path-MTU messages that quote a TCP connection
with a sequence number its sender never sent, or a connection the capture never saw between
endpoints it sees talking. An attacker off the path must guess what to quote; a router on the
path quotes a segment it was given."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import Data, empty, evidence, finish, listing, several_files
from icmpscope.detect.errors import ENDPOINT_DOS
from icmpscope.detect.quoted import error_flows
from icmpscope.io import Capture

__all__ = ["forged_errors", "judged", "quoting"]

SEQ_SPACE = 1 << 32


def judged() -> pl.Expr:
    """Errors RFC 5927 attacks forge, quoting TCP: hard errors (ICMPv4 protocol or port
    unreachable, any ICMPv6 destination unreachable) and path-MTU messages (ICMPv4
    fragmentation needed, ICMPv6 packet too big)."""
    v4, v6, kind, code = pl.col("ip_version") == 4, pl.col("ip_version") == 6, pl.col("icmp_type"), pl.col("icmp_code")
    return (((v4 & (kind == 3) & code.is_in([2, 3, 4])) | (v6 & kind.is_in([1, 2])))
            & (pl.col("inner_proto") == 6))


def quoting(capture: Capture) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The errors :func:`forged_errors` judges and the flows between the addresses they quote:
    all the evidence it needs of a capture (so a cluster ships only these)."""
    errors = capture.icmp.filter(judged())
    addrs = pl.concat([errors["inner_src"].cast(pl.String), errors["inner_dst"].cast(pl.String)]).unique().implode()
    flows = capture.flows.filter(pl.col("src").cast(pl.String).is_in(addrs) & pl.col("dst").cast(pl.String).is_in(addrs))
    return errors, flows


def _offset(seq: pl.Expr, base: pl.Expr) -> pl.Expr:
    """``seq - base`` modulo 2^32 (serial arithmetic on sequence numbers)."""
    return ((seq.cast(pl.Int64) - base.cast(pl.Int64)) % SEQ_SPACE + SEQ_SPACE) % SEQ_SPACE


def forged_errors(data: Data, *, flows: pl.DataFrame | pl.LazyFrame | None = None,
                  forged_seq_margin: int = 65535) -> pl.DataFrame:
    """``forged_error`` (T1499): hard errors and path-MTU messages (see :func:`judged`) that
    quote a TCP connection

    - the capture carried, with a sequence number outside what the quoted direction sent from
      ``forged_seq_margin`` bytes before its lowest sequence number to that many past one past
      its highest (room for retransmissions, segments sent before the capture began, and a
      receive window): a blind reset or throughput attack that guessed;
    - or that the capture never carried (neither direction of its addresses and ports), while it
      carries other TCP connections between the same two addresses: ports guessed.

    It needs ``flows``: a Capture's own, or ``flows=`` beside an ``icmp`` DataFrame/LazyFrame
    (``scan_pcap(path, "flows")``); without them it judges nothing. An error quoting a
    connection the capture never saw between endpoints it never saw talk is left alone (the
    capture may miss them), as are errors quoting UDP and other protocols (no sequence number
    to judge). ``src`` is the error's sender (the router it claims to be), ``dst`` the host it
    is aimed at; the detail gives the connection, the quoted and the real sequence space, and
    whether the connection carried on after the errors.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.forged_reset().read()
    >>> ic.detect.forged_errors(cap).select("kind", "src", "dst", "packets").rows()
    [('forged_error', '198.51.100.1', '192.0.2.10', 3)]
    """
    several = several_files(data)
    if flows is None and not isinstance(data, Capture):
        return empty(several=several)
    errors = error_flows(data, flows=flows, rows=judged()).lazy()
    table = data.flows if flows is None else flows
    quoted = errors.select(pl.concat([pl.col("inner_src"), pl.col("inner_dst")]).unique()).collect()["inner_src"]
    talk = (table.lazy().filter((pl.col("proto") == 6) & pl.col("src").is_in(quoted.implode())
                                & pl.col("dst").is_in(quoted.implode()))
            .select(pl.col("file").cast(pl.String), pl.col("src").cast(pl.String).alias("a"),
                    pl.col("dst").cast(pl.String).alias("b")))
    talk = pl.concat([talk, talk.select("file", pl.col("b").alias("a"), pl.col("a").alias("b"))]).unique()
    w = forged_seq_margin
    span = _offset(pl.col("seq_next"), pl.col("seq_first"))
    outside = (pl.col("inner_seq").is_not_null() & pl.col("seq_first").is_not_null()
               & (_offset(pl.col("inner_seq"), pl.col("seq_first").cast(pl.Int64) - w) > span + 2 * w))
    unseen = pl.col("flow_packets").is_null() & pl.col("peer_last_ts").is_null()
    rows = (errors.join(talk.with_columns(pl.lit(True).alias("_talk")),
                        left_on=["file", "inner_src", "inner_dst"], right_on=["file", "a", "b"], how="left",
                        maintain_order="left")
            .with_columns(pl.when(outside).then(pl.lit("outside"))
                          .when(unseen & pl.col("_talk").fill_null(False)).then(pl.lit("unseen"))
                          .alias("_why"))
            .filter(pl.col("_why").is_not_null()))
    # A connection out of its space is one alert; guessed ports, one per pair of addresses.
    own = pl.col("_why") == "outside"
    connection = pl.format("{}:{} -> {}:{}", "inner_src", "_sports", "inner_dst", "_dports")
    alerts = (rows.with_columns(pl.when(own).then(pl.col("inner_sport")).alias("_sport"),
                                pl.when(own).then(pl.col("inner_dport")).alias("_dport"))
              .group_by("src", "dst", "inner_src", "inner_dst", "_sport", "_dport", "_why")
              .agg(*evidence(), listing("inner_sport").alias("_sports"), listing("inner_dport").alias("_dports"), pl.col("inner_seq").min().alias("_low"), pl.col("inner_seq").max().alias("_high"),
                   pl.col("seq_first").first(), pl.col("seq_next").first(), pl.col("carried_on").first(),
                   pl.col("flow_last_ts").first(),
                   pl.format("{}/{}", pl.col("icmp_type"), pl.col("icmp_code")).unique().sort().str.join(", ")
                   .alias("_kinds"))
              .with_columns(
                  pl.lit("forged_error").alias("kind"), pl.lit(ENDPOINT_DOS).alias("technique"),
                  (pl.col("flow_last_ts") > pl.col("end")).alias("_after"))
              .with_columns(
                  pl.when(pl.col("_why") == "outside")
                  .then(pl.format("{} ICMP error(s) (type/code {}) quoting TCP {} with sequence numbers {}..{}, "
                                  "outside what that direction sent ({}..{}, margin {} bytes); the connection {} after them",
                                  "packets", "_kinds", connection, "_low", "_high", "seq_first", "seq_next",
                                  pl.lit(w), pl.when(pl.col("_after")).then(pl.lit("carried on"))
                                  .otherwise(pl.lit("sent nothing more"))))
                  .otherwise(pl.format("{} ICMP error(s) (type/code {}) quoting TCP {} (sequence numbers {}..{}): "
                                       "connections the capture never carried, while it carries other TCP "
                                       "connections between these addresses", "packets", "_kinds", connection,
                                       "_low", "_high"))
                  .alias("detail")))
    return finish(alerts, several=several)
