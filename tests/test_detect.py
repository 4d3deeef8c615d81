"""Detections over labelled synthetic scenarios: the exact alerts for every attack, none for the
benign look-alikes, thresholds at their edges, every input form; and over the real corpus, the
recorded alerts of tests/data/corpus_alerts.json."""
from __future__ import annotations

import doctest
import importlib
import json
import warnings
from pathlib import Path

import polars as pl
import pytest

import icmpscope as ic
from icmpscope.detect import ALERT_SCHEMA
from icmpscope.synth import Frame, ethernet, ipv4, ping, write_pcap
from icmpscope.synth import scenarios as sc

CORPUS_ALERTS = Path(__file__).parent / "data" / "corpus_alerts.json"


def alerts(frame: pl.DataFrame) -> list[tuple]:
    return [(r["kind"], r["src"], r["dst"], r["technique"], tuple(r["frames"]))
            for r in frame.iter_rows(named=True)]


def kinds(frame: pl.DataFrame) -> list[tuple]:
    return frame.select("kind", "src", "dst").rows()


@pytest.fixture(scope="module", params=[*sc.ATTACKS, *sc.BENIGN, sc.demo], ids=lambda b: b.__name__)
def scenario(request) -> tuple[sc.Scenario, ic.Capture]:
    built = request.param()
    return built, built.read()


# --------------------------------------------------------------------------- scenarios

def test_every_scenario_raises_exactly_its_alerts(scenario):
    built, cap = scenario
    assert alerts(ic.detect.all(cap, **built.options)) == [tuple(e) for e in built.expected]


def test_every_alert_kind_has_an_attack_scenario():
    covered = {e.kind for build in sc.ATTACKS for e in build().expected}
    assert covered == {"echo_flood", "ddos_echo_flood", "sweep", "smurf", "ping_of_death",
                       "overlapping_fragments", "icmp_redirect", "rogue_router_advert", "mask_reply",
                       "unreachable_scan", "icmp_tunnel", "error_flood", "topology_mapping",
                       "firewall_probe", "os_fingerprint", "nd_spoofing", "dad_dos", "ra_flood",
                       "mtu_attack", "forged_error"}
    assert all(build().benign for build in sc.BENIGN)


@pytest.mark.parametrize("version, probe", [(6, "echo"), (4, "timestamp")])
def test_sweep_variants(version, probe):
    built = sc.sweep(version=version, probe=probe)
    assert alerts(ic.detect.sweeps(built.read())) == [tuple(e) for e in built.expected]


def test_spoofed_sources_flood_as_one():
    """A flood from random spoofed sources, one request each: a distributed flood."""
    built = sc.ddos_echo_flood(sources=500, count=1)
    found = ic.detect.all(built.read())
    assert alerts(found) == [tuple(e) for e in built.expected]
    assert found["detail"][0].startswith("500 echo requests from 500 sources in 0.5 s")


def test_sweep_with_two_probes_and_retries(tmp_path):
    """nmap -sn: echo and timestamp requests to each address, echo again a second later to the
    silent ones: one sweep of every probe, retries included."""
    prober = "192.168.1.77"
    frames = []
    for host in range(1, 31):
        target = f"192.168.1.{host}"
        frames.append(Frame(host * 2_000_000, ethernet(ping(prober, target, id=1234, seq=0))))
        timestamp = ipv4(prober, target, ic.synth.timestamp_request(1234, 0))
        frames.append(Frame(host * 2_000_000 + 1000, ethernet(timestamp)))
        frames.append(Frame(10**9 + host * 2_000_000, ethernet(ping(prober, target, id=1234, seq=1))))
    cap = ic.read_pcap(write_pcap(tmp_path / "nmap.pcap", sorted(frames, key=lambda f: f.ts)))
    found = ic.detect.all(cap).row(0, named=True)
    assert (found["kind"], found["src"], found["packets"]) == ("sweep", prober, 90)
    assert found["frames"] == list(range(1, 40, 2)) and "echo, timestamp" in found["detail"]


