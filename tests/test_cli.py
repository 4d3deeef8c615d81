"""The command line, through a subprocess as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from icmpscope import synth as s


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "icmpscope.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return s.write_demo(str(tmp_path_factory.mktemp("cli") / "demo.pcap"))


def test_help_has_examples() -> None:
    out = run("--help")
    assert out.returncode == 0 and "examples:" in out.stdout and "icmpscope analyze" in out.stdout


def test_demo() -> None:
    out = run("demo")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "icmpscope demo" in out.stdout and "alert(s)" in out.stdout


def test_demo_keeps_its_sample_when_asked(tmp_path: Path) -> None:
    out = run("demo", "--out", str(tmp_path / "sample.pcap"))
    assert (out.returncode, out.stderr) == (0, "") and f"kept in {tmp_path / 'sample.pcap'}" in out.stdout
    assert (tmp_path / "sample.pcap").read_bytes() == s.pcap_bytes(s.demo_frames(), nanosecond=True)


def test_analyze_table_and_json(capture: Path, tmp_path: Path) -> None:
    out = run("analyze", str(capture))
    assert (out.returncode, out.stderr) == (0, "")
    assert "packets" in out.stdout
    out = run("analyze", str(capture), "--format", "json")
    assert out.returncode == 0
    doc = json.loads(out.stdout)
    assert doc["stats"][0]["packets"] == len(s.demo_frames())
    assert {a["kind"] for a in doc["alerts"]} == {"sweep", "mask_reply", "ping_of_death", "icmp_tunnel"}
    assert set(doc) == {"alerts", "summary", "stats", "errors"}


def test_analyze_parquet_out_with_workers(capture: Path, tmp_path: Path) -> None:
    out = run("analyze", str(capture), "--format", "parquet", "--out", str(tmp_path / "r"), "--workers", "2")
    assert (out.returncode, out.stderr) == (0, "")
    assert pl.read_parquet(tmp_path / "r" / "stats.parquet")["packets"].item() > 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["/nonexistent/x.pcap"], "no such file"),
        (["/nonexistent/*.pcap"], "no file matches"),
        (["--format", "parquet", "{cap}"], "--format parquet needs --out DIR"),
        (["{empty}"], "folder holds no file"),
        (["{text}"], "not a pcap or pcapng capture"),
    ],
)
def test_bad_input_exits_2_with_one_line(capture: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    fill = {"cap": str(capture), "empty": str(tmp_path / "empty"), "text": str(tmp_path / "notes.txt")}
    out = run("analyze", *[a.format(**fill) for a in args])
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr and out.stdout == ""


def test_convert(capture: Path, tmp_path: Path) -> None:
    out = run("convert", str(capture), "--out", str(tmp_path / "t"))
    assert (out.returncode, out.stderr) == (0, "")
    folder = tmp_path / "t" / "demo.pcap"
    assert {p.name for p in folder.iterdir()} == {f"{t}.parquet" for t in ("icmp", "fragments", "datagrams", "flows", "stats", "errors")}
    assert pl.read_parquet(folder / "icmp.parquet").height == pl.read_parquet(folder / "stats.parquet")["icmp"].item()
    assert run("convert", "/nonexistent.pcap", "--out", str(tmp_path / "t")).returncode == 2


@pytest.mark.parametrize("args", [["analyze", "--bogus", "{cap}"], [], ["analyze", "{cap}", "--format", "xml"],
                                  ["analyze", "{cap}", "--workers", "0"], ["analyze", "{cap}", "--workers", "-1"]])
def test_usage_errors_exit_2_with_one_line(capture: Path, args: list[str]) -> None:
    out = run(*[a.format(cap=capture) for a in args])
    assert (out.returncode, out.stdout, out.stderr.count("\n")) == (2, "", 1), out.stderr
    assert out.stderr.startswith("icmpscope") and "--help" in out.stderr


def test_unwritable_out_exits_2_with_one_line(capture: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    out = run("analyze", str(capture), "--format", "json", "--out", str(tmp_path / "taken"))
    assert (out.returncode, out.stderr.count("\n")) == (2, 1) and "cannot write" in out.stderr


def test_unreadable_files_are_skipped_named_and_fail_the_run(capture: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.pcap").write_text("hello")
    out = run("analyze", str(capture), str(tmp_path / "notes.pcap"), "--format", "json")
    assert (out.returncode, out.stderr.count("\n")) == (2, 1)
    assert "skipped 1 of 2 file(s)" in out.stderr and "notes.pcap: not a pcap or pcapng capture" in out.stderr
    doc = json.loads(out.stdout)
    assert [row["file"] for row in doc["stats"]] == [str(capture)]
    assert [(row["file"], row["kind"]) for row in doc["errors"] if row["kind"] == "file"] == [(str(tmp_path / "notes.pcap"), "file")]


def test_convert_keeps_going_and_leaves_nothing_half_written(capture: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.pcap").write_text("hello")
    out = run("convert", str(tmp_path / "notes.pcap"), str(capture), "--out", str(tmp_path / "t"))
    assert (out.returncode, out.stderr.count("\n")) == (2, 1) and "skipped 1 of 2 file(s)" in out.stderr
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["demo.pcap"]
    assert pl.read_parquet(tmp_path / "t" / "demo.pcap" / "stats.parquet")["file"].to_list() == [str(capture)]


def test_convert_refuses_two_captures_of_one_name(capture: Path, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    twin = s.write_demo(str(tmp_path / "other" / "demo.pcap"))
    out = run("convert", str(capture), str(twin), "--out", str(tmp_path / "t"))
    assert (out.returncode, out.stderr.count("\n")) == (2, 1) and "would both be converted into" in out.stderr
    assert not (tmp_path / "t").exists()


def test_files_met_in_folders_that_are_not_captures_only_warn(capture: Path, tmp_path: Path) -> None:
    """A folder of captures also holds licences and notes: they are skipped and named, the run succeeds;
    `convert` mirrors the folders, so two folders' captures of one name stay apart."""
    for sub in ("a", "b"):
        (tmp_path / "archive" / sub).mkdir(parents=True)
        (tmp_path / "archive" / sub / "demo.pcap").write_bytes(Path(capture).read_bytes())
        (tmp_path / "archive" / sub / "LICENSE").write_text("not a capture")
    out = run("analyze", str(tmp_path / "archive"), "--format", "json")
    assert (out.returncode, out.stderr.count("\n")) == (0, 1), out.stderr
    assert "skipped 2 of 4 file(s)" in out.stderr and "all met in folders" in out.stderr
    assert len(json.loads(out.stdout)["stats"]) == 2
    out = run("convert", str(tmp_path / "archive"), "--out", str(tmp_path / "t"))
    assert (out.returncode, out.stderr.count("\n")) == (0, 1), out.stderr
    converted = sorted(str(p.relative_to(tmp_path / "t")) for p in (tmp_path / "t").rglob("stats.parquet"))
    assert converted == ["archive/a/demo.pcap/stats.parquet", "archive/b/demo.pcap/stats.parquet"]
    # Named on the command line, a file that is not a capture still fails the run.
    out = run("analyze", str(tmp_path / "archive"), str(tmp_path / "archive" / "a" / "LICENSE"))
    assert out.returncode == 2
