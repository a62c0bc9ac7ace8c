//! The output of `wg show INTERFACE dump`, as the wireguard target reads a
//! live interface.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(dump) = homebase::fuzzing::Dump::parse(text) {
        for peer in &dump.peers {
            let _ = peer.host_address();
        }
    }
});
