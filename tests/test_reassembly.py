"""Fragment reassembly: exact rows of icmp, fragments, datagrams and stats for crafted fragment
sets, and the same datagrams as tshark (which frame completes one, its reassembled length) on
the crafted captures and on every capture of the corpus with fragments."""
from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
import icmpscope.synth as synth

DIFFERENCES = json.loads((Path(__file__).parent / "data" / "tshark_differences.json").read_text())["reassembly"]
from conftest import CAPTURES  # noqa: E402

MANIFEST = CAPTURES / "manifest.json"
ENTRIES = json.loads(MANIFEST.read_text())["files"] if MANIFEST.exists() else []
FRAGMENTED = [e for e in ENTRIES if e["ipv4_fragments"] or e["ipv6_fragments"] or e["reassembled_ipv4"] or e["reassembled_ipv6"]]

A, B, E = "192.0.2.1", "192.0.2.2", "192.0.2.3"
P, Q = "10.0.0.1", "10.0.0.2"
C, D = "2001:db8::1", "2001:db8::2"
T0 = 1_700_000_000 * 10**9
MS, S = 10**6, 10**9
MSG = synth.echo_request(0x1234, 7, bytes(range(256)) * 4)  # 1032 bytes: fragments of 400, 400, 232
MSG2 = synth.echo_request(0x4321, 9, bytes(reversed(range(256))) * 4)
MSG6 = synth.echo_request6(5, 9, bytes(range(200)) * 5, src=C, dst=D)  # 1008 bytes
# A destination-options header (next header ICMPv6, 8 bytes, one PadN option).
DEST_OPTS = bytes([58, 0, 1, 4, 0, 0, 0, 0])

ICMP = ("frame", "src", "icmp_type", "icmp_id", "icmp_seq", "checksum_ok", "payload_len", "datagram_len", "reassembled")
FRAGMENTS = ("frame", "src", "proto", "frag_id", "offset", "length", "more_fragments", "tiny_first", "atomic")
DATAGRAMS = ("src", "proto", "frag_id", "first_frame", "last_frame", "fragments", "header_len", "total_len",
             "complete", "overlap_bytes", "conflicting_overlap", "oversize", "timed_out", "evicted")
STATS = ("packets", "icmp", "fragment", "other", "reassembled", "reassembly_evictions", "reassembly_timeouts")


