"""Hostile input: mutated real captures, every resource limit, captures that change while read.

Whatever the bytes, ``read_pcap`` returns a Capture whose stats add up or raises
CaptureFormatError/ValueError; a Rust panic (pyo3's PanicException, a BaseException) never escapes.
"""
from __future__ import annotations

import gzip
import json
import random
import shutil
import struct
import subprocess
import threading
import time
import warnings
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope import synth as s

T0 = 1_700_000_000_000_000_000
SMALL = 200_000
HIT_COLUMNS = ["max_record_len_hits", "max_block_len_hits", "max_ext_headers_hits", "max_tunnel_depth_hits",
               "max_reassembly_bytes_hits", "max_datagrams_hits", "max_decompression_ratio_hits", "max_flows_hits"]


def _check(cap: ic.Capture) -> None:
    """Nothing lost: every record in one class, every counted error a row."""
    for st in cap.stats.iter_rows(named=True):
        assert st["packets"] == st["icmp"] + st["fragment"] + st["other"] + st["undecodable"], st
    assert cap.errors.height == cap.stats["errors"].sum()
    assert cap.icmp.height == cap.stats["icmp"].sum()


def _read(path: Path, **kw) -> ic.Capture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
        cap = ic.read_pcap(path, **kw)
    _check(cap)
    return cap


def _outcome(path: Path) -> str | None:
    """None when reading behaved (a sound Capture or a ValueError); else what went wrong."""
    try:
        _read(path)
    except (KeyboardInterrupt, SystemExit):
        raise
    except ValueError:  # CaptureFormatError is one
        pass
    except BaseException as exc:  # noqa: BLE001 - PanicException derives from BaseException
        return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    return None


