"""Labelled traffic scenarios built from the packet builders: one per alert kind of
``icmpscope.detect``, the benign look-alikes that must raise nothing, and the demo sample that
mixes them.

Each builder returns a :class:`Scenario`: its frames, and the alerts ``icmpscope.detect.all``
should raise over them (kind, src, dst, technique and the evidence frames), or none.

The scenarios share one site: the LAN 192.0.2.0/24 and 2001:db8:1::/64 behind the router
192.0.2.1 / 2001:db8:1::1 / fe80::1 (MAC 02:00:00:00:00:fe); every other address is off-link
and its frames carry the router's MAC. Frames are Ethernet, in a nanosecond pcap.

>>> s = sweep()
>>> s.expected[0].kind, s.expected[0].src, len(s.frames)
('sweep', '203.0.113.66', 43)
"""
from __future__ import annotations

import ipaddress
import os
import random
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .packets import (dest_unreachable, dest_unreachable6, echo_request, echo_request6, ethernet,
                      fragment_ipv4_payload, icmpv4, info_request, ipv4, ipv6, mask_reply as mask_reply_msg,
                      mask_request, neighbor_advert, neighbor_solicit, packet_too_big, ping, redirect,
                      router_advert6, router_solicit6, tcp, time_exceeded, time_exceeded6, timestamp_reply,
                      timestamp_request, udp)
from .writer import Frame, write_pcap

if TYPE_CHECKING:
    from icmpscope.io import Capture

__all__ = [
    "DEMO_START_NS", "Expected", "Scenario", "demo", "demo_frames", "write_demo", "temp_path",
    "ATTACKS", "BENIGN",
    # one per alert kind
    "echo_flood", "ddos_echo_flood", "sweep", "smurf", "smurf_replies", "ping_of_death",
    "teardrop", "icmp_redirect", "redirect_burst", "rogue_router_advert", "kill_router", "ra_prefix_change",
    "mask_reply", "unreachable_scan", "unreachable_host_scan", "icmp_tunnel", "ping_exfiltration",
    # benign look-alikes
    "monitoring", "traceroute", "udp_traceroute", "path_mtu", "router_redirect", "two_routers", "dns_failure",
    "large_ping", "ping_sizes", "windows_ping", "broadcast_ping",
    # reconnaissance and error floods (issue #19)
    "blacknurse", "topology_mapping", "mtr", "scheduled_traceroutes", "firewalking",
    "prohibited_storm", "mtr_udp", "blocked_service", "prohibited_storm6", "blocked_service6",
    "nmap_os", "xprobe2", "shipped_pings", "dscp_monitoring", "hourly_timestamp",
    # IPv6 on the link (issue #20)
    "nd_spoofing", "parasite6", "dad_dos", "ra_flood", "mtu_attack",
    "dad_unanswered", "neighbor_unreachability", "nic_swap", "several_addresses", "router_schedule",
    # errors held against the flows they quote (issue #21)
    "forged_reset", "forged_pmtu", "udp_probe_unreachable", "pmtu_shrink", "missed_start",
]

DEMO_START_NS = 1_700_000_000_000_000_000
ROUTER_MAC = "02:00:00:00:00:fe"
ROUTER_IPS = ("192.0.2.1", "2001:db8:1::1", "fe80::1")
_LAN = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "2001:db8:1::/64", "fe80::/10")]


class Expected(NamedTuple):
    """An alert a scenario must raise: the frames are those of the alert's ``frames`` column."""

    kind: str
    src: str | None
    dst: str | None
    technique: str
    frames: tuple[int, ...]


@dataclass(frozen=True)
class Scenario:
    """Frames with the alerts they must raise (none: benign) and the detector keywords, if any,
    they are meant to be analysed with."""

    name: str
    description: str
    frames: tuple[Frame, ...]
    expected: tuple[Expected, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def benign(self) -> bool:
        return not self.expected

    def write(self, path: str | os.PathLike[str]) -> Path:
        return write_pcap(path, self.frames, nanosecond=True)

    def read(self) -> Capture:
        """The scenario written to a temporary pcap and read back."""
        from icmpscope.io import read_pcap

        return read_pcap(self.write(temp_path(f"{self.name}.pcap")))


def temp_path(name: str) -> str:
    """A path named ``name`` in a new temporary directory."""
    return os.path.join(tempfile.mkdtemp(prefix="icmpscope-"), name)


def mac_of(addr: str) -> str:
    """The site's MAC for ``addr``: the router's for its own and off-link addresses, a fixed one
    per host on the LAN, the group MAC for broadcast and multicast."""
    ip = ipaddress.ip_address(addr)
    if addr.endswith(".255") or ip.is_multicast or addr == "255.255.255.255":
        return "ff:ff:ff:ff:ff:ff" if ip.version == 4 else "33:33:" + ip.packed[-4:].hex(":")
    if addr in ROUTER_IPS or not any(ip in net for net in _LAN if net.version == ip.version):
        return ROUTER_MAC
    return "02:00:" + ip.packed[-4:].hex(":")


def _frame(packet: bytes, src_mac: str | None = None, dst_mac: str | None = None) -> bytes:
    """``packet`` in an Ethernet frame with the site's MACs for its addresses."""
    src, dst = _addresses(packet)
    return ethernet(packet, src_mac=src_mac or mac_of(src), dst_mac=dst_mac or mac_of(dst))


def _addresses(packet: bytes) -> tuple[str, str]:
    if packet[0] >> 4 == 4:
        return str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20]))
    return str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40]))


class _Timeline:
    """Packets placed in time (seconds from ``start``) and tagged; frames are numbered in time
    order, ties in the order added."""

    def __init__(self, start: int = DEMO_START_NS) -> None:
        self.start = start
        self._items: list[tuple[int, int, bytes, str | None]] = []

    def add(self, at: float, packet: bytes, tag: str | None = None, **macs: str) -> None:
        self._items.append((self.start + round(at * 1e9), len(self._items), _frame(packet, **macs), tag))

    def _sorted(self) -> list[tuple[int, int, bytes, str | None]]:
        return sorted(self._items)

    def frames(self) -> tuple[Frame, ...]:
        return tuple(Frame(ts, data) for ts, _, data, _ in self._sorted())

    def numbers(self, tag: str, limit: int = 20) -> tuple[int, ...]:
        return tuple(i for i, item in enumerate(self._sorted(), 1) if item[3] == tag)[:limit]

    def scenario(self, name: str, description: str, *expected: tuple[str, str | None, str | None, str, str],
                 **options: Any) -> Scenario:
        """``expected``: (kind, src, dst, technique, tag of the evidence frames)."""
        return Scenario(name, description, self.frames(),
                        tuple(Expected(k, s, d, t, self.numbers(tag)) for k, s, d, t, tag in expected),
                        options)


def _pings(t: _Timeline, src: str, dst: str, *, at: float, count: int, interval: float,
           tag: str | None = None, reply: bool = True, id: int = 1,
           payload: bytes | Callable[[float], bytes] | None = None, ttl: int = 64) -> None:
    """``count`` echo requests ``interval`` seconds apart, each answered 300 µs later with the
    same data; ``payload`` may be a function of the request's time (seconds since the epoch)."""
    for seq in range(count):
        when = at + seq * interval
        data = payload(t.start / 1e9 + when) if callable(payload) else payload
        extra = {} if data is None else {"payload": data}
        t.add(when, ping(src, dst, id=id, seq=seq, ttl=ttl, **extra), tag)
        if reply:
            t.add(when + 0.0003, ping(dst, src, id=id, seq=seq, reply=True, **extra))


def _linux_ping_data(size: int) -> Callable[[float], bytes]:
    """The echo data of Linux ``ping -s size``: the send time as a 16-byte struct timeval, then
    the bytes 0x10, 0x11, ... (cyclic) up to ``size``."""
    pattern = bytes(i & 0xFF for i in range(16, size))
    return lambda now: struct.pack("<qq", int(now), round(now % 1 * 1e6)) + pattern


def _quote(packet: bytes) -> bytes:
    """What an ICMP error quotes: the IP header and the first 8 bytes after it."""
    header = (packet[0] & 0x0F) * 4 if packet[0] >> 4 == 4 else 40
    return packet[:header + 8]


# --------------------------------------------------------------------------- attacks

def echo_flood(*, count: int = 300, interval: float = 0.01) -> Scenario:
    """203.0.113.7 floods 192.0.2.80 with ``count`` echo requests ``interval`` s apart (100/s by
    default; the threshold is 50/s over 5 s, 250 requests), which it answers."""
    t = _Timeline()
    _pings(t, "192.0.2.10", "192.0.2.1", at=0, count=10, interval=1.0)
    _pings(t, "203.0.113.7", "192.0.2.80", at=1, count=count, interval=interval, tag="flood", id=77)
    return t.scenario("echo_flood", echo_flood.__doc__ or "",
                      ("echo_flood", "203.0.113.7", "192.0.2.80", "T1498.001", "flood"))


