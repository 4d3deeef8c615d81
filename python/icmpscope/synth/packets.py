"""Packet builders: link, IP, ICMP and transport layers as exact bytes.

Every builder returns ``bytes``. Checksums are computed unless ``checksum=`` forces a value (to
craft a bad one). Addresses are text, IPv4 or IPv6; MACs are ``aa:bb:cc:dd:ee:ff``.

>>> pkt = ethernet(ping("192.0.2.1", "192.0.2.2", payload=b"hi"))
>>> len(pkt), pkt[12:14].hex()
(44, '0800')
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator, Sequence

__all__ = [
    "internet_checksum",
    # link layers
    "ethernet", "sll", "sll2", "null_loopback", "llc_snap", "ieee80211", "radiotap", "ppi", "prism",
    "avs", "nflog", "pflog", "enc", "frame_relay", "atm_rfc1483", "slip",
    "ieee802154", "ieee802154_nonask_phy", "ieee802154_tap", "crc16_kermit",
    # 6LoWPAN
    "lowpan_iid", "lowpan_uncompressed", "lowpan_iphc", "lowpan_fragments",
    # IP
    "ipv4", "ipv6", "hop_by_hop", "routing", "dest_options", "fragment_header",
    # ICMPv4
    "icmpv4", "echo_request", "echo_reply", "dest_unreachable", "source_quench", "redirect",
    "router_advert", "router_solicit", "time_exceeded", "parameter_problem",
    "timestamp_request", "timestamp_reply", "info_request", "info_reply",
    "mask_request", "mask_reply",
    # ICMPv6
    "icmpv6", "echo_request6", "echo_reply6", "dest_unreachable6", "packet_too_big",
    "time_exceeded6", "parameter_problem6", "router_solicit6", "router_advert6",
    "neighbor_solicit", "neighbor_advert", "redirect6",
    # whole packets, transport, fragmentation
    "ping", "udp", "tcp",
    "fragment_ipv4", "fragment_ipv4_payload", "fragment_ipv6", "fragment_ipv6_payload",
]

_ZERO4 = b"\x00" * 4
PING_PAYLOAD = b"abcdefghijklmnopqrstuvwabcdefghi"  # what Windows ping sends


# --------------------------------------------------------------------------- shared helpers

def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement checksum of ``data`` (odd lengths padded with a zero byte).

    >>> hex(internet_checksum(bytes.fromhex("0001f203f4f5f6f7")))
    '0x220d'
    """
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pad(data: bytes, multiple: int, *, lead: int = 0, padn: bool = False) -> bytes:
    """``data`` padded so that ``lead + len`` is a multiple of ``multiple``.

    Zero bytes, or with ``padn`` an IPv6 PadN option (Pad1 when a single byte is missing).
    """
    n = -(lead + len(data)) % multiple
    if padn and n >= 2:
        return data + bytes([1, n - 2]) + b"\x00" * (n - 2)
    return data + b"\x00" * n


def _with_checksum(msg: bytes, at: int, forced: int | None, pseudo: bytes = b"") -> bytes:
    """``msg`` with its 16-bit checksum field at ``at`` filled in (computed over pseudo + msg)."""
    msg = msg[:at] + b"\x00\x00" + msg[at + 2:]
    value = internet_checksum(pseudo + msg) if forced is None else forced
    return msg[:at] + struct.pack("!H", value) + msg[at + 2:]


def _ip(text: str, version: int | None = None) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    addr = ipaddress.ip_address(text)
    if version is not None and addr.version != version:
        raise ValueError(f"expected an IPv{version} address, got {text!r}")
    return addr


def _family(src: str, dst: str) -> int:
    version = _ip(src).version
    _ip(dst, version)
    return version


def _pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    """The IPv4 or IPv6 pseudo-header that transport and ICMPv6 checksums cover."""
    if _family(src, dst) == 4:
        return _ip(src).packed + _ip(dst).packed + struct.pack("!BBH", 0, proto, length)
    return _ip(src).packed + _ip(dst).packed + struct.pack("!I3xB", length, proto)


def _mac(text: str) -> bytes:
    mac = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(mac) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return mac


def _ethertype(payload: bytes) -> int:
    version = payload[0] >> 4 if payload else None
    if version == 4:
        return 0x0800
    if version == 6:
        return 0x86DD
    raise ValueError(f"cannot infer the ethertype of a payload with IP version {version}; pass it")


# --------------------------------------------------------------------------- link layers

def ethernet(payload: bytes, *, src_mac: str = "02:00:00:00:00:01",
             dst_mac: str = "02:00:00:00:00:02", ethertype: int | None = None,
             vlans: Sequence[int] = (), vlan_tpid_outer: int = 0x8100) -> bytes:
    """Ethernet II frame (no FCS). ``vlans`` are TCIs, outermost first (VLAN id in the low 12 bits).

    The outermost tag uses ``vlan_tpid_outer`` (0x88A8 for 802.1ad QinQ), inner tags 0x8100.

    >>> ethernet(b"\\x45", vlans=[10, 20], vlan_tpid_outer=0x88A8)[12:22].hex()
    '88a8000a810000140800'
    """
    tags = b"".join(struct.pack("!HH", vlan_tpid_outer if i == 0 else 0x8100, tci)
                    for i, tci in enumerate(vlans))
    etype = _ethertype(payload) if ethertype is None else ethertype
    return _mac(dst_mac) + _mac(src_mac) + tags + struct.pack("!H", etype) + payload


def sll(payload: bytes, *, protocol: int | None = None, pkttype: int = 0,
        addr: str = "02:00:00:00:00:01") -> bytes:
    """Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113) 16-byte header + payload.

    >>> sll(b"\\x60").hex()
    '000000010006020000000001000086dd60'
    """
    proto = _ethertype(payload) if protocol is None else protocol
    return struct.pack("!HHH8sH", pkttype, 1, 6, _mac(addr), proto) + payload


