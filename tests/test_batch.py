"""analyze over rotated files equals one run over the whole; executors, Dask, the Report."""
from __future__ import annotations

import json
import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import icmpscope as ic
from icmpscope import synth as s

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
KEYS = ["kind", "technique", "start", "end", "src", "dst", "packets", "detail"]


def _attack_frames() -> list[s.Frame]:
    """Benign monitoring, then a 20 s echo flood and a ping sweep, interleaved in time."""
    frames = []
    for i in range(30):
        frames.append(s.Frame(T0 + i * SECOND, s.ethernet(s.ping("192.0.2.10", "192.0.2.1", id=3, seq=i))))
        frames.append(s.Frame(T0 + i * SECOND + 1000, s.ethernet(s.ping("192.0.2.1", "192.0.2.10", id=3, seq=i, reply=True))))
    for i in range(20 * 500):  # 500 requests/s for 20 s
        frames.append(s.Frame(T0 + 5 * SECOND + i * 2_000_000, s.ethernet(s.ping("198.51.100.7", "192.0.2.80", id=9, seq=i % 65536, payload=b"x" * 56))))
    for host in range(1, 201):  # 200 hosts in 10 s
        frames.append(s.Frame(T0 + 8 * SECOND + host * 50_000_000, s.ethernet(s.ping("203.0.113.5", f"10.20.{host // 250}.{host % 250}", id=4, seq=host))))
    return sorted(frames, key=lambda f: f.ts)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("rotated")
    frames = _attack_frames()
    whole = s.write_pcap(folder / "whole.pcap", frames)
    cuts = sorted(random.Random(7).sample(range(1, len(frames)), 5))
    parts = []
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(frames)])):
        parts.append(s.write_pcap(folder / f"rot-{i:02d}.pcap", frames[a:b]))
    return whole, parts


def _comparable(report: ic.Report) -> pl.DataFrame:
    return report.alerts.select(KEYS).sort(KEYS)


def test_rotated_files_give_the_same_alerts(split: tuple[Path, list[Path]]) -> None:
    whole, parts = split
    one = ic.analyze(whole, progress=False)
    many = ic.analyze(parts, progress=False)
    assert one.alerts.height >= 2
    assert set(one.alerts["kind"]) >= {"echo_flood", "sweep"}
    assert_frame_equal(_comparable(many), _comparable(one))
    assert many.stats.height == len(parts) and many.stats["packets"].sum() == one.stats["packets"].sum()
    summed = many.summary.group_by("ip_version", "icmp_type", "icmp_code").agg(pl.col("packets").sum()).sort(pl.all())
    assert_frame_equal(summed, one.summary.drop("file", "bytes", "first_ts", "last_ts").sort(pl.all()))
    # frames with several files name the file of each frame
    flood = many.alerts.filter(pl.col("kind") == "echo_flood").row(0, named=True)
    assert len(flood["files"]) == len(flood["frames"]) > 0


@pytest.mark.parametrize("executor", [ThreadPoolExecutor, ProcessPoolExecutor])
def test_any_executor(split: tuple[Path, list[Path]], executor: type) -> None:
    whole, parts = split
    with executor(max_workers=2) as pool:
        report = ic.analyze(parts, executor=pool, progress=False)
    assert_frame_equal(_comparable(report), _comparable(ic.analyze(whole, progress=False)))


def test_dask_local_cluster(split: tuple[Path, list[Path]]) -> None:
    distributed = pytest.importorskip("distributed")
    whole, parts = split
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            report = ic.analyze(parts, executor=client.get_executor(), progress=False)
    assert_frame_equal(_comparable(report), _comparable(ic.analyze(whole, progress=False)))


