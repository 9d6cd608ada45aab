//! `.npy` reading and writing (via `npyz`), with sample-axis helpers.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// A dense f32 array read from / written to `.npy`.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// Shape (first axis = samples where that applies).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Array {
    /// Number of samples (first axis), 1 for rank 0.
    pub fn samples(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per sample.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.sample_len();
        &self.data[i * n..(i + 1) * n]
    }
}

/// Reads an `.npy` file of any real numeric dtype as f32.
pub fn read_f32(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let dtype = npy.dtype();
    let descr = match &dtype {
        npyz::DType::Plain(t) => t.to_string(),
        other => bail!("{}: unsupported dtype {other:?} (need a plain numeric array)", path.display()),
    };
    let ctx = || format!("{}: reading {descr} data", path.display());
    let data: Vec<f32> = match descr.trim_start_matches(['<', '|', '=']) {
        "f4" => npy.into_vec::<f32>().with_context(ctx)?,
        "f8" => npy.into_vec::<f64>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "i8" => npy.into_vec::<i64>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "i4" => npy.into_vec::<i32>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "i2" => npy.into_vec::<i16>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "i1" => npy.into_vec::<i8>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "u1" => npy.into_vec::<u8>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "b1" => npy.into_vec::<bool>().with_context(ctx)?.into_iter().map(|v| v as u8 as f32).collect(),
        other => bail!("{}: unsupported dtype `{other}` (need f4, f8 or an integer type)", path.display()),
    };
    if order == npyz::Order::Fortran && shape.len() > 1 {
        bail!("{}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray", path.display());
    }
    if data.len() != shape.iter().product::<usize>() {
        bail!("{}: data length {} does not match shape {:?}", path.display(), data.len(), shape);
    }
    Ok(Array { shape, data })
}

/// Writes an f32 array to `.npy` atomically.
pub fn write_f32(path: &Path, a: &Array) -> Result<()> {
    let mut buf = Vec::new();
    {
        let shape: Vec<u64> = a.shape.iter().map(|&d| d as u64).collect();
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<f32>::new().default_dtype().shape(&shape).writer(&mut buf).begin_nd()?;
        w.extend(a.data.iter().copied())?;
        w.finish()?;
    }
    crate::compile::write_atomic(path, &buf)
}

/// Checks that `a` holds samples of `input_shape` (batch 1 first): `(N, ...input_shape[1..])`,
/// or any `(N, ...)` with the same number of elements per sample. Rejects NaN / Inf.
pub fn check_samples(a: &Array, input_shape: &[usize], what: &str) -> Result<()> {
    let want: usize = input_shape.iter().product();
    if a.shape.is_empty() || a.sample_len() != want {
        bail!(
            "{what}: shape {:?} does not hold samples of the model input shape {:?} (expected (N, {}))",
            a.shape,
            input_shape,
            input_shape.iter().skip(1).map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(pos) = a.data.iter().position(|v| !v.is_finite()) {
        bail!("{what}: sample {} holds a non-finite value ({}) at element {}", pos / want, a.data[pos], pos % want);
    }
    Ok(())
}