def sll2(payload: bytes, *, protocol: int | None = None, ifindex: int = 1, pkttype: int = 0,
         addr: str = "02:00:00:00:00:01") -> bytes:
    """Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276) 20-byte header + payload.

    >>> sll2(b"\\x45", ifindex=3).hex()
    '080000000000000300010006020000000001000045'
    """
    proto = _ethertype(payload) if protocol is None else protocol
    return struct.pack("!HHIHBB8s", proto, 0, ifindex, 1, pkttype, 6, _mac(addr)) + payload


def null_loopback(payload: bytes, *, family: int | None = None, big_endian: bool = False) -> bytes:
    """BSD loopback (LINKTYPE_NULL, 0): 4-byte address family, 2 for IPv4, 30 for IPv6 by default.

    >>> null_loopback(b"\\x60").hex(), null_loopback(b"\\x45", big_endian=True).hex()
    ('1e00000060', '0000000245')
    """
    if family is None:
        family = {0x0800: 2, 0x86DD: 30}[_ethertype(payload)]
    return struct.pack(">I" if big_endian else "<I", family) + payload


def llc_snap(payload: bytes, *, ethertype: int | None = None) -> bytes:
    """802.2 LLC + SNAP (RFC 1042): AA AA 03, OUI 0, the ethertype."""
    return b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", _ethertype(payload) if ethertype is None else ethertype) + payload


def ieee80211(payload: bytes, *, subtype: int = 0, ds: int = 1, protected: bool = False,
              order: bool = False, src_mac: str = "02:00:00:00:00:01",
              dst_mac: str = "02:00:00:00:00:02", bssid: str = "02:00:00:00:00:aa",
              swap_fc: bool = False) -> bytes:
    """An 802.11 data frame (LINKTYPE_IEEE802_11, 105; no FCS) carrying ``payload`` in LLC/SNAP.

    ``ds`` is the To/From DS bits (1: to the AP; 3: four addresses), ``subtype`` 8 for QoS data
    (with an HT control field when ``order``); a ``protected`` frame's body is sent as it is.
    ``swap_fc`` swaps the two frame control bytes, as CAPWAP access points send native frames
    (and Wireshark reads them by default).

    >>> ieee80211(b"\x45")[:2].hex(), len(ieee80211(b"\x45", ds=3, subtype=8))
    ('0801', 41)
    """
    src, dst, bss = _mac(src_mac), _mac(dst_mac), _mac(bssid)
    flags = ds | (0x40 if protected else 0) | (0x80 if order else 0)
    addrs = {0: dst + src + bss, 1: bss + src + dst, 2: dst + bss + src, 3: bss + bss + dst}[ds]
    fc = (flags, subtype << 4 | 0x08) if swap_fc else (subtype << 4 | 0x08, flags)
    header = struct.pack("<BBH", *fc, 0) + addrs + b"\x00\x00"
    if ds == 3:
        header += src
    if subtype & 8:
        header += b"\x00\x00" + (bytes(4) if order else b"")
    return header + (payload if protected else llc_snap(payload))


def radiotap(frame: bytes) -> bytes:
    """A radiotap header (LINKTYPE_IEEE802_11_RADIOTAP, 127) with the Flags and Rate fields."""
    return struct.pack("<BBHIBB", 0, 0, 10, 0x06, 0, 2) + frame


def ppi(frame: bytes, *, dlt: int = 105) -> bytes:
    """A PPI header (LINKTYPE_PPI, 192) without fields, before a frame of link type ``dlt``."""
    return struct.pack("<BBHI", 0, 0, 8, dlt) + frame


def prism(frame: bytes, *, device: bytes = b"wlan0") -> bytes:
    """A Prism (wlan-ng) header (LINKTYPE_PRISM_HEADER, 119): 144 bytes, ten empty items."""
    items = b"".join(struct.pack("<IHHI", 0x41 + i * 0x1000, 1, 4, 0) for i in range(10))
    return struct.pack("<II16s", 0x41, 144, device) + items + frame


def avs(frame: bytes) -> bytes:
    """An AVS header (LINKTYPE_IEEE802_11_AVS, 163), version 1: 64 bytes, big-endian."""
    return struct.pack("!II", 0x80211001, 64) + bytes(56) + frame


def nflog(payload: bytes, *, prefix: bytes = b"icmp", big_endian: bool = False) -> bytes:
    """Linux NFLOG (LINKTYPE_NFLOG, 239): header, a prefix TLV (type 10), the payload TLV (9)."""
    e = ">" if big_endian else "<"

    def tlv(kind: int, value: bytes) -> bytes:
        return _pad(struct.pack(e + "HH", 4 + len(value), kind) + value, 4)
    family = {0x0800: 2, 0x86DD: 10}[_ethertype(payload)]
    return struct.pack("!BBH", family, 0, 1) + tlv(10, prefix + b"\x00") + tlv(9, payload)


def pflog(payload: bytes, *, ifname: bytes = b"em0") -> bytes:
    """OpenBSD PFLOG (LINKTYPE_PFLOG, 117): the 61-byte header padded to 64, AF 2 or 24 (IPv6)."""
    family = {0x0800: 2, 0x86DD: 24}[_ethertype(payload)]
    # length, af, action, reason, ifname, ruleset, rule numbers, uid/pid twice, direction in
    header = struct.pack("!BBBB16s16sIIIiIiB", 61, family, 0, 0, ifname, b"", 0, 0, 0, -1, 0, -1, 1)
    return _pad(header, 4) + payload


def enc(payload: bytes, *, spi: int = 0x1000) -> bytes:
    """OpenBSD ENC (LINKTYPE_ENC, 109): family (host order, little-endian here), SPI, flags."""
    family = {0x0800: 2, 0x86DD: 24}[_ethertype(payload)]
    return struct.pack("<I", family) + struct.pack("!II", spi, 0) + payload


def frame_relay(payload: bytes, *, dlci: int = 100, snap: bool = False) -> bytes:
    """Frame Relay (LINKTYPE_FRELAY, 107), RFC 2427: Q.922 address, UI, NLPID (or SNAP)."""
    address = struct.pack("!BB", (dlci >> 4) << 2, (dlci & 0xF) << 4 | 1)
    if snap:
        return address + b"\x03\x00\x80\x00\x00\x00" + struct.pack("!H", _ethertype(payload)) + payload
    return address + b"\x03" + (b"\xcc" if _ethertype(payload) == 0x0800 else b"\x8e") + payload


