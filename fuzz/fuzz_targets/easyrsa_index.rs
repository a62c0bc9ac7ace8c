//! easy-rsa's `index.txt` (OpenSSL's CA database), read by `homebase adopt`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(entries) = homebase::fuzzing::parse_index(text) {
        for entry in entries {
            let _ = homebase::fuzzing::serial_hex(&entry.serial);
        }
    }
    let _ = homebase::fuzzing::serial_hex(text);
});
