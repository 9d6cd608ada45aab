//! Running `.sprig` models on the host with the runtime (owned arena).

use anyhow::{anyhow, Result};
use sprig_runtime::{Model, Plan, Session, Step};

/// A parsed model with its own arena and its operators decoded once ([`Plan`]).
pub struct HostModel<'a> {
    /// The validated model.
    pub model: Model<'a>,
    arena: Vec<CacheLine>,
    steps: Vec<Step<'a>>,
}

/// 64 bytes aligned to 64, the arena's unit: every arena buffer then sits at the same offset
/// within a cache line in every run, so timings do not depend on where the allocator put it.
#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(64))]
struct CacheLine([f32; 16]);

impl<'a> HostModel<'a> {
    /// Parses and validates `bytes`.
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        let model = Model::parse(bytes).map_err(|e| anyhow!("invalid .sprig file: {e}"))?;
        let arena = vec![CacheLine([0.0; 16]); model.arena_len().div_ceil(64)];
        let mut steps = vec![Step::EMPTY; model.num_ops()];
        Plan::new(&model, &mut steps).map_err(|e| anyhow!("invalid .sprig file: {e}"))?;
        Ok(HostModel { model, arena, steps })
    }

    /// A session over the arena running the decoded operators.
    fn session(&mut self) -> Result<Session<'_, '_>> {
        let plan = Plan::from_steps(&self.model, &self.steps).map_err(|e| anyhow!("{e}"))?;
        Session::with_plan(&self.model, bytemuck::cast_slice_mut(&mut self.arena), &plan).map_err(|e| anyhow!("{e}"))
    }

    /// Whether operator `op` runs channel-blocked kernels on this host ([`Plan::blocked`]).
    pub fn blocked(&self, op: usize) -> bool {
        Plan::from_steps(&self.model, &self.steps).is_ok_and(|p| p.blocked(op))
    }

    /// Input shapes.
    pub fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.model.inputs().map(|io| io.shape.dims().iter().map(|&d| d as usize).collect()).collect()
    }

    /// Output shapes.
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.model.outputs().map(|io| io.shape.dims().iter().map(|&d| d as usize).collect()).collect()
    }

    /// Runs one inference; `inputs[i]` fills input i; returns every output.
    pub fn run(&mut self, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let model = self.model;
        let mut s = self.session()?;
        for (i, x) in inputs.iter().enumerate() {
            let dst = s.input_mut(i).map_err(|e| anyhow!("{e}"))?;
            if dst.len() != x.len() {
                return Err(anyhow!("input {i}: {} values given, model needs {}", x.len(), dst.len()));
            }
            dst.copy_from_slice(x);
        }
        s.run().map_err(|e| anyhow!("inference failed: {e}"))?;
        (0..model.num_outputs()).map(|i| Ok(s.output(i).map_err(|e| anyhow!("{e}"))?.to_vec())).collect()
    }

    /// Runs one inference without copying outputs (for timing).
    pub fn run_in_place(&mut self, inputs: &[&[f32]]) -> Result<()> {
        let mut s = self.session()?;
        for (i, x) in inputs.iter().enumerate() {
            s.input_mut(i).map_err(|e| anyhow!("{e}"))?.copy_from_slice(x);
        }
        s.run().map_err(|e| anyhow!("inference failed: {e}"))
    }
}

/// Memory-maps a `.sprig` file read-only (the runtime then reads it in place, zero-copy).
///
/// The file must not be modified while mapped.
pub fn map_file(path: &std::path::Path) -> Result<memmap2::Mmap> {
    use anyhow::Context;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    if f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(anyhow!("{}: file is empty", path.display()));
    }
    // SAFETY: read-only private mapping of a regular file the CLI does not modify; a concurrent
    // external writer is documented as unsupported.
    unsafe { memmap2::Mmap::map(&f) }.with_context(|| format!("mapping {}", path.display()))
}

impl HostModel<'_> {
    /// Wall time per operator (microseconds) of each of `iters` runs, via the session's hook;
    /// run `i` reads input set `sets[i % sets.len()]` (one slice per graph input).
    pub fn profile_runs(&mut self, sets: &[Vec<&[f32]>], iters: usize) -> Result<Vec<Vec<f64>>> {
        let model = self.model;
        let n_ops = model.num_ops();
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(iters); n_ops];
        if sets.is_empty() {
            return Err(anyhow!("no input samples to profile with"));
        }
        for it in 0..iters.max(1) {
            let inputs = &sets[it % sets.len()];
            let mut s = self.session()?;
            for (i, x) in inputs.iter().enumerate() {
                s.input_mut(i).map_err(|e| anyhow!("{e}"))?.copy_from_slice(x);
            }
            let mut start = std::time::Instant::now();
            s.run_with(|op, after| {
                if after {
                    samples[op].push(start.elapsed().as_secs_f64() * 1e6);
                } else {
                    start = std::time::Instant::now();
                }
            })
            .map_err(|e| anyhow!("inference failed: {e}"))?;
        }
        Ok(samples)
    }

    /// Median wall time per operator (microseconds) over `iters` runs on one input set.
    pub fn profile(&mut self, inputs: &[&[f32]], iters: usize) -> Result<Vec<f64>> {
        Ok(self.profile_runs(&[inputs.to_vec()], iters)?.into_iter().map(median).collect())
    }
}

/// Median of `v` (0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Median and 90th percentile of `v` (not empty).
pub fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

/// Times `f` and, when given, `g` in alternation (f, g, f, g, ...), so that both see the same
/// machine conditions; returns (median, p90) in microseconds for each.
#[allow(clippy::type_complexity)]
pub fn time_interleaved(
    iters: usize,
    mut f: impl FnMut() -> Result<()>,
    mut g: Option<&mut dyn FnMut() -> Result<()>>,
) -> Result<((f64, f64), Option<(f64, f64)>)> {
    let warm = (iters / 10).clamp(3, 50);
    for _ in 0..warm {
        f()?;
        if let Some(g) = g.as_mut() {
            g()?;
        }
    }
    let mut tf = Vec::with_capacity(iters);
    let mut tg = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let s = std::time::Instant::now();
        f()?;
        tf.push(s.elapsed().as_secs_f64() * 1e6);
        if let Some(g) = g.as_mut() {
            let s = std::time::Instant::now();
            g()?;
            tg.push(s.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok((percentiles(tf), if tg.is_empty() { None } else { Some(percentiles(tg)) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every host arena starts on a cache line, whatever the allocator did before it: timing two
    /// models side by side (`sprig bench --baseline`) compares kernels, not arena placements.
    #[test]
    fn arenas_start_on_a_cache_line() {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/digits_cnn_v1.0.sprig")).unwrap();
        let mut held = Vec::new();
        for k in 0..8 {
            // Allocations of assorted sizes in between move where the next arena could land.
            held.push(vec![0u8; 1 + 24 * k]);
            let m = HostModel::new(&bytes).unwrap();
            assert_eq!(m.arena.as_ptr() as usize % 64, 0, "arena {k} is not 64-byte aligned");
            assert!(m.arena.len() * 64 >= m.model.arena_len());
            held.push(vec![0u8; 40 * k]);
        }
    }
}
