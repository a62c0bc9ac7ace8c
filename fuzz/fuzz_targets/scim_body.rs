//! Any body a SCIM server may answer: listings, groups, errors, the service
//! provider configuration, discovery, Bulk results.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::scim_body(data));
