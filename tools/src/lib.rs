//! sprig offline tools: ONNX import, graph passes, memory planning, `.sprig` writing, and
//! validation against tract.

pub mod analyze;
pub mod analyze_html;
pub mod budget;
pub mod cli;
pub mod compile;
pub mod compress;
pub mod firmware;
pub mod harness;
pub mod host;
pub mod import;
pub mod ir;
pub mod npy;
pub mod passes;
pub mod plan;
pub mod reference;
pub mod size;
pub mod stats;
pub mod validate;
pub mod writer;
