#!/usr/bin/env bash
# Builds the seed corpora fuzz/corpus/{pcap,pcapng,decode,reassembly,windows}/ (not committed) from
# ../shared/captures (or the folder given) and from captures crafted with icmpscope.synth.
set -euo pipefail
cd "$(dirname "$0")"
python3 seed.py "$@"
