"""Reconnaissance and error floods (issue 19): error_floods, topology, firewall_probes and
fingerprinting, each on a crafted capture read three ways (a Capture, its icmp DataFrame, a
scan_pcap LazyFrame), with exact values, and each threshold keyword moving the result just
where it says."""
from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope.synth import scenarios as sc
from icmpscope.synth.packets import (echo_request6, ethernet, icmpv4, icmpv6, ipv4, ipv6, timestamp_request,
                                     udp)
from icmpscope.synth.writer import Frame, write_pcap

Detector = Callable[..., pl.DataFrame]


def every_form(detector: Detector, built: sc.Scenario, tmp_path: Path, **keywords) -> pl.DataFrame:
    """``detector`` over ``built`` read as a Capture, as its icmp DataFrame and streamed from
    scan_pcap: the three must agree; the Capture's alerts are returned."""
    path = built.write(tmp_path / f"{built.name}.pcap")
    cap = ic.read_pcap(path)
    found = detector(cap, **keywords)
    assert detector(cap.icmp, **keywords).equals(found)
    assert detector(ic.scan_pcap(path), **keywords).equals(found)
    return found


def only(found: pl.DataFrame) -> dict:
    assert found.height == 1, found
    return found.row(0, named=True)


def check(row: dict, built: sc.Scenario, packets: int) -> None:
    """The alert is the scenario's one expected alert: kind, src, dst, technique, frames."""
    (expected,) = built.expected
    assert (row["kind"], row["src"], row["dst"], row["technique"]) == expected[:4]
    assert row["frames"] == list(expected.frames)
    assert row["packets"] == packets


def capture(tmp_path: Path, packets: list[tuple[float, bytes]], name: str = "c.pcap") -> ic.Capture:
    """Packets at seconds from the demo start, in Ethernet frames, read back."""
    frames = [Frame(sc.DEMO_START_NS + round(at * 1e9), ethernet(p)) for at, p in packets]
    return ic.read_pcap(write_pcap(tmp_path / name, frames, nanosecond=True))


# --------------------------------------------------------------------------- error_floods

def test_error_flood(tmp_path: Path) -> None:
    built = sc.blacknurse()
    row = only(every_form(ic.detect.error_floods, built, tmp_path))
    check(row, built, 3000)  # every unreachable of the flood; the gateway pings are no errors
    assert row["detail"].startswith("3000 ICMP errors (type/code 3/3) in 1.5 s, about 2001/s, "
                                    "from 3000 source(s) (e.g. ")
    assert row["detail"].endswith("; threshold 1000.0/s over 1.0 s")


def test_error_flood_rate_edge(tmp_path: Path) -> None:
    # 1000 unreachables 1 ms apart (a jitter of under 0.1 ms) all fit in one second: 1000/s.
    assert only(ic.detect.error_floods(sc.blacknurse(count=1000, rate=1000.0).read()))["packets"] == 1000
    assert ic.detect.error_floods(sc.blacknurse(count=999, rate=1000.0).read()).is_empty()
    cap = sc.blacknurse(count=1000, rate=1000.0).read()
    assert ic.detect.error_floods(cap, error_flood_rate=1001.0).is_empty()
    # Over half a second, 500 of them: 1000/s still; 1001/s is out of reach in any window.
    assert only(ic.detect.error_floods(cap, error_flood_window=0.5))["packets"] == 1000
    assert ic.detect.error_floods(cap, error_flood_window=0.5, error_flood_rate=1004.0).is_empty()


# --------------------------------------------------------------------------- topology

def test_topology_mapping(tmp_path: Path) -> None:
    built = sc.topology_mapping()
    row = only(every_form(ic.detect.topology, built, tmp_path))
    # 12 destinations, 5 to 8 hops (the seed's draw), three probes per TTL: 3 x 78 hops.
    check(row, built, 234)
    assert row["detail"].startswith("234 time-exceeded messages in 22.5 s from 56 routers (192.0.2.1, "
                                    "198.51.100.2, ")
    assert row["detail"].endswith("for probes to 12 destinations (203.0.113.10, 203.0.113.17, 203.0.113.24, "
                                  "203.0.113.31, 203.0.113.38…)")