def test_failed_files_are_reported_not_dropped(split: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, parts = split
    junk = tmp_path / "junk.pcap"
    junk.write_text("not a capture")
    report = ic.analyze([parts[0], junk, tmp_path / "missing.pcap"], progress=False)
    assert report.stats.height == 1
    failed = report.errors.filter(pl.col("kind") == "file")
    assert failed["file"].to_list() == [str(junk), str(tmp_path / "missing.pcap")]
    assert failed["reason"][0].startswith("CaptureFormatError: ")
    assert failed["reason"][1].startswith("FileNotFoundError: ")


def test_report_outputs(split: tuple[Path, list[Path]], tmp_path: Path) -> None:
    whole, _ = split
    report = ic.analyze(whole, progress=False)
    html = report._repr_html_()
    assert "echo_flood" in html and "Top talkers" in html and "198.51.100.7" in html
    assert report.talkers.row(0, named=True)["src"] == "198.51.100.7"
    fig = report.plot()
    assert len(fig.axes[0].patches) == report.alerts.height  # one shaded span per alert
    out = report.write(tmp_path / "pq")
    assert_frame_equal(pl.read_parquet(out / "alerts.parquet"), report.alerts)
    report.write(tmp_path / "js", "json")  # SPEC: write(dir, format="parquet"|"json")
    assert len(json.loads((tmp_path / "js" / "alerts.json").read_text())) == report.alerts.height
    with pytest.raises(ValueError):
        report.write(tmp_path / "x", format="csv")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_progress_bar_only_when_asked(split: tuple[Path, list[Path]], capsys: pytest.CaptureFixture[str]) -> None:
    _, parts = split
    ic.analyze(parts, progress=False)
    ic.read_pcap(parts, progress=False)
    assert capsys.readouterr().err == ""
    ic.analyze(parts, progress=True)
    assert f"{len(parts)}/{len(parts)} files" in capsys.readouterr().err
    cap = ic.read_pcap(parts, progress=True)
    assert f"{len(parts)}/{len(parts)} files" in capsys.readouterr().err
    assert cap.stats["file"].to_list() == [str(p) for p in parts]  # order kept


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def test_dask_client_runs_the_analysis_on_the_cluster(split: tuple[Path, list[Path]], cluster_client) -> None:
    """With a Client the cluster reads, detects and merges: the same report, and what comes back
    to the client holds no icmp rows (the files' facts, the alerts, the top talkers)."""
    from icmpscope.distributed import Facts, analyze_on_cluster

    whole, parts = split
    received: list[object] = []

    class Recording:
        def __getattr__(self, name: str):
            return getattr(cluster_client, name)

        def gather(self, futures):
            results = cluster_client.gather(futures)
            received.extend(results)
            return results

    sizes = {str(p): p.stat().st_size for p in parts}
    report = analyze_on_cluster(Recording(), [str(p) for p in parts], {}, sizes)
    assert_frame_equal(_comparable(report), _comparable(ic.analyze(whole, progress=False)))
    assert_frame_equal(report.summary.drop("file"),
                       ic.analyze(parts, progress=False).summary.drop("file"))
    *icmp_rows, facts, alerts, talkers = received
    assert icmp_rows == [int(ic.read_pcap(p).stats["icmp"].sum()) for p in parts]  # to size the shares
    assert all(isinstance(f, Facts) and not f.bounds and f.talkers is None for f in facts)
    assert alerts.equals(report.alerts)
    assert not any(isinstance(getattr(f, name), ic.Capture) for f in facts for name in vars(f))
    assert talkers.columns == ["src", "packets", "destinations"]
    assert_frame_equal(report.talkers, ic.analyze(whole, progress=False).talkers)
    # Through analyze itself, failures included.
    report = ic.analyze([*map(str, parts), str(Path(parts[0]).with_name("missing.pcap"))],
                        executor=cluster_client, progress=False)
    assert report.errors.filter(pl.col("kind") == "file").height == 1
    assert_frame_equal(_comparable(report), _comparable(ic.analyze(whole, progress=False)))


def test_dask_client_over_interleaved_sensors(tmp_path: Path, cluster_client) -> None:
    """Two sensors capturing the same minutes (every other frame each): the cluster's alerts,
    frames and files included, equal one machine's over the same files."""
    from icmpscope.synth import scenarios as sc

    frames = sc.demo().frames
    paths = [s.write_pcap(tmp_path / f"sensor{i}.pcap", frames[i::2], nanosecond=True) for i in range(2)]
    here = ic.analyze(paths, progress=False)
    there = ic.analyze(paths, executor=cluster_client, progress=False)
    assert not here.alerts.is_empty()
    assert there.alerts.equals(here.alerts)
    assert_frame_equal(there.stats, here.stats)
    assert_frame_equal(there.summary, here.summary)
    assert_frame_equal(there.errors, here.errors)


def test_dask_client_judges_forged_errors_against_their_files_flows(tmp_path: Path, cluster_client) -> None:
    """Forged errors need the flows they quote, which stay on the cluster: each file's errors
    are judged against that file's flows, as on one machine. The captures are cut in two, so a
    connection's flows are in two files."""
    from icmpscope.synth import scenarios as sc

    paths = []
    for name in ("forged_reset", "forged_pmtu", "pmtu_shrink", "missed_start"):
        frames = getattr(sc, name)().frames
        paths += [s.write_pcap(tmp_path / f"{name}-{i}.pcap", part, nanosecond=True)
                  for i, part in enumerate((frames[: len(frames) // 2], frames[len(frames) // 2:]))]
    here = ic.analyze(paths, progress=False)
    assert here.alerts.filter(pl.col("kind") == "forged_error").height == 2
    assert ic.analyze(paths, executor=cluster_client, progress=False).alerts.equals(here.alerts)


def test_dask_reruns_the_work_of_a_killed_worker(split: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """A worker process that dies in the middle of the detection (killed as its first detection
    task starts, with files it read in its memory) costs time, not results: Dask reruns what it
    lost and the alerts are those of one machine."""
    distributed = pytest.importorskip("distributed")
    whole, parts = split
    killed = tmp_path / "killed"

    class KillOnce(distributed.WorkerPlugin):
        def transition(self, key, start, finish, **kwargs):
            import os

            if finish == "executing" and "detect_share" in str(key) and not killed.exists():
                killed.touch()
                os._exit(1)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            client.register_plugin(KillOnce())
            report = ic.analyze([str(p) for p in parts], executor=client, progress=False)
            assert killed.exists()  # a worker did die
            client.wait_for_workers(2, timeout=60)  # and its nanny brought it back
    assert report.errors.filter(pl.col("kind") == "file").is_empty()
    assert_frame_equal(_comparable(report), _comparable(ic.analyze(whole, progress=False)))
