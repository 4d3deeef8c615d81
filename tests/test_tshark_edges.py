"""Malformed input at the edges of the formats: where tshark's reading is followed, it is compared
frame by frame; where ours stands, the case is listed in tests/data/tshark_differences.json
("semantics") with its proof, and both readings are asserted as listed."""
from __future__ import annotations

import json
import struct
import subprocess
import warnings
from pathlib import Path

import pytest

import icmpscope as ic
from icmpscope.synth import Frame, echo_request6, ethernet, ipv4, ipv6, ping, write_pcap

SEMANTICS = json.loads((Path(__file__).parent / "data" / "tshark_differences.json").read_text())["semantics"]
A, B = "10.0.0.1", "10.0.0.2"
C, D = "2001:db8::1", "2001:db8::2"


def _read(path: Path) -> ic.Capture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
        return ic.read_pcap(path)


def _ours(path: Path) -> dict[int, tuple[int, int]]:
    return {f: (t, c) for f, t, c in _read(path).icmp.select("frame", "icmp_type", "icmp_code").iter_rows()}


def _theirs(tshark_icmp, path: Path) -> dict[int, tuple[int, int | None]]:
    """tshark's (type, code) of each frame that shows an ICMP type (code None when absent)."""
    out = {}
    for frame, v in tshark_icmp(path, ["icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code"]).items():
        p = "icmp" if v["icmp.type"] else "icmpv6"
        if v[f"{p}.type"]:
            out[frame] = (int(v[f"{p}.type"]), int(v[f"{p}.code"]) if v[f"{p}.code"] else None)
    return out


def _macsec(tci: int, inner: bytes) -> bytes:
    # SecTAG after the MACsec ethertype: TCI/AN, short length, packet number, the SCI when the
    # SC bit (0x20) says so; then the unencrypted frame's ethertype and an ICV.
    sci = bytes(range(8)) if tci & 0x20 else b""
    return ethernet(struct.pack("!BBI", tci, 0, 1) + sci + b"\x08\x00" + inner + bytes(16), ethertype=0x88E5)


def test_macsec_opens_only_what_is_neither_encrypted_nor_changed(tmp_path: Path, tshark_icmp) -> None:
    """TCI E (0x08) and C (0x04): a payload with either set is not the frame's text."""
    path = write_pcap(tmp_path / "macsec.pcap", [(i, _macsec(tci, ping(A, B))) for i, tci in enumerate((0, 0x04, 0x08, 0x0C, 0x20))])
    assert _ours(path) == _theirs(tshark_icmp, path) == {1: (8, 0), 5: (8, 0)}
    assert _read(path).stats.select("icmp", "other").row(0) == (2, 3)


def test_short_icmp_messages_decode_where_tshark_decodes_them(tmp_path: Path, tshark_icmp) -> None:
    """tshark gives an ICMPv4 message a type from six captured bytes on, an ICMPv6 one from one
    byte (the one-byte case is listed, see below); we follow it from two bytes on."""
    frames = [ipv4(A, B, bytes([t, 0, *bytes(n - 2)]) if n >= 2 else bytes([t])) for t in (8, 3, 13) for n in range(1, 10)]
    frames += [ipv6(C, D, bytes([t, 0, *bytes(n - 2)]), next_header=58) for t in (128, 1, 135) for n in range(2, 10)]
    path = write_pcap(tmp_path / "short.pcap", [(i, ethernet(p)) for i, p in enumerate(frames)])
    ours = _ours(path)
    assert ours == _theirs(tshark_icmp, path)
    assert len(ours) == 3 * 4 + 3 * 8  # ICMPv4 of 6 to 9 bytes, ICMPv6 of 2 to 9
    cap = _read(path)
    assert cap.stats.select("icmp", "undecodable").row(0) == (36, 15)
    assert cap.errors.filter(kind="truncated").height == 15


def _record(ts: int, incl: int, orig: int) -> bytes:
    return struct.pack("<IIII", ts, 0, incl, orig)


@pytest.mark.parametrize("incl, have", [(200, 60), (80_000, 100), (80_000, 70_000), (300_000, 100)],
                         ids=["past_eof", "over_snaplen_past_eof", "over_snaplen_cut_in_its_tail", "over_max_past_eof"])
def test_a_last_record_cut_short_counts_as_tshark_counts_it(tmp_path: Path, tshark: str, incl: int, have: int) -> None:
    """A last record that runs past the end of the file (its length over the snaplen, or over
    262144, or neither): tshark and libpcap count the records before it, and so do we, with an
    errors row for it."""
    frame = ethernet(ping(A, B))
    whole = write_pcap(tmp_path / "one.pcap", [(1_000_000_000, frame)], snaplen=65535).read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(whole + _record(2, incl, incl) + (frame * (have // len(frame) + 1))[:have])
    done = subprocess.run([tshark, "-n", "-r", str(path), "-T", "fields", "-e", "frame.number"], capture_output=True, text=True, check=False)
    cap = _read(path)
    assert cap.stats["packets"][0] == len(done.stdout.split()) == 1
    assert cap.errors["kind"].to_list() == ["record_too_long" if incl > 262144 else "cut_short"]


def _zero_payload_length(frame: bytes) -> bytes:
    return frame[:18] + b"\x00\x00" + frame[20:]  # IPv6 payload length, after the 14-byte Ethernet header


def _ipnet(packet: bytes) -> bytes:
    return struct.pack("!BBBBIII", 1, 26, 0, 0, len(packet), 0, 0) + bytes(8) + packet


_PING6 = ping(C, D)
CASES = {
    # name: (frame, link type, captured bytes, tshark's (type, code) or None, our (type, code, checksum_ok) or None)
    "icmpv6_one_byte": (ethernet(ipv6(C, D, b"\x80", next_header=58)), 1, None, (128, None), None),
    "ipv6_payload_length_zero": (_zero_payload_length(ethernet(ipv6(C, D, echo_request6(1, 1, b"abcd", src=C, dst=D), next_header=58))),
                                 1, None, None, (128, 0, True)),
    "ipnet_cut_frame": (_ipnet(_PING6), 226, 24 + len(_PING6) - 4, None, (128, 0, False)),
}


def test_listed_differences_are_the_cases_here() -> None:
    assert set(SEMANTICS) - {"_comment"} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_listed_difference_stands_as_listed(name: str, tmp_path: Path, tshark_icmp) -> None:
    data, linktype, captured, theirs, ours = CASES[name]
    frame = Frame(1, data[:captured], orig_len=len(data), linktype=linktype)
    path = write_pcap(tmp_path / f"{name}.pcap", [frame])
    assert _theirs(tshark_icmp, path) == ({1: theirs} if theirs else {})
    cap = _read(path)
    assert cap.icmp.select("icmp_type", "icmp_code", "checksum_ok").rows() == ([ours] if ours else [])
    if not ours:
        assert (cap.stats["undecodable"][0], cap.errors.select("kind", "reason").rows()) == (
            1, [("truncated", "ICMP header truncated: 1 of 2 bytes captured")])
