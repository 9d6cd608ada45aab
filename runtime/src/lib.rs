//! sprig runtime: reads `.sprig` files in place and executes them without allocating.
//!
//! ```ignore
//! let model = Model::parse(bytes)?;            // validates everything, borrows `bytes`
//! let mut arena = [0u8; N];                     // N >= model.arena_len(), 4-byte aligned
//! let mut s = Session::new(&model, &mut arena)?;
//! s.input_mut(0)?.copy_from_slice(&x);
//! s.run()?;
//! let y = s.output(0)?;
//! ```
//!
//! The arena must be 4-byte aligned (`Error::ArenaNotAligned` otherwise). On x86-64 and aarch64
//! hosts align it to 64 (a cache line): arena buffers sit at 16-byte multiples from its start,
//! and the same layer's SIMD kernel measured up to 1.4× slower with the arena at 16 bytes into
//! a line than at 48 (`sprig_tools::host::HostModel` allocates it so).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
// Unsafe code is confined to the SIMD modules (`kernels::x86`, `kernels::winograd`, …), each use
// with its SAFETY note.
#![deny(unsafe_code)]

pub mod codebook;
pub mod error;
pub mod format;
pub mod kernels;
pub mod model;
pub mod op;
pub mod session;
pub mod shape;
mod span;
pub mod sparse;
pub mod view;

pub use codebook::{Codebook, CodebookInfo};
pub use error::Error;
pub use model::{IoInfo, Model, OpInfo, TensorInfo};
pub use op::{
    Activation, BinaryKind, ConvAttrs, CoordMode, NearestMode, Op, OpError, PadMode, PoolAttrs, ReduceKind, ResizeAttrs, ResizeMode,
    UnaryKind,
};
pub use session::{Plan, Session, Step, STEP_INPUTS};
pub use shape::{Shape, MAX_RANK};
pub use sparse::{Bsr, BsrInfo};
pub use view::View;
