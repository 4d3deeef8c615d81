//! The pcap reader and the whole pipeline behind it, from raw file bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| icmpscope_core::fuzzing::capture(data));