def ddos_echo_flood(*, sources: int = 30, count: int = 50, interval: float = 0.1) -> Scenario:
    """``sources`` hosts each send 192.0.2.80 ``count`` echo requests ``interval`` s apart:
    300/s together, 10/s each — a distributed flood, no single flooder."""
    t = _Timeline()
    for i in range(sources):
        _pings(t, f"198.51.{100 + i // 250}.{1 + i % 250}", "192.0.2.80", at=i * 0.001, count=count,
               interval=interval, tag="ddos", reply=False, id=i)
    return t.scenario("ddos_echo_flood", ddos_echo_flood.__doc__ or "",
                      ("ddos_echo_flood", None, "192.0.2.80", "T1498.001", "ddos"))


def sweep(*, targets: int = 40, probe: str = "echo", version: int = 4) -> Scenario:
    """203.0.113.66 (2001:db8:66::66 for IPv6) sends one ``probe`` ("echo" or "timestamp")
    request to each of ``targets`` addresses, 10 ms apart; three of them answer."""
    t = _Timeline()
    src = "203.0.113.66" if version == 4 else "2001:db8:66::66"
    for host in range(1, targets + 1):
        dst = f"192.0.2.{100 + host}" if version == 4 else f"2001:db8:1::{100 + host:x}"
        if probe == "timestamp":
            t.add(host * 0.01, ipv4(src, dst, timestamp_request(99, host)), "probe")
        else:
            t.add(host * 0.01, ping(src, dst, id=99, seq=host), "probe")
            if host in (1, 7, 13):
                t.add(host * 0.01 + 0.0003, ping(dst, src, id=99, seq=host, reply=True))
    return t.scenario(f"sweep_{probe}_v{version}", sweep.__doc__ or "",
                      ("sweep", src, None, "T1018", "probe"))


def smurf(*, count: int = 50, amplifiers: int = 10) -> Scenario:
    """Echo requests to the broadcast 198.51.100.255 in the name of 192.0.2.99, 20 a second;
    ``amplifiers`` hosts answer each, flooding the victim with replies."""
    t = _Timeline()
    victim, broadcast = "192.0.2.99", "198.51.100.255"
    for seq in range(count):
        at = seq * 0.05
        t.add(at, ping(victim, broadcast, id=5, seq=seq), "request", dst_mac="ff:ff:ff:ff:ff:ff")
        for host in range(1, amplifiers + 1):
            t.add(at + host * 0.0001, ping(f"198.51.100.{host}", victim, id=5, seq=seq, reply=True))
    return t.scenario("smurf", smurf.__doc__ or "", ("smurf", victim, broadcast, "T1498.002", "request"))


def smurf_replies(*, count: int = 30, reflectors: int = 10) -> Scenario:
    """At the victim 192.0.2.99: echo replies it never asked for, from ``reflectors`` hosts,
    ``count`` each within 3 s (100/s)."""
    t = _Timeline()
    for seq in range(count):
        for host in range(1, reflectors + 1):
            t.add(seq * 0.1 + host * 0.001, ping(f"198.51.100.{host}", "192.0.2.99", id=5, seq=seq,
                                                    reply=True), "reply")
    return t.scenario("smurf_replies", smurf_replies.__doc__ or "",
                      ("smurf", None, "192.0.2.99", "T1498.002", "reply"))


def ping_of_death() -> Scenario:
    """198.51.100.9 sends 192.0.2.50 an echo request of 65,608 ICMP bytes in 45 fragments:
    reassembled, a 65,628-byte IPv4 datagram."""
    t = _Timeline()
    _pings(t, "192.0.2.10", "192.0.2.1", at=0, count=3, interval=1.0)
    _fragments(t, "198.51.100.9", "192.0.2.50", echo_request(1, 1, bytes(65600)), at=2, tag="fragment")
    return t.scenario("ping_of_death", ping_of_death.__doc__ or "",
                      ("ping_of_death", "198.51.100.9", "192.0.2.50", "T1499", "fragment"))


def _fragments(t: _Timeline, src: str, dst: str, message: bytes, *, at: float, ident: int = 666,
               tag: str | None = None) -> None:
    """``message`` in 1480-byte IPv4 fragments, 100 µs apart."""
    for i, fragment in enumerate(fragment_ipv4_payload(src, dst, message, ident=ident, size=1480)):
        t.add(at + i * 0.0001, fragment, tag)


def teardrop() -> Scenario:
    """Teardrop: two UDP fragments from 198.51.100.13 to 192.0.2.50 whose overlapping 24 bytes
    differ."""
    t = _Timeline()
    src, dst = "198.51.100.13", "192.0.2.50"
    datagram = udp(1234, 53, bytes(92), src=src, dst=dst)
    first = fragment_ipv4_payload(src, dst, datagram[:48], proto=17, ident=13, size=48, more=True)
    second = fragment_ipv4_payload(src, dst, b"\xff" * 24 + datagram[48:], proto=17, ident=13,
                                   size=104, offset=24)
    for i, fragment in enumerate(first + second):
        t.add(i * 0.001, fragment, "fragment")
    return t.scenario("teardrop", teardrop.__doc__ or "",
                      ("overlapping_fragments", src, dst, "T1499", "fragment"))


def _off_link_traffic(t: _Timeline, host: str = "192.0.2.10", *, at: float = 0) -> None:
    """A host pinging three off-link servers: the router's MAC forwards their replies."""
    servers = [f"2001:db8:ff::{i}" if ":" in host else f"198.51.100.{i}" for i in (1, 2, 3)]
    for i, server in enumerate(servers):
        _pings(t, host, server, at=at + i * 0.1, count=1, interval=1.0)


def icmp_redirect() -> Scenario:
    """192.0.2.66, not the router, tells 192.0.2.10 to reach 203.0.113.5 through 192.0.2.66,
    twice, after the host's traffic showed the router."""
    t = _Timeline()
    _off_link_traffic(t)
    quoted = _quote(ping("192.0.2.10", "203.0.113.5"))
    for at in (70, 75):
        t.add(at, ipv4("192.0.2.66", "192.0.2.10", redirect(1, "192.0.2.66", quoted)), "redirect")
    return t.scenario("icmp_redirect", icmp_redirect.__doc__ or "",
                      ("icmp_redirect", "192.0.2.66", "192.0.2.10", "T1557", "redirect"))


def redirect_burst(*, destinations: int = 10) -> Scenario:
    """The router itself redirects 192.0.2.10 for ``destinations`` destinations within 5 s: more
    than routing changes explain (the threshold is 10 within 10 s)."""
    t = _Timeline()
    _off_link_traffic(t)
    for i in range(destinations):
        quoted = _quote(ping("192.0.2.10", f"203.0.113.{i + 1}"))
        t.add(10 + i * 0.5, ipv4("192.0.2.1", "192.0.2.10", redirect(1, "192.0.2.2", quoted)), "redirect")
    return t.scenario("redirect_burst", redirect_burst.__doc__ or "",
                      ("icmp_redirect", "192.0.2.1", "192.0.2.10", "T1557", "redirect"))


def _router_v6(t: _Timeline) -> None:
    """The IPv6 router: forwards a host's pings, advertises 2001:db8:1::/64, and reports a hop
    limit exceeded."""
    _off_link_traffic(t, "2001:db8:1::10")
    t.add(1, ipv6("fe80::1", "ff02::1", router_advert6(prefixes=[("2001:db8:1::", 64)], src="fe80::1"),
                  hop_limit=255))
    quoted = _quote(ping("2001:db8:1::10", "2001:db8:ff::9", ttl=1))
    t.add(2, ipv6("2001:db8:1::1", "2001:db8:1::10",
                  time_exceeded6(0, quoted, src="2001:db8:1::1", dst="2001:db8:1::10")))


def rogue_router_advert() -> Scenario:
    """fe80::bad advertises itself as a router for 2001:db8:bad::/64, three times, on a link
    whose router (fe80::1) the capture shows forwarding."""
    t = _Timeline()
    _router_v6(t)
    ra = router_advert6(prefixes=[("2001:db8:bad::", 64)], src="fe80::bad")
    for at in (30, 60, 90):
        t.add(at, ipv6("fe80::bad", "ff02::1", ra, hop_limit=255), "advert")
    return t.scenario("rogue_router_advert", rogue_router_advert.__doc__ or "",
                      ("rogue_router_advert", "fe80::bad", "ff02::1", "T1557", "advert"))


def kill_router() -> Scenario:
    """THC kill_router6: advertisements with the router's address fe80::1 and a lifetime of 0,
    sent from another MAC, 02:00:00:00:0b:ad."""
    t = _Timeline()
    _router_v6(t)
    ra = router_advert6(lifetime=0, prefixes=[("2001:db8:1::", 64)], src="fe80::1")
    for at in (30, 31, 32):
        t.add(at, ipv6("fe80::1", "ff02::1", ra, hop_limit=255), "advert", src_mac="02:00:00:00:0b:ad")
    return t.scenario("kill_router", kill_router.__doc__ or "",
                      ("rogue_router_advert", "fe80::1", "ff02::1", "T1557", "advert"))


