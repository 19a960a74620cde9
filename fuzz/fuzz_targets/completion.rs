#![no_main]
//! Webhook completion headers, signature and body: `neo_api::fuzzing::completion`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| neo_api::fuzzing::completion(data));
