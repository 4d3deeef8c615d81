"""The reader on crafted captures: exact values for every container, link type and ICMP field."""
from __future__ import annotations

import datetime as dt
import gzip
import shutil
import warnings
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

import icmpscope as ic
from icmpscope import synth as s

T0 = 1_700_000_000_123_456_789  # ns


def _read(path: Path, **kw) -> ic.Capture:
    cap = ic.read_pcap(path, **kw)
    st = cap.stats.row(0, named=True)
    assert st["packets"] == st["icmp"] + st["fragment"] + st["other"] + st["undecodable"]
    return cap


def _one(cap: ic.Capture) -> dict:
    assert cap.icmp.height == 1
    return cap.icmp.with_columns(pl.col(pl.Categorical).cast(pl.String)).row(0, named=True)


def _digest(data: bytes) -> int:
    """The core's echo data digest: FxHash over the length, then 8-byte little-endian words."""
    mask, k, h = (1 << 64) - 1, 0x517CC1B727220A95, 0
    words = [len(data)] + [int.from_bytes(data[i:i + 8].ljust(8, b"\0"), "little") for i in range(0, len(data), 8)]
    for w in words:
        h = (((h << 5 | h >> 59) & mask) ^ w) * k & mask
    return h


def _ts(ns: int) -> dt.datetime:
    return pl.Series([ns], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")).item()


@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_pcap_variants_timestamps(tmp_path: Path, nanosecond: bool, big_endian: bool) -> None:
    path = s.write_pcap(tmp_path / "a.pcap", [s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2")))],
                        nanosecond=nanosecond, big_endian=big_endian)
    row = _one(_read(path))
    expected = T0 if nanosecond else T0 // 1000 * 1000
    assert row["ts"] == _ts(expected)
    assert (row["frame"], row["src"], row["dst"], row["icmp_type"]) == (1, "10.0.0.1", "10.0.0.2", 8)


def test_modified_pcap(tmp_path: Path) -> None:
    path = s.write_modified_pcap(tmp_path / "m.pcap", [s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2")))])
    assert _one(_read(path))["icmp_type"] == 8
    assert ic.read_pcap(path).stats["format"].item() == "pcap"


def test_pcapng_sections_interfaces_resolutions(tmp_path: Path) -> None:
    frames = [
        s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=1)), linktype=1, interface=0),
        s.Frame(T0 + 1, s.ping("10.0.0.3", "10.0.0.4", seq=2), linktype=101, interface=1),
        s.Frame(T0 + 2, s.sll(s.ping("10.0.0.5", "10.0.0.6", seq=3)), linktype=113, interface=2),
        s.Frame(T0 + 3, s.ethernet(s.ping("10.0.0.7", "10.0.0.8", seq=4)), linktype=1, interface=0),
    ]
    interfaces = [s.Interface(linktype=1, tsresol=9), s.Interface(linktype=101, tsresol=6),
                  s.Interface(linktype=113, tsresol=9, tsoffset=100)]
    path = s.write_pcapng(tmp_path / "a.pcapng", frames, interfaces=interfaces, sections=2)
    cap = _read(path)
    icmp = cap.icmp.with_columns(pl.col(pl.Categorical).cast(pl.String))
    assert icmp["icmp_seq"].to_list() == [1, 2, 3, 4]
    assert icmp["src"].to_list() == ["10.0.0.1", "10.0.0.3", "10.0.0.5", "10.0.0.7"]
    assert icmp["ts"].to_list() == [_ts(T0), _ts((T0 + 1) // 1000 * 1000), _ts(T0 + 2), _ts(T0 + 3)]
    assert cap.stats["format"].item() == "pcapng"


@pytest.mark.parametrize("block", ["epb", "pb", "spb"])
def test_pcapng_packet_blocks(tmp_path: Path, block: str) -> None:
    path = s.write_pcapng(tmp_path / "b.pcapng", [s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2")))], block=block)
    row = _one(_read(path))
    assert row["icmp_type"] == 8
    if block == "spb":  # no timestamp in a Simple Packet Block
        assert row["ts"] == _ts(0)


def test_pcapng_unknown_block_skipped_and_reported(tmp_path: Path) -> None:
    frames = [s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2"))), s.RawBlock(0x1234, b"\0" * 8),
              s.Frame(T0 + 1, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=2)))]
    cap = _read(s.write_pcapng(tmp_path / "u.pcapng", frames))
    assert cap.icmp.height == 2
    assert cap.stats.select("packets", "skipped_blocks").row(0) == (2, 1)
    err = cap.errors.row(0, named=True)
    assert (err["frame"], err["kind"], err["reason"]) == (None, "unknown_block", "pcapng block type 0x1234 skipped")


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
@pytest.mark.parametrize("writer", ["pcap", "pcapng"])
def test_compressed(tmp_path: Path, compress: str, writer: str) -> None:
    frames = [s.Frame(T0 + i, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=i))) for i in range(100)]
    write = s.write_pcap if writer == "pcap" else s.write_pcapng
    cap = _read(write(tmp_path / "c", frames, compress=compress))
    assert cap.icmp["icmp_seq"].to_list() == list(range(100))
    assert cap.stats.select("format", "compression").row(0) == (writer, compress)


PING = s.ping("192.0.2.1", "192.0.2.2", id=5, seq=6)
PING6 = s.ipv6("2001:db8::1", "2001:db8::2", s.echo_request6(5, 6, b"x", src="2001:db8::1", dst="2001:db8::2"))


@pytest.mark.parametrize(
    "linktype,data,version",
    [
        (1, s.ethernet(PING, vlans=(100, 200), vlan_tpid_outer=0x88A8), 4),
        (113, s.sll(PING6), 6),
        (276, s.sll2(PING), 4),
        (101, PING, 4),
        (228, PING, 4),
        (229, PING6, 6),
        (12, PING6, 6),
        (14, PING, 4),
        (0, s.null_loopback(PING), 4),
        (0, s.null_loopback(PING6, big_endian=True), 6),
        (108, s.null_loopback(PING, big_endian=True), 4),
        (9, b"\xff\x03\x00\x21" + PING, 4),
        (9, b"\x57" + PING6, 6),
        (104, b"\x0f\x00\x86\xdd" + PING6, 6),
    ],
)
def test_link_types(tmp_path: Path, linktype: int, data: bytes, version: int) -> None:
    row = _one(_read(s.write_pcap(tmp_path / "l.pcap", [s.Frame(T0, data, linktype=linktype)])))
    assert (row["ip_version"], row["icmp_id"], row["icmp_seq"], row["checksum_ok"]) == (version, 5, 6, True)
    if linktype == 1:
        assert (row["vlan"], row["src_mac"], row["dst_mac"]) == (100, "02:00:00:00:00:01", "02:00:00:00:00:02")


def test_unsupported_link_type_is_counted_and_named(tmp_path: Path) -> None:
    cap = _read(s.write_pcap(tmp_path / "x.pcap", [s.Frame(T0, b"\0" * 20, linktype=147)]))
    assert cap.stats.select("packets", "undecodable").row(0) == (1, 1)
    err = cap.errors.row(0, named=True)
    assert (err["frame"], err["offset"], err["kind"], err["reason"]) == (
        1, 24, "unsupported_link_type", "link type 147 is not supported")


UDP = s.ipv4("10.1.1.1", "10.2.2.2", s.udp(5353, 53, b"q", src="10.1.1.1", dst="10.2.2.2"), proto=17, ttl=9)
UDP6 = s.ipv6("2001:db8::5", "2001:db8::6", s.udp(4000, 33434, b"", src="2001:db8::5", dst="2001:db8::6"), next_header=17)


@pytest.mark.parametrize(
    "message,expected",
    [
        (s.echo_reply(1, 2, b"abc"), dict(icmp_type=0, icmp_id=1, icmp_seq=2, payload_len=3, payload_digest=None)),
        # The digest leaves out the first 16 bytes of echo data, where ping puts its timestamp.
        (s.echo_request(1, 1, bytes(range(16)) + b"pattern"), dict(payload_digest=_digest(b"pattern"), advertised=None)),
        (s.dest_unreachable(3, UDP), dict(icmp_type=3, icmp_code=3, inner_src="10.1.1.1", inner_dst="10.2.2.2",
                                          inner_proto=17, inner_sport=5353, inner_dport=53, mtu=None)),
        (s.dest_unreachable(4, UDP, mtu=1400), dict(icmp_code=4, mtu=1400)),
        (s.redirect(1, "192.0.2.254", UDP), dict(icmp_type=5, gateway="192.0.2.254", inner_dst="10.2.2.2")),
        (s.time_exceeded(0, UDP), dict(icmp_type=11, inner_proto=17, icmp_id=None)),
        (s.router_advert([("192.0.2.1", 0), ("192.0.2.2", -1)], lifetime=900),
         dict(icmp_type=9, router_lifetime=900, advertised=["192.0.2.1", "192.0.2.2"])),
        (s.mask_reply(3, 4, "255.255.255.0"), dict(icmp_type=18, mask="255.255.255.0", icmp_id=3, icmp_seq=4,
                                                   payload_digest=None, advertised=None)),
        (s.timestamp_request(7, 8), dict(icmp_type=13, icmp_id=7, icmp_seq=8, payload_len=12)),
        (s.info_request(9, 10), dict(icmp_type=15, icmp_id=9, icmp_seq=10)),
        (s.echo_request(1, 1, b"zz", checksum=0x1234), dict(checksum_ok=False)),
    ],
)
def test_icmpv4_fields(tmp_path: Path, message: bytes, expected: dict) -> None:
    packet = s.ipv4("192.0.2.9", "192.0.2.10", message, ttl=33)
    row = _one(_read(s.write_pcap(tmp_path / "v4.pcap", [s.Frame(T0, s.ethernet(packet))])))
    assert row["ttl"] == 33 and row["datagram_len"] == len(packet) and row["reassembled"] is False
    assert {k: row[k] for k in expected} == expected
    assert row["checksum_ok"] is expected.get("checksum_ok", True)


A, B = "2001:db8::a", "2001:db8::b"


@pytest.mark.parametrize(
    "message,expected",
    [
        (s.packet_too_big(1280, UDP6, src=A, dst=B), dict(icmp_type=2, mtu=1280, inner_src="2001:db8::5",
                                                          inner_proto=17, inner_sport=4000, inner_dport=33434)),
        (s.dest_unreachable6(4, UDP6, src=A, dst=B), dict(icmp_type=1, icmp_code=4, inner_dport=33434)),
        (s.router_advert6(lifetime=600, prefixes=[("2001:db8:1::", 64), ("fd00:0:0:1::", 56)],
                          src_mac="02:00:00:00:00:01", src=A, dst="ff02::1"),
         dict(icmp_type=134, router_lifetime=600, advertised=["2001:db8:1::/64", "fd00:0:0:1::/56"])),
        (s.router_advert6(src=A, dst="ff02::1"), dict(icmp_type=134, advertised=[])),
        (s.redirect6("fe80::1", "2001:db8::99", quoted=UDP6, src=A, dst=B),
         dict(icmp_type=137, gateway="fe80::1", inner_dst="2001:db8::6")),
        (s.echo_request6(4, 5, b"12345", src=A, dst=B), dict(icmp_type=128, icmp_id=4, icmp_seq=5, payload_len=5)),
        (s.echo_reply6(4, 5, bytes(16) + b"\xff" * 9, src=A, dst=B), dict(payload_digest=_digest(b"\xff" * 9))),
        (s.echo_request6(4, 5, b"12345", src=A, dst=B, checksum=1), dict(checksum_ok=False)),
    ],
)
def test_icmpv6_fields(tmp_path: Path, message: bytes, expected: dict) -> None:
    dst = "ff02::1" if expected.get("icmp_type") == 134 else B
    packet = s.ipv6(A, dst, message, hop_limit=255, ext_headers=[s.hop_by_hop(), s.dest_options()])
    row = _one(_read(s.write_pcap(tmp_path / "v6.pcap", [s.Frame(T0, s.ethernet(packet))])))
    assert (row["ip_version"], row["ttl"], row["src"], row["datagram_len"]) == (6, 255, A, len(packet))
    assert {k: row[k] for k in expected} == expected
    assert row["checksum_ok"] is expected.get("checksum_ok", True)


def test_snaplen_cut_message_is_a_row_with_unverified_checksum(tmp_path: Path) -> None:
    packet = s.ethernet(s.ping("10.0.0.1", "10.0.0.2", payload=b"x" * 100))
    cap = _read(s.write_pcap(tmp_path / "snap.pcap", [s.Frame(T0, packet)], snaplen=60))
    row = _one(cap)
    assert (row["payload_len"], row["checksum_ok"], row["datagram_len"]) == (100, False, 128)


def test_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is text")
    with pytest.raises(ic.CaptureFormatError, match=r"notes.txt: not a pcap or pcapng capture \(byte offset 0"):
        ic.read_pcap(path)
    assert issubclass(ic.CaptureFormatError, ValueError)
    (tmp_path / "empty.pcap").write_bytes(b"")
    with pytest.raises(ic.CaptureFormatError):
        ic.read_pcap(tmp_path / "empty.pcap")
    (tmp_path / "g.gz").write_bytes(gzip.compress(b"not a capture at all"))
    with pytest.raises(ic.CaptureFormatError):
        ic.read_pcap(tmp_path / "g.gz")


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError):
        ic.read_pcap("/nonexistent/x.pcap")
    with pytest.raises(FileNotFoundError):
        ic.read_pcap("/nonexistent/*.pcap")


