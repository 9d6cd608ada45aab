#!/usr/bin/env python3
"""Latency of every real model: sprig's variants (dense with the portable loops, with the AVX2 +
FMA tier on an AVX-512 CPU, and with this CPU's SIMD kernels, activation sparsity, pruned, 4-bit
codebook, combined) beside tract and onnxruntime on the dense ONNX model, batch 1, one thread,
on real evaluation samples.

sprig and tract are timed interleaved by `sprig bench --onnx` (medians of the same run); the
measured speedup of a variant over dense is timed interleaved with the dense .sprig, run by run,
in one `sprig bench --baseline` (so drift of the machine cancels);
onnxruntime (the PyPI wheel, intra- and inter-op threads 1, all graph optimizations on) runs in
this process on the same samples, cycled the same way: it and each .sprig (alone, as
onnxruntime runs: timing beside tract evicts each one's weights from the caches) are timed
alternately in seven rounds, and sprig / onnxruntime is the median of the per-round ratios
(each variant's measured against onnxruntime itself, not derived from dense's). A call of
onnxruntime from Python costs about 10 µs beyond the engine's work (converting the input and
output, building the result list), which sprig's timed loop, native code, does not pay: each
round also times a model that only reads the input's shape (one Shape node) the same way, and the table gives
sprig / onnxruntime both against the plain median and against it less that call's median (the
engine's own time, the fairer figure for small models). Everything runs pinned to one
CPU (`--cpu`, default 0): this VM's two cores differ (one ran every runner about 1.9x slower, and
noisier, than the other), so a process landing on the other core skewed a ratio by up to 2x.
Medians in microseconds.

Needs numpy, onnxruntime and onnx (`pip install onnxruntime onnx`; without onnx the call is not
measured). Usage (from the repository root, after `cargo build --release -p sprig-tools`):
    python3 benches/scripts/latency_table.py [--models mnist-8,ad_autoencoder_fp32] [--variants dense] [--iters 500] [--cpu 0] [--out table.md]
"""
import argparse, json, os, sys, tempfile, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prune_table import SPRIG, bench, build, emit, failure, sh, splits  # noqa: E402