def test_rogue_advert_after_the_first_advertiser(tmp_path):
    """With no traffic through a router, the first advertiser is the router: a second one ten
    seconds later is rogue, the first one's later advertisements are not."""
    rs = ic.synth

    def advert(at: float, src: str, mac: str) -> Frame:
        ra = rs.router_advert6(prefixes=[("2001:db8:1::", 64)], src=src)
        return Frame(round(at * 10**9), ethernet(rs.ipv6(src, "ff02::1", ra, hop_limit=255), src_mac=mac))

    frames = [advert(0, "fe80::1", "02:00:00:00:00:01"), advert(4, "fe80::1", "02:00:00:00:00:01"),
              advert(10, "fe80::66", "02:00:00:00:00:66"), advert(14, "fe80::1", "02:00:00:00:00:01")]
    found = ic.detect.all(ic.read_pcap(write_pcap(tmp_path / "ra.pcap", frames)))
    assert alerts(found) == [("rogue_router_advert", "fe80::66", "ff02::1", "T1557", (3,))]
    assert "02:00:00:00:00:01 [fe80::1] (advertises)" in found["detail"][0]


def test_detail_tells_the_evidence():
    found = ic.detect.all(sc.sweep().read()).row(0, named=True)
    assert found["detail"] == ("echo request(s) to 40 addresses in 0.4 s (192.0.2.101, 192.0.2.102, "
                               "192.0.2.103, 192.0.2.104, 192.0.2.105…); 3 answered: 192.0.2.101, "
                               "192.0.2.107, 192.0.2.113")
    assert found["packets"] == 40
    flood = ic.detect.echo_floods(sc.echo_flood().read()).row(0, named=True)
    assert flood["detail"].startswith("300 echo requests in 3.0 s (18000 bytes)")
    assert (flood["end"] - flood["start"]).total_seconds() == pytest.approx(2.99)


def test_router_inference_is_in_the_detail():
    found = ic.detect.router_adverts(sc.kill_router().read()).row(0, named=True)
    assert found["detail"] == (
        "3 advertisement(s), router lifetime 0 s from fe80::1 (MAC 02:00:00:00:0b:ad): sender is not a "
        "known router; routers inferred early in the capture: 02:00:00:00:00:fe [2001:db8:1::1, fe80::1] "
        "(forwards)")


# --------------------------------------------------------------------------- input forms, schema

@pytest.mark.parametrize("detector", ic.detect.DETECTORS, ids=lambda d: d.__name__)
def test_capture_dataframe_and_lazyframe_agree(detector):
    cap = sc.demo().read()
    from_capture = detector(cap)
    assert from_capture.schema == pl.Schema(ALERT_SCHEMA)
    if detector is ic.detect.fragment_attacks:  # the icmp table shows the reassembled message only
        pod = [("ping_of_death", "198.51.100.9", "192.0.2.50")]
        assert kinds(detector(cap.icmp)) == kinds(from_capture) == pod
        return
    assert detector(cap.icmp).equals(from_capture)
    assert detector(cap.icmp.lazy()).equals(from_capture)


def test_all_reads_a_lazyframe_once_and_passes_keywords():
    cap = sc.echo_flood().read()
    assert kinds(ic.detect.all(cap.icmp.lazy())) == [("echo_flood", "203.0.113.7", "192.0.2.80")]
    assert ic.detect.all(cap.icmp.lazy(), flood_rate=101.0).is_empty()
    with pytest.raises(TypeError, match="flood_rat"):
        ic.detect.all(cap, flood_rat=1.0)


def test_empty_input_has_the_schema():
    cap = sc.path_mtu().read()
    empty = ic.detect.all(cap.icmp.clear())
    assert empty.is_empty() and empty.schema == pl.Schema(ALERT_SCHEMA)
    with pytest.raises(TypeError, match="Capture"):
        ic.detect.sweeps([1, 2, 3])


