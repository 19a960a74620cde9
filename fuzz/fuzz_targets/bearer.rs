#![no_main]
//! The Authorization: Bearer header and API key parsing: `neo_api::fuzzing::bearer`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| neo_api::fuzzing::bearer(data));
