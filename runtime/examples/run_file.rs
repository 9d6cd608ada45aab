//! Runs a `.sprig` file a given number of times and prints its first output's sum and a hash
//! of its bits (equal outputs print equal hashes). The input is the raw little-endian f32 file
//! given (one sample: the first input's element count), else a fixed pattern. This is the
//! program `benches/scripts/aarch64_counts.py` counts instructions of under qemu-user: the
//! count of three runs minus that of one is two inferences.
//!
//!     cargo run --release -p sprig-runtime --example run_file -- MODEL.sprig [RUNS] [INPUT.f32]

use sprig_runtime::{Model, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: run_file MODEL.sprig [RUNS] [INPUT.f32]")?;
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(1);
    let input = args.next().map(std::fs::read).transpose()?;
    let bytes = std::fs::read(&path)?;
    let model = Model::parse(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let mut arena = vec![0u64; model.arena_len().div_ceil(8)];
    let mut session = Session::new(&model, bytemuck::cast_slice_mut(&mut arena)).map_err(|e| format!("{path}: {e}"))?;
    let x = session.input_mut(0).map_err(|e| e.to_string())?;
    match input {
        Some(raw) if raw.len() == 4 * x.len() => {
            for (v, b) in x.iter_mut().zip(raw.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Some(raw) => return Err(format!("input: {} bytes, the model's first input takes {} f32 values", raw.len(), x.len()).into()),
        None => {
            for (i, v) in x.iter_mut().enumerate() {
                *v = ((i * 37 % 101) as f32 - 50.0) / 50.0;
            }
        }
    }
    for _ in 0..runs {
        session.run().map_err(|e| format!("{path}: {e}"))?;
    }
    let out = session.output(0).map_err(|e| e.to_string())?;
    let hash = out
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    println!("{path}: {runs} runs, output sum {:e}, bits hash {hash:016x}", out.iter().sum::<f32>());
    Ok(())
}
