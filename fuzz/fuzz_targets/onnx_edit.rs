//! cargo-fuzz target: see `sprig_tools::harness::onnx_edit` for the input and the guarantees checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sprig_tools::harness::onnx_edit(data));
