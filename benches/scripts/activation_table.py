#!/usr/bin/env python3
"""Activation-sparsity table for every float model in ../shared/data/models.

For each model (calibration / evaluation split as in prune_table.py):
1. `sprig analyze --json` on the calibration samples, checked against an independent count:
   onnxruntime runs the ONNX model with every ReLU-family tensor the analysis names added as a
   graph output, on the same samples; the largest per-layer difference is reported (must be
   <= 0.1 pt).
2. `sprig compress --act-sparsity auto` (dead channels removed, input-sparse kernels where the
   measured cost table predicts a speedup) against the dense `sprig convert`: accuracy (AUC for
   the AD autoencoder) on the evaluation half, and the end-to-end speedup (`sprig bench
   --baseline`, interleaved, one thread, cycling over 32 evaluation samples).
   The same with `--act-threshold auto` (FATReLU thresholds within a 1 % CETT bound): the
   mean zero fraction of the thresholded layers before and after, accuracy, speedup.
3. Per eligible layer (Dense, 1x1 Conv): calibration input zero fraction, the predicted speedup,
   whether `auto` chose the input-sparse kernel, and the measured per-layer speedup of the
   input-sparse kernel over the dense one on the same graph (`--input-sparse all` against
   `--input-sparse never`, `sprig bench --per-layer --baseline`, on evaluation samples).

Usage (from the repository root, after `cargo build --release -p sprig-tools`):
    python3 benches/scripts/activation_table.py [--models hello_edge_dnn_s,ad_autoencoder_fp32] [--out table.md]
"""
import argparse, json, os, sys, tempfile
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prune_table import SPRIG, ad_auc, bench, build, emit, sh, splits  # noqa: E402


def ort_zero_fractions(onnx_path, names, calib):
    """Zero fraction of each named tensor over the samples, by onnxruntime."""
    import onnx
    import onnxruntime as ort
    m = onnx.load(onnx_path)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    zeros, total = np.zeros(len(names)), np.zeros(len(names))
    for x in calib:
        ys = s.run(names, {inp.name: x.reshape(shape).astype(np.float32)})
        for k, y in enumerate(ys):
            zeros[k] += np.count_nonzero(y == 0)
            total[k] += y.size
    return zeros / np.maximum(total, 1)


def accuracy(model, onnx, ep, lp, extra, tmp):
    if extra is not None:
        x, clip, clip_labels = extra
        return f"AUC {ad_auc(model, x, clip, clip_labels, tmp):.3f}"
    v = json.loads(sh(SPRIG, "validate", model, "--onnx", onnx, "--input", ep, "--tolerance", "1000", "--json", "--labels", lp))
    return f"{100 * v['sprig_accuracy']:.2f} %"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--iters", default="2000")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    summary = ["| model | ReLU-family tensors | zero fraction (overall / mean of layers) | max \\|sprig − onnxruntime\\| per layer | dead channels removed | accuracy dense → auto | speedup auto vs dense "
               "| + `--act-threshold auto`: mean zeros before → after, accuracy, speedup vs dense |",
               "|---|---|---|---|---|---|---|---|"]
    per_layer = ["| model | layer | MACs | input zero % | predicted | auto chose | measured input-sparse vs dense (same graph) |",
                 "|---|---|---|---|---|---|---|"]
    for name, onnx, cp, ep, lp, extra in splits(a.models, tmp):
        aj = os.path.join(tmp, name + "_analyze.json")
        sh(SPRIG, "analyze", onnx, "--calib", cp, "--json", aj)
        rep = json.load(open(aj))
        relu = [l for l in rep["layers"] if l["relu_family"]]
        ort_z = ort_zero_fractions(onnx, [l["output"] for l in relu], np.load(cp))
        diff = max(abs(l["zero_fraction"] - z) for l, z in zip(relu, ort_z)) * 100

        dense = os.path.join(tmp, name + ".sprig")
        build(onnx, dense)
        files = {}
        for mode in ("auto", "all", "never"):
            files[mode] = os.path.join(tmp, f"{name}_{mode}.sprig")
            rep_mode = build(onnx, files[mode], cp, "--input-sparse", mode)
            if mode == "auto":
                r = rep_mode
        thr = os.path.join(tmp, f"{name}_thr.sprig")
        tl = build(onnx, thr, cp, "--act-threshold", "auto")["thresholds"]["layers"]
        zb = 100 * sum(l["zero_before"] for l in tl) / max(len(tl), 1)
        za = 100 * sum(l["zero_after"] for l in tl) / max(len(tl), 1)
        bt = bench(thr, ep, a.iters, "--baseline", dense, "--samples", "32")
        thr_cell = f"{zb:.1f} → {za:.1f} %, {accuracy(thr, onnx, ep, lp, extra, tmp)}, {bt['speedup_over_baseline']:.2f}x"
        dead = sum(s["dead"] for s in (r["dead_channels"] or {}).get("spaces", []))
        acc = f"{accuracy(dense, onnx, ep, lp, extra, tmp)} → {accuracy(files['auto'], onnx, ep, lp, extra, tmp)}"
        b = bench(files["auto"], ep, a.iters, "--baseline", dense, "--samples", "32")
        summary.append(f"| {name} | {len(relu)} | {100 * rep['overall_zero_fraction']:.1f} % / {100 * rep['mean_layer_zero_fraction']:.1f} % "
                       f"| {diff:.3f} pt | {dead} | {acc} | {b['speedup_over_baseline']:.2f}x ({b['baseline_median_us']:.1f} → {b['sprig_median_us']:.1f} µs) | {thr_cell} |")
        print(summary[-1], flush=True)
        if r["input_sparse"]:
            pl = bench(files["all"], ep, a.iters, "--baseline", files["never"], "--samples", "32", "--per-layer")
            times = {l["name"]: l for l in pl["layers"]}
            for c in r["input_sparse"]:
                t = times.get(c["node"])
                measured = f"{t['baseline_us'] / t['median_us']:.2f}x ({t['baseline_us']:.2f} → {t['median_us']:.2f} µs)" if t and t.get("baseline_us") else "n/a"
                pred = f"{c['predicted_speedup']:.2f}x" if c["predicted_speedup"] else "n/a"
                outs = t["macs"] if t else "?"
                per_layer.append(f"| {name} | {c['node'][-40:]} | {outs} | {100 * c['input_zero_fraction']:.1f} | {pred} "
                                 f"| {'input-sparse' if c['input_sparse'] else 'dense'} | {measured} |")
                print(per_layer[-1], flush=True)
    emit("\n".join(summary) + "\n\n" + "\n".join(per_layer) + "\n", a.out)


if __name__ == "__main__":
    sys.exit(main())
