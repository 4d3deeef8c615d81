"""The link types besides Ethernet: each carries a ping we find, where tshark finds it."""
from __future__ import annotations

import struct
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope.synth import Frame, mpls, null_loopback, ping, write_pcap

A, B = "10.0.0.1", "10.0.0.2"
C, D = "2001:db8::1", "2001:db8::2"
P4, P6 = ping(A, B), ping(C, D)

# name: (link type, frame)
FRAMES = {
    "ppp_address_control": (9, b"\xff\x03\x00\x21" + P4),
    "ppp_bare": (9, b"\x00\x57" + P6),
    "ppp_compressed_protocol": (9, b"\x21" + P4),
    "ppp_hdlc": (50, b"\xff\x03\x00\x21" + P4),
    "ppp_mpls": (9, b"\xff\x03\x02\x81" + mpls(P4, [16])),
    "cisco_hdlc": (104, b"\x0f\x00\x08\x00" + P4),
    "cisco_hdlc_v6": (104, b"\x0f\x00\x86\xdd" + P6),
    "null_little_endian": (0, null_loopback(P4)),
    "null_big_endian": (0, null_loopback(P6, big_endian=True)),
    "loop": (108, null_loopback(P4, big_endian=True)),
    "arcnet_rfc1201": (129, b"\x01\x02\x00\x00\xd4\x00\x00\x00" + P4),
    "arcnet_rfc1051": (129, b"\x01\x02\x00\x00\xf0" + P4),
    "ipnet": (226, struct.pack("!BBBBIII", 1, 26, 0, 0, len(P6), 0, 0) + bytes(8) + P6),
    "ipoib_linux": (242, bytes(40) + b"\x08\x00\x00\x00" + P4),
}


@pytest.mark.parametrize("name", FRAMES)
def test_link_type_carries_ip(name: str, tmp_path: Path, tshark_icmp) -> None:
    linktype, data = FRAMES[name]
    path = write_pcap(tmp_path / f"{name}.pcap", [Frame(0, data, linktype=linktype)])
    cap = ic.read_pcap(path)
    rows = cap.icmp.with_columns(pl.col("src", "dst").cast(pl.String)).select("src", "dst", "tunnel").rows()
    expected = (C, D) if data.endswith(P6) else (A, B)
    assert rows == [(*expected, "mpls" if name == "ppp_mpls" else None)]
    assert [v["carrier"][1:3] for v in tshark_icmp(path).values()] == [expected]
