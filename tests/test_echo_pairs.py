"""icmpscope.echo_pairs: requests matched to replies exactly as tshark's icmp.resp_in and
icmpv6.resp_in do, on crafted captures and on the corpus."""
from __future__ import annotations

import doctest
import json
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import polars as pl

import icmpscope as ic
import icmpscope.echo
from icmpscope.synth import Frame, ethernet, ping, write_pcap

A, B, C = "192.0.2.1", "192.0.2.2", "192.0.2.3"
A6, B6 = "2001:db8::1", "2001:db8::2"
S = 10**9


def test_every_public_name_and_module_loads_first_in_a_fresh_process() -> None:
    """A name that only loads after another was touched (an import cycle) fails a user's first line."""
    modules = ["icmpscope.echo", "icmpscope.batch", "icmpscope.report", "icmpscope.cli", "icmpscope.detect.smurf",
               "icmpscope.detect.tunnels", "icmpscope.detect.conversations"]
    lines = [f"import icmpscope as ic; ic.{name}" for name in ic.__all__] + [f"import {m}" for m in modules]
    for line in lines:
        done = subprocess.run([sys.executable, "-c", line], capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr)


def capture(tmp_path: Path, packets: list[tuple[float, bytes]], name: str = "echo.pcap") -> Path:
    frames = [Frame(round(t * S), ethernet(p)) for t, p in packets]
    return write_pcap(tmp_path / name, frames, nanosecond=True)


def pairs(path, **options) -> list[tuple]:
    return ic.echo_pairs(ic.read_pcap(path), **options).select(
        "src", "dst", "icmp_seq", "request_frame", "reply_frame").rows()


def test_docstring_example():
    assert doctest.testmod(icmpscope.echo).failed == 0


def test_answered_unanswered_and_orphan(tmp_path):
    path = capture(tmp_path, [
        (0.0, ping(A, B, seq=1)),
        (0.002, ping(B, A, seq=1, reply=True)),
        (1.0, ping(A, B, seq=2)),                       # never answered
        (2.0, ping(C, A, seq=9, reply=True)),           # answers nothing: reflection's signature
    ])
    found = ic.echo_pairs(ic.read_pcap(path))
    assert found.schema == pl.Schema({
        "src": pl.String, "dst": pl.String, "icmp_id": pl.UInt16, "icmp_seq": pl.UInt16,
        "request_frame": pl.UInt64, "reply_frame": pl.UInt64,
        "request_ts": pl.Datetime("ns", "UTC"), "reply_ts": pl.Datetime("ns", "UTC"),
        "rtt": pl.Duration("ns"), "request_bytes": pl.UInt32, "reply_bytes": pl.UInt32})
    assert found.select("src", "dst", "icmp_seq", "request_frame", "reply_frame", "rtt",
                        "request_bytes", "reply_bytes").rows() == [
        (A, B, 1, 1, 2, timedelta(milliseconds=2), 60, 60),
        (A, B, 2, 3, None, None, 60, None),
        (A, C, 9, None, 4, None, None, 60),
    ]


def test_duplicate_reply_and_reused_sequence(tmp_path):
    path = capture(tmp_path, [
        (0.0, ping(A, B, seq=1)),
        (0.1, ping(B, A, seq=1, reply=True)),
        (0.2, ping(B, A, seq=1, reply=True)),           # a duplicate: unmatched
        (1.0, ping(A, B, seq=5)),
        (2.0, ping(A, B, seq=5)),                       # the same request again
        (2.1, ping(B, A, seq=5, reply=True)),           # answers the latest
    ])
    assert pairs(path) == [(A, B, 1, 1, 2), (A, B, 1, None, 3), (A, B, 5, 4, None), (A, B, 5, 5, 6)]


def test_a_reply_must_echo_the_data(tmp_path):
    """Same addresses, id and sequence, other data: tshark does not pair them (tunnels)."""
    path = capture(tmp_path, [
        (0.0, ping(A, B, seq=1, payload=b"request data")),
        (0.1, ping(B, A, seq=1, payload=b"other data!!", reply=True)),
    ])
    assert pairs(path) == [(A, B, 1, 1, None), (A, B, 1, None, 2)]
    # Without the checksum column (tables from elsewhere) data of the same length still pairs.
    icmp = ic.read_pcap(path).icmp.drop("checksum")
    assert ic.echo_pairs(icmp).select("request_frame", "reply_frame").rows() == [(1, 2)]


