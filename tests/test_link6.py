"""IPv6 on the link (issue #20): neighbour spoofing and DAD denial (neighbor_discovery),
router-advertisement floods (router_adverts), MTU attacks (path_mtu), and the router inference
that spoofed neighbour advertisements and tunnelled advertisements must not mislead. Exact
values on crafted captures; each detector on a Capture, its DataFrame and a scan_pcap
LazyFrame."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope.synth import packets as p
from icmpscope.synth import scenarios as sc
from icmpscope.synth.tunnels import over_udp, teredo

ATTACKER = sc.ATTACKER_MAC


def three_ways(build, detector, tmp_path: Path, **options) -> pl.DataFrame:
    """The detector's alerts on a Capture, asserted equal on its icmp DataFrame and on a
    scan_pcap LazyFrame of the same file."""
    path = build().write(tmp_path / "s.pcap")
    cap = ic.read_pcap(path)
    found = detector(cap, **options)
    assert found.equals(detector(cap.icmp, **options))
    assert found.equals(detector(ic.scan_pcap(path), **options))
    return found


def rows(found: pl.DataFrame) -> list[tuple]:
    return found.select("kind", "src", "dst", "packets", "technique", "frames").rows()


# --------------------------------------------------------------------------- the columns

def test_nd_columns_of_a_crafted_capture() -> None:
    """The racing advertisement of nd_spoofing: target, flags (solicited 0x40, override 0x20)
    and target link-layer option; a flood's advertisement: its MTU option and source MAC."""
    icmp = sc.nd_spoofing().read().icmp
    race = icmp.filter(pl.col("frame") == 12).select("icmp_type", "src", "nd_target", "nd_flags", "lladdr",
                                                     "src_mac")
    assert race.rows() == [(136, "2001:db8:1::10", "2001:db8:1::10", 0x60, ATTACKER, ATTACKER)]
    unsolicited = icmp.filter(pl.col("frame") == 14)
    assert unsolicited["nd_flags"].to_list() == [0x20] and unsolicited["dst"].to_list() == ["ff02::1"]
    advert = sc.ra_flood(count=1).read().icmp.filter(pl.col("icmp_type") == 134).tail(1)
    assert advert.select("ra_mtu", "router_lifetime").rows() == [(1500, 65535)]
    assert advert["lladdr"].to_list() == advert["src_mac"].to_list()


# --------------------------------------------------------------------------- nd_spoofing

def test_nd_spoofing_race_and_overrides(tmp_path: Path) -> None:
    found = three_ways(sc.nd_spoofing, ic.detect.neighbor_discovery, tmp_path)
    assert rows(found) == [("nd_spoofing", "2001:db8:1::10", None, 4, "T1557", [12, 14, 15, 16])]
    assert found["detail"][0] == (
        "4 neighbour advertisement(s) from MAC 02:00:00:00:0b:ad claiming 2001:db8:1::10 (1 solicited "
        "answers, 3 unsolicited overrides), which the link knows at another MAC: 2001:db8:1::10 at "
        "02:00:00:00:00:10 (last confirmed 2023-11-14 22:13:30.000 UTC) (bindings inferred from the capture)")


def test_parasite6_is_one_alert_and_the_router_stays_the_router(tmp_path: Path) -> None:
    """parasite6 answers for four addresses, the router's among them: one alert for its MAC,
    and the router's advertisements are not rogue (its forged answers, from many addresses,
    are no sign that its MAC forwards)."""
    found = three_ways(sc.parasite6, ic.detect.neighbor_discovery, tmp_path)
    assert rows(found) == [("nd_spoofing", None, None, 9, "T1557", [4, 7, 10, 13, 16, 20, 23, 26, 29])]
    for address in ("fe80::1 at 02:00:00:00:00:fe", "2001:db8:1::10 at 02:00:00:00:00:10"):
        assert address in found["detail"][0]
    cap = sc.parasite6().read()
    assert ic.detect.infer_routers(cap).rows() == [(6, sc.ROUTER_MAC, ["fe80::1"], "advertises")]
    assert ic.detect.router_adverts(cap).is_empty()


def test_bindings_inferred() -> None:
    cap = sc.nic_swap().read()
    found = ic.detect.infer_neighbors(cap).filter(pl.col("address") == "2001:db8:1::10")
    start = pl.datetime(2023, 11, 14, 22, 13, 20, time_unit="ns", time_zone="UTC")
    assert found.select("mac", "contested").rows() == [("02:00:00:00:00:10", 0), ("02:00:00:00:01:10", 0)]
    assert pl.select(found["first_seen"] - start).to_series().dt.total_seconds().to_list() == [5, 301]
    assert pl.select(found["last_confirmed"] - start).to_series().dt.total_seconds().to_list() == [60, 335]


