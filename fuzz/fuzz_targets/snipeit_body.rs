//! Any body Snipe-IT may answer: list pages, write envelopes, error messages.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::snipeit_body(data));
