"""icmpscope: ICMP security analytics over pcap/pcapng captures.

Names load on first use, so ``import icmpscope`` stays cheap (polars is imported by the first call).

>>> import icmpscope as ic, tempfile, os
>>> path = ic.synth.write_demo(os.path.join(tempfile.mkdtemp(), "demo.pcap"))
>>> cap = ic.read_pcap(path)
>>> cap.icmp.group_by("icmp_type").len().sort("icmp_type").rows()
[(0, 20), (8, 62), (17, 1), (18, 1)]
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from icmpscope import detect, io, synth
    from icmpscope.echo import echo_pairs
    from icmpscope.detect.quoted import error_flows
    from icmpscope.batch import analyze
    from icmpscope.io import Capture, CaptureFormatError, CaptureTruncatedWarning, read_pcap, scan_pcap
    from icmpscope.report import Report
    from icmpscope.watch import watch

# public name -> the module that defines it (a module itself where the two are the same)
_HOME = {
    "Capture": "icmpscope.io",
    "CaptureFormatError": "icmpscope.io",
    "CaptureTruncatedWarning": "icmpscope.io",
    "io": "icmpscope.io",
    "read_pcap": "icmpscope.io",
    "scan_pcap": "icmpscope.io",
    "analyze": "icmpscope.batch",
    "Report": "icmpscope.report",
    "synth": "icmpscope.synth",
    "detect": "icmpscope.detect",
    "echo_pairs": "icmpscope.echo",
    "error_flows": "icmpscope.detect.quoted",
    "watch": "icmpscope.watch",  # a module that calls as its function (see watch.py)
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'icmpscope' has no attribute {name!r}")
    module = importlib.import_module(home)
    value = module if home.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