class Ort:
    """One onnxruntime session on the dense ONNX (PyPI wheel, one thread, all graph
    optimizations), fed the given samples in turn."""

    def __init__(self, onnx_path, samples):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.s = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        self.inp = self.s.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in self.inp.shape]
        self.xs = [x.reshape(shape).astype(np.float32) for x in samples]
        for x in self.xs[: min(len(self.xs), 20)]:
            self.s.run(None, {self.inp.name: x})
        # The cost of the call itself: a model that only reads the input's shape, run the same
        # way. Built with the `onnx` package; without it the tables give the plain ratio only.
        self.null = None
        try:
            import onnx
            from onnx import helper
        except ImportError:
            print("latency_table: the onnx package is missing (pip install onnx): onnxruntime's Python call "
                  "is not measured, and the 'less the call' column is n/a", file=sys.stderr)
            return
        g = helper.make_graph([helper.make_node("Shape", ["x"], ["y"])], "call",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, [len(shape)])])
        null = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        null.ir_version = 8
        self.null = ort.InferenceSession(null.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def median_us(self, iters, session=None):
        s, times = session or self.s, []
        name = s.get_inputs()[0].name
        for i in range(iters):
            x = self.xs[i % len(self.xs)]
            t = time.perf_counter()
            s.run(None, {name: x})
            times.append((time.perf_counter() - t) * 1e6)
        return float(np.median(times))

    def call_us(self, iters):
        """Median of a Shape-only model on the same inputs: the Python call's share of a run
        (None without the `onnx` package)."""
        return self.median_us(iters, self.null) if self.null else None


def vs_ort(ort, model, ep, iters, samples, rounds=7):
    """sprig (the .sprig `model`) and onnxruntime on the dense ONNX timed alternately, `rounds` times: the medians of the
    per-round ratios (drift of the machine between rounds cancels), against onnxruntime's run and against it less
    the Python call (`Ort.call_us`, timed in the same round), and of sprig's, onnxruntime's and the call's medians."""
    r, re, s_us, o_us, c_us = [], [], [], [], []
    for _ in range(rounds):
        s = bench(model, ep, iters, "--samples", samples)["sprig_median_us"]
        o = ort.median_us(int(iters))
        c = ort.call_us(int(iters))
        r.append(s / o)
        s_us.append(s)
        o_us.append(o)
        if c is not None:
            re.append(s / max(o - c, 1e-3))
            c_us.append(c)
    med = lambda v: float(np.median(v)) if v else None
    return med(r), med(re), med(s_us), med(o_us), med(c_us)


VARIANTS = [
    # name, sprig arguments after the ONNX path and output, extra `sprig bench` flags
    ("dense (portable loops)", ["convert"], ["--no-simd"]),
    # The tier an x86 CPU without AVX-512 runs (only the runtime's own kernels switch: tract
    # and onnxruntime keep theirs, so only the portable and tract columns compare like with like).
    ("dense (AVX2 + FMA tier)", ["convert"], ["--no-avx512"]),
    ("dense", ["convert"], []),
    ("auto (activation sparsity)", ["compress"], []),
    ("pruned filter:macs=0.7", ["compress", "--prune", "filter:macs=0.7", "--act-sparsity", "off"], []),
    ("codebook 4-bit", ["compress", "--codebook", "4", "--act-sparsity", "off"], []),
    ("combined (pruned + 4-bit + auto)", ["compress", "--prune", "filter:macs=0.7", "--codebook", "4"], []),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="")
    ap.add_argument("--iters", default="500")
    ap.add_argument("--samples", default="32")
    ap.add_argument("--out", default="")
    ap.add_argument("--variants", default="", help="comma-separated variant labels to run (all when empty)")
    ap.add_argument("--cpu", type=int, default=0,
                    help="CPU this script and every process it starts are pinned to, so sprig, tract and onnxruntime run on the same core (-1: no pinning)")
    a = ap.parse_args()
    if a.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        # Cores of a VM differ in speed and in their neighbours' load: timings compared across
        # runners are only fair on one core.
        os.sched_setaffinity(0, {a.cpu})
    pick = set(a.variants.split(",")) if a.variants else None
    tmp = tempfile.mkdtemp()
    lines = []
    for name, onnx, cp, ep, _, _ in splits(a.models, tmp):
        ev = np.load(ep).astype(np.float32)[: int(a.samples)]
        ort = Ort(onnx, list(ev))
        head = len(lines)
        lines += ["", "", "",
                  "| variant | MACs | sprig µs | tract µs (dense ONNX) | sprig / tract | GMAC/s | onnxruntime µs (of it the Python call) | sprig / onnxruntime | sprig / onnxruntime less the call | ideal speedup (MACs) | measured speedup |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        dense_out = dense_macs = None
        for label, args, flags in VARIANTS:
            if pick and label not in pick:
                continue
            out = os.path.join(tmp, f"{name}_{len(lines)}.sprig")
            try:
                build(onnx, out, cp if args[0] == "compress" else None, *args[1:])
            except RuntimeError as e:
                lines.append(f"| {label} | not built: {failure(e)} | | | | | | | | | |")
                continue
            b = bench(out, ep, a.iters, "--onnx", onnx, "--samples", a.samples, *flags)
            macs = json.loads(sh(SPRIG, "inspect", out, "--json"))["macs"]
            d, t = b["sprig_median_us"], b["tract_median_us"]
            ratio = o = None
            if not flags:
                # This CPU's kernels: against onnxruntime, alternately.
                ratio, ratio_e, alone, o, call = vs_ort(ort, out, ep, a.iters, a.samples)
            if label == "dense":
                dense_out, dense_macs = out, macs
                of_it = f" of which {call:.1f} µs is the Python call" if call is not None else ""
                less = f", {ratio_e:.2f} against onnxruntime less the call" if ratio_e is not None else ""
                lines[head + 1] = (f"**{name}** (timed alternately with onnxruntime in seven rounds: dense sprig {alone:.1f} µs, "
                                   f"onnxruntime on the dense ONNX {o:.1f} µs{of_it}, median ratio {ratio:.2f}{less})")
            ideal = f"{dense_macs / macs:.2f}x" if dense_macs and label != "dense" and not flags else ""
            # Each variant over the dense model, interleaved run by run in one process.
            sp = None
            if dense_out and label != "dense" and not flags:
                sp = bench(out, ep, a.iters, "--baseline", dense_out, "--samples", a.samples)["speedup_over_baseline"]
            meas = f"{sp:.2f}x" if sp else ""
            o_txt, r_txt, e_txt = "", "", ""
            if ratio:
                o_txt = f"{o:.1f} ({call:.1f})" if call is not None else f"{o:.1f} (n/a)"
                r_txt, e_txt = f"{ratio:.2f}", f"{ratio_e:.2f}" if ratio_e is not None else "n/a"
            lines.append(f"| {label} | {macs} | {d:.1f} | {t:.1f} | {d / t:.2f} | {macs / d / 1e3:.2f} | {o_txt} | {r_txt} | {e_txt} | {ideal} | {meas} |")
            print(lines[-1], flush=True)
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    sys.exit(main())
