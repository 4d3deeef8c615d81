"""The `icmp` columns of the carrier header (tos, df, ip_id), of quoted datagrams (inner_ttl,
quoted_len) and of neighbour discovery (nd_target, nd_flags, lladdr, ra_mtu, routes), on crafted
captures."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope import synth as s

T0 = 1_700_000_000_000_000_000
A, B = "2001:db8::a", "2001:db8::b"
MAC = "02:aa:bb:cc:dd:ee"
NEW = ["tos", "df", "ip_id", "inner_ttl", "quoted_len", "nd_target", "nd_flags", "lladdr", "ra_mtu", "routes"]
UDP = s.ipv4("10.1.1.1", "10.2.2.2", s.udp(5353, 53, b"q", src="10.1.1.1", dst="10.2.2.2"), proto=17, ttl=9)
UDP6 = s.ipv6(A, B, s.udp(4000, 33434, b"", src=A, dst=B), next_header=17, hop_limit=3)


def _rows(path: Path) -> list[dict]:
    icmp = ic.read_pcap(path).icmp
    return icmp.with_columns(pl.col(pl.Categorical).cast(pl.String)).select(NEW).to_dicts()


def _one(tmp_path: Path, packet: bytes, **write) -> dict:
    rows = _rows(s.write_pcap(tmp_path / "one.pcap", [s.Frame(T0, s.ethernet(packet))], **write))
    assert len(rows) == 1
    return rows[0]


NONE = dict.fromkeys(NEW)


@pytest.mark.parametrize("packet,expected", [
    # nmap -O's IE pair: DF and code 9, then TOS 4.
    (s.ipv4("10.0.0.1", "10.0.0.2", s.icmpv4(8, 9, b"\0" * 120, rest=b"\x01\x02\x01\x27"), df=True, ident=0xbeef),
     dict(tos=0, df=True, ip_id=0xbeef)),
    (s.ipv4("10.0.0.1", "10.0.0.2", s.echo_request(1, 1, b"\0" * 150), tos=4, ident=7), dict(tos=4, df=False, ip_id=7)),
    (s.ipv4("10.0.0.1", "10.0.0.2", s.time_exceeded(0, UDP), tos=0xc0),
     dict(tos=0xc0, df=False, ip_id=0, inner_ttl=9, quoted_len=len(UDP))),
    # RFC 792's quote: the header and 8 bytes.
    (s.ipv4("10.0.0.1", "10.0.0.2", s.dest_unreachable(3, UDP[:28])), dict(tos=0, df=False, ip_id=0, inner_ttl=9, quoted_len=28)),
    (s.ipv6(B, A, s.echo_request6(1, 1, src=B, dst=A), traffic_class=0xb8), dict(tos=0xb8)),
    (s.ipv6(B, A, s.packet_too_big(1280, UDP6, src=B, dst=A)), dict(tos=0, inner_ttl=3, quoted_len=len(UDP6))),
    (s.ipv6("fe80::1", "fe80::2", s.redirect6("fe80::fe", B, quoted=UDP6, target_mac=MAC, src="fe80::1", dst="fe80::2"),
            hop_limit=255),
     dict(tos=0, inner_ttl=3, quoted_len=len(UDP6), nd_target="fe80::fe", lladdr=MAC)),
    (s.ipv6("fe80::1", "ff02::1:ff00:2", s.neighbor_solicit("fe80::2", src_mac=MAC, src="fe80::1"), hop_limit=255),
     dict(tos=0, nd_target="fe80::2", lladdr=MAC)),
    # DAD: from ::, no link-layer option.
    (s.ipv6("::", "ff02::1:ff00:2", s.neighbor_solicit("fe80::2", src="::"), hop_limit=255), dict(tos=0, nd_target="fe80::2")),
    (s.ipv6("fe80::2", "fe80::1", s.neighbor_advert("fe80::2", router=True, target_mac=MAC, src="fe80::2", dst="fe80::1")),
     dict(tos=0, nd_target="fe80::2", nd_flags=0xe0, lladdr=MAC)),
    (s.ipv6("fe80::2", "ff02::1", s.neighbor_advert("2001:db8::2", solicited=False, src="fe80::2", dst="ff02::1")),
     dict(tos=0, nd_target="2001:db8::2", nd_flags=0x20)),
    (s.ipv6("fe80::1", "ff02::2", s.router_solicit6(src_mac=MAC, src="fe80::1")), dict(tos=0, lladdr=MAC)),
    (s.ipv6("fe80::1", "ff02::1", s.router_advert6(flags=0xc8, mtu=1280, routes=[("::", 0), ("2001:db8:5::", 48),
                                                                                  ("2001:db8:6:7:8::", 80)],
                                                   prefixes=[("2001:db8:1::", 64)], src_mac=MAC, src="fe80::1")),
     dict(tos=0, nd_flags=0xc8, lladdr=MAC, ra_mtu=1280, routes=["::/0", "2001:db8:5::/48", "2001:db8:6:7:8::/80"])),
    (s.ipv6("fe80::1", "ff02::1", s.router_advert6(src="fe80::1")), dict(tos=0, nd_flags=0, routes=[])),
])
def test_new_columns(tmp_path: Path, packet: bytes, expected: dict) -> None:
    assert _one(tmp_path, packet) == {**NONE, **expected}


def test_quoted_len_is_what_the_message_carries_not_what_was_captured(tmp_path: Path) -> None:
    big = s.ipv4("10.1.1.1", "10.2.2.2", s.udp(1, 2, b"\0" * 500, src="10.1.1.1", dst="10.2.2.2"), proto=17, ttl=9)
    packet = s.ipv4("10.0.0.1", "10.0.0.2", s.time_exceeded(0, big))
    row = _one(tmp_path, packet, snaplen=14 + 20 + 8 + 20)
    assert (row["quoted_len"], row["inner_ttl"]) == (len(big), 9)
    # A quote of more than 128 bytes whose datagram claims no more than 128 is taken for
    # RFC 4884's compatibility mode, as tshark takes it: 128 quoted, an extension after.
    packet = s.ipv4("10.0.0.1", "10.0.0.2", s.time_exceeded(0, UDP + b"\0" * 500))
    assert _one(tmp_path, packet)["quoted_len"] == 128


def test_reassembled_message_has_the_completing_fragments_header(tmp_path: Path) -> None:
    big = s.ipv4("10.0.0.1", "10.0.0.2", s.echo_request(1, 1, b"x" * 3000), ident=0x4242, tos=0x10)
    frames = [s.Frame(T0 + i, s.ethernet(f)) for i, f in enumerate(s.fragment_ipv4(big, size=1480))]
    rows = _rows(s.write_pcap(tmp_path / "frag.pcap", frames))
    assert [(r["tos"], r["df"], r["ip_id"]) for r in rows] == [(0x10, False, 0x4242)]


def test_nd_options_cut_at_every_byte(tmp_path: Path) -> None:
    """A neighbour advertisement cut short anywhere, by the snaplen or by its own declared
    length: no panic, the fields wholly there, nulls for the rest (or an errors row when even
    the ICMP header is gone)."""
    na = s.neighbor_advert("fe80::2", target_mac=MAC, options=bytes([1, 0, 0, 0, 0, 0, 0, 0]), src="fe80::2", dst="fe80::1")
    for cut in range(len(na) + 1):
        for how in ("snaplen", "declared"):
            if how == "snaplen":
                packet = s.ipv6("fe80::2", "fe80::1", na)
                path = s.write_pcap(tmp_path / f"{how}{cut}.pcap", [s.Frame(T0, s.ethernet(packet))], snaplen=14 + 40 + cut)
            else:
                packet = s.ipv6("fe80::2", "fe80::1", na[:cut])
                path = s.write_pcap(tmp_path / f"{how}{cut}.pcap", [s.Frame(T0, s.ethernet(packet))])
            cap = ic.read_pcap(path)
            if cut < 2:
                assert cap.icmp.height == 0 and cap.errors.height == 1, (how, cut)
                continue
            row = cap.icmp.with_columns(pl.col(pl.Categorical).cast(pl.String)).row(0, named=True)
            assert row["nd_target"] == ("fe80::2" if cut >= 24 else None), (how, cut)
            assert row["nd_flags"] == (0x60 if cut >= 5 else None), (how, cut)
            assert row["lladdr"] == (MAC if cut >= 32 else None), (how, cut)


def test_projection_builds_only_the_new_columns_asked_for(tmp_path: Path) -> None:
    packet = s.ipv6("fe80::2", "fe80::1", s.neighbor_advert("fe80::2", target_mac=MAC, src="fe80::2", dst="fe80::1"))
    path = s.write_pcap(tmp_path / "na.pcap", [s.Frame(T0, s.ethernet(packet))])
    got = ic.scan_pcap(path).select("lladdr", "nd_flags", "tos").collect()
    assert got.with_columns(pl.col("lladdr").cast(pl.String)).to_dicts() == [dict(lladdr=MAC, nd_flags=0x60, tos=0)]
    assert ic.scan_pcap(path).select("routes").collect()["routes"].to_list() == [None]


def test_empty_tables_know_the_new_columns(tmp_path: Path) -> None:
    icmp = ic.read_pcap(s.write_pcap(tmp_path / "empty.pcap", [])).icmp
    assert {c: icmp.schema[c] for c in NEW} == {
        "tos": pl.UInt8, "df": pl.Boolean, "ip_id": pl.UInt16, "inner_ttl": pl.UInt8, "quoted_len": pl.UInt32,
        "nd_target": pl.Categorical, "nd_flags": pl.UInt8, "lladdr": pl.Categorical, "ra_mtu": pl.UInt32,
        "routes": pl.List(pl.String),
    }


def test_ipv4_only_columns_are_null_on_ipv6_rows_whatever_is_projected(tmp_path: Path) -> None:
    frames = [s.Frame(T0, s.ethernet(s.ipv4("10.0.0.1", "10.0.0.2", s.echo_request(1, 1), df=True, ident=5))),
              s.Frame(T0 + 1, s.ethernet(s.ipv6(A, B, s.echo_request6(1, 1, src=A, dst=B))))]
    path = s.write_pcap(tmp_path / "mixed.pcap", frames)
    want = {"df": [True, None], "ip_id": [5, None], "ip_version": [4, 6]}
    for columns in (["df"], ["ip_id"], ["ip_id", "df"], ["ip_version", "df", "ip_id"]):
        got = ic.scan_pcap(path).select(columns).collect()
        assert got.to_dict(as_series=False) == {c: want[c] for c in columns}, columns
    assert ic.read_pcap(path).icmp.select("df", "ip_id").rows() == [(True, 5), (None, None)]
