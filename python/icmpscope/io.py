"""Reading captures into polars tables."""
from __future__ import annotations

import functools
import glob
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence, Union

from icmpscope import _core

if TYPE_CHECKING:
    import polars as pl

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


def _options(
    *,
    reassembly_timeout_v4: float = 30.0,
    reassembly_timeout_v6: float = 60.0,
    max_reassembly_bytes: int = 32 << 20,
    max_datagrams: int = 65536,
    max_ext_headers: int = 256,
    max_tunnel_depth: int = 8,
    max_record_len: int = 256 * 1024,
    max_block_len: int = 16 << 20,
    max_decompression_ratio: int = 1000,
) -> dict[str, float | int]:
    """The decoder options `_core` takes (defaults as `read_pcap`'s), checked: a bad one raises
    ValueError whichever function was given it."""
    for name, value in (("reassembly_timeout_v4", reassembly_timeout_v4), ("reassembly_timeout_v6", reassembly_timeout_v6)):
        if not (0 < value < float("inf")):
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    for name, value, least in (("max_reassembly_bytes", max_reassembly_bytes, 0), ("max_datagrams", max_datagrams, 1),
                               ("max_ext_headers", max_ext_headers, 0), ("max_tunnel_depth", max_tunnel_depth, 0),
                               ("max_record_len", max_record_len, 0), ("max_block_len", max_block_len, 0),
                               ("max_decompression_ratio", max_decompression_ratio, 0)):
        if value < least:
            raise ValueError(f"{name} must be at least {least}, not {value!r}")
    return {
        "timeout_v4": reassembly_timeout_v4,
        "timeout_v6": reassembly_timeout_v6,
        "max_reassembly_bytes": max_reassembly_bytes,
        "max_datagrams": max_datagrams,
        "max_ext_headers": max_ext_headers,
        "max_tunnel_depth": max_tunnel_depth,
        "max_record_len": max_record_len,
        "max_block_len": max_block_len,
        "max_decompression_ratio": max_decompression_ratio,
    }


def _ended_early(message: str, *, strict: bool) -> None:
    if strict:
        raise CaptureFormatError(message)
    warnings.warn(message, CaptureTruncatedWarning, stacklevel=3)


def progress_bar(total_bytes: int, files: int, progress: bool | None) -> Any:
    """A tqdm bar over bytes and files (terminals and notebooks), or None when it should be silent."""
    if progress is None:
        progress = sys.stderr.isatty() or "ipykernel" in sys.modules
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=f"0/{files} files", leave=False)


def _read_files(paths: list[str], options: dict[str, float | int], progress: bool | None,
                threads: int | None = None) -> list[Any]:
    """All files in one parallel call, or file by file on a thread pool when a bar is shown."""
    bar = progress_bar(sum(os.path.getsize(p) for p in paths), len(paths), progress) if len(paths) > 1 else None
    if bar is None:
        return _core.read_files(paths, options, threads=threads)
    results: dict[str, Any] = {}
    one_each = None if threads is None else 1
    with bar, ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        futures = {pool.submit(_core.read_files, [p], options, threads=one_each): p for p in paths}
        for future in as_completed(futures):
            path = futures[future]
            results[path] = future.result()[0]
            bar.update(os.path.getsize(path))
            bar.set_description(f"{len(results)}/{len(paths)} files")
    return [results[p] for p in paths]


def _read_importing_polars(paths: list[str], options: dict[str, float | int], progress: bool | None,
                           threads: int | None) -> list[Any]:
    """`_read_files`; a process's first read also imports polars (~0.2 s) while the core decodes."""
    if "polars" in sys.modules:
        return _read_files(paths, options, progress, threads)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The core releases the GIL for the whole read, so the import runs beside it.
        reading = pool.submit(_read_files, paths, options, progress, threads)
        import polars  # noqa: F401

        return reading.result()


@functools.cache
def _schema(table: str) -> pl.Schema:
    import polars as pl

    return pl.DataFrame(_core.empty_table(table)).schema


