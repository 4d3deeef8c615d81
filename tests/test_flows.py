"""The `flows` table (SPEC "Tables") and the icmp columns that hold errors against it
(`inner_seq`, `inner_flow_seen`): exact values on crafted captures, a sequential read equal to one
in pieces, the limit, and parity with tshark's conversation statistics on the corpus."""
from __future__ import annotations

import json
import re
import subprocess
import warnings
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import icmpscope as ic
from icmpscope import synth as s

T0 = 1_700_000_000_000_000_000
A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"
SYN, ACK, FIN, PSH, RST = 0x02, 0x10, 0x01, 0x08, 0x04


def _quote(packet: bytes) -> bytes:
    header = (packet[0] & 0x0F) * 4 if packet[0] >> 4 == 4 else 40
    return packet[:header + 8]


def tcp4(src: str, dst: str, sport: int, dport: int, *, seq: int, ack: int = 0, flags: int = ACK,
         data: bytes = b"") -> bytes:
    return s.ipv4(src, dst, s.tcp(sport, dport, data, flags=flags, seq=seq, ack=ack, src=src, dst=dst), proto=6)


def udp4(src: str, dst: str, sport: int, dport: int, data: bytes = b"q") -> bytes:
    return s.ipv4(src, dst, s.udp(sport, dport, data, src=src, dst=dst), proto=17)


def conversation() -> list[tuple[int, bytes]]:
    """A TCP connection A:40000 -> B:80 (handshake, 100 bytes each way, FIN from B), DNS from A
    to C twice, a UDP probe of a closed port answered with a port unreachable, the same
    conversation on VLAN 7, an IPv6 TCP SYN, OSPF (another protocol) and errors quoting traffic
    seen before, after and never."""
    syn = tcp4(A, B, 40000, 80, seq=1000, flags=SYN)
    probe = udp4(A, C, 41000, 9999)
    never = tcp4(A, B, 40001, 80, seq=77, flags=SYN)
    frames = [
        syn,
        tcp4(B, A, 80, 40000, seq=5000, ack=1001, flags=SYN | ACK),
        tcp4(A, B, 40000, 80, seq=1001, ack=5001, flags=ACK | PSH, data=bytes(100)),
        tcp4(B, A, 80, 40000, seq=5001, ack=1101, flags=ACK | PSH, data=bytes(100)),
        udp4(A, C, 53000, 53),
        udp4(C, A, 53, 53000, b"answer"),
        probe,
        s.ipv4(C, A, s.dest_unreachable(3, _quote(probe))),          # seen: the probe came first
        s.ipv4(B, A, s.dest_unreachable(3, _quote(never))),          # never seen
        s.ipv4(B, A, s.dest_unreachable(4, _quote(syn), mtu=1400)),  # seen, quotes TCP seq 1000
        tcp4(B, A, 80, 40000, seq=5101, ack=1101, flags=FIN | ACK),
        udp4(A, C, 53000, 53),
        s.ipv6("2001:db8::1", "2001:db8::2", s.tcp(5555, 443, flags=SYN, seq=2**32 - 1, src="2001:db8::1",
                                                     dst="2001:db8::2"), next_header=6),
        s.ipv4(A, B, bytes(24), proto=89),
    ]
    out = [(T0 + i * 1_000_000, s.ethernet(p)) for i, p in enumerate(frames)]
    # The DNS exchange again on VLAN 7: directions of their own.
    out.append((T0 + 20_000_000, s.ethernet(udp4(A, C, 53000, 53), vlans=[7])))
    return out


def read(frames: list[tuple[int, bytes]], tmp_path: Path, **kw) -> ic.Capture:
    return ic.read_pcap(s.write_pcap(tmp_path / "c.pcap", frames, nanosecond=True), **kw)