def test_alerts_across_rotated_files_name_the_files(tmp_path):
    built = sc.echo_flood()
    first = write_pcap(tmp_path / "a.pcap", built.frames[:300], nanosecond=True)
    second = write_pcap(tmp_path / "b.pcap", built.frames[300:], nanosecond=True)
    found = ic.detect.echo_floods(ic.read_pcap([first, second]))
    assert found.schema == pl.Schema({**ALERT_SCHEMA, "files": pl.List(pl.String)})
    row = found.row(0, named=True)
    # One flood across both files, its first 20 requests in the first.
    assert (row["kind"], row["packets"]) == ("echo_flood", 300)
    assert row["frames"] == list(built.expected[0].frames) and row["files"] == [str(first)] * 20
    assert row["end"] > ic.read_pcap(first).icmp["ts"].max()


# --------------------------------------------------------------------------- thresholds at their edges

def edge(build, detector, keyword=None, *, under, over, **fixed):
    """No alert just under a threshold, the expected one just over it."""
    if keyword is None:  # the builder's size argument crosses the default threshold
        below, above = build(**{**fixed, **under}), build(**{**fixed, **over})
        assert detector(below.read()).is_empty()
        assert alerts(detector(above.read())) == [tuple(e) for e in above.expected]
    else:
        built = build(**fixed)
        cap = built.read()
        assert detector(cap, **{keyword: under}).is_empty()
        assert alerts(detector(cap, **{keyword: over})) == [tuple(e) for e in built.expected]


def test_flood_rate_edge():
    # 50 requests 20 ms apart fit in 1 s: 50/s; 49 do not reach it.
    edge(sc.echo_flood, ic.detect.echo_floods, under={"count": 49}, over={"count": 50}, interval=0.02)


def test_flood_byte_rate_edge():
    # 20 requests of 60 bytes in 0.95 s: 1200 bytes in the 1 s window.
    edge(sc.echo_flood, ic.detect.echo_floods, "flood_byte_rate", under=1201.0, over=1200.0,
         count=20, interval=0.05)


def test_ddos_sources_edge():
    # 20 requests a second from each source: 200/s from 10 sources, 180/s from 9 (over 100/s).
    edge(sc.ddos_echo_flood, ic.detect.echo_floods, under={"sources": 9}, over={"sources": 10},
         count=20, interval=0.05)
    edge(sc.ddos_echo_flood, ic.detect.echo_floods, "ddos_min_sources", under=11, over=10,
         sources=10, count=20, interval=0.05)


def test_sweep_targets_edge():
    edge(sc.sweep, ic.detect.sweeps, under={"targets": 9}, over={"targets": 10})
    edge(sc.sweep, ic.detect.sweeps, "sweep_window", under=0.09, over=0.1, targets=10)


def test_smurf_edges():
    edge(sc.smurf, ic.detect.smurf, under={"count": 4}, over={"count": 5}, amplifiers=0)
    # 10 replies a second from each reflector: 50/s takes 5 of them.
    edge(sc.smurf_replies, ic.detect.smurf, under={"reflectors": 4}, over={"reflectors": 5}, count=10)


def test_ping_of_death_edge():
    edge(sc.ping_of_death, ic.detect.fragment_attacks, "max_datagram", under=65628, over=65627)


def test_ping_of_death_from_fragments_that_never_complete(tmp_path: Path) -> None:
    """The last fragment alone already ends past 65535 bytes: still the attack, and the detail says
    nothing was reassembled."""
    from icmpscope.synth import fragment_ipv4_payload, packets

    message = packets.echo_request(1, 1, bytes(65600))
    last = fragment_ipv4_payload("198.51.100.9", "192.0.2.50", message, ident=7, size=1480)[-1]
    cap = ic.read_pcap(write_pcap(tmp_path / "tail.pcap", [Frame(0, ethernet(last))]))
    assert cap.datagrams.select("complete", "total_len", "oversize").rows() == [(False, 65628, True)]
    [alert] = ic.detect.fragment_attacks(cap).rows(named=True)
    assert (alert["kind"], alert["packets"], alert["frames"]) == ("ping_of_death", 1, [1])
    assert alert["detail"].startswith("1 datagram(s) whose fragments reach 65628 bytes, past the 65535-byte limit, "
                                      "0 of them reassembled")


