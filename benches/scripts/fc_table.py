#!/usr/bin/env python3
"""Every Dense (fully connected) layer of the real models at 4 bits against its dense f32 twin,
timed inside the model: `sprig bench 4BIT --baseline DENSE --per-layer` (the two files
interleaved run by run, one thread, release build), per layer the median of each of `--rounds`
runs of `--iters` inferences. Prints a markdown table (and writes it with `--out`): per layer
its MACs, the 4-bit and dense medians (µs, across the rounds' medians) and the range of the
per-round speedups (dense time / 4-bit time; above 1 the 4-bit layer is faster).

Usage (from the repository root, after `cargo build --release -p sprig-tools`):

    python3 benches/scripts/fc_table.py [--models a,b] [--rounds 3] [--iters 2000] [--out F]

The 4-bit file is `sprig compress --codebook 4 --act-sparsity off` on the first half of each
eval set (as `codebook_table.py` and `latency_table.py`), the dense one `sprig convert`. Needs
../shared/data (or SPRIG_SHARED_DATA); skips with a note when it is absent.
"""
import argparse
import os
import statistics
import sys
import tempfile

from prune_table import DATA, bench, build, failure, splits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", default="2000")
    ap.add_argument("--samples", default="16")
    ap.add_argument("--out", default="")
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin this script and sprig to (-1: no pinning)")
    a = ap.parse_args()
    if not os.path.isdir(os.path.join(DATA, "models")):
        print(f"note: {DATA}/models is absent; nothing to measure", file=sys.stderr)
        return
    if a.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.cpu})
    tmp = tempfile.mkdtemp()
    lines = ["| model | layer | MACs | 4-bit µs | dense f32 µs | speedup (per round) |", "|---|---|---|---|---|---|"]
    for name, onnx, cp, ep, *_ in splits(a.models, tmp):
        dense, coded = os.path.join(tmp, name + "_dense.sprig"), os.path.join(tmp, name + "_4.sprig")
        try:
            build(onnx, dense)
            build(onnx, coded, cp, "--codebook", "4", "--act-sparsity", "off")
        except RuntimeError as e:
            lines.append(f"| {name} | not built: {failure(e)} | | | | |")
            continue
        runs = [bench(coded, ep, a.iters, "--baseline", dense, "--per-layer", "--samples", a.samples)["layers"] for _ in range(a.rounds)]
        for i, layer in enumerate(runs[0]):
            if layer["op"] != "Dense":
                continue
            mine = [r[i]["median_us"] for r in runs]
            base = [r[i]["baseline_us"] for r in runs]
            ratios = sorted(b / m for b, m in zip(base, mine) if m > 0)
            rng = f"{ratios[0]:.2f}–{ratios[-1]:.2f}×" if len(ratios) > 1 else f"{ratios[0]:.2f}×"
            lines.append(f"| {name} | {layer['name']} | {layer['macs']} | {statistics.median(mine):.2f} | {statistics.median(base):.2f} | {rng} |")
        print(lines[-1], file=sys.stderr)
    text = "\n".join(lines) + "\n"
    if a.out:
        open(a.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
