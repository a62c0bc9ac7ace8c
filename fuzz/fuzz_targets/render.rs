//! Every shipped template rendered for a person whose fields are hostile:
//! no field adds a line to a text bundle (a config line of its own), and no
//! field reaches an HTML bundle unescaped.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::render(data));
