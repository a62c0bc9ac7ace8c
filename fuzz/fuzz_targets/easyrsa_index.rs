//! easy-rsa's `index.txt` (OpenSSL's CA database), read by `homebase adopt`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::easyrsa_index(data));
