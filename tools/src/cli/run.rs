use crate::host::HostModel;
use crate::npy::{write_f32, Array};
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .sprig model.
    model: PathBuf,
    /// Input samples: FILE.npy (N samples along the first axis), or NAME=FILE.npy per input.
    #[arg(long, required = true)]
    input: Vec<String>,
    /// Where to write the first output of every sample, shaped (N, ...).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let bytes = crate::host::map_file(&a.model)?;
    let mut m = HostModel::new(&bytes).with_context(|| format!("loading {}", a.model.display()))?;
    let names: Vec<(String, Vec<usize>)> = m.model.inputs().map(|io| io.name.to_string()).zip(m.input_shapes()).collect();
    let xs = super::load_inputs(&a.input, &names)?;
    let Some(n) = xs.first().map(|x| x.samples()) else {
        anyhow::bail!("{}: the model has no inputs", a.model.display());
    };
    let out_shape = m.output_shapes()[0].clone();
    let mut data = Vec::with_capacity(n * out_shape.iter().product::<usize>());
    for i in 0..n {
        let ins: Vec<&[f32]> = xs.iter().map(|x| x.sample(i)).collect();
        let outs = m.run(&ins).with_context(|| format!("sample {i}"))?;
        data.extend_from_slice(&outs[0]);
    }
    let mut shape = vec![n];
    shape.extend(out_shape.iter().skip(if out_shape.first() == Some(&1) { 1 } else { 0 }));
    let result = Array { shape, data };
    match &a.output {
        Some(p) => {
            write_f32(p, &result)?;
            println!("wrote {} ({} samples, shape {:?})", p.display(), n, result.shape);
        }
        None => {
            for i in 0..n.min(10) {
                let s = result.sample(i);
                println!("sample {i}: argmax {} {:?}", super::argmax(s), &s[..s.len().min(12)]);
            }
            if n > 10 {
                println!("... {} more samples (use --output to save all)", n - 10);
            }
        }
    }
    Ok(())
}
