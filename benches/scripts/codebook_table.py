#!/usr/bin/env python3
"""Codebook quantization table (issue #5): for each real model, bits x method -> file size vs the
f32 ONNX file, accuracy on eval data vs dense, output error; then pruning + codebooks; and the
latency of the codebook model against the dense .sprig (interleaved `sprig bench --baseline`).

Data split as in prune_table.py: calibrate on the first half of each eval set (at most 128
samples; MNIST on its calib.npy; AD on 128 windows spread over the set), evaluate on the rest.

    python3 benches/scripts/codebook_table.py [--models a,b] [--bits 2,3,4,8] [--methods jlcm,kmeans,linear]
        [--prune filter:params=0.6 | --no-prune] [--out FILE]
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prune_table import SPRIG, ad_auc, build, emit, failure, sh, speedup, splits  # noqa: E402

METHODS = ["jlcm", "kmeans", "linear"]


def score(model, onnx, ep, lp, extra, tmp):
    args = [SPRIG, "validate", model, "--onnx", onnx, "--input", ep, "--tolerance", "1000", "--json"]
    if lp:
        args += ["--labels", lp]
    v = json.loads(sh(*args))
    if extra is not None:
        x, clip, clip_labels = extra
        return f"AUC {ad_auc(model, x, clip, clip_labels, tmp):.3f}", v
    return f"{100 * v['sprig_accuracy']:.2f} %", v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--bits", default="2,3,4,8")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--no-prune", action="store_true", help="skip the pruning + codebook rows")
    ap.add_argument("--prune", default="filter:params=0.6", help="pruning combined with 4-bit codebooks")
    ap.add_argument("--iters", default="200")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    lines = ["| model | variant | bytes (ONNX / .sprig) | smaller than ONNX | accuracy (dense) | top-1 agreement | mean abs output error | latency vs dense .sprig |",
             "|---|---|---|---|---|---|---|---|"]
    for name, onnx, cp, ep, lp, extra in splits(a.models, tmp):
        onnx_bytes = os.path.getsize(onnx)
        dense = os.path.join(tmp, name + ".sprig")
        build(onnx, dense)
        dense_acc, _ = score(dense, onnx, ep, lp, extra, tmp)
        runs = [(f"{b} bits {m}", ["--codebook", str(b), "--codebook-method", m]) for b in a.bits.split(",") for m in a.methods.split(",")]
        if "4" in a.bits.split(",") and "jlcm" in a.methods.split(","):
            runs.append(("4 bits jlcm --strip-names", ["--codebook", "4", "--strip-names"]))
        if not a.no_prune:
            runs.append((f"{a.prune} + 4 bits jlcm", ["--prune", a.prune, "--codebook", "4"]))
            runs.append((f"{a.prune} + 3 bits jlcm", ["--prune", a.prune, "--codebook", "3"]))
        for label, extra_args in runs:
            out = os.path.join(tmp, f"{name}_{label.replace(' ', '_').replace(':', '_').replace('=', '_')}.sprig")
            try:
                r = build(onnx, out, cp, *extra_args)
            except RuntimeError as e:
                lines.append(f"| {name} | {label} | failed: {failure(e)} | | | | | |")
                continue
            acc, v = score(out, onnx, ep, lp, extra, tmp)
            speed = speedup(out, dense, ep, a.iters) if label == "4 bits jlcm" or "+ 4 bits" in label else ""
            lines.append(f"| {name} | {label} | {onnx_bytes} / {r['bytes_after']} | {onnx_bytes / r['bytes_after']:.2f}x | {acc} ({dense_acc}) "
                         f"| {100 * v['top1_agreement']:.1f} % | {v['mean_abs_error']:.3g} | {speed} |")
            print(lines[-1], flush=True)
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    sys.exit(main())
