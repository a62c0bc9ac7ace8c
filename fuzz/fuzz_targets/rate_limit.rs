//! `Retry-After` and `X-RateLimit-Reset` of a 429: whatever a server says,
//! homebase pauses a bounded time.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| homebase::fuzzing::targets::rate_limit(data));
