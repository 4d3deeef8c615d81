"""Against reality: our counts and fields equal tshark's on the shared corpus of real captures."""
from __future__ import annotations

import json
import subprocess
import warnings
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import polars as pl
import pytest

import icmpscope as ic

DIFFERENCES = json.loads((Path(__file__).parent / "data" / "tshark_differences.json").read_text())["files"]
MANIFEST = Path(__file__).resolve().parents[1].parent / "shared" / "captures" / "manifest.json"
ENTRIES = json.loads(MANIFEST.read_text())["files"] if MANIFEST.exists() else []
ID_SEQ_TYPES = {4: {0, 8, 13, 14, 15, 16, 17, 18, 37, 38}, 6: {128, 129}}


def _read(path: Path) -> ic.Capture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ic.io.CaptureTruncatedWarning)
        return ic.read_pcap(path)


def _params():
    for entry in ENTRIES:
        marks = []
        if entry["file"] in DIFFERENCES:
            marks.append(pytest.mark.xfail(reason=DIFFERENCES[entry["file"]], strict=True))
        yield pytest.param(entry, id=entry["file"], marks=marks)


@pytest.mark.parametrize("entry", list(_params()))
def test_counts_equal_tshark(entry: dict, captures: Path) -> None:
    cap = _read(captures / entry["file"])
    stats = cap.stats.row(0, named=True)
    assert stats["packets"] == stats["icmp"] + stats["fragment"] + stats["other"] + stats["undecodable"]
    assert stats["undecodable"] + stats["skipped_blocks"] <= cap.errors.height
    counts = {4: Counter(), 6: Counter()}
    for version, icmp_type, code in cap.icmp.select("ip_version", "icmp_type", "icmp_code").iter_rows():
        counts[version][f"{icmp_type}/{code}"] += 1
    assert (stats["packets"], dict(counts[4]), dict(counts[6])) == (
        entry["packets"],
        entry["icmpv4_by_type_code"],
        entry["icmpv6_by_type_code"],
    )


FIELDS = [
    "icmp.type", "icmp.code", "icmp.ident", "icmp.seq", "icmp.checksum.status", "icmpv6.type",
    "icmpv6.code", "icmpv6.echo.identifier", "icmpv6.echo.sequence_number", "icmpv6.checksum.status",
]


def _tshark_rows(tshark_icmp, path: Path) -> dict[int, tuple]:
    """Per ICMP frame, the fields of its outermost ICMP message and of the IP header carrying it
    (inside a tunnel, not the frame's first IP header)."""
    rows = {}
    for frame, v in tshark_icmp(path, FIELDS).items():
        version, src, dst, ttl = v["carrier"]
        p = "icmp" if v["icmp.type"] else "icmpv6"
        ident = v["icmp.ident"] if p == "icmp" else v["icmpv6.echo.identifier"]
        seq = v["icmp.seq"] if p == "icmp" else v["icmpv6.echo.sequence_number"]
        to_int = lambda s: int(s, 0) if s else None  # noqa: E731
        rows[frame] = (
            version, src, dst, ttl, to_int(v[f"{p}.type"]), to_int(v[f"{p}.code"]),
            to_int(ident), to_int(seq), v[f"{p}.checksum.status"] == "1",
        )
    return rows


def _field_params():
    for entry in ENTRIES:
        has_icmp = entry["icmpv4_by_type_code"] or entry["icmpv6_by_type_code"]
        if has_icmp and entry["file"] not in DIFFERENCES:
            yield pytest.param(entry, id=entry["file"])


@pytest.mark.parametrize("entry", list(_field_params()))
def test_fields_equal_tshark(entry: dict, captures: Path, tshark_icmp) -> None:
    path = captures / entry["file"]
    theirs = _tshark_rows(tshark_icmp, path)
    ours = {}
    for r in _read(path).icmp.with_columns(pl.col("src", "dst").cast(pl.String)).iter_rows(named=True):
        with_id = r["icmp_type"] in ID_SEQ_TYPES[r["ip_version"]]
        ours[r["frame"]] = (
            r["ip_version"], r["src"], r["dst"], r["ttl"], r["icmp_type"], r["icmp_code"],
            r["icmp_id"], r["icmp_seq"], r["checksum_ok"],
        )
        if not with_id:  # tshark's first icmp.ident may come from a quoted echo: compare ours only
            theirs[r["frame"]] = (*theirs.get(r["frame"], (None,) * 9)[:6], None, None, theirs.get(r["frame"], (None,) * 9)[8])
    assert ours == theirs


ADVERTS = {4: 9, 6: 134}


def _advert_params():
    for entry in ENTRIES:
        if any(k.startswith("9/") for k in entry["icmpv4_by_type_code"]) or any(
                k.startswith("134/") for k in entry["icmpv6_by_type_code"]):
            yield pytest.param(entry, id=entry["file"])


def _tshark_advertised(tshark: str, path: Path) -> dict[int, list[str]]:
    """Per frame whose outermost ICMP message is a router advertisement, what tshark shows it
    advertises: an ICMPv4 one's router addresses, an ICMPv6 one's Prefix Information options
    (type 3; other options, such as Route Information, also have prefixes) as prefix/length."""
    done = subprocess.run([tshark, "-n", "-r", str(path), "-Y", "icmp.type == 9 or icmpv6.type == 134", "-T", "pdml"],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 1, done.stderr
    found = {}
    for packet in ElementTree.fromstring(done.stdout).iter("packet"):
        frame = int(next(f for f in packet.iter("field") if f.get("name") == "frame.number").get("show"))
        proto = next(p for p in packet.iter("proto") if p.get("name") in ("icmp", "icmpv6"))
        fields = {f.get("name"): f for f in proto}
        if proto.get("name") == "icmp" and fields["icmp.type"].get("show") == "9":
            found[frame] = [f.get("show") for f in proto if f.get("name") == "icmp.router_address"]
        elif proto.get("name") == "icmpv6" and fields["icmpv6.type"].get("show") == "134":
            options = [{f.get("name"): f.get("show") for f in o} for o in proto if o.get("name") == "icmpv6.opt"]
            found[frame] = [f"{o['icmpv6.opt.prefix']}/{o['icmpv6.opt.prefix.length']}"
                            for o in options if o["icmpv6.opt.type"] == "3"]
    return found


@pytest.mark.parametrize("entry", list(_advert_params()))
def test_advertised_equals_tshark(entry: dict, captures: Path, tshark: str) -> None:
    path = captures / entry["file"]
    icmp = _read(path).icmp
    advert = pl.col("icmp_type") == pl.col("ip_version").replace_strict(ADVERTS)
    ours = dict(icmp.filter(advert).select("frame", "advertised").iter_rows())
    assert ours == _tshark_advertised(tshark, path)
    assert icmp.filter(~advert)["advertised"].null_count() == icmp.filter(~advert).height