def test_redirect_burst_edge():
    edge(sc.redirect_burst, ic.detect.redirects, under={"destinations": 9}, over={"destinations": 10})


def test_unreachable_edges():
    edge(sc.unreachable_scan, ic.detect.unreachable_scans, under={"ports": 9}, over={"ports": 10})
    edge(sc.unreachable_host_scan, ic.detect.unreachable_scans, under={"hosts": 19}, over={"hosts": 20})


def test_tunnel_edges():
    edge(sc.icmp_tunnel, ic.detect.tunnels, "tunnel_min_packets", under=11, over=10, exchanges=5)
    edge(sc.icmp_tunnel, ic.detect.tunnels, "tunnel_min_signals", under=4, over=3)
    # 5 exchanges: 8 of the 10 messages carry other data than the first request (and its echo).
    edge(sc.ping_exfiltration, ic.detect.tunnels, "tunnel_varying", under=0.81, over=0.8, exchanges=5)


def test_echoed_tunnel_is_found_by_its_varying_data():
    """One size, every reply echoing its request: data and varying are the two signals; without
    the digest column (an older table) only data remains, and nothing is raised."""
    cap = sc.ping_exfiltration().read()
    found = ic.detect.tunnels(cap).row(0, named=True)
    assert found["detail"] == ("60 echo messages in 58.0 s carry 30720 bytes: 1 data sizes (512), mean entropy "
                               "7.6 bits/byte, 0 of 30 replies echo no request, 58 unlike the first of their size")
    assert ic.detect.tunnels(cap.icmp.drop("payload_digest")).is_empty()


def test_monitoring_revisit_edge():
    # 12 rounds 10 s apart: each target is probed over 110 s, monitored up to sweep_revisit=110.
    cap = sc.monitoring().read()
    assert ic.detect.sweeps(cap, sweep_revisit=109.99).is_empty()
    assert kinds(ic.detect.sweeps(cap, sweep_revisit=110.01)) == [("sweep", "192.0.2.5", None)]


# --------------------------------------------------------------------------- routers

def test_declared_routers_silence_and_reveal():
    rogue = sc.rogue_router_advert().read()
    assert ic.detect.router_adverts(rogue, known_routers=["fe80::1", "02:00:00:00:0b:ad"]).is_empty()
    assert ic.detect.router_adverts(rogue, known_routers=["FE80::0001", "02-00-00-00-0B-AD"]).is_empty()
    declared = ic.detect.router_adverts(rogue, known_routers=["fe80::bad"])
    assert kinds(declared) == [("rogue_router_advert", "fe80::1", "ff02::1")]
    assert "declared routers: fe80::bad" in declared["detail"][0]
    redirect = sc.icmp_redirect().read()
    assert ic.detect.redirects(redirect, known_routers=["192.0.2.66"]).is_empty()


def test_router_inference_without_macs(tmp_path):
    """Raw IP captures: the router is the address that reports errors about others' packets."""
    probe = ping("192.0.2.10", "198.51.100.7", ttl=1)
    packets = [
        ipv4("192.0.2.1", "192.0.2.10", ic.synth.time_exceeded(0, probe[:28])),
        ipv4("192.0.2.66", "192.0.2.10", ic.synth.redirect(1, "192.0.2.66", probe[:28])),
        ipv4("192.0.2.1", "192.0.2.10", ic.synth.redirect(1, "192.0.2.2", probe[:28])),
    ]
    raw = [Frame(i * 10**9, p, linktype=101) for i, p in enumerate(packets)]  # LINKTYPE_RAW
    path = write_pcap(tmp_path / "raw.pcap", raw)
    cap = ic.read_pcap(path)
    assert ic.detect.infer_routers(cap).rows() == [(4, None, ["192.0.2.1"], "forwards")]
    assert alerts(ic.detect.redirects(cap)) == [("icmp_redirect", "192.0.2.66", "192.0.2.10", "T1557", (2,))]


