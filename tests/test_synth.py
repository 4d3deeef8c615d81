"""Tests of icmpscope.synth: the bytes it writes are exactly the bytes asked for."""

from __future__ import annotations

import doctest
import gzip
import ipaddress
import shutil
import struct
import subprocess

import pytest

import icmpscope.synth as synth
from icmpscope.synth import (
    Frame, Interface, RawBlock, dest_options, dest_unreachable, dest_unreachable6, echo_request,
    echo_request6, ethernet, fragment_ipv4, fragment_ipv4_payload, fragment_ipv6, hop_by_hop,
    icmpv6, internet_checksum, ipv4, ipv6, neighbor_solicit, null_loopback, packet_too_big,
    pcap_bytes, pcapng_bytes, ping, redirect6, router_advert6, routing, sll, sll2, tcp,
    time_exceeded, udp, write_modified_pcap, write_pcap, write_pcapng,
)

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

A, B = "192.0.2.1", "192.0.2.2"
C, D = "2001:db8::1", "2001:db8::2"
T = 1_700_000_000_123_456_789  # ns since the epoch


def tshark(path, *fields: str, options: tuple[str, ...] = ()) -> list[list[str]]:
    args = [TSHARK, "-r", str(path), *options, "-T", "fields"]
    for field in fields:
        args += ["-e", field]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def pseudo6(src: str, dst: str, length: int) -> bytes:
    """IPv6 pseudo-header written out independently of the module under test."""
    return (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
            + length.to_bytes(4, "big") + b"\x00\x00\x00\x3a")


def blocks(data: bytes, e: str = "<") -> list[tuple[int, bytes]]:
    """(type, body) of every pcapng block, checking both length fields of each."""
    out, at = [], 0
    while at < len(data):
        kind, length = struct.unpack_from(e + "II", data, at)
        assert length % 4 == 0 and struct.unpack_from(e + "I", data, at + length - 4)[0] == length
        out.append((kind, data[at + 8:at + length - 4]))
        at += length
    assert at == len(data)
    return out


# --------------------------------------------------------------------------- packets

@pytest.mark.parametrize("module", [synth.packets, synth.writer, synth])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_reexports_resolve():
    assert all(hasattr(synth, name) for name in synth.__all__)
    assert {"ping", "write_pcapng", "Frame", "fragment_ipv6_payload"} <= set(synth.__all__)


def test_internet_checksum_known_answers():
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D  # RFC 1071 section 3
    assert internet_checksum(b"\x01") == 0xFEFF  # odd length: padded with a zero byte
    assert internet_checksum(b"") == 0xFFFF


def test_icmpv4_checksum_verifies_and_can_be_forced():
    msg = echo_request(0x1234, 7, b"payload!")
    assert msg[:8] == bytes.fromhex("0800") + msg[2:4] + bytes.fromhex("12340007")
    assert internet_checksum(msg) == 0
    bad = echo_request(0x1234, 7, b"payload!", checksum=0xBEEF)
    assert bad[2:4] == b"\xbe\xef" and bad[4:] == msg[4:] and internet_checksum(bad) != 0
    quoted = ipv4(B, A, udp(1, 2, src=B, dst=A), proto=17)
    assert internet_checksum(time_exceeded(0, quoted)) == 0
    assert internet_checksum(dest_unreachable(4, quoted, mtu=1400)) == 0


def test_icmpv6_checksum_known_answer():
    # Worked by hand: fe80+0001 + fe80+0002 + length 0008 + next header 003a + 8000 + 0001 + 0001
    # = 0x27d47 -> folded 0x7d49 -> complement 0x82b6.
    msg = echo_request6(1, 1, src="fe80::1", dst="fe80::2")
    assert msg == bytes.fromhex("800082b600010001")
    for msg, src, dst in [
        (echo_request6(9, 3, b"odd", src=C, dst=D), C, D),
        (router_advert6(prefixes=[("2001:db8::", 64)], src_mac="02:00:00:00:00:01",
                        src="fe80::1"), "fe80::1", "ff02::1"),
        (neighbor_solicit("fe80::2", src="fe80::1"), "fe80::1", "ff02::1:ff00:2"),
    ]:
        assert internet_checksum(pseudo6(src, dst, len(msg)) + msg) == 0
    assert icmpv6(1, 0, src=C, dst=D, checksum=0)[2:4] == b"\x00\x00"