def frag4(offset: int, data: bytes, more: bool, *, ident: int = 42, src: str = A, proto: int = 1) -> bytes:
    """One IPv4 fragment carrying ``data`` at ``offset``."""
    return synth.fragment_ipv4_payload(src, B, data, proto=proto, ident=ident, size=max(8, -(-len(data) // 8) * 8),
                                       offset=offset, more=more)[0]


def split(msg: bytes = MSG, size: int = 400, *, src: str = A, dst: str = B, ident: int = 42) -> list[bytes]:
    return synth.fragment_ipv4_payload(src, dst, msg, ident=ident, size=size)


def eth(packets: list[bytes], step: int = MS, **kw) -> list[tuple[int, bytes]]:
    """Ethernet frames ``step`` ns apart."""
    return [(i * step, synth.ethernet(p, **kw)) for i, p in enumerate(packets)]


def write(tmp_path: Path, frames: list[tuple[int, bytes]], name: str = "cap.pcap", **writer) -> Path:
    return synth.write_pcap(tmp_path / name, [(T0 + at, data) for at, data in sorted(frames, key=lambda f: f[0])], **writer)


def read(path: Path, **options) -> ic.Capture:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return ic.read_pcap(path, **options)


def rows(cap: ic.Capture, table: str, columns: tuple[str, ...]) -> list[tuple]:
    df = getattr(cap, table)
    return df.select(pl.col(c).cast(pl.String) if df.schema[c] == pl.Categorical else pl.col(c) for c in columns).rows()


# --------------------------------------------------------------------------- crafted fragment sets
# Each builds the frames of one capture; the tests below assert their rows exactly, and
# test_crafted_equal_tshark checks tshark reassembles them the same way.

def in_order():
    return eth(split())


def reverse():
    return eth(split()[::-1])


def shuffled():
    f = split(size=200)  # offsets 0, 200, ..., 1000 (32 bytes)
    return eth([f[i] for i in (3, 0, 5, 1, 4, 2)])


def duplicate():
    f = split()
    return eth([f[0], f[1], f[1], f[2]])


def duplicate_after_completion():
    f = split()
    return eth([f[0], f[1], f[2], f[2]])


def identical_overlap():
    return eth([frag4(0, MSG[:600], True), frag4(400, MSG[400:], False)])


def conflicting_overlap_lower_offset_wins():
    # The garbage arrives first, but the real bytes start earlier: they win (checksum good).
    return eth([frag4(200, b"\xee" * 200, True), frag4(0, MSG[:400], True), frag4(400, MSG[400:], False)])


def conflicting_overlap_late_garbage_wins():
    # The real bytes arrive first, but the garbage starts earlier: it wins (checksum bad).
    return eth([frag4(200, MSG[200:400], True), frag4(0, MSG[:200] + b"\xee" * 200, True), frag4(400, MSG[400:], False)])


def first_tail_wins():
    # The first tail says 1032 bytes; a later one claiming 800 is ignored.
    return eth([frag4(800, MSG[800:], False), frag4(400, MSG[400:800], False), frag4(0, MSG[:400], True)])


def zero_length_tail_ignored():
    return eth([frag4(0, MSG[:800], True), frag4(800, b"", False), frag4(800, MSG[800:], False)])


def missing_middle():
    f = split()
    return eth([f[0], f[2]])


def missing_last():
    return eth(split()[:2])


PING_OF_DEATH = synth.echo_request(1, 1, bytes(65510))  # 65518 bytes: a 65538-byte datagram


def ping_of_death():
    return eth(split(PING_OF_DEATH, size=1480, ident=666))


def ipv6_with_extension_headers():
    unfragmentable = [synth.hop_by_hop(), synth.routing(["2001:db8::99"], segments_left=0)]  # 8 + 24 bytes
    return eth(synth.fragment_ipv6_payload(C, D, DEST_OPTS + MSG6, next_header=60, ident=0xABCDEF, size=504,
                                           ext_headers=unfragmentable))


def interleaved_same_id():
    d1, d2 = split(src=A), split(MSG2, src=E)
    udp = synth.udp(1000, 53, bytes(1000), src=A, dst=B)
    d3 = synth.fragment_ipv4_payload(A, B, udp, proto=17, ident=42, size=400)
    return eth([p for trio in zip(d1, d2, d3) for p in trio])


def same_id_on_two_vlans():
    # Private addresses: Wireshark keys on the VLAN only for those (we always do).
    v10, v20 = split(src=P, dst=Q), split(MSG2, src=P, dst=Q)
    frames = [(2 * i * MS, synth.ethernet(p, vlans=[10])) for i, p in enumerate(v10)]
    return frames + [((2 * i + 1) * MS, synth.ethernet(p, vlans=[20])) for i, p in enumerate(v20)]


CRAFTED = {f.__name__: f for f in (
    in_order, reverse, shuffled, duplicate, duplicate_after_completion, identical_overlap,
    conflicting_overlap_lower_offset_wins, conflicting_overlap_late_garbage_wins, first_tail_wins,
    zero_length_tail_ignored, missing_middle, missing_last, ping_of_death, ipv6_with_extension_headers,
    interleaved_same_id, same_id_on_two_vlans,
)}


def fragment_rows(frames, *, ident=42, src=A, proto=1):
    """The expected fragments rows of IPv4 fragments of MSG sent as ``frames``: (frame, offset, length, more)."""
    return [(n, src, proto, ident, off, length, more, False, False) for n, off, length, more in frames]


def test_in_order(tmp_path):
    cap = read(write(tmp_path, in_order()))
    assert rows(cap, "icmp", ICMP) == [(3, A, 8, 0x1234, 7, True, 1024, 1052, True)]
    assert rows(cap, "fragments", FRAGMENTS) == fragment_rows([(1, 0, 400, True), (2, 400, 400, True), (3, 800, 232, False)])
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 42, 1, 3, 3, 20, 1052, True, 0, False, False, False, False)]
    assert rows(cap, "stats", STATS) == [(3, 1, 2, 0, 1, 0, 0)]


@pytest.mark.parametrize("build", [reverse, shuffled])
def test_any_order_completes_with_the_last_arrival(tmp_path, build):
    frames = build()
    cap = read(write(tmp_path, frames))
    n = len(frames)
    assert rows(cap, "icmp", ICMP) == [(n, A, 8, 0x1234, 7, True, 1024, 1052, True)]
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 42, 1, n, n, 20, 1052, True, 0, False, False, False, False)]
    assert rows(cap, "stats", STATS) == [(n, 1, n - 1, 0, 1, 0, 0)]


