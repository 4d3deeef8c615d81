"""The detection engine (icmpscope.detect.engine): running each detector over the candidate
groups' rows only, in memory or streamed from scan_pcap, gives exactly the alerts of each
detector run over the whole capture, on every scenario and every corpus capture."""
from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope.detect import DETECTORS, engine
from icmpscope.detect import plans as plans_of
from icmpscope.synth import scenarios as sc
from icmpscope import synth as s
from icmpscope.synth import write_pcap

SCENARIOS = [*sc.ATTACKS, *sc.BENIGN, sc.demo]


def reference(data, **thresholds) -> pl.DataFrame:
    """Every detector over all of ``data``: what detect.all did before it had plans."""
    found = [d(data, **{k: v for k, v in thresholds.items() if k in inspect.signature(d).parameters})
             for d in DETECTORS]
    return pl.concat(found).sort("start", "kind", "src", "dst", nulls_last=True)


def streamed(paths, batch_rows: int, **thresholds) -> pl.DataFrame:
    """Detection streamed in batches of ``batch_rows`` (polars would coalesce small ones)."""
    from icmpscope.detect import stream

    before, stream.BATCH_ROWS = stream.BATCH_ROWS, batch_rows
    try:
        return ic.detect.all(ic.scan_pcap(paths, batch_rows=batch_rows), **thresholds)
    finally:
        stream.BATCH_ROWS = before


@pytest.mark.parametrize("build", SCENARIOS, ids=lambda b: b.__name__)
def test_scenarios_in_memory_and_streamed_equal_the_reference(build, tmp_path: Path) -> None:
    built = build()
    path = write_pcap(tmp_path / "s.pcap", built.frames, nanosecond=True)
    cap = ic.read_pcap(path)
    expected = reference(cap, **built.options)
    assert ic.detect.all(cap, **built.options).equals(expected)
    # The icmp table alone: fragment_attacks sees the reassembled messages only.
    assert ic.detect.all(cap.icmp, **built.options).equals(reference(cap.icmp, **built.options))
    # Batches of 7 rows: the bounds are added up over many partial ones.
    assert streamed(path, 7, **built.options).equals(reference(cap.icmp, **built.options))
    # With the flows beside them, forged errors are judged in every form.
    with_flows = reference(cap.icmp, flows=cap.flows, **built.options)
    assert ic.detect.all(cap.icmp, flows=cap.flows, **built.options).equals(with_flows)
    assert streamed(path, 7, flows=ic.scan_pcap(path, "flows"), **built.options).equals(with_flows)


def test_rotated_files_streamed(tmp_path: Path) -> None:
    """A flood across two files: bounds merged across files, the files named."""
    built = sc.echo_flood()
    first = write_pcap(tmp_path / "a.pcap", built.frames[:300], nanosecond=True)
    second = write_pcap(tmp_path / "b.pcap", built.frames[300:], nanosecond=True)
    cap = ic.read_pcap([first, second])
    expected = reference(cap)
    assert expected.height == 1 and "files" in expected.columns
    assert ic.detect.all(cap).equals(expected)
    assert streamed([first, second], 50).equals(reference(cap.icmp))


