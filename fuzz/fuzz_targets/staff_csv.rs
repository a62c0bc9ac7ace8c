//! A staff file of any bytes named `.csv`: encoding and delimiter detection,
//! the `sep=` line, quoting, headers, dates and addresses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::staff_csv(data));
