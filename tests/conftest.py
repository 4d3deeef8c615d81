import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

# Beside the checkout, or where ICMPSCOPE_CAPTURES says (a git worktree lives elsewhere).
CAPTURES = Path(os.environ.get("ICMPSCOPE_CAPTURES") or Path(__file__).resolve().parents[1].parent / "shared" / "captures")


@pytest.fixture(scope="session")
def captures() -> Path:
    """The shared corpus of real captures (skips cleanly where it is absent)."""
    if not (CAPTURES / "manifest.json").exists():
        pytest.skip("../shared/captures is not here")
    return CAPTURES


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed")
    return path


IP_FIELDS = {"ip": ("ip.src", "ip.dst", "ip.ttl"), "ipv6": ("ipv6.src", "ipv6.dst", "ipv6.hlim")}


@pytest.fixture(scope="session")
def tshark_icmp(tshark: str):
    """tshark's view of the ICMP frames of a capture: ``run(path, fields)`` maps each frame number
    to a dict with ``layers`` (frame.protocols up to the first ICMP layer), ``carrier`` and
    ``outer`` ((version, src, dst, ttl) of the IP header that carries the ICMP message, and of
    the frame's first IP header), the first occurrence of each of ``fields``, and under ``all``
    every occurrence of each. ``args`` go to tshark as they are (``-d`` "decode as" rules).
    """
    def run(path: Path, fields: Sequence[str] = (), args: Sequence[str] = ()) -> dict[int, dict]:
        names = ["frame.number", "frame.protocols", *IP_FIELDS["ip"], *IP_FIELDS["ipv6"], *fields]
        done = subprocess.run(
            [tshark, "-n", "-r", str(path), *args, "-Y", "icmp or icmpv6", "-T", "fields", "-E", "occurrence=a",
             "-E", "aggregator=;", *[a for f in names for a in ("-e", f)]],
            capture_output=True, text=True, check=False,
        )
        assert done.returncode != 1, done.stderr  # 1: bad arguments; 2 only says the file was cut short
        out = done.stdout
        frames = {}
        for line in out.splitlines():
            values = {n: v.split(";") if v else [] for n, v in zip(names, line.split("\t"))}
            protocols = values["frame.protocols"][0].split(":")
            first_icmp = min(i for i, p in enumerate(protocols) if p in ("icmp", "icmpv6"))
            layers = protocols[:first_icmp]
            ips = [i for i, p in enumerate(layers) if p in IP_FIELDS]

            def header(position: int) -> tuple:
                name = layers[position]
                nth = layers[:position].count(name)
                src, dst, ttl = (values[f][nth] for f in IP_FIELDS[name])
                return (4 if name == "ip" else 6, src, dst, int(ttl))

            record = {f: (values[f] or [""])[0] for f in fields}
            record.update(all={f: values[f] for f in fields}, layers=layers, carrier=header(ips[-1]) if ips else None,
                          outer=header(ips[0]) if ips else None)
            frames[int(values["frame.number"][0])] = record
        return frames

    return run
