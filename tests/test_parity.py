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
from conftest import CAPTURES  # noqa: E402

MANIFEST = CAPTURES / "manifest.json"
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


IP_CARRIER_FIELDS = ["ip.dsfield", "ipv6.tclass", "ip.flags.df", "ip.id", "ip.ttl", "ipv6.hlim"]
ND_FIELDS = [
    "icmpv6.nd.ns.target_address", "icmpv6.nd.na.target_address", "icmpv6.nd.rd.target_address", "icmpv6.nd.na.flag",
    "icmpv6.nd.ra.flag", "icmpv6.opt.type", "icmpv6.opt.linkaddr", "icmpv6.opt.mtu", "icmpv6.opt.prefix",
    "icmpv6.opt.prefix.length",
]
ERROR_TYPES = {4: {3, 4, 5, 11, 12}, 6: {1, 2, 3, 4, 137}}
ND_TYPES = {133, 134, 135, 136, 137}


def _int(s: str) -> int | None:
    return int(s, 0) if s else None


def _tshark_new_columns(v: dict) -> dict:
    """The new `icmp` columns as tshark shows them for one frame: the carrier's occurrence of the
    IP fields (after any tunnel's headers) and the next one, the datagram an error quotes."""
    layers = v["layers"]
    carrier = max(i for i, p in enumerate(layers) if p in ("ip", "ipv6"))
    name = layers[carrier]
    nth = layers[:carrier].count(name)
    a = v["all"]

    def at(field: str, n: int) -> str:
        return a[field][n] if len(a[field]) > n else ""

    if name == "ip":
        row = dict(tos=_int(at("ip.dsfield", nth)), df=at("ip.flags.df", nth) in ("1", "True"), ip_id=_int(at("ip.id", nth)))
        inner_ttl = _int(at("ip.ttl", nth + 1))
    else:
        row = dict(tos=_int(at("ipv6.tclass", nth)), df=None, ip_id=None)
        inner_ttl = _int(at("ipv6.hlim", nth + 1))
    row["inner_ttl"] = inner_ttl
    if name == "ipv6":
        types = a["icmpv6.opt.type"]
        target = (v["icmpv6.nd.ns.target_address"] or v["icmpv6.nd.na.target_address"] or v["icmpv6.nd.rd.target_address"])
        na, ra = v["icmpv6.nd.na.flag"], v["icmpv6.nd.ra.flag"]
        prefixes = iter(zip(a["icmpv6.opt.prefix"], a["icmpv6.opt.prefix.length"]))
        routes = [f"{p}/{n}" for t in types if t in ("3", "24") for p, n in [next(prefixes, ("", ""))] if t == "24"]
        row.update(nd_target=target or None, nd_flags=_int(na) >> 24 if na else _int(ra),
                   # a MAC column: other link-layer addresses (a Teredo relay's 14 bytes) stay null
                   lladdr=next((m for m in a["icmpv6.opt.linkaddr"] if len(m) == 17), None), ra_mtu=_int(v["icmpv6.opt.mtu"]), routes=routes)
    return row


@pytest.mark.parametrize("entry", list(_field_params()))
def test_new_icmp_columns_equal_tshark(entry: dict, captures: Path, tshark_icmp) -> None:
    """tos, df, ip_id, inner_ttl and the neighbour discovery columns against tshark's fields."""
    path = captures / entry["file"]
    theirs = tshark_icmp(path, IP_CARRIER_FIELDS + ND_FIELDS + ["icmp.ext.version", "icmp.length.original_datagram"])
    icmp = _read(path).icmp.with_columns(pl.col("nd_target", "lladdr").cast(pl.String))
    mismatches = []
    for r in icmp.iter_rows(named=True):
        t = theirs[r["frame"]]
        want = _tshark_new_columns(t)
        version, kind = r["ip_version"], r["icmp_type"]
        got = {k: r[k] for k in ("tos", "df", "ip_id")}
        got["inner_ttl"] = r["inner_ttl"]
        if kind not in ERROR_TYPES[version] or r["inner_src"] is None:
            # tshark's next IP header is no quote here (a tunnel's), and ours is null.
            want["inner_ttl"] = got["inner_ttl"]
            assert r["inner_ttl"] is None or kind in ERROR_TYPES[version]
        if version == 6 and kind in ND_TYPES:
            got.update({k: r[k] for k in ("nd_target", "nd_flags", "lladdr", "ra_mtu")})
            got["routes"] = r["routes"] if kind == 134 else []
            if kind not in (134, 136):  # tshark has no flag byte for these
                want["nd_flags"] = got["nd_flags"] = None
        else:
            assert (r["nd_target"], r["nd_flags"], r["lladdr"], r["ra_mtu"], r["routes"]) == (None,) * 5
            for k in ("nd_target", "nd_flags", "lladdr", "ra_mtu", "routes"):
                want.pop(k, None)
        if kind in ERROR_TYPES[version] and kind != 137:
            # Where tshark shows an extension structure (RFC 4884), the quote ends where it
            # starts: at the length field's bytes, or at 128 in compatibility mode.
            got["quoted_len"] = r["quoted_len"]
            words = t["icmp.length.original_datagram"]
            want["quoted_len"] = (int(words) if words else 128) if t["icmp.ext.version"] else r["payload_len"]
        if got != want:
            mismatches.append((r["frame"], {k: (got.get(k), want.get(k)) for k in {*got, *want} if got.get(k) != want.get(k)}))
    assert mismatches == []
