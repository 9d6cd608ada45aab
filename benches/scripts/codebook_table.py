#!/usr/bin/env python3
"""Codebook quantization table (issue #5): for each real model, bits x method -> file size vs the
f32 ONNX file, accuracy on eval data vs dense, output error; then pruning + codebooks; and the
latency of the codebook model against the dense .sprig (interleaved `sprig bench --baseline`).

Data split as in prune_table.py: calibrate on the first half of each eval set (at most 128
samples; MNIST on its calib.npy; AD on 128 windows spread over the set), evaluate on the rest.

    python3 benches/scripts/codebook_table.py [--models a,b] [--bits 2,3,4,8] [--methods jlcm,kmeans,linear]
        [--prune filter:params=0.6 | --no-prune] [--out FILE]

With --ladder: instead, pruning + codebooks towards 12x smaller than the ONNX file (issue #5), names
stripped: 4 bits at params=0.6 and 0.5, 3 bits at params=0.9 .. 0.6, 2 bits with dead channels
only and at params=0.9 and 0.8, and `--budget file=<ONNX bytes / 12>` (the search picks the pruning
level and per-layer bits); accuracy on the eval half against the dense model's.
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
LADDER = [(4, "0.6"), (4, "0.5"), (3, "0.9"), (3, "0.8"), (3, "0.7"), (3, "0.6"), (2, None), (2, "0.9"), (2, "0.8")]


def dense_side(name, onnx, ep, lp, extra, tmp):
    """The ONNX file's bytes, the dense .sprig built from it and its accuracy on the eval half."""
    dense = os.path.join(tmp, name + ".sprig")
    build(onnx, dense)
    return os.path.getsize(onnx), dense, score(dense, onnx, ep, lp, extra, tmp)[0]


def ladder(a, tmp):
    """The --ladder table: pruning + codebooks (and the file-budget search) per model."""
    lines = ["| model | configuration (names stripped) | bytes (ONNX / .sprig) | smaller than ONNX | accuracy (dense) | top-1 agreement |",
             "|---|---|---|---|---|---|"]
    for name, onnx, cp, ep, lp, extra in splits(a.models, tmp):
        ob, dense, dense_acc = dense_side(name, onnx, ep, lp, extra, tmp)
        runs = [(f"{b} bits, " + (f"filter:params={p}" if p else "dead channels only"), ["--codebook", str(b)] + (["--prune", f"filter:params={p}"] if p else []))
                for b, p in LADDER]
        runs.append((f"--budget file={ob // 12}", ["--budget", f"file={ob // 12}", "--eval", ep] + (["--labels", lp] if lp else []) + ["-q"]))
        for label, args in runs:
            out = os.path.join(tmp, f"{name}_ladder.sprig")
            try:
                build(onnx, out, cp, "--strip-names", *args)
            except RuntimeError as e:
                lines.append(f"| {name} | {label} | failed: {failure(e)} | | | |")
                continue
            acc, v = score(out, onnx, ep, lp, extra, tmp)
            size = os.path.getsize(out)
            lines.append(f"| {name} | {label} | {ob} / {size} | {ob / size:.2f}x | {acc} ({dense_acc}) | {100 * v['top1_agreement']:.1f} % |")
            print(lines[-1], flush=True)
    emit("\n".join(lines) + "\n", a.out)


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
    ap.add_argument("--ladder", action="store_true", help="pruning + codebooks towards 12x (see the module doc)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    if a.ladder:
        return ladder(a, tmp)
    lines = ["| model | variant | bytes (ONNX / .sprig) | smaller than ONNX | accuracy (dense) | top-1 agreement | mean abs output error | latency vs dense .sprig |",
             "|---|---|---|---|---|---|---|---|"]
    for name, onnx, cp, ep, lp, extra in splits(a.models, tmp):
        onnx_bytes, dense, dense_acc = dense_side(name, onnx, ep, lp, extra, tmp)
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
