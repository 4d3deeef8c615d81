"""Writes docs/quickstart.ipynb (unexecuted) from the cells below: edit here, then run this file."""
from pathlib import Path

import nbformat as nbf

CELLS = [
    ("md", "# icmpscope quickstart\n\nRead a capture into polars, query it, run the detectors, look at the "
           "evidence, plot, and analyze a folder of captures. The sample is icmpscope's built-in labelled "
           "demo; point `path` at your own pcap/pcapng (plain, `.gz` or `.zst`)."),
    ("code", "import tempfile, os\nimport polars as pl\nimport icmpscope as ic\n\n"
             "workdir = tempfile.mkdtemp()\npath = ic.synth.write_demo(os.path.join(workdir, 'demo.pcap'))"),
    ("md", "## Read\n`read_pcap` returns a `Capture`: polars DataFrames `icmp`, `fragments`, `datagrams`, `stats`, `errors`."),
    ("code", "cap = ic.read_pcap(path)\ncap"),
    ("code", "cap.icmp.select('frame', 'ts', 'src', 'dst', 'icmp_type', 'icmp_code', 'icmp_id', 'icmp_seq', 'payload_len').head()"),
    ("md", "Every record is accounted for: `icmp + fragment + other + undecodable == packets`."),
    ("code", "cap.stats.select('packets', 'icmp', 'fragment', 'other', 'undecodable')"),
    ("md", "## Query with polars"),
    ("code", "(cap.icmp.group_by('src', 'icmp_type')\n   .agg(pl.len().alias('messages'), pl.col('dst').n_unique().alias('targets'))\n   .sort('messages', descending=True))"),
    ("md", "## Detect\nEvery alert carries its evidence: the frames that prove it."),
    ("code", "alerts = ic.detect.all(cap)\nalerts.select('kind', 'technique', 'src', 'dst', 'packets', 'detail')"),
    ("code", "first = alerts.row(0, named=True)\ncap.icmp.filter(pl.col('frame').is_in(first['frames'])).select('frame', 'ts', 'src', 'dst', 'icmp_type')"),
    ("md", "## Echo conversations"),
    ("code", "ic.echo_pairs(cap).head()"),
    ("md", "## A folder of captures\n`analyze` reads many files (on a thread pool by default, or any executor such as a Dask cluster's) and merges them as one capture."),
    ("code", "for i in range(3):\n    ic.synth.write_demo(os.path.join(workdir, f'rotated-{i}.pcap'))\n"
             "report = ic.analyze(os.path.join(workdir, 'rotated-*.pcap'), progress=False)\nreport"),
    ("code", "report.plot();"),
    ("md", "## Bigger than memory\n`scan_pcap` is a lazy, streaming polars source: only the columns you select are moved."),
    ("code", "ic.scan_pcap(path).filter(pl.col('icmp_type') == 8).group_by('dst').len().collect(engine='streaming').sort('dst').head()"),
]

nb = nbf.v4.new_notebook()
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in CELLS]
nbf.write(nb, Path(__file__).with_name("quickstart.ipynb"))