def atm_rfc1483(payload: bytes) -> bytes:
    """ATM with RFC 1483 LLC/SNAP (LINKTYPE_ATM_RFC1483, 100; DLT 11 on BSDs)."""
    return llc_snap(payload)


def slip(payload: bytes, *, direction: int = 0) -> bytes:
    """SLIP (LINKTYPE_SLIP, 8) as libpcap writes it: a 16-byte pseudo-header, then the packet."""
    return struct.pack("!B15s", direction, b"") + payload


def crc16_kermit(data: bytes) -> int:
    """The CRC of IEEE 802.15.4's FCS (ITU-T CRC-16, reflected, initial value 0).

    >>> hex(crc16_kermit(b"123456789"))
    '0x2189'
    """
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = crc >> 1 ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def _wpan_address(address: str | int | None) -> tuple[int, bytes]:
    """(address mode, wire bytes) of an 802.15.4 address: None, a 16-bit short address, or an
    extended (EUI-64) address as eight colon-separated bytes, sent little-endian."""
    if address is None:
        return 0, b""
    if isinstance(address, int):
        return 2, struct.pack("<H", address)
    eui = bytes.fromhex(address.replace(":", ""))
    if len(eui) != 8:
        raise ValueError(f"not an EUI-64 address: {address!r}")
    return 3, eui[::-1]


def ieee802154(payload: bytes, *, src: str | int | None = "02:00:00:00:00:00:00:01",
               dst: str | int | None = "02:00:00:00:00:00:00:02", pan: int = 0xABCD,
               src_pan: int | None = None, seq: int | None = 1, frame_type: int = 1,
               security: bool = False, version: int = 1, ies: bytes = b"",
               fcs: bool | int = True) -> bytes:
    """An IEEE 802.15.4 MAC frame carrying ``payload`` (LINKTYPE_IEEE802_15_4_WITHFCS, 195; with
    ``fcs=False`` LINKTYPE_IEEE802_15_4_NOFCS, 230; an int forces the FCS value).

    Addresses are None, a short address (int) or an EUI-64 text; ``src_pan`` other than None
    gives the source its own PAN ID (no PAN ID compression). ``version`` 2 (802.15.4-2015)
    allows ``seq=None`` (suppressed) and header ``ies`` (sent as they are, IE Present set).

    >>> ieee802154(b"", fcs=False).hex()
    '41dc01cdab02000000000000020100000000000002'
    """
    dst_mode, dst_bytes = _wpan_address(dst)
    src_mode, src_bytes = _wpan_address(src)
    both = dst_mode and src_mode
    compress = bool(both and src_pan is None)
    if version == 2:
        # 802.15.4-2015 table 7-2: two extended addresses share the destination's PAN ID.
        dst_pan_present = bool(dst_mode) and not (dst_mode == src_mode == 3 and compress)
        dst_pan_present = dst_pan_present or (dst_mode == src_mode == 3 and src_pan is not None)
        src_pan_present = bool(src_mode) and not compress and not (dst_mode == src_mode == 3)
        compress = compress if both else False
    else:
        dst_pan_present, src_pan_present = bool(dst_mode), bool(src_mode) and not compress
    control = (frame_type | (0x08 if security else 0) | (0x40 if compress else 0)
               | (0x100 if seq is None else 0) | (0x200 if ies else 0)
               | dst_mode << 10 | version << 12 | src_mode << 14)
    header = struct.pack("<H", control) + (b"" if seq is None else bytes([seq]))
    header += (struct.pack("<H", pan) if dst_pan_present else b"") + dst_bytes
    header += (struct.pack("<H", pan if src_pan is None else src_pan) if src_pan_present else b"")
    frame = header + src_bytes + ies + payload
    if fcs is False:
        return frame
    return frame + struct.pack("<H", crc16_kermit(frame) if fcs is True else fcs)


def ieee802154_nonask_phy(frame: bytes) -> bytes:
    """LINKTYPE_IEEE802_15_4_NONASK_PHY (215): preamble, SFD and PHY length before a MAC frame
    that ends with its FCS."""
    return bytes(4) + b"\xa7" + bytes([len(frame) & 0x7F]) + frame


def ieee802154_tap(frame: bytes, *, fcs_type: int | None = 1) -> bytes:
    """LINKTYPE_IEEE802_15_4_TAP (283): version 0, length, then TLVs (here the FCS type, 0 none,
    1 16-bit CRC, 2 32-bit CRC, and a channel TLV) before the MAC frame."""
    tlvs = b"" if fcs_type is None else struct.pack("<HHB3x", 0, 1, fcs_type)
    tlvs += struct.pack("<HHHBx", 3, 3, 11, 0)
    return struct.pack("<BBH", 0, 0, 4 + len(tlvs)) + tlvs + frame


# --------------------------------------------------------------------------- IP

def ipv4(src: str, dst: str, payload: bytes, *, proto: int = 1, ttl: int = 64, ident: int = 0,
         tos: int = 0, df: bool = False, mf: bool = False, frag_offset: int = 0,
         options: bytes = b"", total_length: int | None = None,
         checksum: int | None = None) -> bytes:
    """IPv4 datagram. ``frag_offset`` is in bytes (a multiple of 8); options are zero-padded.

    >>> pkt = ipv4("10.0.0.1", "10.0.0.2", b"abcd", proto=17, mf=True, frag_offset=8)
    >>> len(pkt), pkt[6:8].hex(), internet_checksum(pkt[:20])
    (24, '2001', 0)
    """
    if frag_offset % 8 or not 0 <= frag_offset <= 0x1FFF * 8:
        raise ValueError(f"frag_offset {frag_offset} is not a multiple of 8 in 0..65528")
    options = _pad(options, 4)
    ihl = 5 + len(options) // 4
    if ihl > 15:
        raise ValueError(f"IPv4 options of {len(options)} bytes exceed 40")
    length = ihl * 4 + len(payload) if total_length is None else total_length
    if length > 0xFFFF:
        raise ValueError(f"IPv4 datagram of {length} bytes exceeds 65535; "
                         "use fragment_ipv4_payload")
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | frag_offset // 8
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, length, ident, flags, ttl, proto, 0,
                         _ip(src, 4).packed, _ip(dst, 4).packed) + options
    return _with_checksum(header, 10, checksum) + payload