def test_duplicate_is_overlap_without_conflict(tmp_path):
    cap = read(write(tmp_path, duplicate()))
    assert rows(cap, "icmp", ICMP) == [(4, A, 8, 0x1234, 7, True, 1024, 1052, True)]
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 42, 1, 4, 4, 20, 1052, True, 400, False, False, False, False)]
    assert rows(cap, "stats", STATS) == [(4, 1, 3, 0, 1, 0, 0)]


def test_duplicate_after_completion_starts_a_new_datagram(tmp_path):
    # As Wireshark: a completed datagram leaves the table, the late copy opens another.
    cap = read(write(tmp_path, duplicate_after_completion()))
    assert rows(cap, "icmp", ICMP) == [(3, A, 8, 0x1234, 7, True, 1024, 1052, True)]
    assert rows(cap, "datagrams", DATAGRAMS) == [
        (A, 1, 42, 1, 3, 3, 20, 1052, True, 0, False, False, False, False),
        (A, 1, 42, 4, 4, 1, 20, 1052, False, 0, False, False, False, False),
    ]


def test_identical_overlap(tmp_path):
    cap = read(write(tmp_path, identical_overlap()))
    assert rows(cap, "icmp", ICMP) == [(2, A, 8, 0x1234, 7, True, 1024, 1052, True)]
    assert rows(cap, "fragments", FRAGMENTS) == fragment_rows([(1, 0, 600, True), (2, 400, 632, False)])
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 42, 1, 2, 2, 20, 1052, True, 200, False, False, False, False)]


@pytest.mark.parametrize(("build", "checksum_ok"), [
    (conflicting_overlap_lower_offset_wins, True),
    (conflicting_overlap_late_garbage_wins, False),
])
def test_conflicting_overlap_lowest_offset_wins(tmp_path, build, checksum_ok):
    cap = read(write(tmp_path, build()))
    assert rows(cap, "icmp", ICMP) == [(3, A, 8, 0x1234, 7, checksum_ok, 1024, 1052, True)]
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 42, 1, 3, 3, 20, 1052, True, 200, True, False, False, False)]


def test_first_tail_sets_the_length(tmp_path):
    cap = read(write(tmp_path, first_tail_wins()))
    assert rows(cap, "icmp", ICMP) == [(3, A, 8, 0x1234, 7, True, 1024, 1052, True)]
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 42, 1, 3, 3, 20, 1052, True, 0, False, False, False, False)]


def test_zero_length_fragment_is_evidence_only(tmp_path):
    cap = read(write(tmp_path, zero_length_tail_ignored()))
    assert rows(cap, "icmp", ICMP) == [(3, A, 8, 0x1234, 7, True, 1024, 1052, True)]
    assert rows(cap, "fragments", FRAGMENTS) == fragment_rows([(1, 0, 800, True), (2, 800, 0, False), (3, 800, 232, False)])
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 42, 1, 3, 3, 20, 1052, True, 0, False, False, False, False)]


@pytest.mark.parametrize(("build", "total_len"), [(missing_middle, 1052), (missing_last, 820)])
def test_missing_fragment_leaves_an_incomplete_datagram(tmp_path, build, total_len):
    cap = read(write(tmp_path, build()))
    assert cap.icmp.height == 0
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 42, 1, 2, 2, 20, total_len, False, 0, False, False, False, False)]
    assert rows(cap, "stats", STATS) == [(2, 0, 2, 0, 0, 0, 0)]


def test_ping_of_death_is_reassembled_and_flagged(tmp_path):
    cap = read(write(tmp_path, ping_of_death()))
    assert rows(cap, "icmp", ICMP) == [(45, A, 8, 1, 1, True, 65510, 65538, True)]
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 666, 1, 45, 45, 20, 65538, True, 0, False, True, False, False)]
    last = rows(cap, "fragments", FRAGMENTS)[-1]
    assert last == (45, A, 1, 666, 65120, 398, False, False, False)


def test_ping_of_death_in_a_snaplen_capture_is_still_oversize(tmp_path):
    # Fragments cut by the snap length carry no bytes, but their declared extent is evidence.
    cap = read(write(tmp_path, ping_of_death(), snaplen=200))
    assert cap.icmp.height == 0
    assert rows(cap, "datagrams", DATAGRAMS) == [(A, 1, 666, 1, 45, 45, 20, 65538, False, 0, False, True, False, False)]


