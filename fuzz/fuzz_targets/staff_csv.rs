//! A staff file of any bytes named `.csv`: encoding and delimiter detection,
//! the `sep=` line, quoting, headers, dates and addresses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let options = homebase::input::InputOptions::default();
    let _ = homebase::fuzzing::load_staff_bytes("staff.csv", bytes.to_vec(), &options);
});
