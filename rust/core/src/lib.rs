//! icmpscope-core: reads pcap/pcapng captures and decodes ICMP into Arrow tables.
//!
//! The modules follow the data path: `source` (files, decompression, pcap/pcapng records) →
//! `link` → `ip` (v4, v6 and extension headers) ⇄ `tunnel` (decapsulation, back to `link`/`ip`) →
//! `reassembly` → `icmp` → `table` (Arrow builders), tied together per file by `pipeline`.
//!
//! Hostile input is the normal case: no value read from a capture reaches an `unwrap`, an
//! `expect` or an index that can panic, and length/offset arithmetic on such values is checked
//! or proven in range where it is done. The few `expect`s left assert internal invariants only
//! (Arrow columns built to their own schema, dictionary keys taken from their own dictionary).
//! `fuzz/` runs the readers, decoders and reassembly under libFuzzer.
#![forbid(unsafe_code)]

pub mod error;
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

pub use error::{CaptureError, DecodeError};
pub use pipeline::{read_file, FileTables, Options, Stats};

use rayon::prelude::*;
use std::path::PathBuf;

/// Reads several captures, one per core at a time; results keep the order of `paths`.
pub fn read_files(paths: &[PathBuf], options: Options) -> Vec<Result<FileTables, CaptureError>> {
    paths.par_iter().map(|p| read_file(p, options)).collect()
}