def test_offlink_gateway_and_hop_limit(tmp_path):
    """A redirect from the router itself to a gateway on another network; an ICMPv6 redirect
    that crossed a router (hop limit 254)."""
    built = sc.icmp_redirect()
    quoted = ping("192.0.2.10", "203.0.113.5")[:28]
    rs = ic.synth
    extra = [
        ipv4("192.0.2.1", "192.0.2.10", rs.redirect(1, "10.9.9.9", quoted)),
        rs.ipv6("fe80::1", "fe80::10", hop_limit=254,
                payload=rs.redirect6("fe80::2", "2001:db8:ff::1", src="fe80::1", dst="fe80::10")),
    ]
    last = built.frames[-1].ts
    frames = [*built.frames, *(Frame(last + (i + 1) * 10**9, sc._frame(p)) for i, p in enumerate(extra))]
    cap = ic.read_pcap(write_pcap(tmp_path / "r.pcap", frames, nanosecond=True))
    found = ic.detect.redirects(cap)
    assert kinds(found) == [("icmp_redirect", "192.0.2.66", "192.0.2.10"),
                            ("icmp_redirect", "192.0.2.1", "192.0.2.10"),
                            ("icmp_redirect", "fe80::1", "fe80::10")]
    assert "gateway off the receiver's link" in found["detail"][1]
    assert "hop limit below 255" in found["detail"][2]
    assert ic.detect.redirects(cap, networks=["0.0.0.0/0"]).height == 2  # one network: on-link
    assert ic.detect.redirects(cap, onlink_prefix=0).height == 2


def test_router_lifetime_change(tmp_path):
    built = sc.rogue_router_advert()
    rs = ic.synth
    ra = rs.router_advert6(lifetime=0, prefixes=[("2001:db8:1::", 64)], src="fe80::1")
    forged = sc._frame(rs.ipv6("fe80::1", "ff02::1", ra, hop_limit=255))  # from the router's MAC
    frames = [*built.frames[:8], Frame(built.frames[7].ts + 10**9, forged)]
    cap = ic.read_pcap(write_pcap(tmp_path / "ra.pcap", frames, nanosecond=True))
    found = ic.detect.router_adverts(cap)
    assert alerts(found) == [("rogue_router_advert", "fe80::1", "ff02::1", "T1557", (9,))]
    assert "router lifetime changed from its first advertisement" in found["detail"][0]


def test_prefix_change_names_both_sets():
    found = ic.detect.router_adverts(sc.ra_prefix_change().read()).row(0, named=True)
    assert found["detail"] == (
        "3 advertisement(s), router lifetime 1800 s from fe80::1 (MAC 02:00:00:00:00:fe): advertised prefixes "
        "changed from its first advertisement's (2001:db8:1::/64) to 2001:db8:1::/64, 2001:db8:bad::/64; routers "
        "inferred early in the capture: 02:00:00:00:00:fe [2001:db8:1::1, fe80::1] (forwards)")


def test_prefixes_withdrawn_or_replaced_and_ipv4_router_addresses(tmp_path):
    """After two minutes of stable advertisements, the first router replaces its prefixes, the
    second withdraws its own; an IPv4 router advertises another router address than before."""
    built, rs = sc.two_routers(), ic.synth
    start = built.frames[0].ts
    ra6 = lambda src, prefixes: rs.ipv6(src, "ff02::1", rs.router_advert6(prefixes=prefixes, src=src),  # noqa: E731
                                       hop_limit=255)
    ra4 = lambda router: rs.ipv4("192.0.2.1", "224.0.0.1", rs.router_advert([(router, 0)]))  # noqa: E731
    extra = {0.5: ra4("192.0.2.1"), 130: ra6("fe80::1", [("2001:db8:3::", 64)]), 135: ra6("fe80::2", []),
             140: ra4("192.0.2.66"), 141: ra4("192.0.2.66")}
    frames = sorted([*built.frames, *(Frame(start + round(at * 1e9), sc._frame(p)) for at, p in extra.items())],
                    key=lambda f: f.ts)
    cap = ic.read_pcap(write_pcap(tmp_path / "ra.pcap", frames, nanosecond=True))
    frame = {round((f.ts - start) / 1e9, 1): i for i, f in enumerate(frames, 1)}
    found = ic.detect.router_adverts(cap, known_routers=["fe80::1", "fe80::2", "192.0.2.1"])
    assert alerts(found) == [
        ("rogue_router_advert", "fe80::1", "ff02::1", "T1557", (frame[130],)),
        ("rogue_router_advert", "fe80::2", "ff02::1", "T1557", (frame[135],)),
        ("rogue_router_advert", "192.0.2.1", "224.0.0.1", "T1557", (frame[140], frame[141])),
    ]
    assert [d.split(": ", 1)[1].split(";")[0] for d in found["detail"]] == [
        "advertised prefixes changed from its first advertisement's (2001:db8:1::/64, 2001:db8:2::/64) to "
        "2001:db8:3::/64",
        "advertised prefixes changed from its first advertisement's (fd00:1::/64) to none",
        "advertised router addresses changed from its first advertisement's (192.0.2.1) to 192.0.2.66",
    ]