def ra_prefix_change() -> Scenario:
    """Someone who spoofs the router (fe80::1, from its MAC) adds 2001:db8:bad::/64 to the
    prefix it advertises, three times a second apart (hosts then configure addresses in the
    attacker's prefix); the router's own later advertisement is as before."""
    t = _Timeline()
    _router_v6(t)
    forged = router_advert6(prefixes=[("2001:db8:1::", 64), ("2001:db8:bad::", 64)], src="fe80::1")
    for at in (30, 31, 32):
        t.add(at, ipv6("fe80::1", "ff02::1", forged, hop_limit=255), "advert")
    t.add(200, ipv6("fe80::1", "ff02::1", router_advert6(prefixes=[("2001:db8:1::", 64)], src="fe80::1"),
                    hop_limit=255))
    return t.scenario("ra_prefix_change", ra_prefix_change.__doc__ or "",
                      ("rogue_router_advert", "fe80::1", "ff02::1", "T1557", "advert"))


def mask_reply() -> Scenario:
    """203.0.113.5 asks 192.0.2.1 for the address mask; it answers 255.255.255.0."""
    t = _Timeline()
    _mask_exchange(t, "203.0.113.5", at=0)
    return t.scenario("mask_reply", mask_reply.__doc__ or "",
                      ("mask_reply", "192.0.2.1", "203.0.113.5", "T1590", "reply"))


def _mask_exchange(t: _Timeline, requester: str, *, at: float) -> None:
    """``requester`` asks the router for the address mask; the reply is tagged "reply"."""
    t.add(at, ipv4(requester, "192.0.2.1", mask_request(3, 1)))
    t.add(at + 0.001, ipv4("192.0.2.1", requester, mask_reply_msg(3, 1, "255.255.255.0")), "reply")


def unreachable_scan(*, ports: int = 12) -> Scenario:
    """203.0.113.9 probes ``ports`` UDP ports of 192.0.2.20, 0.5 s apart; each is closed and
    192.0.2.20 answers port unreachable."""
    t = _Timeline()
    prober, target = "203.0.113.9", "192.0.2.20"
    for i in range(ports):
        probe = ipv4(prober, target, udp(40000, 1000 + i, src=prober, dst=target), proto=17)
        t.add(i * 0.5, probe)
        t.add(i * 0.5 + 0.0002, ipv4(target, prober, dest_unreachable(3, _quote(probe))), "unreachable")
    return t.scenario("unreachable_scan", unreachable_scan.__doc__ or "",
                      ("unreachable_scan", prober, target, "T1046", "unreachable"))


def unreachable_host_scan(*, hosts: int = 25) -> Scenario:
    """192.0.2.30 probes TCP port 445 on ``hosts`` addresses of 198.51.100.0/24; the router
    answers host unreachable for each."""
    t = _Timeline()
    prober = "192.0.2.30"
    for i in range(hosts):
        target = f"198.51.100.{10 + i}"
        probe = ipv4(prober, target, b"\x9c\x40\x01\xbd" + bytes(16), proto=6)
        t.add(i * 0.1, probe)
        t.add(i * 0.1 + 0.0002, ipv4("192.0.2.1", prober, dest_unreachable(1, _quote(probe))), "unreachable")
    return t.scenario("unreachable_host_scan", unreachable_host_scan.__doc__ or "",
                      ("unreachable_scan", prober, None, "T1018", "unreachable"))


def ping_exfiltration(*, exchanges: int = 30, size: int = 512, seed: int = 11) -> Scenario:
    """192.0.2.10 sends 203.0.113.200 an encrypted file in echo requests of ``size`` bytes, 2 s
    apart, and the receiver's kernel echoes each back as it would any ping: one data size, every
    reply matching its request — only the data, new each time, gives it away."""
    t = _Timeline()
    rnd = random.Random(seed)
    client, server = "192.0.2.10", "203.0.113.200"
    for seq in range(exchanges):
        data = rnd.randbytes(size)
        t.add(seq * 2.0, ping(client, server, id=4243, seq=seq, payload=data), "tunnel")
        t.add(seq * 2.0 + 0.0003, ping(server, client, id=4243, seq=seq, payload=data, reply=True), "tunnel")
    return t.scenario("ping_exfiltration", ping_exfiltration.__doc__ or "",
                      ("icmp_tunnel", "192.0.2.10", "203.0.113.200", "T1095", "tunnel"))


def icmp_tunnel(*, exchanges: int = 30, seed: int = 7) -> Scenario:
    """192.0.2.10 and 203.0.113.200 exchange data in echo payloads for a minute: random bytes of
    100 to 1000, the replies carrying other data than the requests (ptunnel, icmpsh)."""
    t = _Timeline()
    _tunnel(t, at=0, exchanges=exchanges, seed=seed)
    return t.scenario("icmp_tunnel", icmp_tunnel.__doc__ or "",
                      ("icmp_tunnel", "192.0.2.10", "203.0.113.200", "T1095", "tunnel"))


def _tunnel(t: _Timeline, *, at: float, exchanges: int, seed: int) -> None:
    """Random data of 100 to 1000 bytes each way between 192.0.2.10 and 203.0.113.200, 2 s apart."""
    rnd = random.Random(seed)
    client, server = "192.0.2.10", "203.0.113.200"
    for seq in range(exchanges):
        up, down = rnd.randbytes(rnd.randrange(100, 1000)), rnd.randbytes(rnd.randrange(100, 1000))
        t.add(at + seq * 2.0, ping(client, server, id=4242, seq=seq, payload=up), "tunnel")
        t.add(at + seq * 2.0 + 0.02, ping(server, client, id=4242, seq=seq, payload=down, reply=True),
              "tunnel")


# --------------------------------------------------------------------------- benign look-alikes

def monitoring(*, hosts: int = 30, rounds: int = 12, interval: float = 10.0) -> Scenario:
    """A monitoring station pings ``hosts`` servers once each every ``interval`` seconds (a
    round takes 0.3 s), ``rounds`` times; all answer."""
    t = _Timeline()
    for r in range(rounds):
        for host in range(hosts):
            _pings(t, "192.0.2.5", f"198.51.100.{host + 1}", at=r * interval + host * 0.01, count=1,
                   interval=1.0, id=host)
    return t.scenario("monitoring", monitoring.__doc__ or "")


def traceroute(*, hops: int = 12) -> Scenario:
    """``traceroute -I``: three echo requests per TTL from 1 to ``hops`` towards 203.0.113.80;
    each router on the way answers time exceeded, the target echo replies."""
    t = _Timeline()
    src, dst = "192.0.2.10", "203.0.113.80"
    for ttl in range(1, hops + 1):
        for k in range(3):
            seq = ttl * 3 + k
            at = ttl * 0.05 + k * 0.01
            probe = ping(src, dst, id=33, seq=seq, ttl=ttl)
            t.add(at, probe)
            if ttl < hops:
                hop = "192.0.2.1" if ttl == 1 else f"198.51.100.{ttl}"
                t.add(at + 0.002, ipv4(hop, src, time_exceeded(0, _quote(probe))))
            else:
                t.add(at + 0.002, ping(dst, src, id=33, seq=seq, reply=True))
    return t.scenario("traceroute", traceroute.__doc__ or "")


def udp_traceroute(*, hops: int = 8) -> Scenario:
    """Unix ``traceroute``: three UDP probes per TTL to ports 33434 and up, sent at once; the
    routers of the first half answer time exceeded, the target 203.0.113.80 port unreachable
    to every probe with a larger TTL — a dozen ports, but no scan."""
    t = _Timeline()
    src, dst = "192.0.2.10", "203.0.113.80"
    for n in range(hops * 3):
        ttl = n // 3 + 1
        probe = ipv4(src, dst, udp(50000, 33434 + n, src=src, dst=dst), proto=17, ttl=ttl)
        at = n * 0.01
        t.add(at, probe)
        if ttl < hops // 2:
            hop = "192.0.2.1" if ttl == 1 else f"198.51.100.{ttl}"
            t.add(at + 0.002, ipv4(hop, src, time_exceeded(0, _quote(probe))))
        else:
            t.add(at + 0.002, ipv4(dst, src, dest_unreachable(3, _quote(probe))))
    return t.scenario("udp_traceroute", udp_traceroute.__doc__ or "")


def path_mtu(*, count: int = 40) -> Scenario:
    """Path-MTU discovery: a tunnel router says "fragmentation needed, MTU 1400" and "packet too
    big, MTU 1280" ``count`` times each to hosts sending full-size packets."""
    t = _Timeline()
    for i in range(count):
        sent = ipv4("192.0.2.10", f"198.51.100.{i + 1}", udp(40000, 443, bytes(1472), src="192.0.2.10",
                                                             dst=f"198.51.100.{i + 1}"), proto=17, df=True)
        t.add(i * 0.05, ipv4("192.0.2.1", "192.0.2.10", dest_unreachable(4, _quote(sent), mtu=1400)))
        sent6 = ipv6("2001:db8:1::10", f"2001:db8:ff::{i + 1:x}",
                     udp(40000, 443, bytes(1452), src="2001:db8:1::10", dst=f"2001:db8:ff::{i + 1:x}"),
                     next_header=17)
        too_big = packet_too_big(1280, sent6[:1232], src="2001:db8:1::1", dst="2001:db8:1::10")
        t.add(i * 0.05 + 0.01, ipv6("2001:db8:1::1", "2001:db8:1::10", too_big))
    return t.scenario("path_mtu", path_mtu.__doc__ or "")


