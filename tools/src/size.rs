//! Flash and RAM a model needs on a Cortex-M device, before flashing: the `.sprig` file (embedded
//! as is), the runtime code for exactly the kernels the model uses, the arena and the stack.
//!
//! Code and stack figures come from a table measured on real firmware builds
//! (`tools/data/size_table.json`, written by `sprig-size-table`, which builds `firmware/` once per
//! kernel with `SPRIG_OPS` and runs every real model with the `profile` feature under QEMU).
//! `sprig size --measure` builds and runs the firmware for the model itself instead.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sprig_runtime::kernels::{BINARY_BITS, CODEBOOK_BIT, CONV_KERNEL_BITS, INPUT_SPARSE_BIT, SPARSE_BIT, UNARY_BITS};
use sprig_runtime::op::kind::{CONV, DENSE};
use sprig_runtime::Model;
use std::collections::BTreeMap;

/// Measured code and stack sizes for one target.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetSizes {
    /// Target triple.
    pub target: String,
    /// QEMU board the stack figures were measured on.
    pub board: String,
    /// Flash of the firmware harness alone (startup, defmt, timers; no runtime, no model).
    pub harness_flash: u64,
    /// RAM statics of the harness alone.
    pub harness_ram: u64,
    /// Flash of the runtime with no kernel: reader, validation, session.
    pub runtime_base: u64,
    /// Extra flash per operator kind code (for Unary/Binary: the dispatch, without functions).
    pub kinds: BTreeMap<u16, u64>,
    /// Flash shared by the unary functions (element loops, view decoding), once if any is used.
    pub unary_shared: u64,
    /// Extra flash per unary function code, beyond the shared part.
    pub unary: BTreeMap<u32, u64>,
    /// Flash shared by the binary functions (broadcasting), once if any is used.
    pub binary_shared: u64,
    /// Extra flash per binary function code, beyond the shared part.
    pub binary: BTreeMap<u32, u64>,
    /// Extra flash of every kernel together (the runtime with its whole kernel set).
    pub all_kernels: u64,
    /// Extra flash of the block-sparse Dense / Conv kernels (kernel-set bit `SPARSE_BIT`) over
    /// the dense Dense + Conv kernels.
    #[serde(default)]
    pub sparse: Option<u64>,
    /// Extra flash of the codebook Dense / Conv kernels (kernel-set bit `CODEBOOK_BIT`) over the
    /// dense Dense + Conv kernels.
    #[serde(default)]
    pub codebook: Option<u64>,
    /// Extra flash of the input-sparse Dense / 1×1 Conv kernels (kernel-set bit
    /// `INPUT_SPARSE_BIT`) over the dense Dense + Conv kernels.
    #[serde(default)]
    pub input_sparse: Option<u64>,
    /// The same three extras measured per operator kind (Dense alone, Conv alone): bit →
    /// (kind → bytes). The runtime links a variant's code only for the kinds the model has, so a
    /// Dense-only model pays for the Dense part alone. Absent in older tables.
    #[serde(default)]
    pub variant_kinds: BTreeMap<u32, BTreeMap<u16, u64>>,
    /// Peak stack measured while Dense / Conv operators ran with each variant (bit → bytes), on
    /// real models stored block-sparse, as codebooks and input-major. Absent in older tables.
    #[serde(default)]
    pub variant_stack: BTreeMap<u32, u64>,
    /// [`TargetSizes::variant_stack`] per operator kind (bit → Dense / Conv kind → bytes): a
    /// codebook Conv decodes filter blocks onto the stack (16 KiB), a codebook Dense does not.
    /// Absent in older tables (then the per-bit peak holds).
    #[serde(default)]
    pub variant_kind_stack: BTreeMap<u32, BTreeMap<u16, u64>>,
    /// Extra flash of each register-blocked Conv kernel over the Conv kind alone (kernel-set
    /// bit → bytes; `CONV_QUADS_BIT` …): a model links only those its Convs' shapes use. Absent
    /// in older tables.
    #[serde(default)]
    pub conv_kernels: BTreeMap<u32, u64>,
    /// Peak stack measured while operators of each kind ran (whole program, bytes).
    pub stack_kinds: BTreeMap<u16, u64>,
    /// The largest peak stack measured on any model.
    pub stack_max: u64,
    /// Models the stack figures were measured on.
    pub stack_models: Vec<String>,
}

