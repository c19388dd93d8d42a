//! Command-line interface: the only module that knows clap.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    the scan completed (skipped files are warnings, not failures)
  1    the scan failed while working (for example the report could not be written)
  2    usage error: bad flags, a root that cannot be read, a model that cannot be loaded
  130  interrupted (Ctrl-C)";

#[derive(Debug, Parser)]
#[command(name = "neardup", version, about = "Find near-duplicate photos", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find groups of near-duplicate photos under one or more folders.
    #[command(after_help = EXIT_CODES)]
    Scan(ScanArgs),
    /// Say whether two photos are near-duplicates, and why (every number behind it).
    Explain(ExplainArgs),
    /// Inspect or clean the embedding cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// List the file formats this build reads (HEIC/AVIF need the `heif` feature).
    Formats(FormatsArgs),
}

#[derive(Debug, clap::Args)]
pub struct FormatsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Identical files and same-pixel copies only.
    Copies,
    /// Plus edited copies (resized, re-encoded, cropped, colour edits).
    Edits,
    /// Plus the same scene shot again, confirmed by a geometric check.
    Similar,
}

impl From<ModeArg> for neardup::decide::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Copies => neardup::decide::Mode::Copies,
            ModeArg::Edits => neardup::decide::Mode::Edits,
            ModeArg::Similar => neardup::decide::Mode::Similar,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The first photo.
    pub a: PathBuf,
    /// The second photo.
    pub b: PathBuf,
    /// How far the grouping reaches.
    #[arg(long, value_enum, default_value_t = ModeArg::Similar)]
    pub mode: ModeArg,
    /// Cosine distance threshold [default: the model's].
    #[arg(long, value_name = "DIST")]
    pub threshold: Option<f32>,
    /// An ONNX model to use instead of the bundled one.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, size on disk and models of the cache.
    Stats(CacheArgs),
    /// Drop entries whose files no longer exist (or changed) and models that are gone.
    Prune(CacheArgs),
}

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    /// The cache database [default: neardup/cache.sqlite in the platform's cache folder].
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Groups for people to read.
    Text,
    /// The full report for scripts (format documented in the README).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Folders (or single photos) to scan, recursively.
    #[arg(required = true, value_name = "DIR")]
    pub roots: Vec<PathBuf>,

    /// Output format [default: text, or json when --output ends in .json].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write the report to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Cosine distance (1 - cos of the embeddings) at or under which two photos
    /// are near-duplicates [default: the model's, 0.21 for the bundled one].
    #[arg(long, value_name = "DIST")]
    pub threshold: Option<f32>,

    /// How far the grouping reaches: copies (identical files, same pixels),
    /// edits (plus edited copies), similar (plus the same scene shot again).
    #[arg(long, value_enum, default_value_t = ModeArg::Similar)]
    pub mode: ModeArg,

    /// Mirrored copies (flipped left to right) count as near-duplicates (one more
    /// embedding per photo).
    #[arg(long)]
    pub mirror: bool,

    /// Inliers the geometric check needs to accept a re-shot of the same scene.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub min_inliers: u32,

    /// Bits per LSH table (k) [default: chosen from the number of photos and the
    /// threshold so that 99% of the pairs under the threshold are found].
    #[arg(long, value_name = "K")]
    pub bits: Option<usize>,

    /// Number of LSH tables (L) [default: chosen with --bits, see above].
    #[arg(long, value_name = "L")]
    pub tables: Option<usize>,

    /// Seed of the random hyperplanes.
    #[arg(long, default_value_t = neardup::scan::DEFAULT_SEED)]
    pub seed: u64,

    /// An ONNX model to use instead of the bundled one; its sidecar (same name,
    /// .json) gives its input size, normalisation and output.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,

    /// The embedding cache database [default: neardup/cache.sqlite in the
    /// platform's cache folder, e.g. ~/.cache on Linux].
    #[arg(long, value_name = "PATH", conflicts_with = "no_cache")]
    pub cache: Option<PathBuf>,

    /// Do not read or write the embedding cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Also scan files and folders whose names start with a dot.
    #[arg(long)]
    pub hidden: bool,

    /// Put the seconds spent in each stage into the JSON report (makes the
    /// report differ from run to run).
    #[arg(long)]
    pub timings: bool,

    /// No progress bars and no summary (warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}
