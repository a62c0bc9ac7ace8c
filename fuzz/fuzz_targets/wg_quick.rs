//! The `wg-quick` reader: any text parses, and a rewrite keeps every
//! hand-made peer (its key and allowed IPs) as it was read.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::wg_quick(data));
