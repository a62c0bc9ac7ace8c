//! The Snipe-IT pace fed any sequence of rate-limit headers and 429s: no
//! panic (a zero or absurd limit, a remaining above the limit) and no hold
//! longer than the cap.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::snipeit_pace(data));