def test_known_neighbors_declare_bindings() -> None:
    """A declared binding holds however long the owner is silent: the swapped NIC's claims
    contradict it. Mapping and pairs alike; a MAC that is none is refused."""
    cap = sc.nic_swap().read()
    declared = {"2001:db8:1::10": "02-00-00-00-00-10"}
    found = ic.detect.neighbor_discovery(cap, known_neighbors=declared)
    assert found.select("kind", "src", "packets").rows() == [("nd_spoofing", "2001:db8:1::10", 3)]
    assert "02:00:00:00:01:10" in found["detail"][0] and "declared bindings" in found["detail"][0]
    assert found.equals(ic.detect.neighbor_discovery(cap, known_neighbors=list(declared.items())))
    # Declared, every claimed address is a candidate of the plan: in memory and streamed alike.
    assert ic.detect.all(cap, known_neighbors=declared).equals(found)
    path = sc.nic_swap().write(Path(sc.temp_path("swap.pcap")))
    assert ic.detect.all(ic.scan_pcap(path, batch_rows=5), known_neighbors=declared).equals(found)
    with pytest.raises(ValueError, match="not a MAC"):
        ic.detect.neighbor_discovery(cap, known_neighbors={"2001:db8:1::10": "router"})


def test_nd_silence_decides_a_move() -> None:
    """The NIC swap after four silent minutes is a move; with nd_silence of ten minutes the
    old binding still holds, and the new MAC's claims contradict it."""
    cap = sc.nic_swap().read()
    assert ic.detect.neighbor_discovery(cap).is_empty()
    found = ic.detect.neighbor_discovery(cap, nd_silence=600.0)
    assert found.select("kind", "src", "packets").rows() == [("nd_spoofing", "2001:db8:1::10", 3)]


# --------------------------------------------------------------------------- dad_dos

def test_dad_dos(tmp_path: Path) -> None:
    found = three_ways(sc.dad_dos, ic.detect.neighbor_discovery, tmp_path)
    assert rows(found) == [("dad_dos", None, None, 3, "T1499", [10, 12, 14])]
    assert found["detail"][0] == (
        "3 neighbour advertisement(s) from 02:00:00:00:0b:ad answering duplicate address detection for 3 "
        "tentative address(es) (fe80::a1, fe80::a2, fe80::a3) within 1 s of each probe: no host can "
        "configure them")


def test_one_genuine_duplicate_is_no_dad_dos() -> None:
    assert ic.detect.neighbor_discovery(sc.dad_dos(hosts=1).read()).is_empty()
    two = ic.detect.neighbor_discovery(sc.dad_dos(hosts=2).read(), dad_min_addresses=3)
    assert two.is_empty()


# --------------------------------------------------------------------------- ra_flood

def test_ra_flood_is_one_alert(tmp_path: Path) -> None:
    """300 advertisements from 300 random sources: one ra_flood, no rogue_router_advert."""
    found = three_ways(sc.ra_flood, ic.detect.router_adverts, tmp_path)
    assert found.select("kind", "src", "dst", "packets", "technique").rows() == [
        ("ra_flood", None, "ff02::1", 300, "T1499")]
    assert found["frames"][0].to_list() == list(range(9, 29))
    assert found["detail"][0].startswith("300 advertisements in 3.0 s from 300 source(s) (")
    assert "and 300 MAC(s), advertising 299 prefix(es)" in found["detail"][0]
    # The 3,000 of the issue: still one alert, not one rogue_router_advert per source.
    assert ic.detect.all(sc.ra_flood(count=3000).read()).select("kind", "packets").rows() == [("ra_flood", 3000)]


def test_ra_flood_of_prefixes_from_one_source() -> None:
    """One rogue source advertising 25 new prefixes a second for 4 s: ra_flood by prefixes,
    its src the sender; under ra_flood_prefixes it is a rogue router instead."""
    t = sc._Timeline()
    sc._router_v6(t)
    for i in range(4):
        prefixes = [(f"2001:db8:{i * 25 + j + 0x100:x}::", 64) for j in range(25)]
        sc._nd(t, 30 + i, "fe80::bad", "ff02::1", p.router_advert6(prefixes=prefixes, src="fe80::bad"),
               src_mac=ATTACKER)
    cap = t.scenario("prefix_flood", "").read()
    found = ic.detect.router_adverts(cap)
    assert found.select("kind", "src", "dst", "packets").rows() == [("ra_flood", "fe80::bad", "ff02::1", 4)]
    assert "advertising 100 prefix(es)" in found["detail"][0]
    fewer = ic.detect.router_adverts(cap, ra_flood_prefixes=101)
    assert fewer.select("kind", "src", "packets").rows() == [("rogue_router_advert", "fe80::bad", 4)]


# --------------------------------------------------------------------------- tunnels