def _capture_bytes(n: int) -> bytes:
    return s.pcap_bytes([s.Frame(T0 + i, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=i))) for i in range(n)])


def test_truncation_at_every_byte_keeps_whole_records(tmp_path: Path) -> None:
    data = _capture_bytes(3)
    record = (len(data) - 24) // 3
    path = tmp_path / "t.pcap"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        if cut < 24:
            with pytest.raises(ic.CaptureFormatError):
                ic.read_pcap(path)
            continue
        whole = (cut - 24) // record
        partial = (cut - 24) % record != 0
        if partial:
            with pytest.warns(ic.io.CaptureTruncatedWarning, match="cut short"):
                cap = _read(path)
            with pytest.raises(ic.CaptureFormatError, match="cut short"):
                ic.read_pcap(path, strict=True)
        else:
            cap = _read(path)
        assert cap.icmp["icmp_seq"].to_list() == list(range(whole))
        assert cap.stats["cut_short"].item() is partial
        assert cap.errors.height == int(partial)


def test_truncation_of_pcapng_at_every_byte(tmp_path: Path) -> None:
    data = s.pcapng_bytes([s.Frame(T0 + i, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=i))) for i in range(2)])
    path = tmp_path / "t.pcapng"
    boundaries, at = {0}, 0
    while at < len(data):
        at += struct.unpack_from("<I", data, at + 4)[0]
        boundaries.add(at)
    kept = set()
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
                cap = _read(path)
        except ic.CaptureFormatError:
            assert cut < 12
            continue
        kept.add(cap.icmp.height)
        assert cap.stats["cut_short"].item() is (cut not in boundaries)
        assert cap.errors.height == int(cut not in boundaries)
    assert kept == {0, 1, 2}


