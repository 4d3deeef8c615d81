"""Tunnels: the ICMP inside GRE, ERSPAN, IP-in-IP, VXLAN, Geneve, GTP, Teredo, AYIYA, MPLS,
PPPoE, L2TP, NSH, VXLAN-GPE, LISP, TZSP, ZEP, Cisco MetaData, CAPWAP, PIM Registers and NHRP traffic indications (and in sFlow samples) is a row like any other, with its encapsulation path, outer addresses and tunnel id; tshark
agrees on the corpus and on crafted captures; cut tunnel headers are errors, never panics."""
from __future__ import annotations

import doctest
import struct
import subprocess
import warnings
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import icmpscope as ic
import icmpscope.synth as synth
from icmpscope.synth import (
    Frame, ah, ayiya, echo_request, erspan1, erspan2, erspan3, ethernet, fragment_ipv4,
    capwap, cisco_metadata, fragment_ipv4_payload, geneve, gre, gtp0, gtpu, ipv4, l2tp2, l2tp3, lisp, mpls,
    nsh, over_ip, over_udp, pim_register, ping, pppoe, sflow, sflow_sample, teredo, tzsp, vxlan, vxlan_gpe, write_pcap,
    echo_request6, ipv6, udp, ieee80211, prism, avs, nhrp, fragment_ipv4, ETHERTYPE_NHRP,
    ieee802154, lowpan_iphc, lowpan_uncompressed, lowpan_fragments, zep,
)

T0 = 1_700_000_000_000_000_000
A, B = "10.0.0.1", "10.0.0.2"  # the hosts inside
C, D = "2001:db8::1", "2001:db8::2"
O1, O2 = "192.0.2.1", "192.0.2.2"  # tunnel endpoints
P1, P2 = "2001:db8:ffff::1", "2001:db8:ffff::2"
# MACs whose vendor codes make Wireshark's pseudo-wire heuristic pick the control word, as ours.
PW_DST, PW_SRC = "cc:07:0d:08:00:00", "cc:00:0a:64:00:00"

ROW = ["tunnel", "outer_src", "outer_dst", "src", "dst", "tunnel_id"]


def read(path: Path, **options) -> ic.Capture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
        return ic.read_pcap(path, **options)


def rows(cap: ic.Capture, columns=ROW) -> list[tuple]:
    strings = [c for c in columns if cap.icmp.schema[c] == pl.Categorical]
    return cap.icmp.with_columns(pl.col(strings).cast(pl.String)).select(columns).rows()


def capture(tmp_path: Path, *packets: bytes, name: str = "t.pcap", **frame) -> Path:
    return write_pcap(tmp_path / name, [Frame(T0 + i * 1000, p, **frame) for i, p in enumerate(packets)])


# --------------------------------------------------------------------------- tshark's names

TSHARK_KINDS = {
    "gre": "gre", "vxlan": "vxlan", "geneve": "geneve", "gtp": "gtpu", "gtpprime": "gtpprime",
    "teredo": "teredo", "ayiya": "ayiya", "mpls": "mpls", "pppoes": "pppoe", "nsh": "nsh",
    "lisp-data": "lisp", "tzsp": "tzsp", "capwap.data": "capwap", "pim": "pim", "nhrp": "nhrp",
    "zep": "zep",
}
# tshark decodes an L2TPv3 session's frames only once it saw the session set up; told so, it reads
# them as we do: an Ethernet pseudo-wire without cookie or L2-specific sublayer.
TSHARK_ARGS = ["-d", "l2tp.pw_type==0,eth"]
ID_FIELDS = {  # where tshark shows each tunnel's id (PPTP's is the call id half of its key)
    "gre": ("gre.key", "gre.key.call_id"), "erspan1": ("gre.key",), "erspan2": ("erspan.spanid",),
    "erspan3": ("erspan.spanid",), "vxlan": ("vxlan.vni",), "geneve": ("geneve.vni",),
    "gtpu": ("gtp.teid",), "mpls": ("mpls.label",), "pppoe": ("pppoe.session_id",),
    "l2tp": ("l2tp.session",), "l2tpv3": ("l2tp.sid",), "nsh": ("nsh.spi",), "vxlangpe": ("vxlan.vni",),
    "lisp": ("lisp-data.iid",), "nhrp": ("gre.key",), "zep": ("zep.channel_id",),
}
TSHARK_FIELDS = ["erspan.version", *sorted({f for fields in ID_FIELDS.values() for f in fields})]


def tshark_path(layers: list[str], erspan_version: str) -> str | None:
    """Our `tunnel` value for the layers tshark dissected in front of the ICMP message."""
    path = []
    for i, layer in enumerate(layers):
        following = layers[i + 1] if i + 1 < len(layers) else ""
        before = layers[i - 1] if i else ""
        if layer == "gre" and following == "erspan":
            path.append({"": "erspan1", "1": "erspan2", "2": "erspan3"}[erspan_version])
        elif layer == "gre" and following == "nhrp":
            continue  # NHRP is GRE's payload, named alone as ERSPAN is
        elif layer == "udp" and following in ("ip", "ipv6", "eth", "nsh"):
            path.append("vxlangpe")  # tshark lists no layer of its own for VXLAN-GPE
        elif layer == "cmd" and before != "gre":
            path.append("cmd")  # inside GRE, Cisco MetaData is part of the GRE header
        elif layer == "l2tp":
            path.append("l2tp" if following == "ppp" else "l2tpv3")  # v2 carries PPP, v3 Ethernet
        elif layer in TSHARK_KINDS:
            path.append(TSHARK_KINDS[layer])
        elif layer in ("ip", "ipv6") and (before in ("ip", "ipv6", "ah") or before.startswith("ipv6.")):
            path.append("ipip")
        elif layer == "eth" and (before in ("ip", "ipv6") or before.startswith("ipv6.")):
            path.append("ipeth")  # tshark lists no layer of its own for IP protocol 143
    return ">".join(path) or None


def tshark_rows(tshark_icmp, path: Path) -> dict[int, tuple]:
    """Per ICMP frame, what tshark says our tunnel columns should hold (the id is the last
    occurrence of the innermost tunnel's id field that has one)."""
    out = {}
    for frame, v in tshark_icmp(path, TSHARK_FIELDS, TSHARK_ARGS).items():
        tunnel = tshark_path(v["layers"], v["erspan.version"])
        ids = [v["all"][f][-1] for kind in (tunnel or "").split(">") for f in ID_FIELDS.get(kind, ())
               if v["all"][f]]
        tunnel_id = int(ids[-1], 0) if ids else None
        outer = v["outer"][1:3] if tunnel else (None, None)
        out[frame] = (tunnel, *outer, *v["carrier"][1:3], tunnel_id)
    return out


# --------------------------------------------------------------------------- corpus

TUNNELLED = [
    "PcapPlusPlus/MplsPackets.pcap", "PcapPlusPlus/Vxlan1.pcap", "PcapPlusPlus/gtp.pcap",
    "PcapPlusPlus/ipsec.pcapng", "libpcap/ah-ipip-ping.pcap",
    "suricata-verify/decode-erspan-typeII-01__input.pcap",
    "suricata-verify/decode-teredo-01__input.pcap", "suricata-verify/geneve-decoder__input.pcap",
    "suricata-verify/gre-sample.pcap", "suricata-verify/ip_in_ip.pcap", "suricata-verify/vxlan.pcap",
    "tcpdump/erspan-type-i-4.pcap", "tcpdump/mpls-over-udp.pcap", "tcpdump/various_gre.pcap",
    "zeek/ayiya3.pcap", "zeek/erspan.pcap", "zeek/gre-erspan3-dot1q.pcap", "zeek/gre-within-gre.pcap",
    "zeek/gtp_control_prime.pcap", "zeek/pppoe.pcap", "zeek/teredo_bubble_with_payload.pcap",
]


@pytest.mark.parametrize("name", TUNNELLED)
def test_corpus_tunnel_columns_equal_tshark(name: str, captures: Path, tshark_icmp) -> None:
    path = captures / name
    ours = {r[0]: tuple(r[1:]) for r in rows(read(path), ["frame", *ROW])}
    assert ours == tshark_rows(tshark_icmp, path)


def test_corpus_paths_cover_every_family(captures: Path) -> None:
    seen = set()
    for name in TUNNELLED:
        seen |= set(read(captures / name).icmp["tunnel"].drop_nulls().unique())
    assert seen == {
        "mpls", "vxlan", "gtpu", "ipip", "erspan2", "teredo", "geneve", "gre", "erspan1", "ayiya",
        "erspan3", "gre>gre", "gtpprime", "pppoe",
    }


def test_corpus_ah_is_not_a_tunnel(captures: Path) -> None:
    # Fragments of an AH-protected echo: reassembled, AH skipped, the same IP header carries ICMP.
    cap = read(captures / "libpcap/ah-ipip-ping.pcap")
    assert rows(cap, ["frame", "tunnel", "outer_src", "src", "reassembled", "datagram_len"]) == [
        (4, None, None, "10.1.48.19", True, 5932)]


# --------------------------------------------------------------------------- crafted: one per family

