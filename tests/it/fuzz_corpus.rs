//! Every fuzz target over its seeds (`fuzz/corpus/TARGET/`), on stable Rust
//! in every test run: the properties the fuzzers check (our LDIF reads back,
//! a rewrite keeps hand-made peers, no template lets a field add a line, no
//! 429 pauses beyond 120 s…) hold for the seeds; what the fuzzers found
//! has a unit test next to the fixed parser. Then each target's seeds,
//! mutated at random for a second or two: no coverage guidance, but new
//! inputs in every run. `bench/fuzz.sh` searches for new inputs with
//! libFuzzer.

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use homebase::fuzzing::targets::TARGETS;

use crate::common::Rng;

#[test]
fn every_fuzz_target_passes_its_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut seeds = 0;
    for (name, target) in TARGETS {
        let dir = corpus.join(name);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no seeds for {name} in {}: {e}", dir.display()))
            .map(|e| e.expect("a seed").path())
            .collect();
        assert!(!entries.is_empty(), "{name} has no seeds");
        for seed in entries {
            let data = std::fs::read(&seed).expect("read a seed");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", seed.display());
            seeds += 1;
        }
    }
    assert!(seeds >= TARGETS.len());
    // Every folder of seeds is a target (a renamed target would skip its seeds).
    for entry in std::fs::read_dir(&corpus).expect("fuzz/corpus") {
        let name = entry.expect("an entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} belongs to no target"
        );
    }
}

/// Bytes the readers give a meaning to: separators, quotes, brackets,
/// YAML and LDIF markers, a BOM, the extremes of a byte and of a number.
const TOKENS: [&[u8]; 24] = [
    b",",
    b";",
    b"\t",
    b"\n",
    b"\r\n",
    b"\"",
    b"'",
    b":",
    b": ",
    b":: ",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"<",
    b"&",
    b"\0",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\x80",
    b"{{",
    b"18446744073709551616",
    b"-1",
];

/// One to eight of libFuzzer's kinds of mutation, blind to coverage: flip a
/// bit, set a byte, insert or erase a run, copy a run elsewhere, splice in
/// a run of another seed, insert a token.
fn mutate(input: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut Rng) {
    for _ in 0..1 + rng.index(8) {
        let len = input.len();
        let at = rng.index(len + 1);
        match rng.index(7) {
            0 if len > 0 => input[at.min(len - 1)] ^= 1 << rng.index(8),
            1 if len > 0 => input[at.min(len - 1)] = rng.next() as u8,
            2 => {
                let run: Vec<u8> = (0..1 + rng.index(8)).map(|_| rng.next() as u8).collect();
                input.splice(at..at, run);
            }
            3 if len > 0 => {
                let end = (at + 1 + rng.index(16)).min(len);
                input.drain(at.min(len - 1)..end);
            }
            4 if len > 0 => {
                let from = rng.index(len);
                let end = (from + 1 + rng.index(64)).min(len);
                let run = input[from..end].to_vec();
                input.splice(at..at, run);
            }
            5 => {
                let other = &seeds[rng.index(seeds.len())];
                if !other.is_empty() {
                    let from = rng.index(other.len());
                    let end = (from + 1 + rng.index(256)).min(other.len());
                    input.splice(at..at, other[from..end].iter().copied());
                }
            }
            _ => {
                let token = TOKENS[rng.index(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
        }
    }
    input.truncate(64 * 1024);
}

/// Not libFuzzer: a mutation loop without coverage feedback, on stable
/// Rust in every test run. Each target gets its seeds mutated for
/// `HOMEBASE_FUZZ_MUTATE_MS` (default 1500) milliseconds; a panic fails
/// the test with the input saved under `target/fuzz-findings/` and the
/// seed to replay the run (`HOMEBASE_FUZZ_SEED`). `bench/fuzz.sh` is the
/// coverage-guided search.
#[test]
fn mutated_seeds_never_break_a_fuzz_target() {
    let per_target =
        Duration::from_millis(crate::common::env_number("HOMEBASE_FUZZ_MUTATE_MS").unwrap_or(1500));
    let seed = crate::common::seed_from_env("HOMEBASE_FUZZ_SEED");
    eprintln!("mutation loop: seed {seed} (HOMEBASE_FUZZ_SEED={seed} replays it)");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rng = Rng(seed);
    let mut report = Vec::new();
    for (name, target) in TARGETS {
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(root.join("fuzz/corpus").join(name))
            .expect("seeds")
            .map(|e| std::fs::read(e.expect("a seed").path()).expect("read a seed"))
            .collect();
        // The current input, where the watchdog finds it if a call hangs.
        let current = Arc::new(Mutex::new(Vec::new()));
        let (done, finished) = mpsc::channel();
        let worker = {
            let current = current.clone();
            let mut rng = Rng(rng.next());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut runs = 0u64;
                while started.elapsed() < per_target {
                    let mut input = seeds[rng.index(seeds.len())].clone();
                    mutate(&mut input, &seeds, &mut rng);
                    *current.lock().unwrap_or_else(|e| e.into_inner()) = input.clone();
                    if std::panic::catch_unwind(|| target(&input)).is_err() {
                        let _ = done.send(Err(input));
                        return;
                    }
                    runs += 1;
                }
                let _ = done.send(Ok(runs));
            })
        };
        // Ten seconds for one input is a hang (the slowest reader takes
        // milliseconds on the largest seed), as in bench/fuzz.sh.
        let outcome = finished
            .recv_timeout(per_target + Duration::from_secs(10))
            .unwrap_or_else(|_| Err(current.lock().unwrap_or_else(|e| e.into_inner()).clone()));
        match outcome {
            Ok(runs) => {
                let _ = worker.join();
                report.push(format!("{name} {runs}"));
            }
            Err(input) => {
                let dir = root.join("target/fuzz-findings");
                std::fs::create_dir_all(&dir).expect("target/fuzz-findings");
                let file = dir.join(format!("{name}-{seed}"));
                std::fs::write(&file, &input).expect("save the input");
                panic!(
                    "fuzz target {name} panics or hangs on {} (seed {seed}); replay the file \
                     through homebase::fuzzing::targets::{name}",
                    file.display()
                );
            }
        }
    }
    eprintln!(
        "mutation loop: inputs run per target: {}",
        report.join(", ")
    );
}