def test_topology_thresholds(tmp_path: Path) -> None:
    assert only(ic.detect.topology(sc.topology_mapping(targets=10).read()))["src"] == "192.0.2.40"
    assert ic.detect.topology(sc.topology_mapping(targets=9).read()).is_empty()
    cap = sc.topology_mapping().read()
    assert not ic.detect.topology(cap, topology_min_targets=12).is_empty()
    assert ic.detect.topology(cap, topology_min_targets=13).is_empty()
    assert not ic.detect.topology(cap, topology_min_routers=56).is_empty()
    assert ic.detect.topology(cap, topology_min_routers=57).is_empty()
    # 78 (destination, router) pairs over 12 destinations: 6.5 routers each.
    assert not ic.detect.topology(cap, topology_min_hops=6.5).is_empty()
    assert ic.detect.topology(cap, topology_min_hops=6.51).is_empty()


@pytest.mark.parametrize("build", [sc.mtr, sc.scheduled_traceroutes, sc.traceroute, sc.udp_traceroute])
def test_traceroutes_map_no_topology(build, tmp_path: Path) -> None:
    assert every_form(ic.detect.topology, build(), tmp_path).is_empty()


# --------------------------------------------------------------------------- firewall_probes

def test_firewalking(tmp_path: Path) -> None:
    built = sc.firewalking()
    row = only(every_form(ic.detect.firewall_probes, built, tmp_path))
    check(row, built, 28)  # 14 ports let through, a TCP and a UDP probe to each
    assert row["detail"] == ("firewalking: 28 time-exceeded messages in 2.7 s from 198.51.100.129, one hop past "
                             "the gateway, for probes to 28 services of 198.51.100.140 (tcp/21, udp/21, tcp/22, "
                             "udp/22, tcp/23…) that crossed it")


def test_firewalking_thresholds() -> None:
    # 5 open ports: 10 services, the default; 4 ports: 8.
    assert only(ic.detect.firewall_probes(sc.firewalking(open_ports=5).read()))["packets"] == 10
    assert ic.detect.firewall_probes(sc.firewalking(open_ports=4).read()).is_empty()
    cap = sc.firewalking().read()
    assert only(ic.detect.firewall_probes(cap, firewalk_min_ports=28))["packets"] == 28
    assert ic.detect.firewall_probes(cap, firewalk_min_ports=29).is_empty()
    # The 28 answers come 0.1 s apart: 20 of them within 1.95 s, never 21.
    assert only(ic.detect.firewall_probes(cap, firewalk_window=1.95, firewalk_min_ports=20))["packets"] == 28
    assert ic.detect.firewall_probes(cap, firewalk_window=1.95, firewalk_min_ports=21).is_empty()


def test_prohibited_storm(tmp_path: Path) -> None:
    built = sc.prohibited_storm()
    row = only(every_form(ic.detect.firewall_probes, built, tmp_path))
    check(row, built, 60)
    assert row["detail"] == ("60 administratively-prohibited unreachables (type/code 3/13) in 5.9 s from 1 "
                             "filter(s) (192.0.2.1) refuse probes to 60 services of 2 host(s) (192.0.2.80 tcp/1, "
                             "192.0.2.81 tcp/1, 192.0.2.80 tcp/38, 192.0.2.81 tcp/38, 192.0.2.80 tcp/75…)")


def test_prohibited_thresholds() -> None:
    assert only(ic.detect.firewall_probes(sc.prohibited_storm(ports=5).read()))["packets"] == 10
    assert ic.detect.firewall_probes(sc.prohibited_storm(ports=4).read()).is_empty()
    cap = sc.prohibited_storm().read()
    assert only(ic.detect.firewall_probes(cap, prohibited_min_probes=60))["packets"] == 60
    assert ic.detect.firewall_probes(cap, prohibited_min_probes=61).is_empty()


