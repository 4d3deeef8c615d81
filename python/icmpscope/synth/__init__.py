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

# Scenarios stay under `synth.scenarios` (their names, e.g. `mask_reply`, would shadow packet
# builders); the demo sample is used often enough to sit here too.
from . import scenarios
from .scenarios import DEMO_START_NS, demo_frames, write_demo

__all__ = [*packets.__all__, *tunnels.__all__, *writer.__all__, "scenarios", "DEMO_START_NS", "demo_frames", "write_demo"]
