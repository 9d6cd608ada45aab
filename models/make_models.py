#!/usr/bin/env python3
"""Generate every file under models/ (deterministic, seeded).

    python3 models/make_models.py

Outputs
  models/digits_cnn.onnx, models/digits_mlp.onnx      trained on sklearn's load_digits
  models/digits_calib.npy  (300,1,8,8) float32        calibration split
  models/digits_eval.npy   (500,1,8,8) float32        evaluation split
  models/digits_eval_flat.npy (500,64) float32        same evaluation split, flattened (MLP input)
  models/digits_eval_labels.npy (500,) int64
  models/zoo/NAME/{model.onnx,input.npy,expected.npy}  random-weight, structurally realistic models
  models/README.md, models/zoo/README.md              generated documentation (do not hand-edit)

Requirements: python3 with numpy, onnx, onnxruntime, scikit-learn (only for the bundled dataset).
Everything is float32 / little-endian .npy (format version 1.0).
"""

import math
import os
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ZOO = os.path.join(HERE, "zoo")
IR_VERSION = 8
PRODUCER = "sprig/models/make_models.py"

N_CALIB = 300
N_EVAL = 500
SPLIT_SEED = 20240601
CNN_SEED = 1
MLP_SEED = 2


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------

def save_npy(path, arr):
    arr = np.ascontiguousarray(arr)
    assert arr.dtype in (np.float32, np.int64), arr.dtype
    np.save(path, arr, allow_pickle=False)


def save_model(path, model):
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString(deterministic=True)
    with open(path, "wb") as f:
        f.write(data)


def make_session(model):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # no graph rewrites (Conv+BN folding, Gelu/LayerNorm fusion, ...): reference outputs come from
    # evaluating the nodes exactly as written in the file
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), sess_options=so,
                                providers=["CPUExecutionProvider"])


def run_per_sample(model, x):
    """Run a batch-1 model sample by sample; returns stacked first output (N, ...)."""
    sess = make_session(model)
    iname = sess.get_inputs()[0].name
    oname = sess.get_outputs()[0].name
    outs = [sess.run([oname], {iname: x[i:i + 1]})[0] for i in range(x.shape[0])]
    out = np.concatenate(outs, axis=0)
    return out


class GraphBuilder:
    """Tiny helper to write ONNX graphs with deterministic names."""

    def __init__(self, name):
        self.name = name
        self.nodes = []
        self.inits = []
        self.count = {}

    def _uniq(self, base):
        k = self.count.get(base, 0)
        self.count[base] = k + 1
        return f"{base}_{k}"

    def const(self, arr, base="const"):
        name = self._uniq(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def f32(self, arr, base="w"):
        return self.const(np.asarray(arr, dtype=np.float32), base)

    def i64(self, arr, base="shape"):
        return self.const(np.asarray(arr, dtype=np.int64), base)

    def op(self, op_type, inputs, out=None, n_out=1, **attrs):
        nname = self._uniq(op_type)
        if out is not None:
            outs = [out]
        elif n_out == 1:
            outs = [nname.lower() + "_out"]
        else:
            outs = [f"{nname.lower()}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=nname, **attrs))
        return outs[0] if n_out == 1 else outs

    def build(self, in_name, in_shape, out_name, out_shape, opset, doc=""):
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, list(in_shape))],
            [helper.make_tensor_value_info(out_name, TensorProto.FLOAT,
                                           None if out_shape is None else list(out_shape))],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  ir_version=IR_VERSION, producer_name=PRODUCER,
                                  producer_version="1", doc_string=doc)
        return model


def finalize_output_shape(model, sample):
    """Declare the (static) output shape found by running onnxruntime once."""
    sess = make_session(model)
    y = sess.run(None, {sess.get_inputs()[0].name: sample})[0]
    out = model.graph.output[0]
    del out.type.tensor_type.shape.dim[:]
    for d in y.shape:
        out.type.tensor_type.shape.dim.add().dim_value = int(d)
    return y.shape


# ----------------------------------------------------------------------------
# 1. digits data
# ----------------------------------------------------------------------------

def load_digits_split():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data.astype(np.float64) / 16.0).astype(np.float32)  # (1797, 64), [0,1]
    y = d.target.astype(np.int64)
    assert x.shape == (1797, 64)
    perm = np.random.default_rng(SPLIT_SEED).permutation(x.shape[0])
    i_cal = perm[:N_CALIB]
    i_eval = perm[N_CALIB:N_CALIB + N_EVAL]
    i_train = perm[N_CALIB + N_EVAL:]
    return (x[i_train], y[i_train]), (x[i_cal], y[i_cal]), (x[i_eval], y[i_eval])


# ----------------------------------------------------------------------------
# 1a. digits CNN, plain numpy forward/backward
# ----------------------------------------------------------------------------

BN_EPS = 1e-5


def pad1(x):
    return np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))


def conv3x3_fwd(x, w, b):
    """Dense 3x3 conv, stride 1, pad 1. x (N,Ci,H,W), w (Co,Ci,3,3)."""
    n, _, h, wd = x.shape
    xp = pad1(x)
    out = np.zeros((n, w.shape[0], h, wd), dtype=x.dtype)
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return out + b[None, :, None, None], xp


def conv3x3_bwd(dout, xp, w, need_dx):
    n, _, h, wd = dout.shape
    dw = np.zeros_like(w)
    dxp = np.zeros_like(xp) if need_dx else None
    for i in range(3):
        for j in range(3):
            sl = xp[:, :, i:i + h, j:j + wd]
            dw[:, :, i, j] = np.einsum("nohw,nchw->oc", dout, sl)
            if need_dx:
                dxp[:, :, i:i + h, j:j + wd] += np.einsum("nohw,oc->nchw", dout, w[:, :, i, j])
    db = dout.sum(axis=(0, 2, 3))
    dx = dxp[:, :, 1:-1, 1:-1] if need_dx else None
    return dx, dw, db


def dw3x3_fwd(x, w, b):
    """Depthwise 3x3, stride 1, pad 1. w (C,1,3,3)."""
    n, c, h, wd = x.shape
    xp = pad1(x)
    out = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            out += xp[:, :, i:i + h, j:j + wd] * w[None, :, 0, i, j, None, None]
    return out + b[None, :, None, None], xp


def dw3x3_bwd(dout, xp, w):
    n, c, h, wd = dout.shape
    dw = np.zeros_like(w)
    dxp = np.zeros_like(xp)
    for i in range(3):
        for j in range(3):
            dw[:, 0, i, j] = np.einsum("nchw,nchw->c", dout, xp[:, :, i:i + h, j:j + wd])
            dxp[:, :, i:i + h, j:j + wd] += dout * w[None, :, 0, i, j, None, None]
    return dxp[:, :, 1:-1, 1:-1], dw, dout.sum(axis=(0, 2, 3))


