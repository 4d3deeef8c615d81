"""icmpscope: read a capture's `icmp` table into polars (what the benchmark times, whole process)."""
import sys

import icmpscope as ic

cap = ic.read_pcap(sys.argv[1:] if len(sys.argv) > 2 else sys.argv[1])
print(cap.icmp.height, cap.stats["packets"].sum())