def test_ipv6_extension_headers_before_and_after_the_fragment_header(tmp_path):
    cap = read(write(tmp_path, ipv6_with_extension_headers()))
    # 40 + hop-by-hop 8 + routing 24 in front; destination options 8 + ICMPv6 1008 reassembled.
    assert rows(cap, "icmp", ("ip_version", *ICMP)) == [(6, 3, C, 128, 5, 9, True, 1000, 1088, True)]
    assert rows(cap, "fragments", FRAGMENTS) == [
        (1, C, 60, 0xABCDEF, 0, 504, True, False, False),
        (2, C, 60, 0xABCDEF, 504, 504, True, False, False),
        (3, C, 60, 0xABCDEF, 1008, 8, False, False, False),
    ]
    assert rows(cap, "datagrams", DATAGRAMS) == [(C, 60, 0xABCDEF, 1, 3, 3, 72, 1088, True, 0, False, False, False, False)]


def test_same_id_from_different_sources_and_protocols_stays_apart(tmp_path):
    cap = read(write(tmp_path, interleaved_same_id()))
    assert rows(cap, "icmp", ICMP) == [
        (7, A, 8, 0x1234, 7, True, 1024, 1052, True),
        (8, E, 8, 0x4321, 9, True, 1024, 1052, True),
    ]
    assert rows(cap, "datagrams", DATAGRAMS) == [
        (A, 1, 42, 1, 7, 3, 20, 1052, True, 0, False, False, False, False),
        (E, 1, 42, 2, 8, 3, 20, 1052, True, 0, False, False, False, False),
        (A, 17, 42, 3, 9, 3, 20, 1028, True, 0, False, False, False, False),
    ]
    assert rows(cap, "stats", STATS) == [(9, 2, 7, 0, 3, 0, 0)]


def test_same_id_on_two_vlans_stays_apart(tmp_path):
    cap = read(write(tmp_path, same_id_on_two_vlans()))
    assert rows(cap, "icmp", ("vlan", *ICMP)) == [
        (10, 5, P, 8, 0x1234, 7, True, 1024, 1052, True),
        (20, 6, P, 8, 0x4321, 9, True, 1024, 1052, True),
    ]
    assert cap.datagrams["overlap_bytes"].to_list() == [0, 0]


# --------------------------------------------------------------------------- tiny and atomic fragments

TCP_SEGMENT = synth.tcp(1234, 80, bytes(40), src=A, dst=B)
UDP_DATAGRAM = synth.udp(1234, 53, bytes(40), src=A, dst=B)


@pytest.mark.parametrize(("first", "tiny"), [
    pytest.param(synth.ipv4(A, B, MSG[:4], ident=9, mf=True), True, id="icmp-4"),
    pytest.param(frag4(0, MSG[:8], True, ident=9), False, id="icmp-8"),
    pytest.param(frag4(0, TCP_SEGMENT[:8], True, ident=9, proto=6), True, id="tcp-8"),
    pytest.param(frag4(0, TCP_SEGMENT[:24], True, ident=9, proto=6), False, id="tcp-24"),
    pytest.param(frag4(0, UDP_DATAGRAM[:8], True, ident=9, proto=17), False, id="udp-8"),
    pytest.param(frag4(0, bytes(8), True, ident=9, proto=47), False, id="gre-unjudged"),
    # IPv6: the first fragment must hold the header chain and the upper-layer header (RFC 7112).
    pytest.param(synth.fragment_ipv6_payload(C, D, DEST_OPTS + MSG6, next_header=60, ident=1, size=8, more=True)[0],
                 True, id="v6-chain-without-icmpv6-header"),
    pytest.param(synth.fragment_ipv6_payload(C, D, DEST_OPTS + MSG6, next_header=60, ident=1, size=16, more=True)[0],
                 False, id="v6-chain-and-icmpv6-header"),
    pytest.param(synth.fragment_ipv6_payload(C, D, bytes([60, 0, 1, 4, 0, 0, 0, 0]) + DEST_OPTS + MSG6, next_header=60,
                                             ident=1, size=8, more=True)[0], True, id="v6-chain-cut"),
])
def test_tiny_first_fragment(tmp_path, first, tiny):
    cap = read(write(tmp_path, eth([first])))
    assert cap.fragments["tiny_first"].to_list() == [tiny]
    assert cap.datagrams["complete"].to_list() == [False]


