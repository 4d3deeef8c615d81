"""Echo requests matched to their replies (tshark's ``icmp.resp_in``): the pairing behind
:func:`icmpscope.echo_pairs` and the detectors that look for unanswered replies. It lives here,
beside the detectors, so that they and ``icmpscope.echo`` import it without a cycle."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import ECHO_REPLY, ECHO_REQUEST, has_column, whole

PUBLIC = ("src", "dst", "icmp_id", "icmp_seq", "request_frame", "reply_frame", "request_ts",
          "reply_ts", "rtt", "request_bytes", "reply_bytes")


def pairs(icmp: pl.LazyFrame, *, timeout: float | None = 30.0) -> pl.LazyFrame:
    """:func:`echo_pairs` over a prepared ``icmp`` LazyFrame, with the extra columns
    ``ip_version``, ``request_payload``, ``reply_payload`` (echo data bytes)."""
    request = pl.col("icmp_type").is_in(ECHO_REQUEST)
    echo = icmp.filter(pl.col("icmp_type").is_in(ECHO_REQUEST + ECHO_REPLY)
                       & pl.col("icmp_id").is_not_null() & pl.col("icmp_seq").is_not_null())
    if (context := whole()) is not None:  # part of a capture: its files start where the whole's do
        echo = echo.join(context.file_starts.lazy(), on="file", how="left")
    else:
        echo = echo.with_columns(pl.col("ts").min().over("file").alias("_file_start"))
    echo = (echo
            .sort("_file_start", "file", "frame")
            .with_row_index("_order")
            .with_columns(pl.min_horizontal("src", "dst").alias("_a"),
                          pl.max_horizontal("src", "dst").alias("_b"),
                          _match_key(icmp, request).alias("_key")))
    by = ["ip_version", "_a", "_b", "_key", "icmp_id", "icmp_seq"]
    side = ["_order", "frame", "ts", "file", "datagram_len", "payload_len"]
    requests = echo.filter(request).select(
        "src", "dst", "icmp_id", "icmp_seq", "ip_version", *by[1:4],
        *(pl.col(c).alias(f"request_{c}") for c in side))
    replies = echo.filter(~request).select(
        *by, pl.col("dst").alias("src"), pl.col("src").alias("dst"),
        *(pl.col(c).alias(f"reply_{c}") for c in side))
    # The latest request before each reply; the first reply takes it (tshark's unmatched table).
    answered = (replies.sort("reply__order")
                .join_asof(requests.select(*by, "request__order", "request_ts").sort("request__order"),
                           left_on="reply__order", right_on="request__order", by=by,
                           strategy="backward", check_sortedness=False)
                .filter(pl.col("request__order").is_not_null())
                .sort("reply__order")
                .filter(pl.col("request__order").is_first_distinct()))
    if timeout is not None:
        limit = pl.duration(nanoseconds=int(timeout * 1e9))
        answered = answered.filter(pl.col("reply_ts") - pl.col("request_ts") <= limit)
    answered = answered.select("request__order", "reply__order")
    reply_columns = [f"reply_{c}" for c in side]
    matched = (requests.join(answered, on="request__order", how="left")
               .join(replies.select(reply_columns), on="reply__order", how="left"))
    orphans = replies.join(answered, on="reply__order", how="anti")
    out = pl.concat([matched, orphans], how="diagonal_relaxed")
    return (out.with_columns(
                (pl.col("reply_ts") - pl.col("request_ts")).alias("rtt"),
                pl.col("request_datagram_len").alias("request_bytes"),
                pl.col("reply_datagram_len").alias("reply_bytes"),
                pl.col("request_payload_len").alias("request_payload"),
                pl.col("reply_payload_len").alias("reply_payload"))
            .sort(pl.coalesce("request__order", "reply__order"))
            .select(*PUBLIC, "request_file", "reply_file", "ip_version", "request_payload",
                    "reply_payload"))


def _match_key(icmp: pl.LazyFrame, request: pl.Expr) -> pl.Expr:
    """What a reply shares with its request: its checksum, which a request predicts by taking the
    type difference (0x0800 in ICMPv4, 0x0100 in ICMPv6) out of its own, in one's complement.
    Tables without the checksum column fall back to the echo data length."""
    if not has_column(icmp, "checksum"):
        return pl.col("payload_len").cast(pl.Int64)
    checksum = pl.col("checksum").cast(pl.Int64)
    # The reply's type word less the request's: -0x0800 (8 -> 0), or +0x0100 (128 -> 129).
    step = pl.when(pl.col("ip_version") == 4).then(0xFFFF - 0x0800).otherwise(0x0100)
    total = (0xFFFF - checksum) + step  # ~checksum is the sum of the message
    folded = total % 0x10000 + total // 0x10000
    return pl.when(request).then(0xFFFF - folded).otherwise(checksum)