def teredo_qualification() -> ic.Capture:
    """A Teredo client qualifies with two servers: each answers its router solicitation, over
    UDP, with a router advertisement of its own prefix from the same link-local address."""
    t = sc._Timeline()
    client, servers = "192.168.2.16", ("65.55.158.80", "65.55.158.81")
    rs = p.ipv6("fe80::8000:ffff:ffff:fffd", "ff02::2", p.router_solicit6(src="fe80::8000:ffff:ffff:fffd"),
                hop_limit=255)
    for i, server in enumerate(servers):
        t.add(i * 5, over_udp(client, server, 3544, teredo(rs), src_port=3544))
        ra = p.router_advert6(lifetime=0, prefixes=[(f"2001:0:4137:9e5{i}::", 64)], src="fe80::8000:f227:bec8:61af",
                              dst="fe80::8000:ffff:ffff:fffd")
        packet = p.ipv6("fe80::8000:f227:bec8:61af", "fe80::8000:ffff:ffff:fffd", ra, hop_limit=255)
        t.add(i * 5 + 0.1, over_udp(server, client, 3544, teredo(packet, origin=(3544, server)), src_port=3544))
    return t.scenario("teredo", "").read()


def test_teredo_qualification_is_no_router_on_the_link() -> None:
    cap = teredo_qualification()
    adverts = cap.icmp.filter(pl.col("icmp_type") == 134)
    assert adverts["tunnel"].to_list() == ["teredo", "teredo"]
    assert adverts["advertised"].to_list() == [["2001:0:4137:9e50::/64"], ["2001:0:4137:9e51::/64"]]
    assert ic.detect.infer_routers(cap).is_empty()
    assert ic.detect.all(cap).is_empty()
    # The same advertisements on the link are one router whose prefixes changed.
    on_link = cap.icmp.with_columns(pl.lit(None, pl.String).alias("tunnel"))
    assert ic.detect.router_adverts(on_link).select("kind", "packets").rows() == [("rogue_router_advert", 1)]


# --------------------------------------------------------------------------- mtu_attack

def test_mtu_attack(tmp_path: Path) -> None:
    found = three_ways(sc.mtu_attack, ic.detect.path_mtu, tmp_path)
    assert rows(found) == [("mtu_attack", "2001:db8:ff::66", "2001:db8:1::10", 3, "T1499", [1, 2, 3]),
                           ("mtu_attack", None, "192.0.2.10", 30, "T1499", list(range(4, 24)))]
    assert found["detail"].to_list()[0] == ("3 message(s) from 2001:db8:ff::66 advertising MTU 1000 to "
                                            "2001:db8:1::10 for 2001:db8:ff::9, below the IPv6 minimum of 1280")
    assert found["detail"].to_list()[1].startswith(
        "30 messages in 2.9 s shrinking the MTU of 30 flows of 192.0.2.10 (to 576) from 30 senders (")


def test_ipv4_mtu_below_68_and_mtu_zero() -> None:
    """An IPv4 MTU of 60 is below the minimum; 0 (a router older than RFC 1191) is none."""
    t = sc._Timeline()
    sent = p.ipv4("192.0.2.10", "198.51.100.7", p.udp(40000, 443, bytes(1472), src="192.0.2.10",
                                                      dst="198.51.100.7"), proto=17, df=True)
    t.add(1, p.ipv4("192.0.2.1", "192.0.2.10", p.dest_unreachable(4, sc._quote(sent), mtu=0)))
    t.add(2, p.ipv4("192.0.2.66", "192.0.2.10", p.dest_unreachable(4, sc._quote(sent), mtu=60)))
    found = ic.detect.path_mtu(t.scenario("v4", "").read())
    assert found.select("kind", "src", "dst", "packets", "frames").rows() == [
        ("mtu_attack", "192.0.2.66", "192.0.2.10", 1, [2])]
    assert found["detail"][0].endswith("below the IPv4 minimum of 68")


def test_many_flows_from_one_router_is_path_mtu_discovery() -> None:
    """The tunnel router of path_mtu reports 40 flows in 2 s: one sender, no attack; with
    mtu_min_senders of 1 it would be one."""
    cap = sc.path_mtu().read()
    assert ic.detect.path_mtu(cap).is_empty()
    found = ic.detect.path_mtu(cap, mtu_min_senders=1)
    assert found.select("kind", "src", "dst").rows() == [("mtu_attack", None, "192.0.2.10"),
                                                         ("mtu_attack", None, "2001:db8:1::10")]


# --------------------------------------------------------------------------- benign look-alikes

@pytest.mark.parametrize("build", [sc.dad_unanswered, sc.neighbor_unreachability, sc.nic_swap,
                                   sc.several_addresses, sc.router_schedule, sc.path_mtu, sc.two_routers],
                         ids=lambda b: b.__name__)
def test_benign_link_traffic_raises_nothing(build) -> None:
    built = build()
    cap = built.read()
    for detector in (ic.detect.neighbor_discovery, ic.detect.router_adverts, ic.detect.path_mtu):
        options = {k: v for k, v in built.options.items() if k == "known_routers" and detector is
                   ic.detect.router_adverts}
        assert detector(cap, **options).is_empty(), detector.__name__
    assert ic.detect.all(cap, **built.options).is_empty()
