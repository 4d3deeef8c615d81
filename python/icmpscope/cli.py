"""The `icmpscope` command line: analyze, convert, demo."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Sequence

EXAMPLES = """examples:
  icmpscope demo                                  write the built-in labelled sample and analyse it
  icmpscope analyze capture.pcapng                summary and alerts as tables
  icmpscope analyze 'archive/*.pcap.gz' --workers 2 --format json --out results/
  icmpscope analyze archive/ --scheduler tcp://scheduler:8786 --format parquet --out results/
  icmpscope convert capture.pcap --out tables/    every table to Parquet, one folder per capture
  tcpdump -w - icmp | icmpscope analyze - --format jsonl    alerts as ECS JSON lines from a pipe
  icmpscope analyze 's3://bucket/day/*.pcap.gz'    objects in a store (pip install 'icmpscope[cloud]')
"""

STDIN = "-"


class BadInput(Exception):
    """Input the command cannot work on: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit status 2, like bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


@dataclass
class _Captures:
    """The files to read: named by paths and globs, or met while searching folders."""

    # file -> where `convert` writes its tables: a named file by its name, a file met in a folder
    # by that folder's name and its path inside it (two folders' `a.pcap` stay apart). In the
    # order the files were given.
    out_names: dict[str, str]
    in_folders: set[str]

    @property
    def files(self) -> list[str]:
        return list(self.out_names)

    def skipped(self, failures: dict[str, str]) -> None:
        """Says which files could not be read at all (`failures`: file -> why), in one line.
        One the user named fails the run; files met in folders (licences, notes) only warn."""
        if not failures:
            return
        first = next(iter(failures.values()))
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        line = f"skipped {len(failures)} of {len(self.out_names)} file(s): {first}{more}"
        if failures.keys() - self.in_folders:
            raise BadInput(line)
        print(f"icmpscope: {line}; all met in folders", file=sys.stderr)


def _captures(paths: Sequence[str]) -> _Captures:
    """Files named by paths, globs and folders (searched recursively), each once."""
    from icmpscope.io import expand_sources

    found = _Captures({}, set())

    def add(path: str, out_name: str, in_folder: bool) -> None:
        if path not in found.out_names:
            found.out_names[path] = out_name
            if in_folder:
                found.in_folders.add(path)
        elif not in_folder:  # named as well as met in a folder: it counts as named
            found.in_folders.discard(path)

    from icmpscope.io import is_url

    for text in paths:
        if text == STDIN:
            add(STDIN, "stdin", False)
            continue
        if is_url(text):
            try:
                named = [str(p) for p in expand_sources(text)]
            except (OSError, ImportError) as exc:
                raise BadInput(str(exc)) from None
            for p in named:
                add(p, p.rstrip("/").rsplit("/", 1)[-1], False)
            continue
        if os.path.isdir(text):
            inside = sorted(p for p in Path(text).rglob("*") if p.is_file())
            if not inside:
                raise BadInput(f"{text}: folder holds no file")
            root = Path(text).resolve().name
            for p in inside:
                add(str(p), str(Path(root, p.relative_to(text))), True)
            continue
        try:
            named = list(expand_sources(text))
        except FileNotFoundError as exc:
            raise BadInput(str(exc).strip("'\"")) from None
        for p in named:
            add(str(p), Path(p).name, False)
    return found


def _executor(args: argparse.Namespace) -> Any:
    if args.scheduler:
        from distributed import Client

        return Client(args.scheduler).get_executor()
    if args.workers:
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(max_workers=args.workers)
    return None


def _print_tables(report: Any) -> None:
    import polars as pl

    with pl.Config(tbl_rows=40, tbl_cols=12, fmt_str_lengths=60, tbl_hide_dataframe_shape=True):
        totals = report.stats.select("packets", "icmp", "fragment", "other", "undecodable").sum()
        print(totals)
        print(report.summary.group_by("ip_version", "icmp_type", "icmp_code").agg(pl.col("packets").sum()).sort("ip_version", "icmp_type", "icmp_code"))
        print(_alerts(report.alerts))
        if report.errors.height:
            print(f"{report.errors.height} error row(s); first: {report.errors.row(0, named=True)['reason']}")


def _analyze(args: argparse.Namespace) -> int:
    import icmpscope as ic
    from icmpscope.report import records

    if args.format == "parquet" and not args.out:
        raise BadInput("--format parquet needs --out DIR")
    captures = _captures(args.paths)
    sources = [sys.stdin.buffer if f == STDIN else f for f in captures.files]
    report = ic.analyze(sources, executor=_executor(args), progress=None if args.progress else False)
    if report.stats.is_empty():
        raise BadInput(report.errors.row(0, named=True)["reason"] if report.errors.height else "no capture was read")
    try:
        if args.format == "table":
            _print_tables(report)
            if args.out:
                report.write(args.out, "parquet")
        elif args.out:
            report.write(args.out, args.format)
        elif args.format == "jsonl":
            from icmpscope.report import ecs_alerts

            for doc in ecs_alerts(report.alerts):
                print(json.dumps(doc, default=str), flush=True)
        else:
            print(json.dumps({name: records(getattr(report, name)) for name in ("alerts", "summary", "stats", "errors")},
                             default=str, indent=1))
    except OSError as exc:
        raise BadInput(f"cannot write {args.out}: {exc.strerror or exc}") from None
    # The readable captures are reported above; the others make the run a failure.
    failed = report.errors.filter(report.errors["kind"] == "file")
    stdin_name = {"<stdin>": STDIN}
    captures.skipped({stdin_name.get(f, f): r for f, r in zip(failed["file"].to_list(), failed["reason"].to_list())})
    return 0


