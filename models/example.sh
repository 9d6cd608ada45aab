#!/usr/bin/env bash
# The README's example: convert the example CNN, inspect it, run it, and validate it against
# tract on the held-out digits (writes into out/).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
# Built with the whole workspace's features so that `cargo test --workspace` reuses the build.
cargo build -q --workspace --bins
sprig() { "${CARGO_TARGET_DIR:-target}/debug/sprig" "$@"; }
sprig convert models/digits_cnn.onnx -o out/digits_cnn.sprig
sprig inspect out/digits_cnn.sprig
sprig run out/digits_cnn.sprig --input models/digits_eval.npy --output out/digits_probs.npy
sprig validate out/digits_cnn.sprig --onnx models/digits_cnn.onnx --input models/digits_eval.npy --labels models/digits_eval_labels.npy
