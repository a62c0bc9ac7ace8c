//! A staff file of any bytes named `.xlsx`: the zip, the workbook XML, cell
//! types and the table found on the sheet.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let options = homebase::input::InputOptions::default();
    let _ = homebase::fuzzing::load_staff_bytes("staff.xlsx", bytes.to_vec(), &options);
});
