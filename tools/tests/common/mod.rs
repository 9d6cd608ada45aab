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