def router_redirect(*, declared: bool = False) -> Scenario:
    """The router 192.0.2.1 redirects 192.0.2.10 to the on-link gateway 192.0.2.2 for
    198.51.100.77: ordinary routing. With ``declared``, the router is given as
    ``known_routers`` and the capture holds no other traffic to infer it from."""
    t = _Timeline()
    if not declared:
        _off_link_traffic(t)
    quoted = _quote(ping("192.0.2.10", "198.51.100.77"))
    t.add(5, ipv4("192.0.2.1", "192.0.2.10", redirect(1, "192.0.2.2", quoted)))
    options = {"known_routers": ["192.0.2.1"]} if declared else {}
    return t.scenario("router_redirect" + ("_declared" if declared else ""), router_redirect.__doc__ or "",
                      **options)


def two_routers(*, rounds: int = 12) -> Scenario:
    """Two routers the site declares, fe80::1 and fe80::2, advertise every 10 s for two minutes:
    the first 2001:db8:1::/64 and 2001:db8:2::/64, its options in either order, the second its
    own fd00:1::/64."""
    t = _Timeline()
    prefixes = [("2001:db8:1::", 64), ("2001:db8:2::", 64)]
    for r in range(rounds):
        first = router_advert6(prefixes=prefixes[::1 if r % 2 else -1], src="fe80::1")
        t.add(r * 10, ipv6("fe80::1", "ff02::1", first, hop_limit=255))
        second = router_advert6(prefixes=[("fd00:1::", 64)], src="fe80::2")
        t.add(r * 10 + 5, ipv6("fe80::2", "ff02::1", second, hop_limit=255))
    return t.scenario("two_routers", two_routers.__doc__ or "", known_routers=["fe80::1", "fe80::2"])


def dns_failure(*, queries: int = 40) -> Scenario:
    """A client retries DNS queries to a resolver that is down, from changing source ports, for
    20 s; each gets a port unreachable for udp/53."""
    t = _Timeline()
    client, resolver = "192.0.2.10", "192.0.2.53"
    for i in range(queries):
        query = ipv4(client, resolver, udp(30000 + i, 53, b"\x12\x34" + bytes(20), src=client, dst=resolver),
                     proto=17)
        t.add(i * 0.5, query)
        t.add(i * 0.5 + 0.0002, ipv4(resolver, client, dest_unreachable(3, _quote(query))))
    return t.scenario("dns_failure", dns_failure.__doc__ or "")


def large_ping(*, count: int = 60) -> Scenario:
    """Linux ``ping -s 1400`` for a minute: large echo data of high entropy (the byte pattern
    runs through every value) but one size, echoed back; only the timestamp in its first 16
    bytes changes."""
    t = _Timeline()
    _pings(t, "192.0.2.10", "203.0.113.200", at=0, count=count, interval=1.0, payload=_linux_ping_data(1400))
    return t.scenario("large_ping", large_ping.__doc__ or "")


def ping_sizes(*, sizes: range = range(24, 64, 4)) -> Scenario:
    """Trying sizes by hand: Linux ``ping -c 1 -s N`` to 203.0.113.80 for N = 24, 28, ... 60, a
    second apart — many data sizes, each new, but each of ping's pattern."""
    t = _Timeline()
    for i, size in enumerate(sizes):
        _pings(t, "192.0.2.10", "203.0.113.80", at=i, count=1, interval=1.0, id=100 + i,
               payload=_linux_ping_data(size))
    return t.scenario("ping_sizes", ping_sizes.__doc__ or "")


