use crate::firmware::{parse_log, sections, Build, TARGETS};
use crate::host::HostModel;
use crate::size::{estimate, table, Estimate};
use crate::stats::model_stats;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .sprig model.
    model: PathBuf,
    /// Target triple (thumbv7em-none-eabihf, thumbv8m.main-none-eabihf, thumbv6m-none-eabi) or `all`.
    #[arg(long, default_value = "thumbv7em-none-eabihf")]
    target: String,
    /// Also build the firmware for this model and run it under QEMU: measured flash, RAM, peak
    /// stack and instructions per inference (needs the thumb target, qemu-system-arm, defmt-print).
    #[arg(long)]
    measure: bool,
    /// Board for --measure (a file in firmware/boards; default: the target's QEMU board).
    #[arg(long)]
    board: Option<String>,
    /// Input .npy for --measure (its first sample; default: a synthetic input).
    #[arg(long)]
    input: Vec<PathBuf>,
    /// With --measure: exact instructions per inference from this QEMU TCG plugin (built from
    /// ../shared/tools/qemu-insncount.c) instead of the SysTick estimate.
    #[arg(long, requires = "measure")]
    insncount: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

/// Measured figures of one firmware build and QEMU run.
#[derive(serde::Serialize)]
struct Measured {
    board: String,
    flash: u64,
    text: u64,
    rodata: u64,
    ram_static: u64,
    peak_stack: u64,
    ram: u64,
    runtime_code: u64,
    instructions_per_inference: Option<u64>,
    instructions_per_mac: Option<f64>,
}

#[derive(serde::Serialize)]
struct Row {
    model: String,
    macs: u64,
    estimate: Estimate,
    measured: Option<Measured>,
}

fn measure(a: &Args, target: &str, file_len: u64, input_bytes: u64, macs: u64, harness_flash: u64) -> Result<Measured> {
    let mut b = Build::new(Some(&a.model), target);
    b.board = a.board.clone();
    b.inputs = a.input.clone();
    b.runs = 2;
    let out = b.exec(true)?;
    if !out.ok {
        bail!("firmware build or run failed for {target}:\n{}\n{}", out.stdout, out.stderr.trim_end());
    }
    let r = parse_log(&out.stdout)?;
    let s = sections(&out.elf)?;
    let peak = r.stack.unwrap_or(0);
    let insns = match &a.insncount {
        Some(plugin) => Some(crate::firmware::exact_instructions(&b, plugin)?),
        None => r.qemu_instructions,
    };
    Ok(Measured {
        board: r.board.clone().unwrap_or_else(|| "?".into()),
        flash: s.flash(),
        text: s.text,
        rodata: s.rodata,
        ram_static: s.ram_static(),
        peak_stack: peak,
        ram: s.ram_static() + peak,
        runtime_code: s.flash().saturating_sub(file_len + input_bytes + harness_flash),
        instructions_per_inference: insns,
        instructions_per_mac: insns.map(|i| i as f64 / macs.max(1) as f64),
    })
}

pub fn run(a: Args) -> Result<()> {
    let bytes = crate::host::map_file(&a.model)?;
    let m = HostModel::new(&bytes).with_context(|| format!("loading {}", a.model.display()))?;
    let stats = model_stats(&m.model, bytes.len() as u64);
    let t = table()?;
    let targets: Vec<&str> = if a.target == "all" {
        TARGETS.iter().map(|(t, _)| *t).collect()
    } else if TARGETS.iter().any(|(t, _)| *t == a.target) {
        vec![a.target.as_str()]
    } else {
        bail!("unknown target `{}` (one of: {}, all)", a.target, TARGETS.map(|(t, _)| t).join(", "));
    };
    // The firmware embeds one sample per input (real or synthetic): the model's input size.
    let input_bytes: u64 = m.input_shapes().iter().map(|s| 4 * s.iter().product::<usize>() as u64).sum();
    let mut rows = Vec::new();
    for target in targets {
        let ts = t.targets.iter().find(|x| x.target == target).with_context(|| format!("the size table has no {target}"))?;
        let e = estimate(&m.model, bytes.len() as u64, ts)?;
        let measured =
            if a.measure { Some(measure(&a, target, bytes.len() as u64, input_bytes, stats.macs, ts.harness_flash)?) } else { None };
        rows.push(Row { model: a.model.display().to_string(), macs: stats.macs, estimate: e, measured });
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in &rows {
        let e = &r.estimate;
        let core = TARGETS.iter().find(|(t, _)| *t == e.target).map_or("", |(_, c)| c);
        println!("{} on {} ({core}): estimate from measured firmware builds", r.model, e.target);
        println!("  flash {:>10}  ({} B): model + runtime code for the kernels it uses", kib(e.flash), e.flash);
        for p in &e.flash_parts {
            println!("    {:<46} {:>8} B", p.what, p.bytes);
        }
        println!("  RAM   {:>10}  ({} B)", kib(e.ram), e.ram);
        for p in &e.ram_parts {
            println!("    {:<46} {:>8} B", p.what, p.bytes);
        }
        if !e.stack_unmeasured.is_empty() {
            println!("    (no stack measurement for: {})", e.stack_unmeasured.join(", "));
        }
        println!("  sprig's firmware harness (firmware/) adds {} B flash and {} B RAM", e.harness_flash, e.harness_ram);
        if let Some(x) = &r.measured {
            println!("  measured on {} (firmware/ release build, run under QEMU):", x.board);
            println!(
                "    flash {} B (text {} + rodata {} + vectors/data), of which runtime code {} B",
                x.flash, x.text, x.rodata, x.runtime_code
            );
            println!("    RAM   {} B (statics {} + peak stack {})", x.ram, x.ram_static, x.peak_stack);
            if let (Some(i), Some(per)) = (x.instructions_per_inference, x.instructions_per_mac) {
                println!(
                    "    {} instructions per inference{}, {:.2} per MAC ({} MACs)",
                    i,
                    if a.insncount.is_some() { " (exact, TCG plugin)" } else { " (SysTick under -icount)" },
                    per,
                    r.macs
                );
            }
        }
    }
    Ok(())
}
