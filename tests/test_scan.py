"""scan_pcap: a streaming polars source equal to read_pcap followed by the same query."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import icmpscope as ic
from icmpscope import synth as s

T0 = 1_700_000_000_000_000_000


def _pings(n: int) -> list[s.Frame]:
    return [s.Frame(T0 + i * 1000, s.ethernet(s.ping("10.0.0.1", f"10.0.{i % 7}.2", seq=i % 65536, reply=i % 3 == 0)))
            for i in range(n)]


@pytest.mark.parametrize("table", ["icmp", "fragments", "datagrams", "flows", "stats", "errors"])
def test_every_table_equals_read_pcap(tmp_path: Path, table: str) -> None:
    frames = _pings(500) + [s.Frame(T0 + 10**9, b"\x00" * 5)]
    frames += [s.Frame(T0 + 10**9 + i, s.ethernet(s.ipv4("10.0.0.1", "10.0.0.9", s.udp(5000 + i % 3, 53, src="10.0.0.1",
                                                                                       dst="10.0.0.9"), proto=17)))
               for i in range(1, 10)]
    frames += [s.Frame(T0 + 2 * 10**9 + i, s.ethernet(f)) for i, f in
               enumerate(s.fragment_ipv4_payload("10.9.9.9", "10.8.8.8", s.echo_request(1, 1, b"x" * 3000), ident=9, size=1480))]
    path = s.write_pcap(tmp_path / "a.pcap", frames)
    expected = getattr(ic.read_pcap(path), table)
    got = ic.scan_pcap(path, table, batch_rows=64).collect(engine="streaming")
    assert expected.height > 0
    assert_frame_equal(got, expected, categorical_as_str=True)


def test_projection_filter_and_limit(tmp_path: Path) -> None:
    paths = [s.write_pcap(tmp_path / f"p{i}.pcap", _pings(300)) for i in range(3)]
    lf = ic.scan_pcap(str(tmp_path / "p*.pcap"), batch_rows=50)
    query = lambda f: f.filter(pl.col("icmp_type") == 8, pl.col("dst") == "10.0.3.2").select("ts", "src", "icmp_seq")  # noqa: E731
    expected = query(ic.read_pcap(paths).icmp)
    assert_frame_equal(query(lf).collect(engine="streaming"), expected, categorical_as_str=True)
    assert query(lf).head(5).collect().height == 5
    assert lf.select(pl.len()).collect().item() == 900


def test_scan_errors() -> None:
    with pytest.raises(ValueError, match="unknown table"):
        ic.scan_pcap(__file__, "flow")
    with pytest.raises(FileNotFoundError):
        ic.scan_pcap("/nonexistent.pcap")
    with pytest.raises(ic.CaptureFormatError):
        ic.scan_pcap(__file__).collect()


def test_scan_warns_on_cut_short(tmp_path: Path) -> None:
    data = s.pcap_bytes(_pings(3))
    (tmp_path / "cut.pcap").write_bytes(data[:-5])
    with pytest.warns(ic.io.CaptureTruncatedWarning):
        assert ic.scan_pcap(tmp_path / "cut.pcap").collect().height == 2
    with pytest.raises(ic.CaptureFormatError):
        ic.scan_pcap(tmp_path / "cut.pcap", strict=True).collect()


from conftest import CAPTURES  # noqa: E402

MANIFEST = CAPTURES / "manifest.json"
FILES = [e["file"] for e in json.loads(MANIFEST.read_text())["files"]] if MANIFEST.exists() else []


@pytest.mark.parametrize("name", FILES)
def test_scan_equals_read_on_corpus(name: str, captures: Path) -> None:
    path = captures / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
        cap = ic.read_pcap(path)
        got = ic.scan_pcap(path, batch_rows=7).filter(pl.col("ip_version") == 4).select("frame", "src", "icmp_type").collect()
        stats = ic.scan_pcap(path, "stats").collect()
    expected = cap.icmp.filter(pl.col("ip_version") == 4).select("frame", "src", "icmp_type")
    assert_frame_equal(got, expected, categorical_as_str=True)
    assert_frame_equal(stats, cap.stats, categorical_as_str=True)


def test_projection_builds_only_the_wanted_columns(tmp_path: Path) -> None:
    import pyarrow as pa

    path = s.write_pcap(tmp_path / "p.pcap", _pings(10))
    scanner = ic._core.Scanner([str(path)], "icmp", ic.io._options(), columns=["icmp_seq", "dst"])
    table = pa.table(scanner.next_batch())
    assert table.column_names == ["dst", "icmp_seq"]  # schema order, nothing else built
    assert table.column("icmp_seq").to_pylist() == list(range(10))
    stats = pa.table(ic._core.Scanner([str(path)], "stats", ic.io._options(), columns=["packets"]).next_batch())
    assert stats.column_names == ["packets"] and stats.column("packets").to_pylist() == [10]
