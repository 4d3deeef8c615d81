"""The link types besides Ethernet: each carries a ping we find, where tshark finds it."""
from __future__ import annotations

import ipaddress
import struct
import zlib
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope.synth import (Frame, atm_rfc1483, avs, echo_request6, enc, ethernet, frame_relay, hop_by_hop, ieee80211,
                             ieee802154, ieee802154_nonask_phy, ieee802154_tap, ipv6, lowpan_fragments, lowpan_iid,
                             lowpan_iphc, lowpan_uncompressed, mpls, nflog, null_loopback, pflog, ping, ppi, prism,
                             radiotap, slip, write_pcap, write_pcapng)

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


# --------------------------------------------------------------------------- IEEE 802.15.4 / 6LoWPAN

S64, D64 = "00:12:4b:00:00:00:00:01", "00:12:4b:00:00:00:00:02"


def link_local(link: str | int) -> str:
    """The link-local address 6LoWPAN derives from an 802.15.4 address."""
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + lowpan_iid(link)))


LS, LD = link_local(S64), link_local(D64)
HBH = ipv6(LS, LD, echo_request6(7, 9, b"lowpan", src=LS, dst=LD), ext_headers=[hop_by_hop(bytes([0x63, 4, 0, 0, 0, 0]))])


def wpan(payload: bytes, **kw) -> bytes:
    return ieee802154(payload, **{"src": S64, "dst": D64, **kw})


# name: (link type, frame, (src, dst, hop limit, checksum_ok)): checksums are bad where the
# addresses came from an unknown context (its prefix reads as zeros, as in tshark).
LOWPAN = {
    "iphc_from_extended_addresses": (195, wpan(lowpan_iphc(ping(LS, LD))), (LS, LD, 64, True)),
    "iphc_from_short_addresses": (195, wpan(lowpan_iphc(ping(link_local(1), link_local(0xbeef))), src=1, dst=0xbeef),
                                  ("fe80::ff:fe00:1", "fe80::ff:fe00:beef", 64, True)),
    "iphc_all_inline": (230, wpan(lowpan_iphc(ipv6(C, D, echo_request6(1, 2, b"x", src=C, dst=D), hop_limit=7,
                                                   traffic_class=0xB9, flow_label=0x12345), tf=0, sam=0, dam=0), fcs=False),
                        (C, D, 7, True)),
    "iphc_16_and_64_bit_addresses": (195, wpan(lowpan_iphc(ping("fe80::ff:fe00:abcd", "fe80::1:2:3:4", ttl=1), tf=1, sam=2, dam=1)),
                                     ("fe80::ff:fe00:abcd", "fe80::1:2:3:4", 1, True)),
    "iphc_multicast_8_bits": (195, wpan(lowpan_iphc(ping(LS, "ff02::1", ttl=255), tf=2)), (LS, "ff02::1", 255, True)),
    "iphc_multicast_32_bits": (195, wpan(lowpan_iphc(ping(LS, "ff05::1:3"), dam=2)), (LS, "ff05::1:3", 64, True)),
    "iphc_multicast_48_bits": (195, wpan(lowpan_iphc(ping(LS, "ff05::12:3456:789a"), dam=1)), (LS, "ff05::12:3456:789a", 64, True)),
    "iphc_context_prefixes": (195, wpan(lowpan_iphc(ping(C, D), sac=True, dac=True, sam=1, dam=1)), ("::1", "::2", 64, False)),
    "iphc_context_from_link": (195, wpan(lowpan_iphc(ping(C, D), sac=True, dac=True, cid=0x12)), ("::212:4b00:0:1", "::212:4b00:0:2", 64, False)),
    "iphc_unspecified_source": (195, wpan(lowpan_iphc(ping("::", "ff02::1"), sac=True, sam=0)), ("::", "ff02::1", 64, True)),
    "iphc_unicast_prefix_multicast": (195, wpan(lowpan_iphc(ping(LS, "ff3e:40:2001:db8::1234"), dac=True, dam=0)), (LS, "ff3e::1234", 64, False)),
    "iphc_hop_by_hop_nhc": (195, wpan(lowpan_iphc(HBH, nhc_ext=True)), (LS, LD, 64, True)),
    "uncompressed_ipv6": (195, wpan(lowpan_uncompressed(P6)), (C, D, 64, True)),
    "mesh_and_broadcast_headers": (195, wpan(b"\xb3\x00\x05\x00\x06\x50\x01" + lowpan_iphc(ping(link_local(5), link_local(6))), src=9, dst=10),
                                   ("fe80::ff:fe00:5", "fe80::ff:fe00:6", 64, True)),
    "frame_2006_without_pan_compression": (195, wpan(lowpan_iphc(ping(LS, LD)), src_pan=0x1111), (LS, LD, 64, True)),
    "frame_2003": (195, wpan(lowpan_iphc(ping(LS, LD)), version=0), (LS, LD, 64, True)),
    "frame_2015_seq_suppressed_ies": (195, wpan(lowpan_iphc(ping(LS, LD)), version=2, seq=None, ies=struct.pack("<HBH", 0x1A << 7 | 1, 0, 0x7F << 7)),
                                      (LS, LD, 64, True)),
    "frame_2015_short_addresses_two_pans": (195, wpan(lowpan_iphc(ping(link_local(1), link_local(2))), version=2, src=1, dst=2, src_pan=7),
                                            ("fe80::ff:fe00:1", "fe80::ff:fe00:2", 64, True)),
    "source_address_none": (195, wpan(lowpan_iphc(ping(link_local(0), "ff02::1")), src=None, dst=None),
                            ("fe80::ff:fe00:0", "ff02::1", 64, True)),
    "nonask_phy": (215, ieee802154_nonask_phy(wpan(lowpan_iphc(ping(LS, LD)))), (LS, LD, 64, True)),
    "tap_fcs_16": (283, ieee802154_tap(wpan(lowpan_iphc(ping(LS, LD)))), (LS, LD, 64, True)),
    "tap_fcs_32": (283, ieee802154_tap((lambda f: f + struct.pack("<I", zlib.crc32(f)))(wpan(lowpan_iphc(ping(LS, LD)), fcs=False)), fcs_type=2),
                   (LS, LD, 64, True)),
    "tap_without_fcs": (283, ieee802154_tap(wpan(lowpan_iphc(ping(LS, LD)), fcs=False), fcs_type=0), (LS, LD, 64, True)),
    # RFC 7973 over Ethernet; tshark derives the identifiers from the MACs without the U/L flip.
    "ethernet_rfc7973": (1, ethernet(lowpan_iphc(ping("fe80::200:ff:fe00:1", "fe80::200:ff:fe00:2")), ethertype=0xA0ED),
                         ("fe80::200:ff:fe00:1", "fe80::200:ff:fe00:2", 64, True)),
}


