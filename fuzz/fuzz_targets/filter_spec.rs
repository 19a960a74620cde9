#![no_main]
//! The filter_spec parser and validator, then the ConnectWise, Autotask and Halo compilers: `neo_psa::fuzzing::filter_spec`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| neo_psa::fuzzing::filter_spec(data));
