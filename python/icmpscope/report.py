"""The Report of an analysis: alerts with evidence, summaries, accounting; for notebooks and files."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from icmpscope.io import Capture

_TYPE_KEYS = ["file", "ip_version", "icmp_type", "icmp_code"]


def talker_pairs(icmp: pl.DataFrame) -> pl.DataFrame:
    """ICMP messages per source and destination: what :func:`top_talkers` needs of a part."""
    return icmp.group_by(pl.col("src").cast(pl.String), pl.col("dst").cast(pl.String)).agg(
        pl.len().cast(pl.UInt64).alias("packets"))


def top_talkers(pairs: pl.DataFrame) -> pl.DataFrame:
    """The ten sources of the most ICMP messages, with how many addresses each sent to, from
    :func:`talker_pairs` (of a capture, or of its parts put together)."""
    return (
        pairs.group_by("src")
        .agg(pl.col("packets").sum(), pl.col("dst").n_unique().alias("destinations"))
        .sort("packets", "src", descending=[True, False])
        .head(10)
    )


@dataclass(frozen=True)
class Report:
    """Alerts, per-file/per-type summary, stats, errors, ICMP time line and top talkers."""

    alerts: pl.DataFrame
    summary: pl.DataFrame
    stats: pl.DataFrame
    errors: pl.DataFrame
    timeline: pl.DataFrame
    talkers: pl.DataFrame

    @classmethod
    def from_capture(cls, capture: Capture, alerts: pl.DataFrame) -> Report:
        icmp = capture.icmp
        summary = (
            icmp.group_by(_TYPE_KEYS)
            .agg(
                pl.len().cast(pl.UInt64).alias("packets"),
                pl.col("datagram_len").cast(pl.UInt64).sum().alias("bytes"),
                pl.col("ts").min().alias("first_ts"),
                pl.col("ts").max().alias("last_ts"),
            )
            .sort(_TYPE_KEYS)
        )
        timeline = (
            icmp.group_by(pl.col("ts").dt.truncate("1s"), "ip_version", "icmp_type")
            .agg(pl.len().cast(pl.UInt64).alias("packets"))
            .sort("ts", "ip_version", "icmp_type")
        )
        return cls(alerts, summary, capture.stats, capture.errors, timeline, top_talkers(talker_pairs(icmp)))

    def _repr_html_(self) -> str:
        totals = self.stats.select("packets", "icmp", "fragment", "other", "undecodable").sum()
        head = (
            f"<b>icmpscope report</b>: {self.stats.height} file(s), {totals['packets'].item()} packets "
            f"({totals['icmp'].item()} ICMP, {totals['undecodable'].item()} undecodable), "
            f"{self.alerts.height} alert(s), {self.errors.height} error row(s)"
        )
        alerts = self.alerts.select(
            [c for c in ("kind", "technique", "start", "src", "dst", "packets", "detail") if c in self.alerts.columns]
        )
        return (
            f"<div>{head}"
            f"<h4>Alerts</h4>{_html_table(alerts)}"
            f"<h4>Top talkers</h4>{_html_table(self.talkers)}</div>"
        )

    def plot(self) -> Any:
        """ICMP packets/s over time by type, with alert spans shaded (needs matplotlib:
        ``pip install 'icmpscope[plot]'``)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(f"Report.plot needs matplotlib: pip install 'icmpscope[plot]' ({exc})") from None

        fig, ax = plt.subplots(figsize=(10, 4))
        series = self.timeline.with_columns(
            (pl.col("ip_version").cast(pl.String) + pl.lit("/") + pl.col("icmp_type").cast(pl.String)).alias("type")
        )
        for (name,), part in series.group_by("type", maintain_order=True):
            ax.plot(part["ts"].to_list(), part["packets"].to_list(), label=f"ICMPv{name}", drawstyle="steps-post")
        for start, end in self.alerts.select("start", "end").iter_rows():
            ax.axvspan(start, end, color="red", alpha=0.15)
        ax.set_xlabel("capture time (UTC)")
        ax.set_ylabel("packets/s")
        ax.set_title("ICMP by version/type; alert spans shaded")
        if self.timeline.height:
            ax.legend(loc="upper right", fontsize="small")
        return fig

    def write(self, directory: str | Path, format: Literal["parquet", "json", "jsonl"] = "parquet") -> Path:
        """Write every table of the report into ``directory`` (created if needed).

        ``jsonl``: one JSON object a line; ``alerts.jsonl`` in Elastic Common Schema fields
        (:func:`ecs_alerts`), the other tables row by row with their own column names.
        """
        if format not in ("parquet", "json", "jsonl"):
            raise ValueError(f"format must be 'parquet', 'json' or 'jsonl', not {format!r}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("alerts", "summary", "stats", "errors", "timeline", "talkers"):
            frame: pl.DataFrame = getattr(self, name)
            if format == "parquet":
                frame.write_parquet(out / f"{name}.parquet")
            elif format == "json":
                (out / f"{name}.json").write_text(json.dumps(records(frame), default=str, indent=1))
            else:
                rows = ecs_alerts(frame) if name == "alerts" else records(frame)
                (out / f"{name}.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
        return out


def _iso(column: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.9fZ")


def ecs_alerts(alerts: pl.DataFrame) -> list[dict[str, Any]]:
    """Alerts as Elastic Common Schema documents (SPEC "Command line"), nested as ECS JSON is
    (``event.kind`` is ``{"event": {"kind": ...}}``): ``@timestamp`` and ``event.start`` are the
    alert's start, ``event.end`` its end (ISO 8601, UTC, ns); ``network.transport`` is ``icmp``
    or ``ipv6-icmp`` (IANA names, told by the addresses); frames, files and the packet count are
    under ``icmpscope``; a null address leaves its field out.

    >>> import icmpscope as ic, polars as pl
    >>> cap = ic.read_pcap(ic.synth.write_demo(ic.synth.scenarios.temp_path("ecs.pcap")))
    >>> doc = ecs_alerts(ic.detect.all(cap))[0]
    >>> doc["event"], doc["source"], doc["threat"]["technique"], doc["network"]
    ({'kind': 'alert', 'action': 'sweep', 'start': '2023-11-14T22:13:26.010000000Z', 'end': '2023-11-14T22:13:27.000000000Z'}, {'ip': '203.0.113.66'}, {'id': 'T1018'}, {'transport': 'icmp'})
    """
    if alerts.is_empty():
        return []
    rows = alerts.with_columns(_iso("start").alias("_start"), _iso("end").alias("_end"),
                               pl.col(pl.Categorical).cast(pl.String)).to_dicts()
    docs = []
    for a in rows:
        v6 = ":" in (a.get("src") or "") or ":" in (a.get("dst") or "")
        doc: dict[str, Any] = {
            "@timestamp": a["_start"],
            "event": {"kind": "alert", "action": a["kind"], "start": a["_start"], "end": a["_end"]},
        }
        if a.get("src") is not None:
            doc["source"] = {"ip": a["src"]}
        if a.get("dst") is not None:
            doc["destination"] = {"ip": a["dst"]}
        doc["network"] = {"transport": "ipv6-icmp" if v6 else "icmp"}
        doc["threat"] = {"framework": "MITRE ATT&CK", "technique": {"id": a.get("technique")}}
        doc["message"] = a["detail"]
        ours: dict[str, Any] = {"packets": a["packets"], "frames": a.get("frames") or []}
        if a.get("files") is not None:
            ours["files"] = a["files"]
        doc["icmpscope"] = ours
        docs.append(doc)
    return docs


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts for JSON, Categorical text as plain strings."""
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String)).to_dicts()


def _html_table(frame: pl.DataFrame, rows: int = 20) -> str:
    header = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in frame.head(rows).iter_rows()
    )
    more = f"<p>… {frame.height - rows} more</p>" if frame.height > rows else ""
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>{more}"
