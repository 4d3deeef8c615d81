"""ICMP tunnels: sustained echo traffic whose payloads carry data rather than a ping pattern."""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import (ECHO_REPLY, ECHO_REQUEST, Data, empty, evidence, finish, has_column,
                                   icmp_of, listing, runs, seconds, seconds_between,
                                   several_files)
from icmpscope.detect.conversations import pairs

__all__ = ["tunnels"]

NON_APPLICATION_LAYER = "T1095"


def tunnels(data: Data, *, tunnel_min_packets: int = 10, tunnel_min_duration: float = 5.0,
            tunnel_idle: float = 60.0, tunnel_min_sizes: int = 4, tunnel_min_payload: int = 64,
            tunnel_entropy: float = 0.85, tunnel_mismatch: float = 0.5, tunnel_varying: float = 0.5,
            tunnel_min_signals: int = 2) -> pl.DataFrame:
    """``icmp_tunnel``: echo sessions between a client and a server (requests one way, replies
    the other; a pause over ``tunnel_idle`` seconds ends one) of at least ``tunnel_min_packets``
    messages over ``tunnel_min_duration`` seconds or more, that show ``tunnel_min_signals`` of:

    - *variety*: at least ``tunnel_min_sizes`` distinct echo data sizes (ping sends one);
    - *data*: a mean echo data size of ``tunnel_min_payload`` bytes or more with a mean entropy
      of at least ``tunnel_entropy`` of the most its size allows (log2 of the size, up to 8
      bits per byte): compressed or encrypted, not a fill pattern;
    - *mismatch*: at least ``tunnel_mismatch`` of the replies do not echo their request's data
      (no request matches them; see :func:`icmpscope.echo_pairs`), as a host's own replies do;
    - *varying*: at least ``tunnel_varying`` of the messages carry other data than the session's
      first message of their size (by ``payload_digest``, which leaves out the first 16 bytes,
      where ping puts its timestamp): a tunnel sends new data each time, even in one size and
      with every request echoed back; ping repeats its pattern, cut to the size asked for.

    A long ``ping -s 1400`` shows only the data signal, a Windows ping none, ``ping -s`` over a
    few small sizes only variety (over large sizes it also shows data: it looks like a tunnel).

    >>> import icmpscope as ic
    >>> cap = ic.synth.scenarios.icmp_tunnel().read()
    >>> ic.detect.tunnels(cap).select("kind", "src", "dst", "packets").rows()
    [('icmp_tunnel', '192.0.2.10', '203.0.113.200', 60)]
    >>> cap = ic.synth.scenarios.ping_exfiltration().read()  # one size, every request echoed
    >>> print(ic.detect.tunnels(cap)["detail"][0])  # doctest: +NORMALIZE_WHITESPACE
    60 echo messages in 58.0 s carry 30720 bytes: 1 data sizes (512), mean entropy 7.6 bits/byte,
    0 of 30 replies echo no request, 58 unlike the first of their size
    """
    icmp = icmp_of(data)
    request = pl.col("icmp_type").is_in(ECHO_REQUEST)
    entropy = pl.col("payload_entropy") if has_column(icmp, "payload_entropy") else pl.lit(None, pl.Float32)
    digest = pl.col("payload_digest") if has_column(icmp, "payload_digest") else pl.lit(None, pl.UInt64)
    session = ["client", "server", "ip_version"]
    echo = (icmp.filter(pl.col("icmp_type").is_in(ECHO_REQUEST + ECHO_REPLY))
            .with_columns(pl.when(request).then("src").otherwise("dst").alias("client"),
                          pl.when(request).then("dst").otherwise("src").alias("server"),
                          entropy.alias("entropy"), digest.alias("digest"))
            .sort(*session, "ts")
            .with_columns(runs(session, seconds(tunnel_idle)).alias("episode")))
    # Sessions long enough first: the costly measures are taken on those alone.
    long = (echo.group_by(*session, "episode")
            .agg(pl.len().alias("n"), (pl.col("ts").max() - pl.col("ts").min()).alias("span"))
            .filter((pl.col("n") >= tunnel_min_packets) & (pl.col("span") >= seconds(tunnel_min_duration)))
            .select(*session, "episode").collect())
    if long.is_empty():
        return empty(several=several_files(data))
    echo = echo.join(long.lazy(), on=[*session, "episode"], how="semi")
    # A pair of addresses pairs on its own: the sessions' addresses give their orphan replies.
    ends = pl.concat([long["client"], long["server"]]).unique().to_list()
    orphans = (pairs(icmp.filter(pl.col("src").is_in(ends) & pl.col("dst").is_in(ends)))
               .filter(pl.col("request_frame").is_null())
               .select(pl.col("reply_file").alias("file"), pl.col("reply_frame").alias("frame"),
                       pl.lit(True).alias("orphan")))
    most = pl.min_horizontal(pl.col("payload_len"), pl.lit(256)).cast(pl.Float64).log(2)
    first_of_size = pl.col("digest").first().over(*session, "episode", "payload_len")
    sessions = (echo.join(orphans, on=["file", "frame"], how="left")
                .sort("ts", "file", "frame")
                .with_columns((pl.col("digest") != first_of_size).fill_null(False).alias("new_data"))
                .group_by(*session, "episode")
                .agg(*evidence(),
                     pl.col("payload_len").sum().alias("bytes"),
                     pl.col("payload_len").mean().alias("mean_size"),
                     pl.col("payload_len").n_unique().alias("sizes"),
                     listing(pl.col("payload_len").sort()).alias("size_list"),
                     pl.when(pl.col("payload_len") > 1).then(pl.col("entropy") / most).mean()
                     .alias("entropy_ratio"),
                     pl.col("entropy").mean(),
                     (~request).sum().alias("replies"),
                     pl.col("orphan").fill_null(False).sum().alias("orphans"),
                     pl.col("new_data").sum()))
    variety = pl.col("sizes") >= tunnel_min_sizes
    data_like = ((pl.col("mean_size") >= tunnel_min_payload)
                 & (pl.col("entropy_ratio") >= tunnel_entropy).fill_null(False))
    mismatch = (pl.col("replies") > 0) & (pl.col("orphans") >= tunnel_mismatch * pl.col("replies"))
    varying = pl.col("new_data") >= tunnel_varying * pl.col("packets")
    signals = sum(signal.cast(pl.Int32) for signal in (variety, data_like, mismatch, varying))
    alerts = (sessions.filter(signals >= tunnel_min_signals)
              .with_columns(
                  pl.lit("icmp_tunnel").alias("kind"), pl.col("client").alias("src"),
                  pl.col("server").alias("dst"), pl.lit(NON_APPLICATION_LAYER).alias("technique"),
                  pl.format("{} echo messages in {} s carry {} bytes: {} data sizes ({}), "
                            "mean entropy {} bits/byte, {} of {} replies echo no request, "
                            "{} unlike the first of their size",
                            "packets", seconds_between(), "bytes", "sizes", "size_list",
                            pl.col("entropy").round(2).cast(pl.String).fill_null("unknown"),
                            "orphans", "replies", "new_data").alias("detail")))
    return finish(alerts, several=several_files(data))
