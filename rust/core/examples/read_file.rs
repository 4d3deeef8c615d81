//! Profiling harness: decodes captures into their tables, as `read_pcap` does without Python.
//! `cargo build --release --example read_file -p icmpscope-core`, then run it under
//! `perf record` or `valgrind --tool=callgrind` (bench/NOTES.md). `PARTS=2` reads each file in
//! two pieces side by side.
use icmpscope_core::{read_file_in_parts, Options};
use std::path::Path;

fn main() {
    let parts = std::env::var("PARTS").ok().and_then(|p| p.parse().ok()).unwrap_or(1);
    for path in std::env::args().skip(1) {
        match read_file_in_parts(Path::new(&path), Options::default(), parts) {
            Ok(tables) => {
                let rows: usize = tables.icmp.iter().map(|b| b.num_rows()).sum();
                println!("{path}: {rows} icmp rows in {} pieces", tables.icmp.len());
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
