//! icmpscope-core: reads pcap/pcapng captures and decodes ICMP into Arrow tables.
//!
//! The modules follow the data path: `source` (files, decompression, pcap/pcapng records) →
//! `link` → `ip` (v4, v6 and extension headers) ⇄ `tunnel` (decapsulation, back to `link`/`ip`) →
//! `reassembly` → `icmp` → `table` (Arrow builders), tied together per file by `pipeline`. Below
//! them all, `wire` holds the numbers (ethertypes, IP protocols) and byte readers every decoder
//! shares; it depends on none of them. Beside the path, `windows` counts over time windows for
//! the detectors (the Python package's `detect.base`).
//!
//! Hostile input is the normal case: no value read from a capture reaches an `unwrap`, an
//! `expect` or an index that can panic, and length/offset arithmetic on such values is checked
//! or proven in range where it is done. The few `expect`s left assert internal invariants only
//! (Arrow columns built to their own schema, dictionary keys taken from their own dictionary).
//! `fuzz/` runs the readers, decoders and reassembly under libFuzzer.
#![forbid(unsafe_code)]

pub mod error;
pub mod flows;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod icmp;
pub mod ip;
pub mod link;
pub mod pipeline;
pub mod reassembly;
pub mod scan;
pub mod source;
pub mod table;
pub mod tunnel;
pub mod windows;
pub mod wire;

pub use error::{CaptureError, DecodeError};
pub use pipeline::{read_file, read_file_in_parts, read_location_in_parts, FileTables, Options, Stats};
pub use source::{LocalFile, Location, Stream};

use rayon::prelude::*;
use std::path::PathBuf;

/// Reads several captures on all cores: files side by side, and fewer files than cores each in
/// pieces ([`read_file_in_parts`]); results keep the order of `paths`.
pub fn read_files(paths: &[PathBuf], options: Options) -> Vec<Result<FileTables, CaptureError>> {
    read_locations(&local_files(paths), options)
}

/// [`read_files`] on `threads` threads of a pool of its own (the machine's cores otherwise).
pub fn read_files_on_threads(paths: &[PathBuf], options: Options, threads: usize) -> Vec<Result<FileTables, CaptureError>> {
    read_locations_on_threads(&local_files(paths), options, threads)
}

fn local_files(paths: &[PathBuf]) -> Vec<Box<dyn Location>> {
    paths.iter().map(|p| Box::new(LocalFile::new(p)) as Box<dyn Location>).collect()
}

/// [`read_files`] of captures wherever they are ([`read_location_in_parts`]).
pub fn read_locations(locations: &[Box<dyn Location>], options: Options) -> Vec<Result<FileTables, CaptureError>> {
    let parts = rayon::current_num_threads() / locations.len().max(1);
    locations.par_iter().map(|l| read_location_in_parts(l.as_ref(), options, parts)).collect()
}

/// [`read_locations`] on `threads` threads of a pool of its own (the machine's cores otherwise).
pub fn read_locations_on_threads(locations: &[Box<dyn Location>], options: Options, threads: usize) -> Vec<Result<FileTables, CaptureError>> {
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(|| read_locations(locations, options)),
        // Threads could not be started: the shared pool reads the same tables.
        Err(_) => read_locations(locations, options),
    }
}
