//! The `wg-quick` reader: any text parses, and a rewrite keeps every
//! hand-made peer (its key and allowed IPs) as it was read.
#![no_main]
use homebase::fuzzing::ConfFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let file = ConfFile::parse(text);
    let foreign: Vec<_> = file.peers.iter().collect();
    let again = ConfFile::parse(&homebase::targets::common::wg_quick::render(
        &file.interface,
        &[],
        &foreign,
    ));
    let keys = |f: &ConfFile| {
        f.peers
            .iter()
            .map(|p| (p.public_key.clone(), p.allowed_ips.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&file), keys(&again), "a rewrite changed the peers");
});
