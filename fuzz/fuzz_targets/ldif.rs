//! An LDIF export read by `homebase adopt`: folded lines, base64 values,
//! groups and their members, DNs under the base.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::ldif(data));
