//! One frame through link → IP → ICMP (and the tables), from raw bytes and a link type.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| icmpscope_core::fuzzing::packet(data));
