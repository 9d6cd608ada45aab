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
    read_f32_bytes(&bytes, &path.display().to_string())
}

/// Parses `.npy` bytes of any real numeric dtype as f32; `name` labels every error.
///
/// Guarantees: never panics, and never allocates more than the data the bytes actually hold
/// (a header that declares a shape larger than the payload is rejected before any allocation).
pub fn read_f32_bytes(bytes: &[u8], name: &str) -> Result<Array> {
    // npyz parses the header as a Python literal with a backtracking parser that takes time
    // exponential in bracket nesting (found by fuzzing: 100 `[` took minutes). A plain array's
    // header nests two deep (`{… (3, 4) …}`); refuse anything deeper before parsing.
    let depth = npy_header_text(bytes)
        .iter()
        .scan(0i32, |d, &c| {
            *d += match c {
                b'(' | b'[' | b'{' => 1,
                b')' | b']' | b'}' => -1,
                _ => 0,
            };
            Some(*d)
        })
        .max()
        .unwrap_or(0);
    if depth > 3 {
        bail!("{name}: the .npy header nests brackets {depth} deep (a plain numeric array's header nests 2)");
    }
    // npyz multiplies the shape without overflow checks (found by fuzzing).
    if header_shape_overflows(npy_header_text(bytes)) {
        bail!("{name}: the .npy header's shape is not a tuple of plain integers with fewer than 2^61 elements (corrupt header)");
    }
    let npy = npyz::NpyFile::new(bytes).with_context(|| format!("{name}: not a valid .npy file"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let dtype = npy.dtype();
    let descr = match &dtype {
        npyz::DType::Plain(t) => t.to_string(),
        other => bail!("{name}: unsupported dtype {other:?} (need a plain numeric array)"),
    };
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    let width = match code {
        "f4" | "i4" => 4,
        "f8" | "i8" => 8,
        "i2" => 2,
        "i1" | "u1" | "b1" => 1,
        other => bail!("{name}: unsupported dtype `{other}` (need f4, f8 or an integer type)"),
    };
    let elems = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let need = elems.and_then(|n| n.checked_mul(width));
    let header = bytes.len() - npy_payload_len(bytes);
    match need {
        Some(n) if n <= bytes.len() - header => {}
        _ => bail!(
            "{name}: shape {shape:?} of {descr} needs {} bytes of data but the file holds {} (truncated or corrupt header)",
            need.map_or("more than 2^64".to_string(), |n| n.to_string()),
            bytes.len() - header
        ),
    }
    if order == npyz::Order::Fortran && shape.len() > 1 {
        bail!("{name}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
    }
    let ctx = || format!("{name}: reading {descr} data");
    let data: Vec<f32> = match code {
        "f4" => npy.into_vec::<f32>().with_context(ctx)?,
        "f8" => npy.into_vec::<f64>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "i8" => npy.into_vec::<i64>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "i4" => npy.into_vec::<i32>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "i2" => npy.into_vec::<i16>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "i1" => npy.into_vec::<i8>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        "u1" => npy.into_vec::<u8>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        _ => npy.into_vec::<bool>().with_context(ctx)?.into_iter().map(|v| v as u8 as f32).collect(),
    };
    if data.len() != elems.unwrap_or(0) {
        bail!("{name}: data length {} does not match shape {:?}", data.len(), shape);
    }
    Ok(Array { shape, data })
}

/// The `.npy` header's text (the Python dict literal), or nothing when the preamble is short.
fn npy_header_text(bytes: &[u8]) -> &[u8] {
    let (at, hlen): (usize, usize) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        Some(_) if bytes.len() >= 12 => (12, u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize),
        _ => return &[],
    };
    &bytes[at..bytes.len().min(at.saturating_add(hlen))]
}

/// True when the `shape` tuple in a `.npy` header text holds anything but plain non-negative
/// integers (npyz's Python-literal parser also evaluates expressions such as `8000…-9842`), or
/// multiplies (times 8 bytes) past u64 in the order written. Only a guard in front of npyz.
fn header_shape_overflows(header: &[u8]) -> bool {
    let h = String::from_utf8_lossy(header);
    // Every `shape` key (a dict literal may repeat one; the last wins in Python).
    h.match_indices("shape").any(|(i, _)| {
        let rest = &h[i..];
        let Some(open) = rest.find('(') else { return false };
        let Some(len) = rest[open..].find(')') else { return false };
        let mut bytes: u64 = 8;
        for t in rest[open + 1..open + len].split(',') {
            let t = t.trim();
            if t.is_empty() {
                continue; // the trailing comma of `(3,)`
            }
            match t.trim_end_matches('L').parse::<u64>().ok().and_then(|d| bytes.checked_mul(d)) {
                Some(b) => bytes = b,
                None => return true,
            }
        }
        false
    })
}

/// Bytes after the `.npy` header (magic, version, header length, header text); 0 when the
/// preamble is too short to say (the caller has already parsed the header by then).
fn npy_payload_len(bytes: &[u8]) -> usize {
    if bytes.len() < 10 {
        return 0;
    }
    let (len_at, len_size) = if bytes[6] == 1 { (8, 2) } else { (8, 4) };
    if bytes.len() < len_at + len_size {
        return 0;
    }
    let hlen = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    bytes.len().saturating_sub(len_at + len_size + hlen)
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