def test_prohibited_storm6(tmp_path: Path) -> None:
    """ICMPv6 type 1 codes 1, 5 and 6, one per host: one storm over the three hosts."""
    built = sc.prohibited_storm6()
    row = only(every_form(ic.detect.firewall_probes, built, tmp_path))
    check(row, built, 60)
    assert row["detail"] == (
        "60 administratively-prohibited unreachables (type/code 1/1, 1/5, 1/6) in 3.9 s from 1 filter(s) "
        "(2001:db8:1::1) refuse probes to 60 services of 3 host(s) (2001:db8:1::80 tcp/1, 2001:db8:1::81 tcp/1, "
        "2001:db8:1::82 tcp/1, 2001:db8:1::80 tcp/38, 2001:db8:1::81 tcp/38…)")


@pytest.mark.parametrize("code", [1, 5, 6])
def test_each_prohibited_v6_code_alone(code: int) -> None:
    """Ten refusals of one host's ports with one code are a filter mapped (dst the host), not
    a port scan."""
    found = ic.detect.all(sc.prohibited_storm6(ports=10, codes=(code,)).read())
    assert found.select("kind", "src", "dst", "packets").rows() == [
        ("firewall_probe", "2001:db8:77::7", "2001:db8:1::80", 10)]
    assert f"(type/code 1/{code})" in found["detail"][0]


@pytest.mark.parametrize("code", [0, 3, 4])
def test_other_v6_unreachables_are_no_filter(code: int) -> None:
    """No route, address and port unreachables for ten ports of a host are its port scan."""
    found = ic.detect.all(sc.prohibited_storm6(ports=10, codes=(code,)).read())
    assert found.select("kind", "src", "dst", "technique", "packets").rows() == [
        ("unreachable_scan", "2001:db8:77::7", "2001:db8:1::80", "T1046", 10)]


def test_prohibited_v6_codes_as_tshark_reads_them(tshark_icmp, tmp_path: Path) -> None:
    path = sc.prohibited_storm6().write(tmp_path / "p6.pcap")
    theirs = tshark_icmp(path, ["icmpv6.type", "icmpv6.code"])
    ours = ic.read_pcap(path).icmp
    assert {f: (int(r["icmpv6.type"]), int(r["icmpv6.code"])) for f, r in theirs.items()} == dict(
        zip(ours["frame"], zip(ours["icmp_type"], ours["icmp_code"])))
    assert set(ours["icmp_code"]) == {1, 5, 6}


@pytest.mark.parametrize("build", [sc.blocked_service, sc.blocked_service6, sc.mtr_udp])
def test_refused_services_probe_no_firewall(build, tmp_path: Path) -> None:
    assert every_form(ic.detect.firewall_probes, build(), tmp_path).is_empty()


# --------------------------------------------------------------------------- fingerprinting

def test_nmap_ie_pair(tmp_path: Path) -> None:
    built = sc.nmap_os()
    row = only(every_form(ic.detect.fingerprinting, built, tmp_path))
    # Discovery's echo and timestamp, then the IE pair: the first of each kind of query.
    check(row, built, 4)
    assert row["detail"] == (
        "4 queries in 1.3 s (echo code 0 TOS 0, timestamp, echo code 9 TOS 0 DF, echo code 0 TOS 4 DF): "
        "1 echo request(s) with a non-zero code, 0 with ECN bits set, 3 echo shape(s), 2 query type(s), "
        "nmap -O's IE pair; 4 answer(s) (echo reply code 0 TOS 0, timestamp reply, echo reply code 9 TOS 0, "
        "echo reply code 0 TOS 4)")
    icmp = built.read().icmp
    ie = icmp.filter(pl.col("frame").is_in(row["frames"][2:]))
    assert ie.select("icmp_code", "tos", "df", "icmp_seq", "payload_len").rows() == [
        (9, 0, True, 295, 120), (0, 4, True, 296, 150)]


def test_xprobe2(tmp_path: Path) -> None:
    built = sc.xprobe2()
    row = only(every_form(ic.detect.fingerprinting, built, tmp_path))
    check(row, built, 5)
    assert row["detail"] == (
        "5 queries in 0.8 s (echo code 0 TOS 0, echo code 123 TOS 6 DF, timestamp, address mask, information): "
        "1 echo request(s) with a non-zero code, 1 with ECN bits set, 2 echo shape(s), 4 query type(s); "
        "3 answer(s) (echo reply code 0 TOS 0, timestamp reply)")