def maxpool2_fwd(x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    idx = r.argmax(axis=-1)
    return np.take_along_axis(r, idx[..., None], axis=-1)[..., 0], idx


def maxpool2_bwd(dout, idx):
    n, c, h2, w2 = dout.shape
    dr = np.zeros((n, c, h2, w2, 4), dtype=dout.dtype)
    np.put_along_axis(dr, idx[..., None], dout[..., None], axis=-1)
    return dr.reshape(n, c, h2, w2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h2 * 2, w2 * 2)


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def cnn_init(rng):
    p = {
        "w1": rng.normal(0, math.sqrt(2.0 / 9), (8, 1, 3, 3)),
        "b1": np.zeros(8),
        "gamma": np.ones(8),
        "beta": np.zeros(8),
        "wdw": rng.normal(0, math.sqrt(2.0 / 9), (8, 1, 3, 3)),
        "bdw": np.zeros(8),
        "wpw": rng.normal(0, math.sqrt(2.0 / 8), (16, 8, 1, 1)),
        "bpw": np.zeros(16),
        "wfc": rng.normal(0, math.sqrt(1.0 / 16), (10, 16)),
        "bfc": np.zeros(10),
    }
    state = {"mean": np.zeros(8), "var": np.ones(8)}
    return p, state


def cnn_forward(p, state, x, train):
    """x (N,1,8,8). Returns logits and a cache for backward."""
    c = {}
    z1, c["xp1"] = conv3x3_fwd(x, p["w1"], p["b1"])
    if train:
        mu = z1.mean(axis=(0, 2, 3))
        var = z1.var(axis=(0, 2, 3))
        m = z1.shape[0] * z1.shape[2] * z1.shape[3]
        state["mean"] = 0.9 * state["mean"] + 0.1 * mu
        state["var"] = 0.9 * state["var"] + 0.1 * var * m / (m - 1)
    else:
        mu, var = state["mean"], state["var"]
    inv = 1.0 / np.sqrt(var + BN_EPS)
    xhat = (z1 - mu[None, :, None, None]) * inv[None, :, None, None]
    bn = xhat * p["gamma"][None, :, None, None] + p["beta"][None, :, None, None]
    c["xhat"], c["inv"] = xhat, inv
    a1 = np.maximum(bn, 0)
    c["m1"] = bn > 0
    z2, c["xp2"] = dw3x3_fwd(a1, p["wdw"], p["bdw"])
    a2 = np.maximum(z2, 0)
    c["m2"] = z2 > 0
    c["a2"] = a2
    z3 = np.einsum("nchw,oc->nohw", a2, p["wpw"][:, :, 0, 0]) + p["bpw"][None, :, None, None]
    a3 = np.clip(z3, 0.0, 6.0)
    c["m3"] = (z3 > 0) & (z3 < 6)
    pooled, c["idx"] = maxpool2_fwd(a3)
    g = pooled.mean(axis=(2, 3))
    c["g"] = g
    logits = g @ p["wfc"].T + p["bfc"]
    return logits, c


def cnn_backward(p, c, dlogits):
    gr = {}
    gr["wfc"] = dlogits.T @ c["g"]
    gr["bfc"] = dlogits.sum(axis=0)
    dg = dlogits @ p["wfc"]
    dpooled = np.broadcast_to(dg[:, :, None, None] / 16.0, dg.shape + (4, 4))
    da3 = maxpool2_bwd(np.ascontiguousarray(dpooled), c["idx"])
    dz3 = da3 * c["m3"]
    gr["wpw"] = np.einsum("nohw,nchw->oc", dz3, c["a2"])[:, :, None, None]
    gr["bpw"] = dz3.sum(axis=(0, 2, 3))
    da2 = np.einsum("nohw,oc->nchw", dz3, p["wpw"][:, :, 0, 0])
    dz2 = da2 * c["m2"]
    da1, gr["wdw"], gr["bdw"] = dw3x3_bwd(dz2, c["xp2"], p["wdw"])
    dbn = da1 * c["m1"]
    gr["gamma"] = (dbn * c["xhat"]).sum(axis=(0, 2, 3))
    gr["beta"] = dbn.sum(axis=(0, 2, 3))
    dxhat = dbn * p["gamma"][None, :, None, None]
    m = dxhat.shape[0] * dxhat.shape[2] * dxhat.shape[3]
    s1 = dxhat.sum(axis=(0, 2, 3))[None, :, None, None]
    s2 = (dxhat * c["xhat"]).sum(axis=(0, 2, 3))[None, :, None, None]
    dz1 = c["inv"][None, :, None, None] / m * (m * dxhat - s1 - c["xhat"] * s2)
    _, gr["w1"], gr["b1"] = conv3x3_bwd(dz1, c["xp1"], p["w1"], need_dx=False)
    return gr


class Adam:
    def __init__(self, params, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
        self.lr, self.b1, self.b2, self.eps, self.wd = lr, b1, b2, eps, wd
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params, grads, lr):
        self.t += 1
        for k in sorted(params):
            g = grads[k]
            if self.wd and params[k].ndim > 1:
                g = g + self.wd * params[k]
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            mh = self.m[k] / (1 - self.b1 ** self.t)
            vh = self.v[k] / (1 - self.b2 ** self.t)
            params[k] = params[k] - lr * mh / (np.sqrt(vh) + self.eps)


def train_cnn(xtr, ytr, epochs=150, batch=32, lr0=0.01):
    rng = np.random.default_rng(CNN_SEED)
    p, state = cnn_init(rng)
    opt = Adam(p, lr0, wd=1e-4)
    x = xtr.reshape(-1, 1, 8, 8).astype(np.float64)
    n = x.shape[0]
    steps = epochs * ((n + batch - 1) // batch)
    t = 0
    for ep in range(epochs):
        order = rng.permutation(n)
        xe, ye = x[order], ytr[order]
        for s in range(0, n, batch):
            xb, yb = xe[s:s + batch], ye[s:s + batch]
            logits, cache = cnn_forward(p, state, xb, train=True)
            prob = softmax(logits)
            d = prob.copy()
            d[np.arange(len(yb)), yb] -= 1.0
            d /= len(yb)
            grads = cnn_backward(p, cache, d)
            lr = lr0 * 0.5 * (1 + math.cos(math.pi * t / steps))
            opt.step(p, grads, lr)
            t += 1
    return p, state


def cnn_to_onnx(p32, st32):
    g = GraphBuilder("digits_cnn")
    c1 = g.op("Conv", ["input", g.f32(p32["w1"], "conv1.weight"), g.f32(p32["b1"], "conv1.bias")],
              kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    bn = g.op("BatchNormalization",
              [c1, g.f32(p32["gamma"], "bn1.scale"), g.f32(p32["beta"], "bn1.bias"),
               g.f32(st32["mean"], "bn1.running_mean"), g.f32(st32["var"], "bn1.running_var")],
              epsilon=BN_EPS, momentum=0.9)
    r1 = g.op("Relu", [bn])
    c2 = g.op("Conv", [r1, g.f32(p32["wdw"], "dwconv.weight"), g.f32(p32["bdw"], "dwconv.bias")],
              kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8)
    r2 = g.op("Relu", [c2])
    c3 = g.op("Conv", [r2, g.f32(p32["wpw"], "pwconv.weight"), g.f32(p32["bpw"], "pwconv.bias")],
              kernel_shape=[1, 1])
    k3 = g.op("Clip", [c3, g.f32(np.float32(0.0), "relu6.min"), g.f32(np.float32(6.0), "relu6.max")])
    mp = g.op("MaxPool", [k3], kernel_shape=[2, 2], strides=[2, 2])
    gp = g.op("GlobalAveragePool", [mp])
    fl = g.op("Flatten", [gp], axis=1)
    lg = g.op("Gemm", [fl, g.f32(p32["wfc"], "fc.weight"), g.f32(p32["bfc"], "fc.bias")],
              transB=1, alpha=1.0, beta=1.0)
    g.op("Softmax", [lg], out="probs", axis=-1)
    return g.build("input", [1, 1, 8, 8], "probs", [1, 10], 13,
                   doc="8x8 digits CNN trained on sklearn load_digits (see models/README.md)")


# ----------------------------------------------------------------------------
# 1b. digits MLP, numpy
# ----------------------------------------------------------------------------

def train_mlp(xtr, ytr, epochs=300, batch=32, lr0=0.005):
    rng = np.random.default_rng(MLP_SEED)
    p = {
        "w1": rng.normal(0, math.sqrt(2.0 / 64), (32, 64)),
        "b1": np.zeros(32),
        "w2": rng.normal(0, math.sqrt(1.0 / 32), (10, 32)),
        "b2": np.zeros(10),
    }
    opt = Adam(p, lr0, wd=1e-4)
    x = xtr.astype(np.float64)
    n = x.shape[0]
    steps = epochs * ((n + batch - 1) // batch)
    t = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            xb, yb = x[idx], ytr[idx]
            h = xb @ p["w1"].T + p["b1"]
            a = np.maximum(h, 0)
            prob = softmax(a @ p["w2"].T + p["b2"])
            d = prob.copy()
            d[np.arange(len(yb)), yb] -= 1.0
            d /= len(yb)
            gr = {"w2": d.T @ a, "b2": d.sum(0)}
            dh = (d @ p["w2"]) * (h > 0)
            gr["w1"] = dh.T @ xb
            gr["b1"] = dh.sum(0)
            lr = lr0 * 0.5 * (1 + math.cos(math.pi * t / steps))
            opt.step(p, gr, lr)
            t += 1
    return p


def mlp_forward(p, x):
    a = np.maximum(x @ p["w1"].T + p["b1"], 0)
    return softmax(a @ p["w2"].T + p["b2"])


def mlp_to_onnx(p32):
    g = GraphBuilder("digits_mlp")
    h = g.op("Gemm", ["input", g.f32(p32["w1"], "fc1.weight"), g.f32(p32["b1"], "fc1.bias")], transB=1)
    a = g.op("Relu", [h])
    lg = g.op("Gemm", [a, g.f32(p32["w2"], "fc2.weight"), g.f32(p32["b2"], "fc2.bias")], transB=1)
    g.op("Softmax", [lg], out="probs", axis=-1)
    return g.build("input", [1, 64], "probs", [1, 10], 13,
                   doc="64-32-10 digits MLP trained on sklearn load_digits (see models/README.md)")


def make_digits():
    (xtr, ytr), (xcal, ycal), (xev, yev) = load_digits_split()
    save_npy(os.path.join(HERE, "digits_calib.npy"), xcal.reshape(-1, 1, 8, 8))
    save_npy(os.path.join(HERE, "digits_eval.npy"), xev.reshape(-1, 1, 8, 8))
    save_npy(os.path.join(HERE, "digits_eval_flat.npy"), xev.reshape(-1, 64))
    save_npy(os.path.join(HERE, "digits_eval_labels.npy"), yev.astype(np.int64))
    res = {"n_train": int(xtr.shape[0]), "n_calib": int(xcal.shape[0]), "n_eval": int(xev.shape[0])}

    # ---- CNN
    p, st = train_cnn(xtr, ytr)
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    st32 = {k: v.astype(np.float32) for k, v in st.items()}
    model = cnn_to_onnx(p32, st32)
    path = os.path.join(HERE, "digits_cnn.onnx")
    save_model(path, model)
    xev4 = xev.reshape(-1, 1, 8, 8)
    ort_probs = run_per_sample(model, xev4)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    st64 = {k: v.astype(np.float64) for k, v in st32.items()}
    np_logits, _ = cnn_forward(p64, st64, xev4.astype(np.float64), train=False)
    np_probs = softmax(np_logits)
    diff = float(np.abs(ort_probs - np_probs).max())
    assert diff < 1e-5, f"digits_cnn: onnxruntime vs numpy max abs diff {diff}"
    res["cnn_diff"] = diff
    res["cnn_eval_acc"] = float((ort_probs.argmax(1) == yev).mean())
    res["cnn_calib_acc"] = float((run_per_sample(model, xcal.reshape(-1, 1, 8, 8)).argmax(1) == ycal).mean())
    tr_logits, _ = cnn_forward(p64, st64, xtr.reshape(-1, 1, 8, 8).astype(np.float64), train=False)
    res["cnn_train_acc"] = float((tr_logits.argmax(1) == ytr).mean())
    res["cnn_params"] = int(sum(v.size for v in p32.values()))
    print(f"digits_cnn: eval acc {res['cnn_eval_acc']:.4f} calib acc {res['cnn_calib_acc']:.4f} "
          f"train acc {res['cnn_train_acc']:.4f}  ort-vs-numpy max|diff| {diff:.2e}")

    # ---- MLP
    pm = train_mlp(xtr, ytr)
    pm32 = {k: v.astype(np.float32) for k, v in pm.items()}
    model = mlp_to_onnx(pm32)
    save_model(os.path.join(HERE, "digits_mlp.onnx"), model)
    ort_probs = run_per_sample(model, xev.reshape(-1, 64))
    np_probs = mlp_forward({k: v.astype(np.float64) for k, v in pm32.items()}, xev.astype(np.float64))
    diff = float(np.abs(ort_probs - np_probs).max())
    assert diff < 1e-5, f"digits_mlp: onnxruntime vs numpy max abs diff {diff}"
    res["mlp_diff"] = diff
    res["mlp_eval_acc"] = float((ort_probs.argmax(1) == yev).mean())
    res["mlp_calib_acc"] = float((run_per_sample(model, xcal).argmax(1) == ycal).mean())
    res["mlp_train_acc"] = float((mlp_forward(pm, xtr.astype(np.float64)).argmax(1) == ytr).mean())
    res["mlp_params"] = int(sum(v.size for v in pm32.values()))
    print(f"digits_mlp: eval acc {res['mlp_eval_acc']:.4f} calib acc {res['mlp_calib_acc']:.4f} "
          f"train acc {res['mlp_train_acc']:.4f}  ort-vs-numpy max|diff| {diff:.2e}")
    res["label_hist"] = np.bincount(yev, minlength=10).tolist()
    return res


# ----------------------------------------------------------------------------
# 2. zoo: random-weight, structurally realistic models
# ----------------------------------------------------------------------------

def he(rng, shape, fan_in):
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape).astype(np.float32)


def xavier(rng, shape, fan_in):
    return rng.normal(0.0, math.sqrt(1.0 / fan_in), shape).astype(np.float32)


def small_bias(rng, n, scale=0.05):
    return rng.normal(0.0, scale, (n,)).astype(np.float32)


class Zoo(GraphBuilder):
    def __init__(self, name, rng):
        super().__init__(name)
        self.rng = rng
        self.relu6_min = None
        self.relu6_max = None
        self.head = None  # classifier layer to balance, see balance_head()

    def conv(self, x, cin, cout, k, stride=1, pad=None, group=1, bias=True, dilation=1,
             auto_pad=None, name="conv"):
        ks = list(k) if isinstance(k, (list, tuple)) else [k, k]
        fan_in = (cin // group) * int(np.prod(ks))
        w = he(self.rng, (cout, cin // group, *ks), fan_in)
        ins = [x, self.f32(w, name + ".weight")]
        if bias:
            ins.append(self.f32(small_bias(self.rng, cout), name + ".bias"))
        nd = len(ks)
        attrs = dict(kernel_shape=ks, strides=[stride] * nd, dilations=[dilation] * nd)
        if group != 1:
            attrs["group"] = group
        if auto_pad is not None:
            attrs["auto_pad"] = auto_pad
        else:
            p = pad if pad is not None else [(kk - 1) // 2 * dilation for kk in ks] * 2
            attrs["pads"] = list(p)
        return self.op("Conv", ins, **attrs)

    def bn(self, x, c, name="bn"):
        r = self.rng
        gamma = r.uniform(0.7, 1.3, c).astype(np.float32)
        beta = r.normal(0.0, 0.1, c).astype(np.float32)
        mean = r.normal(0.0, 0.2, c).astype(np.float32)
        var = r.uniform(0.5, 2.0, c).astype(np.float32)
        return self.op("BatchNormalization",
                       [x, self.f32(gamma, name + ".scale"), self.f32(beta, name + ".bias"),
                        self.f32(mean, name + ".running_mean"), self.f32(var, name + ".running_var")],
                       epsilon=1e-5)

    def relu6(self, x):
        if self.relu6_min is None:
            self.relu6_min = self.f32(np.float32(0.0), "relu6.min")
            self.relu6_max = self.f32(np.float32(6.0), "relu6.max")
        return self.op("Clip", [x, self.relu6_min, self.relu6_max])

    def gemm(self, x, nin, nout, name="fc", **attrs):
        w = xavier(self.rng, (nout, nin), nin)
        wn, bn = self.f32(w, name + ".weight"), self.f32(small_bias(self.rng, nout), name + ".bias")
        self.head = dict(feat=x, w=wn, b=bn, w_layout="NK")
        return self.op("Gemm", [x, wn, bn], transB=1, **attrs)


def zoo_mobilenetv2_block(rng):
    g = Zoo("mobilenetv2_block", rng)
    x = g.conv("input", 3, 16, 3, stride=2, bias=False, name="stem")
    x = g.relu6(g.bn(x, 16, "stem_bn"))
    e = g.relu6(g.bn(g.conv(x, 16, 64, 1, bias=False, name="expand"), 64, "expand_bn"))
    d = g.relu6(g.bn(g.conv(e, 64, 64, 3, group=64, bias=False, name="dw"), 64, "dw_bn"))
    pj = g.bn(g.conv(d, 64, 16, 1, bias=False, name="project"), 16, "project_bn")
    y = g.op("Add", [x, pj])
    y = g.op("GlobalAveragePool", [y])
    y = g.op("Flatten", [y], axis=1)
    y = g.gemm(y, 16, 10, "classifier")
    g.op("Softmax", [y], out="output", axis=-1)
    return g, "input", [1, 3, 32, 32], "output", 13


def zoo_mobilenetv3_block(rng):
    # HardSwish only exists from opset 14 on, so this one model uses opset 14.
    g = Zoo("mobilenetv3_block", rng)
    x = g.op("HardSwish", [g.conv("input", 3, 16, 3, stride=2, name="stem")])            # 16x16x16
    e = g.op("HardSwish", [g.conv(x, 16, 48, 1, name="expand")])                         # 48x16x16
    d = g.conv(e, 48, 48, 3, stride=2, group=48, auto_pad="SAME_UPPER", name="dw")       # 48x8x8
    d = g.op("HardSwish", [d])
    s = g.op("GlobalAveragePool", [d])
    s = g.op("Relu", [g.conv(s, 48, 12, 1, name="se_reduce")])
    s = g.conv(s, 12, 48, 1, name="se_expand")
    s = g.op("HardSigmoid", [s], alpha=1.0 / 6.0, beta=0.5)
    d = g.op("Mul", [d, s])                                                               # [1,48,8,8]*[1,48,1,1]
    pj = g.conv(d, 48, 24, 1, name="project")                                             # 24x8x8
    y = g.op("ReduceMean", [pj], axes=[2, 3], keepdims=1)
    y = g.op("Flatten", [y], axis=1)
    g.gemm(y, 24, 10, "classifier")
    g.nodes[-1].output[0] = "output"
    return g, "input", [1, 3, 32, 32], "output", 14


def zoo_squeezenet_fire(rng):
    g = Zoo("squeezenet_fire", rng)
    x = g.op("Relu", [g.conv("input", 3, 16, 3, stride=2, pad=[1, 1, 1, 1], name="conv1")])   # 16x16x16
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)                 # 16x8x8 (7x7 w/o ceil)
    sq = g.op("Relu", [g.conv(x, 16, 8, 1, name="fire.squeeze")])
    e1 = g.op("Relu", [g.conv(sq, 8, 16, 1, name="fire.expand1x1")])
    e3 = g.op("Relu", [g.conv(sq, 8, 16, 3, pad=[1, 1, 1, 1], name="fire.expand3x3")])
    y = g.op("Concat", [e1, e3], axis=1)                                                    # 32x8x8
    y = g.op("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2])                      # 32x4x4
    y = g.op("Flatten", [y], axis=1)
    g.gemm(y, 512, 10, "classifier")
    g.nodes[-1].output[0] = "output"
    return g, "input", [1, 3, 32, 32], "output", 13


def zoo_resnet_block(rng):
    g = Zoo("resnet_block", rng)
    x = g.op("Relu", [g.bn(g.conv("input", 3, 16, 3, bias=False, name="stem"), 16, "stem_bn")])  # 16x32x32
    # basic block 1 (identity shortcut)
    h = g.op("Relu", [g.bn(g.conv(x, 16, 16, 3, bias=False, name="b1.conv1"), 16, "b1.bn1")])
    h = g.bn(g.conv(h, 16, 16, 3, bias=False, name="b1.conv2"), 16, "b1.bn2")
    x = g.op("Relu", [g.op("Add", [h, x])])
    # basic block 2 (stride 2, 1x1 projection shortcut)
    h = g.op("Relu", [g.bn(g.conv(x, 16, 32, 3, stride=2, bias=False, name="b2.conv1"), 32, "b2.bn1")])
    h = g.bn(g.conv(h, 32, 32, 3, bias=False, name="b2.conv2"), 32, "b2.bn2")
    sc = g.bn(g.conv(x, 16, 32, 1, stride=2, pad=[0, 0, 0, 0], bias=False, name="b2.shortcut"), 32, "b2.shortcut_bn")
    x = g.op("Relu", [g.op("Add", [h, sc])])                                              # 32x16x16
    y = g.op("GlobalAveragePool", [x])
    y = g.op("Reshape", [y, g.i64([1, -1], "flatten_shape")])
    feat = y
    wn, bn = g.f32(xavier(rng, (32, 10), 32), "fc.weight"), g.f32(small_bias(rng, 10), "fc.bias")
    g.head = dict(feat=feat, w=wn, b=bn, w_layout="KN")
    y = g.op("MatMul", [y, wn])
    y = g.op("Add", [y, bn])
    g.op("Softmax", [y], out="output", axis=-1)
    return g, "input", [1, 3, 32, 32], "output", 13


def zoo_conv1d_kws(rng):
    g = Zoo("conv1d_kws", rng)
    x = g.conv("input", 40, 32, [5], stride=2, pad=[0, 0], name="conv1")                  # [1,32,47]
    slope = rng.uniform(0.05, 0.3, (32, 1)).astype(np.float32)
    x = g.op("PRelu", [x, g.f32(slope, "prelu.slope")])
    x = g.conv(x, 32, 32, [3], dilation=2, pad=[2, 2], name="conv2")                      # [1,32,47]
    x = g.op("LeakyRelu", [x], alpha=0.1)
    f = g.op("Tanh", [g.conv(x, 32, 32, [3], group=4, pad=[1, 1], name="gate.filter")])
    s = g.op("Sigmoid", [g.conv(x, 32, 32, [3], group=4, pad=[1, 1], name="gate.gate")])
    y = g.op("Mul", [f, s])
    y = g.op("AveragePool", [y], kernel_shape=[4], strides=[4])                            # [1,32,11]
    y = g.op("Flatten", [y], axis=1)                                                       # [1,352]
    y = g.gemm(y, 352, 12, "classifier")
    g.op("Softmax", [y], out="output", axis=-1)
    return g, "input", [1, 40, 98], "output", 13


def zoo_transformer_block(rng):
    T, D, H = 16, 32, 2
    dh = D // H
    g = Zoo("transformer_block", rng)

    def ln(x, name):
        gamma = rng.uniform(0.8, 1.2, D).astype(np.float32)
        beta = rng.normal(0.0, 0.05, D).astype(np.float32)
        return g.op("LayerNormalization", [x, g.f32(gamma, name + ".scale"), g.f32(beta, name + ".bias")],
                    axis=-1, epsilon=1e-5)

    def linear(x, nin, nout, name, bias=True):
        y = g.op("MatMul", [x, g.f32(xavier(rng, (nin, nout), nin), name + ".weight")])
        if bias:
            y = g.op("Add", [y, g.f32(small_bias(rng, nout, 0.02), name + ".bias")])
        return y

    h = ln("input", "ln1")
    qkv = linear(h, D, 3 * D, "attn.qkv")                                                  # [1,16,96]
    sel = np.eye(3 * D, dtype=np.float32)
    heads_shape = g.i64([1, T, H, dh], "heads_shape")
    q = g.op("MatMul", [qkv, g.f32(sel[:, 0:D], "attn.select_q")])                         # [1,16,32]
    k = g.op("MatMul", [qkv, g.f32(sel[:, D:2 * D], "attn.select_k")])
    v = g.op("MatMul", [qkv, g.f32(sel[:, 2 * D:], "attn.select_v")])
    q = g.op("Transpose", [g.op("Reshape", [q, heads_shape])], perm=[0, 2, 1, 3])         # [1,2,16,16]
    kt = g.op("Transpose", [g.op("Reshape", [k, heads_shape])], perm=[0, 2, 3, 1])        # [1,2,16(d),16(t)]
    v = g.op("Transpose", [g.op("Reshape", [v, heads_shape])], perm=[0, 2, 1, 3])
    sc = g.op("MatMul", [q, kt])                                                            # [1,2,16,16]
    sc = g.op("Div", [sc, g.f32(np.float32(math.sqrt(dh)), "attn.scale")])
    # causal mask via Sub (20 above the diagonal; exp(-20) ~ 2e-9, kept small so that
    # activation ranges stay quantization-friendly)
    mask = (np.triu(np.ones((T, T), dtype=np.float32), k=1) * 20.0).astype(np.float32)
    sc = g.op("Sub", [sc, g.f32(mask, "attn.causal_mask")])
    pr = g.op("Softmax", [sc], axis=-1)
    o = g.op("MatMul", [pr, v])                                                             # [1,2,16,16]
    o = g.op("Transpose", [o], perm=[0, 2, 1, 3])                                           # [1,16,2,16]
    o = g.op("Reshape", [o, g.i64([1, T, D], "merge_shape")])                               # [1,16,32]
    o = linear(o, D, D, "attn.out", bias=False)
    x = g.op("Add", ["input", o])
    h = ln(x, "ln2")
    h = linear(h, D, 2 * D, "mlp.fc1")                                                      # [1,16,64]
    e = g.op("Erf", [g.op("Div", [h, g.f32(np.float32(math.sqrt(2.0)), "gelu.sqrt2")])])
    e = g.op("Add", [e, g.f32(np.float32(1.0), "gelu.one")])
    e = g.op("Mul", [h, e])
    e = g.op("Mul", [e, g.f32(np.float32(0.5), "gelu.half")])
    h = linear(e, 2 * D, D, "mlp.fc2")
    g.op("Add", [x, h], out="output")
    return g, "input", [1, T, D], "output", 17


def zoo_mlp_shape_arith(rng):
    g = Zoo("mlp_shape_arith", rng)
    x = g.op("Pad", ["input", g.i64([0, 0, 1, 1, 0, 0, 1, 1], "pads"), g.f32(np.float32(0.5), "pad_value")],
             mode="constant")                                                               # [1,1,12,12]
    shp = g.op("Shape", [x])
    n = g.op("Gather", [shp, g.i64(np.int64(0), "batch_index")], axis=0)                  # scalar
    n = g.op("Unsqueeze", [n, g.i64([0], "axes0")])                                         # [1]
    new_shape = g.op("Concat", [n, g.i64([-1], "minus_one")], axis=0)                      # [1,-1]
    x = g.op("Reshape", [x, new_shape])                                                     # [1,144]
    w1 = he(rng, (144, 32), 144)
    x = g.op("Gemm", [x, g.f32(w1, "fc1.weight"), g.f32(small_bias(rng, 32), "fc1.bias")],
             alpha=0.5, beta=2.0)                                                           # B is [K,N] (transB=0)
    x = g.op("Identity", [x])
    x = g.op("Dropout", [x])
    x = g.op("Sigmoid", [x])
    x = g.op("Squeeze", [x, g.i64([0], "axes0")])                                           # [32]
    x = g.op("Unsqueeze", [x, g.i64([0], "axes0")])                                         # [1,32]
    mu = rng.uniform(0.3, 0.7, (32,)).astype(np.float32)
    sd = rng.uniform(0.1, 0.3, (1, 32)).astype(np.float32)
    x = g.op("Sub", [x, g.f32(mu, "norm.mean")])
    x = g.op("Div", [x, g.f32(sd, "norm.std")])
    x = g.op("Transpose", [x], perm=[1, 0])                                                 # [32,1]
    wn, bn = g.f32(xavier(rng, (10, 32), 32), "fc2.weight"), g.f32(small_bias(rng, 10), "fc2.bias")
    g.head = dict(feat=x, w=wn, b=bn, w_layout="NK")   # feat is [32,1]; flattening gives the same K values
    x = g.op("Gemm", [x, wn, bn], transA=1, transB=1)                                      # [1,10]
    g.op("Softmax", [x], out="output", axis=-1)
    return g, "input", [1, 1, 10, 10], "output", 13


def _upsample(a, fy, fx):
    return np.repeat(np.repeat(a, fy, axis=-2), fx, axis=-1)


def _smooth_field(rng, shape, scales):
    """Sum of nearest-upsampled noise at several scales (+ white noise): spatially correlated
    inputs whose global statistics differ from sample to sample (white noise would average out
    in global pooling and make every sample look alike)."""
    n, c, h, w = shape
    out = np.zeros(shape)
    for (fy, fx), amp in scales:
        low = rng.normal(0.0, 1.0, (n, c, -(-h // fy), -(-w // fx)))
        out += amp * _upsample(low, fy, fx)[:, :, :h, :w]
    out += rng.normal(0.0, 0.5, (n, c, 1, 1))         # per-sample, per-channel offset
    return out / out.std()


def zoo_inputs(rng, kind, shape):
    if kind == "image":          # (4,C,H,W), roughly N(0,1) like a normalised photo
        x = _smooth_field(rng, shape, [((8, 8), 1.0), ((4, 4), 0.5), ((1, 1), 0.3)])
    elif kind == "image01":      # (4,1,H,W) in (0,1)
        x = 1.0 / (1.0 + np.exp(-2.0 * _smooth_field(rng, shape, [((5, 5), 1.0), ((1, 1), 0.4)])))
    elif kind == "spectrogram":  # (4,bands,frames): log-mel-like, smooth in frequency and time
        x = _smooth_field(rng, (shape[0], 1, shape[1], shape[2]),
                          [((4, 7), 1.0), ((2, 2), 0.4), ((1, 1), 0.3)])[:, 0]
    elif kind == "tokens":       # (4,T,D) embeddings
        x = rng.normal(0.0, 1.0, shape) + rng.normal(0.0, 0.5, (shape[0], 1, shape[2]))
    else:
        raise ValueError(kind)
    return x.astype(np.float32)


ZOO_MODELS = [
    ("mobilenetv2_block", zoo_mobilenetv2_block, "image"),
    ("mobilenetv3_block", zoo_mobilenetv3_block, "image"),
    ("squeezenet_fire", zoo_squeezenet_fire, "image"),
    ("resnet_block", zoo_resnet_block, "image"),
    ("conv1d_kws", zoo_conv1d_kws, "spectrogram"),
    ("transformer_block", zoo_transformer_block, "tokens"),
    ("mlp_shape_arith", zoo_mlp_shape_arith, "image01"),
]


HEAD_LOGIT_STD = 2.0


def balance_head(model, head, dist, seed, ishape):
    """Make the random classifier behave like a trained one: random weights put a large
    sample-independent offset on the logits (post-ReLU features have a positive mean), so every
    input gets the same argmax. Using 32 extra synthetic inputs (not the 4 test inputs) the head
    is rescaled so the centred logits have std HEAD_LOGIT_STD and the bias cancels the mean
    feature (plus N(0, 0.1) noise). Deterministic; changes only two initializers."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info(head["feat"], TensorProto.FLOAT, None))
    sess = make_session(probe)
    iname = sess.get_inputs()[0].name
    xs = zoo_inputs(np.random.default_rng(seed + 2), dist, (32, *ishape[1:]))
    feats = np.stack([sess.run([head["feat"]], {iname: xs[i:i + 1]})[0].reshape(-1)
                      for i in range(xs.shape[0])]).astype(np.float64)
    inits = {t.name: t for t in model.graph.initializer}
    w = numpy_helper.to_array(inits[head["w"]]).astype(np.float64)
    w_nk = w if head["w_layout"] == "NK" else w.T
    mu = feats.mean(axis=0)
    scale = HEAD_LOGIT_STD / ((feats - mu) @ w_nk.T).std()
    w_nk = w_nk * scale
    bias = -(mu @ w_nk.T) + np.random.default_rng(seed + 3).normal(0.0, 0.1, w_nk.shape[0])
    new_w = (w_nk if head["w_layout"] == "NK" else w_nk.T).astype(np.float32)
    inits[head["w"]].CopyFrom(numpy_helper.from_array(new_w, head["w"]))
    inits[head["b"]].CopyFrom(numpy_helper.from_array(bias.astype(np.float32), head["b"]))


def op_counts(model):
    counts = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def make_zoo():
    os.makedirs(ZOO, exist_ok=True)
    rows = []
    for name, fn, dist in ZOO_MODELS:
        seed = zlib.crc32(name.encode())
        rng = np.random.default_rng(seed)
        g, iname, ishape, oname, opset = fn(rng)
        model = g.build(iname, ishape, oname, None, opset,
                        doc=f"sprig zoo model '{name}': random seeded weights (seed crc32(name)={seed}), "
                            "structure only, not trained")
        if g.head is not None:
            balance_head(model, g.head, dist, seed, ishape)
        drng = np.random.default_rng(seed + 1)
        x = zoo_inputs(drng, dist, (4, *ishape[1:]))
        oshape = finalize_output_shape(model, x[:1])
        d = os.path.join(ZOO, name)
        os.makedirs(d, exist_ok=True)
        mpath = os.path.join(d, "model.onnx")
        save_model(mpath, model)
        reloaded = onnx.load(mpath)
        y = run_per_sample(reloaded, x).astype(np.float32)
        assert y.shape == (4, *oshape[1:]), (y.shape, oshape)
        assert np.all(np.isfinite(y))
        save_npy(os.path.join(d, "input.npy"), x)
        save_npy(os.path.join(d, "expected.npy"), y)
        n_params = int(sum(int(np.prod(t.dims)) for t in reloaded.graph.initializer))
        spread = float(y.std(axis=0).mean())
        row = dict(name=name, opset=opset, in_shape=list(ishape), out_shape=list(oshape),
                   ops=op_counts(reloaded), n_nodes=len(reloaded.graph.node), params=n_params,
                   size=os.path.getsize(mpath), in_size=os.path.getsize(os.path.join(d, "input.npy")),
                   exp_size=os.path.getsize(os.path.join(d, "expected.npy")),
                   out_min=float(y.min()), out_max=float(y.max()), spread=spread, dist=dist, seed=seed)
        if name != "transformer_block":
            row["argmax"] = y.reshape(4, -1).argmax(1).tolist()
            row["pmax"] = float(y.reshape(4, -1).max(1).max())
        rows.append(row)
        assert row["size"] < 150 * 1024, (name, row["size"])
        print(f"zoo/{name}: opset {opset} in {ishape} out {list(oshape)} nodes {row['n_nodes']} "
              f"params {n_params} size {row['size']} B  out range [{row['out_min']:.3g}, {row['out_max']:.3g}] "
              f"per-sample std {spread:.3g}")
    return rows


# ----------------------------------------------------------------------------
# READMEs
# ----------------------------------------------------------------------------

def fmt_ops(ops):
    return ", ".join(f"{k}×{v}" if v > 1 else k for k, v in sorted(ops.items()))


def write_zoo_readme(rows):
    L = []
    L.append("# models/zoo — structurally realistic test models (random weights)")
    L.append("")
    L.append("Generated by `python3 models/make_models.py` — do not edit by hand.")
    L.append("")
    L.append("Each folder holds `model.onnx` (batch-1 static input, float32), `input.npy` "
             "(4 samples, shape `(4, *input_shape[1:])`, float32) and `expected.npy` "
             "(onnxruntime CPU output of the model's first output for each sample, run one sample "
             "at a time, single-threaded, graph optimizations disabled so every node is evaluated as written, stacked as `(4, *output_shape[1:])`, float32).")
    L.append("")
    L.append("Weights are random (seeded with `zlib.crc32(name)`), He-normal for conv/linear "
             "layers feeding nonlinearities, LeCun-normal (std `1/sqrt(fan_in)`) for the attention/MLP "
             "projections and the final classifier layers, small random biases, BatchNorm parameters with gamma in [0.7,1.3], "
             "beta ~ N(0,0.1), running mean ~ N(0,0.2), running var in [0.5,2]. "
             "Inputs are synthetic but spatially/temporally correlated (sums of upsampled noise at "
             "several scales plus per-sample offsets, ~unit variance; `mlp_shape_arith` squashed to "
             "(0,1)) so that globally pooled features, and so the outputs, differ between samples. "
             "The final classifier of every model that has one is then *balanced* the way training would "
             "leave it: with 32 extra synthetic inputs (not the 4 stored ones) its weights are rescaled so the "
             "centred logits have std 2 and its bias cancels the mean feature (plus N(0,0.1) noise); without "
             "this a random head gives every input the same argmax. The models are not trained: they "
             "exist to exercise converters/runtimes on the operator patterns real embedded models use. "
             "`expected.npy` is onnxruntime's float32 result; other back ends should compare with a "
             "tolerance (onnxruntime kernels differ slightly between CPUs).")
    L.append("")
    L.append("All models: IR version 8, default ONNX domain only. Opset 13 except "
             "`mobilenetv3_block` (opset 14, because `HardSwish` does not exist before opset 14) and "
             "`transformer_block` (opset 17, for `LayerNormalization`).")
    L.append("")
    L.append("| model | opset | input | output | nodes | params | model.onnx bytes | input.npy | expected.npy |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        L.append(f"| `{r['name']}` | {r['opset']} | {r['in_shape']} | {r['out_shape']} | {r['n_nodes']} | "
                 f"{r['params']} | {r['size']} | {r['in_size']} | {r['exp_size']} |")
    L.append("")
    L.append("## Operators per model (from the ONNX files; `Op×n` = n nodes)")
    L.append("")
    for r in rows:
        L.append(f"- `{r['name']}`: {fmt_ops(r['ops'])}")
    L.append("")
    L.append("## Notes per model")
    L.append("")
    notes = {
        "mobilenetv2_block": "stem Conv 3x3 s2 (no bias) + unfused BatchNormalization + ReLU6 "
                             "(`Clip` with min/max initializer inputs); inverted residual: 1x1 expand (x4) + BN + "
                             "ReLU6, depthwise 3x3 (group=64) + BN + ReLU6, 1x1 project + BN (linear), "
                             "residual `Add`; GlobalAveragePool, Flatten, Gemm(transB=1), Softmax.",
        "mobilenetv3_block": "stem Conv s2 + HardSwish; 1x1 expand + HardSwish; depthwise 3x3 stride 2 with "
                             "`auto_pad=SAME_UPPER` (16x16 → 8x8); squeeze-and-excitation: GlobalAveragePool → Conv1x1 "
                             "→ Relu → Conv1x1 → HardSigmoid(alpha=1/6, beta=0.5) → broadcast Mul "
                             "([1,48,8,8]·[1,48,1,1]); 1x1 project; ReduceMean(axes=[2,3], keepdims=1, "
                             "axes as attribute); Flatten; Gemm (logits, no Softmax).",
        "squeezenet_fire": "Conv 3x3 s2 + Relu (16x16); MaxPool k3 s2 `ceil_mode=1` (gives 8x8; "
                           "floor mode would give 7x7); fire module: squeeze 1x1, expand 1x1 and expand 3x3 pad 1, "
                           "Concat axis 1; AveragePool 2x2; Flatten; Gemm (logits).",
        "resnet_block": "Conv (no bias) + BN + Relu at 32x32; basic block (identity shortcut); strided basic "
                        "block with 1x1 stride-2 projection shortcut + BN; Add, Relu; GlobalAveragePool; Reshape "
                        "to [1,-1] (int64 shape initializer); MatMul with constant [32,10] + Add bias; Softmax.",
        "conv1d_kws": "keyword-spotting style 1-D model over [1,40,98] (40 mel bands x 98 frames): Conv1d k5 s2 "
                      "(no pad, → 47), PRelu (slope [32,1]), Conv1d k3 dilation 2 pads [2,2], LeakyRelu(0.1), "
                      "WaveNet-style gate: two grouped Conv1d (group=4) → Tanh and Sigmoid, Mul; AveragePool 1-D "
                      "k4 s4 (→ 11); Flatten; Gemm (12 classes); Softmax.",
        "transformer_block": "pre-LN encoder block over [1,16,32], 2 heads of 16: LayerNormalization; MatMul "
                             "[32,96] + Add; Q/K/V taken out of the 96-wide projection by three MatMuls with constant "
                             "0/1 selection matrices [96,32] (no Split); Reshape [1,16,2,16]; Transpose to "
                             "[1,2,16,16] (K with perm [0,2,3,1], i.e. already transposed); MatMul Q·Kᵀ between two "
                             "activations; Div by sqrt(16) scalar; Sub of a constant causal mask (20 above the "
                             "diagonal); Softmax(-1); MatMul with V; Transpose back, Reshape [1,16,32]; MatMul "
                             "output projection; residual Add; LayerNormalization; MLP MatMul+Add → GELU written as "
                             "x·0.5·(1+Erf(x/√2)) (Div, Erf, Add, Mul, Mul) → MatMul+Add; residual Add.",
        "mlp_shape_arith": "Pad (constant mode, pads and value 0.5 as inputs) 10x10 → 12x12; Shape → Gather(0) "
                           "→ Unsqueeze (axes input) → Concat with constant [-1] → Reshape (all constant-foldable "
                           "because the input shape is static); Gemm alpha=0.5 beta=2.0 (B stored [K,N], "
                           "transB=0); Identity; Dropout (opset 13, no ratio input → inference pass-through); "
                           "Sigmoid; Squeeze/Unsqueeze round trip (axes as inputs); Sub and Div by broadcast "
                           "constants ([32] and [1,32]); Transpose [1,32]→[32,1]; Gemm transA=1 transB=1; Softmax.",
    }
    for r in rows:
        L.append(f"- `{r['name']}` — {notes[r['name']]} Output range over the 4 samples: "
                 f"[{r['out_min']:.4g}, {r['out_max']:.4g}]"
                 + (f"; argmax per sample {r['argmax']}" if "argmax" in r else "") + ".")
    L.append("")
    with open(os.path.join(ZOO, "README.md"), "w") as f:
        f.write("\n".join(L))


def write_readme(res, rows):
    files = []
    for root, _, fnames in os.walk(HERE):
        for fn in fnames:
            if fn.endswith((".onnx", ".npy")):
                p = os.path.join(root, fn)
                files.append((os.path.relpath(p, HERE), os.path.getsize(p)))
    files.sort()
    L = []
    L.append("# models/")
    L.append("")
    L.append("Example models and test data for sprig. Everything here (including this README and "
             "`zoo/README.md`) is produced by one deterministic, seeded script:")
    L.append("")
    L.append("```sh")
    L.append("python3 models/make_models.py")
    L.append("```")
    L.append("")
    L.append("Requirements: Python ≥ 3.10 with `numpy`, `onnx`, `onnxruntime`, `scikit-learn` "
             "(`pip install numpy onnx onnxruntime scikit-learn`). No network access is needed: the dataset "
             "ships inside the scikit-learn wheel. The files in this folder were generated with "
             f"Python {sys.version.split()[0]}, numpy {np.__version__}, onnx {onnx.__version__}, "
             f"onnxruntime {ort.__version__}, scikit-learn {sklearn_version()}. Rerunning with the same "
             "versions on the same machine rewrites byte-identical files; other numpy/BLAS builds may "
             "change the trained weights in the last bits.")
    L.append("")
    L.append("## Dataset: scikit-learn `load_digits` (UCI optdigits)")
    L.append("")
    L.append("- What: 1797 grey-scale 8x8 images of handwritten digits 0–9, integer pixels 0..16. "
             "It is a copy of the *test* part of the UCI “Optical Recognition of Handwritten Digits” "
             "dataset (E. Alpaydin, C. Kaynak, Bogazici University, 1998; UCI dataset id 80, "
             "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits), "
             "bitmaps made with NIST preprocessing programs from forms filled in by 43 people.")
    L.append("- Where from: `sklearn.datasets.load_digits()`, which reads `sklearn/datasets/data/digits.csv.gz` "
             "bundled in the scikit-learn wheel (scikit-learn is BSD-3-Clause licensed). No download.")
    L.append("- License: the UCI Machine Learning Repository lists this dataset under Creative Commons "
             "Attribution 4.0 International (CC BY 4.0). Attribution: Alpaydin, E. & Kaynak, C. (1998). "
             "Optical Recognition of Handwritten Digits [Dataset]. UCI Machine Learning Repository. "
             "https://doi.org/10.24432/C50P49. The derived `.npy` arrays here are redistributed under the "
             "same terms (CC BY 4.0, with this attribution); the trained weights in the `.onnx` files are "
             "a derivative work of the data.")
    L.append("- Preprocessing: pixels divided by 16 → float32 in [0, 1]. No other normalisation.")
    L.append(f"- Split (fixed permutation, `numpy.random.default_rng({SPLIT_SEED}).permutation(1797)`): "
             f"first {res['n_calib']} → calibration, next {res['n_eval']} → evaluation, remaining "
             f"{res['n_train']} → training. Calibration and evaluation samples are never trained on. "
             f"Eval label counts (0..9): {res['label_hist']}.")
    L.append("")
    L.append("## Digit models")
    L.append("")
    L.append("| file | input | output | params | eval acc (500) | calib acc (300) | train acc |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    L.append(f"| `digits_cnn.onnx` | `input` f32 [1,1,8,8] | `probs` [1,10] | {res['cnn_params']} | "
             f"**{res['cnn_eval_acc'] * 100:.1f}%** | {res['cnn_calib_acc'] * 100:.1f}% | "
             f"{res['cnn_train_acc'] * 100:.1f}% |")
    L.append(f"| `digits_mlp.onnx` | `input` f32 [1,64] | `probs` [1,10] | {res['mlp_params']} | "
             f"**{res['mlp_eval_acc'] * 100:.1f}%** | {res['mlp_calib_acc'] * 100:.1f}% | "
             f"{res['mlp_train_acc'] * 100:.1f}% |")
    L.append("")
    L.append("Accuracies are measured with onnxruntime (CPU) on the exported ONNX files, one sample at a "
             "time. The script also checks that onnxruntime reproduces the numpy forward pass: max |diff| "
             f"of the probabilities = {res['cnn_diff']:.2e} (CNN), {res['mlp_diff']:.2e} (MLP), required < 1e-5.")
    L.append("")
    L.append("`digits_cnn.onnx` (opset 13, IR 8): Conv 3x3 pad 1 (1→8, bias) → BatchNormalization "
             "(separate node, running stats from training, eps 1e-5) → Relu → depthwise Conv 3x3 "
             "(group=8, pad 1) → Relu → Conv 1x1 (8→16) → Clip(min=0, max=6 as initializer inputs) → "
             "MaxPool 2x2 s2 → GlobalAveragePool → Flatten → Gemm (16→10, transB=1) → Softmax. "
             "Trained in plain numpy (hand-written forward/backward, batch-statistics BatchNorm during "
             "training with momentum 0.1 running averages and unbiased running variance), Adam "
             "(lr 0.01, cosine decay, weight decay 1e-4 on weight tensors), batch 32, 150 epochs, "
             "no augmentation (random ±1-pixel shifts were tried and did not help on the calibration split).")
    L.append("")
    L.append("`digits_mlp.onnx` (opset 13, IR 8): Gemm (64→32, transB=1) → Relu → Gemm (32→10, transB=1) "
             "→ Softmax, trained in numpy with Adam (lr 0.005, cosine decay, weight decay 1e-4), batch 32, "
             "300 epochs, no augmentation.")
    L.append("")
    L.append("## Arrays")
    L.append("")
    L.append("All `.npy` files are format 1.0, little-endian, C order; first axis = samples; one sample = "
             "the model input shape without the batch dimension.")
    L.append("")
    L.append("- `digits_calib.npy` float32 (300,1,8,8): calibration inputs for `digits_cnn.onnx`.")
    L.append("- `digits_eval.npy` float32 (500,1,8,8): evaluation inputs for `digits_cnn.onnx`.")
    L.append("- `digits_eval_flat.npy` float32 (500,64): the same 500 evaluation images flattened "
             "(row-major), input for `digits_mlp.onnx`. (For MLP calibration reshape "
             "`digits_calib.npy` to (300,64).)")
    L.append("- `digits_eval_labels.npy` int64 (500,): labels 0..9 for both eval arrays.")
    L.append("")
    L.append("## Zoo")
    L.append("")
    L.append("`zoo/` holds seven untrained, random-weight models covering common embedded model "
             "structures (MobileNetV2/V3 blocks, SqueezeNet fire, ResNet basic blocks, 1-D keyword "
             "spotting, a transformer encoder block, and a graph full of shape arithmetic), each with "
             "4 inputs and onnxruntime's outputs. See `zoo/README.md` (operators, shapes, sizes). "
             "They are synthetic (generated from seeds in the script), so no third-party license applies.")
    L.append("")
    L.append("## Files")
    L.append("")
    L.append("| file | bytes |")
    L.append("| --- | --- |")
    for p, s in files:
        L.append(f"| `{p}` | {s} |")
    total = sum(s for _, s in files)
    L.append(f"| total (.onnx + .npy) | {total} |")
    L.append("")
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("\n".join(L))
    return files, total


def sklearn_version():
    import sklearn
    return sklearn.__version__


def main():
    np.seterr(over="raise", invalid="raise")
    res = make_digits()
    rows = make_zoo()
    write_zoo_readme(rows)
    files, total = write_readme(res, rows)
    for p, s in files:
        assert s < 300 * 1024, (p, s)
    print(f"total .onnx/.npy bytes under models/: {total}")


if __name__ == "__main__":
    main()
