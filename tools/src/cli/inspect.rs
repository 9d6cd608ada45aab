use crate::host::HostModel;
use crate::stats::model_stats;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .sprig model.
    model: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let bytes = crate::host::map_file(&a.model)?;
    let m = HostModel::new(&bytes).with_context(|| format!("loading {}", a.model.display()))?;
    let s = model_stats(&m.model, bytes.len() as u64);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("{}  ({})", a.model.display(), s.producer);
    println!(
        "{:<32} {:<18} {:<12} {:<26} {:>18} {:>10} {:>12} {:>12}",
        "layer", "op", "kernel", "enc", "output", "params", "MACs", "weight B"
    );
    for (i, l) in s.layers.iter().enumerate() {
        let shape = format!("{:?}", l.output_shape);
        // Stripped names show the operator index.
        let name = if l.name.is_empty() { format!("#{i}") } else { super::short(&l.name, 32) };
        // Block-sparse weights show the fraction of the matrix stored; codebook weights their
        // index bits, codebooks and payload bits per weight.
        let enc = match l.codebook {
            Some((bits, groups, bpw)) => format!("codebook {bits}b x{groups} {bpw:.2}bpw"),
            None if l.weight_density < 1.0 => format!("{} {:.2}", l.encoding, l.weight_density),
            None => l.encoding.clone(),
        };
        println!(
            "{:<32} {:<18} {:<12} {:<26} {:>18} {:>10} {:>12} {:>12}",
            name, l.op, l.kernel, enc, shape, l.params, l.macs, l.weight_bytes
        );
    }
    println!();
    println!("inputs:  {:?}", s.inputs);
    println!("outputs: {:?}", s.outputs);
    println!("operators: {}   params: {}   MACs: {}", s.layers.len(), s.params, s.macs);
    println!("file: {} B   weights: {} B", s.file_bytes, s.weight_bytes);
    println!(
        "arena: {} B   lower bound: {} B   ({:.3} x)",
        s.arena_bytes,
        s.arena_lower_bound_bytes,
        s.arena_bytes as f64 / s.arena_lower_bound_bytes.max(1) as f64
    );
    let t = crate::size::table()?;
    if let Some(ts) = t.targets.first() {
        let e = crate::size::estimate(&m.model, bytes.len() as u64, ts)?;
        println!("device ({}): flash {} B, RAM {} B (arena + stack); `sprig size` for detail and other targets", e.target, e.flash, e.ram);
    }
    Ok(())
}