def _alerts(alerts: Any) -> str:
    if alerts.is_empty():
        return "no alerts"
    lines = [f"{alerts.height} alert(s):"]
    for a in alerts.iter_rows(named=True):
        lines.append(f"  {a['start']:%H:%M:%S} {a['kind']} {a['src'] or '*'} -> {a['dst'] or '*'} "
                     f"[{a['technique']}] {a['packets']} packets, frames {a['frames'][:5]}...")
        lines.append(f"    {a['detail']}")
    return "\n".join(lines)


def _convert(args: argparse.Namespace) -> int:
    import warnings

    import icmpscope as ic
    from icmpscope.io import TABLES

    out = Path(args.out)
    captures = _captures(args.paths)
    taken: dict[str, str] = {}
    for path, name in captures.out_names.items():
        clash = taken.setdefault(name, path)
        if clash != path:
            raise BadInput(f"{clash} and {path} would both be converted into {out / name}")
    failures: dict[str, str] = {}
    for path, name in captures.out_names.items():
        folder = out / name
        written: list[Path] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
                if path == STDIN:  # read once: its tables from one read
                    cap = ic.read_pcap(sys.stdin.buffer, progress=False)
                    for table in TABLES:
                        written.append(folder / f"{table}.parquet")
                        getattr(cap, table).write_parquet(written[-1])
                else:
                    for table in TABLES:
                        written.append(folder / f"{table}.parquet")
                        ic.scan_pcap(path, table).sink_parquet(written[-1])
        except (ValueError, OSError) as exc:
            # No half-converted capture is left behind to be taken for a whole one.
            for part in written:
                part.unlink(missing_ok=True)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
            failures[path] = str(exc)
            continue
        print(folder)
    captures.skipped(failures)
    return 0


def _watch(args: argparse.Namespace) -> int:
    import signal
    import threading

    from icmpscope.report import ecs_alerts
    from icmpscope.watch import watch

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with tempfile.TemporaryDirectory() as tmp:
        target = args.path
        if target == STDIN:  # standard input is copied to a file that is followed as it grows
            target = os.path.join(tmp, "stdin.pcap")
            done = threading.Event()

            def copy() -> None:
                with open(target, "wb") as out:
                    while chunk := sys.stdin.buffer.read1(1 << 20):
                        out.write(chunk)
                        out.flush()
                done.set()

            open(target, "wb").close()
            threading.Thread(target=copy, daemon=True).start()
            stop = lambda: stopping.is_set() or done.is_set()  # noqa: E731
        else:
            if not os.path.exists(target):
                raise BadInput(f"{target}: no such file or folder")
            stop = stopping.is_set
        try:
            for alerts in watch(target, interval=args.interval, stop=stop):
                for doc in ecs_alerts(alerts):
                    print(json.dumps(doc, default=str), flush=True)
        except FileNotFoundError as exc:
            raise BadInput(str(exc)) from None
        except ValueError as exc:  # a file that is no capture
            raise BadInput(str(exc).splitlines()[0]) from None
    sys.stdout.flush()
    return 0


def _demo(args: argparse.Namespace) -> int:
    import icmpscope as ic

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = ic.synth.write_demo(args.out or os.path.join(tmp, "demo.pcap"))
        except OSError as exc:
            raise BadInput(f"cannot write {args.out}: {exc.strerror or exc}") from None
        report = ic.analyze([path], progress=False)
        kept = f", kept in {path}" if args.out else ""
        print(f"icmpscope demo: the built-in labelled sample, {report.stats['packets'].sum()} packets{kept}")
        _print_tables(report)
    return 0


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="icmpscope",
        description="ICMP security analytics over pcap/pcapng captures (plain, gzip or zstd).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser("analyze", help="summary and alerts over captures", epilog=EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    analyze.add_argument("paths", nargs="+", metavar="PATH",
                         help="capture files, globs, folders, URLs (s3://…), or - for standard input")
    analyze.add_argument("--out", metavar="DIR", help="write the report's tables into DIR")
    analyze.add_argument("--format", choices=["table", "json", "parquet", "jsonl"], default="table",
                         help="jsonl: one alert a line in Elastic Common Schema fields")
    analyze.add_argument("--workers", type=_at_least_one, metavar="N", help="read N files at a time (threads)")
    analyze.add_argument("--scheduler", metavar="ADDRESS", help="run per-file work on this Dask scheduler")
    analyze.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    analyze.set_defaults(run=_analyze)
    convert = commands.add_parser("convert", help="every table of each capture to Parquet")
    convert.add_argument("paths", nargs="+", metavar="PATH", help="as for analyze; - reads standard input")
    convert.add_argument("--out", metavar="DIR", required=True)
    convert.set_defaults(run=_convert)
    follow = commands.add_parser("watch", help="follow a capture being written, or a rotation folder; alerts as JSON lines")
    follow.add_argument("path", metavar="PATH|DIR|-", help="a growing capture, a folder rotated captures land in, or -")
    follow.add_argument("--interval", type=float, default=0.5, metavar="SECONDS", help="how often to look for new packets")
    follow.set_defaults(run=_watch)
    demo = commands.add_parser("demo", help="write the built-in labelled sample and analyse it")
    demo.add_argument("--out", metavar="FILE", help="write the sample capture there and keep it")
    demo.set_defaults(run=_demo)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BadInput as exc:
        print(f"icmpscope: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
