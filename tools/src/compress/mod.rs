//! Post-training compression: structured sparsification with the weighted group sparse envelope
//! (issue #4), codebooks (#5) and activation sparsity (#6).

pub mod wgsef;