def _pings(n: int, payload: bytes = b"") -> list[s.Frame]:
    return [s.Frame(T0 + i, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=i % 65536, payload=payload))) for i in range(n)]


def _pcap_records(data: bytes) -> tuple[int, int]:
    """The whole records of a pcap cut anywhere past its header: how many, and where they end."""
    at, n = 24, 0
    while at + 16 <= len(data):
        end = at + 16 + struct.unpack_from("<I", data, at + 8)[0]
        if end > len(data):
            break
        at, n = end, n + 1
    return n, at


def _check_compressed_cut(path: Path, recovered: bytes, whole: ic.Capture) -> None:
    """`path` is a compressed pcap cut short from which a decompressor recovers `recovered`: as
    tshark shows it, every whole record in those bytes, then the cut (a short read)."""
    if len(recovered) < 24:
        # No whole file header: nothing says it is a capture (a plain file this short raises too).
        with pytest.raises(ic.CaptureFormatError, match="cut short"):
            ic.read_pcap(path)
        return
    n, end = _pcap_records(recovered)
    with pytest.warns(ic.io.CaptureTruncatedWarning, match="cut short"):
        cap = _read(path)
    assert cap.stats.select("packets", "cut_short", "corrupt").row(0) == (n, True, False)
    strings = pl.col(pl.Categorical).cast(pl.String)
    kept = whole.icmp.filter(pl.col("frame") <= n).drop("file").with_columns(strings)
    assert cap.icmp.drop("file").with_columns(strings).equals(kept)
    # The cut's row: the record it fell in (none when it fell between records), where it starts.
    frame = n + 1 if end < len(recovered) else None
    cut_row = cap.errors.filter(pl.col("frame").is_null() | (pl.col("frame") > n))
    assert cut_row.select("frame", "offset", "kind").rows() == [(frame, end, "cut_short")]
    if frame is None:
        assert "ends, without its end marker, between records" in cut_row["reason"].item()
    assert cap.errors.height == whole.errors.filter(pl.col("frame") <= n).height + 1
    with pytest.raises(ic.CaptureFormatError, match="cut short"):
        ic.read_pcap(path, strict=True)


