"""icmpscope: read a capture's `icmp` table into polars (what the benchmark times, whole process).

    icmpscope_read.py FILE [FILE ...]      read, print rows and packets
    icmpscope_read.py --arrow-mib FILE     print the Arrow size of all five tables, in MiB
"""
import sys

import icmpscope as ic

if sys.argv[1] == "--arrow-mib":
    cap = ic.read_pcap(sys.argv[2])
    tables = (cap.icmp, cap.fragments, cap.datagrams, cap.stats, cap.errors)
    import polars as pl  # here, not above: the timed read imports polars beside the decoding

    # As the tables cross from the core (string views); the default export copies them to large strings.
    print(sum(t.to_arrow(compat_level=pl.CompatLevel.newest()).nbytes for t in tables) / 2**20)
else:
    cap = ic.read_pcap(sys.argv[1:] if len(sys.argv) > 2 else sys.argv[1])
    print(cap.icmp.height, cap.stats["packets"].sum())
