"""The command line on standard input and with JSON-lines (ECS) alerts, in subprocesses."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope import synth

CLI = f"{shlex.quote(sys.executable)} -m icmpscope.cli"


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-sources") / "flood.pcap.gz"
    return synth.write_pcap(path, synth.scenarios.echo_flood().frames, nanosecond=True, compress="gzip")


def shell(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=300)


def test_a_pipe_from_another_process_is_analyzed(flood: Path) -> None:
    out = shell(f"cat {shlex.quote(str(flood))} | {CLI} analyze - --format json")
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    doc = json.loads(out.stdout)
    assert [(s["file"], s["packets"], s["compression"]) for s in doc["stats"]] == [("<stdin>", 620, "gzip")]
    assert [a["kind"] for a in doc["alerts"]] == ["echo_flood"]


def test_jsonl_alerts_are_ecs_documents(flood: Path, tmp_path: Path) -> None:
    out = shell(f"cat {shlex.quote(str(flood))} | {CLI} analyze - --format jsonl")
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    lines = out.stdout.splitlines()
    alerts = ic.detect.all(ic.read_pcap(flood))
    assert len(lines) == alerts.height == 1
    doc = json.loads(lines[0])
    a = alerts.row(0, named=True)
    assert doc["@timestamp"] == doc["event"]["start"] == a["start"].strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    assert doc["event"] == {"kind": "alert", "action": "echo_flood", "start": doc["@timestamp"],
                            "end": a["end"].strftime("%Y-%m-%dT%H:%M:%S.%f000Z")}
    assert doc["source"] == {"ip": "203.0.113.7"} and doc["destination"] == {"ip": "192.0.2.80"}
    assert doc["network"] == {"transport": "icmp"}
    assert doc["threat"] == {"framework": "MITRE ATT&CK", "technique": {"id": "T1498.001"}}
    assert doc["message"] == a["detail"]
    assert doc["icmpscope"]["packets"] == a["packets"] and doc["icmpscope"]["frames"] == a["frames"]
    assert set(doc) == {"@timestamp", "event", "source", "destination", "network", "threat", "message", "icmpscope"}
    # Report.write does the same into alerts.jsonl.
    report = ic.analyze([flood], progress=False)
    report.write(tmp_path / "r", "jsonl")
    assert [json.loads(line) for line in (tmp_path / "r" / "alerts.jsonl").read_text().splitlines()] == [
        {**doc, "icmpscope": {**doc["icmpscope"], **({"files": a["files"]} if "files" in a else {})}}
    ]
    assert json.loads((tmp_path / "r" / "stats.jsonl").read_text().splitlines()[0])["packets"] == 620


def test_a_non_capture_on_stdin_is_one_line_and_exit_2() -> None:
    out = shell(f"echo 'no capture here' | {CLI} analyze -")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "CaptureFormatError" in out.stderr and "<stdin>" in out.stderr, out.stderr


def test_convert_reads_stdin(flood: Path, tmp_path: Path) -> None:
    out = shell(f"cat {shlex.quote(str(flood))} | {CLI} convert - --out {shlex.quote(str(tmp_path))}")
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    assert pl.read_parquet(tmp_path / "stdin" / "icmp.parquet").height == 620
    assert pl.read_parquet(tmp_path / "stdin" / "stats.parquet")["file"].to_list() == ["<stdin>"]


def test_plot_without_matplotlib_names_the_extra(flood: Path) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.pyplot'] = None\n"
            "import icmpscope as ic\n"
            f"r = ic.analyze([{str(flood)!r}], progress=False)\n"
            "try:\n    r.plot()\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install 'icmpscope[plot]'" in out.stdout, out.stderr


def test_capture_has_an_html_view(flood: Path) -> None:
    view = ic.read_pcap(flood)._repr_html_()
    assert view.startswith("<div><b>icmpscope capture</b>: 1 file(s), 620 packets (620 ICMP")
    assert "<h4>Files</h4>" in view and "203.0.113.7" in view
