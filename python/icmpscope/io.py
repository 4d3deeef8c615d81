"""Reading captures into polars tables."""
from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import polars as pl

from icmpscope import _core

CaptureFormatError = _core.CaptureFormatError
CaptureFormatError.__module__ = "icmpscope"

Source = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]

TABLES = ("icmp", "fragments", "datagrams", "stats", "errors")


class CaptureTruncatedWarning(UserWarning):
    """A capture ended in the middle of a record; what came before it was kept."""


@dataclass(frozen=True)
class Capture:
    """The tables of one or more captures (SPEC "Tables"), as polars DataFrames."""

    icmp: pl.DataFrame
    fragments: pl.DataFrame
    datagrams: pl.DataFrame
    stats: pl.DataFrame
    errors: pl.DataFrame
    files: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return (
            f"Capture(files={len(self.files)}, packets={self.stats['packets'].sum()}, "
            f"icmp={self.icmp.height}, fragments={self.fragments.height}, "
            f"datagrams={self.datagrams.height}, errors={self.errors.height})"
        )


def expand_sources(source: Source) -> list[Path]:
    """Paths named by a path, a glob, or a list of them; a missing plain path raises."""
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    paths: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text) and not os.path.exists(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no file matches {text!r}")
            paths.extend(Path(m) for m in matches)
        else:
            if not os.path.exists(text):
                raise FileNotFoundError(f"{text}: no such file")
            paths.append(Path(text))
    return paths


def _frame(table: object) -> pl.DataFrame:
    return pl.DataFrame(table)


def read_pcap(
    source: Source,
    *,
    strict: bool = False,
    progress: bool | None = None,
    reassembly_timeout_v4: float = 30.0,
    reassembly_timeout_v6: float = 60.0,
    max_reassembly_bytes: int = 32 << 20,
    max_datagrams: int = 65536,
    max_ext_headers: int = 16,
    max_record_len: int = 256 * 1024,
    max_block_len: int = 16 << 20,
    max_decompression_ratio: int = 1000,
) -> Capture:
    """Read pcap/pcapng captures (plain, gzip or zstd) into a :class:`Capture`.

    Several files (a list or a glob) are read in parallel, one per core.
    A capture cut short keeps every whole record before the cut and warns
    (``strict=True`` raises :class:`CaptureFormatError` instead).

    Resource limits against hostile input; each hit is counted in ``stats``
    (column ``<keyword>_hits``) and named in ``errors``: ``max_record_len``
    and ``max_block_len`` (a longer pcap record or pcapng block is corruption:
    reading stops), ``max_ext_headers`` (longer IPv6 extension-header chains
    are undecodable), ``max_reassembly_bytes`` and ``max_datagrams`` (the
    oldest datagram in reassembly is evicted), ``max_decompression_ratio``
    (a gzip/zstd stream inflating past this many bytes per compressed byte,
    after its first 4 MiB, is a bomb: reading stops).

    >>> import icmpscope as ic, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ping.pcap")
    >>> _ = ic.synth.write_pcap(path, [(0, ic.synth.ethernet(ic.synth.ping("10.0.0.1", "10.0.0.2")))])
    >>> cap = ic.read_pcap(path)
    >>> cap.icmp.select("src", "dst", "icmp_type").rows()
    [('10.0.0.1', '10.0.0.2', 8)]
    """
    del progress  # the progress bar arrives with the batch work (SPEC "Batch and scale")
    paths = expand_sources(source)
    results = _core.read_files(
        [str(p) for p in paths],
        timeout_v4=reassembly_timeout_v4,
        timeout_v6=reassembly_timeout_v6,
        max_reassembly_bytes=max_reassembly_bytes,
        max_datagrams=max_datagrams,
        max_ext_headers=max_ext_headers,
        max_record_len=max_record_len,
        max_block_len=max_block_len,
        max_decompression_ratio=max_decompression_ratio,
    )
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in TABLES}
    for result in results:
        if isinstance(result, BaseException):
            raise result
        if result["warning"]:
            if strict:
                raise CaptureFormatError(result["warning"])
            warnings.warn(result["warning"], CaptureTruncatedWarning, stacklevel=2)
        for name in TABLES:
            parts[name].append(_frame(result[name]))
    tables = {name: pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0] for name, frames in parts.items()}
    return Capture(**tables, files=tuple(str(p) for p in paths))
