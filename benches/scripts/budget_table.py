#!/usr/bin/env python3
"""Device-budget table for every real model in ../shared/data/models (`sprig compress --budget`).

For each model, two Cortex-M4 budgets (flash and RAM as `sprig size` estimates them): a generous
one and a tight one. Data split as in prune_table.py: calibrate on the first half of each eval
set (at most 128 samples; MNIST on its calib.npy; AD on 128 windows spread over the set),
evaluate on the rest (AD: AUC over all 12 clips). Columns: the configuration the search chose
(MACs kept by pruning, codebook layers by bits), flash and RAM dense -> fitted, accuracy (AUC for
AD) dense -> fitted, top-1 agreement and relative output error against the ONNX model run by tract
on the eval data, host latency dense -> fitted (median of alternating runs in one process,
release build, one thread), and the search's wall time. A budget that cannot be met shows the
reason and the smallest flash / RAM reached. The JSON and HTML reports of every run are kept in
--keep (default: a temporary folder, printed).

Usage (from the repository root, after `cargo build --release -p sprig-tools`):
    python3 benches/scripts/budget_table.py [--models mnist-8,kws_dscnn_fp32] [--out table.md] [--keep DIR]
"""
import argparse, json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prune_table import SPRIG, ad_auc, emit, splits  # noqa: E402

KIB = 1024
# model: (generous, tight), each "flash=…,ram=…" in the CLI's syntax.
BUDGETS = {
    "mnist-8": ("flash=128KiB,ram=64KiB", "flash=96KiB,ram=36KiB"),
    "kws_dscnn_fp32": ("flash=160KiB,ram=80KiB", "flash=128KiB,ram=64KiB"),
    "ic_resnet8_fp32": ("flash=256KiB,ram=256KiB", "flash=160KiB,ram=192KiB"),
    "vww_mobilenetv1_96_fp32": ("flash=512KiB,ram=256KiB", "flash=256KiB,ram=160KiB"),
    "ad_autoencoder_fp32": ("flash=512KiB,ram=16KiB", "flash=200KiB,ram=16KiB"),
    "hello_edge_ds_cnn_s": ("flash=160KiB,ram=80KiB", "flash=128KiB,ram=64KiB"),
    "hello_edge_cnn_s": ("flash=256KiB,ram=64KiB", "flash=160KiB,ram=40KiB"),
    "hello_edge_dnn_s": ("flash=256KiB,ram=16KiB", "flash=128KiB,ram=16KiB"),
}


def kib(b):
    return f"{b / KIB:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--keep", default="")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    keep = a.keep or tmp
    os.makedirs(keep, exist_ok=True)
    lines = [
        "| model | budget | met | chosen: MACs kept, codebook layers | flash KiB dense → fitted | RAM KiB dense → fitted "
        "| accuracy dense → fitted | vs ONNX: top-1 agreement, relative error | host µs dense → fitted | search s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, onnx, cp, ep, lp, extra in splits(a.models, tmp):
        for tag, budget in zip(("generous", "tight"), BUDGETS[name]):
            out = os.path.join(keep, f"{name}_{tag}.sprig")
            rj, rh = out[:-6] + ".json", out[:-6] + ".html"
            args = [SPRIG, "compress", onnx, "--calib", cp, "--budget", budget, "-o", out, "--eval", ep, "--json", rj, "--report", rh, "-q"]
            if lp:
                args += ["--labels", lp]
            r = subprocess.run(args, capture_output=True, text=True)
            rep = json.load(open(rj))
            b = rep["budget"]
            shown = ", ".join(f"{k} {kib(b[k])} KiB" for k in ("flash", "ram") if b.get(k))
            d, f = rep["before"], rep.get("after")
            if r.returncode != 0 or not rep["met"] or f is None:
                lim = rep["limits"]
                lines.append(
                    f"| {name} | {tag}: {shown} | **no** | {'; '.join(lim['reasons'])} | {kib(d['flash'])} → min {kib(lim['min_flash'])} "
                    f"| {kib(d['ram'])} → min {kib(lim['min_ram'])} | | | | {rep['seconds']:.0f} |"
                )
                print(lines[-1], flush=True)
                continue
            c = rep["explored"][rep["chosen"]]
            bits = {}
            for _, w in c["layer_bits"]:
                bits[w] = bits.get(w, 0) + 1
            coded = ", ".join(f"{n}×{w}-bit" for w, n in sorted(bits.items(), reverse=True)) or "none"
            if extra:
                dense = os.path.join(tmp, f"{name}_dense.sprig")
                subprocess.run([SPRIG, "convert", onnx, "-o", dense], check=True, capture_output=True)
                acc = f"AUC {ad_auc(dense, *extra, tmp):.3f} → {ad_auc(out, *extra, tmp):.3f}"
            elif d["accuracy"] is not None:
                acc = f"{100 * d['accuracy']:.1f} % → {100 * f['accuracy']:.1f} %"
            else:
                acc = "—"
            lines.append(
                f"| {name} | {tag}: {shown} | yes | {100 * c['macs_kept']:.0f} %, {coded} | {kib(d['flash'])} → {kib(f['flash'])} "
                f"| {kib(d['ram'])} → {kib(f['ram'])} | {acc} | {100 * f['vs_onnx']['top1_agreement']:.1f} %, "
                f"{f['vs_onnx']['relative_error']:.4f} | {d['latency_us_measured']:.0f} → {f['latency_us_measured']:.0f} | {rep['seconds']:.0f} |"
            )
            print(lines[-1], flush=True)
    print(f"reports in {keep}", file=sys.stderr)
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