def lowpan_capture(path: Path, frames: list[tuple[int, bytes]]) -> Path:
    return write_pcapng(path, [Frame(i, data, linktype=lt, interface=sorted({lt for lt, _ in frames}).index(lt))
                               for i, (lt, data) in enumerate(frames)])


def test_lowpan_icmpv6_rows_as_tshark_shows_them(tmp_path: Path, tshark_icmp) -> None:
    path = lowpan_capture(tmp_path / "lowpan.pcapng", [(lt, data) for lt, data, _ in LOWPAN.values()])
    cap = ic.read_pcap(path)
    assert cap.stats.select("packets", "icmp", "undecodable").row(0) == (len(LOWPAN), len(LOWPAN), 0)
    rows = cap.icmp.with_columns(pl.col("src", "dst").cast(pl.String)).select("frame", "src", "dst", "ttl", "checksum_ok").rows()
    assert {name: row[1:] for name, row in zip(LOWPAN, rows)} == {name: want for name, (_, _, want) in LOWPAN.items()}
    shark = tshark_icmp(path, ["icmpv6.checksum.status"])
    assert {f: (v["carrier"][1:], v["icmpv6.checksum.status"] == "1") for f, v in shark.items()} == {
        f: ((src, dst, ttl), ok) for f, (src, dst, ttl, ok) in zip(range(1, len(LOWPAN) + 1), (w for _, _, w in LOWPAN.values()))}


