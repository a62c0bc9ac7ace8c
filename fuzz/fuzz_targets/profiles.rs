//! A profile folder: several files, `extends` chains (and cycles) between
//! them, merging and validation. The input is the files separated by NUL
//! bytes, each its name on the first line and its text below.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::profiles(data));