def _gzip_cuts(gz: bytes) -> dict[str, int]:
    """Where to cut a gzip file: in and before its 8-byte trailer, mid-stream, so early that
    fewer than 4 bytes inflate, inside the gzip header."""
    early = next(c for c in range(10, len(gz)) if len(zlib.decompressobj(31).decompress(gz[:c])) >= 4) - 1
    return {"trailer": len(gz) - 8, "in_trailer": len(gz) - 3, "mid": len(gz) // 2, "early": early, "header": 5}


@pytest.mark.parametrize("where", ["trailer", "in_trailer", "mid", "early", "header"])
def test_gzip_cut_short_keeps_every_record_inflated_before_the_cut(tmp_path: Path, where: str) -> None:
    plain = Path(ic.synth.write_demo(tmp_path / "demo.pcap"))
    whole = _read(plain)
    gz = gzip.compress(plain.read_bytes())
    cut = _gzip_cuts(gz)[where]
    part = gz[:cut]
    recovered = zlib.decompressobj(31).decompress(part)
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(part)
    _check_compressed_cut(path, recovered, whole)


def test_big_gzip_cut_short_loses_no_record(tmp_path: Path) -> None:
    """A stream inflated a chunk (1 MiB) at a time: the records of the chunk the cut falls in are
    kept too."""
    plain = s.write_pcap(tmp_path / "big.pcap", _pings(4000, payload=bytes(range(256)) * 4))
    whole = _read(plain)
    gz = gzip.compress(plain.read_bytes(), 1)
    path = tmp_path / "cut.pcap.gz"
    for fraction in (0.1, 0.31, 0.5, 0.77, 0.999):
        part = gz[:int(len(gz) * fraction)]
        path.write_bytes(part)
        recovered = zlib.decompressobj(31).decompress(part)
        assert len(recovered) > 24
        _check_compressed_cut(path, recovered, whole)


def test_zstd_cut_short_keeps_every_record_decompressed_before_the_cut(tmp_path: Path) -> None:
    if shutil.which("zstd") is None:
        pytest.skip("the zstd command is not installed")
    plain = s.write_pcap(tmp_path / "big.pcap", _pings(4000, payload=bytes(range(256)) * 4))
    whole = _read(plain)
    zst = subprocess.run(["zstd", "-q", "-3", "--check", "-c", str(plain)], capture_output=True, check=True).stdout
    path = tmp_path / "cut.pcap.zst"
    # Without (part of) its 4-byte checksum the frame's blocks are all there: every record.
    for cut in (len(zst) - 4, len(zst) - 1):
        path.write_bytes(zst[:cut])
        _check_compressed_cut(path, plain.read_bytes(), whole)
    # Cut in its blocks: what a zstd decoder recovers (the zstd command writes only whole
    # 128 KiB buffers of it, so it cannot tell).
    try:
        import zstandard
    except ImportError:
        return
    for cut in (len(zst) // 2, len(zst) // 10, 20, 6):
        part = zst[:cut]
        path.write_bytes(part)
        recovered = bytearray()
        with zstandard.ZstdDecompressor().stream_reader(part) as reader:
            try:
                while chunk := reader.read(1 << 16):
                    recovered += chunk
            except zstandard.ZstdError:
                pass
        _check_compressed_cut(path, bytes(recovered), whole)


def test_a_corrupt_compressed_stream_is_a_decompress_error(tmp_path: Path) -> None:
    """Compressed bytes that are wrong (not merely missing) are no cut: the row says decompress."""
    plain = Path(ic.synth.write_demo(tmp_path / "demo.pcap"))
    gz = bytearray(gzip.compress(plain.read_bytes()))
    gz[len(gz) // 2] ^= 0xFF
    path = tmp_path / "broken.pcap.gz"
    path.write_bytes(bytes(gz))
    with pytest.warns(ic.io.CaptureTruncatedWarning, match="decompression failed"):
        cap = _read(path)
    assert cap.errors.filter(pl.col("kind") == "decompress").height == 1
    assert cap.errors.filter(pl.col("kind") == "cut_short").height == 0


def test_cut_inside_a_pcap_record_names_its_frame(tmp_path: Path) -> None:
    data = s.pcap_bytes(_pings(130))
    n, last = _pcap_records(data[:-1])
    assert n == 129
    path = tmp_path / "cut.pcap"
    # Anywhere in record 130, its header included: frame 130 (1-based, as tshark's frame.number).
    for cut in range(last + 1, len(data)):
        path.write_bytes(data[:cut])
        with pytest.warns(ic.io.CaptureTruncatedWarning, match="cut short"):
            cap = _read(path)
        assert cap.stats["packets"].item() == 129
        assert cap.errors.select("frame", "offset", "kind").rows() == [(130, last, "cut_short")], cut


def _blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(type, start, end) of each pcapng block (little-endian)."""
    out, at = [], 0
    while at < len(data):
        block_type, total = struct.unpack_from("<II", data, at)
        out.append((block_type, at, at + total))
        at += total
    return out


def test_cut_inside_a_pcapng_block_names_the_frame_of_a_packet_block_only(tmp_path: Path) -> None:
    data = s.pcapng_bytes(_pings(130), sections=2)
    blocks = _blocks(data)
    path = tmp_path / "cut.pcapng"
    frame = 0
    for block_type, start, end in blocks:
        frame += block_type == 6
        if start < 12:
            continue  # the first section header cut before its byte-order magic: not a capture
        for cut in sorted({start + 1, start + 3, start + 4, start + 9, (start + end) // 2, end - 1}):
            if cut < 12:
                continue
            # A cut in a packet block is that frame's; in a section header or interface, or
            # before the block's type is read, no frame's.
            in_frame = block_type == 6 and cut >= start + 4
            expected = [(frame if in_frame else None, start, "cut_short")]
            path.write_bytes(data[:cut])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
                cap = _read(path)
            assert cap.stats.select("packets", "cut_short").row(0) == (frame - (block_type == 6), True)
            assert cap.errors.select("frame", "offset", "kind").rows() == expected, (block_type, cut)
    assert frame == 130 and {t for t, _, _ in blocks} == {0x0A0D0D0A, 1, 6}


SPLIT_SIZE = 40 << 20  # pieces are at least 16 MiB: past 32 MiB a capture splits on two threads


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_cut_in_the_last_piece_of_a_split_read_names_its_frame(tmp_path: Path, container: str) -> None:
    one = _pings(1, payload=bytes(1000))
    if container == "pcap":
        single = s.pcap_bytes(one)
        head, record = single[:24], single[24:]
    else:
        single = s.pcapng_bytes(one)
        head_end = _blocks(single)[-1][1]
        head, record = single[:head_end], single[head_end:]
    records = -(-(SPLIT_SIZE - len(head)) // len(record))
    path = tmp_path / f"big.{container}"
    path.write_bytes(head + record * records)
    with open(path, "r+b") as f:  # the last record cut in its middle
        f.truncate(len(head) + len(record) * records - len(record) // 2)
    cut_at = len(head) + len(record) * (records - 1)
    for threads in (2, 1):
        with pytest.warns(ic.io.CaptureTruncatedWarning, match="cut short"):
            cap = ic.read_pcap(path, threads=threads, progress=False)
        assert cap.icmp.n_chunks() == threads, "read in pieces with 2 threads, whole with 1"
        assert cap.stats.select("packets", "cut_short").row(0) == (records - 1, True)
        assert cap.errors.select("frame", "offset", "kind").rows() == [(records, cut_at, "cut_short")]


def test_oversized_record_is_corruption(tmp_path: Path) -> None:
    data = bytearray(_capture_bytes(2))
    struct.pack_into("<I", data, 24 + 8, 300_000)  # caplen of record 1
    path = tmp_path / "big.pcap"
    path.write_bytes(bytes(data))
    with pytest.warns(ic.io.CaptureTruncatedWarning, match="exceeds the 262144-byte limit"):
        cap = _read(path)
    assert cap.stats.select("packets", "corrupt").row(0) == (0, True)
    assert cap.errors.select("offset", "kind").row(0) == (24, "record_too_long")


def test_garbage_at_each_layer_is_undecodable_not_fatal(tmp_path: Path) -> None:
    frames = [
        s.Frame(T0, b"\x00" * 10),                                    # short Ethernet
        s.Frame(T0, s.ethernet(b"\x45\x00")),                        # short IPv4
        s.Frame(T0, s.ethernet(b"\x4f" + b"\x00" * 19)),             # IHL 60 > captured
        s.Frame(T0, s.ethernet(b"\x60" + b"\x00" * 10, ethertype=0x86DD)),   # short IPv6
        s.Frame(T0, s.ethernet(s.ipv4("10.0.0.1", "10.0.0.2", b"\x08"))),  # 1-byte ICMP
        s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2"))),
    ]
    cap = _read(s.write_pcap(tmp_path / "g.pcap", frames))
    assert cap.stats.select("packets", "icmp", "undecodable").row(0) == (6, 1, 5)
    assert cap.errors["frame"].to_list() == [1, 2, 3, 4, 5]
    assert cap.errors["kind"].to_list() == ["truncated", "truncated", "truncated", "truncated", "truncated"]


def test_many_files_glob_and_list(tmp_path: Path) -> None:
    for i in range(4):
        s.write_pcap(tmp_path / f"part{i}.pcap", [s.Frame(T0 + i, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=i)))])
    cap = ic.read_pcap(str(tmp_path / "part*.pcap"))
    assert cap.icmp["icmp_seq"].to_list() == [0, 1, 2, 3]
    assert cap.stats.height == 4 and cap.stats["packets"].sum() == 4
    assert cap.icmp["file"].to_list() == [str(tmp_path / f"part{i}.pcap") for i in range(4)]
    same = ic.read_pcap([tmp_path / "part3.pcap", tmp_path / "part0.pcap"])
    assert same.icmp["icmp_seq"].to_list() == [3, 0]


def test_file_column_is_a_string_in_every_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SPEC: `file` (String). A name of up to 12 bytes lives in its Arrow view, a longer one in a buffer."""
    monkeypatch.chdir(tmp_path)
    frames = [s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2")))]
    frames += [s.Frame(T0 + 1, s.ethernet(f)) for f in s.fragment_ipv4(s.ping("10.0.0.1", "10.0.0.3", payload=b"x" * 64), size=32)]
    short = s.write_pcap("a.pcap", frames)
    long = s.write_pcap(tmp_path / ("b" * 40 + ".pcap"), frames)
    cap = ic.read_pcap([short, long])
    for table in ("icmp", "fragments", "datagrams", "stats"):
        frame = getattr(cap, table)
        assert frame.schema["file"] == pl.String, table
        assert frame["file"].unique(maintain_order=True).to_list() == ["a.pcap", str(long)], table
    assert cap.icmp.height == 4 and cap.fragments.height == 6
    scanned = ic.scan_pcap([short, long]).select("file").collect()
    assert scanned.schema["file"] == pl.String and scanned["file"].to_list() == cap.icmp["file"].to_list()
    [result] = ic._core.read_files([str(short)], ic.io._options())
    assert pa.table(result["icmp"]).schema.field("file").type == pa.string_view()


def test_arrow_pycapsule_export(tmp_path: Path) -> None:
    path = s.write_pcap(tmp_path / "a.pcap", [s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2")))])
    [result] = ic._core.read_files([str(path)], ic.io._options())
    table = pa.table(result["icmp"])
    assert table.num_rows == 1
    assert table.schema.field("src").type == pa.dictionary(pa.uint32(), pa.string())
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert pl.DataFrame(result["icmp"]).schema["src"] == pl.Categorical


def test_columns_without_values_keep_their_types(tmp_path) -> None:
    """A capture of pings has no gateway, mask or tunnel endpoint anywhere: those columns cross
    from Rust as nulls (cheaper for polars) and must still have the table's types."""
    from icmpscope import _core

    path = ic.synth.write_pcap(tmp_path / "pings.pcap", [(i, ic.synth.ethernet(ic.synth.ping("10.0.0.1", "10.0.0.2", seq=i)))
                                                         for i in range(3)])
    cap = ic.read_pcap(path)
    for table in ("icmp", "fragments", "datagrams", "flows", "stats", "errors"):
        assert getattr(cap, table).schema == pl.DataFrame(_core.empty_table(table)).schema, table
    assert cap.icmp["gateway"].dtype == pl.Categorical and cap.icmp["gateway"].null_count() == 3
    both = pl.concat([cap.icmp, ic.read_pcap(ic.synth.write_demo(tmp_path / "demo.pcap")).icmp])
    assert both.height == 3 + 84


def test_first_read_of_a_process_imports_polars_beside_the_decoding(tmp_path: Path) -> None:
    # In a fresh interpreter polars is not loaded yet: read_pcap imports it while the core
    # reads. Its result, or its error, must be what a later read gives.
    path = ic.synth.write_demo(tmp_path / "demo.pcap")
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    script = (
        "import sys, icmpscope as ic\n"
        "assert 'polars' not in sys.modules\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        cap = ic.read_pcap(path)\n"
        "        print(type(cap.icmp).__module__.split('.')[0], cap.icmp.height, cap.stats['packets'][0])\n"
        "    except ic.CaptureFormatError as e:\n"
        "        print('CaptureFormatError', 'junk.pcap' in str(e))\n"
    )
    expected = ic.read_pcap(path)
    read = f"polars {expected.icmp.height} {expected.stats['packets'][0]}"
    for order, lines in (([path, junk], [read, "CaptureFormatError True"]), ([junk, path], ["CaptureFormatError True", read])):
        done = subprocess.run([sys.executable, "-c", script, *map(str, order)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == lines


def test_files_with_and_without_a_column_read_together(tmp_path: Path) -> None:
    # The files' tables are chained in Rust and converted once: a column empty in one file (no
    # redirect, no gateway) and filled in another keeps its type and its values.
    quoted = s.ipv4("10.0.0.2", "198.51.100.9", s.udp(1, 53, src="10.0.0.2", dst="198.51.100.9"), proto=17)
    pings = s.write_pcap(tmp_path / "a.pcap", [s.Frame(T0, s.ethernet(s.ping("10.0.0.1", "10.0.0.2")))])
    redirect = s.write_pcap(tmp_path / "b.pcap", [s.Frame(T0 + 1, s.ethernet(s.ipv4("10.0.0.254", "10.0.0.2", s.redirect(1, "10.0.0.66", quoted))))])
    advert = s.write_pcap(tmp_path / "c.pcap", [s.Frame(T0 + 2, s.ethernet(s.ipv4("10.0.0.254", "224.0.0.1", s.router_advert([("10.0.0.254", 0)]))))])
    cap = ic.read_pcap([pings, redirect, pings])
    assert cap.icmp["gateway"].dtype == pl.Categorical
    assert cap.icmp["gateway"].cast(pl.String).to_list() == [None, "10.0.0.66", None]
    # A list column too (it crosses as nulls where no file has a value).
    assert cap.icmp["advertised"].dtype == pl.List(pl.String)
    assert cap.icmp["advertised"].null_count() == 3
    assert cap.icmp["file"].to_list() == [str(pings), str(redirect), str(pings)]
    assert cap.stats.height == 3
    assert ic.read_pcap([pings, advert]).icmp["advertised"].to_list() == [None, ["10.0.0.254"]]
    with pytest.raises(ValueError, match="no table"):
        ic._core.ArrowTable.concat([])
    [one] = ic._core.read_files([str(pings)], ic.io._options())
    with pytest.raises(ValueError, match="tables differ"):
        ic._core.ArrowTable.concat([one["icmp"], one["stats"]])
