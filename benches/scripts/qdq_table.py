#!/usr/bin/env python3
"""The int8 QuantizeLinear / DequantizeLinear models of ../shared/data/models through sprig,
against onnxruntime (the reference their data README names: its outputs equal TFLite's) and
tract, on every evaluation sample.

For each model: the f32 evaluation data quantized as the model's input DequantizeLinear
prescribes (NCHW -> NHWC where the model takes NHWC); `sprig convert`; sprig's outputs on every
sample against onnxruntime's (values that differ, by how much, top-1 agreement) and the accuracy
of both (AUC over clips for the autoencoder, on dequantized values); latency, batch 1, one thread,
pinned to one CPU: sprig and tract interleaved by `sprig bench --onnx`, the fp32 model's .sprig
by `sprig bench`, onnxruntime (intra- and inter-op threads 1, all graph optimizations) timed in
this process on the same samples. Medians in microseconds.

Needs numpy, onnx and onnxruntime. Usage (from the repository root, after
`cargo build --release -p sprig-tools`):
    python3 benches/scripts/qdq_table.py [--iters 300] [--cpu 0] [--out table.md]
"""
import argparse, json, os, sys, tempfile, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prune_table import DATA, SPRIG, auc, emit, sh  # noqa: E402

MODELS = [  # (int8 model, fp32 model, eval folder)
    ("ic_resnet8", "ic01"),
    ("kws_dscnn", "kws01"),
    ("vww_mobilenetv1_96", "vww01"),
    ("ad_autoencoder", "ad01"),
]


def quant_params(g, init, node):
    scale = float(init[node.input[1]])
    zp = int(init[node.input[2]]) if len(node.input) > 2 and node.input[2] else 0
    return scale, zp