def case(packet: bytes, tunnel: str, outer: tuple | None, inner: tuple, tunnel_id: int | None,
         **extra) -> dict:
    return dict(packet=packet, row=(tunnel, *(outer or (None, None)), *inner, tunnel_id), extra=extra)


P4, P6 = ping(A, B), ping(C, D)
ETH4 = ethernet(P4, src_mac="02:00:00:00:00:0a", dst_mac="02:00:00:00:00:0b")
W4 = ieee80211(P4, swap_fc=True)  # CAPWAP's native 802.11 frame, as tshark reads it by default
# 6LoWPAN in 802.15.4 frames (ZEP): the link-local addresses of the frame's EUI-64s, compressed away.
L1, L2 = "fe80::1", "fe80::2"
WPAN = ieee802154(lowpan_iphc(ping(L1, L2)))  # with its FCS
CC24XX = ieee802154(lowpan_iphc(ping(L1, L2)), fcs=False) + b"\xd0\x80"  # RSSI, CRC ok with LQI 0

CASES = {
    "gre": case(ethernet(over_ip(O1, O2, gre(P4, key=7, seq=3, checksum=True))), "gre", (O1, O2), (A, B), 7),
    "gre_no_key_v6": case(ethernet(over_ip(P1, P2, gre(P6))), "gre", (P1, P2), (C, D), None),
    "gre_teb": case(ethernet(over_ip(O1, O2, gre(ETH4, key=0))), "gre", (O1, O2), (A, B), 0,
                    src_mac="02:00:00:00:00:0a"),
    "pptp": case(ethernet(over_ip(O1, O2, gre(b"\xff\x03\x00\x21" + P4, version=1, key=5, seq=1))),
                 "gre", (O1, O2), (A, B), 5),
    "erspan1": case(ethernet(over_ip(O1, O2, erspan1(ETH4))), "erspan1", (O1, O2), (A, B), None),
    "erspan2": case(ethernet(over_ip(O1, O2, erspan2(ETH4, session=100, vlan=23, seq=5))), "erspan2",
                    (O1, O2), (A, B), 100, vlan=23, src_mac="02:00:00:00:00:0a"),
    "erspan3_dot1q": case(ethernet(over_ip(O1, O2, erspan3(ethernet(P4, vlans=[10]), session=5, vlan=10,
                                                           platform=bytes(8)))),
                          "erspan3", (O1, O2), (A, B), 5, vlan=10),
    "4in4": case(ethernet(over_ip(O1, O2, P4, proto=4)), "ipip", (O1, O2), (A, B), None),
    "6in4": case(ethernet(over_ip(O1, O2, P6, proto=41)), "ipip", (O1, O2), (C, D), None),
    "4in6": case(ethernet(over_ip(P1, P2, P4, proto=4)), "ipip", (P1, P2), (A, B), None),
    "6in6": case(ethernet(over_ip(P1, P2, P6, proto=41)), "ipip", (P1, P2), (C, D), None),
    "ah_tunnel": case(ethernet(over_ip(O1, O2, ah(P4, next_header=4), proto=51)), "ipip", (O1, O2), (A, B), None),
    "vxlan": case(ethernet(over_udp(O1, O2, 4789, vxlan(ETH4, vni=0x123456))), "vxlan", (O1, O2), (A, B),
                  0x123456, src_mac="02:00:00:00:00:0a", vlan=None),
    "vxlan_reply_port": case(ethernet(over_udp(O1, O2, 50000, vxlan(ETH4, vni=5), src_port=4789)), "vxlan",
                             (O1, O2), (A, B), 5),
    "geneve_options": case(ethernet(over_udp(O1, O2, 6081, geneve(ETH4, vni=123, options=bytes(8)))),
                           "geneve", (O1, O2), (A, B), 123),
    "geneve_ip": case(ethernet(over_udp(O1, O2, 6081, geneve(P6, vni=124))), "geneve", (O1, O2), (C, D), 124),
    "gtpu": case(ethernet(over_udp(O1, O2, 2152, gtpu(P4, teid=0x1234))), "gtpu", (O1, O2), (A, B), 0x1234),
    "gtpu_extensions": case(ethernet(over_udp(O1, O2, 2152, gtpu(P6, teid=9, seq=1, extensions=[
        (0x85, b"\x00\x09"), (0x40, b"\x01\x02\x03\x04\x05\x06")]))), "gtpu", (O1, O2), (C, D), 9),
    "gtp_prime": case(ethernet(over_udp(O1, O2, 3386, gtp0(P4, flow=1), src_port=3386)), "gtpprime",
                      (O1, O2), (A, B), None),
    "teredo": case(ethernet(over_udp(O1, O2, 3544, teredo(P6))), "teredo", (O1, O2), (C, D), None),
    "teredo_indications": case(ethernet(over_udp(O1, O2, 3544, teredo(
        P6, origin=(3797, "198.51.100.1"), auth=(b"ab", b"cde", bytes(8), 0)))), "teredo", (O1, O2), (C, D), None),
    "ayiya": case(ethernet(over_udp(O1, O2, 5072, ayiya(P6))), "ayiya", (O1, O2), (C, D), None),
    "mpls": case(ethernet(mpls(P4, [100, 200]), ethertype=0x8847), "mpls", (A, B), (A, B), 200),
    "mpls_v6": case(ethernet(mpls(P6, [100]), ethertype=0x8847), "mpls", (C, D), (C, D), 100),
    "mpls_pw_cw": case(ethernet(mpls(ethernet(P4, dst_mac=PW_DST, src_mac=PW_SRC), [16], control_word=True),
                                ethertype=0x8847), "mpls", (A, B), (A, B), 16, src_mac=PW_SRC),
    "mpls_over_udp": case(ethernet(over_udp(O1, O2, 6635, mpls(P4, [300]))), "mpls", (O1, O2), (A, B), 300),
    "mpls_in_ip": case(ethernet(over_ip(O1, O2, mpls(P4, [16]), proto=137)), "mpls", (O1, O2), (A, B), 16),
    "pppoe": case(ethernet(pppoe(P4, session=0x11), ethertype=0x8864), "pppoe", (A, B), (A, B), 0x11),
    "pppoe_v6": case(ethernet(pppoe(P6, session=0x12), ethertype=0x8864), "pppoe", (C, D), (C, D), 0x12),
    "l2tp": case(ethernet(over_udp(O1, O2, 1701, l2tp2(P4, tunnel=3, session=9), src_port=1701)), "l2tp",
                 (O1, O2), (A, B), 9),
    "l2tp_fields_v6": case(ethernet(over_udp(P1, P2, 1701, l2tp2(P6, session=10, length=True, seq=(1, 2),
                                                                 offset=2))), "l2tp", (P1, P2), (C, D), 10),
    "l2tpv3": case(ethernet(over_ip(O1, O2, l2tp3(ETH4, session=0x1234), proto=115)), "l2tpv3", (O1, O2),
                   (A, B), 0x1234, src_mac="02:00:00:00:00:0a"),
    "l2tpv3_v6": case(ethernet(over_ip(P1, P2, l2tp3(ethernet(P6), session=0xFFFFFFFF), proto=115)), "l2tpv3",
                      (P1, P2), (C, D), 0xFFFFFFFF),
    # nested pairs
    "gre>gre": case(ethernet(over_ip(O1, O2, gre(over_ip("172.16.0.1", "172.16.0.2", gre(P4, key=9)), key=8))),
                    "gre>gre", (O1, O2), (A, B), 9),
    "gre>vxlan": case(ethernet(over_ip(O1, O2, gre(over_udp("172.16.0.1", "172.16.0.2", 4789, vxlan(ETH4, vni=77)),
                                                   key=1))), "gre>vxlan", (O1, O2), (A, B), 77),
    "gre>mpls": case(ethernet(over_ip(O1, O2, gre(mpls(P4, [16]), protocol=0x8847))), "gre>mpls", (O1, O2),
                     (A, B), 16),
    "mpls>gre": case(ethernet(mpls(over_ip(O1, O2, gre(P6, key=3)), [20]), ethertype=0x8847), "mpls>gre",
                     (O1, O2), (C, D), 3),
    "pppoe>ipip": case(ethernet(pppoe(over_ip(O1, O2, P6, proto=41), session=4), ethertype=0x8864),
                       "pppoe>ipip", (O1, O2), (C, D), 4),
    "gtpu>ipip": case(ethernet(over_udp(O1, O2, 2152, gtpu(over_ip(P1, P2, P4, proto=4), teid=2))),
                      "gtpu>ipip", (O1, O2), (A, B), 2),
    "ipip>teredo": case(ethernet(over_ip(P1, P2, over_udp(O1, O2, 3544, teredo(P6)), proto=4)), "ipip>teredo",
                        (P1, P2), (C, D), None),
    "erspan2>vxlan": case(ethernet(over_ip(O1, O2, erspan2(ethernet(over_udp("172.16.0.1", "172.16.0.2", 4789,
                                                                             vxlan(ETH4, vni=6))), session=1))),
                          "erspan2>vxlan", (O1, O2), (A, B), 6),
    "l2tp>gre": case(ethernet(over_udp(O1, O2, 1701, l2tp2(over_ip(P1, P2, gre(P4, key=4)), session=2))),
                     "l2tp>gre", (O1, O2), (A, B), 4),
    "gre>l2tpv3": case(ethernet(over_ip(O1, O2, gre(over_ip("172.16.0.1", "172.16.0.2", l2tp3(ETH4, session=5),
                                                            proto=115), key=1))), "gre>l2tpv3", (O1, O2), (A, B), 5),
    "l2tpv3>l2tp": case(ethernet(over_ip(O1, O2, l2tp3(ethernet(over_udp(P1, P2, 1701, l2tp2(P6, session=8))),
                                                         session=6), proto=115)), "l2tpv3>l2tp", (O1, O2), (C, D), 8),
    "nsh": case(ethernet(nsh(P4, spi=0x123, si=254), ethertype=0x894F), "nsh", (A, B), (A, B), 0x123),
    "nsh_md2_v6": case(ethernet(nsh(P6, spi=7, context=bytes(8)), ethertype=0x894F), "nsh", (C, D), (C, D), 7),
    "nsh_ethernet": case(ethernet(nsh(ETH4, spi=8), ethertype=0x894F), "nsh", (A, B), (A, B), 8,
                         src_mac="02:00:00:00:00:0a"),
    "vxlangpe": case(ethernet(over_udp(O1, O2, 4790, vxlan_gpe(P4, vni=5))), "vxlangpe", (O1, O2), (A, B), 5),
    "vxlangpe_v6": case(ethernet(over_udp(P1, P2, 4790, vxlan_gpe(P6, vni=6))), "vxlangpe", (P1, P2), (C, D), 6),
    "vxlangpe_ethernet": case(ethernet(over_udp(O1, O2, 4790, vxlan_gpe(ETH4, vni=0xFFFFFF))), "vxlangpe",
                              (O1, O2), (A, B), 0xFFFFFF, src_mac="02:00:00:00:00:0a"),
    "vxlangpe>nsh": case(ethernet(over_udp(O1, O2, 4790, vxlan_gpe(nsh(P4, spi=9), vni=8, next_protocol=4))),
                         "vxlangpe>nsh", (O1, O2), (A, B), 9),
    "gre>nsh": case(ethernet(over_ip(O1, O2, gre(nsh(P6, spi=10), protocol=0x894F, key=2))), "gre>nsh", (O1, O2),
                    (C, D), 10),
    "nsh>nsh": case(ethernet(nsh(nsh(P4, spi=12), spi=11, next_protocol=4), ethertype=0x894F), "nsh>nsh", (A, B),
                    (A, B), 12),
    "nsh>l2tp": case(ethernet(nsh(over_udp(O1, O2, 1701, l2tp2(P4, session=3)), spi=13), ethertype=0x894F),
                     "nsh>l2tp", (O1, O2), (A, B), 3),
    "lisp": case(ethernet(over_udp(O1, O2, 4341, lisp(P4, instance=0x1234, nonce=7))), "lisp", (O1, O2), (A, B),
                 0x1234),
    "lisp_v6_locators": case(ethernet(over_udp(P1, P2, 4341, lisp(P6, lsb=3), src_port=4341)), "lisp", (P1, P2),
                             (C, D), None),
    "tzsp": case(ethernet(over_udp(O1, O2, 37008, tzsp(ETH4))), "tzsp", (O1, O2), (A, B), None,
                 src_mac="02:00:00:00:00:0a"),
    "tzsp_tags": case(ethernet(over_udp(O1, O2, 37008, tzsp(ethernet(P6), kind=1, padding=2,
                                                             tags=[(10, b"\x01"), (40, b"\x00\x00\x00\x01")]))),
                      "tzsp", (O1, O2), (C, D), None),
    "cmd": case(ethernet(cisco_metadata(P4, sgt=0x28), ethertype=0x8909), "cmd", (A, B), (A, B), None),
    "cmd_v6": case(ethernet(cisco_metadata(P6, sgt=3), ethertype=0x8909), "cmd", (C, D), (C, D), None),
    "capwap": case(ethernet(over_udp(O1, O2, 5247, capwap(ETH4))), "capwap", (O1, O2), (A, B), None,
                   src_mac="02:00:00:00:00:0a"),
    "capwap_optional": case(ethernet(over_udp(P1, P2, 5247, capwap(ethernet(P6), radio_mac=bytes(6),
                                                                   wireless=bytes(4)))), "capwap", (P1, P2), (C, D), None),
    "pim": case(ethernet(over_ip(O1, O2, pim_register(P4), proto=103)), "pim", (O1, O2), (A, B), None),
    "pim_v6_border": case(ethernet(over_ip(P1, P2, pim_register(P6, border=True), proto=103)), "pim", (P1, P2),
                          (C, D), None),
    "cmd>nsh": case(ethernet(cisco_metadata(nsh(P4, spi=3), sgt=1, ethertype=0x894F), ethertype=0x8909), "cmd>nsh",
                    (A, B), (A, B), 3),
    "capwap>lisp": case(ethernet(over_udp(O1, O2, 5247, capwap(ethernet(over_udp(P1, P2, 4341, lisp(P4, instance=2)))))),
                        "capwap>lisp", (O1, O2), (A, B), 2),
    "tzsp>vxlan": case(ethernet(over_udp(O1, O2, 37008, tzsp(ethernet(over_udp("172.16.0.1", "172.16.0.2", 4789,
                                                                                vxlan(ETH4, vni=4)))))),
                       "tzsp>vxlan", (O1, O2), (A, B), 4),
    "pim>gre": case(ethernet(over_ip(O1, O2, pim_register(over_ip(P1, P2, gre(P4, key=5))), proto=103)), "pim>gre",
                    (O1, O2), (A, B), 5),
    "lisp>l2tp": case(ethernet(over_udp(O1, O2, 4341, lisp(over_udp(P1, P2, 1701, l2tp2(P6, session=6)), instance=1))),
                      "lisp>l2tp", (O1, O2), (C, D), 6),
    "ipeth_srv6": case(ethernet(ipv6(P1, P2, ETH4, next_header=143, ext_headers=[(43, bytes([4, 0, 0, 0, 0, 0]) + bytes(16))])),
                       "ipeth", (P1, P2), (A, B), None, src_mac="02:00:00:00:00:0a"),
    "l2tpv3_udp": case(ethernet(over_udp(O1, O2, 1701, l2tp3(ETH4, session=0x70000, udp=True))), "l2tpv3", (O1, O2),
                       (A, B), 0x70000, src_mac="02:00:00:00:00:0a"),
    "l2tpv3_udp_v6": case(ethernet(over_udp(P1, P2, 1701, l2tp3(ethernet(P6), session=9, udp=True), src_port=1701)),
                          "l2tpv3", (P1, P2), (C, D), 9),
    "ipeth": case(ethernet(over_ip(O1, O2, ETH4, proto=143)), "ipeth", (O1, O2), (A, B), None),
    "geneve>gre": case(ethernet(over_udp(O1, O2, 6081, geneve(over_ip(P1, P2, gre(P4)), vni=12))), "geneve>gre",
                       (O1, O2), (A, B), 12),
    "capwap_80211": case(ethernet(over_udp(O1, O2, 5247, capwap(W4, native=True))), "capwap", (O1, O2), (A, B), None,
                         src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02"),
    "capwap_80211_qos_v6": case(ethernet(over_udp(P1, P2, 5247, capwap(
        ieee80211(P6, subtype=8, ds=2, swap_fc=True, src_mac="02:00:00:00:00:0c"), native=True, radio_mac=bytes(6)))),
        "capwap", (P1, P2), (C, D), None, src_mac="02:00:00:00:00:0c"),
    "tzsp_80211": case(ethernet(over_udp(O1, O2, 37008, tzsp(ieee80211(P4), encapsulation=18, tags=[(10, b"\x01")]))),
                       "tzsp", (O1, O2), (A, B), None, src_mac="02:00:00:00:00:01"),
    "tzsp_prism": case(ethernet(over_udp(O1, O2, 37008, tzsp(prism(ieee80211(P6, ds=3)), encapsulation=119))),
                       "tzsp", (O1, O2), (C, D), None),
    "tzsp_avs": case(ethernet(over_udp(P1, P2, 37008, tzsp(avs(ieee80211(P4, subtype=8)), encapsulation=127))),
                     "tzsp", (P1, P2), (A, B), None),
    "nhrp": case(ethernet(over_ip(O1, O2, gre(nhrp(P4), protocol=ETHERTYPE_NHRP, key=9))), "nhrp", (O1, O2), (A, B), 9),
    "zep": case(ethernet(over_udp(O1, O2, 17754, zep(WPAN), src_port=17754)), "zep", (O1, O2), (L1, L2), 11,
                src_mac=None),
    "zep_cc24xx": case(ethernet(over_udp(P1, P2, 17754, zep(CC24XX, crc=False, channel=26))), "zep", (P1, P2),
                       (L1, L2), 26),
    "zep_v1": case(ethernet(over_udp(O1, O2, 17754, zep(WPAN, version=1, channel=15))), "zep", (O1, O2), (L1, L2), 15),
    "zep_v1_cc24xx_uncompressed": case(ethernet(over_udp(O1, O2, 17754, zep(
        ieee802154(lowpan_uncompressed(P6), src=1, dst=2, fcs=False) + b"\x00\xff", version=1, crc=False))),
        "zep", (O1, O2), (C, D), 11),
    "vxlan_rfc7973": case(ethernet(over_udp(O1, O2, 4789, vxlan(ethernet(lowpan_iphc(ping("fe80::200:ff:fe00:1", "fe80::200:ff:fe00:2")),
                                                                  ethertype=0xA0ED), vni=5))),
                          "vxlan", (O1, O2), ("fe80::200:ff:fe00:1", "fe80::200:ff:fe00:2"), 5, src_mac="02:00:00:00:00:01"),
    "gre>zep": case(ethernet(over_ip(O1, O2, gre(over_udp(P1, P2, 17754, zep(WPAN, channel=20)), key=3))),
                    "gre>zep", (O1, O2), (L1, L2), 20),
    "nhrp_v6": case(ethernet(over_ip(P1, P2, gre(nhrp(P6, nbma=P1, src=C, dst=D, extensions=bytes(4)),
                                                 protocol=ETHERTYPE_NHRP))), "nhrp", (P1, P2), (C, D), None),
    "nhrp_nlpid": case(ethernet(over_ip(O1, O2, gre(nhrp(P4, protocol=0xCC), protocol=ETHERTYPE_NHRP))), "nhrp",
                       (O1, O2), (A, B), None),
    "nhrp>nhrp": case(ethernet(over_ip(O1, O2, gre(nhrp(over_ip(P1, P2, gre(nhrp(P4), protocol=ETHERTYPE_NHRP, key=4))),
                                                   protocol=ETHERTYPE_NHRP, key=3))), "nhrp>nhrp", (O1, O2), (A, B), 4),
}


@pytest.mark.parametrize("name", CASES)
def test_crafted_tunnel_row(name: str, tmp_path: Path) -> None:
    c = CASES[name]
    cap = read(capture(tmp_path, c["packet"]))
    assert cap.stats.select("icmp", "other", "undecodable").row(0) == (1, 0, 0)
    assert rows(cap) == [c["row"]]
    (icmp,) = cap.icmp.with_columns(pl.col("src_mac").cast(pl.String)).iter_rows(named=True)
    assert (icmp["icmp_type"], icmp["reassembled"]) == (8 if ":" not in icmp["src"] else 128, False)
    for column, value in c["extra"].items():
        assert icmp[column] == value


def test_crafted_tunnels_equal_tshark(tmp_path: Path, tshark_icmp) -> None:
    path = capture(tmp_path, *(c["packet"] for c in CASES.values()))
    assert tshark_rows(tshark_icmp, path) == {i + 1: c["row"] for i, c in enumerate(CASES.values())}


def test_plain_traffic_has_no_tunnel(tmp_path: Path) -> None:
    cap = read(capture(tmp_path, ethernet(P4), ethernet(P6)))
    assert rows(cap) == [(None, None, None, A, B, None), (None, None, None, C, D, None)]


def test_nhrp_quotes_are_no_conversations_but_their_fragments_reassemble(tmp_path: Path, tshark, tshark_icmp) -> None:
    # A quoted UDP datagram, then a 128-byte echo request quoted in three fragments, one a frame.
    quoted_udp = ipv4(A, B, udp(1234, 5678, b"hello", src=A, dst=B), proto=17)
    quotes = [quoted_udp, *fragment_ipv4(ping(A, B, payload=bytes(100)), size=48)]
    path = capture(tmp_path, *(ethernet(over_ip(O1, O2, gre(nhrp(q), protocol=ETHERTYPE_NHRP))) for q in quotes))
    cap = read(path)
    assert cap.stats.select("icmp", "fragment", "other", "undecodable").row(0) == (1, 2, 1, 0)
    assert rows(cap, ["frame", "tunnel", "reassembled", "datagram_len"]) == [(4, "nhrp", True, 128)]
    assert cap.datagrams.select("fragments", "complete").rows() == [(3, True)]
    # Only the carrier (GRE) is a conversation: tshark lists no UDP one either.
    assert cap.flows.select("src", "dst", "proto", "packets").rows() == [(O1, O2, 47, 4)]
    conv = subprocess.run([tshark, "-n", "-q", "-r", str(path), "-z", "conv,udp"], capture_output=True, text=True)
    assert "<->" not in conv.stdout
    assert set(tshark_icmp(path)) == {4}


# --------------------------------------------------------------------------- not a tunnel after all

@pytest.mark.parametrize("packet", [
    ethernet(over_udp(O1, O2, 4789, b"\x08\x00\x00")),  # shorter than a VXLAN header
    ethernet(over_udp(O1, O2, 3544, teredo(P4))),  # Teredo carries IPv6 only
    ethernet(over_udp(O1, O2, 2152, gtpu(P4, teid=1, message=1))),  # GTP echo, not a T-PDU
    ethernet(over_udp(O1, O2, 5072, ayiya(P6, opcode=2))),  # AYIYA echo request
    ethernet(over_ip(O1, O2, gre(P4, protocol=0x1234))),  # GRE of an unknown protocol
    ethernet(mpls(b"\x70" + bytes(40), [100]), ethertype=0x8847),  # MPLS payload of nibble 7
    ethernet(pppoe(b"\xc0\x21\x01\x01\x00\x04", session=1, protocol=0xC021), ethertype=0x8864),  # LCP
    ethernet(over_udp(O1, O2, 53, vxlan(ETH4, vni=1), src_port=4789)),  # DNS's port is lower
    ethernet(over_udp(O1, O2, 1701, l2tp2(b"\x80\x08\x00\x00\x00\x00\x00\x06", session=0, control=True))),
    ethernet(over_udp(O1, O2, 1701, l2tp2(b"\x01\x01\x00\x04", session=1, protocol=0xC021))),  # LCP
    ethernet(over_ip(O1, O2, l2tp3(b"\xc8\x03\x00\x0c" + bytes(8), session=0), proto=115)),  # control
    ethernet(over_udp(O1, O2, 1701, b"\xc8\x03\x00\x0c" + bytes(8))),  # L2TPv3 control over UDP
    ethernet(nsh(P4, spi=1, next_protocol=5), ethertype=0x894F),  # NSH carrying MPLS
    ethernet(over_udp(O1, O2, 4790, vxlan(ETH4, vni=1))),  # VXLAN's flags on GPE's port: next protocol 0
    ethernet(over_udp(O1, O2, 4341, lisp(ETH4, instance=1))),  # LISP carries IP only
    ethernet(over_udp(O1, O2, 37008, tzsp(ETH4, kind=4))),  # TZSP configuration
    ethernet(over_udp(O1, O2, 37008, tzsp(ETH4, encapsulation=2))),  # TZSP of token ring
    ethernet(over_udp(O1, O2, 37008, tzsp(avs(ieee80211(P4)), encapsulation=163))),  # AVS's link type, not TZSP's
    ethernet(over_udp(O1, O2, 37008, tzsp(ieee80211(P4, protected=True), encapsulation=18))),  # protected 802.11
    ethernet(over_udp(O1, O2, 37008, tzsp(ieee80211(P4, subtype=4), encapsulation=18))),  # 802.11 null data
    ethernet(over_udp(O1, O2, 37008, tzsp(ieee80211(P4)[:20], encapsulation=18))),  # 802.11 short on the wire
    ethernet(over_udp(O1, O2, 37008, b"\x01\x00\x00\x01\x0a\x05")),  # a tag past the datagram, no END
    ethernet(over_udp(O1, O2, 5247, b"\x01" + capwap(ETH4)[1:])),  # CAPWAP DTLS
    ethernet(over_udp(O1, O2, 5247, capwap(ieee80211(P4), native=True))),  # 802.11 with its FC unswapped
    ethernet(over_udp(O1, O2, 5247, capwap(W4, native=True, wbid=0))),  # Cisco's WBID 0: data to tshark
    ethernet(over_udp(O1, O2, 5247, capwap(W4, native=True, wbid=3))),  # another binding
    ethernet(over_udp(O1, O2, 5247, capwap(ETH4, keep_alive=True))),  # a keep-alive
    ethernet(over_ip(O1, O2, gre(nhrp(P4, op_type=7), protocol=ETHERTYPE_NHRP))),  # NHRP error indication
    ethernet(over_ip(O1, O2, gre(nhrp(P4, op_type=1), protocol=ETHERTYPE_NHRP))),  # NHRP resolution request
    ethernet(over_ip(O1, O2, gre(nhrp(P4, protocol=0x86DD), protocol=ETHERTYPE_NHRP))),  # IPv6 said, IPv4 quoted
    ethernet(over_ip(O1, O2, gre(nhrp(P4, extensions=b"")[:14] + b"\x00\x14" + nhrp(P4)[16:],
                                 protocol=ETHERTYPE_NHRP))),  # extensions at 20: no mandatory part
    ethernet(over_ip(O1, O2, b"\x20\x00\x00\x00\x00\x01\x00\x02\x00\x69", proto=103)),  # PIM hello
    ethernet(over_udp(O1, O2, 17754, zep(b"", kind=2))),  # ZEP ack
    ethernet(over_udp(O1, O2, 17754, zep(WPAN, length=len(WPAN) - 1))),  # longer than ZEP says: data to tshark
    ethernet(over_udp(O1, O2, 17754, b"EY" + zep(WPAN)[2:])),  # another preamble
    ethernet(over_udp(O1, O2, 17754, zep(WPAN)[:20])),  # shorter than a ZEP v2 header
    ethernet(over_udp(O1, O2, 17754, zep(WPAN[:-2] + b"\x00\x00"))),  # bad FCS
    ethernet(over_udp(O1, O2, 17754, zep(CC24XX[:-1] + b"\x7f", crc=False))),  # CC24xx: CRC not ok
    ethernet(over_udp(O1, O2, 17754, zep(WPAN, crc=False))),  # FCS read as CC24xx metadata: not ok
], ids=["vxlan_short", "teredo_v4", "gtp_echo", "ayiya_echo", "gre_unknown", "mpls_nibble7",
        "pppoe_lcp", "lower_port_wins", "l2tp_control", "l2tp_lcp", "l2tpv3_control", "l2tpv3_udp_control",
        "nsh_mpls", "vxlangpe_reserved", "lisp_ethernet", "tzsp_config", "tzsp_token_ring", "tzsp_avs_linktype",
        "tzsp_80211_protected", "tzsp_80211_null", "tzsp_80211_short", "tzsp_no_end",
        "capwap_dtls", "capwap_fc_unswapped", "capwap_wbid0", "capwap_wbid3", "capwap_keep_alive",
        "nhrp_error", "nhrp_resolution", "nhrp_version_mismatch", "nhrp_no_mandatory", "pim_hello",
        "zep_ack", "zep_length_short", "zep_preamble", "zep_short", "zep_bad_fcs", "zep_cc24xx_bad", "zep_fcs_as_cc24xx"])
def test_port_or_type_without_that_tunnel_is_other(packet: bytes, tmp_path: Path) -> None:
    cap = read(capture(tmp_path, packet))
    assert cap.stats.select("icmp", "other", "undecodable").row(0) == (0, 1, 0)
    assert cap.errors.height == 0


# --------------------------------------------------------------------------- cut tunnel headers

def cut(packet: bytes, keep: int) -> Frame:
    return Frame(T0, packet[:keep], orig_len=len(packet))


# (packet, bytes kept, reason): each capture is cut inside the tunnel header.
CUTS = {
    "gre": (ethernet(over_ip(O1, O2, gre(P4, key=1))), 14 + 20 + 6, "GRE header truncated: 6 of 8 bytes captured"),
    "erspan2": (ethernet(over_ip(O1, O2, erspan2(ETH4, session=1))), 14 + 20 + 8 + 5,
                "ERSPAN header truncated: 5 of 8 bytes captured"),
    "erspan3": (ethernet(over_ip(O1, O2, erspan3(ETH4, session=1, platform=bytes(8)))), 14 + 20 + 4 + 14,
                "ERSPAN header truncated: 14 of 20 bytes captured"),
    "erspan_frame": (ethernet(over_ip(O1, O2, erspan1(ETH4))), 14 + 20 + 4 + 10,
                     "Ethernet header truncated: 10 of 14 bytes captured"),
    "cisco_metadata": (ethernet(over_ip(O1, O2, gre(b"\x08\x00\x01\x01\x00\x01\x00\x00" + P4, protocol=0x8909))),
                       14 + 20 + 4 + 3, "Cisco MetaData header truncated: 3 of 8 bytes captured"),
    "ah": (ethernet(over_ip(O1, O2, ah(P4, next_header=4), proto=51)), 14 + 20 + 10,
           "IPsec AH header truncated: 10 of 24 bytes captured"),
    "vxlan": (ethernet(over_udp(O1, O2, 4789, vxlan(ETH4, vni=1))), 14 + 20 + 8 + 4,
              "VXLAN header truncated: 4 of 8 bytes captured"),
    "udp_of_vxlan": (ethernet(over_udp(O1, O2, 4789, vxlan(ETH4, vni=1))), 14 + 20 + 6,
                     "VXLAN header truncated: 6 of 8 bytes captured"),
    "geneve": (ethernet(over_udp(O1, O2, 6081, geneve(ETH4, vni=1, options=bytes(8)))), 14 + 20 + 8 + 12,
               "Geneve header truncated: 12 of 16 bytes captured"),
    "gtpu": (ethernet(over_udp(O1, O2, 2152, gtpu(P4, teid=1, seq=1))), 14 + 20 + 8 + 10,
             "GTP header truncated: 10 of 12 bytes captured"),
    "teredo": (ethernet(over_udp(O1, O2, 3544, teredo(P6, origin=(1, O1)))), 14 + 20 + 8 + 1,
               "Teredo header truncated: 1 of 2 bytes captured"),
    "ayiya": (ethernet(over_udp(O1, O2, 5072, ayiya(P6))), 14 + 20 + 8 + 20,
              "AYIYA header truncated: 20 of 44 bytes captured"),
    "mpls": (ethernet(mpls(P4, [1, 2, 3]), ethertype=0x8847), 14 + 6, "MPLS header truncated: 6 of 8 bytes captured"),
    "mpls_over_udp": (ethernet(over_udp(O1, O2, 6635, mpls(P4, [1]))), 14 + 20 + 8 + 2,
                      "MPLS header truncated: 2 of 4 bytes captured"),
    "pppoe": (ethernet(pppoe(P4, session=1), ethertype=0x8864), 14 + 5, "PPPoE header truncated: 5 of 8 bytes captured"),
    "ipip": (ethernet(over_ip(O1, O2, P4, proto=4)), 14 + 20 + 12, "IPv4 header truncated: 12 of 20 bytes captured"),
    "l2tp": (ethernet(over_udp(O1, O2, 1701, l2tp2(P4, session=1, seq=(0, 0)))), 14 + 20 + 8 + 7,
             "L2TP header truncated: 7 of 10 bytes captured"),
    "l2tp_ppp": (ethernet(over_udp(O1, O2, 1701, l2tp2(P4, session=1))), 14 + 20 + 8 + 6 + 3,
                 "PPP header truncated: 3 of 4 bytes captured"),
    "l2tpv3": (ethernet(over_ip(O1, O2, l2tp3(ETH4, session=1), proto=115)), 14 + 20 + 2,
               "L2TPv3 header truncated: 2 of 4 bytes captured"),
    "nsh": (ethernet(nsh(P4, spi=1), ethertype=0x894F), 14 + 20, "NSH header truncated: 20 of 24 bytes captured"),
    "vxlangpe": (ethernet(over_udp(O1, O2, 4790, vxlan_gpe(P4, vni=1))), 14 + 20 + 8 + 7,
                 "VXLAN-GPE header truncated: 7 of 8 bytes captured"),
    "lisp": (ethernet(over_udp(O1, O2, 4341, lisp(P4, instance=1))), 14 + 20 + 8 + 5,
             "LISP header truncated: 5 of 8 bytes captured"),
    "tzsp": (ethernet(over_udp(O1, O2, 37008, tzsp(ETH4, tags=[(10, b"\x01")]))), 14 + 20 + 8 + 5,
             "TZSP header truncated: 5 of 6 bytes captured"),
    "cmd": (ethernet(cisco_metadata(P4, sgt=1), ethertype=0x8909), 14 + 7,
            "Cisco MetaData header truncated: 7 of 8 bytes captured"),
    "capwap": (ethernet(over_udp(O1, O2, 5247, capwap(ETH4, radio_mac=bytes(6)))), 14 + 20 + 8 + 10,
               "CAPWAP header truncated: 10 of 16 bytes captured"),
    "capwap_frame": (ethernet(over_udp(O1, O2, 5247, capwap(ETH4))), 14 + 20 + 8 + 8 + 13,
                     "Ethernet header truncated: 13 of 14 bytes captured"),
    "pim": (ethernet(over_ip(O1, O2, pim_register(P4), proto=103)), 14 + 20 + 6,
            "PIM Register header truncated: 6 of 9 bytes captured"),
    "l2tpv3_udp": (ethernet(over_udp(O1, O2, 1701, l2tp3(ETH4, session=1, udp=True))), 14 + 20 + 8 + 3,
                   "L2TPv3 header truncated: 3 of 4 bytes captured"),
    "l2tpv3_frame": (ethernet(over_ip(O1, O2, l2tp3(ETH4, session=1), proto=115)), 14 + 20 + 4 + 10,
                     "Ethernet header truncated: 10 of 14 bytes captured"),
    "capwap_80211": (ethernet(over_udp(O1, O2, 5247, capwap(W4, native=True))), 14 + 20 + 8 + 8 + 20,
                     "IEEE 802.11 header truncated: 20 of 24 bytes captured"),
    "capwap_llc": (ethernet(over_udp(O1, O2, 5247, capwap(W4, native=True))), 14 + 20 + 8 + 8 + 24 + 5,
                   "LLC/SNAP header truncated: 29 of 32 bytes captured"),
    "tzsp_prism": (ethernet(over_udp(O1, O2, 37008, tzsp(prism(ieee80211(P4)), encapsulation=119))),
                   14 + 20 + 8 + 5 + 100, "Prism header truncated: 100 of 144 bytes captured"),
    "tzsp_avs": (ethernet(over_udp(O1, O2, 37008, tzsp(avs(ieee80211(P4)), encapsulation=127))),
                 14 + 20 + 8 + 5 + 6, "AVS header truncated: 6 of 8 bytes captured"),
    "nhrp": (ethernet(over_ip(O1, O2, gre(nhrp(P4), protocol=ETHERTYPE_NHRP))), 14 + 20 + 4 + 21,
             "NHRP header truncated: 21 of 22 bytes captured"),
    "nhrp_addresses": (ethernet(over_ip(O1, O2, gre(nhrp(P4), protocol=ETHERTYPE_NHRP))), 14 + 20 + 4 + 40,
                       "NHRP header truncated: 40 of 41 bytes captured"),
    "nhrp_quote": (ethernet(over_ip(O1, O2, gre(nhrp(P4), protocol=ETHERTYPE_NHRP))), 14 + 20 + 4 + 40 + 12,
                   "IPv4 header truncated: 12 of 20 bytes captured"),
    "zep": (ethernet(over_udp(O1, O2, 17754, zep(WPAN))), 14 + 20 + 8 + 20, "ZEP header truncated: 20 of 32 bytes captured"),
    "zep_v1": (ethernet(over_udp(O1, O2, 17754, zep(WPAN, version=1))), 14 + 20 + 8 + 10,
               "ZEP header truncated: 10 of 16 bytes captured"),
    "zep_frame": (ethernet(over_udp(O1, O2, 17754, zep(WPAN))), 14 + 20 + 8 + 32 + 10,
                  "IEEE 802.15.4 header truncated: 10 of 13 bytes captured"),
}


@pytest.mark.parametrize("name", CUTS)
def test_cut_inside_a_tunnel_header_is_undecodable(name: str, tmp_path: Path) -> None:
    packet, keep, reason = CUTS[name]
    cap = read(write_pcap(tmp_path / "cut.pcap", [cut(packet, keep)]))
    assert cap.stats.select("packets", "icmp", "other", "undecodable").row(0) == (1, 0, 0, 1)
    assert cap.errors.select("frame", "kind", "reason").rows() == [(1, "truncated", reason)]


def test_every_cut_of_every_crafted_tunnel_is_counted(tmp_path: Path) -> None:
    frames = [cut(c["packet"], keep) for c in CASES.values() for keep in range(len(c["packet"]))]
    cap = read(write_pcap(tmp_path / "cuts.pcap", frames))
    s = cap.stats.row(0, named=True)
    assert s["packets"] == len(frames) == s["icmp"] + s["fragment"] + s["other"] + s["undecodable"]
    assert s["undecodable"] == cap.errors.height


def test_every_cut_of_every_crafted_tunnel_gives_a_row_where_tshark_shows_icmp(tmp_path: Path, tshark_icmp) -> None:
    frames = [cut(c["packet"], keep) for c in CASES.values() for keep in range(len(c["packet"]) + 1)]
    path = write_pcap(tmp_path / "cuts.pcap", frames)
    # With a code: tshark's one-byte ICMPv6 message is a listed difference (icmpv6_one_byte).
    theirs = {f for f, v in tshark_icmp(path, ["icmp.code", "icmpv6.code"], TSHARK_ARGS).items() if v["icmp.code"] or v["icmpv6.code"]}
    assert set(read(path).icmp["frame"]) == theirs


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(CASES)), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                                                  min_size=1, max_size=4)), min_size=1, max_size=40))
def test_corrupted_tunnels_are_counted_never_raised(tmp_path_factory, damage) -> None:
    frames = []
    for name, flips in damage:
        packet = bytearray(CASES[name]["packet"])
        for at, value in flips:
            packet[at % len(packet)] = value
        frames.append(Frame(T0, bytes(packet)))
    cap = read(write_pcap(tmp_path_factory.mktemp("fuzz") / "f.pcap", frames))
    s = cap.stats.row(0, named=True)
    assert s["packets"] == len(frames) == s["icmp"] + s["fragment"] + s["other"] + s["undecodable"]
    assert s["undecodable"] == cap.errors.height


