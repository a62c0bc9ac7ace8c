//! Any body Snipe-IT may answer: list pages, write envelopes, error messages.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let message = homebase::fuzzing::snipeit_body(bytes);
    // An error message is shown in one line of a report, and never a body.
    assert!(
        message.chars().count() <= 200
            || serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
    );
});
