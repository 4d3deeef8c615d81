"""One big uncompressed pcap or pcapng is decoded in pieces on several threads: the tables must be
those of one sequential read, whatever the pieces hold (fragments in flight, a cut-short end, a
pcapng interface added halfway)."""
from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

import icmpscope as ic

TABLES = ("icmp", "fragments", "datagrams", "flows", "stats", "errors")
# Pieces are at least 16 MiB: files past 32 MiB split on two threads.
SIZE = 40 << 20


def repeated(frames: list[ic.synth.Frame], path: Path, *, cut: int = 0) -> Path:
    """`frames` written again and again, 1000 s apart, to SIZE bytes; the last `cut` bytes dropped."""
    one = ic.synth.write_pcap(path.with_suffix(".one"), frames).read_bytes()
    header, records = one[:24], []
    at = 24
    while at < len(one):
        sec, usec, caplen, orig = struct.unpack_from("<IIII", one, at)
        records.append((sec, usec, one[at + 16:at + 16 + caplen], orig))
        at += 16 + caplen
    chunks, size, rep = [header], 24, 0
    while size < SIZE:
        for sec, usec, data, orig in records:
            chunks.append(struct.pack("<IIII", sec + 1000 * rep, usec, len(data), orig) + data)
            size += 16 + len(data)
        rep += 1
    blob = b"".join(chunks)
    path.write_bytes(blob[:len(blob) - cut] if cut else blob)
    return path


def repeated_ng(frames: list[ic.synth.Frame], path: Path, *, interfaces: int = 1) -> Path:
    """The pcapng counterpart of `repeated` (µs timestamps); with `interfaces=2`, a second
    interface is described after the first repetition and every other packet uses it."""
    head_and_blocks = ic.synth.pcapng_bytes(frames)
    shb_len = struct.unpack_from("<I", head_and_blocks, 4)[0]
    idb_len = struct.unpack_from("<I", head_and_blocks, shb_len + 4)[0]
    head, blocks = head_and_blocks[:shb_len + idb_len], head_and_blocks[shb_len + idb_len:]
    idb = head[shb_len:]
    chunks, size, rep = [head], len(head), 0
    while size < SIZE:
        out, at = bytearray(blocks), 0
        while at < len(out):
            block_type, total = struct.unpack_from("<II", out, at)
            if block_type == 6:
                interface, hi, lo = struct.unpack_from("<III", out, at + 8)
                ts = (hi << 32 | lo) + rep * 1000 * 10**6
                second = interfaces == 2 and rep > 0 and (at // 4) % 2
                struct.pack_into("<III", out, at + 8, 1 if second else interface, ts >> 32, ts & 0xFFFFFFFF)
            at += total
        if rep == 1 and interfaces == 2:
            chunks.append(idb)
        chunks.append(bytes(out))
        size += len(out)
        rep += 1
    path.write_bytes(b"".join(chunks))
    return path


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("split")
    demo = ic.synth.demo_frames()
    pings = [ic.synth.Frame(i * 1_000_000, ic.synth.ethernet(ic.synth.ping("10.0.0.1", f"10.0.{i % 7}.{i % 250}", seq=i)))
             for i in range(500)]
    return {
        # pings, floods, sweeps, ping of death, teardrop...: fragments everywhere
        "demo": repeated(demo, d / "demo.pcap"),
        # the last record cut short
        "demo_cut": repeated(demo, d / "demo_cut.pcap", cut=7),
        "pings": repeated(pings, d / "pings.pcap"),
        "demo_ng": repeated_ng(demo, d / "demo.pcapng"),
        "pings_ng": repeated_ng(pings, d / "pings.pcapng"),
        # pieces after the new interface start with the wrong interfaces: they must be dropped
        "pings_ng_two_interfaces": repeated_ng(pings, d / "pings2.pcapng", interfaces=2),
    }


def read(path: Path, threads: int) -> tuple[ic.Capture, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cap = ic.read_pcap(path, threads=threads, progress=False)
    return cap, [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize("name", ["demo", "demo_cut", "pings", "demo_ng", "pings_ng", "pings_ng_two_interfaces"])
def test_pieces_equal_one_sequential_read(captures: dict[str, Path], name: str) -> None:
    one, one_warned = read(captures[name], threads=1)
    two, two_warned = read(captures[name], threads=2)
    for table in TABLES:
        assert_frame_equal(getattr(one, table), getattr(two, table))
    assert one_warned == two_warned
    assert len(one_warned) == (name == "demo_cut")
    assert one.icmp.n_chunks() == 1
    stats = one.stats.row(0, named=True)
    assert stats["packets"] == stats["icmp"] + stats["fragment"] + stats["other"] + stats["undecodable"]
    assert one.icmp["frame"].is_sorted() and one.icmp["frame"].n_unique() == one.icmp.height


@pytest.mark.parametrize("name", ["pings", "pings_ng"])
def test_a_capture_of_whole_packets_is_read_in_two_pieces(captures: dict[str, Path], name: str) -> None:
    cap = ic.read_pcap(captures[name], threads=2, progress=False)
    assert cap.icmp.n_chunks() == 2
    assert cap.icmp["frame"].to_list() == list(range(1, cap.stats["packets"][0] + 1))


def test_a_pcapng_whose_interfaces_change_is_read_on_from_the_change(captures: dict[str, Path]) -> None:
    cap = ic.read_pcap(captures["pings_ng_two_interfaces"], threads=2, progress=False)
    # The piece after the new interface was dropped; its packets use both interfaces.
    assert cap.icmp.n_chunks() == 1
    assert cap.stats["undecodable"][0] == 0 and cap.errors.height == 0


def test_compressed_and_small_captures_are_read_whole(captures: dict[str, Path], tmp_path: Path) -> None:
    small = ic.synth.write_pcap(tmp_path / "small.pcap", ic.synth.demo_frames())
    assert ic.read_pcap(small, threads=2, progress=False).icmp.n_chunks() == 1
    zipped = ic.synth.write_pcap(tmp_path / "pings.pcap.gz", _frames_of(captures["pings"])[:20000], compress="gzip")
    assert ic.read_pcap(zipped, threads=2, progress=False).icmp.n_chunks() == 1


def test_threads_must_be_positive(captures: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="threads must be at least 1"):
        ic.read_pcap(captures["pings"], threads=0)


def _frames_of(path: Path) -> list[ic.synth.Frame]:
    blob = path.read_bytes()
    frames, at = [], 24
    while at + 16 <= len(blob):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", blob, at)
        frames.append(ic.synth.Frame(sec * 10**9 + usec * 1000, blob[at + 16:at + 16 + caplen]))
        at += 16 + caplen
    return frames