def test_lowpan_row_values(tmp_path: Path) -> None:
    frames = [(195, wpan(lowpan_iphc(ping(LS, LD, id=5, seq=6)))), (195, wpan(lowpan_iphc(HBH, nhc_ext=True)))]
    cap = ic.read_pcap(lowpan_capture(tmp_path / "values.pcapng", frames))
    cols = ["ip_version", "icmp_type", "icmp_code", "icmp_id", "icmp_seq", "payload_len", "datagram_len", "src_mac", "dst_mac", "vlan", "tunnel"]
    assert cap.icmp.select(cols).rows() == [(6, 128, 0, 5, 6, 32, 80, None, None, None, None),
                                            (6, 128, 0, 7, 9, 6, 62, None, None, None, None)]
    eth = ic.read_pcap(lowpan_capture(tmp_path / "eth.pcapng", [LOWPAN["ethernet_rfc7973"][:2]]))
    assert eth.icmp.select("src_mac", "dst_mac").rows() == [("02:00:00:00:00:01", "02:00:00:00:00:02")]


@pytest.mark.parametrize("name", [n for n in LOWPAN if n != "ethernet_rfc7973"])
def test_lowpan_every_cut_is_counted(name: str, tmp_path: Path) -> None:
    linktype, data, _ = LOWPAN[name]
    frames = [Frame(i, data[:keep], orig_len=len(data), linktype=linktype) for i, keep in enumerate(range(len(data) + 1))]
    cap = ic.read_pcap(write_pcap(tmp_path / "cuts.pcap", frames))
    s = cap.stats.row(0, named=True)
    assert s["packets"] == len(frames) == s["icmp"] + s["fragment"] + s["other"] + s["undecodable"]
    assert s["undecodable"] == cap.errors.height
    assert set(cap.errors["kind"]) <= {"truncated"}


def test_lowpan_frames_without_readable_ip(tmp_path: Path, tshark_icmp) -> None:
    message = lowpan_iphc(ping(LS, LD))
    frames = [
        (195, wpan(message, security=True)),     # secured: never guessed
        (195, wpan(message, fcs=0x1234)),        # bad FCS: tshark leaves the payload undissected
        (215, ieee802154_nonask_phy(wpan(message, fcs=0x1234))),
        (195, wpan(message, frame_type=0)),      # beacon
        (195, wpan(b"\x42\x00\x00")),            # HC1 (RFC 4944), not decoded
    ]
    path = lowpan_capture(tmp_path / "opaque.pcapng", frames)
    cap = ic.read_pcap(path)
    assert cap.stats.select("packets", "icmp", "other", "undecodable").row(0) == (5, 0, 5, 0)
    assert tshark_icmp(path) == {}


# --------------------------------------------------------------------------- 6LoWPAN fragments

def lowpan_pieces(packet: bytes, *, size: int, tag: int, mesh: bytes = b"") -> list[bytes]:
    """FRAG1 and FRAGNs of ``packet`` (an IPv6 packet between the link's addresses, IPHC-compressed
    to 3 bytes), behind an optional mesh header."""
    return [mesh + p for p in lowpan_fragments(lowpan_iphc(packet), size=size, tag=tag, header_len=3,
                                               datagram_size=len(packet))]


def lowpan_echo(seq: int, length: int) -> bytes:
    return ping(LS, LD, seq=seq, payload=bytes(range(256))[:length])


def lowpan_rows(cap: ic.Capture) -> list[tuple]:
    cols = ["frame", "icmp_type", "icmp_seq", "payload_len", "datagram_len", "reassembled", "tunnel", "checksum_ok"]
    return cap.icmp.select(cols).rows()


def shark_rows(shark: dict[int, dict]) -> list[tuple]:
    """(frame, type, code) of each ICMPv6 message tshark shows."""
    return [(f, int(v["icmpv6.type"]), int(v["icmpv6.code"])) for f, v in sorted(shark.items())]