# --------------------------------------------------------------------------- depth limit

def nested_ipip(depth: int) -> bytes:
    packet = P4
    for level in range(depth):
        packet = over_ip(f"172.16.{level}.1", f"172.16.{level}.2", packet, proto=4)
    return ethernet(packet)


def test_depth_limit_counts_and_names_deeper_tunnels(tmp_path: Path) -> None:
    cap = read(capture(tmp_path, nested_ipip(8), nested_ipip(9)))
    assert rows(cap, ["frame", "tunnel", "outer_src", "src"]) == [
        (1, ">".join(["ipip"] * 8), "172.16.7.1", A)]
    assert cap.stats.select("icmp", "undecodable").row(0) == (1, 1)
    assert cap.errors.select("frame", "kind", "reason").rows() == [
        (2, "tunnel_too_deep", "tunnels nested deeper than 8 levels: the inner ones are not opened")]
    shallow = read(tmp_path / "t.pcap", max_tunnel_depth=1)
    assert shallow.stats.select("icmp", "undecodable").row(0) == (0, 2)


# --------------------------------------------------------------------------- fragments in tunnels

def test_fragments_inside_tunnels_reassemble_per_tunnel(tmp_path: Path) -> None:
    # Two GRE tunnels carry fragments of two echoes with the same inner addresses and IP id,
    # interleaved: each tunnel's datagram reassembles on its own.
    echoes = [ipv4(A, B, echo_request(1, seq, bytes([seq]) * 64), ident=42) for seq in (1, 2)]
    pieces = [fragment_ipv4(e, size=32) for e in echoes]
    frames = []
    for i in range(3):
        for key, frags in zip((10, 20), pieces):
            frames.append(ethernet(over_ip(O1, O2, gre(frags[i], key=key))))
    cap = read(capture(tmp_path, *frames))
    assert rows(cap, ["frame", "tunnel", "tunnel_id", "src", "icmp_seq", "reassembled", "checksum_ok"]) == [
        (5, "gre", 10, A, 1, True, True), (6, "gre", 20, A, 2, True, True)]
    assert cap.fragments["tunnel"].to_list() == ["gre"] * 6
    datagrams = cap.datagrams.select("tunnel", "complete", "overlap_bytes").rows()
    assert datagrams == [("gre", True, 0), ("gre", True, 0)]


