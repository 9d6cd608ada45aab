//! Embeds the model and input named at build time, sizes the arena, picks the board's memory map
//! and log transport, and refuses (with the bytes needed and available) a model that cannot fit.
//!
//! Environment (all optional):
//! - `SPRIG_MODEL`: the `.sprig` file (default: the repository's digits CNN example).
//! - `SPRIG_INPUT`: `.npy` file(s), comma-separated, one per model input; the first sample of each
//!   is embedded (default with the example model: `models/digits_eval.npy`; with another model, a
//!   deterministic synthetic input and a warning).
//! - `SPRIG_BOARD`: a file in `boards/` without `.x` (default: the target's QEMU board).
//! - `SPRIG_RUNS`: timed inferences (default 10).
//! - `SPRIG_FLASH`, `SPRIG_RAM`: override the board's lengths (`256K`, `1M`, bytes) to model a
//!   smaller part.
//! - `SPRIG_OPS`: the kernel set to link instead of the model's own (a `u128` in hex, `0x…`; see
//!   `sprig_runtime::kernels::execute_in`). For measuring code size per kernel (`sprig size`'s
//!   table); a model needing a kernel outside the set stops with an error when run.
//!
//! Relative paths are relative to `firmware/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Flash the firmware needs besides the model and input: runtime kernels, startup, defmt, by
/// target. Measured from release builds with every kernel linked (`firmware/README.md`, "Sizes"),
/// rounded up; a model using fewer kernels needs less.
fn code_reserve(target: &str) -> u64 {
    if target.starts_with("thumbv6m") {
        64 * 1024
    } else {
        48 * 1024
    }
}

/// RAM the firmware needs besides the arena: the measured peak stack of the real models plus
/// margin, and the statics (defmt buffers, timer state). Models with codebook weights decode
/// into larger stack buffers (pair tables, decoded chunks: peaks up to 10.1 KiB measured,
/// `tools/data/size_table.json`), so they reserve [`CODEBOOK_STACK_RESERVE`].
const STACK_RESERVE: u64 = 8 * 1024;
const CODEBOOK_STACK_RESERVE: u64 = 12 * 1024;
const STATICS_RESERVE: u64 = 1024;

const DEFAULT_MODEL: &str = "digits_cnn.sprig";
const DEFAULT_INPUT: &str = "../models/digits_eval.npy";

fn main() {
    if let Err(msg) = run() {
        eprintln!("\nsprig-firmware: {msg}\n");
        std::process::exit(1);
    }
}

struct Board {
    name: String,
    file: PathBuf,
    target: String,
    log: String,
    sysclk: u64,
    flash: (u64, u64),
    ram: (u64, u64),
}

