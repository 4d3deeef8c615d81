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

from icmpscope.detect.base import ALERT_SCHEMA, Data, empty, several_files
from icmpscope.detect.floods import echo_floods
from icmpscope.detect.fragments import fragment_attacks
from icmpscope.detect.routers import infer_routers, redirects, router_adverts
from icmpscope.detect.smurf import smurf
from icmpscope.detect.sweeps import mask_replies, sweeps
from icmpscope.detect.tunnels import tunnels
from icmpscope.detect.unreachables import unreachable_scans
from icmpscope.io import Capture

__all__ = ["ALERT_SCHEMA", "DETECTORS", "all", "echo_floods", "sweeps", "smurf", "fragment_attacks",
           "redirects", "router_adverts", "mask_replies", "unreachable_scans", "tunnels",
           "infer_routers", "defaults"]

DETECTORS: tuple[Callable[..., pl.DataFrame], ...] = (
    echo_floods, sweeps, smurf, fragment_attacks, redirects, router_adverts, mask_replies,
    unreachable_scans, tunnels)


def defaults() -> dict[str, object]:
    """Every keyword :func:`all` accepts, with its default.

    >>> defaults()["flood_rate"], defaults()["known_routers"]
    (50.0, None)
    """
    return {name: p.default for d in DETECTORS for name, p in inspect.signature(d).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def all(data: Data, **thresholds: object) -> pl.DataFrame:  # noqa: A001 - the SPEC's name
    """Every detector over ``data``; each keyword goes to the detectors that take it (shared
    ones such as ``known_routers`` and ``networks`` to all of them). Alerts in time order."""
    options = {d: set(inspect.signature(d).parameters) - {"data"} for d in DETECTORS}
    unknown = set(thresholds).difference(*options.values())
    if unknown:
        raise TypeError(f"unknown threshold(s) {sorted(unknown)}; see icmpscope.detect.defaults()")
    if isinstance(data, pl.LazyFrame):
        data = data.collect()  # read the capture once, not once per detector
    if _quiet(data):
        return empty(several=several_files(data))
    found = [d(data, **{k: v for k, v in thresholds.items() if k in options[d]}) for d in DETECTORS]
    return pl.concat(found).sort("start", "kind", "src", "dst", nulls_last=True)


def _quiet(data: Data) -> bool:
    """Nothing any detector looks at: no ICMP message and no fragmented datagram."""
    if isinstance(data, Capture):
        return data.icmp.is_empty() and data.datagrams.is_empty()
    return isinstance(data, pl.DataFrame) and data.is_empty()
