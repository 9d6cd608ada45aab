//! Regenerates `tools/data/size_table.json`: flash per kernel and peak stack per operator kind,
//! measured on real firmware builds for every thumb target.
//!
//! Needs the thumb targets, `qemu-system-arm`, `defmt-print` and `../shared/data` (the real models
//! whose stack is measured). Takes about 15 minutes on 2 cores. Run from the repository root:
//! `cargo run --release -p sprig-tools --bin sprig-size-table` (`-- --input-sparse` re-measures
//! only the input-sparse kernels' flash, `-- --variant-kinds` only the block-sparse, codebook and
//! input-sparse kernels' flash per operator kind; `-- --new-functions` only the unary and binary
//! functions missing from the table, against its shared code; a few minutes each).

use anyhow::{bail, Context, Result};
use sprig_runtime::kernels::{BINARY_BITS, CODEBOOK_BIT, CONV_KERNEL_BITS, INPUT_SPARSE_BIT, SPARSE_BIT, UNARY_BITS};
use sprig_runtime::op::kind;
use sprig_runtime::{Model, UnaryKind};

/// Number of binary function codes.
const BINARY_COUNT: u32 = 9;
use sprig_tools::compile::{convert_file, ConvertOptions};
use sprig_tools::firmware::{parse_log, sections, Build, TARGETS};
use sprig_tools::size::{SizeTable, TargetSizes};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn flash_of(b: &Build) -> Result<u64> {
    let out = b.exec(false)?;
    if !out.ok {
        bail!("firmware build failed ({:?}, ops {:?}):\n{}", b.target, b.ops, out.stderr);
    }
    Ok(sections(&out.elf)?.flash())
}

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = std::env::var_os("SPRIG_SHARED_DATA").map(PathBuf::from).unwrap_or_else(|| root.join("../shared/data"));
    let tmp = tempfile::tempdir()?;
    // Models whose per-operator stack is measured: the repository's and every fp32 real model.
    let mut models: Vec<(String, PathBuf)> = Vec::new();
    for (name, onnx) in [
        ("digits_cnn", root.join("models/digits_cnn.onnx")),
        ("digits_mlp", root.join("models/digits_mlp.onnx")),
        ("mnist-8", data.join("models/mnist-8.onnx")),
        ("kws_dscnn", data.join("models/kws_dscnn_fp32.onnx")),
        ("ic_resnet8", data.join("models/ic_resnet8_fp32.onnx")),
        ("vww_mobilenetv1", data.join("models/vww_mobilenetv1_96_fp32.onnx")),
        ("ad_autoencoder", data.join("models/ad_autoencoder_fp32.onnx")),
        ("hello_edge_ds_cnn", data.join("models/hello_edge_ds_cnn_s.onnx")),
        ("hello_edge_cnn", data.join("models/hello_edge_cnn_s.onnx")),
        ("hello_edge_dnn", data.join("models/hello_edge_dnn_s.onnx")),
    ] {
        let c = convert_file(&onnx, &ConvertOptions::default()).with_context(|| format!("converting {}", onnx.display()))?;
        let p = tmp.path().join(format!("{name}.sprig"));
        std::fs::write(&p, &c.bytes)?;
        models.push((name.to_string(), p));
    }
    let default_model = root.join("tools/tests/data/digits_cnn_v1.0.sprig");
    let default_bytes = std::fs::read(&default_model)?;
    let default_input = 4 * Model::parse(&default_bytes)?.input(0).context("input")?.shape.numel().unwrap_or(0) as u64;
    let embedded = default_bytes.len() as u64 + default_input;

    let path = root.join("tools/data/size_table.json");
    if std::env::args().any(|a| a == "--input-sparse") {
        // Only the input-sparse kernels' flash, into the existing table.
        let mut table: SizeTable = serde_json::from_str(&std::fs::read_to_string(&path)?).context("reading the size table")?;
        for t in &mut table.targets {
            let with = |ops: u128| {
                let mut b = Build::new(None, &t.target);
                b.ops = Some(ops);
                flash_of(&b)
            };
            let dense_conv = (1u128 << kind::DENSE) | (1u128 << kind::CONV);
            t.input_sparse = Some(with(dense_conv | (1u128 << INPUT_SPARSE_BIT))?.saturating_sub(with(dense_conv)?));
            eprintln!("{}: input-sparse kernels {} B", t.target, t.input_sparse.unwrap_or(0));
        }
        std::fs::write(&path, serde_json::to_string_pretty(&table)? + "\n")?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    if std::env::args().any(|a| a == "--new-functions") {
        // Functions added since the table was made: own flash = single - kind - shared (the
        // shared code of the kind's functions as measured when the table was made).
        let mut table: SizeTable = serde_json::from_str(&std::fs::read_to_string(&path)?).context("reading the size table")?;
        for t in &mut table.targets {
            let with = |ops: u128| {
                let mut b = Build::new(None, &t.target);
                b.ops = Some(ops);
                flash_of(&b)
            };
            for (kind, bits, n, shared, fns) in [
                (kind::UNARY, UNARY_BITS, UnaryKind::COUNT, t.unary_shared, &mut t.unary),
                (kind::BINARY, BINARY_BITS, BINARY_COUNT, t.binary_shared, &mut t.binary),
            ] {
                let missing: Vec<u32> = (0..n).filter(|c| !fns.contains_key(c)).collect();
                if missing.is_empty() {
                    continue;
                }
                let kind_flash = with(1u128 << kind)?;
                for code in missing {
                    let single = with((1u128 << kind) | (1u128 << (bits + code)))?.saturating_sub(kind_flash);
                    eprintln!("{}: kind {kind} function {code}: {single} B with the shared code", t.target);
                    fns.insert(code, single.saturating_sub(shared));
                }
            }
        }
        std::fs::write(&path, serde_json::to_string_pretty(&table)? + "\n")?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    if std::env::args().any(|a| a == "--variant-kinds") {
        let mut table: SizeTable = serde_json::from_str(&std::fs::read_to_string(&path)?).context("reading the size table")?;
        for t in &mut table.targets {
            t.variant_kinds = variant_kinds(&t.target)?;
            (t.variant_stack, t.variant_kind_stack) = variant_stack(&data, tmp.path(), &t.target)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&table)? + "\n")?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    let rustc = std::process::Command::new("rustc").arg("-V").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())?;
    let mut targets = Vec::new();
    for (target, _) in TARGETS {
        eprintln!("{target}: code sizes");
        let mut bare = Build::new(None, target);
        bare.features = vec!["bare".into()];
        let out = bare.exec(false)?;
        if !out.ok {
            bail!("bare build failed: {}", out.stderr);
        }
        let harness = sections(&out.elf)?;
        let with = |ops: u128| {
            let mut b = Build::new(None, target);
            b.ops = Some(ops);
            flash_of(&b)
        };
        let base = with(0)?;
        let mut kinds = BTreeMap::new();
        for k in 1..=kind::RESIZE {
            kinds.insert(k, with(1u128 << k)?.saturating_sub(base));
        }
        // Functions of an element-wise kind share their loops and broadcasting code. With
        // single_i = shared + own_i and all = shared + sum(own_i):
        // shared = (sum(single_i) - all) / (n - 1).
        let functions = |kind: u16, bits: u32, n: u32| -> Result<(u64, BTreeMap<u32, u64>)> {
            let kind_base = base + kinds[&kind];
            let single: Vec<u64> =
                (0..n).map(|f| Ok(with((1u128 << kind) | (1u128 << (bits + f)))?.saturating_sub(kind_base))).collect::<Result<_>>()?;
            let all = with((1u128 << kind) | (((1u128 << n) - 1) << bits))?.saturating_sub(kind_base);
            let shared = (single.iter().sum::<u64>().saturating_sub(all)) / (n as u64 - 1);
            let shared = shared.min(single.iter().copied().min().unwrap_or(0));
            Ok((shared, single.iter().enumerate().map(|(f, &v)| (f as u32, v - shared)).collect()))
        };
        let (unary_shared, unary) = functions(kind::UNARY, UNARY_BITS, UnaryKind::COUNT)?;
        let (binary_shared, binary) = functions(kind::BINARY, BINARY_BITS, BINARY_COUNT)?;
        let all_kernels = with(u128::MAX)?.saturating_sub(base);
        let dense_conv = (1u128 << kind::DENSE) | (1u128 << kind::CONV);
        let dense_conv_flash = with(dense_conv)?;
        let sparse = Some(with(dense_conv | (1u128 << SPARSE_BIT))?.saturating_sub(dense_conv_flash));
        let codebook = Some(with(dense_conv | (1u128 << CODEBOOK_BIT))?.saturating_sub(dense_conv_flash));
        let input_sparse = Some(with(dense_conv | (1u128 << INPUT_SPARSE_BIT))?.saturating_sub(dense_conv_flash));
        let conv_flash = base + kinds[&kind::CONV];
        let mut conv_kernels = BTreeMap::new();
        for (bit, what) in CONV_KERNEL_BITS {
            let bytes = with((1u128 << kind::CONV) | (1u128 << bit))?.saturating_sub(conv_flash);
            eprintln!("{target}: kernel {what} {bytes} B");
            conv_kernels.insert(bit, bytes);
        }
        let variant_kinds = variant_kinds(target)?;
        let (variant_stack, variant_kind_stack) = variant_stack(&data, tmp.path(), target)?;

        eprintln!("{target}: stack per operator kind");
        let mut stack_kinds: BTreeMap<u16, u64> = BTreeMap::new();
        let mut stack_max = 0;
        let mut board = String::new();
        for (name, path) in &models {
            let mut b = Build::new(Some(Path::new(path)), target);
            b.features = vec!["profile".into()];
            let out = b.exec(true)?;
            if !out.ok {
                // A model too large for the target's QEMU board is skipped, not fatal.
                if out.stderr.contains("does not fit board") {
                    eprintln!("  {name}: does not fit, skipped");
                    continue;
                }
                bail!("{name} on {target}: {}\n{}", out.stdout, out.stderr);
            }
            let r = parse_log(&out.stdout)?;
            board = r.board.clone().unwrap_or_default();
            for op in &r.ops {
                let e = stack_kinds.entry(op.kind).or_insert(0);
                *e = (*e).max(op.stack);
                stack_max = stack_max.max(op.stack);
            }
            eprintln!("  {name}: peak stack {} B", r.stack.unwrap_or(0));
        }
        targets.push(TargetSizes {
            target: target.to_string(),
            board,
            harness_flash: harness.flash(),
            harness_ram: harness.ram_static(),
            runtime_base: (base - embedded).saturating_sub(harness.flash()),
            kinds,
            unary_shared,
            unary,
            binary_shared,
            binary,
            all_kernels,
            sparse,
            codebook,
            input_sparse,
            variant_kinds,
            variant_stack,
            variant_kind_stack,
            conv_kernels,
            stack_kinds,
            stack_max,
            stack_models: models.iter().map(|(n, _)| n.clone()).collect(),
        });
    }
    let table = SizeTable {
        generated_by: "cargo run --release -p sprig-tools --bin sprig-size-table (firmware release builds: opt-level 3, fat LTO)".into(),
        rustc,
        targets,
    };
    std::fs::write(&path, serde_json::to_string_pretty(&table)? + "\n")?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Extra flash of each kernel variant (block-sparse, codebook, input-sparse) over the dense kernel
/// of Dense alone and of Conv alone, on `target`.
fn variant_kinds(target: &str) -> Result<BTreeMap<u32, BTreeMap<u16, u64>>> {
    let with = |ops: u128| {
        let mut b = Build::new(None, target);
        b.ops = Some(ops);
        flash_of(&b)
    };
    let mut out = BTreeMap::new();
    for k in [kind::DENSE, kind::CONV] {
        let plain = with(1u128 << k)?;
        for bit in [SPARSE_BIT, CODEBOOK_BIT, INPUT_SPARSE_BIT] {
            let extra = with((1u128 << k) | (1u128 << bit))?.saturating_sub(plain);
            eprintln!("{target}: kind {k} variant bit {bit}: {extra} B");
            out.entry(bit).or_insert_with(BTreeMap::new).insert(k, extra);
        }
    }
    Ok(out)
}

/// Peak stack of the Dense / Conv operators of real models stored block-sparse, as 4-bit
/// codebooks and input-major (kws_dscnn: Conv and Dense; hello_edge_dnn: Dense), per variant bit,
/// and per variant bit and operator kind.
#[allow(clippy::type_complexity)]
fn variant_stack(data: &Path, tmp: &Path, target: &str) -> Result<(BTreeMap<u32, u64>, BTreeMap<u32, BTreeMap<u16, u64>>)> {
    use sprig_tools::compress::actsparse::{select_input_sparse, InputSparse};
    use sprig_tools::compress::codebook::{quantize, CodebookOptions};
    use sprig_tools::compress::prune::{Amount, Method};
    use sprig_tools::compress::sparsify::{sparsify, Pattern, SparsifyOptions, StorageChoice};
    use sprig_tools::import::{import_onnx, ImportOptions};
    let (mut out, mut per_kind) = (BTreeMap::new(), BTreeMap::new());
    for (onnx, eval, take) in
        [("kws_dscnn_fp32.onnx", "kws01/inputs.npy", None), ("hello_edge_dnn_s.onnx", "kws01_hello_edge/inputs.npy", Some(250))]
    {
        let g = import_onnx(&data.join("models").join(onnx), &ImportOptions::default())?;
        let x = sprig_tools::npy::read_f32(&data.join("eval").join(eval))?;
        let len = take.unwrap_or(x.sample_len());
        let calib: Vec<&[f32]> = (0..16).map(|i| &x.sample(i)[..len]).collect();
        for bit in [SPARSE_BIT, CODEBOOK_BIT, INPUT_SPARSE_BIT] {
            let g = match bit {
                SPARSE_BIT => {
                    let o = SparsifyOptions {
                        pattern: Pattern::Block(4, 1),
                        method: Method::Magnitude,
                        amount: Amount::Fraction(0.5),
                        storage: StorageChoice::Sparse,
                        ..SparsifyOptions::default()
                    };
                    sparsify(&g, &calib, &o)?.0
                }
                CODEBOOK_BIT => quantize(&g, &calib, &CodebookOptions::default())?.0,
                _ => {
                    let mut g = g.clone();
                    select_input_sparse(&mut g, &calib, None, InputSparse::All)?;
                    g
                }
            };
            let c = sprig_tools::compile::compile(g, sprig_tools::writer::WeightFormat::F32, [0; 32])?;
            let p = tmp.join(format!("variant_{bit}_{onnx}.sprig"));
            std::fs::write(&p, &c.bytes)?;
            let mut b = Build::new(Some(&p), target);
            b.features = vec!["profile".into()];
            let run = b.exec(true)?;
            if !run.ok {
                if run.stderr.contains("does not fit board") {
                    eprintln!("  {onnx} variant bit {bit}: does not fit, skipped");
                    continue;
                }
                bail!("{onnx} variant bit {bit} on {target}: {}\n{}", run.stdout, run.stderr);
            }
            let r = parse_log(&run.stdout)?;
            let ops = || r.ops.iter().filter(|o| o.kind == kind::DENSE || o.kind == kind::CONV);
            let peak = ops().map(|o| o.stack).max().unwrap_or(0);
            eprintln!("{target}: {onnx} variant bit {bit}: peak stack {peak} B");
            let e = out.entry(bit).or_insert(0);
            *e = (*e).max(peak);
            for o in ops() {
                let e = per_kind.entry(bit).or_insert_with(BTreeMap::new).entry(o.kind).or_insert(0);
                *e = (*e).max(o.stack);
            }
        }
    }
    Ok((out, per_kind))
}