def io_quantization(path):
    """(input shape, input scale, input zero point, output scale, output zero point)."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load(path).graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    shape = [d.dim_value or 1 for d in g.input[0].type.tensor_type.shape.dim]
    name = g.input[0].name
    while True:
        n = next(n for n in g.node if n.input and n.input[0] == name)
        if n.op_type in ("Transpose", "Reshape"):
            name = n.output[0]
            continue
        assert n.op_type == "DequantizeLinear", n.op_type
        s_in, z_in = quant_params(g, init, n)
        break
    last = next(n for n in g.node if n.output[0] == g.output[0].name)
    assert last.op_type == "QuantizeLinear", last.op_type
    s_out, z_out = quant_params(g, init, last)
    return shape, s_in, z_in, s_out, z_out


def quantize(x, shape, scale, zp):
    if x.ndim == 4 and len(shape) == 4 and shape[3] == x.shape[1] and x.shape[1] > 1:
        x = x.transpose(0, 2, 3, 1)
    q = np.clip(np.round(x / np.float32(scale)) + zp, -128, 127).astype(np.int8)
    return q.reshape([len(x)] + shape[1:])


def ort_session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_median_us(s, xs, iters):
    name = s.get_inputs()[0].name
    for x in xs[:20]:
        s.run(None, {name: x[None]})
    t = []
    for i in range(iters):
        x = xs[i % len(xs)][None]
        t0 = time.perf_counter()
        s.run(None, {name: x})
        t.append(time.perf_counter() - t0)
    return 1e6 * float(np.median(t))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", default="300")
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    os.sched_setaffinity(0, {a.cpu})
    tmp = tempfile.mkdtemp()
    acc_lines = ["| model | .sprig / ONNX bytes | values differing from onnxruntime | top-1 agreement | "
                 "accuracy sprig / onnxruntime / tract (fp32 model) |", "|---|---|---|---|---|"]
    lat_lines = ["| model | sprig int8 | fp32 .sprig | tract int8 | onnxruntime int8 |", "|---|---|---|---|---|"]
    for name, ev in MODELS:
        qpath = os.path.join(DATA, "models", f"{name}_int8_qdq.onnx")
        fpath = os.path.join(DATA, "models", f"{name}_fp32.onnx")
        shape, s_in, z_in, s_out, z_out = io_quantization(qpath)
        x = np.load(os.path.join(DATA, "eval", ev, "inputs.npy")).astype(np.float32)
        xq = quantize(x, shape, s_in, z_in)
        xp, qsp, fsp = (os.path.join(tmp, f"{name}{s}") for s in ("_q.npy", "_q.sprig", "_f.sprig"))
        np.save(xp, xq)
        sh(SPRIG, "convert", qpath, "-o", qsp)
        sh(SPRIG, "convert", fpath, "-o", fsp)
        op = os.path.join(tmp, f"{name}_out.npy")
        sh(SPRIG, "run", qsp, "--input", xp, "--output", op)
        y_s = np.load(op).reshape(len(x), -1)
        s = ort_session(qpath)
        iname = s.get_inputs()[0].name
        y_o = np.concatenate([s.run(None, {iname: xi[None]})[0] for xi in xq]).astype(np.float32).reshape(len(x), -1)
        d = np.abs(y_s - y_o)
        # tract's outputs: `sprig validate` runs it on the same samples.
        v = json.loads(sh(SPRIG, "validate", qsp, "--onnx", qpath, "--input", xp, "--tolerance", "1e30", "--json",
                          *(["--labels", os.path.join(DATA, "eval", ev, "labels.npy")] if ev != "ad01" else [])))
        fo = os.path.join(tmp, f"{name}_fout.npy")
        sh(SPRIG, "run", fsp, "--input", os.path.join(DATA, "eval", ev, "inputs.npy"), "--output", fo)
        y_f = np.load(fo).reshape(len(x), -1)
        if ev == "ad01":
            clip = np.load(os.path.join(DATA, "eval", ev, "clip.npy")).astype(int)
            lab = np.load(os.path.join(DATA, "eval", ev, "clip_labels.npy"))
            xin = (xq.astype(np.float32) - z_in) * s_in

            def score(y, xr):
                e = ((xr - y) ** 2).mean(1)
                return [e[clip == c].mean() for c in range(len(lab))]
            deq = lambda y: (y - z_out) * s_out  # noqa: E731
            accs = f"AUC {auc(score(deq(y_s), xin), lab):.4f} / {auc(score(deq(y_o), xin), lab):.4f} / n/a ({auc(score(y_f, x), lab):.4f})"
            agree = "n/a"
        else:
            lab = np.load(os.path.join(DATA, "eval", ev, "labels.npy"))
            acc = lambda y: 100 * float((y.argmax(1) == lab).mean())  # noqa: E731
            ta = 100 * v["reference_accuracy"] if v.get("reference_accuracy") is not None else float("nan")
            accs = f"{acc(y_s):.2f} / {acc(y_o):.2f} / {ta:.2f} ({acc(y_f):.2f}) %"
            agree = f"{100 * float((y_s.argmax(1) == y_o.argmax(1)).mean()):.2f} %"
        diff = f"{int((d > 0).sum())} of {d.size} (at most {d.max():.0f})"
        acc_lines.append(f"| {name} | {os.path.getsize(qsp)} / {os.path.getsize(qpath)} | {diff} | {agree} | {accs} |")
        nb = min(16, len(x))
        np.save(os.path.join(tmp, "b.npy"), xq[:nb])
        np.save(os.path.join(tmp, "fb.npy"), x[:nb])
        b = json.loads(sh(SPRIG, "bench", qsp, "--onnx", qpath, "--input", os.path.join(tmp, "b.npy"), "--iters", a.iters, "--json"))
        f = json.loads(sh(SPRIG, "bench", fsp, "--input", os.path.join(tmp, "fb.npy"), "--iters", a.iters, "--json"))
        o = ort_median_us(s, list(xq[:nb]), int(a.iters))
        lat_lines.append(f"| {name} | {b['sprig_median_us']:.1f} | {f['sprig_median_us']:.1f} | {b['tract_median_us']:.1f} | {o:.1f} |")
        print(acc_lines[-1], lat_lines[-1], sep="\n", file=sys.stderr)
    emit("\n".join(acc_lines) + "\n\nLatency, µs (medians, batch 1, one thread):\n\n" + "\n".join(lat_lines) + "\n", a.out)


if __name__ == "__main__":
    main()
