//! Reference execution of the source ONNX model with tract (same inputs, same shapes).

use anyhow::{anyhow, Context, Result};
use std::path::Path;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// A tract-optimised, runnable ONNX model.
pub struct TractModel {
    plan: std::sync::Arc<TypedRunnableModel>,
    /// Element type of each input: f32, or the integer type a quantized model declares (the f32
    /// data, integers as sprig carries them, is cast to it).
    input_types: Vec<DatumType>,
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
        type Built = (std::sync::Arc<TypedRunnableModel>, Vec<DatumType>);
        let built = std::panic::catch_unwind(move || -> TractResult<Built> {
            let mut m = tract_onnx::onnx().model_for_path(&p)?;
            let mut types = Vec::with_capacity(shapes.len());
            for (i, s) in shapes.iter().enumerate() {
                let declared = m.input_fact(i)?.datum_type.concretize();
                let dt = match declared {
                    Some(dt @ (DatumType::I8 | DatumType::U8 | DatumType::I16 | DatumType::U16)) => dt,
                    _ => DatumType::F32,
                };
                m = m.with_input_fact(i, InferenceFact::dt_shape(dt, s.iter().copied().collect::<TVec<usize>>()))?;
                types.push(dt);
            }
            if !outputs.is_empty() {
                m.select_outputs_by_name(&outputs)?;
            }
            Ok((m.into_optimized()?.into_runnable()?, types))
        })
        .map_err(|_| anyhow!("tract panicked while loading {}", path.display()))?
        .with_context(|| format!("tract could not load {}", path.display()))?;
        Ok(TractModel { plan: built.0, input_types: built.1 })
    }

    /// Runs one inference; returns every output as f32.
    pub fn run(&self, inputs: &[(&[usize], &[f32])]) -> Result<Vec<Vec<f32>>> {
        let tensors: TVec<TValue> = inputs
            .iter()
            .enumerate()
            .map(|(i, (shape, data))| {
                let t = Tensor::from_shape(shape, data)?;
                match self.input_types.get(i) {
                    Some(&dt) if dt != DatumType::F32 => Ok(t.cast_to_dt(dt)?.into_owned().into()),
                    _ => Ok(t.into()),
                }
            })
            .collect::<Result<_>>()?;
        let out = self.plan.run(tensors).context("tract inference failed")?;
        out.iter()
            .map(|t| {
                let t = t.cast_to::<f32>()?;
                Ok(t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
            })
            .collect()
    }
}
