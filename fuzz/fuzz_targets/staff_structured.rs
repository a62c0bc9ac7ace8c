//! A staff file named `.yaml` or `.json` (the first byte chooses): lists of
//! persons, scalars as written, item lines for problems.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Some((first, rest)) = bytes.split_first() else {
        return;
    };
    let name = if first % 2 == 0 {
        "staff.yaml"
    } else {
        "staff.json"
    };
    let options = homebase::input::InputOptions::default();
    let _ = homebase::fuzzing::load_staff_bytes(name, rest.to_vec(), &options);
});