def test_one_row_per_direction_with_its_sequence_space(tmp_path: Path) -> None:
    frames = conversation()
    cap = read(frames, tmp_path)
    lens = [len(f) for _, f in frames]
    rows = cap.flows.select("ip_version", "src", "dst", "proto", "sport", "dport", "vlan", "packets", "bytes",
                            "tcp_flags", "seq_first", "seq_next", "ack_last").rows()
    assert rows == [
        (4, A, B, 6, 40000, 80, None, 2, lens[0] + lens[2], SYN | ACK | PSH, 1000, 1101, 5001),
        (4, B, A, 6, 80, 40000, None, 3, lens[1] + lens[3] + lens[10], SYN | ACK | PSH | FIN, 5000, 5102, 1101),
        (4, A, C, 17, 53000, 53, None, 2, lens[4] + lens[11], None, None, None, None),
        (4, C, A, 17, 53, 53000, None, 1, lens[5], None, None, None, None),
        (4, A, C, 17, 41000, 9999, None, 1, lens[6], None, None, None, None),
        # the SYN at 2^32 - 1 takes one: the space wraps to 0
        (6, "2001:db8::1", "2001:db8::2", 6, 5555, 443, None, 1, lens[12], SYN, 2**32 - 1, 0, None),
        (4, A, B, 89, None, None, None, 1, lens[13], None, None, None, None),
        (4, A, C, 17, 53000, 53, 7, 1, lens[14], None, None, None, None),
    ]
    assert cap.flows["first_ts"].dt.epoch("ns").to_list()[:2] == [T0, T0 + 1_000_000]
    assert cap.flows["last_ts"].dt.epoch("ns").to_list()[:2] == [T0 + 2_000_000, T0 + 10_000_000]
    assert cap.flows["tunnel"].null_count() == cap.flows.height
    # The errors: the probe was seen, the other connection never; the PMTU message quotes seq 1000.
    errors = cap.icmp.select("inner_proto", "inner_sport", "inner_seq", "inner_flow_seen").rows()
    assert errors == [(17, 41000, None, True), (6, 40001, 77, False), (6, 40000, 1000, True)]
    stats = cap.stats.row(0, named=True)
    assert stats["max_flows_hits"] == 0
    assert stats["other"] == len(frames) - 3


def test_flows_false_skips_the_table(tmp_path: Path) -> None:
    cap = read(conversation(), tmp_path, flows=False)
    assert cap.flows.height == 0
    assert cap.flows.schema == read(conversation(), tmp_path).flows.schema
    assert cap.icmp["inner_flow_seen"].null_count() == cap.icmp.height
    assert cap.icmp["inner_seq"].to_list() == [None, 77, 1000]


def test_an_error_before_its_flow_is_not_seen(tmp_path: Path) -> None:
    probe = udp4(A, C, 41000, 9999)
    frames = [(T0, s.ethernet(s.ipv4(C, A, s.dest_unreachable(3, _quote(probe))))), (T0 + 1, s.ethernet(probe))]
    cap = read(frames, tmp_path)
    assert cap.icmp["inner_flow_seen"].to_list() == [False]
    assert cap.flows.height == 1


def test_scan_streams_the_table_with_projection(tmp_path: Path) -> None:
    path = s.write_pcap(tmp_path / "c.pcap", conversation(), nanosecond=True)
    cap = ic.read_pcap(path)
    assert_frame_equal(ic.scan_pcap(path, "flows").collect(), cap.flows)
    got = ic.scan_pcap(path, "flows").filter(pl.col("proto") == 6).select("sport", "seq_next").collect()
    assert got.rows() == [(40000, 1101), (80, 5102), (5555, 0)]
    assert ic.scan_pcap(path).select("inner_flow_seen").collect()["inner_flow_seen"].to_list() == [True, False, True]
    assert ic.scan_pcap(path, "flows", flows=False).collect().height == 0


def test_the_limit_keeps_the_first_directions_and_counts_the_rest(tmp_path: Path) -> None:
    frames = [(T0 + i, s.ethernet(udp4(A, B, 1000 + i % 50, 53))) for i in range(200)]
    cap = read(frames, tmp_path, max_flows=10)
    assert cap.flows["sport"].to_list() == list(range(1000, 1010))
    assert cap.flows["packets"].to_list() == [4] * 10
    assert cap.stats["max_flows_hits"][0] == 160
    assert cap.errors.select("frame", "kind").rows() == [(11, "flows_limit")]
    assert "max_flows" in cap.errors["reason"][0]
    with pytest.raises(ValueError, match="max_flows"):
        read(frames, tmp_path, max_flows=-1)