def test_outer_fragments_reassemble_then_open(tmp_path: Path) -> None:
    inner = ping(A, B, payload=bytes(100))
    outer = over_ip(O1, O2, gre(inner, key=3), ident=7)
    frames = [ethernet(f) for f in fragment_ipv4(outer, size=64)]
    cap = read(capture(tmp_path, *frames))
    assert rows(cap, ["frame", "tunnel", "outer_src", "src", "tunnel_id", "reassembled", "datagram_len"]) == [
        (3, "gre", O1, A, 3, True, 128)]
    assert cap.fragments["tunnel"].to_list() == [None, None, None]
    assert cap.datagrams.select("src", "tunnel").with_columns(pl.col("src").cast(pl.String)).rows() == [(O1, None)]


def test_fragments_of_a_tunnel_that_never_complete(tmp_path: Path) -> None:
    frags = fragment_ipv4_payload(A, B, echo_request(1, 1, bytes(64)), ident=5, size=32)
    cap = read(capture(tmp_path, ethernet(over_udp(O1, O2, 2152, gtpu(frags[0], teid=8)))))
    assert cap.stats.select("fragment", "icmp").row(0) == (1, 0)
    assert cap.fragments.select("tunnel", "frag_id").rows() == [("gtpu", 5)]
    assert cap.datagrams.select("tunnel", "complete").rows() == [("gtpu", False)]


