//! Sequences of IPv4/IPv6 fragments (and 6LoWPAN and CAPWAP pieces) into the reassembler, under small bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| icmpscope_core::fuzzing::reassembly(data));
