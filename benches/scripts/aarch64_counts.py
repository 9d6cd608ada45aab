#!/usr/bin/env python3
"""Executed instructions per inference on aarch64 (NEON kernels), counted under qemu-user.

No aarch64 hardware is at hand, so speed there is judged as on Cortex-M: by instructions
executed under QEMU (TCG instruction-count plugin, ../shared/tools/qemu-insncount.c), which are
exact and deterministic but are not cycles. For each real model and variant (as in
latency_table.py: dense, pruned filter:macs=0.7, 4-bit codebook, combined) the runtime's
`run_file` example runs the .sprig on the first eval sample once and three times; the
difference over two is one inference.

    python3 benches/scripts/aarch64_counts.py [--models a,b] [--baseline-bin RUN_FILE] [--out FILE]

--baseline-bin: another build of the `run_file` example (e.g. of an older commit) counted on
the same files beside this one, with the ratio and whether the outputs are bit-identical.
Needs qemu-aarch64, the aarch64 linker and the Rust target (`.ci/run` installs them).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prune_table import SPRIG, build, emit, failure, sh, splits  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_SRC = os.path.join(ROOT, "..", "shared", "tools", "qemu-insncount.c")
TARGET = "aarch64-unknown-linux-gnu"
QEMU = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]
VARIANTS = [
    ("dense", ["convert"]),
    ("pruned filter:macs=0.7", ["compress", "--prune", "filter:macs=0.7", "--act-sparsity", "off"]),
    ("codebook 4-bit", ["compress", "--codebook", "4", "--act-sparsity", "off"]),
    ("combined (pruned + 4-bit + auto)", ["compress", "--prune", "filter:macs=0.7", "--codebook", "4"]),
]


def tools(tmp):
    """The aarch64 `run_file` binary (built here) and the plugin (compiled into `tmp`)."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "sprig-runtime", "--example", "run_file", "--target", TARGET], cwd=ROOT, check=True)
    if not os.path.exists(PLUGIN_SRC):
        sys.exit(f"aarch64_counts: {PLUGIN_SRC} is missing (the shared tools folder); nothing counted")
    plugin = os.path.join(tmp, "libinsncount.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", plugin, PLUGIN_SRC], check=True)
    return os.path.join(ROOT, "target", TARGET, "release", "examples", "run_file"), plugin


def count(binary, plugin, model, sample):
    """Instructions of one inference of `model` on `sample` and the output's bits hash."""
    def run(n):
        out = subprocess.run(QEMU + ["-plugin", plugin, "-d", "plugin", binary, model, str(n), sample],
                             capture_output=True, text=True, check=True)
        total = next(int(l.split()[1]) for l in (out.stdout + out.stderr).splitlines() if l.startswith("insns_total"))
        return total, out.stdout.split()[-1]
    (one, h), (three, _) = run(1), run(3)
    return (three - one) / 2, h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--baseline-bin", default="")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    binary, plugin = tools(tmp)
    base = ["baseline instructions per MAC", "ratio", "same output bits"] if a.baseline_bin else []
    lines = []
    for name, onnx, cp, ep, _, _ in splits(a.models, tmp):
        sample = os.path.join(tmp, name + ".f32")
        np.load(ep)[:1].astype("<f4").tofile(sample)
        lines += ["", f"**{name}**", "", "| " + " | ".join(["variant", "MACs", "instructions per inference", "per MAC"] + base) + " |",
                  "|" + "---|" * (4 + len(base))]
        for label, args in VARIANTS:
            out = os.path.join(tmp, f"{name}_{len(lines)}.sprig")
            try:
                build(onnx, out, cp if args[0] == "compress" else None, *args[1:])
            except RuntimeError as e:
                lines.append(f"| {label} | not built: {failure(e)} |" + " |" * (2 + len(base)))
                continue
            macs = json.loads(sh(SPRIG, "inspect", out, "--json"))["macs"]
            n, h = count(binary, plugin, out, sample)
            row = [label, str(macs), f"{n:.0f}", f"{n / macs:.3f}"]
            if a.baseline_bin:
                nb, hb = count(a.baseline_bin, plugin, out, sample)
                row += [f"{nb / macs:.3f}", f"{nb / n:.2f}x fewer" if n <= nb else f"{n / nb:.2f}x more", "yes" if h == hb else "no"]
            lines.append("| " + " | ".join(row) + " |")
            print(lines[-1], flush=True)
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