def test_pieces_merge_as_one_read(tmp_path: Path) -> None:
    from test_split import repeated  # a capture past 32 MiB, split on two threads

    frames = [s.Frame(ts, data) for ts, data in conversation()]
    path = repeated(frames, tmp_path / "big.pcap")
    for kw in ({}, {"max_flows": 5}):
        one = ic.read_pcap(path, threads=1, progress=False, **kw)
        two = ic.read_pcap(path, threads=2, progress=False, **kw)
        assert two.icmp.n_chunks() == (2 if not kw else 1)
        for table in ("flows", "stats", "errors"):
            assert_frame_equal(one.flows if table == "flows" else getattr(one, table),
                               two.flows if table == "flows" else getattr(two, table))
        assert_frame_equal(one.icmp, two.icmp)
    # Every repetition adds to the same directions; errors quoting the never-seen connection
    # stay unseen, the others are seen in every repetition.
    assert one.flows.height == 5
    full = ic.read_pcap(path, threads=2, progress=False)
    reps = full.stats["packets"][0] // len(frames)
    assert full.flows["packets"][0] == 2 * reps
    assert full.icmp.group_by("inner_sport").agg(pl.col("inner_flow_seen").all()).sort("inner_sport").rows() == [
        (40000, True), (40001, False), (41000, True)]


# --------------------------------------------------------------------------- parity with tshark

_CONV = re.compile(r"^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+(\d+) (bytes|kB|MB)\s+(\d+)\s+(\d+) (bytes|kB|MB)\s")
_UNIT = {"bytes": 1, "kB": 1000, "MB": 1000**2}


def _tshark_conversations(tshark: str, path: Path) -> dict[tuple, tuple[int, int, str]]:
    """(proto, src, sport, dst, dport) -> (frames, bytes shown, unit) of each direction tshark's
    ``-z conv,tcp`` and ``-z conv,udp`` list (-> is from the first endpoint to the second)."""
    done = subprocess.run([tshark, "-n", "-q", "-r", str(path), "-z", "conv,tcp", "-z", "conv,udp"],
                          capture_output=True, text=True, check=False)
    out: dict[tuple, tuple[int, int, str]] = {}
    proto = None
    for line in done.stdout.splitlines():
        if line.startswith(("TCP Conversations", "UDP Conversations")):
            proto = 6 if line.startswith("TCP") else 17
        m = _CONV.match(line)
        if m and proto:
            (a, ap), (b, bp) = m.group(1).rsplit(":", 1), m.group(2).rsplit(":", 1)
            back_frames, back_bytes, back_unit, on_frames, on_bytes, on_unit = m.group(3, 4, 5, 6, 7, 8)
            for key, frames, size, unit in (((proto, a, int(ap), b, int(bp)), on_frames, on_bytes, on_unit),
                                            ((proto, b, int(bp), a, int(ap)), back_frames, back_bytes, back_unit)):
                if int(frames):
                    out[key] = (int(frames), int(size), unit)
    return out