def test_ipv4_header_fields():
    pkt = ipv4(A, B, b"abcdefgh", proto=17, ttl=3, ident=0xABCD, tos=0x10, df=True,
               frag_offset=16, options=b"\x94\x04\x00")  # router alert (3 of its 4 bytes)
    ver_ihl, tos, length, ident, flags, ttl, proto = struct.unpack("!BBHHHBB", pkt[:10])
    assert (ver_ihl, tos, length, ident, flags, ttl, proto) == (0x46, 0x10, 32, 0xABCD,
                                                               0x4002, 3, 17)
    assert pkt[12:20] == bytes([192, 0, 2, 1, 192, 0, 2, 2])
    assert pkt[20:24] == b"\x94\x04\x00\x00" and pkt[24:] == b"abcdefgh"
    assert internet_checksum(pkt[:24]) == 0
    bad = ipv4(A, B, b"", total_length=1000, checksum=0x1111)
    assert bad[2:4] == (1000).to_bytes(2, "big") and bad[10:12] == b"\x11\x11"
    with pytest.raises(ValueError, match="multiple of 8"):
        ipv4(A, B, b"", frag_offset=12)
    with pytest.raises(ValueError, match="IPv4 address"):
        ipv4(C, B, b"")


def test_ipv6_extension_header_chain():
    pkt = ipv6(C, D, b"ICMP", ext_headers=[hop_by_hop(b"\x05\x02\x00\x00"), routing([D]),
                                           dest_options()], hop_limit=9, flow_label=0x12345)
    assert pkt[:8] == bytes.fromhex("60012345") + (8 + 24 + 8 + 4).to_bytes(2, "big") + b"\x00\x09"
    hbh, rh, do = pkt[40:48], pkt[48:72], pkt[72:80]
    assert hbh == bytes.fromhex("2b00050200000100")  # next=routing, len 0, option, PadN(0)
    assert rh[:4] == bytes.fromhex("3c020001") and rh[8:] == ipaddress.IPv6Address(D).packed
    assert do == bytes.fromhex("3a00010400000000")  # next=ICMPv6, PadN(4)
    assert pkt[80:] == b"ICMP"
    with pytest.raises(ValueError, match="multiple of 8"):
        ipv6(C, D, b"", ext_headers=[(43, b"\x00" * 5)])


def test_link_layers():
    ip = ping(A, B)
    frame = ethernet(ip, vlans=[100, 0x2000 | 200], vlan_tpid_outer=0x88A8,
                     src_mac="aa:bb:cc:dd:ee:ff", dst_mac="11:22:33:44:55:66")
    assert frame[:12] == bytes.fromhex("112233445566aabbccddeeff")
    assert frame[12:22] == bytes.fromhex("88a8 0064 8100 20c8 0800") and frame[22:] == ip
    assert ethernet(ping(C, D))[12:14] == b"\x86\xdd"
    assert ethernet(b"\x00", ethertype=0x88E5)[12:14] == b"\x88\xe5"
    assert sll(ip, pkttype=4)[:16] == bytes.fromhex("0004 0001 0006 020000000001 0000 0800")
    assert sll2(ip, ifindex=7)[:20] == bytes.fromhex(
        "0800 0000 00000007 0001 00 06 020000000001 0000")
    assert null_loopback(ip)[:4] == b"\x02\x00\x00\x00"
    assert null_loopback(ping(C, D), family=24, big_endian=True)[:4] == b"\x00\x00\x00\x18"
    with pytest.raises(ValueError, match="ethertype"):
        ethernet(b"\x00")


