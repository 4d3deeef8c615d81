//! Profiling harness: decodes captures into their tables, as `read_pcap` does without Python.
//! `cargo build --release --example read_file -p icmpscope-core`, then run it under
//! `perf record` or `valgrind --tool=callgrind` (bench/NOTES.md). `PARTS=2` reads each file in
//! two pieces side by side.
use icmpscope_core::{read_file_in_parts, Options};
use std::path::Path;

fn main() {
    let parts = std::env::var("PARTS").ok().and_then(|p| p.parse().ok()).unwrap_or(1);
    for path in std::env::args().skip(1) {
        // FLOWS=0 leaves the flows table out.
        let flows = std::env::var("FLOWS").map_or(true, |v| v != "0");
        let started = std::time::Instant::now();
        match read_file_in_parts(Path::new(&path), Options { flows, ..Options::default() }, parts) {
            Ok(tables) => {
                let rows: usize = tables.icmp.iter().map(|b| b.num_rows()).sum();
                let elapsed = started.elapsed().as_secs_f64();
                println!("{path}: {rows} icmp rows, {} flows in {} pieces, {elapsed:.3} s", tables.flows.num_rows(), tables.icmp.len());
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
