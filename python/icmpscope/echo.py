"""Echo conversations: each echo request matched to its reply the way tshark's ``icmp.resp_in``
and ``icmpv6.resp_in`` do it.

tshark pairs a reply with the latest earlier request between the same two addresses with the
same identifier, sequence number *and checksum* — the reply's checksum is the request's adjusted
for the changed type, so a reply matches only if it echoes the request's data. A reply whose
request already has a reply is a duplicate and stays unmatched. We do the same, in the order of
the records of each file (files in the order of their first packet), and also leave unmatched a
reply more than ``timeout`` seconds after its request.
"""
from __future__ import annotations

import polars as pl

from icmpscope.detect.base import Data, icmp_of, several_files
from icmpscope.detect.conversations import PUBLIC, pairs

__all__ = ["echo_pairs"]


def echo_pairs(data: Data, *, timeout: float | None = 30.0) -> pl.DataFrame:
    """Echo requests (ICMPv4 type 8, ICMPv6 128) with their replies (0, 129).

    One row per request, with null reply columns when it went unanswered, and one row per reply
    that answers no request (null request columns: the signature of reflection and smurf).
    ``src`` is the requester, ``dst`` the pinged address, for both. ``rtt`` is a Duration;
    ``*_bytes`` are IP datagram lengths. With several capture files, ``request_file`` and
    ``reply_file`` say where the frames are. ``timeout=None`` matches at any delay, as tshark.

    >>> import icmpscope as ic, tempfile, os
    >>> s = ic.synth
    >>> path = os.path.join(tempfile.mkdtemp(), "ping.pcap")
    >>> _ = s.write_pcap(path, [
    ...     (0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=1))),
    ...     (2_000_000, s.ethernet(s.ping("10.0.0.2", "10.0.0.1", seq=1, reply=True))),
    ...     (1_000_000_000, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=2)))])
    >>> ic.echo_pairs(ic.read_pcap(path)).select("icmp_seq", "request_frame", "reply_frame", "rtt").rows()
    [(1, 1, 2, datetime.timedelta(microseconds=2000)), (2, 3, None, None)]
    """
    columns = list(PUBLIC)
    if several_files(data):
        columns += ["request_file", "reply_file"]
    return pairs(icmp_of(data), timeout=timeout).select(columns).collect()
