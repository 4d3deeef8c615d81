"""The `icmpscope` command line."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Sequence

EXAMPLES = """examples:
  icmpscope demo                     write the built-in labelled sample, summarise it, list its alerts
"""


def _summary(cap: "object") -> str:
    import polars as pl

    from icmpscope.io import Capture

    assert isinstance(cap, Capture)
    by_type = (
        cap.icmp.group_by("ip_version", "icmp_type", "icmp_code")
        .agg(pl.len().alias("messages"), pl.col("payload_len").sum().alias("payload_bytes"))
        .sort("ip_version", "icmp_type", "icmp_code")
    )
    stats = cap.stats.select("packets", "icmp", "fragment", "other", "undecodable").sum()
    with pl.Config(tbl_rows=50, tbl_hide_dataframe_shape=True):
        return f"{stats}\n{by_type}"


def _alerts(alerts: "object") -> str:
    import polars as pl

    assert isinstance(alerts, pl.DataFrame)
    if alerts.is_empty():
        return "no alerts"
    lines = [f"{alerts.height} alert(s):"]
    for a in alerts.iter_rows(named=True):
        lines.append(f"  {a['start']:%H:%M:%S} {a['kind']} {a['src'] or '*'} -> {a['dst'] or '*'} "
                     f"[{a['technique']}] {a['packets']} packets, frames {a['frames'][:5]}...")
        lines.append(f"    {a['detail']}")
    return "\n".join(lines)


def _demo(_: argparse.Namespace) -> int:
    import icmpscope as ic

    with tempfile.TemporaryDirectory() as tmp:
        path = ic.synth.write_demo(os.path.join(tmp, "demo.pcap"))
        cap = ic.read_pcap(path)
        print(f"icmpscope demo: {path.rsplit(os.sep, 1)[-1]}, {cap.stats['packets'].sum()} packets")
        print(_summary(cap))
        print(_alerts(ic.detect.all(cap)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="icmpscope",
        description="ICMP security analytics over pcap/pcapng captures.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="write the built-in labelled sample and analyse it")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
