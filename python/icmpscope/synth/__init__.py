"""Craft pcap and pcapng captures with exact, known values (pure Python, stdlib only).

>>> import icmpscope.synth as synth
>>> packet = synth.ethernet(synth.ping("10.0.0.1", "10.0.0.2"))
>>> len(synth.pcapng_bytes([synth.Frame(ts=1_700_000_000_000_000_000, data=packet)]))
156
"""

from . import packets, tunnels, writer
from .packets import *  # noqa: F403
from .tunnels import *  # noqa: F403
from .writer import *  # noqa: F403

try:
    from . import scenarios
    from .scenarios import *  # noqa: F403
except ModuleNotFoundError as exc:  # the scenarios module is optional while it is being written
    if exc.name != f"{__name__}.scenarios":
        raise
    _scenarios_all: list[str] = []
else:
    _scenarios_all = list(scenarios.__all__)

__all__ = [*packets.__all__, *tunnels.__all__, *writer.__all__, *_scenarios_all]
