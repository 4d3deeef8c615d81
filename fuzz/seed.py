"""Builds the fuzz seed corpora (fuzz/corpus/<target>/) from the shared captures and from
captures crafted with icmpscope.synth. Nothing it writes is committed; run it through seed.sh.

Input formats of the `decode`, `reassembly` and `windows` targets are those of rust/core/src/fuzzing.rs.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
# The prefix of each capture kept as a seed: libFuzzer works best on small inputs.
PREFIX = 8192
FRAMES_PER_CAPTURE = 6
FRAME_BYTES = 2048
# rust/core/src/fuzzing.rs LINKTYPES: the decode target's first byte indexes it.
LINKTYPES = [1, 0, 9, 12, 14, 50, 101, 104, 108, 113, 129, 226, 228, 229, 242, 276, 105, 127, 192, 119, 163, 239, 117, 109, 107, 100, 11, 195, 230, 215, 283]


def load_synth():
    """icmpscope.synth alone (pure Python), without importing the compiled core."""
    init = REPO / "python" / "icmpscope" / "synth" / "__init__.py"
    spec = importlib.util.spec_from_file_location("synth", init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["synth"] = module
    spec.loader.exec_module(module)
    return module


def decompress(data: bytes) -> bytes | None:
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return None
    if data[:4] == b"\x28\xb5\x2f\xfd":
        if shutil.which("zstd") is None:
            return None
        out = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True)
        return out.stdout or None
    return data


def pcap_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(link type, frame) of the records of a classic pcap, as far as they parse."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\x34\xcd\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d", b"\xa1\xb2\xcd\x34"):
        e = ">"
    else:
        return []
    header = 24 if magic in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34") else 16
    linktype = struct.unpack_from(e + "I", data, 20)[0] & 0x03FFFFFF
    frames, at = [], 24
    while at + header <= len(data):
        caplen = struct.unpack_from(e + "I", data, at + 8)[0]
        frame = data[at + header:at + header + caplen]
        if len(frame) < caplen:
            break
        frames.append((linktype, frame))
        at += header + caplen
    return frames


def pcapng_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(link type, frame) of the EPB/SPB/PB blocks of a pcapng, as far as they parse."""
    frames: list[tuple[int, bytes]] = []
    e, interfaces, at = "<", [], 0
    while at + 12 <= len(data):
        kind = struct.unpack_from("<I", data, at)[0]
        if kind == 0x0A0D0D0A:
            e = "<" if data[at + 8:at + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        kind, length = struct.unpack_from(e + "II", data, at)
        if length < 12 or at + length > len(data):
            break
        body = data[at + 8:at + length - 4]
        if kind == 1 and len(body) >= 2:
            interfaces.append(struct.unpack_from(e + "H", body)[0])
        elif kind in (2, 6) and len(body) >= 20:
            if_id = struct.unpack_from(e + ("I" if kind == 6 else "H"), body)[0]
            caplen = struct.unpack_from(e + "I", body, 12)[0]
            if if_id < len(interfaces):
                frames.append((interfaces[if_id], body[20:20 + caplen]))
        elif kind == 3 and len(body) >= 4 and interfaces:
            frames.append((interfaces[0], body[4:]))
        at += length
    return frames


def ip_packet(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet of a frame for the few link types seeds need."""
    if linktype == 1:
        at = 12
        while frame[at:at + 2] in (b"\x81\x00", b"\x88\xa8"):
            at += 4
        return frame[at + 2:] if frame[at:at + 2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype in (12, 14, 101, 228, 229):
        return frame
    if linktype == 113:
        return frame[16:]
    if linktype == 0:
        return frame[4:]
    return None


def fragment_piece(ip: bytes) -> tuple[tuple, int, bool, bytes] | None:
    """(key, offset, more, payload) of an IPv4 or IPv6 (fragment header first) fragment."""
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        field = struct.unpack_from("!H", ip, 6)[0]
        if field & 0x3FFF == 0:
            return None
        total = struct.unpack_from("!H", ip, 2)[0]
        return (4, ip[12:20], ip[9], ip[4:6]), (field & 0x1FFF) * 8, bool(field & 0x2000), ip[ihl:total]
    if len(ip) >= 48 and ip[0] >> 4 == 6 and ip[6] == 44:
        field = struct.unpack_from("!H", ip, 42)[0]
        if field == 0:
            return None
        return (6, ip[8:40], 0, ip[44:48]), field & 0xFFF8, bool(field & 1), ip[48:40 + struct.unpack_from("!H", ip, 4)[0]]
    return None


def reassembly_input(pieces: list[tuple[tuple, int, bool, bytes]], config: int = 0x3F) -> bytes:
    """The reassembly target's encoding of a fragment sequence (see fuzzing::reassembly)."""
    sources: dict[bytes, int] = {}
    out = bytearray([config])
    for key, offset, more, payload in pieces:
        version, addresses, _, ident = key
        source = sources.setdefault(addresses, len(sources) % 8)
        flags = int(more) | (2 if version == 6 else 0) | (source << 2)
        payload = payload[:0xFFFF]
        out += struct.pack("<BBHBH", flags, ident[-1], offset // 8, 1, len(payload)) + payload
    return bytes(out)


class Corpus:
    def __init__(self, target: str) -> None:
        self.dir = FUZZ / "corpus" / target
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def add(self, data: bytes) -> None:
        path = self.dir / ("seed-" + hashlib.sha1(data).hexdigest()[:16])
        if not path.exists():
            path.write_bytes(data)
            self.count += 1


def synth_captures(s) -> list[bytes]:
    """Every container variant the readers know, carrying the packet kinds the decoders know."""
    t0 = 1_700_000_000_000_000_000
    v4, v6 = ("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")
    quoted = s.ipv4(*v4, s.udp(1234, 53, b"q", src=v4[0], dst=v4[1]), proto=17)
    packets = [
        s.ping(*v4),
        s.ping(*v6),
        s.ipv4(v4[1], v4[0], s.dest_unreachable(3, quoted)),
        s.ipv4(v4[1], v4[0], s.redirect(1, "10.0.0.9", quoted)),
        s.ipv4(v4[1], v4[0], s.mask_reply(1, 1, "255.255.255.0")),
        s.ipv6(*v6, s.packet_too_big(1280, s.ping(*v6), src=v6[0], dst=v6[1])),
        s.ipv6(*v6, s.router_advert6(src=v6[0], dst=v6[1]), ext_headers=[s.hop_by_hop()]),
        *s.fragment_ipv4(s.ping(*v4, payload=bytes(100)), size=32),
        *s.fragment_ipv6(s.ping(*v6, payload=bytes(100)), size=32, ident=7),
    ]
    ethernet = [s.Frame(t0 + i, s.ethernet(p)) for i, p in enumerate(packets)]
    tagged = [s.Frame(t0, s.ethernet(packets[0], vlans=[10, 20], vlan_tpid_outer=0x88A8))]
    out = [
        s.pcap_bytes(ethernet),
        s.pcap_bytes(ethernet[:4], nanosecond=True, big_endian=True),
        s.modified_pcap_bytes(ethernet[:3]),
        s.pcap_bytes([s.Frame(t0, p, linktype=101) for p in packets[:4]]),
        s.pcap_bytes([s.Frame(t0, s.sll(p), linktype=113) for p in packets[:3]]),
        s.pcap_bytes([s.Frame(t0, s.sll2(p), linktype=276) for p in packets[:3]]),
        s.pcap_bytes([s.Frame(t0, s.null_loopback(p), linktype=0) for p in packets[:3]]),
        s.pcap_bytes(tagged),
        s.pcapng_bytes(ethernet),
        s.pcapng_bytes(ethernet[:4], big_endian=True, sections=2),
        s.pcapng_bytes(ethernet[:3], block="spb"),
        s.pcapng_bytes(ethernet[:3], block="pb"),
        s.pcapng_bytes([*ethernet[:2], s.RawBlock(0x1234, b"abcd")]),
        s.pcapng_bytes(
            [s.Frame(t0, packets[0], linktype=101, interface=1), ethernet[1]],
            interfaces=[s.Interface(linktype=1, tsresol=9), s.Interface(linktype=101, tsresol=0x8A, tsoffset=5)],
        ),
    ]
    # Tunnels, six frames a capture (the decode target takes each capture's first six).
    eth = s.ethernet(packets[0], src_mac="02:00:00:00:00:0a")
    o1, o2 = "192.0.2.1", "192.0.2.2"
    tunnelled = [
        s.ethernet(s.over_udp(o1, o2, 1701, s.l2tp2(packets[0], session=9, length=True, seq=(1, 2), offset=2))),
        s.ethernet(s.over_ip(o1, o2, s.l2tp3(eth, session=0x1234), proto=115)),
        s.ethernet(s.over_udp(o1, o2, 1701, s.l2tp3(eth, session=0x1234, udp=True))),
        s.ethernet(s.nsh(packets[1], spi=7, context=bytes(8)), ethertype=s.ETHERTYPE_NSH),
        s.ethernet(s.over_udp(o1, o2, 4790, s.vxlan_gpe(s.nsh(packets[0], spi=9), vni=8, next_protocol=4))),
        s.ethernet(s.over_udp(o1, o2, 4341, s.lisp(packets[0], instance=0x1234, nonce=7))),
        s.ethernet(s.over_udp(o1, o2, 37008, s.tzsp(eth, tags=[(10, b"\x01")], padding=1))),
        s.ethernet(s.cisco_metadata(packets[1], sgt=3), ethertype=s.ETHERTYPE_CISCO_METADATA),
        s.ethernet(s.over_udp(o1, o2, 5247, s.capwap(eth, radio_mac=bytes(6), wireless=bytes(4)))),
        s.ethernet(s.over_ip(o1, o2, s.pim_register(packets[1]), proto=103)),
        s.ethernet(s.over_udp(o1, o2, 6343, s.sflow([s.sflow_sample(eth, stripped=4, rate=10),
                                                     s.sflow_sample(packets[1], protocol=12, expanded=True)]))),
        s.ethernet(s.over_udp(o1, o2, 5247, s.capwap(s.ieee80211(packets[0], subtype=8, swap_fc=True), native=True))),
        s.ethernet(s.over_udp(o1, o2, 37008, s.tzsp(s.ieee80211(packets[1], ds=3), encapsulation=18))),
        s.ethernet(s.over_udp(o1, o2, 37008, s.tzsp(s.prism(s.ieee80211(packets[0])), encapsulation=119))),
        s.ethernet(s.over_udp(o1, o2, 37008, s.tzsp(s.avs(s.ieee80211(packets[0])), encapsulation=127))),
        s.ethernet(s.over_ip(o1, o2, s.gre(s.nhrp(packets[0], extensions=bytes(4)), protocol=s.ETHERTYPE_NHRP, key=5))),
    ]
    frames = [s.Frame(t0 + i, p) for i, p in enumerate(tunnelled)]
    out += [s.pcap_bytes(frames[i:i + FRAMES_PER_CAPTURE]) for i in range(0, len(frames), FRAMES_PER_CAPTURE)]
    # Pieces the pipeline reassembles besides IP fragments: CAPWAP data and 6LoWPAN fragments.
    capwap = [s.ethernet(s.over_udp(o1, o2, 5247, f)) for f in s.capwap_fragments(eth, size=24, fragment_id=3)]
    out.append(s.pcap_bytes([s.Frame(t0 + i, p) for i, p in enumerate(capwap[::-1])]))
    ll1, ll2 = "fe80::ff:fe00:1", "fe80::ff:fe00:2"
    lowpan = s.ping(ll1, ll2, payload=bytes(100))
    pieces = s.lowpan_fragments(s.lowpan_iphc(lowpan), size=48, tag=5, header_len=3, datagram_size=len(lowpan))
    out.append(s.pcap_bytes([s.Frame(t0 + i, s.ieee802154(p, src=1, dst=2), linktype=195) for i, p in enumerate(pieces)]))
    # ZEP (both versions and FCS modes) carrying 6LoWPAN, and its fragments; a context option,
    # then a packet that uses it.
    wpan = s.ieee802154(s.lowpan_iphc(lowpan), src=1, dst=2)
    cc24xx = s.ieee802154(s.lowpan_iphc(lowpan), src=1, dst=2, fcs=False) + b"\xd0\x80"
    zep = [s.ethernet(s.over_udp(o1, o2, 17754, s.zep(s.ieee802154(p, src=1, dst=2)))) for p in pieces]
    zep += [s.ethernet(s.over_udp(o1, o2, 17754, z)) for z in (
        s.zep(wpan), s.zep(cc24xx, crc=False, channel=26), s.zep(wpan, version=1), s.zep(b"", kind=2))]
    zep_frames = [s.Frame(t0 + i, p) for i, p in enumerate(zep)]
    out += [s.pcap_bytes(zep_frames[i:i + FRAMES_PER_CAPTURE]) for i in range(0, len(zep_frames), FRAMES_PER_CAPTURE)]
    option = bytes([34, 3, 64, 0x11, 0, 0, 0, 60]) + bytes.fromhex("20010db800010000") + bytes(8)
    ra = s.icmpv6(134, 0, bytes(8) + option, rest=bytes([64, 0, 7, 8]), src=ll1, dst="ff02::1")
    ra = s.ipv6(ll1, "ff02::1", ra, next_header=58, hop_limit=255)
    user = s.lowpan_iphc(s.ping("2001:db8:1::ff:fe00:1", "2001:db8:1::ff:fe00:2"), sac=True, dac=True, cid=0x11)
    out.append(s.pcap_bytes([s.Frame(t0, s.ieee802154(s.lowpan_uncompressed(ra), src=1, dst=2), linktype=195),
                             s.Frame(t0 + 1, s.ieee802154(user, src=1, dst=2), linktype=195)]))
    return out


def windows_input(window_ns: int, start_ns: int, rows: list[tuple[int, int, int, int]]) -> bytes:
    """The `windows` target's input: window, first time, then (group, item, step, shift) rows."""
    return struct.pack("<qq", window_ns, start_ns) + b"".join(struct.pack("<BBHB", *row) for row in rows)


def windows_seeds() -> list[bytes]:
    """A flood (one group, steps of 1 ms), a sweep (one group, an item each), several groups
    interleaved with nulls, ties and times that saturate at the end of i64."""
    flood = [(1, 7, 1000, 10) for _ in range(200)]
    sweep = [(3, i % 250, 500, 12) for i in range(300)]
    mixed = [(i % 5 if i % 11 else 255, i % 7 if i % 13 else 255, (i * 37) % 4, i % 30) for i in range(400)]
    return [windows_input(10**9, 0, flood), windows_input(60 * 10**9, 10**18, sweep),
            windows_input(5000, -(2**63), mixed), windows_input(1, 2**63 - 10**6, mixed[:50])]


def main() -> None:
    captures = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "captures"
    shutil.rmtree(FUZZ / "corpus", ignore_errors=True)
    corpora = {name: Corpus(name) for name in ("pcap", "pcapng", "decode", "reassembly", "windows")}
    manifest = captures / "manifest.json"
    files = [captures / e["file"] for e in json.loads(manifest.read_text())["files"]] if manifest.exists() else []
    s = load_synth()
    sources = [(f"synth{i}", data) for i, data in enumerate(synth_captures(s))]
    sources += [(str(p), p.read_bytes()) for p in files]
    datagrams: dict[tuple, list] = {}
    for _, raw in sources:
        data = decompress(raw)
        if not data:
            continue
        is_pcapng = data[:4] == b"\x0a\x0d\x0d\x0a"
        corpora["pcapng" if is_pcapng else "pcap"].add(data[:PREFIX])
        frames = pcapng_frames(data) if is_pcapng else pcap_frames(data)
        if not is_pcapng and frames:
            # The same frames in pcapng: the shared corpus is mostly classic pcap.
            head = [s.Frame(i, f, linktype=lt) for i, (lt, f) in enumerate(frames[:FRAMES_PER_CAPTURE])]
            corpora["pcapng"].add(s.pcapng_bytes(head)[:PREFIX])
        for linktype, frame in frames[:FRAMES_PER_CAPTURE]:
            selector = LINKTYPES.index(linktype) if linktype in LINKTYPES else min(linktype, 255)
            corpora["decode"].add(bytes([selector, 0]) + frame[:FRAME_BYTES])
        for linktype, frame in frames:
            ip = ip_packet(linktype, frame)
            piece = fragment_piece(ip) if ip else None
            if piece:
                datagrams.setdefault(piece[0], []).append(piece)
    for pieces in list(datagrams.values())[:200]:
        corpora["reassembly"].add(reassembly_input(pieces))
        corpora["reassembly"].add(reassembly_input(pieces[::-1]))
    for seed in windows_seeds():
        corpora["windows"].add(seed)
    for name, corpus in corpora.items():
        print(f"{name}: {corpus.count} seeds in {corpus.dir.relative_to(REPO)}")


if __name__ == "__main__":
    main()
