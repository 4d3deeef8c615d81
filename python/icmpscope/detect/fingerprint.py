"""OS fingerprinting: queries crafted to tell IP stacks apart by how they answer — echo requests
with a code or TOS bits no ping sends, the same host's echo requests in several shapes within
seconds (nmap ``-O``'s IE pair), and several query types at one host within seconds (Xprobe2's
echo, timestamp, address mask and information requests)."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (ECHO_REQUEST, ORDER, Data, distinct_hot, episodes, evidence, finish,
                                   count_hot, icmp_of, listing, seconds, seconds_between, several_files)
from icmpscope.detect.sweeps import answer_kind, probe_kind

__all__ = ["fingerprinting", "is_query", "is_crafted", "is_plain", "echo_shape"]

HOST_INFORMATION = "T1592"
ECN_BITS = 0x03


def is_query() -> pl.Expr:
    """Query requests (echo, timestamp, information, address mask, node information) whose
    checksum is not known to be wrong (a bit flipped in transit makes no probe)."""
    return probe_kind().is_not_null() & pl.col("checksum_ok").fill_null(True)


def echo_shape() -> pl.Expr:
    """An echo request's code and TOS (traffic class) as one number, code * 256 + TOS; null
    for other messages. A ping keeps one shape for all its requests."""
    return (pl.when(pl.col("icmp_type").is_in(ECHO_REQUEST))
            .then(pl.col("icmp_code").cast(pl.Int32) * 256 + pl.col("tos").fill_null(0).cast(pl.Int32)))


def is_plain() -> pl.Expr:
    """Echo requests as every ping sends them: code 0, TOS 0. A pair that sends only these
    has one shape and one query type."""
    return echo_shape() == 0


def is_crafted() -> pl.Expr:
    """Echo requests no ping sends: a non-zero code (RFC 792 and 4443 define only 0), or ECN
    bits set in the TOS byte or traffic class (ICMP negotiates no ECN)."""
    return (pl.col("icmp_type").is_in(ECHO_REQUEST)
            & ((pl.col("icmp_code") != 0) | ((pl.col("tos").fill_null(0) & ECN_BITS) != 0)))


def _described(answer: bool = False) -> pl.Expr:
    """A message in words: echo requests (replies) with their code, TOS and DF bit, other
    queries by kind."""
    kind = answer_kind() if answer else probe_kind()
    echo = pl.format("echo{} code {} TOS {}", pl.lit(" reply" if answer else ""), pl.col("icmp_code"),
                     pl.col("tos").fill_null(0))
    df = pl.when(pl.col("df").fill_null(False)).then(pl.lit(" DF")).otherwise(pl.lit(""))
    return (pl.when(kind == "echo").then(pl.concat_str(echo, df))
            .otherwise(kind + pl.lit(" reply" if answer else "")))


def fingerprinting(data: Data, *, fingerprint_window: float = 10.0, fingerprint_min_crafted: int = 1,
                   fingerprint_min_shapes: int = 2, fingerprint_min_queries: int = 3) -> pl.DataFrame:
    """``os_fingerprint`` (T1592): one source's queries to one target (``src``, ``dst``) that
    probe how its IP stack answers, any of, within ``fingerprint_window`` seconds:

    - at least ``fingerprint_min_crafted`` echo requests no ping sends: a non-zero code or ECN
      bits set in the TOS (IPv6 traffic class) — Xprobe2's code 123 TOS 6, nmap's code 9;
    - echo requests in at least ``fingerprint_min_shapes`` shapes (code and TOS): a ping keeps
      one, nmap ``-O``'s IE pair has two (code 9 TOS 0, then code 0 TOS 4), back to back;
    - at least ``fingerprint_min_queries`` query types (echo, timestamp, address mask,
      information; ICMPv6 echo, node information): Xprobe2 sends all four in a second.

    Requests with a bad checksum do not count. The evidence is the first request of each kind
    (type, code, TOS, DF); the detail counts the signals, names nmap's IE pair when it is
    there, and tells what the target answered within the window (the code and TOS a stack
    returns are what the prober reads).

    Left alone: Linux and Windows ping as they ship (code 0, TOS 0), monitoring pings marked
    with one DSCP, a host pinged and asked the time (timestamp) now and then — two query types,
    and not within seconds. Limits: a prober that sends only well-formed pings of one shape
    and fewer query types looks like anyone else, and one whose packets are re-marked on the
    way (a DSCP rewrite keeps the ECN bits) is judged by what arrives.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.nmap_os().read()
    >>> ic.detect.fingerprinting(cap).select("kind", "src", "dst", "packets").rows()
    [('os_fingerprint', '203.0.113.50', '192.0.2.30', 4)]
    """
    icmp = icmp_of(data)
    window = fingerprint_window
    pair = ["src", "dst"]
    requests = (icmp.filter(is_query())
                .select(*ORDER, *pair, "ip_version", "icmp_type", "icmp_code", "tos", "df",
                        probe_kind().alias("probe"), echo_shape().alias("_shape")))
    if fingerprint_min_shapes > 1 and fingerprint_min_queries > 1:
        # A pair whose requests are all plain echoes (code 0, TOS 0) has one shape and one
        # type: only the others can alert (counting per window over every pair costs seconds).
        unusual = ~is_plain().fill_null(False)
        requests = requests.join(requests.filter(unusual).select(pair).unique(), on=pair, how="semi")
    requests = requests.collect().lazy()  # read by each signal below: collected once
    hot = pl.concat([
        count_hot(requests.filter(is_crafted()), by=pair, window=window, minimum=fingerprint_min_crafted),
        distinct_hot(requests, by=pair, target="_shape", window=window, minimum=fingerprint_min_shapes),
        distinct_hot(requests, by=pair, target="probe", window=window, minimum=fingerprint_min_queries),
    ])
    requests = requests.join(hot.select(pair).unique(), on=pair, how="semi")
    echo = pl.col("icmp_type").is_in(ECHO_REQUEST)
    found = (episodes(requests, hot, by=pair, window=window)
             .with_columns(_described().alias("_what"))
             .sort(*ORDER)
             .group_by(*pair, "episode")
             .agg(*evidence(first=pl.col("_what").is_first_distinct(), ordered=True),
                  (echo & (pl.col("icmp_code") != 0)).sum().alias("codes"),
                  (echo & ((pl.col("tos").fill_null(0) & ECN_BITS) != 0)).sum().alias("ecn"),
                  pl.col("_shape").drop_nulls().n_unique().alias("shapes"),
                  pl.col("probe").n_unique().alias("types"),
                  ((pl.col("_shape") == 9 * 256).any() & (pl.col("_shape") == 4).any()).alias("_ie"),
                  listing("_what").alias("probes"))
             .collect().lazy())  # the alerts and their answers both read it
    answers = (icmp.filter(answer_kind().is_not_null())
               .select("ts", "ip_version", "icmp_type", "icmp_code", "tos", "df",
                       pl.col("dst").alias("src"), pl.col("src").alias("dst"))
               .join(found.select(*pair, "episode", "start", "end"), on=pair)
               .filter(pl.col("ts").is_between(pl.col("start"), pl.col("end") + seconds(window)))
               .with_columns(_described(answer=True).alias("_what"))
               .sort("ts")
               .group_by(*pair, "episode")
               .agg(pl.len().alias("answered"), listing("_what").alias("replies")))
    alerts = (found.join(answers, on=[*pair, "episode"], how="left")
              .with_columns(
                  pl.lit("os_fingerprint").alias("kind"), pl.lit(HOST_INFORMATION).alias("technique"),
                  pl.format("{} queries in {} s ({}): {} echo request(s) with a non-zero code, {} with ECN bits "
                            "set, {} echo shape(s), {} query type(s){}; {} answer(s) ({})",
                            "packets", seconds_between(), "probes", "codes", "ecn", "shapes", "types",
                            pl.when(pl.col("_ie")).then(pl.lit(", nmap -O's IE pair")).otherwise(pl.lit("")),
                            pl.col("answered").fill_null(0), pl.col("replies").fill_null("-"))
                  .alias("detail")))
    return finish(alerts, several=several_files(data))
