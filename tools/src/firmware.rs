//! Building and running the Cortex-M firmware (`firmware/`) for a model, and reading what it
//! reports: section sizes of the ELF and the defmt log (latency, peak stack, outputs).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The thumb targets the firmware builds for, with the cores they stand for.
pub const TARGETS: [(&str, &str); 3] = [
    ("thumbv7em-none-eabihf", "Cortex-M4F/M7"),
    ("thumbv8m.main-none-eabihf", "Cortex-M33/M55"),
    ("thumbv6m-none-eabi", "Cortex-M0/M0+, soft-float"),
];

/// The firmware folder: `$SPRIG_FIRMWARE_DIR`, else the repository's `firmware/`.
pub fn firmware_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("SPRIG_FIRMWARE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../firmware"),
    };
    if !dir.join("Cargo.toml").is_file() || !dir.join("boards").is_dir() {
        bail!("firmware sources not found at {} (set SPRIG_FIRMWARE_DIR to the repository's firmware/ folder)", dir.display());
    }
    Ok(dir)
}

/// One firmware build (and optionally run).
#[derive(Clone, Debug, Default)]
pub struct Build {
    /// `.sprig` model (`SPRIG_MODEL`); `None` = the built-in example.
    pub model: Option<PathBuf>,
    /// Input `.npy` files (`SPRIG_INPUT`); empty = built-in or synthetic.
    pub inputs: Vec<PathBuf>,
    /// Target triple (default thumbv7em-none-eabihf).
    pub target: String,
    /// Board file name (`SPRIG_BOARD`); `None` = the target's QEMU board.
    pub board: Option<String>,
    /// Timed inferences (`SPRIG_RUNS`).
    pub runs: u32,
    /// Kernel set override (`SPRIG_OPS`).
    pub ops: Option<u128>,
    /// Cargo features (`profile`, `bare`).
    pub features: Vec<String>,
    /// Extra environment (`SPRIG_RAM`, `SPRIG_INSNCOUNT`, …).
    pub env: Vec<(String, String)>,
}

/// What a build or run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Whether cargo (and the firmware, when run) succeeded.
    pub ok: bool,
    /// Standard output: the decoded defmt log when run.
    pub stdout: String,
    /// Standard error: cargo's messages, the build script's refusal, the runner's status.
    pub stderr: String,
    /// The ELF cargo built.
    pub elf: PathBuf,
}

impl Build {
    /// A build of `model` for `target` with `runs` timed inferences.
    pub fn new(model: Option<&Path>, target: &str) -> Build {
        Build { model: model.map(Path::to_path_buf), target: target.to_string(), runs: 1, ..Build::default() }
    }

    /// `cargo build --release` (or `cargo run --release` when `run`) inside `firmware/`.
    pub fn exec(&self, run: bool) -> Result<Outcome> {
        let dir = firmware_dir()?;
        let target = if self.target.is_empty() { "thumbv7em-none-eabihf" } else { &self.target };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&dir).args([if run { "run" } else { "build" }, "--release", "--target", target]);
        if !self.features.is_empty() {
            cmd.args(["--features", &self.features.join(",")]);
        }
        // Flags meant for a host build must not reach the firmware: they replace its linker args.
        for k in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR"] {
            cmd.env_remove(k);
        }
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        match &self.model {
            Some(m) => cmd.env("SPRIG_MODEL", abs(m)),
            None => cmd.env_remove("SPRIG_MODEL"),
        };
        let inputs: Vec<String> = self.inputs.iter().map(|p| abs(p).display().to_string()).collect();
        cmd.env("SPRIG_INPUT", inputs.join(","));
        match &self.board {
            Some(b) => cmd.env("SPRIG_BOARD", b),
            None => cmd.env_remove("SPRIG_BOARD"),
        };
        cmd.env("SPRIG_RUNS", self.runs.max(1).to_string());
        match self.ops {
            Some(m) => cmd.env("SPRIG_OPS", format!("{m:#x}")),
            None => cmd.env_remove("SPRIG_OPS"),
        };
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().with_context(|| format!("running cargo in {}", dir.display()))?;
        Ok(Outcome {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elf: dir.join("target").join(target).join("release/sprig-firmware"),
        })
    }
}