fn env(name: &str) -> Option<String> {
    println!("cargo::rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|s| !s.trim().is_empty())
}

fn run() -> Result<(), String> {
    let target = std::env::var("TARGET").unwrap_or_default();
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    println!("cargo::rustc-check-cfg=cfg(sprig_log_rtt)");
    println!("cargo::rustc-check-cfg=cfg(sprig_dwt)");
    println!("cargo::rerun-if-changed=boards");

    let board = load_board(&target)?;
    if board.target != target {
        return Err(format!("board `{}` is a {} board, but this build targets {target}", board.name, board.target));
    }
    if board.log == "rtt" {
        println!("cargo::rustc-cfg=sprig_log_rtt");
    }
    if !target.starts_with("thumbv6m") {
        println!("cargo::rustc-cfg=sprig_dwt");
    }

    let model_env = env("SPRIG_MODEL");
    let model_path = PathBuf::from(model_env.clone().unwrap_or_else(|| DEFAULT_MODEL.into()));
    println!("cargo::rerun-if-changed={}", model_path.display());
    let bytes = std::fs::read(&model_path).map_err(|e| format!("cannot read SPRIG_MODEL {}: {e}", model_path.display()))?;
    let model = sprig_runtime::Model::parse(&bytes).map_err(|e| format!("{} is not a valid .sprig file: {e}", model_path.display()))?;
    // The firmware's runtime reads the tables of format 1.9 and later only, unless built with
    // `legacy-tables` (either section table form).
    let minor = model.minor_version();
    if minor < sprig_runtime::format::COMPACT_MINOR && env("CARGO_FEATURE_LEGACY_TABLES").is_none() {
        return Err(format!(
            "{} is format 1.{minor}; this firmware reads format 1.9 and later (about 1.3 KB less runtime code): convert the model again with sprig, or build with --features legacy-tables",
            model_path.display()
        ));
    }

    // Inputs: the first sample of each .npy, or a synthetic one.
    let input_env = env("SPRIG_INPUT").or_else(|| model_env.is_none().then(|| DEFAULT_INPUT.into()));
    let files: Vec<PathBuf> = input_env.iter().flat_map(|s| s.split(',')).map(|s| PathBuf::from(s.trim())).collect();
    if !files.is_empty() && files.len() != model.num_inputs() {
        return Err(format!("the model has {} input(s) but SPRIG_INPUT names {} file(s)", model.num_inputs(), files.len()));
    }
    let mut inputs = Vec::new();
    for i in 0..model.num_inputs() {
        let io = model.input(i).ok_or("model input table is inconsistent")?;
        let n = io.shape.numel().ok_or("model input has an unknown element count")?;
        let data = match files.get(i) {
            Some(f) => first_sample(f, n, io.name)?,
            None => {
                println!("cargo::warning=SPRIG_INPUT not set: input `{}` is a synthetic ramp, not real data", io.name);
                (0..n).map(|k| ((k * 37 % 101) as f32) / 101.0).collect()
            }
        };
        inputs.push(data);
    }

    let arena = (model.arena_len() as u64).div_ceil(16) * 16;
    let input_bytes: u64 = inputs.iter().map(|v| 4 * v.len() as u64).sum();
    let output_len: usize = model.outputs().map(|o| o.shape.numel().unwrap_or(0)).sum();
    let flash_need = bytes.len() as u64 + input_bytes + code_reserve(&target);
    let codebook = model.ops_mask() & (1u128 << sprig_runtime::kernels::CODEBOOK_BIT) != 0;
    let stack_reserve = if codebook { CODEBOOK_STACK_RESERVE } else { STACK_RESERVE };
    let ram_need = arena + stack_reserve + STATICS_RESERVE + 4 * output_len as u64;
    let mut problems = Vec::new();
    if flash_need > board.flash.1 {
        problems.push(format!(
            "FLASH: needs {} B ({} KiB) = model {} B + input {} B + firmware code reserve {} B, but board `{}` has {} B ({} KiB)",
            flash_need,
            flash_need.div_ceil(1024),
            bytes.len(),
            input_bytes,
            code_reserve(&target),
            board.name,
            board.flash.1,
            board.flash.1 / 1024
        ));
    }
    if ram_need > board.ram.1 {
        problems.push(format!(
            "RAM: needs {} B ({} KiB) = arena {} B + stack reserve {} B + statics {} B + output copy {} B, but board `{}` has {} B ({} KiB)",
            ram_need,
            ram_need.div_ceil(1024),
            arena,
            stack_reserve,
            STATICS_RESERVE,
            4 * output_len,
            board.name,
            board.ram.1,
            board.ram.1 / 1024
        ));
    }
    if !problems.is_empty() {
        return Err(format!(
            "model {} does not fit board `{}`:\n  {}\n(lengths from {}{}; compress the model or pick a larger board)",
            model_path.display(),
            board.name,
            problems.join("\n  "),
            board.file.display(),
            if env("SPRIG_FLASH").is_some() || env("SPRIG_RAM").is_some() { " with SPRIG_FLASH/SPRIG_RAM overrides" } else { "" }
        ));
    }

    // memory.x with the (possibly overridden) lengths, found by cortex-m-rt's link.x.
    let memory = format!(
        "/* Generated by build.rs from {} */\nMEMORY\n{{\n  FLASH : ORIGIN = {:#010x}, LENGTH = {}\n  RAM   : ORIGIN = {:#010x}, LENGTH = {}\n}}\n",
        board.file.display(),
        board.flash.0,
        board.flash.1,
        board.ram.0,
        board.ram.1
    ) + &format!(
        "/* Backstop for the estimate above: the stack must keep its reserve after layout. */\nASSERT(_stack_start - _stack_end >= {stack_reserve}, \"sprig-firmware: RAM left for the stack after the arena and statics is below {stack_reserve} B: model {} does not fit board {}\");\n",
        file_name(&model_path),
        board.name
    );
    write(&out.join("memory.x"), memory.as_bytes())?;
    println!("cargo::rustc-link-search={}", out.display());

    write(&out.join("model.sprig"), &bytes)?;
    let ops = match env("SPRIG_OPS") {
        Some(v) => u128::from_str_radix(v.trim().trim_start_matches("0x"), 16).map_err(|_| format!("SPRIG_OPS={v} is not a hex u128"))?,
        None => model.ops_mask(),
    };
    let mut src = String::new();
    let runs: u32 = match env("SPRIG_RUNS") {
        Some(s) => s.trim().parse().ok().filter(|&r| r > 0).ok_or_else(|| format!("SPRIG_RUNS={s} is not a positive integer"))?,
        None => 10,
    };
    let _ = writeln!(src, "/// Board this firmware was built for.\npub const BOARD: &str = {:?};", board.name);
    let _ = writeln!(src, "/// The embedded model's file name.\npub const MODEL_NAME: &str = {:?};", file_name(&model_path));
    let _ = writeln!(src, "/// Arena bytes (the model's plan, rounded up to 16).\npub const ARENA_LEN: usize = {arena};");
    let _ = writeln!(
        src,
        "/// Kernels the model uses (kinds and element-wise functions): only these are linked.\npub const OPS: u128 = {:#x};",
        ops
    );
    let _ = writeln!(src, "/// Number of operators.\npub const NUM_OPS: usize = {};", model.num_ops());
    let _ = writeln!(src, "/// Elements over all outputs.\npub const OUTPUT_LEN: usize = {output_len};");
    let _ = writeln!(src, "/// Timed inferences.\npub const RUNS: u32 = {runs};");
    let _ = writeln!(
        src,
        "/// Core clock of the emulated board (0: unknown), for QEMU instruction estimates.\npub const SYSCLK_HZ: u32 = {};",
        board.sysclk
    );
    let _ = writeln!(
        src,
        "/// Flash and RAM lengths of the board.\npub const FLASH_LEN: u32 = {};\npub const RAM_LEN: u32 = {};",
        board.flash.1, board.ram.1
    );
    let _ = writeln!(
        src,
        "/// The model file.\npub static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!(\"OUT_DIR\"), \"/model.sprig\")));"
    );
    let _ =
        writeln!(src, "/// The first sample of each input, little-endian f32.\npub static INPUTS: [&Aligned<[u8]>; {}] = [", inputs.len());
    for (i, data) in inputs.iter().enumerate() {
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        write(&out.join(format!("input{i}.bin")), &raw)?;
        let _ = writeln!(src, "    &Aligned(*include_bytes!(concat!(env!(\"OUT_DIR\"), \"/input{i}.bin\"))),");
    }
    src.push_str("];\n");
    write(&out.join("model.rs"), src.as_bytes())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    // Leave the file untouched when unchanged, so cargo does not relink needlessly.
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The first sample of `path`: its first `n` elements when the array holds a whole number of
/// `n`-element samples (`[N, ...]` with one sample the model input's size).
fn first_sample(path: &Path, n: usize, name: &str) -> Result<Vec<f32>, String> {
    println!("cargo::rerun-if-changed={}", path.display());
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read SPRIG_INPUT {}: {e}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| format!("{} is not an .npy file: {e}", path.display()))?;
    let shape: Vec<u64> = npy.shape().to_vec();
    let total: u64 = shape.iter().product();
    let dtype = npy.dtype().descr().trim_matches(|c| c == '\'').to_string();
    let data: Vec<f32> = match dtype.as_str() {
        "<f4" => npy.into_vec::<f32>().map_err(|e| format!("{}: {e}", path.display()))?,
        "<f8" => npy.into_vec::<f64>().map_err(|e| format!("{}: {e}", path.display()))?.into_iter().map(|v| v as f32).collect(),
        other => return Err(format!("{}: dtype {other} is not supported (f32 or f64)", path.display())),
    };
    if n == 0 || total == 0 || !total.is_multiple_of(n as u64) {
        return Err(format!(
            "{} has shape {shape:?} ({total} elements), which is not a whole number of samples of model input `{name}` ({n} elements)",
            path.display()
        ));
    }
    if let Some(k) = data[..n].iter().position(|v| !v.is_finite()) {
        return Err(format!("{}: element {k} of the first sample is {}", path.display(), data[k]));
    }
    Ok(data[..n].to_vec())
}

fn load_board(target: &str) -> Result<Board, String> {
    let name = env("SPRIG_BOARD").unwrap_or_else(|| {
        match target {
            t if t.starts_with("thumbv6m") => "mps2-an385",
            t if t.starts_with("thumbv8m.main") => "mps2-an505",
            _ => "mps2-an386",
        }
        .into()
    });
    let file = PathBuf::from("boards").join(format!("{name}.x"));
    let text = std::fs::read_to_string(&file).map_err(|_| {
        let known: Vec<String> = std::fs::read_dir("boards")
            .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned())).collect())
            .unwrap_or_default();
        format!("unknown SPRIG_BOARD `{name}` (no {}); boards: {}", file.display(), known.join(", "))
    })?;
    let key =
        |k: &str| text.lines().find_map(|l| l.trim_start_matches([' ', '*', '/']).trim().strip_prefix(k).map(|v| v.trim().to_string()));
    let region = |r: &str| -> Result<(u64, u64), String> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(r) && l.contains("ORIGIN"))
            .ok_or(format!("{}: no {r} region", file.display()))?;
        let field = |f: &str| {
            line.split(',').find_map(|p| p.split_once('=').filter(|(k, _)| k.trim().ends_with(f)).map(|(_, v)| v.trim().to_string()))
        };
        let origin = field("ORIGIN").and_then(|v| parse_size(&v)).ok_or(format!("{}: bad {r} ORIGIN", file.display()))?;
        let len = field("LENGTH").and_then(|v| parse_size(&v)).ok_or(format!("{}: bad {r} LENGTH", file.display()))?;
        Ok((origin, len))
    };
    let mut flash = region("FLASH")?;
    let mut ram = region("RAM")?;
    if let Some(s) = env("SPRIG_FLASH") {
        flash.1 = parse_size(&s).ok_or(format!("SPRIG_FLASH={s} is not a size (e.g. 256K, 1M, 65536)"))?;
    }
    if let Some(s) = env("SPRIG_RAM") {
        ram.1 = parse_size(&s).ok_or(format!("SPRIG_RAM={s} is not a size (e.g. 64K, 1M, 65536)"))?;
    }
    Ok(Board {
        target: key("sprig-target:").ok_or(format!("{}: no `sprig-target:` line", file.display()))?,
        log: key("sprig-log:").unwrap_or_else(|| "semihosting".into()),
        sysclk: key("sprig-sysclk:").and_then(|v| v.parse().ok()).unwrap_or(0),
        name,
        file,
        flash,
        ram,
    })
}

/// `4M`, `256K`, `0x20000000`, `65536`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok();
    }
    let (num, mul) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1024),
        b'M' | b'm' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok().map(|v| v * mul)
}
