//! The output of `wg show INTERFACE dump`, as the wireguard target reads a
//! live interface.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::wg_dump(data));