/// Exact instructions per inference under QEMU, from the TCG instruction-count plugin
/// (`../shared/tools/qemu-insncount.c`, built as `plugin`): the difference between a run with
/// three inferences and one with one, halved, so start-up and reporting cancel out.
pub fn exact_instructions(build: &Build, plugin: &Path) -> Result<u64> {
    let dir = tempfile::tempdir()?;
    let mut total = [0u64; 2];
    for (slot, runs) in [(0, 1u32), (1, 3)] {
        let out_file = dir.path().join(format!("insns{runs}.txt"));
        let mut b = build.clone();
        b.runs = runs;
        b.env.push(("SPRIG_INSNCOUNT".into(), std::path::absolute(plugin)?.display().to_string()));
        b.env.push(("SPRIG_INSNCOUNT_OUT".into(), out_file.display().to_string()));
        let out = b.exec(true)?;
        if !out.ok {
            bail!("firmware run with the instruction-count plugin failed:\n{}\n{}", out.stdout, out.stderr);
        }
        let text = std::fs::read_to_string(&out_file).with_context(|| format!("the plugin wrote no {}", out_file.display()))?;
        total[slot] = number_after(&text, "insns_total").context("no insns_total line in the plugin's output")?;
    }
    if total[1] <= total[0] {
        bail!("instruction counts do not grow with the number of inferences ({} then {})", total[0], total[1]);
    }
    Ok((total[1] - total[0]) / 2)
}

/// Sizes of the loadable sections of a firmware ELF, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Sections {
    /// `.vector_table`.
    pub vector_table: u64,
    /// `.text`: code.
    pub text: u64,
    /// `.rodata`: constants, the embedded model and input.
    pub rodata: u64,
    /// `.data`: initialised statics (in flash and RAM).
    pub data: u64,
    /// `.bss` + `.uninit`: zeroed statics, the arena.
    pub bss: u64,
}

impl Sections {
    /// Bytes programmed into flash.
    pub fn flash(&self) -> u64 {
        self.vector_table + self.text + self.rodata + self.data
    }

    /// Bytes of RAM taken by statics (the stack comes on top).
    pub fn ram_static(&self) -> u64 {
        self.data + self.bss
    }
}

/// Reads the section sizes of `elf`.
pub fn sections(elf: &Path) -> Result<Sections> {
    use object::{Object, ObjectSection};
    let bytes = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
    let file = object::File::parse(&*bytes).with_context(|| format!("{} is not an ELF file", elf.display()))?;
    let mut s = Sections::default();
    for sec in file.sections() {
        let size = sec.size();
        match sec.name().unwrap_or("") {
            ".vector_table" => s.vector_table += size,
            ".text" => s.text += size,
            ".rodata" => s.rodata += size,
            ".data" => s.data += size,
            ".bss" | ".uninit" => s.bss += size,
            _ => {}
        }
    }
    if s.text == 0 {
        bail!("{} has no .text section (was it linked with link.x?)", elf.display());
    }
    Ok(s)
}

/// One operator's line of a `profile` build's log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OpLine {
    /// Operator index.
    pub index: usize,
    /// Operator name (`Conv`, `Add`, …).
    pub name: String,
    /// Kind code.
    pub kind: u16,
    /// Cycles (DWT) or SysTick ticks per inference.
    pub time: u64,
    /// Peak stack while it ran, bytes.
    pub stack: u64,
}

