//! Every fuzz target over its seeds (`fuzz/corpus/TARGET/`), on stable Rust
//! in every test run: the properties the fuzzers check (our LDIF reads back,
//! a rewrite keeps hand-made peers, no template lets a field add a line, no
//! 429 pauses beyond 120 s…) hold for the seeds; what the fuzzers found
//! has a unit test next to the fixed parser. `bench/fuzz.sh` searches for
//! new inputs with libFuzzer.

use std::path::Path;

use homebase::fuzzing::targets::TARGETS;

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
