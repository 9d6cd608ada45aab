#!/usr/bin/env python3
"""Latency of every real model: sprig (dense, and with the default activation-sparsity kernels)
beside tract and onnxruntime, batch 1, one thread, on real evaluation samples.

sprig and tract are timed interleaved by `sprig bench --onnx` (medians of the same run);
onnxruntime (the PyPI wheel, intra- and inter-op threads 1, all graph optimizations on) is timed
right after in this process with the same samples, alternating samples the same way. Medians in
microseconds; this VM's noise is about ±15 %.

Usage (from the repository root, after `cargo build --release -p sprig-tools`):
    python3 benches/scripts/latency_table.py [--models mnist-8,ad_autoencoder_fp32] [--iters 500] [--out table.md]
"""
import argparse, json, os, sys, tempfile, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prune_table import SPRIG, sh, splits  # noqa: E402


def ort_median_us(onnx_path, samples, iters):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    xs = [x.reshape(shape).astype(np.float32) for x in samples]
    for x in xs[: min(len(xs), 20)]:
        s.run(None, {inp.name: x})
    times = []
    for i in range(iters):
        x = xs[i % len(xs)]
        t = time.perf_counter()
        s.run(None, {inp.name: x})
        times.append((time.perf_counter() - t) * 1e6)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--iters", default="500")
    ap.add_argument("--samples", default="32")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    lines = ["| model | MACs | sprig dense µs | sprig auto µs | tract µs | onnxruntime µs | dense / tract | dense / onnxruntime | auto / onnxruntime |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, onnx, cp, ep, _, _ in splits(a.models, tmp):
        dense = os.path.join(tmp, name + ".sprig")
        auto = os.path.join(tmp, name + "_auto.sprig")
        sh(SPRIG, "convert", onnx, "-o", dense)
        sh(SPRIG, "compress", onnx, "-o", auto, "--calib", cp)
        bd = json.loads(sh(SPRIG, "bench", dense, "--onnx", onnx, "--input", ep, "--samples", a.samples, "--iters", a.iters, "--json"))
        ba = json.loads(sh(SPRIG, "bench", auto, "--onnx", onnx, "--input", ep, "--samples", a.samples, "--iters", a.iters, "--json"))
        macs = json.loads(sh(SPRIG, "inspect", dense, "--json"))["macs"]
        ev = np.load(ep).astype(np.float32)[: int(a.samples)]
        o = ort_median_us(onnx, list(ev), int(a.iters))
        d, au, t = bd["sprig_median_us"], ba["sprig_median_us"], bd["tract_median_us"]
        lines.append(f"| {name} | {macs} | {d:.1f} | {au:.1f} | {t:.1f} | {o:.1f} | {d / t:.2f} | {d / o:.2f} | {au / o:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if a.out:
        open(a.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
