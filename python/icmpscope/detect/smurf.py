"""Smurf: echo requests to broadcast addresses in a victim's name, and the storm of unsolicited
echo replies that reaches the victim."""
from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from icmpscope.detect.base import (ECHO_REPLY, ECHO_REQUEST, Data, by_frequency, episodes, evidence, finish,
                                   count_hot, icmp_of, is_broadcast, listing, seconds, seconds_between,
                                   several_files)
from icmpscope.detect.conversations import pairs

__all__ = ["smurf"]

REFLECTION = "T1498.002"


def smurf(data: Data, *, smurf_window: float = 1.0, smurf_rate: float = 5.0,
          smurf_reply_rate: float = 50.0, smurf_min_reflectors: int = 5,
          networks: Sequence[str] = ()) -> pl.DataFrame:
    """``smurf``, either of:

    - echo requests to broadcast or multicast addresses (by address, see ``networks``, or by a
      group destination MAC such as ff:ff:ff:ff:ff:ff) from one claimed source at
      ``smurf_rate`` per second or more over ``smurf_window`` seconds: ``src`` is that source,
      the victim, ``dst`` the broadcast address (null if several);
    - echo replies that answer no request (see :func:`icmpscope.echo_pairs`) reaching one victim
      at ``smurf_reply_rate`` per second or more from at least ``smurf_min_reflectors`` hosts:
      ``dst`` is the victim, ``src`` null.

    A one-a-second ``ping -b`` stays below the rate.

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.smurf().read()
    >>> ic.detect.smurf(cap).select("kind", "src", "dst", "packets").rows()
    [('smurf', '192.0.2.99', '198.51.100.255', 50)]
    """
    icmp = icmp_of(data)
    window = smurf_window
    requests = icmp.filter(pl.col("icmp_type").is_in(ECHO_REQUEST)
                           & is_broadcast(pl.col("dst"), pl.col("dst_mac"), networks))
    hot = count_hot(requests, by=["src"], window=window, minimum=smurf_rate * window)
    amplified = (episodes(requests, hot, by=["src"], window=window)
                 .group_by("src", "episode")
                 .agg(*evidence(), listing(by_frequency("dst")).alias("targets"),
                      pl.col("dst").n_unique().alias("n_targets"), pl.col("dst").first().alias("_dst"))
                 .with_columns(pl.when(pl.col("n_targets") == 1).then("_dst").alias("dst"),
                               pl.format("{} echo requests to broadcast {} in {} s claiming source {}",
                                         "packets", "targets", seconds_between(), "src").alias("detail")))

    # Victims receiving replies that fast at all, before pairing (a pair of addresses pairs on
    # its own, so the victims' traffic alone gives their orphan replies).
    replies = icmp.filter(pl.col("icmp_type").is_in(ECHO_REPLY))
    victims = (count_hot(replies, by=["dst"], window=window, minimum=smurf_reply_rate * window)
               .select("dst").unique().collect().to_series().to_list())
    around = icmp.filter(pl.col("src").is_in(victims) | pl.col("dst").is_in(victims))
    orphans = (pairs(around).filter(pl.col("request_frame").is_null())
               .select(pl.col("src").alias("dst"), pl.col("dst").alias("reflector"),
                       pl.col("reply_ts").alias("ts"), pl.col("reply_frame").alias("frame"),
                       pl.col("reply_file").alias("file"))
               .collect().lazy())  # used twice below
    storm_hot = count_hot(orphans, by=["dst"], window=window, minimum=smurf_reply_rate * window)
    storms = (episodes(orphans, storm_hot, by=["dst"], window=window)
              .group_by("dst", "episode")
              .agg(*evidence(), pl.col("reflector").n_unique().alias("reflectors"),
                   listing(by_frequency("reflector")).alias("top"))
              .filter(pl.col("reflectors") >= smurf_min_reflectors)
              .with_columns(pl.lit(None, pl.String).alias("src"),
                            pl.format("{} unsolicited echo replies from {} hosts in {} s (e.g. {})",
                                      "packets", "reflectors", seconds_between(), "top").alias("detail")))
    # Requests seen and the replies they drew: one attack, told once.
    requested = amplified.select(pl.col("src").alias("dst"), pl.col("start").alias("_s"),
                                 pl.col("end").alias("_e"), pl.col("episode").alias("_ep"))
    drawn = (storms.join(requested, on="dst")
             .filter((pl.col("start") <= pl.col("_e") + seconds(window)) & (pl.col("end") >= pl.col("_s"))))
    amplified = amplified.join(
        drawn.group_by(pl.col("dst").alias("src"), pl.col("_ep").alias("episode"))
        .agg(pl.col("packets").sum().alias("_replies"), pl.col("reflectors").max().alias("_hosts")),
        on=["src", "episode"], how="left",
    ).with_columns(pl.when(pl.col("_replies").is_not_null())
                   .then(pl.format("{}; {} unsolicited replies from {} hosts reached it",
                                   "detail", "_replies", "_hosts"))
                   .otherwise("detail").alias("detail"))
    storms = storms.join(drawn.select("dst", "episode"), on=["dst", "episode"], how="anti")
    alerts = pl.concat([amplified, storms], how="diagonal_relaxed").with_columns(
        pl.lit("smurf").alias("kind"), pl.lit(REFLECTION).alias("technique"))
    return finish(alerts, several=several_files(data))