def test_lowpan_fragments_reassemble_where_tshark_does(tmp_path: Path, tshark_icmp) -> None:
    two = lowpan_pieces(lowpan_echo(1, 60), size=48, tag=1)
    three = lowpan_pieces(lowpan_echo(2, 100), size=48, tag=2)
    backwards = lowpan_pieces(lowpan_echo(3, 100), size=48, tag=3)[::-1]
    # Another datagram's pieces in between, and a whole packet.
    mixed = lowpan_pieces(lowpan_echo(4, 100), size=48, tag=4)
    other = lowpan_pieces(lowpan_echo(5, 60), size=48, tag=5)
    interleaved = [mixed[0], other[0], mixed[2], lowpan_iphc(lowpan_echo(6, 8)), other[1], mixed[1]]
    assert (len(two), len(three)) == (2, 3)
    frames = [*two, *three, *backwards, *interleaved]
    path = lowpan_capture(tmp_path / "frags.pcapng", [(195, wpan(f)) for f in frames])
    cap = ic.read_pcap(path)
    assert cap.stats.select("packets", "icmp", "fragment", "other", "undecodable", "reassembled").row(0) == (14, 6, 8, 0, 0, 5)
    assert lowpan_rows(cap) == [
        (2, 128, 1, 60, 108, True, None, True),
        (5, 128, 2, 100, 148, True, None, True),
        (8, 128, 3, 100, 148, True, None, True),
        (12, 128, 6, 8, 56, False, None, True),
        (13, 128, 5, 60, 108, True, None, True),
        (14, 128, 4, 100, 148, True, None, True),
    ]
    # Link-level pieces are not IP fragments: neither table lists them.
    assert (cap.fragments.height, cap.datagrams.height) == (0, 0)
    shark = tshark_icmp(path, ["icmpv6.type", "icmpv6.code"])
    assert shark_rows(shark) == [(f, t, 0) for f, t, *_ in lowpan_rows(cap)]
    assert [v["carrier"] for _, v in sorted(shark.items())] == [(6, LS, LD, 64)] * 6


def test_lowpan_fragments_behind_a_mesh_header_key_on_its_addresses(tmp_path: Path, tshark_icmp) -> None:
    # Relayed by different hops (link sources 9 and 11), from the same originator 5 to final 6.
    src, dst = link_local(5), link_local(6)
    packet = ipv6(src, dst, echo_request6(3, 4, bytes(90), src=src, dst=dst), next_header=58, hop_limit=64)
    pieces = lowpan_pieces(packet, size=48, tag=9, mesh=b"\xb3\x00\x05\x00\x06")
    frames = [(195, wpan(p, src=9 + 2 * (i % 2), dst=10)) for i, p in enumerate(pieces)]
    path = lowpan_capture(tmp_path / "mesh.pcapng", frames)
    cap = ic.read_pcap(path)
    assert cap.stats.select("icmp", "fragment").row(0) == (1, 2)
    assert cap.icmp.select("frame", "datagram_len", "reassembled").rows() == [(3, 138, True)]
    assert sorted(tshark_icmp(path)) == [3]


def test_lowpan_missing_piece_gives_no_row(tmp_path: Path, tshark_icmp) -> None:
    pieces = lowpan_pieces(lowpan_echo(1, 100), size=48, tag=1)
    path = lowpan_capture(tmp_path / "missing.pcapng", [(195, wpan(p)) for p in (pieces[0], pieces[2])])
    cap = ic.read_pcap(path)
    assert cap.stats.select("packets", "icmp", "fragment", "reassembled", "reassembly_timeouts").row(0) == (2, 0, 2, 0, 0)
    assert (cap.icmp.height, cap.datagrams.height) == (0, 0)
    assert tshark_icmp(path) == {}


def test_lowpan_duplicate_and_overlapping_pieces(tmp_path: Path, tshark_icmp) -> None:
    packet = lowpan_echo(1, 100)
    frag1, middle, last = lowpan_pieces(packet, size=48, tag=1)
    # FRAGN at offset 10 units (80 bytes) with 16 bytes: overlaps the end of FRAG1 (which ends at
    # 88, its headers uncompressed) and the start of the middle piece, with the same bytes; then
    # the middle piece again, changed: the first wins.
    overlap = struct.pack("!HHB", 0xE000 | len(packet), 1, 10) + packet[80:96]
    changed = middle[:5] + bytes(len(middle) - 5)
    frames = [frag1, overlap, middle, changed, last]
    path = lowpan_capture(tmp_path / "overlap.pcapng", [(195, wpan(p)) for p in frames])
    cap = ic.read_pcap(path)
    assert cap.stats.select("icmp", "fragment").row(0) == (1, 4)
    assert lowpan_rows(cap) == [(5, 128, 1, 100, 148, True, None, True)]
    shark = tshark_icmp(path, ["icmpv6.type", "icmpv6.code", "icmpv6.checksum.status"])
    assert shark_rows(shark) == [(5, 128, 0)]
    assert shark[5]["icmpv6.checksum.status"] == "1"  # tshark keeps the same bytes


