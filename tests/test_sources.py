"""Captures that are not local files: file objects, bytes, and objects in an S3-protocol store.

The store is moto's server mode, started on 127.0.0.1 by the fixture (a real HTTP server that
speaks S3; nothing in Python is patched), with a WSGI layer that counts the GETs it serves.
"""
from __future__ import annotations

import io
import struct
import threading

import polars as pl
import pytest

import icmpscope as ic
from icmpscope import synth
from icmpscope.synth import ethernet, ping

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "captures"


def frames(n: int, *, t0: int = 1_700_000_000_000_000_000, payload: bytes = b"p" * 56) -> list:
    return [(t0 + i * 10_000_000, ethernet(ping("10.0.0.1", f"10.0.{i % 4}.2", seq=i, payload=payload))) for i in range(n)]


class CountingMotoServer(moto_server.ThreadedMotoServer):
    """moto's threaded server with the GETs of objects recorded: (path, Range header)."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.gets: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ, start_response):
            if environ["REQUEST_METHOD"] == "GET" and not environ.get("QUERY_STRING"):
                with self.lock:
                    self.gets.append((environ["PATH_INFO"], environ.get("HTTP_RANGE")))
            return app(environ, start_response)

        self._server = make_server(self._ip_address, self._port, counting, True)
        self._server_ready_event.set()
        self._server.serve_forever()


@pytest.fixture(scope="module")
def store():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = CountingMotoServer()
    server.start()
    host, port = server.get_host_and_port()
    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://{host}:{port}", "region_name": "us-east-1"}}
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.call_s3("create_bucket", Bucket=BUCKET)
    yield server, fs, options
    server.stop()


def put(fs, tmp_path, name: str, frames_, **kw) -> tuple[str, str]:
    local = synth.write_pcap(tmp_path / name, frames_, nanosecond=True, **kw)
    fs.put_file(str(local), f"{BUCKET}/{name}")
    return str(local), f"s3://{BUCKET}/{name}"


def same_tables(a: ic.Capture, b: ic.Capture) -> None:
    assert a.icmp.drop("file").equals(b.icmp.drop("file"))
    assert a.stats.drop("file").equals(b.stats.drop("file"))
    assert a.errors.drop("file").equals(b.errors.drop("file"))


@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
def test_a_capture_in_a_bucket_reads_as_the_local_one(store, tmp_path, compress):
    _, fs, options = store
    name = {None: "plain.pcap", "gzip": "ping.pcap.gz", "zstd": "ping.pcap.zst"}[compress]
    local, url = put(fs, tmp_path, name, frames(200), compress=compress)
    remote = ic.read_pcap(url, storage_options=options)
    same_tables(remote, ic.read_pcap(local))
    assert remote.icmp.height == 200
    assert remote.icmp["file"].unique().to_list() == [url]
    assert remote.stats["compression"].to_list() == [{None: "none", "gzip": "gzip", "zstd": "zstd"}[compress]]
    lazy = ic.scan_pcap(url, storage_options=options).select("icmp_seq").collect()
    assert lazy["icmp_seq"].to_list() == list(range(200))


def test_a_glob_expands_in_the_bucket(store, tmp_path):
    _, fs, options = store
    (tmp_path / "glob").mkdir()
    for day in (1, 2, 3):
        put(fs, tmp_path, f"glob/day{day}.pcap", frames(10 * day))
    cap = ic.read_pcap(f"s3://{BUCKET}/glob/day*.pcap", storage_options=options)
    assert cap.files == tuple(f"s3://{BUCKET}/glob/day{d}.pcap" for d in (1, 2, 3))
    assert cap.stats.select("file", "icmp").rows() == [(f"s3://{BUCKET}/glob/day{d}.pcap", 10 * d) for d in (1, 2, 3)]


def test_a_large_object_is_read_by_ranged_gets_in_pieces(store, tmp_path):
    server, fs, options = store
    # 40k records of ~1.1 kB: 43 MiB, so two threads split it in two pieces (16 MiB at least each).
    header = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
    frame = ethernet(ping("10.0.0.1", "10.0.0.2", payload=b"x" * 1000))
    records = b"".join(struct.pack("<IIII", 1_700_000_000 + i // 1000, (i % 1000) * 1000, len(frame), len(frame)) + frame
                       for i in range(40_000))
    data = header + records
    (tmp_path / "big.pcap").write_bytes(data)
    fs.pipe_file(f"{BUCKET}/big.pcap", data)
    block = 4 << 20
    server.gets.clear()
    remote = ic.read_pcap(f"s3://{BUCKET}/big.pcap", storage_options={**options, "default_block_size": block}, threads=2)
    gets = [r for p, r in server.gets if p.endswith("/big.pcap")]
    same_tables(remote, ic.read_pcap(tmp_path / "big.pcap", threads=2))
    assert remote.icmp.height == 40_000
    assert gets and all(r is not None and r.startswith("bytes=") for r in gets), gets[:3]
    spans = [tuple(int(x) for x in r[len("bytes="):].split("-")) for r in gets]
    assert max(end - start + 1 for start, end in spans) < len(data) // 4, "no GET of the whole object"
    assert len(gets) >= len(data) // (block + (1 << 20) + 1) + 1
    # Pieces: a GET at or past the middle comes before the last GET of the first half.
    middle = len(data) // 2
    first_late = next(i for i, (start, _) in enumerate(spans) if start >= middle)
    last_early = max(i for i, (start, _) in enumerate(spans) if start < middle)
    assert first_late < last_early, spans


def test_analyze_over_bucket_urls_on_a_local_cluster(store, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, fs, options = store
    flood = synth.scenarios.echo_flood()
    half = len(flood.frames) // 2
    (tmp_path / "rot").mkdir()
    put(fs, tmp_path, "rot/a.pcap", flood.frames[:half])
    put(fs, tmp_path, "rot/b.pcap", flood.frames[half:])
    whole = ic.detect.all(ic.read_pcap(synth.write_pcap(tmp_path / "whole.pcap", flood.frames, nanosecond=True)))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        report = ic.analyze(f"s3://{BUCKET}/rot/*.pcap", executor=client.get_executor(), storage_options=options, progress=False)
    assert report.stats["file"].to_list() == [f"s3://{BUCKET}/rot/a.pcap", f"s3://{BUCKET}/rot/b.pcap"]
    assert report.alerts.select("kind", "src", "dst", "packets").rows() == whole.select("kind", "src", "dst", "packets").rows()
    assert report.alerts["kind"].to_list() == ["echo_flood"]


def test_a_missing_object_or_bucket_names_the_url(store):
    _, _, options = store
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/none.pcap"):
        ic.read_pcap(f"s3://{BUCKET}/none.pcap", storage_options=options)
    with pytest.raises(FileNotFoundError, match="s3://no-such-bucket/x.pcap"):
        ic.read_pcap("s3://no-such-bucket/x.pcap", storage_options=options)
    report = ic.analyze([f"s3://{BUCKET}/none.pcap"], storage_options=options, progress=False)
    assert report.errors.select("file", "kind").rows() == [(f"s3://{BUCKET}/none.pcap", "file")]


def test_an_unreachable_store_names_the_url():
    options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"},
               "config_kwargs": {"retries": {"max_attempts": 1}}}
    with pytest.raises(OSError, match="127.0.0.1:9") as raised:
        ic.read_pcap("s3://bucket/x.pcap", storage_options=options)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


# Streams: file objects, bytes, memoryviews.

def test_file_objects_bytes_and_memoryviews_read_as_the_file(tmp_path):
    path = synth.write_pcap(tmp_path / "p.pcap", frames(30), nanosecond=True, compress="gzip")
    data = path.read_bytes()
    local = ic.read_pcap(path)
    with open(path, "rb") as f:
        from_file = ic.read_pcap(f)
    cases = {str(path): from_file, "<stream>": ic.read_pcap(io.BytesIO(data)), "<bytes>": ic.read_pcap(data),
             "<bytes> ": ic.read_pcap(memoryview(data))}
    for name, cap in cases.items():
        same_tables(cap, local)
        assert cap.files == (name.strip(),)
        assert cap.icmp["file"].unique().to_list() == [name.strip()]


class Trickle(io.RawIOBase):
    """A pipe-like binary stream that gives at most 7 bytes a read and cannot seek."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at, self.asked = data, 0, []

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        self.asked.append(len(buf))
        n = min(7, len(buf), len(self.data) - self.at)
        buf[:n] = self.data[self.at:self.at + n]
        self.at += n
        return n