@pytest.mark.parametrize("build", SCENARIOS, ids=lambda b: b.__name__)
def test_routers_are_inferred_alike_from_representatives(build) -> None:
    """The parts of a capture send router inference the earliest row of each kind between each
    MAC and address, which tells the same routers as all the rows."""
    from icmpscope.detect.routers import LEARNS_FROM, representatives

    icmp = build().read().icmp.select(LEARNS_FROM)
    kept = representatives(icmp)
    assert kept.height <= icmp.height
    assert ic.detect.infer_routers(kept).equals(ic.detect.infer_routers(icmp))
    halves = [representatives(icmp[: icmp.height // 2]), representatives(icmp[icmp.height // 2:])]
    assert ic.detect.infer_routers(representatives(pl.concat(halves))).equals(ic.detect.infer_routers(icmp))


def test_streamed_in_shares_equals_in_memory(tmp_path: Path, monkeypatch) -> None:
    """More candidate rows than streamed detection holds at once: the groups are shared out, a
    pass over the captures each, and the alerts are those of the captures in memory. (Streamed
    512 rows at a time, these 35 captures also made polars panic before kept rows were
    rechunked.)"""
    from icmpscope.detect import stream

    built = [b() for b in (*sc.ATTACKS, *sc.BENIGN)]
    paths = [write_pcap(tmp_path / f"{i}.pcap", b.frames, nanosecond=True)
             for i, b in enumerate(built) if not b.options]
    cap = ic.read_pcap(paths)
    expected = ic.detect.all(cap.icmp, flows=cap.flows)
    assert expected["kind"].n_unique() >= 10 and "forged_error" in expected["kind"]
    calls = []
    candidate_rows = stream._candidate_rows
    monkeypatch.setattr(stream, "_candidate_rows", lambda *a: calls.append(a[3]) or candidate_rows(*a))
    monkeypatch.setattr(stream, "SHARE_ROWS", 4000)
    assert streamed(paths, 512, flows=ic.scan_pcap(paths, "flows")).equals(expected)
    assert calls[0] is None and len(calls) > 2 and calls[1:] == [(i, len(calls) - 1) for i in range(len(calls) - 1)]


def test_quiet_groups_are_not_candidates() -> None:
    """The bounds leave out the groups that cannot alert: in the demo, the sweep's prober is
    the only candidate of sweeps, and the other traffic is not read by sweeps."""
    cap = sc.demo().read()
    plan = plans_of.sweeps(**engine.options(ic.detect.sweeps, {}))
    chosen = engine.candidates(pl.collect_all(engine.partial_bounds(cap.icmp, plan)), plan)
    assert chosen["_k0"].cast(pl.String).to_list() == ["203.0.113.66"]
    rows = engine.select_rows(cap.icmp, plan, chosen)
    assert 0 < rows.height < cap.icmp.height
    # Under the threshold, nobody is.
    plan = plans_of.sweeps(**engine.options(ic.detect.sweeps, {"sweep_min_targets": 1000}))
    assert engine.candidates(pl.collect_all(engine.partial_bounds(cap.icmp, plan)), plan).is_empty()


@pytest.mark.parametrize("build", SCENARIOS, ids=lambda b: b.__name__)
def test_bounds_over_a_whole_capture_choose_the_same_candidates(build) -> None:
    """``whole=True`` leaves out the rows of groups that cannot reach a bound's ``least``:
    the candidates are those of the full measures."""
    built = build()
    cap = built.read()
    for plan in plans_of.of(DETECTORS, built.options).values():
        full = engine.candidates(pl.collect_all(engine.partial_bounds(cap.icmp, plan)), plan)
        whole = engine.candidates(pl.collect_all(engine.partial_bounds(cap.icmp, plan, whole=True)), plan)
        assert (whole is None) == (full is None)
        if full is not None:
            assert sorted(whole.rows(), key=str) == sorted(full.rows(), key=str)


def test_whole_capture_bounds_measure_only_groups_that_may_reach_the_least() -> None:
    """The demo's echo pairs: the tunnel's 30 echo messages and a ping's 10 reach the tunnels
    bound's ten, the sweep's request and reply per address do not, and are not grouped."""
    cap = sc.demo().read()
    plan = plans_of.tunnels(**engine.options(ic.detect.tunnels, {}))
    full, = pl.collect_all(engine.partial_bounds(cap.icmp, plan))
    whole, = pl.collect_all(engine.partial_bounds(cap.icmp, plan, whole=True))
    assert full.height > 40
    pairs = whole.select(pl.col("_k0", "_k1").cast(pl.String), "n").rows()
    assert sorted(pairs) == sorted(full.filter(pl.col("n") >= 10).select(pl.col("_k0", "_k1").cast(pl.String), "n").rows())
    assert sorted(pairs) == [("192.0.2.1", "192.0.2.10", 10), ("192.0.2.10", "203.0.113.200", 30)]


def test_every_detector_has_a_plan() -> None:
    for detector in DETECTORS:
        plan = getattr(plans_of, detector.__name__)(**engine.options(detector, {}))
        assert plan.routes and all(len(r.key) == plan.width for r in plan.routes)


def test_plans_name_every_column_their_detectors_read() -> None:
    """A plan that narrows its rows (``columns``) keeps every icmp column its detector's module
    names, so no branch of the detector reaches for one that was dropped (the scenario tests
    cover the branches they take)."""
    names = set(sc.demo().read().icmp.columns)
    for detector in DETECTORS:
        plan = getattr(plans_of, detector.__name__)(**engine.options(detector, {}))
        if plan.columns is None:
            continue
        assert set(plan.columns) <= names, detector.__name__
        source = inspect.getsource(inspect.getmodule(detector))
        for other in DETECTORS:  # a module's other detectors read what they read
            if other is not detector and inspect.getmodule(other) is inspect.getmodule(detector):
                source = source.replace(inspect.getsource(other), "")
        named = {c for c in names if f'"{c}"' in source}
        assert named <= set(plan.columns), (detector.__name__, named - set(plan.columns))


def test_corpus_in_memory_and_streamed_equal_the_reference(captures: Path) -> None:
    files = json.loads((captures / "manifest.json").read_text())["files"]
    for entry in files:
        path = captures / entry["file"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cap = ic.read_pcap(path)
            except ic.CaptureFormatError:
                continue
            assert ic.detect.all(cap).equals(reference(cap)), entry["file"]
            assert streamed(path, 1 << 10).equals(reference(cap.icmp)), entry["file"]


def test_streamed_in_time_order_settles_as_it_goes(tmp_path: Path, monkeypatch) -> None:
    """Captures laid one after another in time, streamed: the bounds of buckets and episodes that
    ended are judged and dropped as the stream passes them, so what is held stays a fraction of
    the groups, and the alerts are those of the capture in memory. The same frames out of time
    order (each capture's second half first) come late, and their groups are candidates
    outright: the alerts are still the same."""
    built = [b() for b in (*sc.ATTACKS, *sc.BENIGN)]
    hour = 3600 * 10**9
    shifted = [[s.Frame(f.ts + i * hour, f.data) for f in b.frames] for i, b in enumerate(b for b in built if not b.options)]
    path = write_pcap(tmp_path / "day.pcap", [f for frames in shifted for f in frames], nanosecond=True)
    cap = ic.read_pcap(path)
    expected = ic.detect.all(cap.icmp)
    assert expected["kind"].n_unique() >= 10
    plans = plans_of.of(DETECTORS, {})
    total = 0
    for plan in plans.values():
        for i, part in enumerate(pl.collect_all(engine.partial_bounds(cap.icmp, plan))):
            total += engine.merge_bounds([part], plan, i).height
    held: list[int] = []
    settle = engine.settle

    def recorded(table, *args):
        hot, kept = settle(table, *args)
        held.append(kept.height)
        return hot, kept

    monkeypatch.setattr(engine, "settle", recorded)
    assert streamed(path, 100).equals(expected)
    per_round = sum(len(plan.bounds) for plan in plans.values())
    rounds = [sum(held[k:k + per_round]) for k in range(0, len(held), per_round)]
    assert len(rounds) > 5 and max(rounds) * 3 < total, (rounds, total)
    late = path.with_name("late.pcap")
    write_pcap(late, [f for frames in shifted for f in frames[len(frames) // 2:] + frames[: len(frames) // 2]],
               nanosecond=True)
    came_late: list[int] = []
    late_keys = engine.late_keys
    monkeypatch.setattr(engine, "late_keys", lambda *a: came_late.append(late_keys(*a).height) or late_keys(*a))
    assert streamed(late, 100).equals(ic.detect.all(ic.read_pcap(late).icmp))
    assert sum(came_late) > 0