def test_tunnels_doctests() -> None:
    result = doctest.testmod(synth.tunnels)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- sFlow samples

SP4 = ipv4(A, B, echo_request(1, 7, b"x" * 32))
SP6 = ipv6(C, D, echo_request6(2, 9, b"y" * 8, src=C, dst=D))
UDP4 = ipv4(A, B, udp(1000, 2000, b"z" * 10, src=A, dst=B), proto=17)
COUNTERS = struct.pack("!II", 2, 8) + bytes(8)  # a counter sample: skipped by its length
SFLOW_COLUMNS = ["frame", "tunnel", "outer_src", "src", "icmp_type", "icmp_seq", "payload_len", "sample_agent",
           "sample_rate"]


def sflow_datagrams() -> list[bytes]:
    return [
        # Ethernet (FCS stripped), IPv4 in an expanded sample, a counter sample, a UDP packet.
        ethernet(over_udp(O1, O2, 6343, sflow([
            sflow_sample(ethernet(SP4), rate=100, stripped=4), COUNTERS,
            sflow_sample(SP4, protocol=11, rate=50, expanded=True), sflow_sample(UDP4, protocol=11, rate=3)]))),
        # An IPv6 agent and an IPv6 sample, sent from sFlow's port.
        ethernet(over_udp("2001:db8:ffff::1", "2001:db8:ffff::2", 9999, sflow(
            [sflow_sample(SP6, protocol=12, rate=2)], agent="2001:db8::9"), src_port=6343)),
        # The agent kept the first 40 bytes of a longer frame: the message is cut.
        ethernet(over_udp(O1, O2, 6343, sflow([sflow_sample(ethernet(SP4)[:40], frame_length=len(ethernet(SP4)) + 4,
                                                            stripped=4, rate=7)]))),
        # No ICMP sampled: other.
        ethernet(over_udp(O1, O2, 6343, sflow([sflow_sample(UDP4, protocol=11, rate=3)]))),
    ]