def test_a_stream_is_read_by_chunks_not_whole():
    data = synth.pcap_bytes(frames(300))
    stream = Trickle(data)
    cap = ic.read_pcap(stream)
    assert cap.icmp.height == 300 and cap.files == ("<stream>",)
    assert max(stream.asked) <= 1 << 20


def test_scan_pcap_of_a_file_object_collects_again_from_where_it_stood():
    data = synth.pcap_bytes(frames(5))
    lf = ic.scan_pcap(io.BytesIO(data))
    assert lf.select("icmp_seq").collect()["icmp_seq"].to_list() == [0, 1, 2, 3, 4]
    assert lf.select("icmp_seq").collect()["icmp_seq"].to_list() == [0, 1, 2, 3, 4]


def test_text_mode_and_non_captures_are_refused(tmp_path):
    path = synth.write_pcap(tmp_path / "p.pcap", frames(1))
    with open(path, encoding="latin-1") as text, pytest.raises(TypeError, match="p.pcap.*text mode"):
        ic.read_pcap(text)
    with pytest.raises(TypeError, match="text mode"):
        ic.read_pcap(io.StringIO("hello"))
    with pytest.raises(ic.CaptureFormatError, match="<bytes>.*not a pcap"):
        ic.read_pcap(b"hello, this is no capture")


def test_a_failing_file_object_raises_its_own_error():
    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buf) -> int:
            raise PermissionError("denied by the test")

    with pytest.raises(PermissionError, match="denied by the test"):
        ic.read_pcap(Failing())


def test_analyze_takes_file_objects_and_bytes(tmp_path):
    flood = synth.scenarios.echo_flood()
    data = synth.pcap_bytes(flood.frames, nanosecond=True)
    report = ic.analyze([io.BytesIO(data)], progress=False)
    assert report.stats["file"].to_list() == ["<stream>"]
    assert report.alerts["kind"].to_list() == ["echo_flood"]
    report = ic.analyze(data, progress=False)
    assert report.alerts["kind"].to_list() == ["echo_flood"]
