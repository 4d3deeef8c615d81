"""icmpscope: ICMP security analytics over pcap/pcapng captures.

>>> import icmpscope as ic
>>> cap = ic.read_pcap(ic.synth.demo_capture_path())  # doctest: +SKIP
>>> cap.icmp.group_by("icmp_type").len()              # doctest: +SKIP
"""
from icmpscope import detect, synth
from icmpscope.echo import echo_pairs
from icmpscope.io import Capture, CaptureFormatError, read_pcap

__all__ = ["Capture", "CaptureFormatError", "detect", "echo_pairs", "read_pcap", "synth"]