def _mutations(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    """Truncations, bit flips and 4-byte overwrites, half of them in the headers (first 256 bytes)."""
    n = len(data)

    def spot() -> int:
        return rng.randrange(min(n, 256)) if rng.random() < 0.5 else rng.randrange(n)

    out = [(f"cut {cut}", data[:cut]) for cut in sorted({rng.randrange(n) for _ in range(8)} | {n - 1})]
    for _ in range(8):
        flipped = bytearray(data)
        where = [spot() for _ in range(rng.randint(1, 4))]
        for at in where:
            flipped[at] ^= 1 << rng.randrange(8)
        out.append((f"flip {where}", bytes(flipped)))
    for word in (0x00000000, 0xFFFFFFFF, 0x7FFFFFFF):
        for _ in range(3):
            at = spot()
            patched = bytearray(data)
            patched[at:at + 4] = struct.pack("<I", word)[:n - at]
            out.append((f"word {word:#010x} at {at}", bytes(patched[:n])))
    return out


def _small_captures(captures: Path) -> list[Path]:
    entries = json.loads((captures / "manifest.json").read_text())["files"]
    return [captures / e["file"] for e in entries if e["bytes"] < SMALL]


def test_mutated_shared_captures_never_panic(captures: Path, tmp_path: Path) -> None:
    rng = random.Random(8)
    failures, tried = [], 0
    for path in _small_captures(captures):
        for what, data in _mutations(path.read_bytes(), rng):
            target = tmp_path / path.name
            target.write_bytes(data)
            tried += 1
            problem = _outcome(target)
            if problem:
                failures.append(f"{path.relative_to(captures)} {what}: {problem}")
    assert tried > 1000
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_mutated_compressed_captures_never_panic(tmp_path: Path, compress: str) -> None:
    if compress == "zstd" and shutil.which("zstd") is None:
        pytest.skip("the zstd command is not installed")
    original = s.write_pcapng(tmp_path / f"a.{compress}", _pings(40), compress=compress).read_bytes()
    rng = random.Random(compress)
    failures = []
    for _ in range(6):
        for what, data in _mutations(original, rng):
            target = tmp_path / "m"
            target.write_bytes(data)
            if problem := _outcome(target):
                failures.append(f"{what}: {problem}")
    assert not failures, "\n".join(failures[:20])


# --------------------------------------------------------------------------- resource limits

def _hits(cap: ic.Capture) -> dict[str, int]:
    return {k: v for k, v in cap.stats.select(HIT_COLUMNS).row(0, named=True).items() if v}


def _errors(cap: ic.Capture) -> list[tuple]:
    return cap.errors.select("frame", "kind").rows()


def _pings(n: int, size: int = 56) -> list[s.Frame]:
    return [s.Frame(T0 + i, s.ethernet(s.ping("10.0.0.1", "10.0.0.2", seq=i, payload=bytes(size)))) for i in range(n)]


def test_defaults_hit_nothing(tmp_path: Path) -> None:
    cap = _read(s.write_pcap(tmp_path / "a.pcap", _pings(3)))
    assert _hits(cap) == {} and cap.errors.height == 0


def test_max_record_len(tmp_path: Path) -> None:
    frames = [*_pings(2), *_pings(1, size=400), *_pings(1)]
    path = s.write_pcap(tmp_path / "r.pcap", frames)
    assert _read(path).stats["packets"].item() == 4
    cap = _read(path, max_record_len=300)
    assert _hits(cap) == {"max_record_len_hits": 1}
    assert cap.stats.select("packets", "corrupt").row(0) == (2, True)
    assert _errors(cap) == [(None, "record_too_long")]
    assert "max_record_len" in cap.errors["reason"].item()


def test_limits_apply_when_streaming(tmp_path: Path) -> None:
    path = s.write_pcap(tmp_path / "r.pcap", [*_pings(2), *_pings(1, size=400)])
    with pytest.warns(ic.io.CaptureTruncatedWarning, match="max_record_len"):
        stats = ic.scan_pcap(path, table="stats", max_record_len=300).collect()
    assert stats.select("packets", "max_record_len_hits").row(0) == (2, 1)


def test_max_block_len(tmp_path: Path) -> None:
    path = s.write_pcapng(tmp_path / "b.pcapng", [*_pings(2), *_pings(1, size=400)])
    cap = _read(path, max_block_len=256)
    assert _hits(cap) == {"max_block_len_hits": 1}
    assert cap.stats.select("packets", "corrupt").row(0) == (2, True)
    assert _errors(cap) == [(None, "block_too_long")]
    assert "max_block_len" in cap.errors["reason"].item()


def test_max_ext_headers(tmp_path: Path) -> None:
    chain = [s.hop_by_hop(), s.dest_options(), s.routing(), s.dest_options()]
    packet = s.ipv6("2001:db8::1", "2001:db8::2", s.echo_request6(1, 1, src="2001:db8::1", dst="2001:db8::2"),
                    ext_headers=chain)
    path = s.write_pcap(tmp_path / "x.pcap", [s.Frame(T0, s.ethernet(packet))])
    assert _read(path, max_ext_headers=4).stats["icmp"].item() == 1
    cap = _read(path, max_ext_headers=3)
    assert _hits(cap) == {"max_ext_headers_hits": 1}
    assert cap.stats.select("icmp", "undecodable").row(0) == (0, 1)
    assert _errors(cap) == [(1, "ext_chain_too_long")]
    assert "max_ext_headers" in cap.errors["reason"].item()


@pytest.mark.parametrize("count", [137, 175])
def test_default_max_ext_headers_reads_real_chains(count: int, tmp_path: Path, tshark: str) -> None:
    # As in suricata-verify's captures: an echo request behind `count` empty (atomic) fragment
    # headers, which tshark decodes; the default limit (256) must not refuse it.
    src, dst = "2001:db8::1", "2001:db8::2"
    chain = [s.fragment_header(offset=0, more=False, ident=i) for i in range(count)]
    packet = s.ipv6(src, dst, s.echo_request6(1, 1, src=src, dst=dst), ext_headers=chain)
    path = s.write_pcap(tmp_path / "chain.pcap", [s.Frame(T0, s.ethernet(packet))])
    cap = _read(path)
    assert cap.stats.select("icmp", "undecodable").row(0) == (1, 0)
    assert cap.icmp.select("icmp_type", "checksum_ok").row(0) == (128, True)
    done = subprocess.run([tshark, "-n", "-r", str(path), "-T", "fields", "-e", "icmpv6.type"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["128"]
    longer = [s.fragment_header(offset=0, more=False, ident=i) for i in range(257)]
    packet = s.ipv6(src, dst, s.echo_request6(1, 1, src=src, dst=dst), ext_headers=longer)
    cap = _read(s.write_pcap(tmp_path / "longer.pcap", [s.Frame(T0, s.ethernet(packet))]))
    assert _hits(cap) == {"max_ext_headers_hits": 1}


def test_max_tunnel_depth(tmp_path: Path) -> None:
    packet = s.ping("10.0.0.1", "10.0.0.2")
    for i in range(3):
        packet = s.tunnels.over_ip(f"172.16.{i}.1", f"172.16.{i}.2", packet, proto=4)  # IP in IP
    path = s.write_pcap(tmp_path / "t.pcap", [s.Frame(T0, s.ethernet(packet))])
    assert _read(path).stats["icmp"].item() == 1
    cap = _read(path, max_tunnel_depth=2)
    assert _hits(cap) == {"max_tunnel_depth_hits": 1}
    assert _errors(cap) == [(1, "tunnel_too_deep")]


def _first_fragments(n: int, size: int) -> list[s.Frame]:
    """The first fragment of `n` datagrams that never complete."""
    return [s.Frame(T0 + i, s.ethernet(s.fragment_ipv4_payload("10.0.0.1", "10.0.0.2", bytes(size), ident=i,
                                                               size=size, more=True)[0]))
            for i in range(n)]


def test_max_reassembly_bytes(tmp_path: Path) -> None:
    path = s.write_pcap(tmp_path / "m.pcap", _first_fragments(3, 1000))
    assert _hits(_read(path)) == {}
    # Each datagram costs its bytes, 768 per datagram and 32 per run: room for two of them.
    cap = _read(path, max_reassembly_bytes=2 * (1000 + 768 + 32) + 100)
    assert _hits(cap) == {"max_reassembly_bytes_hits": 1}
    assert cap.stats["reassembly_evictions"].item() == 1
    assert _errors(cap) == [(3, "reassembly_memory_limit")]
    assert "max_reassembly_bytes" in cap.errors["reason"].item() and "frame 1" in cap.errors["reason"].item()
    assert cap.datagrams.select("first_frame", "evicted").sort("first_frame").rows() == [(1, True), (2, False), (3, False)]


def test_max_flows_under_a_flood_of_distinct_5_tuples(tmp_path: Path) -> None:
    """Every packet a new 5-tuple (random addresses and ports, TCP and UDP): the table holds
    max_flows directions, the others' packets are counted, memory stays bounded."""
    rnd = random.Random(5)
    frames = []
    for i in range(5000):
        src, dst = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}", "192.0.2.1"
        sport, dport = rnd.randrange(1, 65536), rnd.randrange(1, 65536)
        payload = (s.tcp(sport, dport, flags=0x02, seq=rnd.randrange(2**32), src=src, dst=dst) if i % 2
                   else s.udp(sport, dport, b"x", src=src, dst=dst))
        frames.append((T0 + i * 1000, s.ethernet(s.ipv4(src, dst, payload, proto=6 if i % 2 else 17))))
    path = s.write_pcap(tmp_path / "flood.pcap", frames)
    cap = _read(path, max_flows=100)
    _check(cap)
    assert cap.flows.height == 100
    assert _hits(cap) == {"max_flows_hits": 4900}
    assert _errors(cap) == [(101, "flows_limit")]
    assert cap.flows["packets"].sum() + 4900 == 5000
    scanned = ic.scan_pcap(path, "flows", max_flows=100).collect()
    assert scanned.height == 100


def test_max_datagrams(tmp_path: Path) -> None:
    path = s.write_pcap(tmp_path / "d.pcap", _first_fragments(4, 16))
    cap = _read(path, max_datagrams=2)
    assert _hits(cap) == {"max_datagrams_hits": 2}
    assert _errors(cap) == [(3, "reassembly_datagram_limit"), (4, "reassembly_datagram_limit")]
    assert "max_datagrams" in cap.errors["reason"][0]
    assert cap.stats.select("packets", "fragment").row(0) == (4, 4)


def _bomb(path: Path, records: int) -> Path:
    """A gzip pcap of `records` 256 KiB zero-filled records: about 1000:1."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    record = struct.pack("<IIII", 0, 0, 262144, 262144) + bytes(262144)
    path.write_bytes(gzip.compress(header + record * records, 9))
    return path


def test_max_decompression_ratio(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "bomb.pcap.gz", 64)  # 16 MiB from 16 KiB
    with pytest.warns(ic.io.CaptureTruncatedWarning, match="max_decompression_ratio"):
        cap = ic.read_pcap(path)
    _check(cap)
    assert _hits(cap) == {"max_decompression_ratio_hits": 1}
    assert cap.stats["corrupt"].item() is True
    assert 0 < cap.stats["packets"].item() < 64
    assert _errors(cap) == [(None, "decompression_ratio")]
    with pytest.raises(ic.CaptureFormatError, match="compression bomb"):
        ic.read_pcap(path, strict=True)
    whole = _read(path, max_decompression_ratio=10**6)
    assert _hits(whole) == {} and whole.stats["packets"].item() == 64


# --------------------------------------------------------------------------- changing under the reader

BIG = 30_000


@pytest.fixture(scope="module")
def big_capture() -> bytes:
    """About 15 MB of pings with seq 0, 1, 2...: reading it takes long enough to interfere with."""
    return s.pcap_bytes(_pings(BIG, size=400))


def test_capture_truncated_while_read(tmp_path: Path, big_capture: bytes) -> None:
    """A thread reads while the file is cut under it: a sound (maybe cut short) result, never a crash."""
    path = tmp_path / "big.pcap"
    original = big_capture
    rng = random.Random(3)
    outcomes = []
    for _ in range(6):
        path.write_bytes(original)
        result: dict = {}

        def read() -> None:
            try:
                result["cap"] = _read(path)
            except BaseException as exc:  # noqa: BLE001
                result["exc"] = exc

        reader = threading.Thread(target=read)
        reader.start()
        # Shrink in steps while the reader runs, to a random final size.
        final = rng.randrange(24, len(original))
        with open(path, "r+b") as f:
            for size in range(len(original), final, -(len(original) - final) // 8 - 1):
                f.truncate(size)
                time.sleep(0.002)
            f.truncate(final)
        reader.join(timeout=60)
        assert not reader.is_alive()
        if "exc" in result:
            assert isinstance(result["exc"], ValueError), repr(result["exc"])
            outcomes.append("error")
            continue
        cap = result["cap"]
        assert cap.icmp["icmp_seq"].to_list() == list(range(cap.stats["packets"].item()))
        outcomes.append("cut short" if cap.stats["cut_short"].item() else "whole")
    assert len(outcomes) == 6, outcomes


def test_capture_growing_while_read(tmp_path: Path, big_capture: bytes) -> None:
    """A capture still being written: whatever was there when read, whole records kept."""
    data, total = big_capture, BIG
    path = tmp_path / "growing.pcap"
    path.write_bytes(data[:100_003])

    def append() -> None:
        with open(path, "ab") as f:
            for at in range(100_003, len(data), 65_537):
                f.write(data[at:at + 65_537])
                f.flush()

    writer = threading.Thread(target=append)
    writer.start()
    cap = _read(path)
    writer.join()
    seqs = cap.icmp["icmp_seq"].to_list()
    assert seqs == list(range(len(seqs))) and 0 < len(seqs) <= total
    assert _read(path).stats["packets"].item() == total