def test_udp_and_tcp_checksums_cover_the_pseudo_header():
    seg = udp(5353, 53, b"q", src=A, dst=B)
    pseudo4 = bytes([192, 0, 2, 1, 192, 0, 2, 2, 0, 17, 0, len(seg)])
    assert struct.unpack("!HHH", seg[:6]) == (5353, 53, 9) and internet_checksum(pseudo4 + seg) == 0
    syn = tcp(1234, 80, src=C, dst=D)
    pseudo = pseudo6(C, D, len(syn))[:-1] + b"\x06"
    assert len(syn) == 20 and syn[13] == 0x02 and internet_checksum(pseudo + syn) == 0


# --------------------------------------------------------------------------- fragmentation

def test_fragment_ipv4_round_trip():
    pkt = ipv4(A, B, echo_request(5, 6, bytes(range(256)) * 10), ident=0x4242, ttl=30)
    frags = fragment_ipv4(pkt, size=1000)
    fields = [struct.unpack("!HHHB", f[2:9]) for f in frags]
    assert fields == [(1020, 0x4242, 0x2000 | 0, 30), (1020, 0x4242, 0x2000 | 125, 30),
                      (588, 0x4242, 250, 30)]
    assert all(internet_checksum(f[:20]) == 0 for f in frags)
    assert b"".join(f[20:] for f in frags) == pkt[20:]
    # Re-fragmenting a fragment keeps its offset and its MF flag.
    again = fragment_ipv4(frags[1], size=504)
    assert [struct.unpack("!H", f[6:8])[0] for f in again] == [0x2000 | 125, 0x2000 | 188]


def test_ping_of_death_fragments_overflow_the_datagram_limit():
    msg = echo_request(1, 1, bytes(65600))
    frags = fragment_ipv4_payload(A, B, msg, ident=7, size=1480)
    last = frags[-1]
    offset = (struct.unpack("!H", last[6:8])[0] & 0x1FFF) * 8
    assert offset + len(last) - 20 > 65535 - 20
    assert all(len(f) <= 65535 for f in frags) and not last[6] & 0x20
    assert b"".join(f[20:] for f in frags) == msg


def test_fragment_ipv6_keeps_the_unfragmentable_part():
    body = echo_request6(1, 2, bytes(range(200)), src=C, dst=D)
    pkt = ipv6(C, D, body, ext_headers=[hop_by_hop(), routing([D]), dest_options()])
    frags = fragment_ipv6(pkt, size=96, ident=0xDEADBEEF)
    assert len(frags) == 3
    for i, frag in enumerate(frags):
        assert frag[6] == 0 and frag[40] == 43 and frag[48] == 44  # hbh -> routing -> fragment
        next_header, _, off_m, ident = struct.unpack("!BBHI", frag[72:80])
        assert (next_header, off_m, ident) == (60, i * 96 | (i < 2), 0xDEADBEEF)
        assert struct.unpack("!H", frag[4:6])[0] == len(frag) - 40
    # The trailing destination options travel in the fragments, as RFC 8200 4.5 says.
    assert b"".join(f[80:] for f in frags) == pkt[72:]


# --------------------------------------------------------------------------- pcap

@pytest.mark.parametrize("nanosecond, big_endian", [(False, False), (True, False), (False, True)])
def test_pcap_headers(nanosecond, big_endian):
    e = ">" if big_endian else "<"
    data = ethernet(ping(A, B))  # 74 bytes
    cap = pcap_bytes([(T, data), Frame(T + 1, data, orig_len=1500)], linktype=1,
                     nanosecond=nanosecond, big_endian=big_endian, snaplen=40)
    assert struct.unpack_from(e + "IHHiIII", cap) == (
        0xA1B23C4D if nanosecond else 0xA1B2C3D4, 2, 4, 0, 0, 40, 1)
    frac = 123456789 if nanosecond else 123456
    assert struct.unpack_from(e + "IIII", cap, 24) == (1700000000, frac, 40, 74)
    assert cap[40:80] == data[:40]
    assert struct.unpack_from(e + "IIII", cap, 80) == (1700000000, frac + nanosecond, 40, 1500)
    assert len(cap) == 24 + 2 * (16 + 40)


