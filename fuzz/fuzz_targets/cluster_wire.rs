#![no_main]

use libfuzzer_sys::fuzz_target;

// The check is shared with tests/fuzz_corpus.rs, which replays the corpus on stable.
#[allow(dead_code)]
#[path = "../checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::cluster_wire::run(data));