def test_only_first_fragments_are_tiny(tmp_path):
    segment = synth.tcp(1234, 80, bytes(40), src=A, dst=B)
    cap = read(write(tmp_path, eth(synth.fragment_ipv4_payload(A, B, segment, proto=6, ident=3, size=8))))
    assert cap.fragments["tiny_first"].to_list() == [True] + [False] * 7
    assert rows(cap, "datagrams", ("proto", "complete", "total_len")) == [(6, True, 80)]
    assert rows(cap, "stats", STATS) == [(8, 0, 8, 0, 1, 0, 0)]


def test_atomic_fragment_is_a_fragment_row_and_an_ordinary_packet(tmp_path):
    atomic = synth.ipv6(C, D, MSG6, ext_headers=[synth.fragment_header(offset=0, more=False, ident=77)])
    cap = read(write(tmp_path, eth([atomic])))
    assert rows(cap, "icmp", ICMP) == [(1, C, 128, 5, 9, True, 1000, 40 + 8 + 1008, False)]
    assert rows(cap, "fragments", FRAGMENTS) == [(1, C, 58, 77, 0, 1008, False, False, True)]
    assert cap.datagrams.height == 0
    assert rows(cap, "stats", STATS) == [(1, 1, 0, 0, 0, 0, 0)]


# --------------------------------------------------------------------------- timeouts and bounded memory

def test_ipv4_timeout_in_capture_time(tmp_path):
    f = split()
    path = write(tmp_path, [(0, synth.ethernet(f[0])), (10 * S, synth.ethernet(f[1])), (31 * S, synth.ethernet(f[2]))])
    cap = read(path)
    assert cap.icmp.height == 0
    assert rows(cap, "datagrams", DATAGRAMS) == [
        (A, 1, 42, 1, 2, 2, 20, 820, False, 0, False, False, True, False),  # 31 s old when frame 3 came
        (A, 1, 42, 3, 3, 1, 20, 1052, False, 0, False, False, False, False),
    ]
    assert cap.datagrams.select(pl.col("first_ts", "last_ts").dt.epoch("ns")).rows() == [
        (T0, T0 + 10 * S), (T0 + 31 * S, T0 + 31 * S),
    ]
    assert rows(cap, "stats", STATS) == [(3, 0, 3, 0, 0, 0, 1)]
    longer = read(path, reassembly_timeout_v4=40.0)
    assert rows(longer, "icmp", ICMP) == [(3, A, 8, 0x1234, 7, True, 1024, 1052, True)]
    assert rows(longer, "stats", STATS) == [(3, 1, 2, 0, 1, 0, 0)]


def test_ipv6_timeout_is_longer_and_configurable(tmp_path):
    f = synth.fragment_ipv6_payload(C, D, MSG6, ident=8, size=504)
    path = write(tmp_path, [(0, synth.ethernet(f[0])), (45 * S, synth.ethernet(f[1]))])
    assert read(path).icmp["reassembled"].to_list() == [True]  # 45 s is within the default 60 s
    short = read(path, reassembly_timeout_v6=30.0)
    assert short.icmp.height == 0
    assert short.datagrams["timed_out"].to_list() == [True, False]
    assert short.stats["reassembly_timeouts"].to_list() == [1]


@pytest.mark.parametrize(("later", "timed_out"), [(20 * S, False), (45 * S, True)])
def test_incomplete_datagram_times_out_by_the_end_of_the_capture(tmp_path, later, timed_out):
    path = write(tmp_path, [(0, synth.ethernet(split()[0])), (later, synth.ethernet(synth.ping(E, B)))])
    cap = read(path)
    assert rows(cap, "datagrams", ("complete", "timed_out", "evicted")) == [(False, timed_out, False)]
    assert rows(cap, "stats", STATS) == [(2, 1, 1, 0, 0, 0, int(timed_out))]


