//! Reference execution of the source ONNX model with tract (same inputs, same shapes).

use anyhow::{anyhow, Context, Result};
use std::path::Path;
use tract_onnx::prelude::*;

/// A tract-optimised, runnable ONNX model.
pub struct TractModel {
    plan: std::sync::Arc<TypedRunnableModel>,
}

impl TractModel {
    /// Loads `path` with every input fixed to the given shapes (batch 1).
    pub fn load(path: &Path, input_shapes: &[Vec<usize>]) -> Result<Self> {
        Self::load_with_outputs(path, input_shapes, &[])
    }

    /// [`TractModel::load`] with the named ONNX tensors as the outputs instead of the model's
    /// own (none: the model's own), e.g. to observe intermediate activations.
    pub fn load_with_outputs(path: &Path, input_shapes: &[Vec<usize>], outputs: &[String]) -> Result<Self> {
        let p = path.to_path_buf();
        let shapes = input_shapes.to_vec();
        let outputs = outputs.to_vec();
        let built = std::panic::catch_unwind(move || -> TractResult<std::sync::Arc<TypedRunnableModel>> {
            let mut m = tract_onnx::onnx().model_for_path(&p)?;
            for (i, s) in shapes.iter().enumerate() {
                m = m.with_input_fact(i, f32::fact(s).into())?;
            }
            if !outputs.is_empty() {
                m.select_outputs_by_name(&outputs)?;
            }
            m.into_optimized()?.into_runnable()
        })
        .map_err(|_| anyhow!("tract panicked while loading {}", path.display()))?
        .with_context(|| format!("tract could not load {}", path.display()))?;
        Ok(TractModel { plan: built })
    }

    /// Runs one inference; returns every output as f32.
    pub fn run(&self, inputs: &[(&[usize], &[f32])]) -> Result<Vec<Vec<f32>>> {
        let tensors: TVec<TValue> =
            inputs.iter().map(|(shape, data)| Ok(Tensor::from_shape(shape, data)?.into())).collect::<Result<_>>()?;
        let out = self.plan.run(tensors).context("tract inference failed")?;
        out.iter()
            .map(|t| {
                let t = t.cast_to::<f32>()?;
                Ok(t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
            })
            .collect()
    }
}
