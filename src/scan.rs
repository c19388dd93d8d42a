//! The old name of [`crate::pipeline`], kept while the slices of #15 merge.

pub use crate::pipeline::*;