def test_cap_on_datagrams_in_flight_evicts_the_oldest(tmp_path):
    d = {ident: split(ident=ident) for ident in (1, 2, 3)}
    frames = [d[1][0], d[2][0], d[3][0], *d[2][1:], *d[3][1:], *d[1][1:]]
    cap = read(write(tmp_path, eth(frames)), max_datagrams=2)
    assert rows(cap, "icmp", ("frame", "src", "icmp_type")) == [(5, A, 8), (7, A, 8)]
    assert rows(cap, "datagrams", ("frag_id", "first_frame", "last_frame", "fragments", "complete", "evicted")) == [
        (1, 1, 1, 1, False, True),
        (2, 2, 5, 3, True, False),
        (3, 3, 7, 3, True, False),
        (1, 8, 9, 2, False, False),  # its first fragment went with the eviction
    ]
    assert rows(cap, "stats", STATS) == [(9, 2, 7, 0, 2, 1, 0)]


def test_byte_budget_evicts_the_oldest(tmp_path):
    # Each datagram is charged its bytes plus a fixed 768 (and 32 per run of bytes): two first
    # fragments of 400 bytes fit in 3200, three do not; one datagram on its way to 1032 bytes does.
    d = {ident: split(ident=ident) for ident in (1, 2, 3)}
    frames = [d[1][0], d[2][0], d[3][0], *d[2][1:], *d[3][1:]]
    cap = read(write(tmp_path, eth(frames)), max_reassembly_bytes=3200)
    assert rows(cap, "datagrams", ("frag_id", "complete", "evicted")) == [(1, False, True), (2, True, False), (3, True, False)]
    assert rows(cap, "stats", STATS) == [(7, 2, 5, 0, 2, 1, 0)]


def test_many_distinct_ids_stay_within_the_budget(tmp_path):
    template = synth.ethernet(synth.fragment_ipv6_payload(C, D, MSG6, ident=0, size=64)[0])
    at = 14 + 40 + 4  # the identification field of the fragment header
    frames = [(i * 1000, template[:at] + i.to_bytes(4, "big") + template[at + 4:]) for i in range(20_000)]
    budget = 1 << 20
    cap = read(write(tmp_path, frames), max_reassembly_bytes=budget)
    held = cap.datagrams.filter(~pl.col("evicted"))
    assert cap.datagrams.height == 20_000  # every datagram keeps its row
    assert cap.stats["reassembly_evictions"].to_list() == [20_000 - held.height]
    assert 0 < held.height * (768 + 64 + 32) <= budget


@pytest.mark.parametrize("options", [
    {"reassembly_timeout_v4": 0.0}, {"reassembly_timeout_v6": -1.0}, {"reassembly_timeout_v4": float("nan")},
    {"reassembly_timeout_v6": float("inf")}, {"max_reassembly_bytes": -1}, {"max_datagrams": 0},
    {"max_ext_headers": -1}, {"max_tunnel_depth": -1},
])
@pytest.mark.parametrize("read", [ic.read_pcap, lambda path, **options: ic.scan_pcap(path, **options).collect()],
                         ids=["read_pcap", "scan_pcap"])
def test_bad_decoder_options_raise_the_same_from_read_and_scan(tmp_path, options, read):
    path = write(tmp_path, in_order())
    [(name, value)] = options.items()
    with pytest.raises(ValueError, match=f"^{name} must be"):
        read(path, **options)


# --------------------------------------------------------------------------- against tshark

def _tshark_reassembled(tshark: str, path: Path) -> tuple[dict[int, tuple[int, int]], dict[int, tuple]]:
    """tshark's reassembled datagrams, {frame: (version, payload length)}, and the ICMP message
    each carries, {frame: (type, code, checksum good)}."""
    fields = ["frame.number", "ip.reassembled.length", "ipv6.reassembled.length", "icmp.type", "icmp.code",
              "icmp.checksum.status", "icmpv6.type", "icmpv6.code", "icmpv6.checksum.status"]
    out = subprocess.run([tshark, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=f",
                          *[a for f in fields for a in ("-e", f)]], capture_output=True, text=True, check=False).stdout
    datagrams, messages = {}, {}
    for line in out.splitlines():
        v = dict(zip(fields, line.split("\t")))
        if not (v["ip.reassembled.length"] or v["ipv6.reassembled.length"]):
            continue
        frame = int(v["frame.number"])
        version, length = (4, v["ip.reassembled.length"]) if v["ip.reassembled.length"] else (6, v["ipv6.reassembled.length"])
        datagrams[frame] = (version, int(length))
        p = "icmp" if v["icmp.type"] else "icmpv6" if v["icmpv6.type"] else None
        if p:
            messages[frame] = (int(v[f"{p}.type"]), int(v[f"{p}.code"]), v[f"{p}.checksum.status"] == "1")
    return datagrams, messages


