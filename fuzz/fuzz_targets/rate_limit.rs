//! `Retry-After` and `X-RateLimit-Reset` of a 429: whatever a server says,
//! homebase pauses a bounded time.
#![no_main]
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|headers: (&[u8], &[u8])| {
    let (scim, snipeit) = homebase::fuzzing::rate_limit_waits(headers.0, headers.1);
    let longest = Duration::from_secs(120);
    if let Some(wait) = scim {
        assert!(wait <= longest, "SCIM would pause {wait:?}");
    }
    if let Some(hold) = snipeit {
        assert!(hold <= longest, "Snipe-IT would hold {hold:?}");
    }
});
