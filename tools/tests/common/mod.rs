//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

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
