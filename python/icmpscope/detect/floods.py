"""Echo floods: one source, or many, sending echo requests to one target faster than a rate."""
from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from icmpscope.detect.base import (ECHO_REQUEST, Data, Over, code, coded_of, evidence, finish,
                                   hot_episodes, in_capture_order, is_broadcast, listing,
                                   seconds_between, several_files)

__all__ = ["echo_floods"]

DIRECT_FLOOD = "T1498.001"


def _code64(column: str) -> pl.Expr:
    """A Categorical code as u64, a missing address as 2**32 - 1 (its own group, as before; no
    capture has four billion addresses)."""
    return code(column).fill_null(2**32 - 1).cast(pl.UInt64)


def echo_floods(data: Data, *, flood_window: float = 1.0, flood_rate: float = 50.0,
                flood_byte_rate: float = 1_000_000.0, ddos_rate: float = 100.0,
                ddos_min_sources: int = 10, networks: Sequence[str] = ()) -> pl.DataFrame:
    """``echo_flood``: one source sends one target at least ``flood_rate`` echo requests per second,
    or ``flood_byte_rate`` IP bytes per second, over a ``flood_window``-second window.
    ``ddos_echo_flood``: one target receives at least ``ddos_rate`` requests per second over the
    window from at least ``ddos_min_sources`` sources (spoofed random sources count one each);
    the sources' own ``echo_flood`` alerts are then folded into it.

    Requests to broadcast and multicast addresses are smurf's business (see :func:`smurf`, which
    uses ``networks`` the same way). Monitoring pings and traceroutes stay far below the rates.

    >>> import icmpscope as ic
    >>> flood = ic.synth.scenarios.echo_flood()
    >>> ic.detect.echo_floods(flood.read()).select("kind", "src", "dst", "packets").rows()
    [('echo_flood', '203.0.113.7', '192.0.2.80', 300)]
    """
    # Addresses as their Categorical codes (`_s`, `_d`): the windows, episodes and joins group
    # and sort ints, not text (see sweeps).
    requests = (coded_of(data).filter(pl.col("icmp_type").is_in(ECHO_REQUEST))
                .select("file", "frame", "ts", "src", "dst", "dst_mac", "datagram_len",
                        code("src").alias("_s"), code("dst").alias("_d"), code("dst_mac").alias("_m"),
                        (_code64("src") * (1 << 32) + _code64("dst")).alias("_p")))
    # Broadcast judged once per distinct destination (text tests on every row cost seconds over
    # millions of requests); collected once, as four queries read it.
    # Left out by one int key (destination and MAC codes), the few broadcast ones looked up:
    # an anti join on the two columns cost five times as much over 5M requests.
    to = (_code64("_d") * (1 << 32) + _code64("_m")).alias("_to")
    group = (requests.select("_d", "_m", "dst", "dst_mac").unique(subset=["_d", "_m"])
             .filter(is_broadcast(pl.col("dst").cast(pl.String), pl.col("dst_mac").cast(pl.String), networks))
             .select(to).collect().to_series())
    requests = requests.filter(~to.is_in(group.implode())).drop("dst_mac", "_m").collect().lazy()
    window = flood_window
    pair = ["_p"]  # (source, target) as one int: two u32 codes
    # Requests or bytes: each count leaves out first the pairs that have too few in all
    # (millions of spoofed pairs of a request or two).
    over = [Over(flood_rate * window), Over(flood_byte_rate * window, weight="datagram_len")]
    floods = (in_capture_order(hot_episodes(requests, by=pair, window=window, over=over))
              .group_by(*pair, "episode")
              .agg(*evidence(ordered=True), pl.col("datagram_len").sum().alias("bytes"), pl.col("src").first(),
                   pl.col("dst").first(), pl.col("_d").first())
              .with_columns(pl.lit("echo_flood").alias("kind"),
                            pl.format("{} echo requests in {} s ({} bytes); "
                                      "threshold {}/s or {} bytes/s over {} s",
                                      "packets", seconds_between(), "bytes", pl.lit(flood_rate),
                                      pl.lit(flood_byte_rate), pl.lit(window)).alias("detail")))

    victims = in_capture_order(hot_episodes(requests, by=["_d"], window=window, over=[Over(ddos_rate * window)]))
    # The sources counted per source first: sorting every request's source text in its group
    # (by_frequency) cost seconds over millions of spoofed sources. The five most frequent,
    # ties in text order, without sorting every source: each source's rank in text order
    # (once per distinct source), and the five smallest of (-count, rank) in each episode.
    # Keyed by (episode, source code) as one int, counted alone: the episode and the code are
    # read back off the key (episode numbers are unique across targets), and four first()s
    # over 2.85M spoofed sources cost three times the count.
    missing = 2**32 - 1
    per_source = (victims.group_by((pl.col("episode").cast(pl.UInt64) * (1 << 32) + _code64("src")).alias("_es"))
                  .agg(pl.len().alias("_n"))
                  .select((pl.col("_es") // (1 << 32)).cast(pl.UInt32).alias("episode"),
                          pl.when(pl.col("_es") % (1 << 32) != missing)
                          .then(pl.col("_es") % (1 << 32)).cast(pl.UInt32).alias("_s"), "_n")
                  .collect().lazy())
    named = per_source.filter(pl.col("_s").is_not_null())
    ranks = (victims.filter(pl.col("_s").is_not_null()).select("_s", "src").unique("_s")
             .select("_s", "src", pl.col("src").cast(pl.String).rank("ordinal").cast(pl.UInt64).alias("_r")))
    episode = ["episode"]
    order = ((2**32 - 1 - pl.col("_n").cast(pl.UInt64)) * (1 << 32) + pl.col("_r")).alias("_o")
    top = (named.join(ranks, on="_s").with_columns(order)
           .filter(pl.col("_o") <= pl.col("_o").bottom_k(5).max().over(episode))
           .sort(*episode, "_o")
           .group_by(episode, maintain_order=True)
           .agg(pl.col("src").cast(pl.String).str.join(", ").alias("_top")))
    sources = (per_source.group_by(episode)
               .agg(pl.len().alias("sources"), pl.col("_s").is_not_null().sum().alias("_named"))
               .join(top, on=episode, how="left")
               .select(*episode, "sources",
                       pl.when(pl.col("_named") == 0).then(pl.lit("-"))
                       .when(pl.col("_named") > 5).then(pl.col("_top") + "…")
                       .otherwise(pl.col("_top")).alias("top")))
    ddos = (victims.group_by("_d", "episode").agg(*evidence(ordered=True), pl.col("dst").first())
            .join(sources, on="episode")
            .filter(pl.col("sources") >= ddos_min_sources)
            .with_columns(pl.lit("ddos_echo_flood").alias("kind"), pl.lit(None, pl.String).alias("src"),
                          pl.format("{} echo requests from {} sources in {} s (e.g. {}); "
                                    "threshold {}/s over {} s",
                                    "packets", "sources", seconds_between(), "top",
                                    pl.lit(ddos_rate), pl.lit(window)).alias("detail")))
    # A source flooding as part of a distributed flood is told in the distributed alert.
    spans = ddos.select("_d", pl.col("start").alias("_s_start"), pl.col("end").alias("_e"))
    folded = (floods.join(spans, on="_d")
              .filter((pl.col("start") <= pl.col("_e")) & (pl.col("end") >= pl.col("_s_start")))
              .select(*pair, "episode"))
    floods = floods.join(folded, on=[*pair, "episode"], how="anti")
    alerts = pl.concat([floods, ddos], how="diagonal_relaxed").with_columns(
        pl.lit(DIRECT_FLOOD).alias("technique"))
    return finish(alerts, several=several_files(data))