NONE = 10**6  # a threshold no capture here reaches, to test one signal alone


def test_crafted_threshold() -> None:
    cap = sc.xprobe2().read()
    alone = {"fingerprint_min_shapes": NONE, "fingerprint_min_queries": NONE}
    row = only(ic.detect.fingerprinting(cap, fingerprint_min_crafted=1, **alone))
    # The code-123 request and the window before it: the plain echo half a second earlier.
    assert (row["packets"], row["frames"]) == (2, [1, 3])
    assert ic.detect.fingerprinting(cap, fingerprint_min_crafted=2, **alone).is_empty()


def test_shapes_threshold_and_window() -> None:
    cap = sc.nmap_os().read()
    alone = {"fingerprint_min_crafted": NONE, "fingerprint_min_queries": NONE}
    assert only(ic.detect.fingerprinting(cap, fingerprint_min_shapes=3, **alone))["packets"] == 4
    assert ic.detect.fingerprinting(cap, fingerprint_min_shapes=4, **alone).is_empty()
    # The IE probes are 0.1 s apart, discovery's echo 1.2 s before them.
    row = only(ic.detect.fingerprinting(cap, fingerprint_window=0.11, **alone))
    assert (row["packets"], row["frames"]) == (2, [5, 7])
    assert ic.detect.fingerprinting(cap, fingerprint_window=0.09, **alone).is_empty()


def test_queries_threshold_and_window() -> None:
    cap = sc.xprobe2().read()
    alone = {"fingerprint_min_crafted": NONE, "fingerprint_min_shapes": NONE}
    assert only(ic.detect.fingerprinting(cap, fingerprint_min_queries=4, **alone))["packets"] == 5
    assert ic.detect.fingerprinting(cap, fingerprint_min_queries=5, **alone).is_empty()
    # Echo (0.5 s), timestamp (0.6 s), mask (0.7 s), information (0.8 s): three within 0.25 s.
    row = only(ic.detect.fingerprinting(cap, fingerprint_window=0.25, **alone))
    assert (row["packets"], row["frames"]) == (4, [3, 5, 7, 8])
    assert ic.detect.fingerprinting(cap, fingerprint_window=0.15, **alone).is_empty()


def _echo(code: int = 0, tos: int = 0, *, checksum: int | None = None) -> bytes:
    msg = icmpv4(8, code, bytes(56), rest=struct.pack("!HH", 77, 1), checksum=checksum)
    return ipv4("198.51.100.7", "192.0.2.30", msg, tos=tos, df=True)


@pytest.mark.parametrize(("code", "tos", "alerts"), [
    (9, 0, True),      # a code no ping sends
    (0, 1, True),      # ECT(1): ICMP negotiates no ECN
    (0, 3, True),      # CE
    (0, 0xB8, False),  # DSCP EF alone: a marked ping
    (0, 4, False),     # DSCP LE alone (nmap's second IE probe, alone)
])
def test_one_echo_request(code: int, tos: int, alerts: bool, tmp_path: Path) -> None:
    cap = capture(tmp_path, [(0.0, _echo(code, tos))])
    found = ic.detect.fingerprinting(cap)
    assert found.select("kind", "src", "dst", "packets", "frames").rows() == (
        [("os_fingerprint", "198.51.100.7", "192.0.2.30", 1, [1])] if alerts else [])


def test_a_bad_checksum_makes_no_probe(tmp_path: Path) -> None:
    good = capture(tmp_path, [(0.0, _echo(9))], "good.pcap")
    bad = capture(tmp_path, [(0.0, _echo(9, checksum=0x1234))], "bad.pcap")
    assert bad.icmp["checksum_ok"].to_list() == [False]
    assert ic.detect.fingerprinting(bad).is_empty()
    assert only(ic.detect.fingerprinting(good))["packets"] == 1


