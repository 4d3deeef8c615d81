"""Reading captures into polars tables."""
from __future__ import annotations

import functools
import glob
import io
import os
import re
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Sequence, Union

from icmpscope import _core

if TYPE_CHECKING:
    import polars as pl

CaptureFormatError = _core.CaptureFormatError
CaptureFormatError.__module__ = "icmpscope"

Source = Union[str, os.PathLike, bytes, memoryview, BinaryIO, Sequence[Union[str, os.PathLike, bytes, memoryview, BinaryIO]]]

#: Object-store captures are read by ranged requests of this many bytes (read ahead), unless
#: ``storage_options`` sets ``default_block_size``.
REMOTE_BLOCK_SIZE = 16 << 20

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*(://|::)")

TABLES = ("icmp", "fragments", "datagrams", "flows", "stats", "errors")


class CaptureTruncatedWarning(UserWarning):
    """A capture ended in the middle of a record; what came before it was kept."""


@dataclass(frozen=True)
class Capture:
    """The tables of one or more captures (SPEC "Tables"), as polars DataFrames."""

    icmp: pl.DataFrame
    fragments: pl.DataFrame
    datagrams: pl.DataFrame
    flows: pl.DataFrame
    stats: pl.DataFrame
    errors: pl.DataFrame
    files: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return (
            f"Capture(files={len(self.files)}, packets={self.stats['packets'].sum()}, "
            f"icmp={self.icmp.height}, fragments={self.fragments.height}, "
            f"datagrams={self.datagrams.height}, flows={self.flows.height}, errors={self.errors.height})"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: the accounting per file, then the first ICMP rows.

        >>> import icmpscope as ic
        >>> cap = ic.read_pcap(ic.synth.pcap_bytes([(0, ic.synth.ethernet(ic.synth.ping("10.0.0.1", "10.0.0.2")))]))
        >>> "<b>icmpscope capture</b>: 1 file(s), 1 packets (1 ICMP" in cap._repr_html_()
        True
        """
        totals = self.stats.select("packets", "icmp", "fragment", "other", "undecodable").sum()
        head = (
            f"<b>icmpscope capture</b>: {len(self.files)} file(s), {totals['packets'].item()} packets "
            f"({totals['icmp'].item()} ICMP, {totals['fragment'].item()} fragments, "
            f"{totals['undecodable'].item()} undecodable), {self.errors.height} error row(s)"
        )
        per_file = self.stats.select("file", "format", "compression", "packets", "icmp", "first_ts", "last_ts")
        shown = [c for c in ("frame", "ts", "src", "dst", "icmp_type", "icmp_code", "payload_len", "tunnel") if c in self.icmp.columns]
        return (f"<div>{head}<h4>Files</h4>{per_file._repr_html_()}"
                f"<h4>ICMP (first rows)</h4>{self.icmp.select(shown).head(10)._repr_html_()}</div>")


@dataclass(frozen=True)
class Remote:
    """A capture in an object store (or anywhere fsspec reads), opened at any byte offset with
    ranged requests of ``block_size`` bytes, read ahead."""

    url: str
    fs: Any
    path: str
    size: int
    block_size: int = REMOTE_BLOCK_SIZE

    def __str__(self) -> str:
        return self.url

    def open_at(self, offset: int, length: int | None = None) -> Any:
        """A file object at ``offset``; with ``length``, one that fetches about that much (the
        reader looks into a window for a record start) rather than a whole block."""
        block = self.block_size if length is None else max(1, min(length, self.block_size))
        file = self.fs.open(self.path, "rb", block_size=block, cache_type="readahead")
        if offset:
            file.seek(offset)
        return file


@dataclass(frozen=True)
class Stream:
    """A binary file object (or bytes), read once from where it stands, by chunks."""

    name: str
    file: Any

    def __str__(self) -> str:
        return self.name


Item = Union[Path, Remote, Stream]


def is_url(text: str) -> bool:
    """True for a URL fsspec opens (``s3://``, ``gs://``, ``http://``, ``simplecache::…``)."""
    return bool(_URL.match(text))


def _stream(item: Any) -> Stream:
    """A file object or bytes as a Stream; a text-mode file is a TypeError naming it."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return Stream("<bytes>", io.BytesIO(item))
    name = getattr(item, "name", None)
    label = name if isinstance(name, str) else "<stream>"
    if isinstance(item, io.TextIOBase) or isinstance(item.read(0), str):
        raise TypeError(f"{label!r} is open in text mode: read_pcap needs a binary file object (open(path, 'rb'), sys.stdin.buffer)")
    return Stream(label, item)


def _remote(url: str, storage_options: dict[str, Any] | None) -> list[Remote]:
    """The captures a URL (maybe a glob) names, through fsspec; a failure is raised as fsspec
    raised it, with the URL in its message and without fsspec's inner frames."""
    try:
        import fsspec
    except ImportError:
        raise ImportError(f"reading {url} needs fsspec: pip install 'icmpscope[cloud]'") from None
    options = dict(storage_options or {})
    # Ours to apply (each file is opened with it), so filesystems that do not take it work too.
    block_size = int(options.pop("default_block_size", None) or REMOTE_BLOCK_SIZE)
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(fs, LocalFileSystem):
            return []  # a local path after all: read as one
        paths = sorted(fs.glob(path)) if glob.has_magic(path) else [path]
        if not paths:
            raise FileNotFoundError(f"no file matches {url!r}")
        found = []
        for p in paths:
            info = fs.info(p)
            if info.get("type") == "directory":
                raise IsADirectoryError(f"{p}: is a folder")
            name = url if len(paths) == 1 and not glob.has_magic(path) else fs.unstrip_protocol(p)
            found.append(Remote(name, fs, p, int(info["size"]), block_size))
        return found
    except ImportError as exc:  # no backend for the protocol (s3fs, gcsfs, adlfs…)
        raise ImportError(f"{url}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - re-raised with the URL named
        raise _with_url(url, exc) from None


def _with_url(url: str, exc: Exception) -> Exception:
    text = str(exc)
    message = text if url in text else f"{url}: {text}"
    try:
        return type(exc)(message)
    except Exception:  # noqa: BLE001 - a type that takes other arguments (botocore's)
        return OSError(f"{message} ({type(exc).__name__})")


def expand_sources(source: Source, *, storage_options: dict[str, Any] | None = None) -> list[Item]:
    """Captures named by a path, a glob, a URL (globs too), a file object, bytes, or a list of
    them; a missing plain path raises FileNotFoundError."""
    single = isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(source, "read")
    items = [source] if single else list(source)  # type: ignore[arg-type]
    found: list[Item] = []
    for item in items:
        if isinstance(item, (bytes, bytearray, memoryview)) or hasattr(item, "read"):
            found.append(_stream(item))
            continue
        text = os.fspath(item)
        if is_url(text):
            remote = _remote(text, storage_options)
            if remote:
                found.extend(remote)
                continue
            text = text.split("://", 1)[1] if "://" in text else text
        if glob.has_magic(text) and not os.path.exists(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no file matches {text!r}")
            found.extend(Path(m) for m in matches)
        else:
            if not os.path.exists(text):
                raise FileNotFoundError(f"{text}: no such file")
            found.append(Path(text))
    return found


def _core_source(item: Item) -> Any:
    """What `_core` takes for a capture: a path, (name, size, open_at) or (name, file)."""
    if isinstance(item, Remote):
        return (item.url, item.size, item.open_at)
    if isinstance(item, Stream):
        return (item.name, item.file)
    return str(item)


def _size(item: Item) -> int:
    if isinstance(item, Remote):
        return item.size
    if isinstance(item, Stream):
        return 0
    return os.path.getsize(item)


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
    flows: bool = True,
    max_flows: int = 1_000_000,
) -> dict[str, float | int]:
    """The decoder options `_core` takes (defaults as `read_pcap`'s), checked: a bad one raises
    ValueError whichever function was given it."""
    for name, value in (("reassembly_timeout_v4", reassembly_timeout_v4), ("reassembly_timeout_v6", reassembly_timeout_v6)):
        if not (0 < value < float("inf")):
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    for name, value, least in (("max_reassembly_bytes", max_reassembly_bytes, 0), ("max_datagrams", max_datagrams, 1),
                               ("max_ext_headers", max_ext_headers, 0), ("max_tunnel_depth", max_tunnel_depth, 0),
                               ("max_record_len", max_record_len, 0), ("max_block_len", max_block_len, 0),
                               ("max_decompression_ratio", max_decompression_ratio, 0), ("max_flows", max_flows, 0)):
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
        "flows": bool(flows),
        "max_flows": max_flows,
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


def _read_files(paths: list[Item], options: dict[str, float | int], progress: bool | None,
                threads: int | None = None) -> list[Any]:
    """All files in one parallel call, or file by file on a thread pool when a bar is shown."""
    bar = progress_bar(sum(_size(p) for p in paths), len(paths), progress) if len(paths) > 1 else None
    if bar is None:
        return _core.read_files([_core_source(p) for p in paths], options, threads=threads)
    results: dict[int, Any] = {}
    one_each = None if threads is None else 1
    with bar, ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        futures = {pool.submit(_core.read_files, [_core_source(p)], options, threads=one_each): i for i, p in enumerate(paths)}
        for future in as_completed(futures):
            at = futures[future]
            results[at] = future.result()[0]
            bar.update(_size(paths[at]))
            bar.set_description(f"{len(results)}/{len(paths)} files")
    return [results[i] for i in range(len(paths))]


def _read_importing_polars(paths: list[Item], options: dict[str, float | int], progress: bool | None,
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
    storage_options: dict[str, Any] | None = None,
    reassembly_timeout_v4: float = 30.0,
    reassembly_timeout_v6: float = 60.0,
    max_reassembly_bytes: int = 32 << 20,
    max_datagrams: int = 65536,
    max_ext_headers: int = 256,
    max_tunnel_depth: int = 8,
    max_record_len: int = 256 * 1024,
    max_block_len: int = 16 << 20,
    max_decompression_ratio: int = 1000,
    flows: bool = True,
    max_flows: int = 1_000_000,
) -> Capture:
    """Read pcap/pcapng captures (plain, gzip or zstd) into a :class:`Capture`.

    ``source``: a path, a glob, a URL that fsspec opens (``s3://bucket/day/*.pcap.gz``, with
    ``storage_options=`` as pandas takes them; ``pip install 'icmpscope[cloud]'``), an open binary
    file object (read from where it stands, 1 MiB at a time), ``bytes`` or a ``memoryview``, or a
    list of them. Object-store captures stream by ranged requests of ``REMOTE_BLOCK_SIZE`` (16 MiB,
    read ahead; ``storage_options={"default_block_size": n}`` changes it), and a big plain one is
    split by byte range as a local file is. Their ``file`` column is the URL; a file object's is
    its ``name`` (``<stdin>`` for ``sys.stdin.buffer``), else ``<stream>``; bytes' is ``<bytes>``.

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

    Flows: ``flows`` (SPEC "Tables") holds one row per direction of each transport conversation
    that is not ICMP (tunnel carriers included, as tshark counts them), and ``icmp``'s
    ``inner_flow_seen`` says whether an error quotes a direction seen before it. At most
    ``max_flows`` directions are held per file: once full, packets of directions not in it are
    left out of ``flows`` (nothing is evicted, so a row covers all of its direction), counted in
    ``stats`` ``max_flows_hits`` and the first one named in ``errors``. ``flows=False`` skips the
    table (empty) and leaves ``inner_flow_seen`` null.

    >>> import icmpscope as ic, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ping.pcap")
    >>> _ = ic.synth.write_pcap(path, [(0, ic.synth.ethernet(ic.synth.ping("10.0.0.1", "10.0.0.2")))])
    >>> cap = ic.read_pcap(path)
    >>> cap.icmp.select("src", "dst", "icmp_type").rows()
    [('10.0.0.1', '10.0.0.2', 8)]
    >>> with open(path, "rb") as f:
    ...     ic.read_pcap(f).icmp.select("file", "dst").rows() == [(path, "10.0.0.2")]
    True
    >>> data = open(path, "rb").read()
    >>> ic.read_pcap(data).icmp.select("file", "icmp_type").rows()
    [('<bytes>', 8)]
    """
    options = _options(reassembly_timeout_v4=reassembly_timeout_v4, reassembly_timeout_v6=reassembly_timeout_v6,
                       max_reassembly_bytes=max_reassembly_bytes, max_datagrams=max_datagrams, max_ext_headers=max_ext_headers,
                       max_tunnel_depth=max_tunnel_depth, max_record_len=max_record_len, max_block_len=max_block_len,
                       max_decompression_ratio=max_decompression_ratio, flows=flows, max_flows=max_flows)
    paths = expand_sources(source, storage_options=storage_options)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads!r}")
    results = _read_importing_polars(paths, options, progress, threads)
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
    storage_options: dict[str, Any] | None = None,
    reassembly_timeout_v4: float = 30.0,
    reassembly_timeout_v6: float = 60.0,
    max_reassembly_bytes: int = 32 << 20,
    max_datagrams: int = 65536,
    max_ext_headers: int = 256,
    max_tunnel_depth: int = 8,
    max_record_len: int = 256 * 1024,
    max_block_len: int = 16 << 20,
    max_decompression_ratio: int = 1000,
    flows: bool = True,
    max_flows: int = 1_000_000,
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
                       max_decompression_ratio=max_decompression_ratio, flows=flows, max_flows=max_flows)
    paths = expand_sources(source, storage_options=storage_options)
    # A file object is read from where it stood at each collect (when it can seek back).
    starts = {i: p.file.tell() for i, p in enumerate(paths) if isinstance(p, Stream) and _seekable(p.file)}
    schema = _schema(table)

    def batches(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        needed = None
        if with_columns is not None:
            extra = predicate.meta.root_names() if predicate is not None else []
            needed = list(dict.fromkeys([*with_columns, *extra]))
        for i, at in starts.items():
            paths[i].file.seek(at)  # type: ignore[union-attr]
        # The flow table is read by `flows`, stats and errors, and by icmp's inner_flow_seen alone:
        # a scan that needs none of them does not build it (~300 MiB over a 4 GB capture).
        tracked = table in ("flows", "stats", "errors") or (table == "icmp" and (needed is None or "inner_flow_seen" in needed))
        scanner = _core.Scanner([_core_source(p) for p in paths], table, {**options, "flows": options["flows"] and tracked},
                                batch_rows=batch_size or batch_rows, columns=needed)
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


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False