/// What the firmware reported.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// The board named in the firmware's first line.
    pub board: Option<String>,
    /// Every output value, in output order.
    pub output: Vec<f32>,
    /// Minimum DWT cycles per inference (real cores).
    pub cycles: Option<u64>,
    /// Minimum SysTick ticks per inference (cores without a counting DWT, e.g. under QEMU).
    pub ticks: Option<u64>,
    /// Instructions per inference implied by the ticks under QEMU `-icount shift=0`.
    pub qemu_instructions: Option<u64>,
    /// Peak stack, bytes.
    pub stack: Option<u64>,
    /// Per-operator lines (`profile` builds).
    pub ops: Vec<OpLine>,
}

fn number_after(s: &str, key: &str) -> Option<u64> {
    let rest = s.split_once(key)?.1.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Parses the firmware's decoded defmt log.
pub fn parse_log(log: &str) -> Result<Report> {
    let mut r = Report::default();
    let mut have_output = false;
    for line in log.lines() {
        if line.starts_with("sprig firmware") && r.board.is_none() {
            r.board = line.split_once("board ").and_then(|(_, b)| b.split(',').next()).map(str::to_string);
        }
        if let Some((_, list)) = line.split_once("output [") {
            let list = list.rsplit_once(']').map(|(l, _)| l).context("unterminated output list")?;
            r.output = list
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| v.parse::<f32>().with_context(|| format!("output value {v:?}")))
                .collect::<Result<_>>()?;
            have_output = true;
        } else if line.contains("latency:") {
            if line.contains("cycles per inference") {
                r.cycles = number_after(line, "min");
            } else {
                r.ticks = number_after(line, "min");
                r.qemu_instructions = number_after(line, "that is about");
            }
        } else if line.contains("stack: peak") {
            r.stack = number_after(line, "stack: peak");
        } else if let Some(rest) = line.split_once("op ").map(|(_, r)| r).filter(|_| line.contains("per inference, peak stack")) {
            let index = number_after(rest, "").context("op line index")? as usize;
            let name = rest.split_whitespace().nth(1).unwrap_or("").to_string();
            r.ops.push(OpLine {
                index,
                name,
                kind: number_after(rest, "(kind").context("op line kind")? as u16,
                time: number_after(rest, "):").context("op line time")?,
                stack: number_after(rest, "peak stack").context("op line stack")?,
            });
        }
    }
    if !have_output {
        bail!("the firmware log has no `output [..]` line");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_firmware_log() {
        let log = "sprig firmware: board mps2-an386, model m.sprig (4656 B, 8 ops), arena 6144 B\n\
latency: 2 runs, SysTick ticks per inference: min 24817, mean 24817, max 24818 (no counting DWT CYCCNT); under QEMU -icount shift=0 that is about 992680 instructions\n\
stack: peak 5820 B\n\
op 0 Conv (kind 1): 1962 SysTick ticks per inference, peak stack 5820 B\n\
op 7 Softmax (kind 6): 67 SysTick ticks per inference, peak stack 5748 B\n\
output [1.2539761e-8, 0.0000011555762, -3.5, 7]\n";
        let r = parse_log(log).unwrap();
        assert_eq!(r.output, vec![1.2539761e-8, 0.0000011555762, -3.5, 7.0]);
        assert_eq!((r.ticks, r.qemu_instructions, r.stack, r.cycles), (Some(24817), Some(992680), Some(5820), None));
        assert_eq!(r.board.as_deref(), Some("mps2-an386"));
        assert_eq!(r.ops.len(), 2);
        assert_eq!(r.ops[1], OpLine { index: 7, name: "Softmax".into(), kind: 6, time: 67, stack: 5748 });
        let dwt = parse_log("latency: 10 runs, cycles per inference: min 1234, mean 1300, max 1400 (DWT CYCCNT)\noutput []").unwrap();
        assert_eq!((dwt.cycles, dwt.output.len()), (Some(1234), 0));
        assert!(parse_log("stack: peak 3 B\n").is_err());
        assert!(parse_log("output [1.0, x]\n").is_err());
    }
}
