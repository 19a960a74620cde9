#![no_main]
//! Execution windows and time zones: `neo_domain::fuzzing::windows`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| neo_domain::fuzzing::windows(data));
