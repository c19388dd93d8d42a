//! The library's error type.

use std::path::PathBuf;

/// Everything that can make a whole run fail. A single unreadable photo is
/// never an `Error`: it becomes a [`crate::report::Skipped`] entry instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A root given on the command line does not exist or cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A root's name is not valid UTF-8 (`shown` with the invalid bytes
    /// escaped as `\xNN`): the files under it could only be reported under
    /// lossy names.
    #[error("{shown}: the name is not valid UTF-8 (neardup reports paths as text; rename it)")]
    RootName { shown: String },
    /// A root exists but is neither a folder nor a file.
    #[error("{} is not a folder or a file", path.display())]
    RootKind { path: PathBuf },
    /// The model file or its sidecar could not be read or is not valid.
    #[error("model: {0}")]
    Model(String),
    /// The model ran but failed on an input.
    #[error("inference failed: {0}")]
    Inference(String),
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    Param(String),
    /// A plan (a report given to `apply`) or an undo journal cannot be
    /// used; nothing was touched.
    #[error("{0}")]
    Plan(String),
    /// The run was interrupted (Ctrl-C).
    #[error("interrupted")]
    Cancelled,
    /// Writing a report failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the error comes from what the user asked for (a bad root, a
    /// bad model path, a bad parameter), as opposed to a failure while working.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Root { .. }
                | Error::RootName { .. }
                | Error::RootKind { .. }
                | Error::Model(_)
                | Error::Param(_)
                | Error::Plan(_)
        )
    }
}

pub type Result<T> = std::result::Result<T, Error>;
