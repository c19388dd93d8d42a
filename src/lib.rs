//! neardup finds near-duplicate photos.
//!
//! The pipeline ([`pipeline::scan`]) reads top to bottom: [`walk`] the roots,
//! [`decode`] each photo to the model's input, [`embed`] it with the bundled
//! CNN (tract-onnx), hash the vectors into LSH tables ([`index`]), verify the
//! candidate pairs ([`verify`]), [`group`] them and build a
//! [`report::Report`]. The library never prints: progress and warnings go
//! through [`progress::Progress`].

pub mod apply;
pub mod decode;
pub mod embed;
pub mod error;
pub mod explain;
pub mod formats;
pub mod geometry;
pub mod group;
pub use report::html;
pub mod index;
pub mod keep;
pub mod model;
pub mod open;
pub mod photo;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod reverify;
pub mod scan;
pub use report::thumbs;
pub mod units;
pub mod verify;
pub mod walk;

/// The rules and labels, at their old path.
pub use verify::decide;

pub use error::{Error, Result};
// The decoder's parts, at their old paths until the callers move.
pub use decode::{heif, meta, raw};
pub mod cache;