def test_pcap_linktype_comes_from_the_frames():
    raw = ping(A, B)
    assert struct.unpack_from("<I", pcap_bytes([Frame(T, raw, linktype=101)]), 20) == (101,)
    assert struct.unpack_from("<I", pcap_bytes([]), 20) == (1,)
    with pytest.raises(ValueError, match="link types 101 and 1"):
        pcap_bytes([Frame(T, raw, linktype=101), (T, ethernet(raw))])


@needs_tshark
def test_tshark_agrees_on_checksums_and_reassembly(tmp_path):
    quoted4 = ipv4(B, A, udp(5000, 53, b"hello", src=B, dst=A), proto=17)
    quoted6 = ipv6(D, C, tcp(5000, 80, src=D, dst=C), next_header=6)
    packets = [
        ping(A, B), ping(C, D, reply=True),
        ipv4(A, B, dest_unreachable(4, quoted4, mtu=1400)),
        ipv6(C, D, packet_too_big(1280, quoted6, src=C, dst=D)),
        ipv6(C, D, dest_unreachable6(4, quoted6, src=C, dst=D)),
        ipv6("fe80::1", "fe80::2", redirect6("fe80::fe", D, quoted=quoted6, src="fe80::1",
                                             dst="fe80::2"), hop_limit=255),
        ipv4(A, B, tcp(1, 2, src=A, dst=B), proto=6),
        ipv6(C, D, udp(1, 2, b"x", src=C, dst=D), next_header=17),
        *fragment_ipv4_payload(A, B, echo_request(9, 9, bytes(3000)), ident=4, size=1480),
        *fragment_ipv6(ping(C, D, payload=bytes(3000)), size=1232, ident=99),
    ]
    frames = [(T + i, ethernet(p)) for i, p in enumerate(packets)]
    path = write_pcap(tmp_path / "all.pcap", frames)
    checks = ("ip.checksum.status", "icmp.checksum.status", "icmpv6.checksum.status",
              "udp.checksum.status", "tcp.checksum.status")
    rows = tshark(path, "_ws.col.Protocol", *checks, options=(
        "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
        "-o", "tcp.check_checksum:TRUE"))
    assert len(rows) == len(packets)
    statuses = {s for row in rows for cell in row[1:] for s in cell.split(",") if s}
    assert statuses == {"1"}  # 1 = good; every checksum tshark looked at verified
    # The last frame of each fragment train completes its datagram, which decodes as ICMP.
    assert [row[0] for row in rows[-6:]] == ["IPv4", "IPv4", "ICMP", "IPv6", "IPv6", "ICMPv6"]


@needs_tshark
def test_modified_pcap(tmp_path):
    data = ethernet(ping(A, B))
    path = write_modified_pcap(tmp_path / "m.pcap", [(T, data), (T + 2000, data)], ifindex=3,
                               protocol=0x0800, pkt_type=4)
    cap = path.read_bytes()
    assert struct.unpack_from("<IHHiIII", cap) == (0xA1B2CD34, 2, 4, 0, 0, 262144, 1)
    assert cap[24:48] == struct.pack("<IIIIiHBx", 1700000000, 123456, 74, 74, 3, 0x0800, 4)
    assert cap[48:48 + 74] == data and len(cap) == 24 + 2 * (24 + 74)
    assert tshark(path, "frame.time_epoch") == [["1700000000.123456000"], ["1700000000.123458000"]]


# --------------------------------------------------------------------------- pcapng

@needs_tshark
def test_pcapng_interfaces_timestamps_and_encapsulations(tmp_path):
    interfaces = [Interface(linktype=1, tsresol=9, name="eth0"),
                  Interface(linktype=101, tsresol=9, tsoffset=1000),
                  Interface(linktype=113, tsresol=3, snaplen=30)]
    raw = ping(C, D)
    frames = [Frame(T, ethernet(raw)), Frame(T + 1, raw, interface=1),
              Frame(T + 2, sll(raw), interface=2)]
    path = write_pcapng(tmp_path / "a.pcapng", frames, interfaces=interfaces)
    assert tshark(path, "frame.time_epoch", "frame.encap_type", "frame.cap_len", "frame.len") == [
        ["1700000000.123456789", "1", "94", "94"],   # wiretap encap 1: Ethernet
        ["1700000000.123456790", "7", "80", "80"],   # 7: raw IP
        ["1700000000.123000000", "25", "30", "96"],  # 25: Linux SLL, ms units, cut at snaplen
    ]


