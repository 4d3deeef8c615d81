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


def top_talkers(icmp: pl.DataFrame) -> pl.DataFrame:
    """The ten sources of the most ICMP messages, with how many addresses each sent to."""
    return (
        icmp.group_by(pl.col("src").cast(pl.String))
        .agg(pl.len().cast(pl.UInt64).alias("packets"), pl.col("dst").n_unique().alias("destinations"))
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
        return cls(alerts, summary, capture.stats, capture.errors, timeline, top_talkers(icmp))

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
        """ICMP packets/s over time by type, with alert spans shaded (needs matplotlib)."""
        import matplotlib.pyplot as plt

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

    def write(self, directory: str | Path, format: Literal["parquet", "json"] = "parquet") -> Path:
        """Write every table of the report into ``directory`` (created if needed)."""
        if format not in ("parquet", "json"):
            raise ValueError(f"format must be 'parquet' or 'json', not {format!r}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("alerts", "summary", "stats", "errors", "timeline", "talkers"):
            frame: pl.DataFrame = getattr(self, name)
            if format == "parquet":
                frame.write_parquet(out / f"{name}.parquet")
            else:
                (out / f"{name}.json").write_text(json.dumps(records(frame), default=str, indent=1))
        return out


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