def _ours_reassembled(cap: ic.Capture) -> tuple[dict[int, tuple[int, int]], dict[int, tuple]]:
    complete = cap.datagrams.filter(pl.col("complete"))
    datagrams = {r[0]: (r[1], r[2] - r[3]) for r in complete.select("last_frame", "ip_version", "total_len", "header_len").rows()}
    messages = {r[0]: tuple(r[1:]) for r in cap.icmp.filter(pl.col("reassembled"))
                .select("frame", "icmp_type", "icmp_code", "checksum_ok").rows()}
    return datagrams, messages


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_equal_tshark(tmp_path, tshark, name):
    path = write(tmp_path, CRAFTED[name]())
    assert _ours_reassembled(read(path)) == _tshark_reassembled(tshark, path)


def _corpus_params():
    for entry in FRAGMENTED:
        marks = [pytest.mark.xfail(reason=DIFFERENCES[entry["file"]], strict=True)] if entry["file"] in DIFFERENCES else []
        yield pytest.param(entry, id=entry["file"], marks=marks)


def _read_corpus(path: Path) -> ic.Capture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
        return ic.read_pcap(path)


@pytest.mark.parametrize("entry", list(_corpus_params()))
def test_corpus_reassembly_equals_tshark(entry, captures, tshark):
    """Which frame completes each datagram, its reassembled length and the ICMP message in it."""
    path = captures / entry["file"]
    cap = _read_corpus(path)
    ours, theirs = _ours_reassembled(cap), _tshark_reassembled(tshark, path)
    assert ours == theirs
    stats = cap.stats.row(0, named=True)
    assert stats["reassembled"] == entry["reassembled_ipv4"] + entry["reassembled_ipv6"]
    # A reassembled message's datagram_len is its datagram's total_len.
    totals = dict(cap.datagrams.filter(pl.col("complete")).select("last_frame", "total_len").rows())
    assert all(totals[f] == n for f, n in cap.icmp.filter(pl.col("reassembled")).select("frame", "datagram_len").rows())


LINK_LAYERS = {"eth", "ethertype", "vlan", "ppp", "sll", "null", "raw", "chdlc", "arcnet", "ipnet", "ipoib", "macsec"}


def _outer_fragment_frames(tshark: str, path: Path) -> list[tuple[int, bool]]:
    """(frame, atomic) of every frame whose outermost IP header, right on the link layer, is a
    fragment, by tshark without reassembly. Fragment headers quoted inside ICMP errors are not the
    frame's own; IP behind MPLS and other encapsulations is the tunnels' business."""
    fields = ["frame.number", "frame.protocols", "ip.flags.mf", "ip.frag_offset", "ipv6.fraghdr.offset",
              "ipv6.fraghdr.more"]
    out = subprocess.run([tshark, "-n", "-r", str(path), "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
                          "-T", "fields", "-E", "occurrence=f", *[a for f in fields for a in ("-e", f)]],
                         capture_output=True, text=True, check=False).stdout
    frames = []
    for line in out.splitlines():
        v = dict(zip(fields, line.split("\t")))
        layers = v["frame.protocols"].split(":")
        first = next((i for i, p in enumerate(layers) if p in ("ip", "ipv6")), None)
        if first is None or not LINK_LAYERS.issuperset(layers[:first]):
            continue
        if layers[first] == "ip":
            if v["ip.flags.mf"] in ("1", "True") or v["ip.frag_offset"] not in ("", "0"):
                frames.append((int(v["frame.number"]), False))
            continue
        chain = []
        for p in layers[first + 1:]:
            if not p.startswith("ipv6."):
                break
            chain.append(p)
        if "ipv6.fraghdr" in chain:
            atomic = v["ipv6.fraghdr.offset"] == "0" and v["ipv6.fraghdr.more"] in ("0", "False")
            frames.append((int(v["frame.number"]), atomic))
    return frames


@pytest.mark.parametrize("entry", [pytest.param(e, id=e["file"]) for e in FRAGMENTED])
def test_corpus_fragment_rows_equal_tshark(entry, captures, tshark):
    path = captures / entry["file"]
    fragments = _read_corpus(path).fragments
    if "tunnel" in fragments.columns:
        fragments = fragments.filter(pl.col("tunnel").is_null())
    ours = sorted(fragments.select("frame", "atomic").rows())
    assert ours == _outer_fragment_frames(tshark, path)
