#![no_main]
//! The psa-sim ConnectWise conditions parser and evaluator: `psa_sim::fuzzing::cw_conditions`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| psa_sim::fuzzing::cw_conditions(data));