def windows_ping(*, count: int = 60, size: int = 1400) -> Scenario:
    """Windows ``ping -t -l 1400`` for a minute: the alphabet a to w over and over, echoed."""
    t = _Timeline()
    payload = (b"abcdefghijklmnopqrstuvw" * (size // 23 + 1))[:size]
    _pings(t, "192.0.2.10", "203.0.113.200", at=0, count=count, interval=1.0, payload=payload)
    return t.scenario("windows_ping", windows_ping.__doc__ or "")


def broadcast_ping(*, count: int = 10, hosts: int = 5) -> Scenario:
    """``ping -b 192.0.2.255`` once a second; ``hosts`` hosts answer."""
    t = _Timeline()
    for seq in range(count):
        t.add(seq, ping("192.0.2.10", "192.0.2.255", id=8, seq=seq))
        for host in range(hosts):
            answer = ping(f"192.0.2.{20 + host}", "192.0.2.10", id=8, seq=seq, reply=True)
            t.add(seq + 0.001 * (host + 1), answer)
    return t.scenario("broadcast_ping", broadcast_ping.__doc__ or "")


# --------------------------------------------------------------------------- reconnaissance, error floods

def blacknurse(*, count: int = 3000, rate: float = 2000.0, seed: int = 19) -> Scenario:
    """BlackNurse: ``count`` port unreachables (type 3 code 3) at the firewall 192.0.2.254,
    ``rate`` a second from random spoofed sources, each quoting a UDP packet the firewall never
    sent to a random host and port; meanwhile a host pings its gateway."""
    t = _Timeline()
    rnd = random.Random(seed)
    firewall = "192.0.2.254"
    _pings(t, "192.0.2.10", "192.0.2.1", at=0, count=4, interval=1.0, id=3)
    for i in range(count):
        src = f"{rnd.choice((198, 203))}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        target = f"198.51.100.{rnd.randrange(1, 255)}"
        quoted = _quote(ipv4(firewall, target, udp(rnd.randrange(1024, 65536), rnd.randrange(1, 65536),
                                                   src=firewall, dst=target), proto=17, ident=rnd.randrange(65536)))
        t.add(1 + i / rate + rnd.random() * 1e-4, ipv4(src, firewall, dest_unreachable(3, quoted),
                                                      ident=rnd.randrange(65536)), "flood")
    return t.scenario("blacknurse", blacknurse.__doc__ or "",
                      ("error_flood", None, firewall, "T1499", "flood"))


def _trace(t: _Timeline, src: str, dst: str, path: list[str], *, at: float, probes: int = 3,
           gap: float = 0.02, udp_base: int | None = 33434, ident: int = 0, tag: str | None = None) -> None:
    """A traceroute from ``src`` to ``dst`` along ``path`` (the routers, hop 1 first):
    ``probes`` probes per TTL, ``gap`` s apart, UDP to ports ``udp_base`` and up (echo requests
    with id ``ident`` when None); each router answers time exceeded (the first one tagged
    ``tag``), the target port unreachable or echo reply."""
    n = 0
    for ttl in range(1, len(path) + 2):
        for _ in range(probes):
            when = at + n * gap
            if udp_base is None:
                probe = ping(src, dst, id=ident, seq=n, ttl=ttl)
            else:
                probe = ipv4(src, dst, udp(40000 + ident, udp_base + n, src=src, dst=dst), proto=17, ttl=ttl,
                             ident=(ident * 1000 + n) & 0xFFFF)
            t.add(when, probe)
            if ttl <= len(path):
                t.add(when + 0.001 + 0.002 * ttl, ipv4(path[ttl - 1], src, time_exceeded(0, _quote(probe))),
                      tag if n == 0 else None)
            elif udp_base is None:
                t.add(when + 0.001 + 0.002 * ttl, ping(dst, src, id=ident, seq=n, reply=True))
            else:
                t.add(when + 0.001 + 0.002 * ttl, ipv4(dst, src, dest_unreachable(3, _quote(probe))))
            n += 1


def _path(rnd: random.Random, hops: int) -> list[str]:
    """The site's router, an upstream one, then ``hops - 2`` routers of the way."""
    return ["192.0.2.1", "198.51.100.2"] + [f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
                                              for _ in range(hops - 2)]


def topology_mapping(*, targets: int = 12, seed: int = 4) -> Scenario:
    """192.0.2.40 traces (UDP, three probes per TTL) the routes to ``targets`` destinations
    one after another, 2 s each: 5 to 8 hops, the first two shared — dozens of routers."""
    t = _Timeline()
    rnd = random.Random(seed)
    for i in range(targets):
        dst = f"203.0.113.{10 + i * 7}"
        _trace(t, "192.0.2.40", dst, _path(rnd, rnd.randrange(5, 9)), at=i * 2.0, ident=i, tag="first")
    return t.scenario("topology_mapping", topology_mapping.__doc__ or "",
                      ("topology_mapping", "192.0.2.40", None, "T1590.004", "first"))


def mtr(*, cycles: int = 120, seed: int = 5) -> Scenario:
    """``mtr 203.0.113.80`` for two minutes: each second an echo request for each TTL of the
    8-hop path; the routers answer time exceeded, the target echo reply."""
    t = _Timeline()
    path = _path(random.Random(seed), 8)
    for c in range(cycles):
        _trace(t, "192.0.2.10", "203.0.113.80", path, at=c * 1.0, probes=1, gap=0.1, udp_base=None, ident=4000)
    return t.scenario("mtr", mtr.__doc__ or "")


def scheduled_traceroutes(*, rounds: int = 4, seed: int = 6) -> Scenario:
    """A monitoring box traces the routes to its four fixed destinations every 5 minutes, 20 s
    apart."""
    t = _Timeline()
    rnd = random.Random(seed)
    paths = {f"198.51.100.{50 + i}": _path(rnd, 6 + i) for i in range(4)}
    for r in range(rounds):
        for i, (dst, path) in enumerate(paths.items()):
            _trace(t, "192.0.2.5", dst, path, at=r * 300.0 + i * 20.0, ident=r * 4 + i)
    return t.scenario("scheduled_traceroutes", scheduled_traceroutes.__doc__ or "")


def firewalking(*, ports: tuple[int, ...] = (21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 161, 389, 443,
                                              445, 993, 1433, 3306, 3389, 8080),
                open_ports: int = 14) -> Scenario:
    """Firewalk from 192.0.2.60 at the gateway 198.51.100.254 in front of 198.51.100.140: a UDP
    ramp (TTL 1 to 3, three probes each) finds the gateway at hop 3; then a TCP and a UDP probe
    to each of ``ports`` with TTL 4. The gateway lets the first ``open_ports`` ports through, and
    the hop behind it, 198.51.100.129, answers time exceeded for those probes."""
    t = _Timeline()
    prober, target = "192.0.2.60", "198.51.100.140"
    path = ["192.0.2.1", "198.51.100.2", "198.51.100.254"]
    n = 0
    for ttl in (1, 2, 3):
        for _ in range(3):
            probe = ipv4(prober, target, udp(41000, 33434 + n, src=prober, dst=target), proto=17, ttl=ttl, ident=n)
            t.add(n * 0.05, probe)
            t.add(n * 0.05 + 0.002 * ttl, ipv4(path[ttl - 1], prober, time_exceeded(0, _quote(probe))))
            n += 1
    at = 1.0
    for i, port in enumerate(ports):
        tcp_syn = struct.pack("!HHIIBBHHH", 41001, port, 1000 + i, 0, 0x50, 0x02, 1024, 0, 0)
        for proto, body in ((6, tcp_syn), (17, udp(41002, port, src=prober, dst=target))):
            probe = ipv4(prober, target, body, proto=proto, ttl=4, ident=100 + n)
            t.add(at, probe)
            if i < open_ports:
                t.add(at + 0.009, ipv4("198.51.100.129", prober, time_exceeded(0, _quote(probe))), "walked")
            at += 0.1
            n += 1
    return t.scenario("firewalking", firewalking.__doc__ or "",
                      ("firewall_probe", prober, target, "T1590.006", "walked"))


def prohibited_storm(*, ports: int = 30) -> Scenario:
    """203.0.113.77 probes ``ports`` TCP ports of 192.0.2.80 and of 192.0.2.81 through the
    site's filter, 192.0.2.1, which refuses each with "communication administratively
    prohibited" (type 3 code 13)."""
    t = _Timeline()
    prober = "203.0.113.77"
    for i in range(ports):
        for k, target in enumerate(("192.0.2.80", "192.0.2.81")):
            syn = struct.pack("!HHIIBBHHH", 50000 + i, 1 + i * 37, i, 0, 0x50, 0x02, 1024, 0, 0)
            probe = ipv4(prober, target, syn, proto=6, ident=i * 2 + k)
            at = i * 0.2 + k * 0.05
            t.add(at, probe)
            t.add(at + 0.0005, ipv4("192.0.2.1", prober, dest_unreachable(13, _quote(probe))), "refused")
    return t.scenario("prohibited_storm", prohibited_storm.__doc__ or "",
                      ("firewall_probe", prober, None, "T1590.006", "refused"))


def mtr_udp(*, cycles: int = 60, seed: int = 7) -> Scenario:
    """``mtr -u 203.0.113.80`` for a minute: each second a UDP probe per TTL of the 6-hop path,
    to a new port each time; every router answers dozens of ports, the target port unreachable."""
    t = _Timeline()
    path = _path(random.Random(seed), 6)
    for c in range(cycles):
        _trace(t, "192.0.2.10", "203.0.113.80", path, at=c * 1.0, probes=1, gap=0.1,
               udp_base=33434 + c * (len(path) + 1), ident=7)
    return t.scenario("mtr_udp", mtr_udp.__doc__ or "")


def blocked_service(*, attempts: int = 4) -> Scenario:
    """A host's mail client tries 198.51.100.25 tcp/25 ``attempts`` times over half a minute;
    the site's filter refuses each (type 3 code 13), and it pings the server meanwhile."""
    t = _Timeline()
    host, server = "192.0.2.10", "198.51.100.25"
    _pings(t, host, server, at=0, count=3, interval=1.0)
    for i in range(attempts):
        syn = struct.pack("!HHIIBBHHH", 45000 + i, 25, 77 + i, 0, 0x50, 0x02, 64240, 0, 0)
        probe = ipv4(host, server, syn, proto=6, ident=300 + i, df=True)
        t.add(5 + i * 8.0, probe)
        t.add(5 + i * 8.0 + 0.0004, ipv4("192.0.2.1", host, dest_unreachable(13, _quote(probe))))
    return t.scenario("blocked_service", blocked_service.__doc__ or "")


def prohibited_storm6(*, ports: int = 20, codes: tuple[int, ...] = (1, 5, 6)) -> Scenario:
    """The IPv6 form of :func:`prohibited_storm`: 2001:db8:77::7 probes ``ports`` TCP ports of
    each of 2001:db8:1::80, ::81 and ::82 through the site's filter, 2001:db8:1::1, whose rules
    refuse them with ICMPv6 type 1 code 1 (administratively prohibited), code 5 (source
    address failed ingress/egress policy) and code 6 (reject route to destination): one code,
    in ``codes``, per host."""
    t = _Timeline()
    prober, filter_ = "2001:db8:77::7", "2001:db8:1::1"
    hosts = [(f"2001:db8:1::{80 + k}", code) for k, code in enumerate(codes)]
    for i in range(ports):
        for k, (target, code) in enumerate(hosts):
            probe = ipv6(prober, target, tcp(50000 + i, 1 + i * 37, seq=i, src=prober, dst=target), next_header=6)
            at = i * 0.2 + k * 0.05
            t.add(at, probe)
            t.add(at + 0.0005, ipv6(filter_, prober, dest_unreachable6(code, _quote(probe), src=filter_, dst=prober)),
                  "refused")
    return t.scenario("prohibited_storm6", prohibited_storm6.__doc__ or "",
                      ("firewall_probe", prober, None, "T1590.006", "refused"))


def blocked_service6(*, attempts: int = 4) -> Scenario:
    """The IPv6 form of :func:`blocked_service`: a mail client on 2001:db8:1::10 tries
    [2001:db8:2::25]:25 ``attempts`` times over half a minute; the site's filter refuses each
    (ICMPv6 type 1 code 1), and the host pings the server meanwhile."""
    t = _Timeline()
    host, server, filter_ = "2001:db8:1::10", "2001:db8:2::25", "2001:db8:1::1"
    _pings(t, host, server, at=0, count=3, interval=1.0)
    for i in range(attempts):
        probe = ipv6(host, server, tcp(45000 + i, 25, seq=77 + i, window=64240, src=host, dst=server), next_header=6)
        t.add(5 + i * 8.0, probe)
        t.add(5 + i * 8.0 + 0.0004, ipv6(filter_, host, dest_unreachable6(1, _quote(probe), src=filter_, dst=host)))
    return t.scenario("blocked_service6", blocked_service6.__doc__ or "")


# --------------------------------------------------------------------------- OS fingerprinting

def _echo(src: str, dst: str, *, id: int, seq: int, payload: bytes = b"", code: int = 0, tos: int = 0,
          df: bool = False, ttl: int = 64, ident: int = 0, reply: bool = False) -> bytes:
    """An IPv4 echo request (reply) with any code, TOS and DF bit."""
    msg = icmpv4(0 if reply else 8, code, payload, rest=struct.pack("!HH", id, seq))
    return ipv4(src, dst, msg, tos=tos, df=df, ttl=ttl, ident=ident)


def nmap_os(*, seed: int = 13) -> Scenario:
    """``nmap -O 192.0.2.30`` from 203.0.113.50: host discovery (an echo request without data
    and a timestamp request, both answered), then, after the TCP probes, the IE pair — echo
    requests back to back, the first with code 9, TOS 0, DF, sequence 295 and 120 zero bytes,
    the second with code 0, TOS 4, DF, the next id and sequence and 150 zero bytes — which the
    Linux target answers with the code and TOS it got; then the U1 probe (UDP, 300 bytes of
    'C', IP ID 0x1042) to a closed port, answered port unreachable. Ids vary run to run."""
    t = _Timeline()
    rnd = random.Random(seed)
    prober, target = "203.0.113.50", "192.0.2.30"
    ident = rnd.randrange(65536)
    t.add(0.0, _echo(prober, target, id=ident, seq=0, ttl=rnd.randrange(37, 60), ident=rnd.randrange(65536)), "probe")
    t.add(0.0003, _echo(target, prober, id=ident, seq=0, reply=True))
    t.add(0.0005, ipv4(prober, target, timestamp_request(ident, 0), ttl=rnd.randrange(37, 60),
                       ident=rnd.randrange(65536)), "probe")
    t.add(0.0008, ipv4(target, prober, timestamp_reply(ident, 0, receive=43_200_000, transmit=43_200_000)))
    ident = rnd.randrange(65535)
    for k, (code, tos, size) in enumerate(((9, 0, 120), (0, 4, 150))):
        at = 1.2 + k * 0.1
        t.add(at, _echo(prober, target, id=ident + k, seq=295 + k, payload=bytes(size), code=code, tos=tos, df=True,
                        ttl=rnd.randrange(37, 60), ident=rnd.randrange(65536)), "probe")
        t.add(at + 0.0003, _echo(target, prober, id=ident + k, seq=295 + k, payload=bytes(size), code=code,
                                 tos=tos, reply=True, ident=rnd.randrange(65536)))
    u1 = ipv4(prober, target, udp(rnd.randrange(1024, 65536), 43210, b"C" * 300, src=prober, dst=target),
              proto=17, ident=0x1042)
    t.add(1.5, u1)
    t.add(1.5003, ipv4(target, prober, dest_unreachable(3, u1[:328])))
    return t.scenario("nmap_os", nmap_os.__doc__ or "",
                      ("os_fingerprint", prober, target, "T1592", "probe"))


def xprobe2() -> Scenario:
    """``xprobe2 192.0.2.31`` from 203.0.113.51: a plain echo request to find the host, then
    within a second its fingerprinting modules' queries — an echo request with code 123, TOS 6
    and DF, a timestamp, an address mask and an information request — and a UDP packet to a
    closed port. The host answers the echo requests and the timestamp, the port unreachable,
    not the mask or information requests."""
    t = _Timeline()
    prober, target = "203.0.113.51", "192.0.2.31"
    t.add(0.0, _echo(prober, target, id=7001, seq=0, ident=101), "probe")
    t.add(0.0003, _echo(target, prober, id=7001, seq=0, reply=True, ttl=128))
    t.add(0.5, _echo(prober, target, id=7002, seq=256, code=123, tos=6, df=True, ident=102), "probe")
    t.add(0.5003, _echo(target, prober, id=7002, seq=256, reply=True, ttl=128))
    t.add(0.6, ipv4(prober, target, timestamp_request(7003, 0), ident=103), "probe")
    t.add(0.6003, ipv4(target, prober, timestamp_reply(7003, 0, receive=43_200_000, transmit=43_200_000), ttl=128))
    t.add(0.7, ipv4(prober, target, mask_request(7004, 0), ident=104), "probe")
    t.add(0.8, ipv4(prober, target, info_request(7005, 0), ident=105), "probe")
    probe = ipv4(prober, target, udp(53, 65535, bytes(40), src=prober, dst=target), proto=17, ident=106)
    t.add(0.9, probe)
    t.add(0.9003, ipv4(target, prober, dest_unreachable(3, probe), ttl=128))
    return t.scenario("xprobe2", xprobe2.__doc__ or "",
                      ("os_fingerprint", prober, target, "T1592", "probe"))


def shipped_pings(*, count: int = 10) -> Scenario:
    """Pings as they ship, to one server: Linux ``ping -c count`` (DF set, TOS 0, 56 bytes led
    by a timestamp, TTL 64) and ``ping -6`` from 192.0.2.10 / 2001:db8:1::10, and Windows
    ``ping`` (4 requests, no DF, TOS 0, 32 bytes ``abcdefghijklmnopqrstuvwabcdefghi``, TTL 128)
    from 192.0.2.11; all answered."""
    t = _Timeline()
    linux, windows, server = "192.0.2.10", "192.0.2.11", "203.0.113.200"
    linux6, server6 = "2001:db8:1::10", "2001:db8:2::200"
    data = _linux_ping_data(56)
    for seq in range(1, count + 1):
        payload = data(t.start / 1e9 + seq)
        t.add(seq, _echo(linux, server, id=4242, seq=seq, payload=payload, df=True, ident=seq))
        t.add(seq + 0.0003, _echo(server, linux, id=4242, seq=seq, payload=payload, reply=True))
        payload = data(t.start / 1e9 + seq + 0.5)
        t.add(seq + 0.5, ipv6(linux6, server6, echo_request6(4243, seq, payload, src=linux6, dst=server6)))
        t.add(seq + 0.5003, ping(server6, linux6, id=4243, seq=seq, payload=payload, reply=True))
    for seq in range(1, 5):
        payload = b"abcdefghijklmnopqrstuvwabcdefghi"
        t.add(seq + 0.25, _echo(windows, server, id=1, seq=seq, payload=payload, ttl=128, ident=0x3000 + seq))
        t.add(seq + 0.2503, _echo(server, windows, id=1, seq=seq, payload=payload, reply=True))
    return t.scenario("shipped_pings", shipped_pings.__doc__ or "")


def dscp_monitoring(*, hosts: int = 5, rounds: int = 12) -> Scenario:
    """A voice-network monitor, 192.0.2.5, pings ``hosts`` phones every 10 s with DSCP EF
    (``ping -Q 0xb8``: TOS 184, DF); they answer with the TOS they got. One shape each, and no
    ECN bits."""
    t = _Timeline()
    for r in range(rounds):
        for h in range(hosts):
            phone, at = f"192.0.2.{120 + h}", r * 10.0 + h * 0.01
            t.add(at, _echo("192.0.2.5", phone, id=500 + h, seq=r, payload=bytes(56), tos=0xB8, df=True))
            t.add(at + 0.0003, _echo(phone, "192.0.2.5", id=500 + h, seq=r, payload=bytes(56), tos=0xB8, reply=True))
    return t.scenario("dscp_monitoring", dscp_monitoring.__doc__ or "")


def hourly_timestamp(*, hours: int = 3) -> Scenario:
    """A monitor, 192.0.2.5, pings the server 192.0.2.20 every minute and once an hour asks
    its clock with a timestamp request; the server answers both. Two query types, an hour
    apart."""
    t = _Timeline()
    _pings(t, "192.0.2.5", "192.0.2.20", at=0, count=hours * 60, interval=60.0, id=9)
    for h in range(hours):
        at = h * 3600.0 + 1800.0
        t.add(at, ipv4("192.0.2.5", "192.0.2.20", timestamp_request(10, h, originate=h)))
        t.add(at + 0.0003, ipv4("192.0.2.20", "192.0.2.5", timestamp_reply(10, h, originate=h, receive=h, transmit=h)))
    return t.scenario("hourly_timestamp", hourly_timestamp.__doc__ or "")
# --------------------------------------------------------------------------- IPv6 on the link

ATTACKER_MAC = "02:00:00:00:0b:ad"


def _solicited_node(target: str) -> str:
    return str(ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff"
                                     + ipaddress.IPv6Address(target).packed[13:]))


def _nd(t: _Timeline, at: float, src: str, dst: str, message: bytes, tag: str | None = None,
        **macs: str) -> None:
    """A neighbour discovery message: hop limit 255, as RFC 4861 requires."""
    t.add(at, ipv6(src, dst, message, hop_limit=255), tag, **macs)


def _solicit(t: _Timeline, at: float, asker: str, target: str, *, asker_mac: str | None = None) -> None:
    """``asker`` resolves ``target``: a neighbour solicitation to its solicited-node address."""
    mac = asker_mac or mac_of(asker)
    dst = _solicited_node(target)
    _nd(t, at, asker, dst, neighbor_solicit(target, src_mac=mac, src=asker, dst=dst), src_mac=mac,
        dst_mac=mac_of(dst))


def _answer(t: _Timeline, at: float, target: str, asker: str, *, mac: str | None = None,
            tag: str | None = None, router: bool = False, override: bool = True) -> None:
    """A solicited neighbour advertisement for ``target``, from ``target``, at ``mac``."""
    mac = mac or mac_of(target)
    _nd(t, at, target, asker, neighbor_advert(target, router=router, override=override, target_mac=mac,
                                               src=target, dst=asker), tag, src_mac=mac)


def _resolve(t: _Timeline, at: float, asker: str, target: str, *, target_mac: str | None = None,
             router: bool = False) -> None:
    _solicit(t, at, asker, target)
    _answer(t, at + 0.0004, target, asker, mac=target_mac, router=router)


def _advertise(t: _Timeline, at: float, target: str, mac: str, tag: str | None = None) -> None:
    """An unsolicited override advertisement of ``target`` at ``mac``, to all nodes."""
    _nd(t, at, target, "ff02::1", neighbor_advert(target, solicited=False, target_mac=mac, src=target,
                                                   dst="ff02::1"), tag, src_mac=mac)


def _dad(t: _Timeline, at: float, tentative: str, mac: str) -> None:
    """Duplicate address detection: a solicitation for ``tentative`` from ``::``."""
    dst = _solicited_node(tentative)
    _nd(t, at, "::", dst, neighbor_solicit(tentative, src="::", dst=dst), src_mac=mac, dst_mac=mac_of(dst))


def nd_spoofing() -> Scenario:
    """2001:db8:1::20 resolves 2001:db8:1::10 twice; the second time 02:00:00:00:0b:ad answers
    too, before the owner (parasite6), then advertises the address as its own three times,
    unsolicited, with the override flag (fake_advertise6)."""
    t = _Timeline()
    _router_v6(t)
    host, asker = "2001:db8:1::10", "2001:db8:1::20"
    _resolve(t, 3, asker, host)
    _solicit(t, 10, asker, host)
    _answer(t, 10.0002, host, asker, mac=ATTACKER_MAC, tag="spoof")
    _answer(t, 10.0004, host, asker)
    for at in (12, 14, 16):
        _advertise(t, at, host, ATTACKER_MAC, "spoof")
    return t.scenario("nd_spoofing", nd_spoofing.__doc__ or "",
                      ("nd_spoofing", host, None, "T1557", "spoof"))


def parasite6() -> Scenario:
    """THC parasite6: 02:00:00:00:0b:ad answers every neighbour solicitation on the link with
    its own MAC, the router's address fe80::1 included, racing the owners' answers. The router
    only advertises (every 20 s, nothing forwarded yet): its advertisements stay its own."""
    t = _Timeline()
    for r in range(6):
        _nd(t, r * 20, "fe80::1", "ff02::1",
            router_advert6(prefixes=[("2001:db8:1::", 64)], src_mac=ROUTER_MAC, src="fe80::1"))
    hosts = ["2001:db8:1::10", "2001:db8:1::20", "2001:db8:1::30"]
    for i, (asker, target) in enumerate([(h, "fe80::1") for h in hosts]
                                        + [(a, b) for a in hosts for b in hosts if a != b]):
        at = 30 + i * 2.0
        _solicit(t, at, asker, target)
        _answer(t, at + 0.0002, target, asker, mac=ATTACKER_MAC, tag="spoof")
        _answer(t, at + 0.0005, target, asker, router=target == "fe80::1")
    return t.scenario("parasite6", parasite6.__doc__ or "", ("nd_spoofing", None, None, "T1557", "spoof"))


def dad_dos(*, hosts: int = 3) -> Scenario:
    """THC dos-new-ip6: ``hosts`` hosts join the link; 02:00:00:00:0b:ad answers each one's
    duplicate address detection within 5 ms, in the tentative address's name, so none can
    configure it."""
    t = _Timeline()
    _router_v6(t)
    for i in range(hosts):
        tentative, mac = f"fe80::a{i + 1}", f"02:00:00:00:00:a{i + 1}"
        _dad(t, 20 + i * 5, tentative, mac)
        _advertise(t, 20 + i * 5 + 0.005, tentative, ATTACKER_MAC, "answer")
    return t.scenario("dad_dos", dad_dos.__doc__ or "", ("dad_dos", None, None, "T1499", "answer"))


def ra_flood(*, count: int = 300, seed: int = 20) -> Scenario:
    """THC flood_router6: ``count`` router advertisements in 3 s, each from a random link-local
    address and MAC with a random prefix, on a link whose router (fe80::1) forwards."""
    rnd = random.Random(seed)
    t = _Timeline()
    _router_v6(t)
    for i in range(count):
        src = f"fe80::{rnd.getrandbits(16):x}:{rnd.getrandbits(16):x}"
        mac = "02:" + ":".join(f"{rnd.getrandbits(8):02x}" for _ in range(5))
        prefix = f"2001:db8:{rnd.getrandbits(16):x}::"
        _nd(t, 30 + i * 3.0 / count, src, "ff02::1",
            router_advert6(lifetime=65535, prefixes=[(prefix, 64)], src_mac=mac, mtu=1500, src=src),
            "flood", src_mac=mac)
    return t.scenario("ra_flood", ra_flood.__doc__ or "", ("ra_flood", None, "ff02::1", "T1499", "flood"))


def mtu_attack(*, flows: int = 30) -> Scenario:
    """2001:db8:ff::66 tells 2001:db8:1::10 three times that the path to 2001:db8:ff::9 takes
    only 1000 bytes (below IPv6's 1280: THC toobig6); then 192.0.2.10's ``flows`` connections
    to 198.51.100.x get "fragmentation needed, MTU 576" within 3 s, each in its peer's name."""
    t = _Timeline()
    host6, peer6 = "2001:db8:1::10", "2001:db8:ff::9"
    sent6 = ipv6(host6, peer6, udp(40000, 443, bytes(1452), src=host6, dst=peer6), next_header=17)
    for i in range(3):
        t.add(5 + i, ipv6("2001:db8:ff::66", host6, packet_too_big(1000, sent6[:1232], src="2001:db8:ff::66",
                                                                   dst=host6)), "tiny")
    for i in range(flows):
        peer = f"198.51.100.{i + 1}"
        sent = ipv4("192.0.2.10", peer, udp(40000 + i, 443, bytes(1472), src="192.0.2.10", dst=peer),
                    proto=17, df=True)
        t.add(10 + i * 0.1, ipv4(peer, "192.0.2.10", dest_unreachable(4, _quote(sent), mtu=576)), "shrink")
    return t.scenario("mtu_attack", mtu_attack.__doc__ or "",
                      ("mtu_attack", "2001:db8:ff::66", host6, "T1499", "tiny"),
                      ("mtu_attack", None, "192.0.2.10", "T1499", "shrink"))


def dad_unanswered(*, hosts: int = 4) -> Scenario:
    """``hosts`` hosts join: duplicate address detection for a link-local and a global address
    each, which nobody answers; each then announces its addresses (unsolicited override
    advertisements from its own MAC) and asks for a router."""
    t = _Timeline()
    _router_v6(t)
    for i in range(hosts):
        mac = f"02:00:00:00:00:{0x40 + i:02x}"
        for j, address in enumerate((f"fe80::{0x40 + i:x}", f"2001:db8:1::{0x40 + i:x}")):
            _dad(t, 10 + i * 3 + j * 1.5, address, mac)
            _advertise(t, 11 + i * 3 + j * 1.5, address, mac)
    return t.scenario("dad_unanswered", dad_unanswered.__doc__ or "")


def neighbor_unreachability(*, rounds: int = 10) -> Scenario:
    """Neighbour unreachability detection: 2001:db8:1::10 probes its router fe80::1 and a peer
    every 30 s with unicast solicitations; both confirm (solicited, no override)."""
    t = _Timeline()
    _router_v6(t)
    host = "2001:db8:1::10"
    for r in range(rounds):
        for target in ("fe80::1", "2001:db8:1::20"):
            at = 5 + r * 30 + (target != "fe80::1")
            _nd(t, at, host, target, neighbor_solicit(target, src_mac=mac_of(host), src=host, dst=target))
            _answer(t, at + 0.0003, target, host, router=target == "fe80::1", override=False)
    return t.scenario("neighbor_unreachability", neighbor_unreachability.__doc__ or "")


def nic_swap() -> Scenario:
    """2001:db8:1::10 is at 02:00:00:00:00:10 for a minute; silent for four; then comes back at
    02:00:00:00:01:10 (its NIC swapped): duplicate address detection, an unsolicited override
    advertisement, and its neighbours resolve it at the new MAC."""
    t = _Timeline()
    _router_v6(t)
    host, new_mac = "2001:db8:1::10", "02:00:00:00:01:10"
    for at in (5, 35, 60):
        _resolve(t, at, "2001:db8:1::20", host)
    _dad(t, 300, host, new_mac)
    _advertise(t, 301, host, new_mac)
    for at in (305, 335):
        _resolve(t, at, "2001:db8:1::20", host, target_mac=new_mac)
    return t.scenario("nic_swap", nic_swap.__doc__ or "")


def several_addresses() -> Scenario:
    """One host (02:00:00:00:00:10) with a link-local, a stable and two temporary addresses
    answers for each, and its peers resolve each of them."""
    t = _Timeline()
    _router_v6(t)
    mac = "02:00:00:00:00:10"
    addresses = ["fe80::10", "2001:db8:1::10", "2001:db8:1:0:5d1e:77a2:913c:4e01", "2001:db8:1:0:a3f:1b2c:c4d5:e6f7"]
    for i, address in enumerate(addresses):
        for j, asker in enumerate(("2001:db8:1::20", "2001:db8:1::30")):
            _resolve(t, 5 + i * 2 + j * 0.5, asker, address, target_mac=mac)
    for address in addresses[2:]:
        _advertise(t, 20, address, mac)
    return t.scenario("several_addresses", several_addresses.__doc__ or "")


def router_schedule(*, rounds: int = 20, interval: float = 30.0) -> Scenario:
    """The router fe80::1 (which forwards the hosts' traffic) advertises 2001:db8:1::/64, its
    MTU and its MAC every ``interval`` seconds for ten minutes, and answers a host's
    solicitation."""
    t = _Timeline()
    _router_v6(t)
    ra = router_advert6(prefixes=[("2001:db8:1::", 64)], src_mac=ROUTER_MAC, mtu=1500, src="fe80::1")
    for r in range(rounds):
        _nd(t, 10 + r * interval, "fe80::1", "ff02::1", ra)
    _nd(t, 100, "fe80::10", "ff02::2", router_solicit6(src_mac=mac_of("fe80::10"), src="fe80::10"))
    _nd(t, 100.01, "fe80::1", "fe80::10", router_advert6(prefixes=[("2001:db8:1::", 64)], src_mac=ROUTER_MAC,
                                                         mtu=1500, src="fe80::1", dst="fe80::10"))
    return t.scenario("router_schedule", router_schedule.__doc__ or "")
# --------------------------------------------------------------------------- errors against flows

_CLIENT, _SERVER, _ROUTER = "192.0.2.10", "203.0.113.5", "198.51.100.1"


def _segment(src: str, dst: str, sport: int, dport: int, *, seq: int, ack: int, flags: int = 0x18,
             data: int = 0) -> bytes:
    if ":" in src:
        return ipv6(src, dst, tcp(sport, dport, bytes(data), flags=flags, seq=seq, ack=ack, src=src, dst=dst),
                    next_header=6)
    return ipv4(src, dst, tcp(sport, dport, bytes(data), flags=flags, seq=seq, ack=ack, src=src, dst=dst), proto=6,
                df=True)


def _connection(t: _Timeline, client: str, server: str, *, sport: int = 40000, dport: int = 443, at: float = 0,
                rounds: int = 20, size: int = 1000, isn: tuple[int, int] = (1_000_000, 7_000_000),
                handshake: bool = True, tag: str | None = None) -> tuple[int, int]:
    """A TCP connection: the handshake (unless ``handshake`` is False: the capture missed it),
    then ``rounds`` requests of ``size`` bytes 0.5 s apart, each acknowledged; returns the next
    sequence numbers of both sides."""
    c, s_ = isn
    if handshake:
        t.add(at, _segment(client, server, sport, dport, seq=c, ack=0, flags=0x02), tag)
        t.add(at + 0.01, _segment(server, client, dport, sport, seq=s_, ack=c + 1, flags=0x12))
        c, s_ = c + 1, s_ + 1
    for i in range(rounds):
        when = at + 0.02 + i * 0.5
        t.add(when, _segment(client, server, sport, dport, seq=c, ack=s_, data=size), tag)
        c += size
        t.add(when + 0.01, _segment(server, client, dport, sport, seq=s_, ack=c, flags=0x10))
    return c, s_


def forged_reset() -> Scenario:
    """A blind connection reset (RFC 5927): while 192.0.2.10 downloads from 203.0.113.5 over a
    live TCP connection, 198.51.100.1 sends it three port unreachables quoting the connection
    with sequence numbers far from any it sent; the connection carries on."""
    t = _Timeline()
    _connection(t, _CLIENT, _SERVER)
    for i, guess in enumerate((123_456_789, 2_000_000_000, 3_500_000_000)):
        quoted = _segment(_CLIENT, _SERVER, 40000, 443, seq=guess, ack=0, flags=0x10)
        t.add(3.3 + i * 0.5, ipv4(_ROUTER, _CLIENT, dest_unreachable(3, _quote(quoted))), "forged")
    return t.scenario("forged_reset", forged_reset.__doc__ or "",
                      ("forged_error", _ROUTER, _CLIENT, "T1499", "forged"))


def forged_pmtu() -> Scenario:
    """A throughput attack (RFC 5927): 198.51.100.1 sends 192.0.2.10, which holds a TCP
    connection to 203.0.113.5:443, fragmentation-needed messages (MTU 576) quoting the same
    addresses from source ports the client never used, guessed one after another."""
    t = _Timeline()
    _connection(t, _CLIENT, _SERVER)
    for i in range(4):
        quoted = _segment(_CLIENT, _SERVER, 40100 + i, 443, seq=55_000 + i, ack=0, flags=0x10)
        t.add(2.1 + i * 0.25, ipv4(_ROUTER, _CLIENT, dest_unreachable(4, _quote(quoted), mtu=576)), "forged")
    return t.scenario("forged_pmtu", forged_pmtu.__doc__ or "",
                      ("forged_error", _ROUTER, _CLIENT, "T1499", "forged"))


def udp_probe_unreachable() -> Scenario:
    """A host probes 203.0.113.5 udp/33434 and gets the real port unreachable, while it also
    holds a TCP connection to it: UDP quotes carry no sequence number to judge."""
    t = _Timeline()
    _connection(t, _CLIENT, _SERVER, rounds=6)
    probe = ipv4(_CLIENT, _SERVER, udp(50000, 33434, bytes(20), src=_CLIENT, dst=_SERVER), proto=17)
    t.add(1.0, probe)
    t.add(1.02, ipv4(_SERVER, _CLIENT, dest_unreachable(3, _quote(probe))))
    return t.scenario("udp_probe_unreachable", udp_probe_unreachable.__doc__ or "")


def pmtu_shrink() -> Scenario:
    """Real path-MTU discovery on a TCP connection: a 1400-byte segment meets a link of MTU
    1280; the router quotes it (IPv4 fragmentation needed, and the same over IPv6 with packet
    too big) and the sender carries on with smaller segments."""
    t = _Timeline()
    c, s_ = _connection(t, _CLIENT, _SERVER, rounds=4, size=1400)
    big = _segment(_CLIENT, _SERVER, 40000, 443, seq=c - 1400, ack=s_, data=1400)
    t.add(2.0, ipv4("192.0.2.1", _CLIENT, dest_unreachable(4, _quote(big), mtu=1280)))
    _connection(t, _CLIENT, _SERVER, at=2.1, rounds=8, size=1200, isn=(c, s_), handshake=False)
    c6, s6 = _connection(t, "2001:db8:1::10", "2001:db8:ff::5", rounds=4, size=1400)
    big6 = _segment("2001:db8:1::10", "2001:db8:ff::5", 40000, 443, seq=c6 - 1400, ack=s6, data=1400)
    t.add(2.05, ipv6("2001:db8:1::1", "2001:db8:1::10",
                     packet_too_big(1280, big6[:1232], src="2001:db8:1::1", dst="2001:db8:1::10")))
    _connection(t, "2001:db8:1::10", "2001:db8:ff::5", at=2.2, rounds=8, size=1200, isn=(c6, s6), handshake=False)
    return t.scenario("pmtu_shrink", pmtu_shrink.__doc__ or "")


def missed_start() -> Scenario:
    """Errors quoting connections whose start the capture missed: a port unreachable quoting
    a segment sent just before the capture began (its sequence number a little below any the
    capture holds), and an ICMPv6 unreachable quoting a connection the capture never carried,
    between hosts it never saw talk."""
    t = _Timeline()
    c, _ = _connection(t, _CLIENT, _SERVER, at=0.5, rounds=10, handshake=False)
    before = _segment(_CLIENT, _SERVER, 40000, 443, seq=1_000_000 - 3000, ack=7_000_001, data=1000)
    t.add(0.1, ipv4(_ROUTER, _CLIENT, dest_unreachable(3, _quote(before))))
    gone = _segment("2001:db8:1::10", "2001:db8:ff::9", 41000, 22, seq=42, ack=0, data=100)
    t.add(0.2, ipv6("2001:db8:1::1", "2001:db8:1::10",
                    dest_unreachable6(1, gone[:1232], src="2001:db8:1::1", dst="2001:db8:1::10")))
    return t.scenario("missed_start", missed_start.__doc__ or "")


ATTACKS = (echo_flood, ddos_echo_flood, sweep, smurf, smurf_replies, ping_of_death, teardrop,
           icmp_redirect, redirect_burst, rogue_router_advert, kill_router, ra_prefix_change, mask_reply,
           unreachable_scan, unreachable_host_scan, icmp_tunnel, ping_exfiltration,
           blacknurse, topology_mapping, firewalking, prohibited_storm, prohibited_storm6, nmap_os, xprobe2,
           nd_spoofing, parasite6, dad_dos, ra_flood, mtu_attack, forged_reset, forged_pmtu)
BENIGN = (monitoring, traceroute, udp_traceroute, path_mtu, router_redirect, two_routers, dns_failure,
          large_ping, ping_sizes, windows_ping, broadcast_ping, mtr, scheduled_traceroutes,
          mtr_udp, blocked_service, blocked_service6, shipped_pings, dscp_monitoring, hourly_timestamp,
          dad_unanswered, neighbor_unreachability, nic_swap, several_addresses, router_schedule,
          udp_probe_unreachable, pmtu_shrink, missed_start)


# --------------------------------------------------------------------------- demo

def demo(*, start: int = DEMO_START_NS) -> Scenario:
    """The demo sample: a monitor pinging its gateway, a ping sweep, an address mask reply, a
    fragmented (benign) echo, a ping of death and an ICMP tunnel."""
    t = _Timeline(start)
    _pings(t, "192.0.2.10", "192.0.2.1", at=0, count=5, interval=1.0, id=7)
    for host in range(1, 41):
        t.add(6 + host * 0.01, ping("203.0.113.66", f"198.51.100.{host}", id=99, seq=host), "sweep")
    _mask_exchange(t, "203.0.113.66", at=7)
    _fragments(t, "192.0.2.20", "192.0.2.30", echo_request(1, 1, bytes(range(256)) * 12), at=8, ident=4242)
    _fragments(t, "198.51.100.9", "192.0.2.50", echo_request(1, 1, bytes(65600)), at=9, tag="pod")
    _tunnel(t, at=10, exchanges=15, seed=7)
    return t.scenario("demo", demo.__doc__ or "",
                      ("sweep", "203.0.113.66", None, "T1018", "sweep"),
                      ("mask_reply", "192.0.2.1", "203.0.113.66", "T1590", "reply"),
                      ("ping_of_death", "198.51.100.9", "192.0.2.50", "T1499", "pod"),
                      ("icmp_tunnel", "192.0.2.10", "203.0.113.200", "T1095", "tunnel"))


def demo_frames(*, start: int = DEMO_START_NS) -> list[Frame]:
    """The frames of :func:`demo`."""
    return list(demo(start=start).frames)


def write_demo(path: str) -> str:
    """Write the demo sample as a pcap and return its path."""
    write_pcap(path, demo_frames(), nanosecond=True)
    return path