# --------------------------------------------------------------------------- docs and demo

@pytest.mark.parametrize("module", ["icmpscope.detect", "icmpscope.detect.base", "icmpscope.detect.floods",
                                    "icmpscope.detect.fragments", "icmpscope.detect.routers",
                                    "icmpscope.detect.smurf", "icmpscope.detect.sweeps",
                                    "icmpscope.detect.tunnels", "icmpscope.detect.unreachables",
                                    "icmpscope.detect.errors", "icmpscope.detect.topology",
                                    "icmpscope.detect.firewall", "icmpscope.detect.fingerprint",
                                    "icmpscope.synth.scenarios"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_readme_example():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    result = doctest.testfile(str(readme), module_relative=False)
    assert result.attempted >= 6 and result.failed == 0


def test_cli_demo_prints_the_alerts(capsys):
    from icmpscope.cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for kind in ("sweep", "mask_reply", "ping_of_death", "icmp_tunnel"):
        assert kind in out


# --------------------------------------------------------------------------- the real corpus

def test_corpus_alerts_are_the_recorded_ones(captures: Path):
    """Every file of the corpus raises exactly the alerts recorded (with why) in
    tests/data/corpus_alerts.json; the files not listed there raise nothing."""
    recorded = json.loads(CORPUS_ALERTS.read_text())["files"]
    files = json.loads((captures / "manifest.json").read_text())["files"]
    found: dict[str, list[list]] = {}
    for entry in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cap = ic.read_pcap(captures / entry["file"])
        raised = ic.detect.all(cap).select("kind", "src", "dst").rows()
        if raised:
            found[entry["file"]] = sorted([list(r) for r in raised], key=str)
    expected = {name: sorted([[a["kind"], a["src"], a["dst"]] for a in entry["alerts"]], key=str)
                for name, entry in recorded.items()}
    assert found == expected
    assert all(entry["why"] and all(a["why"] for a in entry["alerts"]) for entry in recorded.values())


def test_stray_time_exceeded_is_not_topology_mapping() -> None:
    """One time-exceeded message per destination, each from another router (background noise,
    not a route traced hop by hop), raises no topology_mapping; the same host tracing each
    destination through three hops does."""
    from icmpscope.synth import packets as p
    from icmpscope.synth import scenarios as sc

    def host_gets(hops: int) -> ic.Capture:
        t = sc._Timeline()
        for i in range(12):
            probe = p.ipv4("192.0.2.40", f"203.0.113.{i + 1}", p.udp(40000, 33434 + i, src="192.0.2.40",
                                                                     dst=f"203.0.113.{i + 1}"), proto=17, ttl=1)
            for h in range(hops):
                t.add(i * 4.0 + h * 0.01, p.ipv4(f"10.{i}.{h}.1", "192.0.2.40", p.time_exceeded(0, sc._quote(probe))))
        return t.scenario("stray", "").read()

    assert ic.detect.topology(host_gets(1)).is_empty()
    traced = ic.detect.topology(host_gets(3))
    assert traced.select("kind", "src", "dst", "packets").rows() == [("topology_mapping", "192.0.2.40", None, 36)]
