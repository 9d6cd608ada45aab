//! Calibration activations: the values of chosen tensors of a graph on calibration samples,
//! computed with sprig's own runtime, and the rows a weight layer sees (im2col for Conv).

use crate::compile::compile;
use crate::host::HostModel;
use crate::ir::{Graph, TensorId};
use crate::writer::WeightFormat;
use anyhow::{bail, Context, Result};
use sprig_runtime::Op;

/// `values[t][s]`: tensor `tensors[t]` on sample `s`. A single-input graph is required; graph
/// inputs among `tensors` are the samples themselves.
pub fn activations(g: &Graph, tensors: &[TensorId], samples: &[&[f32]]) -> Result<Vec<Vec<Vec<f32>>>> {
    if g.inputs.len() != 1 {
        bail!("calibration needs a single-input model (this one has {} inputs)", g.inputs.len());
    }
    let mut probe = g.clone();
    let mut slot = Vec::with_capacity(tensors.len());
    for &t in tensors {
        if t == g.inputs[0] {
            slot.push(None);
        } else if let Some(i) = probe.outputs.iter().position(|&o| o == t) {
            slot.push(Some(i));
        } else {
            probe.outputs.push(t);
            slot.push(Some(probe.outputs.len() - 1));
        }
    }
    let c = compile(probe, WeightFormat::F32, [0; 32]).context("compiling the calibration probe")?;
    let mut m = HostModel::new(&c.bytes)?;
    let mut out = vec![Vec::with_capacity(samples.len()); tensors.len()];
    for (s, x) in samples.iter().enumerate() {
        let y = m.run(&[x]).with_context(|| format!("calibration sample {s}"))?;
        for (t, sl) in slot.iter().enumerate() {
            out[t].push(match sl {
                None => x.to_vec(),
                Some(i) => y[*i].clone(),
            });
        }
    }
    Ok(out)
}

/// How a weight layer reads its input: the row of values multiplying one output position.
#[derive(Clone, Debug, PartialEq)]
pub enum RowLayout {
    /// Dense: the whole input vector is one row.
    Dense {
        /// Input length.
        k: usize,
    },
    /// Conv (group 1): one row per output pixel, C·kh·kw values (channel-major, as the weight).
    Conv {
        /// Input channels, height, width.
        c: usize,
        h: usize,
        w: usize,
        /// Kernel height and width.
        kh: usize,
        kw: usize,
        /// Strides, dilations, pads (top, left).
        stride: [usize; 2],
        dilation: [usize; 2],
        pad: [usize; 2],
        /// Output height and width.
        oh: usize,
        ow: usize,
    },
}

impl RowLayout {
    /// The layout of weight node `n` of `g` (Conv with group 1, or Dense).
    pub fn of(g: &Graph, n: usize) -> Result<RowLayout> {
        match &g.nodes[n].op {
            Op::Conv(a) if a.group != 1 => {
                let node = &g.nodes[n];
                bail!("node `{}` ({}) is not a Conv (group 1) or Dense layer", node.name, node.op.name())
            }
            _ => RowLayout::of_group(g, n),
        }
    }

    /// The layout of weight node `n` of `g`; for a grouped convolution, that of one group: its
    /// slice of `C / group` input channels (contiguous in the input, group after group).
    pub fn of_group(g: &Graph, n: usize) -> Result<RowLayout> {
        let node = &g.nodes[n];
        let x = &g.tensors[node.inputs[0]].shape;
        match &node.op {
            Op::Dense { .. } => Ok(RowLayout::Dense { k: x.iter().skip(1).product() }),
            Op::Conv(a) if x.len() == 4 => {
                let w = &g.tensors[node.inputs[1]].shape;
                let y = &g.tensors[node.outputs[0]].shape;
                Ok(RowLayout::Conv {
                    c: x[1] / (a.group.max(1) as usize),
                    h: x[2],
                    w: x[3],
                    kh: w[2],
                    kw: w[3],
                    stride: [a.stride[0] as usize, a.stride[1] as usize],
                    dilation: [a.dilation[0] as usize, a.dilation[1] as usize],
                    pad: [a.pads[0] as usize, a.pads[1] as usize],
                    oh: y[2],
                    ow: y[3],
                })
            }
            other => bail!("node `{}` ({}) is not a 2-D Conv or Dense layer", node.name, other.name()),
        }
    }

    /// Values per row (without the constant 1).
    pub fn width(&self) -> usize {
        match *self {
            RowLayout::Dense { k } => k,
            RowLayout::Conv { c, kh, kw, .. } => c * kh * kw,
        }
    }

    /// Rows per sample.
    pub fn rows(&self) -> usize {
        match *self {
            RowLayout::Dense { .. } => 1,
            RowLayout::Conv { oh, ow, .. } => oh * ow,
        }
    }

    /// Appends row `r` of sample `x` (then a constant 1) to `out`.
    pub fn push_row(&self, x: &[f32], r: usize, out: &mut Vec<f64>) {
        match *self {
            RowLayout::Dense { k } => out.extend(x[..k].iter().map(|&v| v as f64)),
            RowLayout::Conv { c, h, w, kh, kw, stride, dilation, pad, ow, .. } => {
                let (oy, ox) = (r / ow, r % ow);
                for ci in 0..c {
                    for ky in 0..kh {
                        let iy = (oy * stride[0] + ky * dilation[0]) as isize - pad[0] as isize;
                        for kx in 0..kw {
                            let ix = (ox * stride[1] + kx * dilation[1]) as isize - pad[1] as isize;
                            let v = if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                x[(ci * h + iy as usize) * w + ix as usize] as f64
                            } else {
                                0.0
                            };
                            out.push(v);
                        }
                    }
                }
            }
        }
        out.push(1.0);
    }
}

/// Row indices to use per sample so that about `max_rows` rows are taken over `samples` samples
/// (evenly spaced; every row when they fit).
pub fn row_subset(rows_per_sample: usize, samples: usize, max_rows: usize) -> Vec<usize> {
    let per = (max_rows / samples.max(1)).max(1);
    if per >= rows_per_sample {
        return (0..rows_per_sample).collect();
    }
    (0..per).map(|i| i * rows_per_sample / per).collect()
}

/// The fit / held-out split of calibration samples used to make choices the fit data cannot make
/// honestly (a path stage, a ridge strength): every fourth sample is held out. `None` below 8
/// samples (then everything is both fit and held out).
pub fn split_samples<T: Clone>(v: &[T]) -> Option<(Vec<T>, Vec<T>)> {
    if v.len() < 8 {
        return None;
    }
    let pick = |held: bool| v.iter().enumerate().filter(|(i, _)| (i % 4 == 3) == held).map(|(_, x)| x.clone()).collect();
    Some((pick(false), pick(true)))
}