def test_every_sampled_message_is_a_row_of_its_frame(tmp_path: Path) -> None:
    cap = read(capture(tmp_path, *sflow_datagrams()))
    assert rows(cap, SFLOW_COLUMNS) == [
        (1, "sflow", O1, A, 8, 7, 32, "192.0.2.9", 100),
        (1, "sflow", O1, A, 8, 7, 32, "192.0.2.9", 50),
        (2, "sflow", "2001:db8:ffff::1", C, 128, 9, 8, "2001:db8::9", 2),
        (3, "sflow", O1, A, 8, None, 32, "192.0.2.9", 7),
    ]
    assert cap.stats.select("packets", "icmp", "other", "undecodable").row(0) == (4, 3, 1, 0)
    assert cap.errors.height == 0
    # The payload length is the original packet's: its bytes were cut, so its checksum is unknown.
    assert cap.icmp["checksum_ok"].to_list() == [True, True, True, False]


def test_plain_traffic_is_no_sample(tmp_path: Path) -> None:
    cap = read(capture(tmp_path, ethernet(SP4)))
    assert rows(cap, ["tunnel", "sample_agent", "sample_rate"]) == [(None, None, None)]


def test_samples_equal_tshark(tmp_path: Path, tshark_icmp) -> None:
    path = capture(tmp_path, *sflow_datagrams())
    fields = ["icmp.type", "icmpv6.type", "sflow_245.agent", "sflow_245.agent.v6"]
    theirs = {frame: (v["all"]["icmp.type"] + v["all"]["icmpv6.type"],
                      (v["sflow_245.agent"] or v["sflow_245.agent.v6"])) for frame, v in tshark_icmp(path, fields).items()}
    cap = read(path)
    ours = {}
    for frame, icmp_type, agent in rows(cap, ["frame", "icmp_type", "sample_agent"]):
        types, _ = ours.setdefault(frame, ([], agent))
        types.append(str(icmp_type))
    assert ours == {frame: (types, agent) for frame, (types, agent) in theirs.items()}
    assert len(ours) == 3


