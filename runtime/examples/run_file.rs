//! Runs a `.sprig` file a given number of times on a deterministic input and prints its first
//! output's sum and a hash of its bits: the program `sprig`'s aarch64 instruction counts run under qemu-user (the
//! count of `N + 10` runs minus that of `N` runs is ten inferences).
//!
//!     cargo run --release -p sprig-runtime --example run_file -- MODEL.sprig [RUNS]

use sprig_runtime::{Model, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: run_file MODEL.sprig [RUNS]")?;
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(1);
    let bytes = std::fs::read(&path)?;
    let model = Model::parse(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let mut arena = vec![0u64; model.arena_len().div_ceil(8)];
    let mut session = Session::new(&model, bytemuck::cast_slice_mut(&mut arena)).map_err(|e| format!("{path}: {e}"))?;
    for (i, v) in session.input_mut(0).map_err(|e| e.to_string())?.iter_mut().enumerate() {
        *v = ((i * 37 % 101) as f32 - 50.0) / 50.0;
    }
    for _ in 0..runs {
        session.run().map_err(|e| format!("{path}: {e}"))?;
    }
    let out = session.output(0).map_err(|e| e.to_string())?;
    // FNV-1a over the output's bits: equal outputs print equal hashes.
    let hash = out
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    println!("{path}: {runs} runs, output sum {:e}, bits hash {hash:016x}", out.iter().sum::<f32>());
    Ok(())
}
