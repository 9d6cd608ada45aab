//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The third-party models and data (`../shared/data`, or `$SPRIG_SHARED_DATA`), or `None` with a
/// printed reason when absent.
pub fn shared_data() -> Option<PathBuf> {
    let p = match std::env::var_os("SPRIG_SHARED_DATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    };
    if p.join("models").is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: shared data not found at {} (set SPRIG_SHARED_DATA)", p.display());
        None
    }
}

/// The repository's `models/` folder.
pub fn repo_models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// Runs the `sprig` binary of this build.
pub fn sprig(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sprig")).args(args).output().expect("spawn sprig")
}

/// Runs `sprig`, asserts success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let o = sprig(args);
    assert!(o.status.success(), "sprig {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Runs `sprig`, asserts failure, returns stderr.
pub fn fails(args: &[&str]) -> String {
    let o = sprig(args);
    assert!(!o.status.success(), "sprig {args:?} should fail");
    String::from_utf8(o.stderr).unwrap()
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The records of `a` and `b` agree but for constants' payload offsets (compact files place
/// payloads on 4 bytes, fixed ones on 16), and every constant's payload bytes are the same.
pub fn assert_same_model(a: &sprig_runtime::Model<'_>, b: &sprig_runtime::Model<'_>) {
    assert_eq!((a.num_tensors(), a.num_ops()), (b.num_tensors(), b.num_ops()));
    for i in 0..a.num_tensors() {
        let (mut ta, tb) = (a.tensor(i).unwrap(), b.tensor(i).unwrap());
        if ta.role == sprig_runtime::format::Role::Constant {
            let bits = |m: &sprig_runtime::Model<'_>, t| {
                let v = m.constant(t);
                (0..v.len()).map(|k| v.get(k).to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(bits(a, &ta), bits(b, &tb), "tensor {i}");
            ta.offset = tb.offset;
        }
        assert_eq!(ta, tb, "tensor {i}");
    }
    for i in 0..a.num_ops() {
        let (oa, ob) = (a.op(i).unwrap(), b.op(i).unwrap());
        assert_eq!((oa.name, oa.op, oa.kernel, oa.n_inputs), (ob.name, ob.op, ob.kernel, ob.n_inputs), "op {i}");
        for k in 0..=oa.n_inputs {
            assert_eq!(a.op_operand(&oa, k), b.op_operand(&ob, k), "op {i} operand {k}");
        }
    }
    assert_eq!(a.inputs().collect::<Vec<_>>(), b.inputs().collect::<Vec<_>>());
    assert_eq!(a.outputs().collect::<Vec<_>>(), b.outputs().collect::<Vec<_>>());
}