def test_every_cut_is_counted_once(tmp_path: Path) -> None:
    frames = [Frame(T0, p[:keep], orig_len=len(p)) for p in sflow_datagrams() for keep in range(len(p))]
    cap = read(write_pcap(tmp_path / "cuts.pcap", frames))
    s = cap.stats.row(0, named=True)
    assert s["packets"] == len(frames) == s["icmp"] + s["fragment"] + s["other"] + s["undecodable"]
    # Every undecodable record has its error; a record with a sampled row may have more.
    assert 0 < s["undecodable"] <= cap.errors.height
    assert set(cap.errors["kind"]) == {"truncated"}


def test_a_cut_sample_is_an_error_after_the_rows_before_it(tmp_path: Path) -> None:
    packet = sflow_datagrams()[0]
    first_end = 14 + 20 + 8 + 28 + 8 + 32 + 8 + 16 + len(ethernet(SP4)) + 2  # padded to 4
    cap = read(write_pcap(tmp_path / "cut.pcap", [Frame(T0, packet[:first_end + 5], orig_len=len(packet))]))
    assert rows(cap, ["frame", "sample_rate"]) == [(1, 100)]
    assert cap.stats.select("icmp", "undecodable").row(0) == (1, 0)
    assert cap.errors.select("frame", "kind", "reason").rows() == [
        (1, "truncated", "sFlow sample header truncated: 5 of 8 bytes captured")]


def test_samples_are_not_flows(tmp_path: Path) -> None:
    # The datagram is a conversation; the packets sampled in it are copies, not traffic seen.
    cap = read(capture(tmp_path, *sflow_datagrams()[3:]), flows=True)
    assert cap.flows.select(pl.col("src").cast(pl.String), pl.col("dst").cast(pl.String), "proto").rows() == [
        (O1, O2, 17)]


# --------------------------------------------------------------------------- CAPWAP fragments

def capwap_echo(seq: int, length: int) -> bytes:
    return ethernet(ping(A, B, seq=seq, payload=bytes(range(256))[:length]), src_mac="02:00:00:00:00:0a",
                    dst_mac="02:00:00:00:00:0b")


def capwap_pieces(frame: bytes, *, size: int, fragment_id: int, carrier: tuple[str, str] = (O1, O2),
                  src_port: int = 49152, **kw) -> list[bytes]:
    return [ethernet(over_udp(*carrier, 5247, f, src_port=src_port))
            for f in synth.capwap_fragments(frame, size=size, fragment_id=fragment_id, **kw)]


CAPWAP_ROW = ["frame", "tunnel", "outer_src", "outer_dst", "src", "dst", "icmp_seq", "datagram_len", "reassembled",
              "checksum_ok", "src_mac"]


def capwap_rows(cap: ic.Capture) -> list[tuple]:
    return rows(cap, CAPWAP_ROW)


def shark_frames(tshark_icmp, path: Path) -> dict[int, tuple]:
    """frame: (type, code, carrier) of each ICMP message tshark shows."""
    return {f: (int(v["icmp.type"]), int(v["icmp.code"]), v["carrier"]) for f, v in tshark_icmp(path, ["icmp.type", "icmp.code"]).items()}


def test_capwap_fragments_reassemble_where_tshark_does(tmp_path: Path, tshark_icmp) -> None:
    two = capwap_pieces(capwap_echo(1, 40), size=48, fragment_id=1)
    three = capwap_pieces(capwap_echo(2, 80), size=48, fragment_id=2)
    backwards = capwap_pieces(capwap_echo(3, 80), size=48, fragment_id=3)[::-1]
    native = capwap_pieces(ieee80211(ping(A, B, seq=4, payload=bytes(60)), swap_fc=True), size=40, fragment_id=4, native=True)
    # Another packet's pieces in between, the same id from another carrier, and a whole packet.
    mixed = capwap_pieces(capwap_echo(5, 80), size=48, fragment_id=5)
    elsewhere = capwap_pieces(capwap_echo(6, 40), size=48, fragment_id=5, carrier=(O1, "192.0.2.3"))
    interleaved = [mixed[0], elsewhere[0], mixed[2], ethernet(over_udp(O1, O2, 5247, capwap(capwap_echo(7, 8)))),
                   elsewhere[1], mixed[1]]
    assert (len(two), len(three), len(native)) == (2, 3, 3)
    path = capture(tmp_path, *two, *three, *backwards, *native, *interleaved)
    cap = read(path)
    assert cap.stats.select("packets", "icmp", "fragment", "other", "undecodable", "reassembled").row(0) == (17, 7, 10, 0, 0, 6)
    assert capwap_rows(cap) == [
        (2, "capwap", O1, O2, A, B, 1, 68, True, True, "02:00:00:00:00:0a"),
        (5, "capwap", O1, O2, A, B, 2, 108, True, True, "02:00:00:00:00:0a"),
        (8, "capwap", O1, O2, A, B, 3, 108, True, True, "02:00:00:00:00:0a"),
        (11, "capwap", O1, O2, A, B, 4, 88, True, True, "02:00:00:00:00:01"),
        (15, "capwap", O1, O2, A, B, 7, 36, False, True, "02:00:00:00:00:0a"),
        (16, "capwap", O1, "192.0.2.3", A, B, 6, 68, True, True, "02:00:00:00:00:0a"),
        (17, "capwap", O1, O2, A, B, 5, 108, True, True, "02:00:00:00:00:0a"),
    ]
    # Tunnel-level pieces are not IP fragments: neither table lists them.
    assert (cap.fragments.height, cap.datagrams.height) == (0, 0)
    assert shark_frames(tshark_icmp, path) == {f: (8, 0, (4, A, B, 64)) for f, *_ in capwap_rows(cap)}


def test_capwap_pieces_key_on_addresses_not_ports(tmp_path: Path, tshark_icmp) -> None:
    first, second = capwap_pieces(capwap_echo(1, 40), size=48, fragment_id=9)
    moved = capwap_pieces(capwap_echo(1, 40), size=48, fragment_id=9, src_port=40000)[1]
    path = capture(tmp_path, first, moved, second)
    cap = read(path)
    assert cap.stats.select("icmp", "fragment").row(0) == (1, 2)
    assert cap.icmp["frame"].to_list() == [2] == sorted(shark_frames(tshark_icmp, path))