def test_icmpv6_echo_with_a_code_or_ecn(tmp_path: Path) -> None:
    src, dst = "2001:db8:9::7", "2001:db8:1::30"
    coded = icmpv6(128, 1, bytes(16), rest=struct.pack("!HH", 5, 1), src=src, dst=dst)
    plain = echo_request6(5, 2, bytes(16), src=src, dst=dst)
    cap = capture(tmp_path, [(0.0, ipv6(src, dst, coded)), (5.0, ipv6(src, dst, plain, traffic_class=0x02)),
                             (60.0, ipv6(src, dst, plain, traffic_class=0x20))])
    row = only(ic.detect.fingerprinting(cap))
    assert (row["src"], row["dst"], row["packets"], row["frames"]) == (src, dst, 2, [1, 2])
    assert "1 echo request(s) with a non-zero code, 1 with ECN bits set, 2 echo shape(s)" in row["detail"]


def test_three_query_types_within_the_window(tmp_path: Path) -> None:
    """Echo, timestamp and UDP to a closed port are two query types; an address mask request
    9 s later makes three within 10 s, 11 s later it does not."""
    a, b = "198.51.100.7", "192.0.2.30"
    from icmpscope.synth.packets import mask_request

    def probes(mask_at: float) -> list[tuple[float, bytes]]:
        return [(0.0, _echo()), (0.5, ipv4(a, b, timestamp_request(1, 1))),
                (0.7, ipv4(a, b, udp(53, 65535, src=a, dst=b), proto=17)),
                (0.5 + mask_at, ipv4(a, b, mask_request(2, 1)))]

    row = only(ic.detect.fingerprinting(capture(tmp_path, probes(9.0), "in.pcap")))
    assert (row["packets"], row["frames"]) == (3, [1, 2, 4])
    assert ic.detect.fingerprinting(capture(tmp_path, probes(11.0), "out.pcap")).is_empty()


@pytest.mark.parametrize("build", [sc.shipped_pings, sc.dscp_monitoring, sc.hourly_timestamp, sc.monitoring,
                                   sc.windows_ping, sc.large_ping, sc.ping_sizes, sc.mtr, sc.broadcast_ping])
def test_pings_are_no_fingerprint(build, tmp_path: Path) -> None:
    assert every_form(ic.detect.fingerprinting, build(), tmp_path).is_empty()


def test_shipped_pings_are_as_shipped() -> None:
    """The look-alikes are what they claim: Linux DF set and 64-byte datagrams, Windows 32 bytes
    of the alphabet without DF at TTL 128, all code 0 and TOS 0."""
    icmp = sc.shipped_pings().read().icmp.filter(pl.col("icmp_type").is_in([8, 128]))
    shapes = (icmp.group_by(pl.col("src").cast(pl.String)).agg(
        pl.col("icmp_code").unique(), pl.col("tos").unique(), pl.col("df").unique(), pl.col("ttl").unique(),
        pl.col("payload_len").unique(), pl.len()).sort("src"))
    assert shapes.rows() == [("192.0.2.10", [0], [0], [True], [64], [56], 10),
                             ("192.0.2.11", [0], [0], [False], [128], [32], 4),
                             ("2001:db8:1::10", [0], [0], [None], [64], [56], 10)]


@pytest.mark.parametrize("keyword", ["fingerprint_min_shapes", "fingerprint_min_queries"])
def test_a_threshold_of_one_takes_every_pinger(keyword: str) -> None:
    """At 1, one shape (one query type) is enough: each pinging pair is one alert, alone and
    through detect.all's plan."""
    cap = sc.shipped_pings().read()
    found = ic.detect.fingerprinting(cap, **{keyword: 1})
    assert found.select("src", "dst", "packets").sort("src").rows() == [
        ("192.0.2.10", "203.0.113.200", 10), ("192.0.2.11", "203.0.113.200", 4),
        ("2001:db8:1::10", "2001:db8:2::200", 10)]
    assert ic.detect.all(cap, **{keyword: 1}).filter(pl.col("kind") == "os_fingerprint").equals(found)
