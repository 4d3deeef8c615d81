"""Many captures at once: per-file partial results on any executor, merged into one Report.

Each file is read where the executor runs it (threads, processes, a Dask cluster); what comes
back is that file's ICMP messages, fragment datagrams, stats, errors and a per-type summary. The
merge concatenates them in time order and runs the detectors once over the whole, so a flood or a
sweep that spans rotated files is found exactly as if the files were one capture.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from icmpscope import _core
from icmpscope.io import TABLES, Capture, Remote, Source, Stream, expand_sources, is_url, progress_bar, read_pcap
from icmpscope.report import Report


@dataclass(frozen=True)
class FilePart:
    """What one file contributes: its tables (or the failure that stopped it)."""

    path: str
    size: int
    capture: Capture | None
    failure: str | None = None


def read_part(path: Any, storage_options: dict[str, Any] | None = None, name: str | None = None) -> FilePart:
    """Per-file work (a module-level function, so process pools and Dask can ship it): ``path`` is
    a path or URL (read where this runs), or a file object or bytes named ``name``."""
    name = name or str(path)
    size = os.path.getsize(path) if isinstance(path, str) and os.path.exists(path) else 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut-short file is reported in its stats and errors
            return FilePart(name, size, read_pcap(path, storage_options=storage_options))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row of Report.errors
        return FilePart(name, size, None, f"{type(exc).__name__}: {exc}")


def failure_rows(failed: list[tuple[str, str]]) -> pl.DataFrame:
    """``errors`` rows of files that could not be read: (path, failure) pairs."""
    return pl.DataFrame(
        {
            "file": [path for path, _ in failed],
            "frame": [None] * len(failed),
            "offset": [0] * len(failed),
            "kind": ["file"] * len(failed),
            "reason": [failure for _, failure in failed],
        },
        schema={"file": pl.String, "frame": pl.UInt64, "offset": pl.UInt64, "kind": pl.String, "reason": pl.String},
    )


def merge(parts: list[FilePart], **thresholds: Any) -> Report:
    """One Report from per-file parts, as if the captures were read as one."""
    from icmpscope import detect

    read = [p.capture for p in parts if p.capture is not None]
    if read:
        tables = {name: pl.concat([getattr(c, name) for c in read], how="vertical") for name in TABLES}
        tables["icmp"] = tables["icmp"].sort("ts", maintain_order=True)
    else:  # no file could be read: empty tables of the right schema
        tables = {name: pl.DataFrame(_core.empty_table(name)) for name in TABLES}
    tables["errors"] = pl.concat([tables["errors"], failure_rows([(p.path, p.failure) for p in parts if p.failure is not None])], how="vertical")
    capture = Capture(**tables, files=tuple(p.path for p in parts))
    alerts = detect.all(capture, **thresholds)
    return Report.from_capture(capture, alerts)


def analyze(
    sources: Source,
    *,
    executor: cf.Executor | None = None,
    progress: bool | None = None,
    storage_options: dict[str, Any] | None = None,
    **thresholds: Any,
) -> Report:
    """Alerts and summaries over many captures (SPEC "Batch and scale").

    Per-file work runs on ``executor`` (any ``concurrent.futures.Executor``: a thread or process
    pool); by default a thread pool with one thread per core (the reader releases the GIL). With
    a ``distributed.Client`` the cluster reads, detects and merges, and only the report's tables
    come back (see :mod:`icmpscope.distributed`). Files that fail are listed
    in ``Report.errors`` and never stop the batch. ``thresholds`` go to ``detect.all``.

    ``sources`` are what ``read_pcap`` takes. URLs (globs expanded here, through fsspec with
    ``storage_options``) are read where the per-file work runs, so on a Dask cluster the workers
    read the objects; file objects are read on this machine's threads (they cannot travel).

    >>> import icmpscope as ic, tempfile, os
    >>> path = ic.synth.write_demo(os.path.join(tempfile.mkdtemp(), "demo.pcap"))
    >>> report = ic.analyze([path], progress=False)
    >>> int(report.stats["packets"].sum()) > 0
    True
    """
    items = list(_expand_keep_missing(sources, storage_options))
    paths = [str(p) for p in items]
    sizes = {str(p): _size(p) for p in items}
    bar = progress_bar(sum(sizes.values()), len(paths), progress)
    if _is_dask_client(executor):
        if not any(isinstance(p, Stream) for p in items):
            from icmpscope.distributed import analyze_on_cluster

            try:
                return analyze_on_cluster(executor, paths, thresholds, sizes, bar, storage_options)
            finally:
                if bar is not None:
                    bar.close()
        executor = executor.get_executor()  # type: ignore[union-attr] # file objects cannot travel
    own = executor is None
    pool = executor or cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    local = cf.ThreadPoolExecutor(max_workers=1) if any(isinstance(p, Stream) for p in items) else None
    try:
        futures = {}
        for item in items:
            if isinstance(item, Stream):
                futures[local.submit(read_part, item.file, None, item.name)] = item.name  # type: ignore[union-attr]
            else:
                futures[pool.submit(read_part, str(item), storage_options if is_url(str(item)) else None)] = str(item)
        done: dict[str, FilePart] = {}
        for future in cf.as_completed(futures):
            part = future.result()
            done[futures[future]] = part
            if bar is not None:
                bar.update(sizes[part.path])
                bar.set_description(f"{len(done)}/{len(paths)} files")
    finally:
        if own:
            pool.shutdown()
        if local is not None:
            local.shutdown()
        if bar is not None:
            bar.close()
    return merge([done[p] for p in paths], **thresholds)


def _is_dask_client(executor: object) -> bool:
    return type(executor).__name__ == "Client" and type(executor).__module__.startswith("distributed")


def _size(item: Path | Remote | Stream | str) -> int:
    if isinstance(item, Remote):
        return item.size
    return os.path.getsize(item) if isinstance(item, Path) and item.exists() else 0


def _expand_keep_missing(sources: Source, storage_options: dict[str, Any] | None) -> Iterable[Path | Remote | Stream]:
    """Like `expand_sources`, but a missing path stays in the batch (it becomes an error row)."""
    single = isinstance(sources, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(sources, "read")
    items = [sources] if single else list(sources)  # type: ignore[arg-type]
    for item in items:
        try:
            yield from expand_sources(item, storage_options=storage_options)
        except OSError:
            if not isinstance(item, (str, os.PathLike)):
                raise
            text = os.fspath(item)
            # Unreachable, denied or missing: read_part fails again and its row says why.
            yield text if is_url(text) else Path(text)  # type: ignore[misc]

