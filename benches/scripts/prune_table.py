#!/usr/bin/env python3
"""Structured-pruning table for every real model in ../shared/data/models.

For each model: calibrate on the first half of its eval inputs (at most 128 samples; MNIST uses
its own calib.npy), evaluate on the other half. Rows: dead channels only (filter:0), then MAC
budgets kept (macs=0.7, macs=0.5) with the envelope and the magnitude ranking. Columns: MACs and
params kept, accuracy (or top-1 agreement where there are no per-sample labels) vs the dense
model, and the measured speedup of the pruned .sprig over the dense .sprig (`sprig bench
--baseline`: both timed interleaved in one process, release build, one thread, medians).

With --in-layer the rows are in-layer groups instead (single weights and 4x1 blocks, stored
block-sparse where the measured break-even table says so); MACs then count stored weights.

Usage (from the repository root, after `cargo build --release -p sprig-tools`):
    python3 benches/scripts/prune_table.py [--in-layer] [--models mnist-8,vww_mobilenetv1_96_fp32] [--out table.md]
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("SPRIG_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
SPRIG = os.environ.get("SPRIG_BIN", os.path.join(ROOT, "target", "release", "sprig"))

MODELS = [
    # name, eval folder, labels file or None, slice of a sample (first N values) or None
    ("mnist-8", "mnist", "labels.npy", None),
    ("kws_dscnn_fp32", "kws01", "labels.npy", None),
    ("ic_resnet8_fp32", "ic01", "labels.npy", None),
    ("vww_mobilenetv1_96_fp32", "vww01", "labels.npy", None),
    ("ad_autoencoder_fp32", "ad01", None, None),
    ("hello_edge_ds_cnn_s", "kws01_hello_edge", "labels.npy", None),
    ("hello_edge_cnn_s", "kws01_hello_edge", "labels.npy", None),
    ("hello_edge_dnn_s", "kws01_hello_edge", "labels.npy", 250),
]
IN_LAYER_RUNS = [("weight macs=0.7 envelope", "weight:macs=0.7", "envelope"), ("weight macs=0.7 magnitude", "weight:macs=0.7", "magnitude"),
                 ("block:4x1 macs=0.5 envelope", "block:4x1:macs=0.5", "envelope"), ("block:4x1 macs=0.5 magnitude", "block:4x1:macs=0.5", "magnitude")]
RUNS = [("dead only", "filter:0", "envelope"),
        ("macs=0.7 envelope", "filter:macs=0.7", "envelope"), ("macs=0.7 magnitude", "filter:macs=0.7", "magnitude"),
        ("macs=0.5 envelope", "filter:macs=0.5", "envelope"), ("macs=0.5 magnitude", "filter:macs=0.5", "magnitude")]


def sh(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}\n{r.stderr}")
    return r.stdout


def auc(scores, labels):
    """Area under the ROC curve (probability a random anomaly scores above a random normal clip)."""
    pos = [s for s, l in zip(scores, labels) if l == 1]
    neg = [s for s, l in zip(scores, labels) if l == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / max(len(pos) * len(neg), 1)


def ad_auc(model, x, clip, clip_labels, tmp):
    """AUC over clips of the mean reconstruction MSE of their windows (the MLPerf Tiny AD metric)."""
    xp, yp = os.path.join(tmp, "ad_in.npy"), os.path.join(tmp, "ad_out.npy")
    np.save(xp, x)
    sh(SPRIG, "run", model, "--input", xp, "--output", yp)
    y = np.load(yp).reshape(x.shape[0], -1)
    err = ((y - x.reshape(x.shape[0], -1)) ** 2).mean(axis=1)
    scores = [err[clip == c].mean() for c in range(len(clip_labels))]
    return auc(scores, list(clip_labels))


def load(name, folder, labels, cut, tmp):
    """Writes the calibration / eval (/ labels) split of a model's eval set to `tmp`: the first half
    (at most 128 samples) calibrates, the rest evaluates; MNIST calibrates on its calib.npy; the AD
    autoencoder on 128 windows spread over the set, evaluated by AUC over all 12 clips. Returns the
    three paths (labels None when unlabeled) and, for AD, (inputs, clip, clip_labels)."""
    x = np.load(os.path.join(DATA, "eval", folder, "inputs.npy")).astype(np.float32)
    if cut:
        x = x.reshape(x.shape[0], -1)[:, :cut].reshape(x.shape[0], 25, 10)
    half = x.shape[0] // 2
    extra = None
    if folder == "ad01":
        clip = np.load(os.path.join(DATA, "eval", folder, "clip.npy"))
        clip_labels = np.load(os.path.join(DATA, "eval", folder, "clip_labels.npy"))
        calib, ev, lab = x[:: max(1, x.shape[0] // 128)][:128], x, None
        extra = (x, clip, clip_labels)
    elif name == "mnist-8":
        calib, ev = np.load(os.path.join(DATA, "eval", "mnist", "calib.npy")).astype(np.float32)[:128], x
        lab = np.load(os.path.join(DATA, "eval", folder, labels))
    else:
        calib, ev = x[:min(half, 128)], x[half:]
        lab = np.load(os.path.join(DATA, "eval", folder, labels))[half:]
    cp, ep, lp = [os.path.join(tmp, f"{name}_{k}.npy") for k in ("calib", "eval", "labels")]
    np.save(cp, calib)
    np.save(ep, ev)
    if lab is not None:
        np.save(lp, lab)
    return cp, ep, (lp if lab is not None else None), extra


def splits(models_arg, tmp):
    """For each model of MODELS named in the comma-separated `models_arg` (all when empty): its
    name, ONNX path and `load`'s calibration / eval / labels paths and AD extras."""
    pick = set(models_arg.split(",")) if models_arg else None
    for name, folder, labels, cut in MODELS:
        if pick and name not in pick:
            continue
        yield (name, os.path.join(DATA, "models", name + ".onnx")) + tuple(load(name, folder, labels, cut, tmp))