def test_timeout_edges(tmp_path):
    path = capture(tmp_path, [(0.0, ping(A, B, seq=1)), (30.0, ping(B, A, seq=1, reply=True)),
                              (40.0, ping(A, B, seq=2)), (70.001, ping(B, A, seq=2, reply=True))])
    assert pairs(path) == [(A, B, 1, 1, 2), (A, B, 2, 3, None), (A, B, 2, None, 4)]
    assert pairs(path, timeout=None) == [(A, B, 1, 1, 2), (A, B, 2, 3, 4)]
    assert pairs(path, timeout=29.999) == [(A, B, 1, 1, None), (A, B, 1, None, 2), (A, B, 2, 3, None),
                                           (A, B, 2, None, 4)]


def test_ipv6(tmp_path):
    path = capture(tmp_path, [(0.0, ping(A6, B6, id=7, seq=3)),
                              (0.001, ping(B6, A6, id=7, seq=3, reply=True)),
                              (0.002, ping(B6, A6, id=7, seq=4, reply=True))])
    assert pairs(path) == [(A6, B6, 3, 1, 2), (A6, B6, 4, None, 3)]


def test_across_files(tmp_path):
    first = capture(tmp_path, [(0.0, ping(A, B, seq=1))], "a.pcap")
    second = capture(tmp_path, [(0.5, ping(B, A, seq=1, reply=True))], "b.pcap")
    found = ic.echo_pairs(ic.read_pcap([first, second]))
    assert found.select("request_frame", "reply_frame", "request_file", "reply_file").rows() == [
        (1, 1, str(first), str(second))]


# --------------------------------------------------------------------------- against tshark

def tshark_matches(tshark: str, path: Path) -> dict[int, int | None]:
    """Request frame -> tshark's resp_in (two passes, as Wireshark shows it)."""
    fields = ["frame.number", "icmp.resp_in", "icmpv6.resp_in", "icmp.type", "icmpv6.type"]
    args = [tshark, "-2", "-r", str(path), "-T", "fields", *(a for f in fields for a in ("-e", f))]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        frame, v4, v6, t4, t6 = (line.split("\t") + [""] * 5)[:5]
        if t4.split(",")[0] == "8" or t6.split(",")[0] == "128":  # the outermost message
            answer = (v4 or v6).split(",")[0]
            found[int(frame)] = int(answer) if answer else None
    return found


def ours(path: Path) -> dict[int, int | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = ic.echo_pairs(ic.read_pcap(path), timeout=None)
    requests = found.filter(pl.col("request_frame").is_not_null())
    return dict(requests.select("request_frame", "reply_frame").rows())


def test_crafted_edges_equal_tshark(tmp_path, tshark):
    path = capture(tmp_path, [
        (0.0, ping(A, B, seq=1)), (0.1, ping(B, A, seq=1, reply=True)), (0.2, ping(B, A, seq=1, reply=True)),
        (1.0, ping(A, B, seq=5)), (2.0, ping(A, B, seq=5)), (2.1, ping(B, A, seq=5, reply=True)),
        (3.0, ping(A, B, seq=6, payload=b"up")), (3.1, ping(B, A, seq=6, payload=b"dn", reply=True)),
        (4.0, ping(A6, B6, seq=1)), (4.1, ping(B6, A6, seq=1, reply=True)),
        (5.0, ping(A, C, seq=1)), (5.1, ping(B, A, seq=1, reply=True)),
    ])
    assert ours(path) == tshark_matches(tshark, path)


def test_corpus_pairs_equal_tshark(captures: Path, tshark: str):
    """On every corpus file with echo traffic, each request we decode has the reply tshark gives it."""
    manifest = json.loads((captures / "manifest.json").read_text())["files"]
    echo = [captures / e["file"] for e in manifest
            if any(k.split("/")[0] in ("0", "8") for k in e["icmpv4_by_type_code"])
            or any(k.split("/")[0] in ("128", "129") for k in e["icmpv6_by_type_code"])]
    assert len(echo) > 50
    with ThreadPoolExecutor(4) as pool:
        theirs = dict(zip(echo, pool.map(lambda p: tshark_matches(tshark, p), echo)))
    differ = {}
    for path in echo:
        mine = ours(path)
        expected = {frame: reply for frame, reply in theirs[path].items() if frame in mine}
        if mine != expected:
            differ[path.name] = (mine, expected)
    assert differ == {}