@pytest.mark.parametrize("delta, frames", [(16, []), (-16, [2])])
def test_lowpan_datagram_size_sets_the_lengths_and_the_end(delta: int, frames: list[int], tmp_path: Path,
                                                           tshark_icmp) -> None:
    # Pieces that claim a datagram 16 bytes longer than they hold never complete; 16 bytes shorter,
    # the middle piece reaches the size and completes it (136 bytes, the last piece's left out),
    # with the IPv6 payload length FRAG1's header was rebuilt with (the size's, 92): as tshark.
    packet = lowpan_echo(1, 100)
    frag1, middle, last = lowpan_pieces(packet, size=48, tag=1)
    size = len(packet) + delta
    def retag(p: bytes, first: bool) -> bytes:
        return struct.pack("!H", (0xC000 if first else 0xE000) | size) + p[2:]
    path = lowpan_capture(tmp_path / "size.pcapng", [(195, wpan(retag(frag1, True))), (195, wpan(retag(middle, False))),
                                                     (195, wpan(retag(last, False)))])
    cap = ic.read_pcap(path)
    assert cap.icmp["frame"].to_list() == frames
    assert cap.stats.select("icmp", "fragment").row(0) == (len(frames), 3 - len(frames))
    shark = tshark_icmp(path, ["icmpv6.checksum.status", "ipv6.plen"])
    assert sorted(shark) == frames
    for f in frames:
        assert cap.icmp.select("datagram_len", "checksum_ok").row(0) == (size, shark[f]["icmpv6.checksum.status"] == "1")
        assert int(shark[f]["ipv6.plen"]) == size - 40


def test_lowpan_every_cut_of_a_fragment_is_counted(tmp_path: Path, tshark_icmp) -> None:
    pieces = lowpan_pieces(lowpan_echo(1, 100), size=48, tag=1)
    frames = []
    for piece in pieces:
        data = wpan(piece)
        frames += [Frame(len(frames), data[:keep], orig_len=len(data), linktype=195) for keep in range(len(data) + 1)]
    path = write_pcap(tmp_path / "cuts.pcap", frames)
    cap = ic.read_pcap(path)
    # The last piece completes the datagram once its payload is whole: with the FCS cut (it is
    # checked only when captured), two frames before the end.
    assert cap.icmp["frame"].to_list() == sorted(tshark_icmp(path)) == [len(frames) - 2]
    s = cap.stats.row(0, named=True)
    assert s["packets"] == len(frames) == s["icmp"] + s["fragment"] + s["other"] + s["undecodable"]
    assert s["undecodable"] == cap.errors.height
    assert set(cap.errors["kind"]) <= {"truncated"}
    # Each cut FRAG1 and FRAGN header is an error; the pieces whose header is whole are counted.
    assert s["fragment"] > 0 and s["undecodable"] > 0


def test_lowpan_tags_in_flight_stay_bounded(tmp_path: Path) -> None:
    firsts = [lowpan_pieces(lowpan_echo(tag, 100), size=48, tag=tag)[0] for tag in range(200)]
    rest = lowpan_pieces(lowpan_echo(199, 100), size=48, tag=199)[1:]
    path = lowpan_capture(tmp_path / "tags.pcapng", [(195, wpan(p)) for p in [*firsts, *rest]])
    cap = ic.read_pcap(path, max_datagrams=8)
    s = cap.stats.row(0, named=True)
    assert (s["packets"], s["icmp"], s["fragment"]) == (202, 1, 201)
    assert (s["reassembly_evictions"], s["max_datagrams_hits"]) == (192, 192)
    assert cap.icmp["frame"].to_list() == [202]
    assert cap.datagrams.height == 0


