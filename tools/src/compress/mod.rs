//! Post-training compression: structured sparsification with the weighted group sparse envelope
//! (issue #4), codebooks (#5) and activation sparsity (#6).

pub mod actsparse;
pub mod calib;
pub mod channels;
pub mod codebook;
pub mod layer;
pub mod prune;
pub mod sparsify;
pub mod wgsef;
