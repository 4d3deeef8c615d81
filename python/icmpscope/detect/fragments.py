"""Fragment attacks: ping of death (an ICMP datagram reassembled past 65535 bytes) and
overlapping fragments whose overlapping bytes differ (teardrop, IDS evasion)."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (Data, evidence, finish, icmp_of, lazy, listing,
                                   several_files)
from icmpscope.io import Capture

__all__ = ["fragment_attacks", "attack_kind", "attack_datagrams"]

ENDPOINT_DOS = "T1499"
ICMP_PROTOS = (1, 58)
_DATAGRAM = ["file", "ip_version", "src", "dst", "proto", "frag_id"]


def attack_kind(max_datagram: int = 65535) -> pl.Expr:
    """Over a ``datagrams`` table: the attack a datagram is, or null."""
    return (pl.when((pl.col("total_len") > max_datagram) & pl.col("proto").is_in(ICMP_PROTOS))
            .then(pl.lit("ping_of_death"))
            .when(pl.col("conflicting_overlap")).then(pl.lit("overlapping_fragments")))


def attack_datagrams(capture: Capture, *, max_datagram: int = 65535) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The datagrams that are attacks and their fragments: all the evidence
    :func:`fragment_attacks` needs of a capture (so a cluster ships only these)."""
    attacks = capture.datagrams.filter(attack_kind(max_datagram).is_not_null())
    return attacks, capture.fragments.join(attacks.select(_DATAGRAM), on=_DATAGRAM, how="semi")


def fragment_attacks(data: Data, *, datagrams: pl.DataFrame | pl.LazyFrame | None = None,
                     fragments: pl.DataFrame | pl.LazyFrame | None = None,
                     max_datagram: int = 65535) -> pl.DataFrame:
    """``ping_of_death``: ICMP/ICMPv6 datagrams whose fragments reach past ``max_datagram`` bytes;
    ``overlapping_fragments``: datagrams (any protocol) whose overlapping fragments carry
    different bytes. One alert per source and destination.

    Reads the ``datagrams`` and ``fragments`` tables of a Capture (or those given), so the
    evidence is every fragment's frame. From an ``icmp`` table alone, only the ping of death is
    seen: the row of a reassembled message longer than ``max_datagram``.

    >>> import icmpscope as ic
    >>> pod = ic.synth.scenarios.ping_of_death()
    >>> ic.detect.fragment_attacks(pod.read()).select("kind", "src", "dst", "packets").rows()
    [('ping_of_death', '198.51.100.9', '192.0.2.50', 45)]
    """
    if isinstance(data, Capture):
        datagrams = data.datagrams if datagrams is None else datagrams
        fragments = data.fragments if fragments is None else fragments
    several = several_files(data)
    if datagrams is None:
        rows = (icmp_of(data).filter(pl.col("reassembled") & (pl.col("datagram_len") > max_datagram))
                .with_row_index("datagram")
                .with_columns(pl.lit("ping_of_death").alias("kind"),
                              pl.col("datagram_len").alias("total_len"),
                              pl.lit(True).alias("complete"),
                              pl.lit(None, pl.UInt32).alias("frag_id"),
                              pl.lit(0, pl.UInt32).alias("overlap_bytes")))
        return finish(_alerts(rows, max_datagram), several=several)

    attacks = (lazy(datagrams).with_row_index("datagram")
               .with_columns(attack_kind(max_datagram).alias("kind")).filter(pl.col("kind").is_not_null()))
    if fragments is None:  # the first and last fragment are all the evidence there is
        rows = pl.concat([attacks.with_columns(pl.col(f"{end}_frame").alias("frame"),
                                               pl.col(f"{end}_ts").alias("ts"))
                          for end in ("first", "last")]).unique(["datagram", "frame"])
    else:
        rows = (lazy(fragments).join(attacks, on=_DATAGRAM)
                .filter(pl.col("frame").is_between(pl.col("first_frame"), pl.col("last_frame"))))
    return finish(_alerts(rows, max_datagram), several=several)


def _alerts(rows: pl.LazyFrame, max_datagram: int) -> pl.LazyFrame:
    """One alert per kind, source and destination from fragment (or message) rows."""
    per_datagram = pl.col("datagram").is_first_distinct()
    alerts = rows.group_by("kind", "src", "dst").agg(
        *evidence(),
        pl.col("datagram").n_unique().alias("datagrams"),
        pl.col("total_len").max().alias("largest"),
        pl.col("overlap_bytes").filter(per_datagram).sum().alias("overlap"),
        pl.col("complete").filter(per_datagram).sum().alias("reassembled"),
        listing(pl.col("frag_id").sort_by("ts")).alias("ids"))
    # A fragment ending past the limit is the attack whether or not the rest was captured.
    pod = pl.format("{} datagram(s) whose fragments reach {} bytes, past the {}-byte limit, {} of them "
                    "reassembled (fragment ids {})", "datagrams", "largest", pl.lit(max_datagram), "reassembled", "ids")
    teardrop = pl.format("{} datagram(s) whose overlapping fragments carry different bytes ({} bytes "
                         "overlap; fragment ids {})", "datagrams", "overlap", "ids")
    return alerts.with_columns(
        pl.when(pl.col("kind") == "ping_of_death").then(pod).otherwise(teardrop).alias("detail"),
        pl.lit(ENDPOINT_DOS).alias("technique"))
