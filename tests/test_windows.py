"""The window kernels of the core (``count_hot`` with and without a weight, ``distinct_hot`` and
``episodes`` of icmpscope.detect.base) against their polars formulation
(tests/windows_reference.py): on random rows, and detector by detector on every scenario and
every corpus capture."""
from __future__ import annotations

import json
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import given, settings

import icmpscope as ic
from icmpscope import _core
from icmpscope.detect import DETECTORS, base, infer_routers
from icmpscope.synth import scenarios as sc

sys.path.insert(0, str(Path(__file__).parent))
import windows_reference as reference  # noqa: E402

KERNELS = ("count_hot", "distinct_hot", "episodes", "hot_episodes")
SCENARIOS = [*sc.ATTACKS, *sc.BENIGN, sc.demo]
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def frame(rows: list[tuple[int | None, str | None, int]]) -> pl.LazyFrame:
    """Rows of (group, target, ms) as a frame like the detectors': text targets, ns times."""
    table = pl.DataFrame(rows, schema={"g": pl.UInt64, "t": pl.String, "ms": pl.Int64}, orient="row")
    return table.lazy().with_columns(
        (pl.lit(EPOCH) + pl.duration(milliseconds=pl.col("ms"))).dt.cast_time_unit("ns").alias("ts")).drop("ms")


ROWS = st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.one_of(st.none(), st.sampled_from("abcde")),
                          st.integers(0, 400)), max_size=80)
WINDOW = st.sampled_from([0.001, 0.05, 0.1, 0.25])


def times(lf: pl.LazyFrame, by: list[str]) -> set[tuple]:
    return set(lf.select(*by, "ts").collect().rows())


@settings(max_examples=300, deadline=None)
@given(ROWS, WINDOW, st.integers(1, 4))
def test_hot_times_equal_the_reference(rows, window: float, minimum: int) -> None:
    lf = frame(rows)
    for by in (["g"], ["g", "t"]):
        assert times(base.count_hot(lf, by=by, window=window, minimum=minimum), by) == \
            times(reference.count_hot(lf, by=by, window=window, minimum=minimum), by)
    weighted = lf.with_columns(pl.col("t").str.len_bytes().cast(pl.UInt16).alias("w"))  # a null weighs nothing
    for at_least in (minimum, minimum * 1.5):
        assert times(base.count_hot(weighted, by=["g"], window=window, minimum=at_least, weight="w"), ["g"]) == \
            times(reference.count_hot(weighted, by=["g"], window=window, minimum=at_least, weight="w"), ["g"])
    got = base.distinct_hot(lf, by=["g"], target="t", window=window, minimum=minimum).collect()
    expected = reference.distinct_hot(lf, by=["g"], target="t", window=window, minimum=minimum).collect()
    assert sorted(got.rows(), key=str) == sorted(expected.rows(), key=str)


@settings(max_examples=300, deadline=None)
@given(ROWS, WINDOW, st.integers(1, 3))
def test_episodes_equal_the_reference(rows, window: float, minimum: int) -> None:
    lf = frame(rows).with_row_index("row")
    for by in (["g"], ["t"], ["g", "t"]):
        hot = reference.count_hot(lf, by=by, window=window, minimum=minimum)
        got = base.episodes(lf, hot, by=by, window=window).select("row", "episode").collect()
        expected = reference.episodes(lf, hot, by=by, window=window).select("row", "episode").collect()
        assert sorted(got["row"]) == sorted(expected["row"])
        # The same rows together: the numbers may differ, the partition may not.
        pairs = set(got.join(expected, on="row").select("episode", "episode_right").rows())
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


