"""dpkt peer: decode every packet with dpkt and build a pyarrow table of the same ICMP columns."""
import socket
import sys

import dpkt
import pyarrow as pa

cols = {k: [] for k in ("ts", "ip_version", "src", "dst", "ttl", "icmp_type", "icmp_code", "icmp_id", "icmp_seq")}
with open(sys.argv[1], "rb") as f:
    for ts, buf in dpkt.pcap.Reader(f):
        try:
            eth = dpkt.ethernet.Ethernet(buf)
        except dpkt.UnpackError:
            continue
        ip = eth.data
        if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.icmp.ICMP):
            icmp, version, fam = ip.data, 4, socket.AF_INET
        elif isinstance(ip, dpkt.ip6.IP6) and isinstance(ip.data, dpkt.icmp6.ICMP6):
            icmp, version, fam = ip.data, 6, socket.AF_INET6
        else:
            continue
        echo = icmp.data if icmp.type in (0, 8, 128, 129) and hasattr(icmp.data, "id") else None
        cols["ts"].append(ts)
        cols["ip_version"].append(version)
        cols["src"].append(socket.inet_ntop(fam, ip.src))
        cols["dst"].append(socket.inet_ntop(fam, ip.dst))
        cols["ttl"].append(ip.ttl if version == 4 else ip.hlim)
        cols["icmp_type"].append(icmp.type)
        cols["icmp_code"].append(icmp.code)
        cols["icmp_id"].append(echo.id if echo is not None else None)
        cols["icmp_seq"].append(echo.seq if echo is not None else None)
table = pa.table(cols)
print(table.num_rows)
