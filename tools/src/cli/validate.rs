use crate::host::HostModel;
use crate::validate::compare;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .sprig model.
    model: PathBuf,
    /// The source ONNX model (run by tract as the reference).
    #[arg(long)]
    onnx: PathBuf,
    /// Input samples: FILE.npy, or NAME=FILE.npy per input.
    #[arg(long, required = true)]
    input: Vec<String>,
    /// Integer class labels (N,), to report both accuracies.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Largest accepted max-abs error relative to max |reference output|. Both engines round in
    /// f32: on a deep stack of Dense layers (ad_autoencoder) tract itself is about 1e-4 of the
    /// output range from the exact result (sprig 1.1e-5), hence twice that by default.
    #[arg(long, default_value_t = 2e-4)]
    tolerance: f64,
    /// Validate at most this many samples.
    #[arg(long)]
    limit: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let bytes = crate::host::map_file(&a.model)?;
    let m = HostModel::new(&bytes).with_context(|| format!("loading {}", a.model.display()))?;
    let names: Vec<(String, Vec<usize>)> = m.model.inputs().map(|io| io.name.to_string()).zip(m.input_shapes()).collect();
    let xs = super::load_inputs(&a.input, &names)?;
    let labels = a.labels.as_ref().map(|p| crate::npy::read_f32(p)).transpose()?;
    let (rep, _) = compare(&bytes, &a.onnx, &xs, labels.as_ref().map(|l| l.data.as_slice()), a.limit, a.tolerance)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        println!("validated {} samples of {} against tract ({})", rep.samples, a.model.display(), a.onnx.display());
        println!(
            "  max abs error   {:.3e}  (relative to max |ref| {:.3e}: {:.3e}, tolerance {:.1e})",
            rep.max_abs_error, rep.max_abs_reference, rep.relative_max_error, a.tolerance
        );
        println!("  mean abs error  {:.3e}", rep.mean_abs_error);
        println!("  cosine          {:.8}  (worst sample {:.8})", rep.cosine_similarity, rep.min_sample_cosine);
        println!("  top-1 agreement {:.2} %", 100.0 * rep.top1_agreement);
        if let (Some(s), Some(r)) = (rep.sprig_accuracy, rep.reference_accuracy) {
            println!("  accuracy        sprig {:.2} %   tract {:.2} %", 100.0 * s, 100.0 * r);
        }
        println!("  {}", if rep.pass { "PASS" } else { "FAIL" });
    }
    if !rep.pass {
        bail!(
            "sprig output differs from the reference: relative max error {:.3e} > {:.1e}{}",
            rep.relative_max_error,
            a.tolerance,
            lossy_hint(&m.model)
        );
    }
    Ok(())
}

/// For a model whose constants are not all stored exactly (f16, codebook or u8-affine), a note
/// that the default tolerance is for exact storage; empty otherwise.
fn lossy_hint(m: &sprig_runtime::Model<'_>) -> String {
    use sprig_runtime::format::encoding;
    let mut counts = [("f16", 0usize, encoding::F16), ("codebook", 0, encoding::CODEBOOK), ("u8-affine", 0, encoding::U8_AFFINE)];
    for t in (0..m.num_tensors()).filter_map(|i| m.tensor(i)) {
        for (_, n, e) in counts.iter_mut() {
            *n += usize::from(t.encoding == *e);
        }
    }
    let held: Vec<String> = counts.iter().filter(|c| c.1 > 0).map(|(name, n, _)| format!("{n} {name}")).collect();
    if held.is_empty() {
        return String::new();
    }
    format!(
        " (the model stores constants lossily: {}; the default tolerance is for exact f32 storage, so judge it by \
         the top-1 agreement and accuracy above, or pass --tolerance)",
        held.join(", ")
    )
}
