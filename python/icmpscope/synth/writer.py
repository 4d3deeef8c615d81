"""Capture writers: pcap (µs/ns, both byte orders), modified "Kuznetzov" pcap and pcapng.

Frames carry nanosecond timestamps since the epoch (UTC). Writers stream, so large captures do
not have to fit in memory; the ``*_bytes`` variants return the capture for in-memory tests.

>>> from icmpscope.synth.packets import ethernet, ping
>>> data = pcap_bytes([(1_700_000_000_123_456_789, ethernet(ping("10.0.0.1", "10.0.0.2")))])
>>> len(data), data[:4].hex(), data[24:32].hex()
(114, 'd4c3b2a1', '00f1536540e20100')
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import shutil
import struct
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import BinaryIO, Literal

from .packets import _pad

__all__ = [
    "Frame", "Interface", "RawBlock",
    "write_pcap", "write_modified_pcap", "write_pcapng",
    "pcap_bytes", "modified_pcap_bytes", "pcapng_bytes",
]

Compression = Literal[None, "gzip", "zstd"]

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34  # Alexey Kuznetzov's patched libpcap: 24-byte record headers
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
SHB, IDB, PB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6
OPT_ENDOFOPT, IF_NAME, IF_TSRESOL, IF_TSOFFSET = 0, 2, 9, 14


@dataclass(frozen=True)
class Frame:
    """One captured packet: ``ts`` in ns since the epoch (UTC), the link-layer ``data``.

    ``linktype`` names the link layer of ``data``; writers use it only when not told the file's
    (pcap) or the interfaces' (pcapng) link types. ``orig_len`` is the length on the wire
    (None = ``len(data)``); ``interface`` is the pcapng interface index.

    >>> Frame(1, b"\\x00").orig_len is None
    True
    """

    ts: int
    data: bytes
    linktype: int = 1
    orig_len: int | None = None
    interface: int = 0


@dataclass(frozen=True)
class Interface:
    """A pcapng interface: link type, snap length, if_tsresol byte (6 = µs, 9 = ns, high bit set =
    a power of two) and if_tsoffset in seconds.

    >>> Interface(linktype=101, tsresol=9).tsresol
    9
    """

    linktype: int = 1
    snaplen: int = 262144
    tsresol: int = 6
    tsoffset: int = 0
    name: str | None = None


@dataclass(frozen=True)
class RawBlock:
    """A pcapng block written verbatim (among the frames), e.g. of a type readers do not know.

    >>> RawBlock(0x1234, b"abcd").type
    4660
    """

    type: int
    body: bytes


FrameLike = Frame | tuple[int, bytes]


def _frame(item: FrameLike) -> Frame:
    if isinstance(item, Frame):
        return item
    if isinstance(item, tuple):
        return Frame(*item)
    raise TypeError(f"expected a Frame or a (ts_ns, data) tuple, not {type(item).__name__}")


# --------------------------------------------------------------------------- output

@contextlib.contextmanager
def _sink(path: Path, compress: Compression) -> Iterator[BinaryIO]:
    """A binary file at ``path``, compressed as asked."""
    if compress is None:
        with open(path, "wb") as out:
            yield out
    elif compress == "gzip":
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
            yield out  # type: ignore[misc]
    elif compress == "zstd":
        try:
            import zstandard
        except ImportError:
            zstandard = None
        if zstandard is not None:
            with zstandard.open(path, "wb") as out:
                yield out
        elif exe := shutil.which("zstd"):
            with open(path, "wb") as raw:
                proc = subprocess.Popen([exe, "-q", "-c"], stdin=subprocess.PIPE, stdout=raw)
                try:
                    yield proc.stdin  # type: ignore[misc]
                finally:
                    proc.stdin.close()  # type: ignore[union-attr]
                    if proc.wait():
                        raise RuntimeError(f"zstd exited with status {proc.returncode}")
        else:
            raise RuntimeError("zstd compression needs the 'zstandard' module or the 'zstd' "
                               "command on PATH; neither was found")
    else:
        raise ValueError(f"compress must be None, 'gzip' or 'zstd', not {compress!r}")


def _save(path: str | PathLike[str], chunks: Iterable[bytes], compress: Compression) -> Path:
    path = Path(path)
    with _sink(path, compress) as out:
        for chunk in chunks:
            out.write(chunk)
    return path


# --------------------------------------------------------------------------- pcap

def _pcap_chunks(frames: Iterable[FrameLike], *, magic: int, linktype: int | None,
                 big_endian: bool, snaplen: int,
                 record_extra: bytes = b"") -> Iterator[bytes]:
    """Global header, then one record header (+ ``record_extra``) and data per frame."""
    e = ">" if big_endian else "<"
    it = map(_frame, frames)
    first = next(it, None)
    it = itertools.chain([] if first is None else [first], it)
    file_linktype = linktype if linktype is not None else 1 if first is None else first.linktype
    yield struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, file_linktype)
    per_second = 10**9 if magic == PCAP_MAGIC_NS else 10**6
    for frame in it:
        if linktype is None and frame.linktype != file_linktype:
            raise ValueError(f"frames of link types {file_linktype} and {frame.linktype} in one "
                             "pcap; pass linktype= or use pcapng")
        data = frame.data[:snaplen]
        sec, ns = divmod(frame.ts, 10**9)
        orig = len(frame.data) if frame.orig_len is None else frame.orig_len
        yield struct.pack(e + "IIII", sec, ns * per_second // 10**9, len(data), orig)
        yield record_extra + data


def pcap_bytes(frames: Iterable[FrameLike], *, linktype: int | None = None,
               nanosecond: bool = False, big_endian: bool = False,
               snaplen: int = 262144) -> bytes:
    """A pcap capture as bytes; see :func:`write_pcap`.

    >>> pcap_bytes([], nanosecond=True, big_endian=True, linktype=101)[:4].hex()
    'a1b23c4d'
    """
    return b"".join(_pcap_chunks(frames, magic=PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US,
                                 linktype=linktype, big_endian=big_endian, snaplen=snaplen))


def write_pcap(path: str | PathLike[str], frames: Iterable[FrameLike], *,
               linktype: int | None = None, nanosecond: bool = False, big_endian: bool = False,
               snaplen: int = 262144, compress: Compression = None) -> Path:
    """Write a pcap file; frames are :class:`Frame` or ``(ts_ns, data)`` tuples.

    ``linktype`` defaults to the frames' (which must agree; Ethernet when empty). Data longer than
    ``snaplen`` is cut there, with the real length kept as orig_len. µs files round ts down.

    >>> import tempfile, os
    >>> p = write_pcap(os.path.join(tempfile.mkdtemp(), "a.pcap.gz"), [], compress="gzip")
    >>> p.read_bytes()[:2].hex()
    '1f8b'
    """
    return _save(path, _pcap_chunks(frames, magic=PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US,
                                    linktype=linktype, big_endian=big_endian, snaplen=snaplen),
                 compress)


def _modified_extra(big_endian: bool, ifindex: int, protocol: int, pkt_type: int) -> bytes:
    return struct.pack((">" if big_endian else "<") + "iHBx", ifindex, protocol, pkt_type)


def modified_pcap_bytes(frames: Iterable[FrameLike], *, linktype: int | None = None,
                        big_endian: bool = False, snaplen: int = 262144, ifindex: int = 0,
                        protocol: int = 0, pkt_type: int = 0) -> bytes:
    """A modified (Kuznetzov) pcap as bytes; see :func:`write_modified_pcap`.

    >>> len(modified_pcap_bytes([(0, b"abc")]))
    51
    """
    return b"".join(_pcap_chunks(
        frames, magic=PCAP_MAGIC_MODIFIED, linktype=linktype, big_endian=big_endian,
        snaplen=snaplen, record_extra=_modified_extra(big_endian, ifindex, protocol, pkt_type)))


def write_modified_pcap(path: str | PathLike[str], frames: Iterable[FrameLike], *,
                        linktype: int | None = None, big_endian: bool = False,
                        snaplen: int = 262144, ifindex: int = 0, protocol: int = 0,
                        pkt_type: int = 0, compress: Compression = None) -> Path:
    """Write a modified pcap (magic 0xa1b2cd34, µs): 24-byte record headers that add ifindex,
    protocol and pkt_type (same on every record) and a pad byte.

    >>> import tempfile, os
    >>> write_modified_pcap(os.path.join(tempfile.mkdtemp(), "m.pcap"), []).read_bytes()[:4].hex()
    '34cdb2a1'
    """
    return _save(path, _pcap_chunks(
        frames, magic=PCAP_MAGIC_MODIFIED, linktype=linktype, big_endian=big_endian,
        snaplen=snaplen, record_extra=_modified_extra(big_endian, ifindex, protocol, pkt_type)),
        compress)


# --------------------------------------------------------------------------- pcapng

def _block(kind: int, body: bytes, e: str) -> bytes:
    """A pcapng block: type, total length, body padded to 32 bits, total length again."""
    body = _pad(body, 4)
    return struct.pack(e + "II", kind, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))


def _options(options: Sequence[tuple[int, bytes]], e: str) -> bytes:
    """pcapng options, each padded to 32 bits, closed by opt_endofopt (none at all if empty)."""
    if not options:
        return b""
    return b"".join(struct.pack(e + "HH", code, len(value)) + _pad(value, 4)
                    for code, value in [*options, (OPT_ENDOFOPT, b"")])


def _interface_block(iface: Interface, e: str) -> bytes:
    options = []
    if iface.name is not None:
        options.append((IF_NAME, iface.name.encode()))
    if iface.tsresol != 6:
        options.append((IF_TSRESOL, bytes([iface.tsresol])))
    if iface.tsoffset:
        options.append((IF_TSOFFSET, struct.pack(e + "q", iface.tsoffset)))
    return _block(IDB, struct.pack(e + "HHI", iface.linktype, 0, iface.snaplen)
                  + _options(options, e), e)


def _ticks(ts: int, iface: Interface) -> int:
    """``ts`` (ns since the epoch) in the interface's time units, less its if_tsoffset."""
    res = iface.tsresol
    per_second = 2 ** (res & 0x7F) if res & 0x80 else 10 ** res
    return (ts - iface.tsoffset * 10**9) * per_second // 10**9


