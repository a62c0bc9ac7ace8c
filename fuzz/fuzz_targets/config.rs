//! `homebase.yaml`: serde's errors turned into problems at the offending key,
//! each target parsed on its own, the targets' own checks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::config(data));
