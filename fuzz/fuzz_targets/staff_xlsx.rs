//! A staff file of any bytes named `.xlsx`: the zip, the workbook XML, cell
//! types and the table found on the sheet.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::staff_xlsx(data));
