"""Network mapping: sweeps (one source probing many addresses) and address mask replies."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (Data, Over, code, coded_of, episodes, evidence, finish, hot_episodes,
                                   icmp_of, in_capture_order, listing, seconds, seconds_between, several_files)

__all__ = ["sweeps", "mask_replies", "traceroute_pairs", "ttl_expired", "probe_kind", "answer_kind"]

REMOTE_SYSTEM_DISCOVERY = "T1018"
GATHER_NETWORK_INFO = "T1590"
# Probe type -> (name, reply type): echo, timestamp, information, address mask, node information.
PROBES = {(4, 8): ("echo", 0), (4, 13): ("timestamp", 14), (4, 15): ("information", 16),
          (4, 17): ("address mask", 18), (6, 128): ("echo", 129), (6, 139): ("node information", 140)}
TIME_EXCEEDED = {4: 11, 6: 3}


def _lookup(table: dict[tuple[int, int], object]) -> pl.Expr:
    expr = pl.lit(None)
    for (version, kind), value in table.items():
        match = (pl.col("ip_version") == version) & (pl.col("icmp_type") == kind)
        expr = pl.when(match).then(pl.lit(value)).otherwise(expr)
    return expr


def probe_kind() -> pl.Expr:
    """The kind of query a message is (echo, timestamp, information, address mask, node
    information), null for any other message."""
    return _lookup({key: name for key, (name, _) in PROBES.items()})


def answer_kind() -> pl.Expr:
    """The kind of query a message answers (echo for an echo reply, timestamp for a timestamp
    reply...), null for any other message."""
    return _lookup({(version, answer): name for (version, _), (name, answer) in PROBES.items()})


def ttl_expired() -> pl.Expr:
    """Time exceeded in transit (ICMPv4 type 11, ICMPv6 type 3, code 0) quoting a datagram."""
    return (pl.any_horizontal(*[(pl.col("ip_version") == v) & (pl.col("icmp_type") == t)
                                for v, t in TIME_EXCEEDED.items()])
            & (pl.col("icmp_code") == 0) & pl.col("inner_dst").is_not_null())


def traceroute_pairs(icmp: pl.LazyFrame) -> pl.LazyFrame:
    """(prober, target) pairs that got time-exceeded replies: TTL-limited probes, traceroute."""
    return (icmp.filter(ttl_expired())
            .select(pl.col("inner_src").alias("prober"), pl.col("inner_dst").alias("target"))
            .drop_nulls().unique())


def _pair_code(src: str, dst: str) -> pl.Expr:
    """The pair (prober, target) as one int (`_p`: two u32 codes), to group, join and sort by."""
    return (code(src).cast(pl.UInt64) * (1 << 32) + code(dst).cast(pl.UInt64)).alias("_p")


def sweeps(data: Data, *, sweep_window: float = 60.0, sweep_min_targets: int = 10,
           sweep_revisit: float = 5.0) -> pl.DataFrame:
    """``sweep``: one source sends echo, timestamp, information, address mask (ICMPv4), echo or
    node information (ICMPv6) requests to at least ``sweep_min_targets`` addresses within
    ``sweep_window`` seconds. The evidence is the first probe of each address; the detail names
    the live hosts that answered.

    Not counted: addresses the source monitors — probed again ``sweep_revisit`` seconds or more
    after the first time (monitoring comes back round after round; a sweep's retries follow
    within a second or two) — and addresses traced with TTL-limited probes.

    >>> import icmpscope as ic
    >>> sweep = ic.synth.scenarios.sweep()
    >>> ic.detect.sweeps(sweep.read()).select("kind", "src", "dst", "packets").rows()
    [('sweep', '203.0.113.66', None, 40)]
    """
    # Addresses as their Categorical codes (`_s`, `_d`): the sweep line, the episodes and the
    # joins group and sort ints, not text; the text is cast only for what the alerts show.
    icmp = coded_of(data)
    kind = probe_kind()
    # Only the columns the alerts use: episodes sort their rows, and a capture's rows are wide.
    probes = (icmp.filter(kind.is_not_null())
              .select("file", "frame", "ts", "ip_version", "icmp_type", "src", "dst", kind.alias("probe"),
                      code("src").alias("_s"), code("dst").alias("_d"), _pair_code("src", "dst")))
    monitored = (probes.group_by("_p")
                 .agg((pl.col("ts").max() - pl.col("ts").min()).alias("span"))
                 .filter(pl.col("span") >= seconds(sweep_revisit))
                 .select("_p"))
    traced = icmp.filter(ttl_expired()).select(_pair_code("inner_src", "inner_dst")).drop_nulls().unique()
    # Collected once: the sweep line and the episodes both read it.
    probes = probes.join(monitored, on="_p", how="anti").join(traced, on="_p", how="anti").collect().lazy()
    # Collected once: the answers and the alerts both read it (a plan would compute it twice).
    # `_new`: an episode's first probe of each address (one pass over the rows: the evidence,
    # the count and the sample of targets all read it, each found it again in its group).
    found = (in_capture_order(hot_episodes(probes, by=["_s"], window=sweep_window,
                                           over=[Over(sweep_min_targets, target="_d")]))
             .with_columns((pl.col("episode").cast(pl.UInt64) * (1 << 32) + pl.col("_d").cast(pl.UInt64))
                           .is_first_distinct().alias("_new"))
             .collect().lazy())

    reply = _lookup({key: answer for key, (_, answer) in PROBES.items()})
    # An answer goes from the target to the prober: its pair is (dst, src).
    answers = (icmp.filter(answer_kind().is_not_null())
               .select("ip_version", "icmp_type", "ts", "src", _pair_code("dst", "src")).collect())
    # The probes' pairs that were answered at all, before their episodes are found unique
    # (most of a spoofed flood's are not).
    answered = found.filter(pl.col("_p").is_in(answers.get_column("_p").unique().implode()))
    answers = answers.lazy().join(
        answered.select("ip_version", "_p", reply.alias("icmp_type"), "episode").unique(),
        on=["ip_version", "icmp_type", "_p"])
    # Grouped by episode alone (its numbers are unique across probers); the answers sorted
    # once by time, not each group's.
    live = (answers.sort("ts", maintain_order=True).group_by("episode")
            .agg(pl.col("src").n_unique().alias("live"), listing("src").alias("hosts")))
    alerts = (found.group_by("episode")
              .agg(*evidence(first=pl.col("_new"), ordered=True), pl.col("src").first(),
                   pl.col("_new").sum().alias("targets"), listing("probe").alias("probes"),
                   listing(pl.col("dst").filter("_new")).alias("sample"))
              .join(live, on="episode", how="left")
              .with_columns(pl.lit("sweep").alias("kind"), pl.lit(None, pl.String).alias("dst"),
                            pl.lit(REMOTE_SYSTEM_DISCOVERY).alias("technique"),
                            pl.format("{} request(s) to {} addresses in {} s ({}); {} answered: {}",
                                      "probes", "targets", seconds_between(), "sample",
                                      pl.col("live").fill_null(0), pl.col("hosts").fill_null("-"))
                            .alias("detail")))
    return finish(alerts, several=several_files(data))


def mask_replies(data: Data, *, mask_window: float = 60.0) -> pl.DataFrame:
    """``mask_reply``: address mask replies (ICMPv4 type 18), which tell a prober how the
    internal network is divided. Replies from one host to one requester less than
    ``mask_window`` seconds apart make one alert.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.mask_reply().read()
    >>> ic.detect.mask_replies(cap).select("kind", "src", "dst", "packets").rows()
    [('mask_reply', '192.0.2.1', '203.0.113.5', 1)]
    """
    rows = icmp_of(data).filter((pl.col("ip_version") == 4) & (pl.col("icmp_type") == 18))
    by = ["src", "dst"]
    alerts = (episodes(rows, rows.select(*by, "ts"), by=by, window=mask_window)
              .group_by(*by, "episode")
              .agg(*evidence(), listing("mask").alias("masks"))
              .with_columns(pl.lit("mask_reply").alias("kind"),
                            pl.lit(GATHER_NETWORK_INFO).alias("technique"),
                            pl.format("{} address mask repl(ies) revealing mask {}", "packets", "masks")
                            .alias("detail")))
    return finish(alerts, several=several_files(data))
