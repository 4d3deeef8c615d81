"""The link types besides Ethernet: each carries a ping we find, where tshark finds it."""
from __future__ import annotations

import struct
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope.synth import (Frame, atm_rfc1483, avs, enc, frame_relay, ieee80211, mpls, nflog, null_loopback, pflog,
                             ping, ppi, prism, radiotap, slip, write_pcap)

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
    "ieee80211_to_ap": (105, ieee80211(P4)),
    "ieee80211_from_ap_v6": (105, ieee80211(P6, ds=2)),
    "ieee80211_ad_hoc": (105, ieee80211(P4, ds=0)),
    "ieee80211_wds_qos": (105, ieee80211(P6, ds=3, subtype=8)),
    "ieee80211_qos_ht": (105, ieee80211(P4, subtype=8, order=True)),
    "radiotap": (127, radiotap(ieee80211(P4))),
    "ppi": (192, ppi(ieee80211(P6))),
    "prism": (119, prism(ieee80211(P4))),
    "avs": (163, avs(ieee80211(P4))),
    "nflog": (239, nflog(P4)),
    "nflog_v6": (239, nflog(P6)),
    "pflog": (117, pflog(P4)),
    "pflog_v6": (117, pflog(P6)),
    "enc": (109, enc(P4)),
    "enc_v6": (109, enc(P6)),
    "frame_relay": (107, frame_relay(P4)),
    "frame_relay_v6": (107, frame_relay(P6)),
    "frame_relay_snap": (107, frame_relay(P4, snap=True)),
    "atm_rfc1483": (100, atm_rfc1483(P4)),
    "atm_rfc1483_dlt11": (11, atm_rfc1483(P6)),
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


@pytest.mark.parametrize("name", [n for n, (linktype, _) in FRAMES.items() if linktype not in (9, 0)])
def test_every_cut_is_counted(name: str, tmp_path: Path) -> None:
    linktype, data = FRAMES[name]
    frames = [Frame(i, data[:keep], orig_len=len(data), linktype=linktype) for i, keep in enumerate(range(len(data) + 1))]
    path = write_pcap(tmp_path / "cuts.pcap", frames)
    cap = ic.read_pcap(path)
    s = cap.stats.row(0, named=True)
    assert s["packets"] == len(frames) == s["icmp"] + s["fragment"] + s["other"] + s["undecodable"]
    assert s["undecodable"] == cap.errors.height


@pytest.mark.parametrize("name", [n for n in FRAMES if n != "ipnet"])  # ipnet: a listed difference, ipnet_cut_frame
def test_every_cut_gives_a_row_where_tshark_shows_icmp(name: str, tmp_path: Path, tshark_icmp) -> None:
    """A frame cut at every byte: a row exactly for the cuts in which tshark still finds an ICMP
    type (cut in the link or IP header: none; cut in the message: the row, unverified)."""
    linktype, data = FRAMES[name]
    frames = [Frame(i, data[:keep], orig_len=len(data), linktype=linktype) for i, keep in enumerate(range(len(data) + 1))]
    path = write_pcap(tmp_path / "cuts.pcap", frames)
    # With a code: tshark's one-byte ICMPv6 message (a type alone) is a listed difference
    # (tshark_differences.json, "semantics": icmpv6_one_byte).
    theirs = {f for f, v in tshark_icmp(path, ["icmp.code", "icmpv6.code"]).items() if v["icmp.code"] or v["icmpv6.code"]}
    assert set(ic.read_pcap(path).icmp["frame"]) == theirs
    assert theirs  # the whole frame at least


def test_ieee80211_addresses_follow_the_ds_bits(tmp_path: Path) -> None:
    sta, ap, peer = "02:00:00:00:00:01", "02:00:00:00:00:aa", "02:00:00:00:00:02"
    frames = [Frame(0, ieee80211(P4, ds=ds, src_mac=sta, dst_mac=peer, bssid=ap), linktype=105) for ds in range(4)]
    cap = ic.read_pcap(write_pcap(tmp_path / "wlan.pcap", frames))
    assert cap.icmp.select("src_mac", "dst_mac").rows() == [(sta, peer)] * 4


def test_frames_without_readable_ip_are_other_as_tshark_shows_them(tmp_path: Path, tshark_icmp) -> None:
    beacon = b"\x80\x00" + bytes(22) + bytes(12)
    frames = [Frame(0, ieee80211(P4, protected=True), linktype=105), Frame(1, beacon, linktype=105)]
    path = write_pcap(tmp_path / "opaque.pcap", frames)
    cap = ic.read_pcap(path)
    assert cap.stats.select("packets", "icmp", "other", "undecodable").row(0) == (2, 0, 2, 0)
    assert tshark_icmp(path) == {}


def test_slip_stays_unsupported_as_tshark_leaves_it(tmp_path: Path, tshark_icmp) -> None:
    # tshark 4.0 shows libpcap's SLIP (link type 8) as "Data": no dissector, so no ICMP either.
    path = write_pcap(tmp_path / "slip.pcap", [Frame(0, slip(P4), linktype=8)])
    cap = ic.read_pcap(path)
    assert cap.stats.select("icmp", "undecodable").row(0) == (0, 1)
    assert cap.errors.select("kind", "reason").rows() == [("unsupported_link_type", "link type 8 is not supported")]
    assert tshark_icmp(path) == {}