/// The whole table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SizeTable {
    /// How the table was made.
    pub generated_by: String,
    /// `rustc -V` of the builds.
    pub rustc: String,
    /// Per target.
    pub targets: Vec<TargetSizes>,
}

const TABLE_JSON: &str = include_str!("../data/size_table.json");

/// The table measured for this version of the runtime.
pub fn table() -> Result<SizeTable> {
    serde_json::from_str(TABLE_JSON).context("tools/data/size_table.json is malformed")
}

/// One line of an estimate.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Part {
    /// What it is.
    pub what: String,
    /// Bytes.
    pub bytes: u64,
}

/// Flash and RAM a model needs on one target.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Estimate {
    /// Target triple.
    pub target: String,
    /// Flash for the model and the runtime (what an application embedding sprig adds).
    pub flash: u64,
    /// Its parts: the model file, the runtime base, each kernel.
    pub flash_parts: Vec<Part>,
    /// RAM for the model: arena plus the stack estimate.
    pub ram: u64,
    /// Its parts.
    pub ram_parts: Vec<Part>,
    /// Flash and RAM of sprig's firmware harness (what `firmware/` adds on top).
    pub harness_flash: u64,
    /// RAM statics of the harness.
    pub harness_ram: u64,
    /// Kernels used by the model that the stack table has no measurement for (the stack
    /// estimate then uses the largest measured peak).
    pub stack_unmeasured: Vec<String>,
}

fn kind_name(model: &Model<'_>, kind: u16) -> String {
    (0..model.num_ops()).filter_map(|i| model.op(i)).find(|o| o.op.kind_code() == kind).map_or(format!("kind {kind}"), |o| match o.op {
        sprig_runtime::Op::Unary(_) => "Unary".into(),
        sprig_runtime::Op::Binary(_) => "Binary".into(),
        sprig_runtime::Op::Conv(_) => "Conv".into(),
        ref op => op.name().to_string(),
    })
}

