"""`icmpscope watch` and `ic.watch`: captures followed while they are written."""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import icmpscope as ic
from icmpscope import synth


def flood_bytes() -> tuple[bytes, bytes]:
    """The echo flood as a pcap cut in two at a record boundary: its first 400 frames (the flood
    is over its threshold by then) and the rest."""
    frames = synth.scenarios.echo_flood().frames
    head = synth.pcap_bytes(frames[:400], nanosecond=True)
    rest = synth.pcap_bytes(frames[400:], nanosecond=True)[24:]
    return head, rest


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "icmpscope.cli", "watch", *args, "--interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def line_within(process: subprocess.Popen[str], seconds: float) -> str | None:
    with selectors.DefaultSelector() as sel:
        sel.register(process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        if sel.select(timeout=seconds):
            return process.stdout.readline()  # type: ignore[union-attr]
    return None


def test_an_early_flood_is_reported_before_the_writer_finishes(tmp_path: Path) -> None:
    path = tmp_path / "live.pcap"
    head, rest = flood_bytes()
    path.write_bytes(head)
    watcher = start(str(path))
    try:
        line = line_within(watcher, 60)
        assert line, watcher.stderr.read() if watcher.poll() is not None else "no alert line in time"  # type: ignore[union-attr]
        doc = json.loads(line)
        assert (doc["event"]["action"], doc["source"]["ip"], doc["destination"]["ip"]) == ("echo_flood", "203.0.113.7", "192.0.2.80")
        with path.open("ab") as f:  # the writer goes on: the same flood, not a new alert
            f.write(rest)
        time.sleep(1.5)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert out == "" and err == ""


def test_an_episode_across_rotated_files_is_reported_once(tmp_path: Path) -> None:
    frames = synth.scenarios.echo_flood().frames  # 1.6 s of flood in the first file, the rest in the second
    (tmp_path / "ring_00001.pcap").write_bytes(synth.pcap_bytes(frames[:200], nanosecond=True))
    watcher = start(str(tmp_path))
    try:
        time.sleep(1.0)
        (tmp_path / "ring_00002.pcap").write_bytes(synth.pcap_bytes(frames[200:], nanosecond=True))
        line = line_within(watcher, 60)
        assert line and json.loads(line)["event"]["action"] == "echo_flood"
        time.sleep(1.0)
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=60)
    assert (watcher.returncode, out, err) == (0, "", "")


def test_a_folder_that_disappears_is_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "ring"
    folder.mkdir()
    watcher = start(str(folder))
    time.sleep(1.0)
    folder.rmdir()
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 2 and err.count("\n") == 1 and "ring" in err, err


def test_watch_from_python_and_stdin(tmp_path: Path) -> None:
    head, rest = flood_bytes()
    path = tmp_path / "done.pcap"
    path.write_bytes(head + rest)
    polls = iter([False, False, True])
    got = list(ic.watch(path, interval=0, stop=lambda: next(polls)))
    assert [a["kind"].to_list() for a in got] == [["echo_flood"]]
    out = subprocess.run([sys.executable, "-m", "icmpscope.cli", "watch", "-", "--interval", "0.1"], input=head + rest,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["event"]["action"] for line in out.stdout.splitlines()] == ["echo_flood"]
