//! cargo-fuzz target: see `sprig_tools::harness::sprig_model` for the input and the guarantees checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sprig_tools::harness::sprig_model(data));