def test_flows_equal_tshark_conversations(captures: Path, tshark: str) -> None:
    manifest = json.loads((captures / "manifest.json").read_text())
    compared = 0
    for entry in manifest["files"]:
        path = captures / entry["file"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cap = ic.read_pcap(path, progress=False)
            except ValueError:
                continue  # not a capture we read (tshark may read more formats)
        if cap.stats["other"].sum() + cap.stats["undecodable"].sum() == 0:
            continue  # ICMP only: no conversation to compare
        ours: Counter = Counter()
        for r in cap.flows.filter(pl.col("proto").is_in([6, 17]) & pl.col("sport").is_not_null()).iter_rows(named=True):
            key = (r["proto"], r["src"], r["sport"], r["dst"], r["dport"])
            ours[key, "frames"] += r["packets"]
            ours[key, "bytes"] += r["bytes"]
        theirs = _tshark_conversations(tshark, path)
        assert set(theirs) == {k for k, _ in ours}, entry["file"]
        for key, (frames, size, unit) in theirs.items():
            # tshark shows sizes from 1000 bytes on in whole kB (MB), rounded down.
            assert (ours[key, "frames"], ours[key, "bytes"] // _UNIT[unit]) == (frames, size), (entry["file"], key)
        compared += bool(theirs)
    assert compared >= 20


def test_inner_seq_equals_tshark(captures: Path, tshark_icmp) -> None:
    """The quoted TCP sequence number, as tshark's absolute tcp.seq inside the ICMP error."""
    checked = 0
    for entry in json.loads((captures / "manifest.json").read_text())["files"]:
        path = captures / entry["file"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cap = ic.read_pcap(path, progress=False)
            except (ValueError, OSError):
                continue
        quoting = cap.icmp.filter(pl.col("inner_proto") == 6)
        if quoting.is_empty():
            continue
        frames = tshark_icmp(path, ["tcp.seq"], ["-o", "tcp.relative_sequence_numbers:FALSE"])
        for frame, seq in quoting.select("frame", "inner_seq").rows():
            want = frames[frame]["all"]["tcp.seq"]
            assert seq == (int(want[-1]) if want else None), (path, frame)
            checked += 1
    assert checked > 0


# --------------------------------------------------------------------------- errors against flows

def test_error_flows_join_each_error_to_the_direction_it_quotes(tmp_path: Path) -> None:
    cap = read(conversation(), tmp_path)
    got = ic.error_flows(cap).select("frame", "icmp_type", "icmp_code", "mtu", "inner_sport", "flow_packets",
                                     "seq_first", "seq_next", "carried_on", "peer_carried_on").rows()
    assert got == [
        (8, 3, 3, None, 41000, 1, None, None, False, None),       # the probe: nothing after it
        (9, 3, 3, None, 40001, None, None, None, None, None),     # a connection never seen
        (10, 3, 4, 1400, 40000, 2, 1000, 1101, False, True),      # A sent nothing more; B did (its FIN)
    ]
    # The icmp table alone with flows= (as from scan_pcap) gives the same.
    path = tmp_path / "c.pcap"
    streamed = ic.error_flows(ic.scan_pcap(path), flows=ic.scan_pcap(path, "flows"))
    assert_frame_equal(streamed, ic.error_flows(cap), categorical_as_str=True)
    assert ic.error_flows(cap.icmp)["flow_packets"].null_count() == 3


def test_forged_errors_judge_the_quoted_sequence_space() -> None:
    from icmpscope.synth import scenarios as sc

    cap = sc.forged_reset().read()
    alert = ic.detect.forged_errors(cap).row(0, named=True)
    assert alert["detail"] == ("3 ICMP error(s) (type/code 3/3) quoting TCP 192.0.2.10:40000 -> 203.0.113.5:443 with "
                               "sequence numbers 123456789..3500000000, outside what that direction sent "
                               "(1000000..1020001, margin 65535 bytes); the connection carried on after them")
    # A window as wide as the guesses reaches them all.
    assert ic.detect.forged_errors(cap, forged_seq_margin=2**31).is_empty()
    # Without flows nothing is judged; given them, the icmp table alone and a LazyFrame alert alike.
    assert ic.detect.forged_errors(cap.icmp).is_empty()
    assert ic.detect.forged_errors(cap.icmp, flows=cap.flows).equals(ic.detect.forged_errors(cap))
    path = sc.forged_reset().write(sc.temp_path("r.pcap"))
    assert ic.detect.forged_errors(ic.scan_pcap(path), flows=ic.scan_pcap(path, "flows")).equals(
        ic.detect.forged_errors(cap))


@pytest.mark.parametrize("name", ["udp_probe_unreachable", "pmtu_shrink", "missed_start"])
def test_genuine_errors_are_not_forged(name: str) -> None:
    from icmpscope.synth import scenarios as sc

    cap = getattr(sc, name)().read()
    assert ic.detect.forged_errors(cap).is_empty()
    assert ic.detect.all(cap).filter(pl.col("kind") == "forged_error").is_empty()
    quoted = ic.error_flows(cap)
    if name == "pmtu_shrink":
        # Both senders carried on after the path-MTU messages, with smaller segments.
        assert quoted["carried_on"].to_list() == [True, True]
        assert quoted["mtu"].to_list() == [1280, 1280]
    if name == "missed_start":
        # The quoted segment came before the first one captured, within the window.
        first = quoted.row(0, named=True)
        assert first["inner_seq"] < first["seq_first"] and first["carried_on"]
        assert quoted["flow_packets"][1] is None


def test_several_files_keep_their_flows_apart(tmp_path: Path) -> None:
    from icmpscope.synth import scenarios as sc

    forged = sc.forged_reset().write(tmp_path / "r.pcap")
    genuine = sc.pmtu_shrink().write(tmp_path / "p.pcap")
    cap = ic.read_pcap([forged, genuine], progress=False)
    alerts = ic.detect.forged_errors(cap)
    assert alerts.select("kind", "frames", "files").rows() == [("forged_error", [17, 20, 23], [str(forged)] * 3)]
    quoted = ic.error_flows(cap)
    assert quoted.select("file", "frame", "carried_on").rows() == [
        (str(forged), 17, True), (str(forged), 20, True), (str(forged), 23, True),
        (str(genuine), 21, True), (str(genuine), 22, True)]
