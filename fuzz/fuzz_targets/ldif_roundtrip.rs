//! Accounts with any field values written as LDIF (`local` directory) and
//! read back by `adopt`: every account comes back as it was written.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::ldif_roundtrip(data));
