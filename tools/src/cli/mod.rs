//! The `sprig` command line: argument definitions and one module per subcommand.

mod analyze;
mod bench;
mod compress;
mod convert;
mod fit;
mod inspect;
mod run;
mod size;
mod validate;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::path::PathBuf;

/// sprig: make neural networks small and fast enough for microcontrollers.
#[derive(Parser, Debug)]
#[command(name = "sprig", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Convert an ONNX model into a .sprig file.
    Convert(convert::Args),
    /// Measure ReLU activation sparsity of an ONNX model on real data, per layer and channel.
    Analyze(analyze::Args),
    /// Compress an ONNX model with unlabeled calibration data (pruning, codebooks, activation sparsity) into a .sprig file.
    Compress(compress::Args),
    /// Run a .sprig model on the samples of one or more .npy files.
    Run(run::Args),
    /// Compare a .sprig model with the source ONNX model (run by tract) on real data.
    Validate(validate::Args),
    /// Show per-layer and total sizes, MACs, encodings and the memory plan.
    Inspect(inspect::Args),
    /// Measure latency of sprig (and tract on the same model) per inference.
    Bench(bench::Args),
    /// Flash and RAM the model needs on a Cortex-M device (estimated, or --measure'd on QEMU).
    Size(size::Args),
    /// List the ONNX operators the importer supports.
    Ops,
}

/// Parses the arguments and runs the chosen subcommand.
pub fn main_with(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Convert(a) => convert::run(a),
        Command::Compress(a) => compress::run(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Run(a) => run::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Size(a) => size::run(a),
        Command::Ops => {
            for op in crate::import::SUPPORTED_OPS {
                println!("{op}");
            }
            Ok(())
        }
    }
}

/// Parses `name=1,3,96,96` shape overrides.
pub(crate) fn parse_input_shapes(specs: &[String]) -> Result<HashMap<String, Vec<usize>>> {
    let mut m = HashMap::new();
    for s in specs {
        let (name, dims) = s.rsplit_once('=').with_context(|| format!("--input-shape `{s}`: expected NAME=D0,D1,..."))?;
        let dims: Vec<usize> = dims
            .split(',')
            .map(|d| d.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("--input-shape `{s}`: dimensions must be positive integers"))?;
        if dims.contains(&0) {
            bail!("--input-shape `{s}`: dimensions must be positive");
        }
        m.insert(name.to_string(), dims);
    }
    Ok(m)
}

/// Loads the `--input` arrays for a model's inputs: either one plain path (single-input
/// models) or `name=path` per input. Returns one array per model input, in order.
pub(crate) fn load_inputs(specs: &[String], inputs: &[(String, Vec<usize>)]) -> Result<Vec<crate::npy::Array>> {
    let mut by_name: HashMap<String, PathBuf> = HashMap::new();
    let mut plain: Vec<PathBuf> = Vec::new();
    for s in specs {
        match s.split_once('=') {
            Some((n, p)) if inputs.iter().any(|(name, _)| name == n) => {
                by_name.insert(n.to_string(), PathBuf::from(p));
            }
            _ => plain.push(PathBuf::from(s)),
        }
    }
    let mut out = Vec::new();
    for (i, (name, shape)) in inputs.iter().enumerate() {
        let path = match by_name.remove(name) {
            Some(p) => p,
            None if inputs.len() == 1 && plain.len() == 1 => plain[0].clone(),
            None if plain.len() == inputs.len() => plain[i].clone(),
            None => bail!("no --input given for model input `{name}` (use --input {name}=FILE.npy)"),
        };
        let a = crate::npy::read_f32(&path)?;
        crate::npy::check_samples(&a, shape, &format!("{} (input `{name}`)", path.display()))?;
        out.push(a);
    }
    if let Some(n) = out.first().map(|a| a.samples()) {
        if out.iter().any(|a| a.samples() != n) {
            bail!("the --input arrays hold different numbers of samples");
        }
    }
    Ok(out)
}

pub(crate) use crate::validate::argmax;

/// `name` cut to `width` characters, keeping its end (the distinctive part of long
/// framework-generated names) behind an ellipsis.
pub(crate) fn short(name: &str, width: usize) -> String {
    let n = name.chars().count();
    if n <= width {
        name.to_string()
    } else {
        let tail: String = name.chars().skip(n - (width - 1)).collect();
        format!("…{tail}")
    }
}