def hop_by_hop(options: bytes = b"") -> tuple[int, bytes]:
    """Hop-by-hop options header (type 0) for ``ipv6(ext_headers=...)``; padded by the builder."""
    return 0, options


def dest_options(options: bytes = b"") -> tuple[int, bytes]:
    """Destination options header (type 60) for ``ipv6(ext_headers=...)``; padded by the builder."""
    return 60, options


def routing(addresses: Sequence[str] = (), *, routing_type: int = 0,
            segments_left: int | None = None) -> tuple[int, bytes]:
    """Routing header (type 43) carrying a list of IPv6 addresses (type 0 layout).

    >>> routing(["2001:db8::1"])[1][:6].hex()
    '000100000000'
    """
    left = len(addresses) if segments_left is None else segments_left
    return 43, struct.pack("!BB4x", routing_type, left) + b"".join(
        _ip(a, 6).packed for a in addresses)


def fragment_header(*, offset: int, more: bool, ident: int) -> tuple[int, bytes]:
    """IPv6 fragment header (type 44); ``offset`` in bytes, a multiple of 8.

    >>> fragment_header(offset=1232, more=True, ident=7)[1].hex()
    '04d100000007'
    """
    if offset % 8 or not 0 <= offset <= 0x1FFF * 8:
        raise ValueError(f"fragment offset {offset} is not a multiple of 8 in 0..65528")
    return 44, struct.pack("!HI", offset | int(more), ident)