/// The estimate for `model` (a file of `file_len` bytes) on `t`.
pub fn estimate(model: &Model<'_>, file_len: u64, t: &TargetSizes) -> Result<Estimate> {
    let conv_bits = CONV_KERNEL_BITS.iter().fold(0u128, |m, &(bit, _)| m | (1u128 << bit));
    let mask = model.ops_mask() & !(1u128 << SPARSE_BIT) & !(1u128 << CODEBOOK_BIT) & !(1u128 << INPUT_SPARSE_BIT) & !conv_bits;
    let mut flash_parts = vec![Part { what: "model file (.sprig, embedded as is)".into(), bytes: file_len }];
    flash_parts.push(Part { what: "runtime base (reader, validation, session)".into(), bytes: t.runtime_base });
    let mut stack = 0;
    let mut unmeasured = Vec::new();
    for kind in 0..64u16 {
        if mask & (1u128 << kind) == 0 {
            continue;
        }
        let Some(&bytes) = t.kinds.get(&kind) else { bail!("the size table for {} has no entry for operator kind {kind}", t.target) };
        flash_parts.push(Part { what: format!("kernel {}", kind_name(model, kind)), bytes });
        // The register-blocked Conv kernels its Convs' shapes use, under Conv.
        for (bit, what) in CONV_KERNEL_BITS.iter().filter(|_| kind == CONV) {
            if model.ops_mask() & (1u128 << bit) == 0 {
                continue;
            }
            let Some(&bytes) = t.conv_kernels.get(bit) else {
                bail!("the size table for {} has no entry for the kernel {what} (regenerate it with sprig-size-table)", t.target)
            };
            flash_parts.push(Part { what: format!("  kernel {what}"), bytes });
        }
        match t.stack_kinds.get(&kind) {
            Some(&s) => stack = stack.max(s),
            None => unmeasured.push(kind_name(model, kind)),
        }
    }
    for (base, shared, fns, label) in [(UNARY_BITS, t.unary_shared, &t.unary, "unary"), (BINARY_BITS, t.binary_shared, &t.binary, "binary")]
    {
        if (mask >> base) as u32 != 0 {
            flash_parts.push(Part { what: format!("  {label} functions, shared code"), bytes: shared });
        }
        for code in 0..32u32 {
            if mask & (1u128 << (base + code)) != 0 {
                let Some(&bytes) = fns.get(&code) else {
                    bail!("the size table for {} has no entry for {label} function {code}", t.target)
                };
                let name = (0..model.num_ops())
                    .filter_map(|i| model.op(i))
                    .find(|o| o.op.feature_bits() & (1u128 << (base + code)) != 0)
                    .map_or(format!("{label} {code}"), |o| o.op.name().to_string());
                flash_parts.push(Part { what: format!("  function {name}"), bytes });
            }
        }
    }
    for (bit, whole, what) in [
        (SPARSE_BIT, t.sparse, "block-sparse Dense/Conv kernels"),
        (CODEBOOK_BIT, t.codebook, "codebook Dense/Conv kernels"),
        (INPUT_SPARSE_BIT, t.input_sparse, "input-sparse Dense/1x1 Conv kernels"),
    ] {
        if model.ops_mask() & (1u128 << bit) == 0 {
            continue;
        }
        let Some(whole) = whole else {
            bail!("the size table for {} has no entry for the {what} (regenerate it with sprig-size-table)", t.target)
        };
        // Per kind when measured: the kinds this model has, at most the measured whole.
        let bytes = match t.variant_kinds.get(&bit) {
            Some(per) => {
                let used = [DENSE, CONV].into_iter().filter(|&k| model.ops_mask() & (1u128 << k) != 0);
                used.map(|k| per.get(&k).copied().unwrap_or(whole)).sum::<u64>().min(whole)
            }
            None => whole,
        };
        flash_parts.push(Part { what: what.into(), bytes });
        // Per kind when measured: the largest of the kinds this model has.
        let per_kind = t.variant_kind_stack.get(&bit).and_then(|per| {
            let used = [DENSE, CONV].into_iter().filter(|&k| model.ops_mask() & (1u128 << k) != 0);
            used.map(|k| per.get(&k).copied()).collect::<Option<Vec<u64>>>().and_then(|v| v.into_iter().max())
        });
        match per_kind.or_else(|| t.variant_stack.get(&bit).copied()) {
            Some(st) => stack = stack.max(st),
            None => unmeasured.push(what.to_string()),
        }
    }
    if !unmeasured.is_empty() {
        stack = stack.max(t.stack_max);
    }
    let arena = (model.arena_len() as u64).div_ceil(16) * 16;
    let ram_parts = vec![
        Part { what: "arena".into(), bytes: arena },
        Part {
            what: if unmeasured.is_empty() {
                "stack (peak measured for these kernels)".into()
            } else {
                "stack (largest peak measured: some kernels unmeasured)".into()
            },
            bytes: stack,
        },
    ];
    Ok(Estimate {
        target: t.target.clone(),
        flash: flash_parts.iter().map(|p| p.bytes).sum(),
        flash_parts,
        ram: ram_parts.iter().map(|p| p.bytes).sum(),
        ram_parts,
        harness_flash: t.harness_flash,
        harness_ram: t.harness_ram,
        stack_unmeasured: unmeasured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_kernel_on_every_target() {
        let t = table().unwrap();
        assert_eq!(t.targets.len(), crate::firmware::TARGETS.len());
        for ts in &t.targets {
            for kind in 1..=sprig_runtime::op::kind::RESIZE {
                assert!(ts.kinds.contains_key(&kind), "{}: kind {kind}", ts.target);
            }
            for code in 0..sprig_runtime::UnaryKind::COUNT {
                assert!(ts.unary.contains_key(&code), "{}: unary function {code}", ts.target);
            }
            assert_eq!(ts.binary.len(), 9, "{}", ts.target);
            assert!(ts.runtime_base > 1000 && ts.harness_flash > 1000, "{}", ts.target);
            assert!(ts.stack_max >= ts.stack_kinds.values().copied().max().unwrap_or(0));
        }
    }
}
