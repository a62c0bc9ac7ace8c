//! A profile folder: several files, `extends` chains (and cycles) between
//! them, merging and validation. The input is the files separated by NUL
//! bytes, each its name on the first line and its text below.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let files: Vec<(String, String)> = text
        .split('\0')
        .take(8)
        .map(|file| {
            let (name, body) = file.split_once('\n').unwrap_or((file, ""));
            (name.to_string(), body.to_string())
        })
        .collect();
    let _ = homebase::fuzzing::profiles(&files);
});