def test_capwap_missing_piece_gives_no_row(tmp_path: Path, tshark_icmp) -> None:
    pieces = capwap_pieces(capwap_echo(1, 80), size=48, fragment_id=1)
    path = capture(tmp_path, pieces[0], pieces[2])
    cap = read(path)
    assert cap.stats.select("packets", "icmp", "fragment", "other", "reassembled").row(0) == (2, 0, 2, 0, 0)
    assert (cap.icmp.height, cap.datagrams.height) == (0, 0)
    assert shark_frames(tshark_icmp, path) == {}


def test_capwap_duplicate_and_overlapping_pieces(tmp_path: Path, tshark_icmp) -> None:
    frame = capwap_echo(1, 80)
    first, middle, last = capwap_pieces(frame, size=48, fragment_id=1)
    # 16 bytes at 40: the end of the first piece and the start of the middle one, the same bytes;
    # then the middle piece again, changed: the first to arrive wins.
    overlap = ethernet(over_udp(O1, O2, 5247, capwap(frame[40:56], fragment=True, fragment_id=1, fragment_offset=40)))
    changed = capwap_pieces(bytes(len(frame)), size=48, fragment_id=1)[1]
    path = capture(tmp_path, first, overlap, middle, changed, last)
    cap = read(path)
    assert cap.stats.select("icmp", "fragment").row(0) == (1, 4)
    assert capwap_rows(cap) == [(5, "capwap", O1, O2, A, B, 1, 108, True, True, "02:00:00:00:00:0a")]
    # tshark keeps the same bytes: the checksum holds.
    assert {f: v["icmp.checksum.status"] for f, v in tshark_icmp(path, ["icmp.checksum.status"]).items()} == {5: "1"}


def test_capwap_fragments_inside_another_tunnel(tmp_path: Path) -> None:
    pieces = [ethernet(over_ip(P1, P2, gre(p[14:], key=3))) for p in capwap_pieces(capwap_echo(1, 80), size=48, fragment_id=1)]
    cap = read(capture(tmp_path, *pieces))
    assert rows(cap, ["frame", "tunnel", "outer_src", "tunnel_id", "reassembled"]) == [(3, "gre>capwap", P1, 3, True)]


def every_cut_of(tmp_path: Path, pieces: list[bytes]) -> tuple[ic.Capture, Path, int]:
    """Each piece cut at every byte, in order: every record counted, some as fragments, the
    cut ones undecodable with an error each. Returns the capture, its file and its records."""
    frames = [cut(p, keep) for p in pieces for keep in range(len(p) + 1)]
    path = write_pcap(tmp_path / "cuts.pcap", frames)
    cap = read(path)
    s = cap.stats.row(0, named=True)
    assert s["packets"] == len(frames) == s["icmp"] + s["fragment"] + s["other"] + s["undecodable"]
    assert s["undecodable"] == cap.errors.height
    assert s["fragment"] > 0 and s["undecodable"] > 0
    return cap, path, len(frames)


def test_capwap_every_cut_of_a_fragment_is_counted(tmp_path: Path, tshark_icmp) -> None:
    cap, path, n = every_cut_of(tmp_path, capwap_pieces(capwap_echo(1, 80), size=48, fragment_id=1))
    assert cap.icmp["frame"].to_list() == sorted(shark_frames(tshark_icmp, path)) == [n]


def test_capwap_ids_in_flight_stay_bounded(tmp_path: Path) -> None:
    firsts = [capwap_pieces(capwap_echo(1, 80), size=48, fragment_id=i)[0] for i in range(200)]
    rest = capwap_pieces(capwap_echo(1, 80), size=48, fragment_id=199)[1:]
    cap = read(capture(tmp_path, *firsts, *rest), max_datagrams=8)
    s = cap.stats.row(0, named=True)
    assert (s["packets"], s["icmp"], s["fragment"]) == (202, 1, 201)
    assert (s["reassembly_evictions"], s["max_datagrams_hits"]) == (192, 192)
    assert cap.icmp["frame"].to_list() == [202]


# --------------------------------------------------------------------------- 6LoWPAN fragments in ZEP

def zep_echo(seq: int, length: int) -> bytes:
    return ping(L1, L2, seq=seq, payload=bytes(range(256))[:length])


def zep_pieces(packet: bytes, *, size: int, tag: int, carrier: tuple[str, str] = (O1, O2), channel: int = 11) -> list[bytes]:
    """Each RFC 4944 fragment of ``packet`` (IPHC-compressed to 3 bytes) in an 802.15.4 frame of
    its own, in a ZEP datagram from ``carrier``."""
    pieces = lowpan_fragments(lowpan_iphc(packet), size=size, tag=tag, header_len=3, datagram_size=len(packet))
    return [ethernet(over_udp(*carrier, 17754, zep(ieee802154(p), channel=channel))) for p in pieces]


ZEP_ROW = ["frame", "tunnel", "outer_src", "tunnel_id", "src", "dst", "icmp_seq", "datagram_len", "reassembled", "checksum_ok"]


def shark_frames6(tshark_icmp, path: Path) -> dict[int, tuple]:
    """frame: (type, code, carrier) of each ICMPv6 message tshark shows."""
    return {f: (int(v["icmpv6.type"]), int(v["icmpv6.code"]), v["carrier"])
            for f, v in tshark_icmp(path, ["icmpv6.type", "icmpv6.code"]).items()}


def test_zep_lowpan_fragments_reassemble_where_tshark_does(tmp_path: Path, tshark_icmp) -> None:
    two = zep_pieces(zep_echo(1, 60), size=48, tag=1)
    backwards = zep_pieces(zep_echo(2, 100), size=48, tag=2)[::-1]
    mixed = zep_pieces(zep_echo(3, 100), size=48, tag=3)
    whole = ethernet(over_udp(O1, O2, 17754, zep(ieee802154(lowpan_iphc(zep_echo(4, 8))))))
    interleaved = [mixed[0], mixed[2], whole, mixed[1]]
    assert (len(two), len(backwards)) == (2, 3)
    path = capture(tmp_path, *two, *backwards, *interleaved)
    cap = read(path)
    assert cap.stats.select("packets", "icmp", "fragment", "other", "undecodable", "reassembled").row(0) == (9, 4, 5, 0, 0, 3)
    assert rows(cap, ZEP_ROW) == [
        (2, "zep", O1, 11, L1, L2, 1, 108, True, True),
        (5, "zep", O1, 11, L1, L2, 2, 148, True, True),
        (8, "zep", O1, 11, L1, L2, 4, 56, False, True),
        (9, "zep", O1, 11, L1, L2, 3, 148, True, True),
    ]
    assert (cap.fragments.height, cap.datagrams.height) == (0, 0)
    assert shark_frames6(tshark_icmp, path) == {f: (128, 0, (6, L1, L2, 64)) for f, *_ in rows(cap, ZEP_ROW)}


def test_zep_lowpan_fragments_key_on_the_tunnel(tmp_path: Path, tshark_icmp) -> None:
    # The same tag between the same 802.15.4 addresses, through two sniffers and on two channels:
    # three datagrams, none mixed with another, as IP and CAPWAP pieces keep to their tunnel.
    here = zep_pieces(zep_echo(1, 60), size=48, tag=7)
    there = zep_pieces(zep_echo(2, 60), size=48, tag=7, carrier=(P1, P2))
    channel = zep_pieces(zep_echo(3, 60), size=48, tag=7, channel=12)
    path = capture(tmp_path, here[0], there[0], channel[0], channel[1], there[1], here[1])
    cap = read(path)
    assert rows(cap, ["frame", "outer_src", "tunnel_id", "icmp_seq", "checksum_ok"]) == [
        (4, O1, 12, 3, True), (5, P1, 11, 2, True), (6, O1, 11, 1, True)]
    # tshark keys 6LoWPAN pieces on the 802.15.4 addresses and the tag alone: the first FRAG1
    # (sequence 1) and the first FRAGN after it make one datagram, the others none.
    assert {f: v[1] for f, v in shark_frames6(tshark_icmp, path).items()} == {4: 0}


def test_zep_lowpan_fragments_inside_another_tunnel(tmp_path: Path) -> None:
    pieces = [ethernet(over_ip(P1, P2, gre(p[14:], key=3))) for p in zep_pieces(zep_echo(1, 100), size=48, tag=1)]
    cap = read(capture(tmp_path, *pieces))
    assert rows(cap, ["frame", "tunnel", "outer_src", "tunnel_id", "reassembled"]) == [(3, "gre>zep", P1, 11, True)]


def test_zep_every_cut_of_a_lowpan_fragment_is_counted(tmp_path: Path, tshark_icmp) -> None:
    cap, path, n = every_cut_of(tmp_path, zep_pieces(zep_echo(1, 100), size=48, tag=1))
    # The last piece completes the datagram once its payload is whole: with the FCS cut (it is
    # checked only when captured), two frames before the end, as on link type 195.
    assert cap.icmp["frame"].to_list() == sorted(shark_frames6(tshark_icmp, path)) == [n - 2]
