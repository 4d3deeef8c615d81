"""Following captures as they are written: a growing file, or a folder that rotated files land in.

Each poll reads what is new in the files (a file that grew is read again and its rows past the
last frame seen are kept; a new file in the folder is read whole), keeps a trailing window of
ICMP rows (the longest detector window, by capture time, so an episode that spans rotated files
is seen whole), runs ``detect.all`` over it, and yields the alerts not yielded before. An alert
is the one already given while an alert of the same kind, source and destination was seen
within the window before its start (a flood that goes on is not reported again as the window
slides).
"""
from __future__ import annotations

import os
import sys
import time
import types
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl


def _window(thresholds: dict[str, Any]) -> float:
    from icmpscope import detect

    values = {**detect.defaults(), **thresholds}
    return max(float(v) for k, v in values.items() if k.endswith("_window") and isinstance(v, (int, float)))


def _files(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted((p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")),
                      key=lambda p: (p.stat().st_mtime_ns, p.name))
    if source.exists():
        return [source]
    raise FileNotFoundError(f"{source}: no such file or folder (any more)")


def watch(
    source: str | os.PathLike,
    *,
    interval: float = 0.5,
    stop: Callable[[], bool] | None = None,
    **thresholds: Any,
) -> Iterator[pl.DataFrame]:
    """Alerts of a capture still being written (a path) or of a rotation folder (tcpdump
    ``-G``/``-C``, dumpcap ring buffers), as DataFrames of new alerts (``detect.all``'s schema),
    one per poll that found any. Polls every ``interval`` seconds until ``stop()`` is true (then
    a last poll is made); a folder or file that disappears raises ``FileNotFoundError``.

    >>> import icmpscope as ic, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "live.pcap")
    >>> _ = ic.synth.write_pcap(path, ic.synth.scenarios.echo_flood().frames, nanosecond=True)
    >>> polls = iter([False, True])
    >>> [a["kind"].to_list() for a in ic.watch(path, interval=0, stop=lambda: next(polls))]
    [['echo_flood']]
    """
    from icmpscope import detect
    from icmpscope.io import CaptureFormatError, read_pcap

    root = Path(source)
    window = timedelta(seconds=_window(thresholds))
    seen: dict[str, tuple[int, int]] = {}  # file -> (size read, frames taken)
    kept: pl.DataFrame | None = None
    given: dict[tuple[Any, Any, Any], Any] = {}  # (kind, src, dst) -> end of the last alert given
    last = False
    while True:
        last = stop is not None and stop()
        new = []
        for path in _files(root):
            key = str(path)
            size = path.stat().st_size
            if seen.get(key, (-1, 0))[0] == size:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a file still being written ends cut short
                    icmp = read_pcap(path, progress=False).icmp
            except CaptureFormatError:
                if size < 24:  # its header not written yet
                    continue
                raise
            taken = seen.get(key, (0, 0))[1]
            new.append(icmp.filter(pl.col("frame") > taken))
            seen[key] = (size, int(icmp["frame"].max() or taken) if icmp.height else taken)
        if new:
            rows = pl.concat(([kept] if kept is not None else []) + new, how="vertical_relaxed")
            if rows.height:
                rows = rows.sort("ts", maintain_order=True)
                alerts = detect.all(rows, **thresholds)
                fresh = []
                for i, a in enumerate(alerts.iter_rows(named=True)):
                    k = (a["kind"], a["src"], a["dst"])
                    end = given.get(k)
                    if end is None or a["start"] > end + window:
                        fresh.append(i)
                    given[k] = max(end, a["end"]) if end is not None else a["end"]
                if fresh:
                    yield alerts[fresh]
                newest = rows["ts"].max()
                kept = rows.filter(pl.col("ts") >= newest - window)  # type: ignore[operator]
        if last:
            return
        time.sleep(interval)


class _CallableModule(types.ModuleType):
    """Importing ``icmpscope.watch`` sets the package's ``watch`` to this module (the import
    system does so for every submodule), so the module calls through to the function: then
    ``ic.watch(...)`` works whichever of the two it names."""

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[pl.DataFrame]:
        return watch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
