//! Profiling harness: decodes captures into their tables, as `read_pcap` does without Python.
//! `cargo build --release --example read_file -p icmpscope-core`, then run it under
//! `perf record` or `valgrind --tool=callgrind` (bench/NOTES.md).
use icmpscope_core::{read_file, Options};
use std::path::Path;

fn main() {
    for path in std::env::args().skip(1) {
        match read_file(Path::new(&path), Options::default()) {
            Ok(tables) => println!("{path}: {} icmp rows", tables.icmp.num_rows()),
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
