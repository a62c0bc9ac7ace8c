//! The Snipe-IT pace fed any sequence of rate-limit headers and 429s: no
//! panic (a zero or absurd limit, a remaining above the limit) and no hold
//! longer than the cap.
#![no_main]
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    |input: (u32, Vec<(Option<u32>, Option<u32>, Option<u64>)>)| {
        let (per_minute, answers) = input;
        if answers.len() > 64 {
            return;
        }
        let longest = homebase::fuzzing::snipeit_pace(per_minute, &answers);
        assert!(longest <= Duration::from_secs(120), "held {longest:?}");
    }
);