def test_pcapng_block_layout():
    raw = ping(A, B)
    items = [Frame(T, ethernet(raw)), RawBlock(0x1234, b"abcde"),
             Frame(T, raw, interface=1, orig_len=1000), Frame(T + 5, ethernet(raw))]
    interfaces = [Interface(), Interface(linktype=101, tsresol=9, tsoffset=-2, name="lo")]
    data = pcapng_bytes(items, interfaces=interfaces, sections=2, big_endian=True)
    parsed = blocks(data, ">")
    assert [kind for kind, _ in parsed] == [0x0A0D0D0A, 1, 1, 6, 0x1234,
                                            0x0A0D0D0A, 1, 1, 6, 6]
    shb, idb0, idb1, epb, raw_block = (body for _, body in parsed[:5])
    assert struct.unpack(">IHHq", shb) == (0x1A2B3C4D, 1, 0, -1)
    assert idb0 == struct.pack(">HHI", 1, 0, 262144)  # defaults: no options at all
    assert idb1 == struct.pack(">HHI", 101, 0, 262144) + bytes.fromhex(
        "0002 0002 6c6f0000"   # if_name "lo"
        "0009 0001 09000000"   # if_tsresol 9
        "000e 0008 fffffffffffffffe"  # if_tsoffset -2
        "0000 0000")           # opt_endofopt
    ticks = T // 1000
    assert struct.unpack_from(">IIIII", epb) == (0, ticks >> 32, ticks & 0xFFFFFFFF, 74, 74)
    assert raw_block == b"abcde\x00\x00\x00"
    ticks = T + 2 * 10**9
    assert struct.unpack_from(">IIIII", parsed[8][1]) == (1, ticks >> 32, ticks & 0xFFFFFFFF,
                                                         60, 1000)


def test_pcapng_simple_and_obsolete_packet_blocks():
    data = ethernet(ping(A, B))
    spb = blocks(pcapng_bytes([(T, data)], block="spb", interfaces=[Interface(snaplen=64)]))[2]
    assert spb[0] == 3 and spb[1] == struct.pack("<I", 74) + data[:64]
    pb = blocks(pcapng_bytes([(T, data)], block="pb"))[2]
    ticks = T // 1000
    assert pb[0] == 2 and pb[1] == struct.pack("<HHIIII", 0, 0, ticks >> 32, ticks & 0xFFFFFFFF,
                                               74, 74) + data + b"\x00\x00"
    with pytest.raises(ValueError, match="only 1 are defined"):
        pcapng_bytes([Frame(T, data, interface=1)], interfaces=[Interface()])


def test_pcapng_infers_interfaces_from_the_frames():
    raw = ping(A, B)
    parsed = blocks(pcapng_bytes([Frame(T, raw, linktype=101, interface=1), (T, ethernet(raw))]))
    assert [body[:2] for kind, body in parsed if kind == 1] == [b"\x01\x00", b"\x65\x00"]


# --------------------------------------------------------------------------- compression

def test_gzip_output(tmp_path):
    frames = [(T, ethernet(ping(A, B)))]
    path = write_pcap(tmp_path / "a.pcap.gz", frames, compress="gzip")
    assert path.read_bytes()[:3] == b"\x1f\x8b\x08"
    assert gzip.decompress(path.read_bytes()) == pcap_bytes(frames)
    with pytest.raises(ValueError, match="compress"):
        write_pcap(tmp_path / "b.pcap", frames, compress="lz4")  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd command is not installed")
def test_zstd_output(tmp_path):
    frames = [(T, ethernet(ping(A, B)))]
    path = write_pcapng(tmp_path / "a.pcapng.zst", frames, compress="zstd")
    assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    out = subprocess.run(["zstd", "-d", "-c", str(path)], capture_output=True, check=True).stdout
    assert out == pcapng_bytes(frames)