def _packet_block(frame: Frame, interfaces: Sequence[Interface], kind: str, e: str) -> bytes:
    try:
        iface = interfaces[frame.interface]
    except IndexError:
        raise ValueError(f"frame refers to interface {frame.interface}, but only "
                         f"{len(interfaces)} are defined") from None
    data = frame.data[:iface.snaplen] if iface.snaplen else frame.data
    orig = len(frame.data) if frame.orig_len is None else frame.orig_len
    if kind == "spb":  # no interface id, no timestamp; caplen is implied by the block length
        return _block(SPB, struct.pack(e + "I", orig) + data, e)
    ticks = _ticks(frame.ts, iface)
    high, low = ticks >> 32, ticks & 0xFFFFFFFF
    if kind == "epb":
        header = struct.pack(e + "IIIII", frame.interface, high, low, len(data), orig)
        return _block(EPB, header + data, e)
    if kind == "pb":
        header = struct.pack(e + "HHIIII", frame.interface, 0, high, low, len(data), orig)
        return _block(PB, header + data, e)
    raise ValueError(f"block must be 'epb', 'spb' or 'pb', not {kind!r}")


def _pcapng_chunks(frames: Iterable[FrameLike | RawBlock], *,
                   interfaces: Sequence[Interface] | None, sections: int, big_endian: bool,
                   block: str) -> Iterator[bytes]:
    e = ">" if big_endian else "<"
    items = [item if isinstance(item, RawBlock) else _frame(item) for item in frames]
    if interfaces is None:
        interfaces = _infer_interfaces([i for i in items if isinstance(i, Frame)])
    shb = _block(SHB, struct.pack(e + "IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1), e)
    idbs = b"".join(_interface_block(iface, e) for iface in interfaces)
    per, extra = divmod(len(items), sections)
    start = 0
    for section in range(sections):
        stop = start + per + (section < extra)
        yield shb + idbs
        for item in items[start:stop]:
            if isinstance(item, RawBlock):
                yield _block(item.type, item.body, e)
            else:
                yield _packet_block(item, interfaces, block, e)
        start = stop


def _infer_interfaces(frames: Sequence[Frame]) -> list[Interface]:
    """One Ethernet interface per index up to the highest used, typed by its frames' link type."""
    linktypes: dict[int, int] = {}
    for frame in frames:
        if linktypes.setdefault(frame.interface, frame.linktype) != frame.linktype:
            raise ValueError(f"interface {frame.interface} has frames of link types "
                             f"{linktypes[frame.interface]} and {frame.linktype}")
    count = max(linktypes, default=0) + 1
    return [Interface(linktype=linktypes.get(i, 1)) for i in range(count)]


def pcapng_bytes(frames: Iterable[FrameLike | RawBlock], *,
                 interfaces: Sequence[Interface] | None = None, sections: int = 1,
                 big_endian: bool = False, block: Literal["epb", "spb", "pb"] = "epb") -> bytes:
    """A pcapng capture as bytes; see :func:`write_pcapng`.

    >>> data = pcapng_bytes([(0, b"abc")])
    >>> len(data), data[:4].hex(), data[8:12].hex()
    (84, '0a0d0d0a', '4d3c2b1a')
    """
    return b"".join(_pcapng_chunks(frames, interfaces=interfaces, sections=sections,
                                   big_endian=big_endian, block=block))


def write_pcapng(path: str | PathLike[str], frames: Iterable[FrameLike | RawBlock], *,
                 interfaces: Sequence[Interface] | None = None, sections: int = 1,
                 big_endian: bool = False, block: Literal["epb", "spb", "pb"] = "epb",
                 compress: Compression = None) -> Path:
    """Write a pcapng file: SHB, IDBs, then one packet block per frame (``RawBlock`` verbatim).

    ``interfaces`` defaults to one per interface index the frames use, of their link type (µs).
    ``sections > 1`` repeats the SHB and IDBs and splits the frames evenly across sections.
    Data longer than the interface's snaplen is cut there, the real length kept as orig_len.

    >>> import tempfile, os
    >>> p = write_pcapng(os.path.join(tempfile.mkdtemp(), "a.pcapng"), [(0, b"abc")],
    ...                  interfaces=[Interface(linktype=101, tsresol=9)], big_endian=True)
    >>> p.read_bytes()[8:12].hex()
    '1a2b3c4d'
    """
    return _save(path, _pcapng_chunks(frames, interfaces=interfaces, sections=sections,
                                      big_endian=big_endian, block=block), compress)
