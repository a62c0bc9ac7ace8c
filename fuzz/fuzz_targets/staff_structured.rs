//! A staff file named `.yaml` or `.json` (the first byte chooses): lists of
//! persons, scalars as written, item lines for problems.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::staff_structured(data));
