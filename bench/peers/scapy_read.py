"""scapy peer: the same ICMP columns from the first N packets (scapy is too slow for the whole file)."""
import sys

from scapy.all import ICMP, IP, IPv6, PcapReader  # type: ignore[import-not-found]

limit = int(sys.argv[2])
rows = []
for i, pkt in enumerate(PcapReader(sys.argv[1])):
    if i >= limit:
        break
    if IP in pkt and ICMP in pkt:
        rows.append((pkt.time, 4, pkt[IP].src, pkt[IP].dst, pkt[IP].ttl, pkt[ICMP].type, pkt[ICMP].code))
    elif IPv6 in pkt and pkt[IPv6].nh == 58:
        rows.append((pkt.time, 6, pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].hlim, None, None))
print(len(rows))