# --------------------------------------------------------------------------- 6LoWPAN contexts

def sixco(cid: int, length: int, prefix: str, *, c: bool = True, lifetime: int = 60, units: int = 3) -> bytes:
    """A 6LoWPAN Context Option (RFC 6775 4.2, ND option 34) of ``units`` 8-byte units."""
    body = struct.pack("!BBHH", length, (0x10 if c else 0) | cid, 0, lifetime)
    return bytes([34, units]) + body + ipaddress.IPv6Address(prefix).packed[:units * 8 - 8]


def context_ra(*options: bytes, src: str = "fe80::1") -> bytes:
    from icmpscope.synth import icmpv6
    ra = icmpv6(134, 0, bytes(8) + b"".join(options), rest=struct.pack("!BBH", 64, 0, 1800), src=src, dst="ff02::1")
    return ipv6(src, "ff02::1", ra, next_header=58, hop_limit=255)


def context_echo(src: str, dst: str, seq: int, **iphc) -> bytes:
    """An echo request IPHC-compressed with ``iphc``'s context modes (what they elide is what the
    contexts and the link must give back)."""
    return lowpan_iphc(ipv6(src, dst, echo_request6(1, seq, b"ctx", src=src, dst=dst), next_header=58), **iphc)


CTX1, CTX2 = "2001:db8:1::", "2001:db8:2::"
BOTH = dict(sac=True, dac=True, cid=0x12)  # source from context 1, destination from context 2


def behind(prefix: str, bits: int, link: str | int) -> str:
    """The address of ``prefix``'s first ``bits`` bits over the identifier from ``link``."""
    iid = int.from_bytes(lowpan_iid(link), "big")
    net = int(ipaddress.IPv6Address(prefix)) >> (128 - bits) << (128 - bits)
    return str(ipaddress.IPv6Address(net | iid & ((1 << (128 - bits)) - 1)))


def test_lowpan_contexts_are_learned_from_router_advertisements_as_tshark_learns_them(tmp_path: Path, tshark_icmp) -> None:
    s, d = (lambda p, bits=64: behind(p, bits, S64)), (lambda p, bits=64: behind(p, bits, D64))
    zs, zd = s("::", 0), d("::", 0)  # the zero prefix of an unknown context
    frames = [
        wpan(context_echo(s(CTX1), d(CTX2), 1, **BOTH)),  # before any option: zero prefixes
        wpan(lowpan_uncompressed(context_ra(sixco(1, 64, CTX1), sixco(2, 48, CTX2, c=False, lifetime=0, units=2)))),
        wpan(context_echo(s(CTX1), d(CTX2, 48), 2, **BOTH)),  # C flag and lifetime are not checked
        wpan(context_echo(s(CTX1), d(CTX2), 3, **BOTH), pan=0x1111),  # another PAN: not its contexts
        # Learned from the broadcast PAN: every PAN's fallback.
        wpan(lowpan_uncompressed(context_ra(sixco(3, 96, "2001:db8:3::aa:0:0"))), pan=0xFFFF),
        wpan(context_echo(s("2001:db8:3::aa:0:0", 96), d("2001:db8:3::aa:0:0", 96), 4, sac=True, dac=True, cid=0x33), pan=0x1111),
        # Replaced: the newer prefix holds; a source PAN of its own is the key, not the destination's.
        wpan(lowpan_uncompressed(context_ra(sixco(1, 64, "2001:db8:9::"))), src_pan=0x2222),
        wpan(context_echo(s("2001:db8:9::"), LD, 5, sac=True, cid=0x10), src_pan=0x2222),
        wpan(context_echo(s(CTX1), LD, 6, sac=True, cid=0x10)),
        # Inline identifiers behind the context prefix; a unicast-prefix-based multicast.
        wpan(context_echo("2001:db8:1::abcd:1", "ff3e:40:2001:db8:1::1234", 7, sac=True, sam=1, dac=True, dam=0, cid=0x11)),
    ]
    path = lowpan_capture(tmp_path / "contexts.pcapng", [(195, f) for f in frames])
    cap = ic.read_pcap(path)
    ours = {f: (s_, d_, ok) for f, s_, d_, ok in
            cap.icmp.with_columns(pl.col("src", "dst").cast(pl.String)).select("frame", "src", "dst", "checksum_ok").iter_rows()}
    shark = {f: (v["carrier"][1], v["carrier"][2], v["icmpv6.checksum.status"] == "1")
             for f, v in tshark_icmp(path, ["icmpv6.checksum.status"]).items()}
    assert ours == shark
    assert ours == {
        1: (zs, zd, False), 2: ("fe80::1", "ff02::1", True), 3: (s(CTX1), d(CTX2, 48), True), 4: (zs, zd, False),
        5: ("fe80::1", "ff02::1", True), 6: (s("2001:db8:3::aa:0:0", 96), d("2001:db8:3::aa:0:0", 96), True),
        7: ("fe80::1", "ff02::1", True), 8: (s("2001:db8:9::"), LD, True), 9: (s(CTX1), LD, True),
        10: ("2001:db8:1::abcd:1", "ff3e:40:2001:db8:1::1234", True),
    }


