//! Rows of groups, items and times into the window kernels (trailing counts, episodes, at_least).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| icmpscope_core::fuzzing::windows(data));
