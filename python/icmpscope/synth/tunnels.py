"""Tunnel builders: the encapsulation headers that carry IP (or Ethernet) inside other traffic.

Each builder returns the tunnel header followed by ``payload``, ready to be put where that tunnel
lives: GRE-based ones (``gre``, ``erspan1/2/3``) behind an IP header of protocol 47
(:func:`over_ip`), UDP-based ones (``vxlan``, ``geneve``, ``gtpu``, ``gtp0``, ``teredo``,
``ayiya``, ``mpls`` over UDP, ``l2tp2``, ``vxlan_gpe``, ``lisp``, ``tzsp``, ``zep``, ``capwap``) in a UDP
datagram (:func:`over_udp`), ``l2tp3`` and ``pim_register`` behind an IP header of protocol 115 and
103, ``nhrp`` in GRE (``gre(nhrp(packet), protocol=ETHERTYPE_NHRP)``), ``mpls``, ``pppoe``, ``nsh`` and ``cisco_metadata`` behind an Ethernet header of their ethertype.

>>> from icmpscope.synth import ethernet, ping
>>> inner = ping("10.0.0.1", "10.0.0.2")
>>> outer = over_ip("192.0.2.1", "192.0.2.2", gre(inner, key=7))
>>> outer[9], outer[20:24].hex(), outer[24:28].hex()
(47, '20000800', '00000007')
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .packets import _ethertype, _family, _ip, internet_checksum, ipv4, ipv6, udp

__all__ = [
    "over_ip", "over_udp",
    "gre", "erspan1", "erspan2", "erspan3", "ah",
    "vxlan", "geneve", "gtpu", "gtp0", "teredo", "ayiya", "mpls", "pppoe", "l2tp2", "l2tp3",
    "nsh", "vxlan_gpe", "lisp", "tzsp", "zep", "cisco_metadata", "capwap", "capwap_fragments", "pim_register", "nhrp",
    "sflow", "sflow_sample",
    "ETHERTYPE_NSH", "ETHERTYPE_CISCO_METADATA", "ETHERTYPE_NHRP",
    "ETHERTYPE_MPLS", "ETHERTYPE_PPPOE_SESSION", "ETHERTYPE_TEB",
]

ETHERTYPE_TEB = 0x6558  # transparent Ethernet bridging: an Ethernet frame follows
ETHERTYPE_MPLS = 0x8847
ETHERTYPE_PPPOE_SESSION = 0x8864
ETHERTYPE_NSH = 0x894F
ETHERTYPE_CISCO_METADATA = 0x8909
ETHERTYPE_ERSPAN = 0x88BE  # types I and II
ETHERTYPE_ERSPAN3 = 0x22EB
ETHERTYPE_NHRP = 0x2001  # as GRE names NHRP
PROTO_IPIP, PROTO_IPV6, PROTO_GRE, PROTO_AH, PROTO_UDP = 4, 41, 47, 51, 17


def _payload_type(payload: bytes) -> int:
    """The ethertype of an IP packet (by its version nibble), else an Ethernet frame (TEB)."""
    try:
        return _ethertype(payload)
    except ValueError:
        return ETHERTYPE_TEB


# --------------------------------------------------------------------------- carriers

def over_ip(src: str, dst: str, payload: bytes, *, proto: int = PROTO_GRE, ttl: int = 64,
            ident: int = 0) -> bytes:
    """An IPv4 or IPv6 packet (by address family) of protocol ``proto`` carrying ``payload``.

    IP-in-IP is ``over_ip(a, b, inner, proto=4)`` (IPv4 inside) or ``proto=41`` (IPv6 inside).

    >>> over_ip("2001:db8::1", "2001:db8::2", b"", proto=4)[6]
    4
    """
    if _family(src, dst) == 4:
        return ipv4(src, dst, payload, proto=proto, ttl=ttl, ident=ident)
    return ipv6(src, dst, payload, next_header=proto, hop_limit=ttl)


def over_udp(src: str, dst: str, dst_port: int, payload: bytes, *, src_port: int = 49152,
             ttl: int = 64) -> bytes:
    """An IPv4 or IPv6 packet carrying a UDP datagram from ``src_port`` to ``dst_port``.

    >>> pkt = over_udp("192.0.2.1", "192.0.2.2", 4789, b"x")
    >>> pkt[9], pkt[22:24].hex(), len(pkt)
    (17, '12b5', 29)
    """
    return over_ip(src, dst, udp(src_port, dst_port, payload, src=src, dst=dst),
                   proto=PROTO_UDP, ttl=ttl)


# --------------------------------------------------------------------------- GRE family

def gre(payload: bytes, *, protocol: int | None = None, key: int | None = None,
        seq: int | None = None, checksum: bool = False, version: int = 0,
        ack: int | None = None) -> bytes:
    """GRE header (RFC 2784/2890) and payload; ``protocol`` defaults to the payload's ethertype
    (an Ethernet frame when it is not IP: transparent Ethernet bridging, 0x6558).

    ``version=1`` writes the enhanced GRE of PPTP (RFC 2637): the key is the payload length and
    call id (``key`` = call id), with an optional acknowledgment number.

    >>> gre(b"\\x45", key=1, seq=2).hex()
    '30000800000000010000000245'
    """
    proto = _payload_type(payload) if protocol is None else protocol
    if version == 1:
        proto = 0x880B if protocol is None else protocol
        key = (len(payload) << 16) | (key or 0)
    flags = (0x8000 if checksum else 0) | (0x2000 if key is not None else 0)
    flags |= (0x1000 if seq is not None else 0) | (0x0080 if ack is not None else 0) | version
    fields = b""
    if checksum:
        fields += b"\x00\x00\x00\x00"  # checksum and reserved, filled below
    if key is not None:
        fields += struct.pack("!I", key)
    if seq is not None:
        fields += struct.pack("!I", seq)
    if ack is not None:
        fields += struct.pack("!I", ack)
    header = struct.pack("!HH", flags, proto) + fields
    if checksum:
        value = internet_checksum(header + payload)
        header = header[:4] + struct.pack("!H", value) + header[6:]
    return header + payload


def erspan1(frame: bytes) -> bytes:
    """ERSPAN type I: GRE (protocol 0x88BE, no sequence number) straight followed by the frame.

    >>> erspan1(b"").hex()
    '000088be'
    """
    return gre(frame, protocol=ETHERTYPE_ERSPAN)


def erspan2(frame: bytes, *, session: int, vlan: int = 0, seq: int = 0, cos: int = 0,
            encap: int = 0, index: int = 0) -> bytes:
    """ERSPAN type II: GRE with a sequence number, the 8-byte ERSPAN header, then the frame.

    >>> erspan2(b"", session=100, vlan=23, seq=1)[8:].hex()
    '1017006400000000'
    """
    header = struct.pack("!HHI", 1 << 12 | vlan, cos << 13 | encap << 11 | session,
                         index & 0xFFFFF)
    return gre(header + frame, protocol=ETHERTYPE_ERSPAN, seq=seq)


def erspan3(frame: bytes, *, session: int, vlan: int = 0, timestamp: int = 0, sgt: int = 0,
            platform: bytes | None = None, seq: int | None = None) -> bytes:
    """ERSPAN type III: GRE (protocol 0x22EB), the 12-byte header and, when ``platform`` is
    given, its 8-byte platform-specific subheader (the O bit), then the frame.

    >>> erspan3(b"", session=5, vlan=10, platform=bytes(8))[4:16].hex()
    '200a00050000000000000001'
    """
    if platform is not None and len(platform) != 8:
        raise ValueError("the ERSPAN III platform subheader is 8 bytes")
    header = struct.pack("!HHIHH", 2 << 12 | vlan, session, timestamp, sgt,
                         1 if platform is not None else 0)
    return gre(header + (platform or b"") + frame, protocol=ETHERTYPE_ERSPAN3, seq=seq)


def ah(payload: bytes, *, next_header: int, spi: int = 0x1000, seq: int = 1,
       icv: bytes = bytes(12)) -> bytes:
    """IPsec authentication header (RFC 4302) in front of ``payload`` (put it behind an IP
    header of protocol 51, or in an IPv6 extension chain).

    >>> ah(b"", next_header=1).hex()[:16]
    '0104000000001000'
    """
    length = 12 + len(icv)
    if length % 4:
        raise ValueError("the AH length must be a multiple of 4 bytes")
    return struct.pack("!BBHII", next_header, length // 4 - 2, 0, spi, seq) + icv + payload


# --------------------------------------------------------------------------- UDP family

def vxlan(frame: bytes, *, vni: int, flags: int = 0x08) -> bytes:
    """VXLAN header (RFC 7348, UDP port 4789) and the Ethernet frame it carries.

    >>> vxlan(b"", vni=0x123456).hex()
    '0800000012345600'
    """
    return struct.pack("!B3xI", flags, vni << 8) + frame


def geneve(payload: bytes, *, vni: int, protocol: int | None = None, options: bytes = b"",
           oam: bool = False, critical: bool = False) -> bytes:
    """Geneve header (RFC 8926, UDP port 6081) with ``options`` (a multiple of 4 bytes).

    >>> geneve(b"", vni=123, options=bytes(8)).hex()[:16]
    '0200655800007b00'
    """
    if len(options) % 4 or len(options) > 252:
        raise ValueError("Geneve options are a multiple of 4 bytes, at most 252")
    proto = _payload_type(payload) if protocol is None else protocol
    flags = (0x80 if oam else 0) | (0x40 if critical else 0)
    return struct.pack("!BBHI", len(options) // 4, flags, proto, vni << 8) + options + payload


def gtpu(payload: bytes, *, teid: int, seq: int | None = None,
         extensions: Sequence[tuple[int, bytes]] = (), message: int = 0xFF) -> bytes:
    """GTPv1-U header (UDP port 2152) and the T-PDU; ``extensions`` are (type, content) pairs,
    each content padded so that the extension is a multiple of 4 bytes.

    >>> gtpu(b"E", teid=1).hex()
    '30ff00010000000145'
    >>> gtpu(b"", teid=1, extensions=[(0x85, b"\\x00\\x09")])[:16].hex()
    '34ff0008000000010000008501000900'
    """
    optional = seq is not None or extensions
    flags = 0x30 | (0x04 if extensions else 0) | (0x02 if seq is not None else 0)
    rest = b""
    if optional:
        rest += struct.pack("!HB", seq or 0, 0)  # sequence, N-PDU number
        chain = b""
        for i, (kind, content) in enumerate(extensions):
            body = content + b"\x00" * (-(len(content) + 2) % 4)
            nxt = extensions[i + 1][0] if i + 1 < len(extensions) else 0
            chain += bytes([(len(body) + 2) // 4]) + body + bytes([nxt])
        rest += bytes([extensions[0][0] if extensions else 0]) + chain
    return struct.pack("!BBHI", flags, message, len(rest) + len(payload), teid) + rest + payload


def gtp0(payload: bytes, *, flow: int = 0, tid: int = 0, seq: int = 0) -> bytes:
    """GTPv0 header (20 bytes; UDP port 3386, where tshark calls it GTP') and the T-PDU.

    >>> len(gtp0(b"")), gtp0(b"")[:2].hex()
    (20, '1eff')
    """
    return struct.pack("!BBHHHB3sQ", 0x1E, 0xFF, len(payload), seq, flow, 0xFF, b"\xff" * 3,
                       tid) + payload


def teredo(packet: bytes, *, origin: tuple[int, str] | None = None,
           auth: tuple[bytes, bytes, bytes, int] | None = None) -> bytes:
    """Teredo (RFC 4380, UDP port 3544): the optional authentication indication (client id,
    authentication value, 8-byte nonce, confirmation byte), the optional origin indication
    (port, IPv4 address; written obfuscated), then the IPv6 packet.

    >>> teredo(b"", origin=(3797, "192.0.2.1")).hex()
    '0000f12a3ffffdfe'
    """
    out = b""
    if auth is not None:
        client, value, nonce, confirmation = auth
        if len(nonce) != 8:
            raise ValueError("the Teredo nonce is 8 bytes")
        out += struct.pack("!HBB", 1, len(client), len(value)) + client + value + nonce
        out += bytes([confirmation])
    if origin is not None:
        port, addr = origin
        out += struct.pack("!HH4s", 0, port ^ 0xFFFF,
                           bytes(b ^ 0xFF for b in _ip(addr, 4).packed))
    return out + packet


def ayiya(packet: bytes, *, identity: bytes = bytes(16), signature: bytes = bytes(20),
          opcode: int = 1, next_header: int | None = None, epoch: int = 0) -> bytes:
    """AYIYA (UDP port 5072): identity (1, 2, 4... 32768 bytes) and signature (a multiple of 4
    bytes, at most 60), then the packet; ``next_header`` defaults to 41 (IPv6) or 4 (IPv4).

    >>> ayiya(b"\\x60").hex()[:8]
    '41521129'
    """
    idlen = max(len(identity), 1).bit_length() - 1
    if len(identity) != 1 << idlen or len(signature) % 4 or len(signature) > 60:
        raise ValueError("AYIYA identity must be a power of two long, signature a multiple of 4")
    nxt = (4 if packet[:1] and packet[0] >> 4 == 4 else 41) if next_header is None else next_header
    return (struct.pack("!BBBBI", idlen << 4 | 1, len(signature) // 4 << 4 | 2, 1 << 4 | opcode,
                        nxt, epoch) + identity + signature + packet)


# --------------------------------------------------------------------------- link family

def mpls(payload: bytes, labels: int | Sequence[int], *, ttl: int = 64,
         control_word: bool = False, tc: int = 0) -> bytes:
    """An MPLS label stack (RFC 3032, outermost label first; the last gets the bottom-of-stack
    bit), with an optional pseudo-wire control word (RFC 4385) in front of ``payload``.

    >>> mpls(b"", [16, 17]).hex()
    '0001004000011140'
    """
    stack = [labels] if isinstance(labels, int) else list(labels)
    if not stack:
        raise ValueError("an MPLS stack has at least one label")
    out = b"".join(struct.pack("!I", label << 12 | tc << 9 | (i == len(stack) - 1) << 8 | ttl)
                   for i, label in enumerate(stack))
    return out + (b"\x00" * 4 if control_word else b"") + payload


def pppoe(payload: bytes, *, session: int, protocol: int | None = None) -> bytes:
    """PPPoE session stage (RFC 2516, ethertype 0x8864) carrying a PPP frame of ``protocol``
    (0x0021 IPv4 or 0x0057 IPv6 by default, from the payload).

    >>> pppoe(b"\\x45", session=0x11).hex()
    '110000110003002145'
    """
    proto = {0x0800: 0x0021, 0x86DD: 0x0057}[_ethertype(payload)] if protocol is None else protocol
    return struct.pack("!BBHHH", 0x11, 0, session, 2 + len(payload), proto) + payload


# --------------------------------------------------------------------------- L2TP

def l2tp2(payload: bytes, *, tunnel: int = 1, session: int, length: bool = False,
          seq: tuple[int, int] | None = None, offset: int | None = None, control: bool = False,
          protocol: int | None = None) -> bytes:
    """L2TPv2 (RFC 2661, UDP port 1701) data message: the header with its optional length,
    sequence (Ns, Nr) and offset fields, then a PPP frame (address/control 0xff 0x03 and
    ``protocol``, 0x0021 IPv4 or 0x0057 IPv6 by default, from the payload). ``control`` sets the
    T bit (and the length and sequence fields RFC 2661 then requires) with ``payload`` as is.

    >>> l2tp2(b"\\x45", session=9).hex()
    '000200010009ff03002145'
    """
    if control:
        length, seq = True, seq or (0, 0)
        body = payload
    else:
        proto = {0x0800: 0x0021, 0x86DD: 0x0057}[_ethertype(payload)] if protocol is None else protocol
        body = b"\xff\x03" + struct.pack("!H", proto) + payload
    flags = (0x8000 if control else 0) | (0x4000 if length else 0) | (0x0800 if seq else 0)
    flags |= (0x0200 if offset is not None else 0) | 2
    fields = struct.pack("!HH", tunnel, session)
    if seq:
        fields += struct.pack("!HH", *seq)
    if offset is not None:
        fields += struct.pack("!H", offset) + bytes(offset)
    size = 2 + (2 if length else 0) + len(fields) + len(body)
    return struct.pack("!H", flags) + (struct.pack("!H", size) if length else b"") + fields + body


def l2tp3(frame: bytes, *, session: int, cookie: bytes = b"", udp: bool = False) -> bytes:
    """L2TPv3 (RFC 3931) data message over IP (protocol 115), or with ``udp`` over UDP (port
    1701, after its flags, version 3 and reserved bits): the 32-bit session id, an optional
    cookie, then the Ethernet pseudo-wire frame (no L2-specific sublayer). Over IP, session 0 is
    a control message.

    >>> l2tp3(b"", session=0x1234).hex()
    '00001234'
    >>> l2tp3(b"", session=0x1234, udp=True).hex()
    '0003000000001234'
    """
    return (struct.pack("!HH", 3, 0) if udp else b"") + struct.pack("!I", session) + cookie + frame


# --------------------------------------------------------------------------- service chaining

NSH_NEXT = {0x0800: 1, 0x86DD: 2, ETHERTYPE_TEB: 3}


def _next_protocol(payload: bytes) -> int:
    """NSH's and VXLAN-GPE's next protocol of ``payload``: 1 IPv4, 2 IPv6, 3 Ethernet."""
    return NSH_NEXT[_payload_type(payload)]


def nsh(payload: bytes, *, spi: int, si: int = 255, next_protocol: int | None = None,
        context: bytes | None = None, ttl: int = 63) -> bytes:
    """Network Service Header (RFC 8300, ethertype 0x894F): the base header, the service path
    (``spi``, ``si``) and the context headers: MD type 1's 16 bytes when ``context`` is None,
    else MD type 2 with ``context`` (a multiple of 4 bytes) as its variable metadata.

    >>> nsh(b"\\x45", spi=0x123)[:8].hex()
    '0fc60101000123ff'
    """
    md_type, meta = (1, bytes(16)) if context is None else (2, context)
    if len(meta) % 4:
        raise ValueError("NSH context headers are a multiple of 4 bytes")
    nxt = _next_protocol(payload) if next_protocol is None else next_protocol
    words = 2 + len(meta) // 4
    first = (ttl & 0x3F) << 6 | words
    return struct.pack("!HBBI", first, md_type, nxt, spi << 8 | si) + meta + payload


def vxlan_gpe(payload: bytes, *, vni: int, next_protocol: int | None = None) -> bytes:
    """VXLAN-GPE header (UDP port 4790; I and P flags set) and what ``next_protocol`` says it
    carries (1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH; by default from the payload).

    >>> vxlan_gpe(b"\\x45", vni=5).hex()
    '0c0000010000050045'
    """
    nxt = _next_protocol(payload) if next_protocol is None else next_protocol
    return struct.pack("!BHBI", 0x0C, 0, nxt, vni << 8) + payload


# --------------------------------------------------------------------------- more UDP and IP carriers

def lisp(packet: bytes, *, instance: int | None = None, nonce: int | None = None,
         lsb: int = 0) -> bytes:
    """LISP data-plane header (RFC 9300, UDP port 4341) and the IP packet: the N bit and nonce
    when ``nonce`` is given, the I bit and 24-bit instance id (then 8 locator-status bits) when
    ``instance`` is, else 32 locator-status bits.

    >>> lisp(b"", instance=0x1234, nonce=1).hex()
    '8800000100123400'
    """
    flags = (0x80 if nonce is not None else 0) | (0x08 if instance is not None else 0)
    last = (instance << 8 | (lsb & 0xFF)) if instance is not None else lsb
    return struct.pack("!I", flags << 24 | (nonce or 0)) + struct.pack("!I", last) + packet


def tzsp(frame: bytes, *, tags: Sequence[tuple[int, bytes]] = (), encapsulation: int = 1,
         kind: int = 0, padding: int = 0) -> bytes:
    """TZSP (UDP port 37008): version 1, ``kind`` (0 a received packet), the encapsulation (1
    Ethernet), ``padding`` one-byte PADDING tags and the (tag, value) fields, the END tag, then
    the frame.

    >>> tzsp(b"", tags=[(10, b"\\x01")], padding=1).hex()
    '01000001000a010101'
    """
    fields = b"\x00" * padding + b"".join(bytes([tag, len(value)]) + value for tag, value in tags)
    return struct.pack("!BBH", 1, kind, encapsulation) + fields + b"\x01" + frame


def zep(frame: bytes, *, version: int = 2, kind: int = 1, channel: int = 11, device: int = 0x1234,
        crc: bool = True, lqi: int = 0xFF, seq: int = 1, length: int | None = None) -> bytes:
    """ZEP, the ZigBee Encapsulation Protocol (UDP port 17754): preamble "EX", ``version`` 1
    (16-byte header) or 2 (32 bytes; ``kind`` 1 data, 2 an ack of 8 bytes that carries no frame),
    the ``channel`` and ``device`` ids, the CRC/LQI mode (``crc``: the 802.15.4 ``frame`` ends with
    its FCS; else with TI CC24xx metadata, RSSI and CRC-ok bit with the LQI), then the length of
    ``frame`` (``length`` forces it) and the frame.

    >>> zep(b"", version=1, crc=False).hex()
    '4558010b123400ff0000000000000000'
    >>> zep(b"", kind=2, seq=9).hex()
    '4558020200000009'
    """
    size = len(frame) if length is None else length
    if version >= 2 and kind == 2:
        return b"EX" + bytes([version, kind]) + struct.pack("!I", seq)
    if version == 1:
        return b"EX" + struct.pack("!BBHBB7xB", 1, channel, device, crc, lqi, size) + frame
    return (b"EX" + struct.pack("!BBBHBB", version, kind, channel, device, crc, lqi) + bytes(8)
            + struct.pack("!I", seq) + bytes(10) + bytes([size])) + frame


def cisco_metadata(payload: bytes, *, sgt: int, ethertype: int | None = None) -> bytes:
    """Cisco MetaData as an Ethernet frame carries it (ethertype 0x8909): version 1, length 1,
    the SGT option, then the ethertype of ``payload``.

    >>> cisco_metadata(b"\\x45", sgt=0x28).hex()
    '010100010028080045'
    """
    nxt = _payload_type(payload) if ethertype is None else ethertype
    return struct.pack("!BBHHH", 1, 1, 0x0001, sgt, nxt) + payload


def capwap(frame: bytes, *, rid: int = 1, wbid: int = 1, radio_mac: bytes | None = None,
           wireless: bytes | None = None, native: bool = False, fragment: bool = False,
           keep_alive: bool = False, fragment_id: int = 0, fragment_offset: int = 0,
           last: bool = False) -> bytes:
    """CAPWAP data channel header (RFC 5415, UDP port 5247) and the frame: an 802.3 frame (T=0),
    or with ``native`` one of the binding (T=1; 802.11 for WBID 1, which tshark reads with its
    frame control bytes swapped: ``ieee80211(..., swap_fc=True)``); the optional radio MAC
    address and wireless-specific information are written with their length bytes and padded to
    4 bytes, as HLEN counts them. ``keep_alive`` sets the K bit; ``fragment`` the F bit, with
    ``last`` the L bit, ``fragment_id`` and ``fragment_offset`` (bytes, a multiple of 8).

    >>> capwap(b"").hex()
    '0010420000000000'
    >>> capwap(b"", fragment=True, last=True, fragment_id=7, fragment_offset=16).hex()
    '001042c000070010'
    """
    optional = b""
    if radio_mac is not None:
        optional += bytes([len(radio_mac)]) + radio_mac
        optional += bytes(-len(optional) % 4)
    if wireless is not None:
        w = bytes([len(wireless)]) + wireless
        optional += w + bytes(-len(w) % 4)
    hlen = (8 + len(optional)) // 4
    bits = hlen << 19 | rid << 14 | wbid << 9 | (native << 8) | (fragment << 7)
    bits |= (0x20 if wireless is not None else 0) | (0x10 if radio_mac is not None else 0)
    bits |= 0x08 if keep_alive else 0
    bits |= 0x40 if last else 0
    if fragment_offset % 8:
        raise ValueError(f"fragment offset {fragment_offset} is not a multiple of 8")
    ids = struct.pack("!HH", fragment_id, fragment_offset // 8 << 3)
    return bytes([0]) + bits.to_bytes(3, "big") + ids + optional + frame


def capwap_fragments(frame: bytes, *, size: int, fragment_id: int, **kw) -> list[bytes]:
    """CAPWAP data fragments of ``frame`` in ``size``-byte pieces (a multiple of 8), each with
    its own header (``kw`` as for :func:`capwap`), the last with the L bit.

    >>> [f[3] for f in capwap_fragments(bytes(20), size=8, fragment_id=1)]
    [128, 128, 192]
    """
    if size <= 0 or size % 8:
        raise ValueError(f"fragment size {size} is not a positive multiple of 8")
    starts = range(0, max(len(frame), 1), size)
    return [capwap(frame[at:at + size], fragment=True, last=at + size >= len(frame), fragment_id=fragment_id,
                   fragment_offset=at, **kw) for at in starts]


def pim_register(packet: bytes, *, border: bool = False, null: bool = False) -> bytes:
    """A PIMv2 Register message (RFC 7761; IP protocol 103, type 1): the 4-byte PIM header (its
    checksum over the header alone, as for registers), the B and N flags, then the packet.

    >>> pim_register(b"").hex()
    '2100deff00000000'
    """
    flags = (0x80000000 if border else 0) | (0x40000000 if null else 0)
    header = struct.pack("!BBHI", 0x21, 0, 0, flags)
    value = internet_checksum(header)
    return header[:2] + struct.pack("!H", value) + header[4:] + packet


def nhrp(packet: bytes, *, op_type: int = 8, protocol: int | None = None, nbma: str = "192.0.2.1",
         src: str = "10.0.0.1", dst: str = "10.0.0.2", code: int = 0, hop_count: int = 255,
         extensions: bytes | None = None) -> bytes:
    """An NHRP message (RFC 2332; GRE protocol type 0x2001, ``gre(nhrp(...))``): the fixed
    header (NBMA address family by ``nbma``, ``protocol`` the ethertype of ``packet`` by default,
    version 1, checksum), then the mandatory part of a traffic (8) or error (7) indication: the
    protocol address lengths, the traffic or error code, the source NBMA address and the source
    and destination protocol addresses, then ``packet``, the packet causing the indication.
    ``extensions`` (with their END extension) set the extension offset.

    >>> nhrp(b"\\x45").hex()[:40]
    '000108000000000000ff0029d2c5000001080400'
    """
    nbma_addr, src_addr, dst_addr = (_ip(a).packed for a in (nbma, src, dst))
    afn = 1 if len(nbma_addr) == 4 else 2
    pro = _ethertype(packet) if protocol is None else protocol
    mandatory = bytes([len(src_addr), len(dst_addr)]) + struct.pack("!HHH", 0, code, 0)
    mandatory += nbma_addr + src_addr + dst_addr + packet
    ext = extensions or b""
    size = 20 + len(mandatory) + len(ext)
    extoff = 20 + len(mandatory) if extensions is not None else 0
    header = struct.pack("!HH5sBHHHBBBB", afn, pro, bytes(5), hop_count, size, 0, extoff, 1, op_type,
                         len(nbma_addr), 0)
    message = header + mandatory + ext
    value = internet_checksum(message)
    return message[:12] + struct.pack("!H", value) + message[14:]


def sflow_sample(header: bytes, *, protocol: int = 1, rate: int = 1, frame_length: int | None = None,
                 stripped: int = 0, expanded: bool = False, sequence: int = 1) -> bytes:
    """An sFlow v5 flow sample (format 1, or 3 with ``expanded``) holding one raw packet header
    record: ``protocol`` (1 Ethernet, 11 IPv4, 12 IPv6), the original ``frame_length`` (the
    header's length by default), the bytes ``stripped`` and the ``header`` bytes, padded to 4.

    >>> sflow_sample(b"", rate=10).hex()[:16]
    '0000000100000038'
    """
    length = len(header) + stripped if frame_length is None else frame_length
    record = struct.pack("!IIII", protocol, length, stripped, len(header)) + header + bytes(-len(header) % 4)
    records = struct.pack("!II", 1, len(record)) + record
    if expanded:
        fields = struct.pack("!IIIIIIIIIII", sequence, 0, 1, rate, rate, 0, 0, 1, 0, 2, 1)
    else:
        fields = struct.pack("!IIIIIIII", sequence, 1, rate, rate, 0, 1, 2, 1)
    body = fields + records
    return struct.pack("!II", 3 if expanded else 1, len(body)) + body


def sflow(samples: Sequence[bytes], *, agent: str = "192.0.2.9", sub_agent: int = 0, sequence: int = 1,
          uptime: int = 1000) -> bytes:
    """An sFlow v5 datagram (UDP port 6343): the agent's address, sub agent, sequence, uptime,
    then the ``samples`` (from :func:`sflow_sample`, or any pre-built sample).

    >>> sflow([], agent="10.0.0.9").hex()
    '00000005000000010a0000090000000000000001000003e800000000'
    """
    address = _ip(agent).packed
    kind = 2 if len(address) == 16 else 1
    return (struct.pack("!II", 5, kind) + address + struct.pack("!IIII", sub_agent, sequence, uptime, len(samples))
            + b"".join(samples))