def test_lowpan_contexts_behind_rfc_7973_are_the_broadcast_pans(tmp_path: Path, tshark_icmp) -> None:
    # Ethernet 6LoWPAN uses the contexts learned in the broadcast PAN, not another PAN's; it
    # teaches none (frame 5 uses context 1 of PAN 0xabcd: still the broadcast PAN's prefix).
    src, dst = "2001:db8:1:0:200:ff:fe00:1", "2001:db8:1:0:200:ff:fe00:2"
    eth = ethernet(context_echo(src, dst, 1, sac=True, dac=True, cid=0x11), ethertype=0xA0ED)
    eth_ra = ethernet(lowpan_uncompressed(context_ra(sixco(1, 64, "2001:db8:8::"))), ethertype=0xA0ED)
    frames = [(195, wpan(lowpan_uncompressed(context_ra(sixco(1, 64, CTX1))), pan=0xFFFF)), (1, eth),
              (195, wpan(lowpan_uncompressed(context_ra(sixco(1, 64, "2001:db8:7::"))))), (1, eth_ra), (1, eth)]
    path = lowpan_capture(tmp_path / "eth.pcapng", frames)
    rows = ic.read_pcap(path).icmp.with_columns(pl.col("src").cast(pl.String)).select("frame", "src", "checksum_ok").rows()
    assert rows == [(1, "fe80::1", True), (2, src, True), (3, "fe80::1", True), (4, "fe80::1", True), (5, src, True)]
    shark = tshark_icmp(path, ["icmpv6.checksum.status"])
    assert [(f, v["carrier"][1], v["icmpv6.checksum.status"] == "1") for f, v in sorted(shark.items())] == rows


def test_lowpan_contexts_in_zep_and_fragments(tmp_path: Path, tshark_icmp) -> None:
    from icmpscope.synth import over_udp, zep
    carry = lambda frame: ethernet(over_udp("192.0.2.1", "192.0.2.2", 17754, zep(frame)))
    # The option in a fragmented advertisement, through ZEP: learned once reassembled.
    ra = context_ra(sixco(1, 64, CTX1), bytes([1, 14]) + bytes(110))
    pieces = lowpan_fragments(lowpan_uncompressed(ra), size=64, tag=3, header_len=1, datagram_size=len(ra))
    src, dst = behind(CTX1, 64, S64), behind(CTX1, 64, D64)
    frames = [carry(wpan(p)) for p in pieces] + [carry(wpan(context_echo(src, dst, 1, sac=True, dac=True, cid=0x11)))]
    path = write_pcap(tmp_path / "zep.pcap", [Frame(i, f) for i, f in enumerate(frames)])
    cap = ic.read_pcap(path)
    rows = cap.icmp.with_columns(pl.col("src", "dst").cast(pl.String)).select("frame", "src", "dst", "checksum_ok").rows()
    assert rows == [(len(pieces), "fe80::1", "ff02::1", True), (len(pieces) + 1, src, dst, True)]
    shark = tshark_icmp(path, ["icmpv6.checksum.status"])
    assert [(f, v["carrier"][1], v["carrier"][2], v["icmpv6.checksum.status"] == "1") for f, v in sorted(shark.items())] == rows
