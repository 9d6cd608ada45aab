use crate::compile::{convert_file, write_atomic, ConvertOptions};
use crate::import::ImportOptions;
use crate::writer::WeightFormat;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source ONNX model.
    onnx: PathBuf,
    /// Output .sprig file.
    #[arg(short, long)]
    output: PathBuf,
    /// Weight storage: f32 (exact) or f16 (half the bytes).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    weights: String,
    /// Drop operator and internal tensor names (smaller file; graph inputs and outputs keep
    /// theirs, and reports name operators by index).
    #[arg(long)]
    strip_names: bool,
    /// Write fixed-size tensor and operator tables and 16-byte aligned sections (format 1.5, or
    /// 1.7 / 1.8 where u8-affine constants / QuantizeDequantize need it) for runtimes older than
    /// 1.9; the file is larger (64 bytes per tensor, 128 per operator).
    #[arg(long)]
    fixed_tables: bool,
    /// Static shape for an input with symbolic dimensions: NAME=D0,D1,... (repeatable).
    #[arg(long = "input-shape")]
    input_shape: Vec<String>,
}

pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let opts = ConvertOptions {
        import: ImportOptions { input_shapes: super::parse_input_shapes(&a.input_shape)? },
        weights: if a.weights == "f16" { WeightFormat::F16 } else { WeightFormat::F32 },
        strip_names: a.strip_names,
    };
    let mut c = convert_file(&a.onnx, &opts)?;
    if a.fixed_tables {
        c.bytes = crate::writer::unpack_tables(&c.bytes).map_err(|e| anyhow::anyhow!("internal error: {e}"))?;
    }
    write_atomic(&a.output, &c.bytes)?;
    let onnx_bytes = std::fs::metadata(&a.onnx).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} -> {}: {} operators, {} bytes (ONNX {} bytes), arena {} bytes (lower bound {}), {:.2} s",
        a.onnx.display(),
        a.output.display(),
        c.graph.nodes.len(),
        c.bytes.len(),
        onnx_bytes,
        c.plan.arena_len,
        c.plan.lower_bound,
        t0.elapsed().as_secs_f64()
    );
    let (ins, outs) = crate::import::integer_io(&std::fs::read(&a.onnx).unwrap_or_default());
    if !ins.is_empty() {
        println!(
            "note: integer input {}: the .sprig input is f32 holding the integer values (pass them quantized, e.g. an int8 .npy, not the float data)",
            ins.join(", ")
        );
    }
    if !outs.is_empty() {
        println!("note: integer output {}: the .sprig output is f32 holding the integer values", outs.join(", "));
    }
    Ok(())
}