def _ext_header(kind: int, body: bytes, next_header: int) -> bytes:
    if kind == 44:  # fixed size; the length byte is reserved
        return struct.pack("!BB", next_header, 0) + body
    if kind in (0, 60):
        body = _pad(body, 8, lead=2, padn=True)
    if (2 + len(body)) % 8:
        raise ValueError(f"extension header {kind} of {2 + len(body)} bytes is not a multiple of 8")
    return struct.pack("!BB", next_header, (2 + len(body)) // 8 - 1) + body


def ipv6(src: str, dst: str, payload: bytes, *, next_header: int = 58, hop_limit: int = 64,
         ext_headers: Sequence[tuple[int, bytes]] = (), flow_label: int = 0,
         traffic_class: int = 0, payload_length: int | None = None) -> bytes:
    """IPv6 packet; ``ext_headers`` is a chain of (type, body) pairs, next-header fields linked.

    >>> pkt = ipv6("2001:db8::1", "2001:db8::2", b"x", ext_headers=[hop_by_hop()])
    >>> len(pkt), pkt[6], pkt[40:42].hex()
    (49, 0, '3a00')
    """
    kinds = [kind for kind, _ in ext_headers] + [next_header]
    body = b"".join(_ext_header(kind, data, nxt)
                    for (kind, data), nxt in zip(ext_headers, kinds[1:])) + payload
    length = len(body) if payload_length is None else payload_length
    if length > 0xFFFF:
        raise ValueError(f"IPv6 payload of {length} bytes exceeds 65535; use fragment_ipv6_payload")
    first = struct.pack("!I", 6 << 28 | traffic_class << 20 | flow_label)
    return (first + struct.pack("!HBB", length, kinds[0], hop_limit)
            + _ip(src, 6).packed + _ip(dst, 6).packed + body)


# --------------------------------------------------------------------------- ICMPv4

def icmpv4(type: int, code: int, body: bytes = b"", *, rest: bytes = _ZERO4,
           checksum: int | None = None) -> bytes:
    """ICMPv4 message: type, code, checksum, the 4 ``rest`` bytes (id/seq, gateway...), body.

    >>> msg = icmpv4(8, 0, b"hi", rest=b"\\x00\\x01\\x00\\x02")
    >>> msg.hex(), internet_checksum(msg)
    ('08008f93000100026869', 0)
    """
    if len(rest) != 4:
        raise ValueError(f"rest must be 4 bytes, got {len(rest)}")
    return _with_checksum(struct.pack("!BBH", type, code, 0) + rest + body, 2, checksum)


def _id_seq(id: int, seq: int) -> bytes:
    return struct.pack("!HH", id, seq)


def echo_request(id: int, seq: int, payload: bytes = b"", *, checksum: int | None = None) -> bytes:
    """ICMPv4 echo request (type 8).

    >>> echo_request(1, 2, b"hi")[:8].hex()
    '08008f9300010002'
    """
    return icmpv4(8, 0, payload, rest=_id_seq(id, seq), checksum=checksum)


def echo_reply(id: int, seq: int, payload: bytes = b"", *, checksum: int | None = None) -> bytes:
    """ICMPv4 echo reply (type 0).

    >>> echo_reply(1, 2)[:4].hex()
    '0000fffc'
    """
    return icmpv4(0, 0, payload, rest=_id_seq(id, seq), checksum=checksum)


def dest_unreachable(code: int, quoted: bytes, *, mtu: int = 0) -> bytes:
    """ICMPv4 destination unreachable (type 3); ``mtu`` is the next-hop MTU for code 4.

    >>> dest_unreachable(4, b"", mtu=1400)[4:8].hex()
    '00000578'
    """
    return icmpv4(3, code, quoted, rest=struct.pack("!HH", 0, mtu))


def source_quench(quoted: bytes) -> bytes:
    """ICMPv4 source quench (type 4).

    >>> source_quench(b"")[:2].hex()
    '0400'
    """
    return icmpv4(4, 0, quoted)


def redirect(code: int, gateway: str, quoted: bytes) -> bytes:
    """ICMPv4 redirect (type 5) to ``gateway``.

    >>> redirect(1, "10.0.0.254", b"")[4:8].hex()
    '0a0000fe'
    """
    return icmpv4(5, code, quoted, rest=_ip(gateway, 4).packed)


def router_advert(addrs: Sequence[tuple[str, int]], *, lifetime: int = 1800) -> bytes:
    """ICMPv4 router advertisement (type 9) of (address, preference) pairs.

    >>> router_advert([("10.0.0.1", 0)])[4:16].hex()
    '010207080a00000100000000'
    """
    body = b"".join(struct.pack("!4si", _ip(a, 4).packed, pref) for a, pref in addrs)
    return icmpv4(9, 0, body, rest=struct.pack("!BBH", len(addrs), 2, lifetime))


def router_solicit() -> bytes:
    """ICMPv4 router solicitation (type 10).

    >>> router_solicit().hex()
    '0a00f5ff00000000'
    """
    return icmpv4(10, 0)


def time_exceeded(code: int, quoted: bytes) -> bytes:
    """ICMPv4 time exceeded (type 11): code 0 TTL in transit, 1 reassembly time exceeded.

    >>> time_exceeded(0, b"")[:2].hex()
    '0b00'
    """
    return icmpv4(11, code, quoted)


def parameter_problem(pointer: int, quoted: bytes, *, code: int = 0) -> bytes:
    """ICMPv4 parameter problem (type 12) pointing at byte ``pointer`` of the quoted header.

    >>> parameter_problem(9, b"")[4:8].hex()
    '09000000'
    """
    return icmpv4(12, code, quoted, rest=bytes([pointer, 0, 0, 0]))


def _timestamp(kind: int, id: int, seq: int, originate: int, receive: int, transmit: int) -> bytes:
    return icmpv4(kind, 0, struct.pack("!III", originate, receive, transmit), rest=_id_seq(id, seq))


def timestamp_request(id: int, seq: int, *, originate: int = 0, receive: int = 0,
                      transmit: int = 0) -> bytes:
    """ICMPv4 timestamp request (type 13); times in ms since midnight UT.

    >>> len(timestamp_request(1, 1, originate=1000))
    20
    """
    return _timestamp(13, id, seq, originate, receive, transmit)


def timestamp_reply(id: int, seq: int, *, originate: int = 0, receive: int = 0,
                    transmit: int = 0) -> bytes:
    """ICMPv4 timestamp reply (type 14).

    >>> timestamp_reply(1, 1)[0]
    14
    """
    return _timestamp(14, id, seq, originate, receive, transmit)


def info_request(id: int, seq: int) -> bytes:
    """ICMPv4 information request (type 15).

    >>> info_request(1, 1)[0]
    15
    """
    return icmpv4(15, 0, rest=_id_seq(id, seq))


def info_reply(id: int, seq: int) -> bytes:
    """ICMPv4 information reply (type 16).

    >>> info_reply(1, 1)[0]
    16
    """
    return icmpv4(16, 0, rest=_id_seq(id, seq))


def mask_request(id: int, seq: int, mask: str = "0.0.0.0") -> bytes:
    """ICMPv4 address mask request (type 17).

    >>> mask_request(1, 1)[8:].hex()
    '00000000'
    """
    return icmpv4(17, 0, _ip(mask, 4).packed, rest=_id_seq(id, seq))


def mask_reply(id: int, seq: int, mask: str) -> bytes:
    """ICMPv4 address mask reply (type 18).

    >>> mask_reply(1, 1, "255.255.255.0")[8:].hex()
    'ffffff00'
    """
    return icmpv4(18, 0, _ip(mask, 4).packed, rest=_id_seq(id, seq))


# --------------------------------------------------------------------------- ICMPv6

def icmpv6(type: int, code: int, body: bytes = b"", *, rest: bytes = _ZERO4, src: str, dst: str,
           checksum: int | None = None) -> bytes:
    """ICMPv6 message; the checksum covers the IPv6 pseudo-header of ``src`` and ``dst``.

    >>> icmpv6(128, 0, rest=b"\\x00\\x01\\x00\\x01", src="fe80::1", dst="fe80::2").hex()
    '800082b600010001'
    """
    if len(rest) != 4:
        raise ValueError(f"rest must be 4 bytes, got {len(rest)}")
    msg = struct.pack("!BBH", type, code, 0) + rest + body
    return _with_checksum(msg, 2, checksum, _pseudo_header(src, dst, 58, len(msg)))


def _nd_option(kind: int, data: bytes) -> bytes:
    """Neighbor-discovery option: type, length in 8-byte units, data zero-padded."""
    data = _pad(data, 8, lead=2)
    return bytes([kind, (2 + len(data)) // 8]) + data


def echo_request6(id: int, seq: int, payload: bytes = b"", *, src: str, dst: str,
                  checksum: int | None = None) -> bytes:
    """ICMPv6 echo request (type 128).

    >>> echo_request6(1, 1, src="fe80::1", dst="fe80::2")[:4].hex()
    '800082b6'
    """
    return icmpv6(128, 0, payload, rest=_id_seq(id, seq), src=src, dst=dst, checksum=checksum)


def echo_reply6(id: int, seq: int, payload: bytes = b"", *, src: str, dst: str,
                checksum: int | None = None) -> bytes:
    """ICMPv6 echo reply (type 129).

    >>> echo_reply6(1, 1, src="fe80::2", dst="fe80::1")[0]
    129
    """
    return icmpv6(129, 0, payload, rest=_id_seq(id, seq), src=src, dst=dst, checksum=checksum)


def dest_unreachable6(code: int, quoted: bytes, *, src: str, dst: str) -> bytes:
    """ICMPv6 destination unreachable (type 1).

    >>> dest_unreachable6(4, b"", src="2001:db8::1", dst="2001:db8::2")[:2].hex()
    '0104'
    """
    return icmpv6(1, code, quoted, src=src, dst=dst)


def packet_too_big(mtu: int, quoted: bytes, *, src: str, dst: str) -> bytes:
    """ICMPv6 packet too big (type 2) with the link ``mtu``.

    >>> packet_too_big(1280, b"", src="2001:db8::1", dst="2001:db8::2")[4:8].hex()
    '00000500'
    """
    return icmpv6(2, 0, quoted, rest=struct.pack("!I", mtu), src=src, dst=dst)


def time_exceeded6(code: int, quoted: bytes, *, src: str, dst: str) -> bytes:
    """ICMPv6 time exceeded (type 3): code 0 hop limit, 1 reassembly time exceeded.

    >>> time_exceeded6(0, b"", src="2001:db8::1", dst="2001:db8::2")[:2].hex()
    '0300'
    """
    return icmpv6(3, code, quoted, src=src, dst=dst)


def parameter_problem6(code: int, pointer: int, quoted: bytes, *, src: str, dst: str) -> bytes:
    """ICMPv6 parameter problem (type 4) pointing at byte ``pointer`` of the quoted packet.

    >>> parameter_problem6(1, 40, b"", src="2001:db8::1", dst="2001:db8::2")[4:8].hex()
    '00000028'
    """
    return icmpv6(4, code, quoted, rest=struct.pack("!I", pointer), src=src, dst=dst)


def router_solicit6(*, src_mac: str | None = None, src: str, dst: str = "ff02::2") -> bytes:
    """ICMPv6 router solicitation (type 133), with a source link-layer option if ``src_mac``.

    >>> len(router_solicit6(src_mac="02:00:00:00:00:01", src="fe80::1"))
    16
    """
    body = _nd_option(1, _mac(src_mac)) if src_mac else b""
    return icmpv6(133, 0, body, src=src, dst=dst)


def router_advert6(*, lifetime: int = 1800, prefixes: Sequence[tuple[str, int]] = (),
                   hop_limit: int = 64, src_mac: str | None = None, flags: int = 0,
                   mtu: int | None = None, routes: Sequence[tuple[str, int]] = (), src: str,
                   dst: str = "ff02::1") -> bytes:
    """ICMPv6 router advertisement (type 134) with prefix-information options (on-link, SLAAC).

    ``flags`` is the byte after the hop limit (M 0x80, O 0x40, H 0x20, preference 0x18); ``mtu``
    adds an MTU option, ``routes`` Route Information options (RFC 4191) of (prefix, length), each
    as short as its length allows.

    >>> ra = router_advert6(prefixes=[("2001:db8::", 64)], src="fe80::1")
    >>> len(ra), ra[4:8].hex(), ra[16:20].hex()
    (48, '40000708', '030440c0')
    >>> router_advert6(routes=[("2001:db8::", 32)], src="fe80::1")[16:28].hex()
    '180220080000ffff20010db8'
    """
    options = b"".join(
        _nd_option(3, struct.pack("!BBIII16s", length, 0xC0, 2592000, 604800, 0,
                                  _ip(prefix, 6).packed))
        for prefix, length in prefixes)
    if mtu is not None:
        options += _nd_option(5, struct.pack("!HI", 0, mtu))
    for prefix, length in routes:
        given = 0 if length == 0 else 8 if length <= 64 else 16
        options += _nd_option(24, struct.pack("!BBI", length, 0x08, 0xFFFF) + _ip(prefix, 6).packed[:given])
    if src_mac:
        options = _nd_option(1, _mac(src_mac)) + options
    return icmpv6(134, 0, struct.pack("!II", 0, 0) + options,
                  rest=struct.pack("!BBH", hop_limit, flags, lifetime), src=src, dst=dst)


def neighbor_solicit(target: str, *, src_mac: str | None = None, src: str,
                     dst: str | None = None) -> bytes:
    """ICMPv6 neighbor solicitation (type 135); ``dst`` defaults to the solicited-node address.

    >>> len(neighbor_solicit("fe80::2", src="fe80::1"))
    24
    """
    if dst is None:
        dst = str(ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff"
                                        + _ip(target, 6).packed[13:]))
    body = _ip(target, 6).packed + (_nd_option(1, _mac(src_mac)) if src_mac else b"")
    return icmpv6(135, 0, body, src=src, dst=dst)


def neighbor_advert(target: str, *, router: bool = False, solicited: bool = True,
                    override: bool = True, target_mac: str | None = None, options: bytes = b"",
                    src: str, dst: str) -> bytes:
    """ICMPv6 neighbor advertisement (type 136), with a target link-layer option if given, then
    ``options`` as they are (for malformed ones).

    >>> neighbor_advert("fe80::2", src="fe80::2", dst="fe80::1")[4:8].hex()
    '60000000'
    """
    flags = (0x80 if router else 0) | (0x40 if solicited else 0) | (0x20 if override else 0)
    body = _ip(target, 6).packed + (_nd_option(2, _mac(target_mac)) if target_mac else b"") + options
    return icmpv6(136, 0, body, rest=bytes([flags, 0, 0, 0]), src=src, dst=dst)


def redirect6(target: str, destination: str, *, quoted: bytes = b"", target_mac: str | None = None,
              src: str, dst: str) -> bytes:
    """ICMPv6 redirect (type 137): reach ``destination`` via ``target``; ``quoted`` in an option.

    >>> len(redirect6("fe80::fe", "2001:db8::9", src="fe80::1", dst="fe80::2"))
    40
    """
    body = _ip(target, 6).packed + _ip(destination, 6).packed
    if target_mac:
        body += _nd_option(2, _mac(target_mac))
    if quoted:
        body += _nd_option(4, b"\x00" * 6 + quoted)
    return icmpv6(137, 0, body, src=src, dst=dst)


# --------------------------------------------------------------------------- whole packets

def ping(src: str, dst: str, *, id: int = 1, seq: int = 1, payload: bytes = PING_PAYLOAD,
         reply: bool = False, ttl: int = 64) -> bytes:
    """An IPv4 or IPv6 packet (by address family) carrying an echo request, or reply.

    >>> len(ping("192.0.2.1", "192.0.2.2")), len(ping("2001:db8::1", "2001:db8::2", reply=True))
    (60, 80)
    """
    if _family(src, dst) == 4:
        msg = (echo_reply if reply else echo_request)(id, seq, payload)
        return ipv4(src, dst, msg, proto=1, ttl=ttl)
    msg = (echo_reply6 if reply else echo_request6)(id, seq, payload, src=src, dst=dst)
    return ipv6(src, dst, msg, next_header=58, hop_limit=ttl)


def udp(src_port: int, dst_port: int, payload: bytes = b"", *, src: str, dst: str) -> bytes:
    """UDP datagram (header + payload) with its checksum over the IPv4/IPv6 pseudo-header.

    >>> len(udp(53, 53, b"q", src="10.0.0.1", dst="10.0.0.2"))
    9
    """
    seg = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    seg = _with_checksum(seg, 6, None, _pseudo_header(src, dst, 17, len(seg)))
    # A computed zero is sent as 0xFFFF: zero means "no checksum" in UDP.
    return seg if seg[6:8] != b"\x00\x00" else seg[:6] + b"\xff\xff" + seg[8:]


def tcp(src_port: int, dst_port: int, payload: bytes = b"", *, flags: int = 0x02, seq: int = 0,
        ack: int = 0, window: int = 65535, src: str, dst: str) -> bytes:
    """TCP segment (20-byte header, default SYN) with its checksum over the pseudo-header.

    >>> tcp(1234, 80, src="10.0.0.1", dst="10.0.0.2")[12:14].hex()
    '5002'
    """
    seg = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, ack, 5 << 4, flags, window, 0, 0)
    seg += payload
    return _with_checksum(seg, 16, None, _pseudo_header(src, dst, 6, len(seg)))


# --------------------------------------------------------------------------- 6LoWPAN

def lowpan_iid(address: str | int) -> bytes:
    """The interface identifier RFC 6282 derives from an 802.15.4 address: an EUI-64 with its
    U/L bit flipped, or 0000:00ff:fe00:XXXX for a short address.

    >>> lowpan_iid(0x1234).hex(), lowpan_iid("00:12:4b:00:01:02:03:04").hex()
    ('000000fffe001234', '02124b0001020304')
    """
    if isinstance(address, int):
        return bytes.fromhex("000000fffe00") + struct.pack("!H", address)
    eui = bytearray.fromhex(address.replace(":", ""))
    eui[0] ^= 0x02
    return bytes(eui)


def lowpan_uncompressed(packet: bytes) -> bytes:
    """An IPv6 packet behind the uncompressed-IPv6 dispatch (0x41, RFC 4944)."""
    return b"\x41" + packet


def _iphc_address(address: bytes, mode: int, context: bool, multicast: bool) -> bytes:
    """The bytes of ``address`` an IPHC source or destination address mode carries inline."""
    if multicast:
        if context:  # DAM 00: RFC 3306 unicast-prefix-based, flags/scope, RIID and group id
            return address[1:3] + address[12:16]
        return {0: address, 1: address[1:2] + address[11:16], 2: address[1:2] + address[13:16],
                3: address[15:16]}[mode]
    if context and mode == 0:
        return b""  # the unspecified address
    return {0: address, 1: address[8:], 2: address[14:], 3: b""}[mode]


def lowpan_iphc(packet: bytes, *, tf: int = 3, hlim: int | None = None, sam: int = 3, dam: int = 3,
                sac: bool = False, dac: bool = False, cid: int | None = None,
                nhc_udp: int | None = None, nhc_ext: bool = False) -> bytes:
    """``packet`` (an IPv6 packet) compressed with IPHC (RFC 6282) in the modes given: ``tf`` for
    traffic class and flow label, ``hlim`` (None: compressed when 1, 64 or 255), ``sam``/``dam``
    with ``sac``/``dac`` context flags (multicast destinations use M=1 by their address),
    ``cid`` an inline context-identifier byte. ``nhc_udp`` compresses a UDP header (its CPP
    bits: 0 ports inline, 1-3 elided 0xF0xx/0xF0Bx forms; 4 adds checksum elision), ``nhc_ext``
    a leading hop-by-hop or destination-options header. Whatever the modes drop must be what
    the receiver rebuilds (link-derived IIDs, prefixes, ports): that is the caller's choice.

    >>> lowpan_iphc(ping("fe80::1", "fe80::2"))[:2].hex()
    '7a33'
    """
    first = struct.unpack("!I", packet[:4])[0]
    traffic_class, flow = first >> 20 & 0xFF, first & 0xFFFFF
    next_header, hop_limit = packet[6], packet[7]
    src, dst, rest = packet[8:24], packet[24:40], packet[40:]
    multicast = dst[0] == 0xFF
    if hlim is None:
        hlim = {1: 1, 64: 2, 255: 3}.get(hop_limit, 0)
    ecn_dscp = (traffic_class & 3) << 6 | traffic_class >> 2
    inline = {0: struct.pack("!BI", ecn_dscp, flow)[:1] + struct.pack("!I", flow)[1:],
              1: struct.pack("!I", (traffic_class & 3) << 22 | flow)[1:],
              2: bytes([ecn_dscp]), 3: b""}[tf]
    compressed_next = nhc_udp is not None or nhc_ext
    if not compressed_next:
        inline += bytes([next_header])
    if hlim == 0:
        inline += bytes([hop_limit])
    inline += _iphc_address(src, sam, sac, False) + _iphc_address(dst, dam, dac, multicast)
    if nhc_ext:
        kind, length = rest[0], (rest[1] + 1) * 8
        eid = {0: 0, 43: 1, 60: 3}[next_header]
        inline += bytes([0xE0 | eid << 1, kind, length - 2]) + rest[2:length]
        next_header, rest = kind, rest[length:]
    if nhc_udp is not None:
        ports, elide = nhc_udp & 3, bool(nhc_udp & 4)
        sport, dport = rest[0:2], rest[2:4]
        carried = {0: sport + dport, 1: sport + dport[1:], 2: sport[1:] + dport,
                   3: bytes([(sport[1] & 0xF) << 4 | dport[1] & 0xF])}[ports]
        inline += bytes([0xF0 | (0x04 if elide else 0) | ports]) + carried + (b"" if elide else rest[6:8])
        rest = rest[8:]
    dispatch = struct.pack("!BB", 0x60 | tf << 3 | (0 if not compressed_next else 4) | hlim,
                           (0x80 if cid is not None else 0) | (0x40 if sac else 0) | sam << 4
                           | (0x08 if multicast else 0) | (0x04 if dac else 0) | dam)
    return dispatch + (b"" if cid is None else bytes([cid])) + inline + rest


def lowpan_fragments(datagram: bytes, *, size: int, tag: int, header_len: int,
                     datagram_size: int) -> list[bytes]:
    """RFC 4944 fragments of a 6LoWPAN ``datagram`` (its first ``header_len`` bytes a compressed
    header going into FRAG1 whole): FRAG1 then FRAGNs of ``size`` bytes (a multiple of 8) of the
    rest, offsets in 8-byte units of the ``datagram_size``-byte uncompressed datagram."""
    uncompressed_header = datagram_size - (len(datagram) - header_len)
    first_end = header_len + size - uncompressed_header % 8 if uncompressed_header % 8 else header_len + size
    frags = [struct.pack("!HH", 0xC000 | datagram_size, tag) + datagram[:first_end]]
    at = uncompressed_header + first_end - header_len
    for start in range(first_end, len(datagram), size):
        frags.append(struct.pack("!HHB", 0xE000 | datagram_size, tag, at // 8) + datagram[start:start + size])
        at += size
    return frags


# --------------------------------------------------------------------------- fragmentation

def _split(payload: bytes, size: int, offset: int, more: bool) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, chunk, more-fragments) for each ``size``-byte piece of ``payload``."""
    if size <= 0 or size % 8:
        raise ValueError(f"fragment size {size} is not a positive multiple of 8")
    for start in range(0, max(len(payload), 1), size):
        end = start + size
        yield offset + start, payload[start:end], end < len(payload) or more


def fragment_ipv4_payload(src: str, dst: str, payload: bytes, *, proto: int = 1, ident: int,
                          size: int, ttl: int = 64, tos: int = 0, options: bytes = b"",
                          offset: int = 0, more: bool = False) -> list[bytes]:
    """IPv4 fragments carrying ``payload`` (of any length) in ``size``-byte pieces.

    ``offset`` places the payload at that byte of the datagram and ``more`` keeps MF set on the
    last piece, to craft partial or overlapping fragment sets. Options are copied to every piece.

    >>> frags = fragment_ipv4_payload("10.0.0.1", "10.0.0.2", bytes(70000), ident=9, size=65000)
    >>> [(len(f), f[6:8].hex()) for f in frags]
    [(65020, '2000'), (5020, '1fbd')]
    """
    return [ipv4(src, dst, chunk, proto=proto, ttl=ttl, ident=ident, tos=tos, options=options,
                 mf=mf, frag_offset=at)
            for at, chunk, mf in _split(payload, size, offset, more)]


def fragment_ipv4(packet: bytes, *, size: int) -> list[bytes]:
    """Split an IPv4 packet (itself possibly a fragment) into fragments of ``size`` payload bytes.

    >>> [len(f) for f in fragment_ipv4(ping("10.0.0.1", "10.0.0.2", payload=bytes(30)), size=16)]
    [36, 36, 26]
    """
    ihl = (packet[0] & 0x0F) * 4
    tos, ident, flags, ttl, proto = struct.unpack("!B2xHHBB", packet[1:10])
    return fragment_ipv4_payload(
        str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20])),
        packet[ihl:], proto=proto, ident=ident, size=size, ttl=ttl, tos=tos,
        options=packet[20:ihl], offset=(flags & 0x1FFF) * 8, more=bool(flags & 0x2000))


def fragment_ipv6_payload(src: str, dst: str, payload: bytes, *, next_header: int = 58,
                          ident: int, size: int, hop_limit: int = 64,
                          ext_headers: Sequence[tuple[int, bytes]] = (), offset: int = 0,
                          more: bool = False) -> list[bytes]:
    """IPv6 fragments of ``payload`` (of any length); ``ext_headers`` is the unfragmentable part.

    ``offset`` and ``more`` work as in :func:`fragment_ipv4_payload`.

    >>> frags = fragment_ipv6_payload("2001:db8::1", "2001:db8::2", bytes(100), ident=5, size=64)
    >>> [(len(f), f[6], f[40], f[42:44].hex()) for f in frags]
    [(112, 44, 58, '0001'), (84, 44, 58, '0040')]
    """
    return [ipv6(src, dst, chunk, next_header=next_header, hop_limit=hop_limit,
                 ext_headers=[*ext_headers, fragment_header(offset=at, more=mf, ident=ident)])
            for at, chunk, mf in _split(payload, size, offset, more)]


def fragment_ipv6(packet: bytes, *, size: int, ident: int) -> list[bytes]:
    """Split an IPv6 packet, inserting a fragment header after its unfragmentable part.

    The unfragmentable part runs through the last hop-by-hop or routing header of the leading
    chain of hop-by-hop, routing and destination-options headers (RFC 8200 section 4.5).

    >>> pkt = ipv6("2001:db8::1", "2001:db8::2", bytes(20), ext_headers=[hop_by_hop()])
    >>> [len(f) for f in fragment_ipv6(pkt, size=16, ident=1)]
    [72, 60]
    """
    chain: list[tuple[int, bytes]] = []
    kind, at = packet[6], 40
    while kind in (0, 43, 60):
        length = (packet[at + 1] + 1) * 8
        chain.append((kind, packet[at + 2:at + length]))
        kind, at = packet[at], at + length
    if kind == 44:
        raise ValueError("packet already has a fragment header")
    # Trailing destination options (not followed by a routing header) belong to the fragments.
    keep = max((i + 1 for i, (k, _) in enumerate(chain) if k in (0, 43)), default=0)
    unfragmentable, rest = chain[:keep], chain[keep:]
    first = rest[0][0] if rest else kind
    fragmentable = packet[40 + sum(2 + len(body) for _, body in unfragmentable):]
    return fragment_ipv6_payload(
        str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40])),
        fragmentable, next_header=first, ident=ident, size=size, hop_limit=packet[7],
        ext_headers=unfragmentable)
