"""Property tests (hypothesis): synth captures of every container round-trip through read_pcap,
and a capture cut anywhere keeps exactly the whole records before the cut."""
from __future__ import annotations

import ipaddress
import tempfile
import warnings
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import icmpscope as ic
from icmpscope import synth as s

T0 = 1_700_000_000_000_000_000

pings = st.lists(
    st.tuples(
        st.booleans(),                                    # IPv6
        st.integers(1, 2**32 - 2), st.integers(1, 2**32 - 2),
        st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),   # id, seq
        st.integers(0, 10**12),                           # ns after T0
        st.binary(max_size=64),
    ),
    max_size=12,
)
containers = st.sampled_from(["pcap", "pcap-ns-be", "modified", "pcapng", "pcapng-ns-be", "pcapng-pb"])


def _frames(items) -> list[tuple[s.Frame, tuple]]:
    out = []
    for v6, a, b, ident, seq, dt, payload in items:
        if v6:
            src, dst = str(ipaddress.IPv6Address(a << 64)), str(ipaddress.IPv6Address(b))
        else:
            src, dst = str(ipaddress.IPv4Address(a)), str(ipaddress.IPv4Address(b))
        packet = s.ping(src, dst, id=ident, seq=seq, payload=payload)
        out.append((s.Frame(T0 + dt, s.ethernet(packet)), (src, dst, ident, seq, len(payload))))
    return out


def _write(path: Path, container: str, frames: list[s.Frame]) -> int:
    """Writes the capture; returns the timestamp unit it keeps, in ns."""
    if container.startswith("pcapng"):
        ns = container == "pcapng-ns-be"
        s.write_pcapng(path, frames, interfaces=[s.Interface(linktype=1, tsresol=9 if ns else 6)],
                       big_endian=ns, block="pb" if container == "pcapng-pb" else "epb")
        return 1 if ns else 1000
    if container == "modified":
        s.write_modified_pcap(path, frames)
        return 1000
    ns = container == "pcap-ns-be"
    s.write_pcap(path, frames, nanosecond=ns, big_endian=ns, linktype=1)
    return 1 if ns else 1000


@settings(max_examples=60, deadline=None)
@given(pings, containers)
def test_synth_round_trip(items, container) -> None:
    pairs = _frames(items)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cap"
        unit = _write(path, container, [f for f, _ in pairs])
        cap = ic.read_pcap(path)
    icmp = cap.icmp.with_columns(pl.col(pl.Categorical).cast(pl.String))
    got = icmp.select("src", "dst", "icmp_id", "icmp_seq", "payload_len").rows()
    assert got == [want for _, want in pairs]
    ts = icmp["ts"].dt.epoch("ns").to_list()
    assert ts == [f.ts // unit * unit for f, _ in pairs]
    assert icmp["checksum_ok"].all() or not pairs
    st_ = cap.stats.row(0, named=True)
    assert (st_["packets"], st_["icmp"], st_["errors"]) == (len(pairs), len(pairs), 0)


@settings(max_examples=40, deadline=None)
@given(pings.filter(bool), st.sampled_from(["pcap", "pcapng"]), st.floats(0, 1))
def test_truncation_keeps_whole_records(items, container, where) -> None:
    pairs = _frames(items)
    frames = [f for f, _ in pairs]
    data = s.pcap_bytes(frames) if container == "pcap" else s.pcapng_bytes(frames)
    # Record ends: the length of the capture of the first k frames.
    ends = [len(s.pcap_bytes(frames[:k]) if container == "pcap" else s.pcapng_bytes(frames[:k]))
            for k in range(len(frames) + 1)]
    cut = ends[0] + round(where * (len(data) - ends[0]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cut"
        path.write_bytes(data[:cut])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
            cap = ic.read_pcap(path)
    whole = sum(1 for end in ends[1:] if end <= cut)
    assert cap.icmp["icmp_seq"].to_list() == [want[3] for _, want in pairs[:whole]]
    assert cap.stats["cut_short"].item() is (cut not in ends)