def _typed(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """`frame` with the columns that came as nulls (no value in any file read) given their type."""
    import polars as pl

    if pl.Null not in frame.schema.dtypes():
        return frame
    schema = _schema(table)
    # Column by column: with_columns would rechunk (copy) a capture read in pieces.
    return pl.DataFrame([c.cast(schema[c.name]) if c.dtype == pl.Null else c for c in frame.iter_columns()])


def read_pcap(
    source: Source,
    *,
    strict: bool = False,
    progress: bool | None = None,
    threads: int | None = None,
    reassembly_timeout_v4: float = 30.0,
    reassembly_timeout_v6: float = 60.0,
    max_reassembly_bytes: int = 32 << 20,
    max_datagrams: int = 65536,
    max_ext_headers: int = 256,
    max_tunnel_depth: int = 8,
    max_record_len: int = 256 * 1024,
    max_block_len: int = 16 << 20,
    max_decompression_ratio: int = 1000,
) -> Capture:
    """Read pcap/pcapng captures (plain, gzip or zstd) into a :class:`Capture`.

    Several files (a list or a glob) are read in parallel, one per core, with a progress bar over
    files and bytes in terminals and notebooks (``progress=False`` silences it, ``True`` forces it).
    An uncompressed pcap or pcapng file bigger than 32 MiB, read with cores to spare, is decoded
    in pieces side by side (the tables are the same as from one sequential read). ``threads`` sets how many
    threads decode (default: one per core).
    A capture cut short keeps every whole record before the cut and warns
    (``strict=True`` raises :class:`CaptureFormatError` instead).

    Reassembly: an incomplete datagram times out ``reassembly_timeout_v4``/``_v6`` seconds of
    capture time after its first fragment (the Linux defaults); at most ``max_datagrams`` are in
    flight and ``max_reassembly_bytes`` are held per file (fragment bytes plus 768 bytes per
    datagram and 32 per run of bytes), the datagram with the oldest first fragment making room.
    Datagrams that time out or are evicted keep their ``datagrams`` row (``complete = false``).

    Limits against hostile input; each hit is counted in ``stats`` (column ``<keyword>_hits``)
    and named in ``errors``: ``max_record_len`` and ``max_block_len`` (a longer pcap record or
    pcapng block is corruption: reading stops), ``max_ext_headers`` (a longer IPv6 extension
    header chain is undecodable), ``max_reassembly_bytes`` and ``max_datagrams`` (above), and
    ``max_decompression_ratio`` (a gzip/zstd stream inflating past this many bytes per compressed
    byte, once 4 MiB are out, is a bomb: reading stops).

    >>> import icmpscope as ic, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ping.pcap")
    >>> _ = ic.synth.write_pcap(path, [(0, ic.synth.ethernet(ic.synth.ping("10.0.0.1", "10.0.0.2")))])
    >>> cap = ic.read_pcap(path)
    >>> cap.icmp.select("src", "dst", "icmp_type").rows()
    [('10.0.0.1', '10.0.0.2', 8)]
    """
    options = _options(reassembly_timeout_v4=reassembly_timeout_v4, reassembly_timeout_v6=reassembly_timeout_v6,
                       max_reassembly_bytes=max_reassembly_bytes, max_datagrams=max_datagrams, max_ext_headers=max_ext_headers,
                       max_tunnel_depth=max_tunnel_depth, max_record_len=max_record_len, max_block_len=max_block_len,
                       max_decompression_ratio=max_decompression_ratio)
    paths = expand_sources(source)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads!r}")
    results = _read_importing_polars([str(p) for p in paths], options, progress, threads)
    import polars as pl

    for result in results:
        if isinstance(result, BaseException):
            raise result
        if result["warning"]:
            _ended_early(result["warning"], strict=strict)
    # One conversion per table for all the files (the batches chained in Rust, no copy).
    tables = {name: _typed(pl.DataFrame(_core.ArrowTable.concat([r[name] for r in results])), name) for name in TABLES}
    return Capture(**tables, files=tuple(str(p) for p in paths))


def scan_pcap(
    source: Source,
    table: str = "icmp",
    *,
    strict: bool = False,
    batch_rows: int = 1 << 16,
    reassembly_timeout_v4: float = 30.0,
    reassembly_timeout_v6: float = 60.0,
    max_reassembly_bytes: int = 32 << 20,
    max_datagrams: int = 65536,
    max_ext_headers: int = 256,
    max_tunnel_depth: int = 8,
    max_record_len: int = 256 * 1024,
    max_block_len: int = 16 << 20,
    max_decompression_ratio: int = 1000,
) -> pl.LazyFrame:
    """One table of one or more captures as a polars LazyFrame that streams from the Rust reader.

    Only the projected columns leave Rust, filters run batch by batch, and memory stays flat
    whatever the capture size (``collect(engine="streaming")``).

    >>> import icmpscope as ic, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ping.pcap")
    >>> _ = ic.synth.write_pcap(path, [(0, ic.synth.ethernet(ic.synth.ping("10.0.0.1", "10.0.0.2")))])
    >>> import polars as pl
    >>> ic.scan_pcap(path).filter(pl.col("icmp_type") == 8).select("dst").collect().rows()
    [('10.0.0.2',)]
    """
    import polars as pl
    from polars.io.plugins import register_io_source

    options = _options(reassembly_timeout_v4=reassembly_timeout_v4, reassembly_timeout_v6=reassembly_timeout_v6,
                       max_reassembly_bytes=max_reassembly_bytes, max_datagrams=max_datagrams, max_ext_headers=max_ext_headers,
                       max_tunnel_depth=max_tunnel_depth, max_record_len=max_record_len, max_block_len=max_block_len,
                       max_decompression_ratio=max_decompression_ratio)
    paths = [str(p) for p in expand_sources(source)]
    schema = _schema(table)

    def batches(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        needed = None
        if with_columns is not None:
            extra = predicate.meta.root_names() if predicate is not None else []
            needed = list(dict.fromkeys([*with_columns, *extra]))
        scanner = _core.Scanner(paths, table, options, batch_rows=batch_size or batch_rows, columns=needed)
        remaining = n_rows
        while remaining is None or remaining > 0:
            arrow = scanner.next_batch()
            for message in scanner.take_warnings():
                _ended_early(message, strict=strict)
            if arrow is None:
                return
            frame = pl.DataFrame(arrow)
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if remaining is not None:
                frame = frame.head(remaining)
                remaining -= frame.height
            yield frame

    return register_io_source(batches, schema=schema)