def build(onnx, out, calib=None, *args):
    """`sprig compress ONNX -o OUT --calib CALIB --json … ARGS` and its JSON report, or, without
    `calib`, `sprig convert ONNX -o OUT ARGS` and None. Raises RuntimeError naming the failure."""
    if calib is None:
        sh(SPRIG, "convert", onnx, "-o", out, *args)
        return None
    rj = out + ".json"
    sh(SPRIG, "compress", onnx, "-o", out, "--calib", calib, "--json", rj, *args)
    return json.load(open(rj))


def failure(e):
    """The last line of a failed build's message (the error sprig printed)."""
    return str(e).splitlines()[-1] if str(e) else repr(e)


def bench(model, ep, iters, *args):
    """`sprig bench MODEL --input EP --iters ITERS --json ARGS` as a dict."""
    return json.loads(sh(SPRIG, "bench", model, "--input", ep, "--iters", str(iters), "--json", *args))


def speedup(model, baseline, ep, iters, *args):
    """MODEL against BASELINE timed interleaved in one process: `1.23x (456 -> 371 µs)`."""
    b = bench(model, ep, iters, "--baseline", baseline, *args)
    return f"{b['speedup_over_baseline']:.2f}x ({b['baseline_median_us']:.0f} -> {b['sprig_median_us']:.0f} µs)"


def emit(text, path):
    """Prints the finished table and writes it to `path` when one is given."""
    if path:
        open(path, "w").write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--iters", default="200")
    ap.add_argument("--in-layer", action="store_true", help="in-layer (weight / block) groups instead of filters")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    lines = ["| model | variant | MACs kept | params kept | accuracy (dense) | top-1 agreement | speedup (sprig bench) |",
             "|---|---|---|---|---|---|---|"]
    for name, onnx, cp, ep, lp, extra in splits(a.models, tmp):
        if extra is not None:
            x, clip, clip_labels = extra
        dense = os.path.join(tmp, name + ".sprig")
        build(onnx, dense)
        dense_auc = ad_auc(dense, x, clip, clip_labels, tmp) if extra is not None else None
        for label, spec, method in (IN_LAYER_RUNS if a.in_layer else RUNS):
            out = os.path.join(tmp, f"{name}_{label.replace(' ', '_')}.sprig")
            try:
                r = build(onnx, out, cp, "--prune", spec, "--prune-method", method)
            except RuntimeError as e:
                lines.append(f"| {name} | {label} | failed: {failure(e)} | | | | |")
                continue
            args = [SPRIG, "validate", out, "--onnx", onnx, "--input", ep, "--tolerance", "1000", "--json"]
            if lp is not None:
                args += ["--labels", lp]
            v = json.loads(sh(*args))
            if dense_auc is not None:
                acc = f"AUC {ad_auc(out, x, clip, clip_labels, tmp):.3f} ({dense_auc:.3f})"
            else:
                acc = "n/a" if lp is None else f"{100 * v['sprig_accuracy']:.2f} % ({100 * v['reference_accuracy']:.2f} %)"
            lines.append(f"| {name} | {label} | {r['macs_after'] / r['macs_before']:.3f} ({r['macs_before'] / max(r['macs_after'], 1):.2f}x fewer) "
                         f"| {r['params_after'] / r['params_before']:.3f} | {acc} | {100 * v['top1_agreement']:.1f} % "
                         f"| {speedup(out, dense, ep, a.iters)} |")
            print(lines[-1], flush=True)
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    sys.exit(main())
