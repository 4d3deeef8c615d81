"""Detections (SPEC "Detections"): small pure functions from a capture's ``icmp`` table (a
:class:`~icmpscope.Capture`, its DataFrame, or a LazyFrame from ``scan_pcap``) to a DataFrame
of alerts, one row per alert:

``kind``, ``start``, ``end`` (Datetime[ns, UTC]), ``src``, ``dst`` (String, null when many),
``packets`` (UInt64), ``detail`` (String, the evidence in words), ``technique`` (the MITRE
ATT&CK id), ``frames`` (List[UInt64], up to 20 frames that prove it, in capture order) and, when
several capture files are analysed together, ``files`` (List[String]) beside ``frames``.

Every threshold is a keyword argument with a default; :func:`all` takes any of them.

>>> import icmpscope as ic
>>> cap = ic.read_pcap(ic.synth.write_demo(ic.synth.scenarios.temp_path("demo.pcap")))
>>> ic.detect.all(cap).select("kind", "src", "dst").rows()  # doctest: +NORMALIZE_WHITESPACE
[('sweep', '203.0.113.66', None), ('mask_reply', '192.0.2.1', '203.0.113.66'),
 ('ping_of_death', '198.51.100.9', '192.0.2.50'), ('icmp_tunnel', '192.0.2.10', '203.0.113.200')]
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

import polars as pl

from icmpscope.detect import engine
from icmpscope.detect import plans as plans_of
from icmpscope.detect.base import ALERT_SCHEMA, Data, Whole, empty, icmp_of, part_of, several_files
from icmpscope.detect.floods import echo_floods
from icmpscope.detect.fragments import fragment_attacks
from icmpscope.detect.routers import infer_routers, redirects, router_adverts
from icmpscope.detect.smurf import smurf
from icmpscope.detect.sweeps import mask_replies, sweeps
from icmpscope.detect.tunnels import tunnels
from icmpscope.detect.unreachables import unreachable_scans
from icmpscope.detect.errors import error_floods
from icmpscope.detect.topology import topology
from icmpscope.detect.firewall import firewall_probes
from icmpscope.detect.fingerprint import fingerprinting
from icmpscope.detect.mtu import path_mtu
from icmpscope.detect.neighbors import infer_neighbors, neighbor_discovery
from icmpscope.detect.forged import forged_errors
from icmpscope.io import Capture

__all__ = ["ALERT_SCHEMA", "DETECTORS", "all", "echo_floods", "sweeps", "smurf", "fragment_attacks",
           "redirects", "router_adverts", "mask_replies", "unreachable_scans", "tunnels",
           "infer_routers", "defaults", "error_floods", "topology",
           "firewall_probes", "fingerprinting", "neighbor_discovery", "infer_neighbors", "path_mtu",
           "forged_errors"]

DETECTORS: tuple[Callable[..., pl.DataFrame], ...] = (
    echo_floods, sweeps, smurf, fragment_attacks, redirects, router_adverts, mask_replies,
    unreachable_scans, tunnels, error_floods, topology, firewall_probes, fingerprinting,
    neighbor_discovery, path_mtu, forged_errors)
# Detectors that read a Capture's other tables (datagrams and fragments; flows): a run over a
# Capture gives them the Capture, not its icmp rows.
FROM_CAPTURE: tuple[Callable[..., pl.DataFrame], ...] = (fragment_attacks, forged_errors)


def defaults() -> dict[str, object]:
    """Every keyword :func:`all` accepts, with its default.

    >>> defaults()["flood_rate"], defaults()["known_routers"]
    (50.0, None)
    """
    return {name: p.default for d in DETECTORS for name, p in inspect.signature(d).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def all(data: Data, **thresholds: object) -> pl.DataFrame:  # noqa: A001 - the SPEC's name
    """Every detector over ``data``; each keyword goes to the detectors that take it (shared
    ones such as ``known_routers`` and ``networks`` to all of them). Alerts in time order.

    Each detector reads only the rows of the groups that can reach its thresholds (see
    :mod:`icmpscope.detect.engine`), so detecting keeps up with reading. A LazyFrame (from
    ``scan_pcap``) is streamed twice, batch by batch: once for the bounds, once for the
    candidates' rows, so memory follows the detectors' state, not the capture."""
    options = {d: set(inspect.signature(d).parameters) - {"data"} for d in DETECTORS}
    unknown = set(thresholds).difference(*options.values())
    if unknown:
        raise TypeError(f"unknown threshold(s) {sorted(unknown)}; see icmpscope.detect.defaults()")
    if isinstance(data, pl.LazyFrame):
        from icmpscope.detect.stream import detect_streamed

        return detect_streamed(data, thresholds)
    if isinstance(data, Capture):
        icmp, several = data.icmp, data.stats.height > 1
    elif isinstance(data, pl.DataFrame):
        icmp, several = data, several_files(data)
    else:
        icmp_of(data)  # raises the TypeError that names what is expected
    if _quiet(data):
        return empty(several=several)
    plans = plans_of.of(DETECTORS, thresholds)
    parts = {d: engine.partial_bounds(icmp, plan, whole=True) for d, plan in plans.items()}
    computed = iter(pl.collect_all([q for qs in parts.values() for q in qs]))
    chosen = {d: engine.candidates([next(computed) for _ in parts[d]], plan) for d, plan in plans.items()}
    rows = {d: engine.select_rows(icmp, plans[d], chosen[d]) for d in DETECTORS}
    return run_parts(rows, engine.whole_of(icmp, several=several), thresholds, early=icmp,
                     capture=data if isinstance(data, Capture) else None)


def run_parts(rows: dict[Callable[..., pl.DataFrame], pl.DataFrame], whole: Whole,
              thresholds: dict[str, object], *, early: pl.DataFrame | None,
              capture: Capture | None = None) -> pl.DataFrame:
    """Each detector over its rows (the candidate groups' rows of a whole described by
    ``whole``); ``early`` holds the rows router inference learns from (those of the capture's
    first ``router_learning`` seconds, or more; ``None`` where ``whole`` has them already)."""
    wanted = {d: {k: v for k, v in thresholds.items() if k in inspect.signature(d).parameters}
              for d in DETECTORS}
    if thresholds.get("known_routers") is None and any(
            not rows[d].is_empty() for d in (redirects, router_adverts)):
        learn = {k: wanted[redirects].get(k, p.default) for k, p in inspect.signature(infer_routers).parameters.items()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY}
        key = (learn["router_learning"], learn["router_min_addresses"])
        if key not in whole.routers:
            whole.routers[key] = infer_routers(early, **learn)
    found = []
    with part_of(whole):
        for d in DETECTORS:
            if d in FROM_CAPTURE and capture is not None:
                found.append(d(capture, **wanted[d]))
            elif not rows[d].is_empty():
                found.append(d(rows[d], **wanted[d]))
    if not found:
        return empty(several=whole.several)
    return pl.concat(found).sort("start", "kind", "src", "dst", nulls_last=True)


def _quiet(data: Data) -> bool:
    """Nothing any detector looks at: no ICMP message and no fragmented datagram."""
    if isinstance(data, Capture):
        return data.icmp.is_empty() and data.datagrams.is_empty()
    return isinstance(data, pl.DataFrame) and data.is_empty()