@settings(max_examples=300, deadline=None)
@given(ROWS, WINDOW, st.integers(1, 3))
def test_hot_episodes_equal_the_reference(rows, window: float, minimum: int) -> None:
    lf = frame(rows).with_row_index("row").with_columns(pl.col("t").str.len_bytes().cast(pl.UInt16).alias("w"))
    for by, over in ((["g"], [base.Over(minimum)]), (["g", "t"], [base.Over(minimum), base.Over(minimum * 2, weight="w")]),
                     (["g"], [base.Over(minimum, target="t")])):
        got = base.hot_episodes(lf, by=by, window=window, over=over).select("row", "episode").collect()
        expected = reference.hot_episodes(lf, by=by, window=window, over=over).select("row", "episode").collect()
        assert sorted(got["row"]) == sorted(expected["row"])
        pairs = set(got.join(expected, on="row").select("episode", "episode_right").rows())
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_kernels_refuse_bad_input() -> None:
    groups, ts = pl.Series([1, 1], dtype=pl.UInt64), pl.Series([2, 1], dtype=pl.Int64)
    with pytest.raises(ValueError, match="ascending order"):
        _core.trailing_counts(groups, ts, 10)
    with pytest.raises(ValueError, match="window must be positive"):
        _core.trailing_counts(groups, ts.sort(), 0)
    with pytest.raises(ValueError, match="ts: 1 null time"):
        _core.trailing_counts(groups, pl.Series([1, None], dtype=pl.Int64), 10)
    with pytest.raises(ValueError, match="hot ts: 1 null time"):
        _core.episodes(groups, pl.Series([None, 1], dtype=pl.Int64), groups, ts.sort(), 10)
    with pytest.raises(ValueError, match="not both"):
        _core.trailing_counts(groups, ts.sort(), 10, sums=groups, distinct=groups)
    with pytest.raises(ValueError, match="2 values where the times have 1"):
        _core.episodes(groups, ts.head(1), groups, ts.sort().head(1), 10)
    with pytest.raises(TypeError, match="groups: expected UInt64, got Int64"):
        _core.trailing_counts(ts, ts.sort(), 10)


@settings(max_examples=300, deadline=None)
@given(ROWS, st.integers(0, 6))
def test_may_reach_keeps_every_row_of_each_group_that_does(rows, least: int) -> None:
    table = frame(rows).with_columns(pl.col("t").str.len_bytes().cast(pl.UInt16).alias("w")).collect()
    for by, weight in ((["g"], None), (["g", "t"], None), (["g"], "w")):
        kept = base.may_reach(table, by=by, least=least, weight=weight)
        total = (pl.col(weight).fill_null(0).sum() if weight else pl.len()).over(by)
        assert kept.null_count() == 0
        assert not table.select((total >= least) & ~kept).to_series().any()


def with_reference_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The polars formulation in every detector module (each imported the names itself)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("icmpscope.detect"):
            for kernel in KERNELS:
                if getattr(module, kernel, None) is getattr(base, kernel):
                    monkeypatch.setattr(module, kernel, getattr(reference, kernel))


def every_detector(data, **options) -> list[pl.DataFrame]:
    import inspect

    found = [d(data, **{k: v for k, v in options.items() if k in inspect.signature(d).parameters}) for d in DETECTORS]
    return [*found, infer_routers(data.icmp)]


def assert_alike(data, monkeypatch: pytest.MonkeyPatch, **options) -> None:
    got = every_detector(data, **options)
    with monkeypatch.context() as patched:
        with_reference_kernels(patched)
        expected = every_detector(data, **options)
    for detector, mine, theirs in zip([*DETECTORS, infer_routers], got, expected):
        assert mine.equals(theirs), detector.__name__


@pytest.mark.parametrize("build", SCENARIOS, ids=lambda b: b.__name__)
def test_detectors_on_scenarios_equal_the_reference(build, monkeypatch: pytest.MonkeyPatch) -> None:
    built = build()
    assert_alike(built.read(), monkeypatch, **built.options)


def test_detectors_on_the_corpus_equal_the_reference(captures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = json.loads((captures / "manifest.json").read_text())["files"]
    for entry in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cap = ic.read_pcap(captures / entry["file"])
            except ic.CaptureFormatError:
                continue
            assert_alike(cap, monkeypatch)
