#!/usr/bin/env bash
# Builds the seed corpora in fuzz/corpus/<target>/ from the repository's own models and, when
# present, the small real models of ../shared/data (read in place, never copied into git).
# Usage: bash fuzz/seed.sh   (needs a built `sprig`: cargo build -p sprig-tools)
set -euo pipefail
cd "$(dirname "$0")/.."
SPRIG=${SPRIG:-target/debug/sprig}
SHARED=../shared/data/models
C=fuzz/corpus
rm -rf "$C"
mkdir -p "$C"/{sprig_model,onnx_bytes,onnx_edit,npy_read}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

onnx=(models/digits_cnn.onnx models/digits_mlp.onnx models/zoo/*/model.onnx)
for m in mnist-8.onnx kws_dscnn_fp32.onnx hello_edge_ds_cnn_s.onnx; do
  [ -f "$SHARED/$m" ] && onnx+=("$SHARED/$m")
done

# .sprig seeds: every model dense, plus codebook, block-sparse and input-sparse variants of the
# digits CNN. Mode byte 0x00 = bytes as given, 0x03 = checksums and length recomputed.
i=0
add_sprig() {
  printf '\x00' | cat - "$1" > "$C/sprig_model/s$i-raw"
  printf '\x03' | cat - "$1" > "$C/sprig_model/s$i-fixed"
  i=$((i + 1))
}
for m in "${onnx[@]}"; do
  if "$SPRIG" convert "$m" -o "$tmp/m.sprig" > /dev/null 2>&1; then add_sprig "$tmp/m.sprig"; fi
done
"$SPRIG" compress models/digits_cnn.onnx --calib models/digits_calib.npy --codebook 4 -o "$tmp/cb.sprig" > /dev/null
add_sprig "$tmp/cb.sprig"
"$SPRIG" compress models/digits_cnn.onnx --calib models/digits_calib.npy --prune block:1x4:0.5 -o "$tmp/bsr.sprig" > /dev/null
add_sprig "$tmp/bsr.sprig"
"$SPRIG" compress models/digits_mlp.onnx --calib models/digits_eval_flat.npy --codebook 3 -o "$tmp/cbm.sprig" > /dev/null
add_sprig "$tmp/cbm.sprig"
# The 4-bit ResNet-8 and VWW (under the 128 KiB input limit; calibrated on their eval images):
# stride-2 Convs on stride phases, the stride-2 depthwise kernels, codebook Conv blocks.
EVAL=../shared/data/eval
for pair in ic_resnet8_fp32:ic01 vww_mobilenetv1_96_fp32:vww01; do
  m="$SHARED/${pair%%:*}.onnx"
  if [ -f "$m" ] && "$SPRIG" compress "$m" --calib "$EVAL/${pair#*:}/inputs.npy" --codebook 4 -o "$tmp/big.sprig" > /dev/null 2>&1; then
    add_sprig "$tmp/big.sprig"
  fi
done

# ONNX seeds: the files themselves (byte-level target), a few edit scripts (structural target).
for m in "${onnx[@]}"; do cp "$m" "$C/onnx_bytes/$(basename "$(dirname "$m")")_$(basename "$m")"; done
for b in 00 01 02 03 04 05 06 07 08 09 0a 0b; do printf "\x$b\x01\x02\x03\x04\x05\x06\x07" > "$C/onnx_edit/e$b"; done

# .npy seeds: small arrays of every accepted dtype, both header versions, and the repo's files.
python3 - "$C/npy_read" <<'PY'
import sys, numpy as np
out = sys.argv[1]
a = np.arange(12, dtype=np.float64).reshape(3, 4) - 5.5
for dt in ["<f4", ">f4", "<f8", "<i8", "<i4", "<i2", "|i1", "|u1", "|b1", "<f2", "<u4"]:
    np.save(f"{out}/{dt.strip('<>|')}_{'be' if dt[0] == '>' else 'le'}.npy", a.astype(dt))
np.save(f"{out}/scalar.npy", np.float32(3.5))
np.save(f"{out}/empty.npy", np.zeros((0, 4), np.float32))
np.save(f"{out}/fortran.npy", np.asfortranarray(a.astype(np.float32)))
with open(f"{out}/v2.npy", "wb") as f:
    np.lib.format.write_array(f, a.astype(np.float32), version=(2, 0))
PY
cp models/digits_eval_labels.npy models/zoo/mlp_shape_arith/input.npy models/zoo/mlp_shape_arith/expected.npy "$C/npy_read/"
for t in sprig_model onnx_bytes onnx_edit npy_read; do echo "$t: $(ls "$C/$t" | wc -l) seeds"; done
