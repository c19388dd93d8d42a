//! neardup finds near-duplicate photos.
//!
//! The pipeline ([`pipeline::scan`]) reads top to bottom, one module per
//! stage: [`walk`] the roots, [`decode`] each photo to the model's input,
//! [`embed`] it with the bundled CNN (tract-onnx), hash the vectors into LSH
//! tables ([`index`]), [`verify`] the candidate pairs with exact distances
//! and the evidence the mode needs, [`group`] them, choose each group's
//! keeper ([`keep`]) and build the [`Report`] ([`report::build`]). The words
//! every stage shares live in [`photo`]. [`apply()`] acts on a report and
//! [`undo()`] restores its journal. The library never prints: progress and
//! warnings go through [`Progress`].
//!
//! The items re-exported here are the API a program needs; the modules hold
//! the rest.

// The library never prints: stdout and stderr belong to the binary.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]
// The docs are the developers' docs too (CI builds them with
// --document-private-items and denies every other warning): stages link
// to their parts.
#![allow(rustdoc::private_intra_doc_links)]

pub mod apply;
pub mod cache;
pub mod decisions;
pub mod decode;
pub mod embed;
pub mod error;
pub mod explain;
pub mod formats;
pub(crate) mod geometry;
pub(crate) mod group;
pub mod index;
pub mod keep;
pub mod layout;
pub mod model;
pub(crate) mod open;
pub mod photo;
pub mod pipeline;
pub mod progress;
pub mod report;
pub(crate) mod reread;
pub(crate) mod reverify;
pub(crate) mod units;
pub mod verify;
pub mod walk;

pub use apply::{apply, undo, Action, ApplyOptions, Summary, UndoSummary};
pub use error::{Error, Result};
pub use explain::{explain, ExplainOptions, Explanation};
pub use model::ModelSource;
pub use photo::{Format, SkipKind};
pub use pipeline::{scan, scan_with_thumbnails, ScanOptions};
pub use progress::{NoProgress, Progress, Stage};
pub use report::{read_plan, Report};
pub use verify::decide::{Label, Mode, Rules};
