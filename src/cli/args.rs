//! Command-line interface: the only module that knows clap.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    the scan completed (skipped files are warnings, not failures)
  1    the scan failed while working (for example the report could not be written)
  2    usage error: bad flags, a root that cannot be read, a model that cannot be loaded
  130  interrupted (Ctrl-C)
A closed standard output (`neardup scan DIR | head`) ends the command quietly with
its usual code; a closed standard error is ignored. File names are printed with
control and bidi characters escaped (`\n`, `\x1b`, `\u{202e}`) except in JSON.";

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
    /// Carry out a plan (a scan's JSON report): keep each group's keeper, and
    /// move, trash, link or delete the others. A dry run unless --execute.
    #[command(after_help = APPLY_EXIT_CODES)]
    Apply(ApplyArgs),
    /// Restore what an apply journal records (newest first). A dry run unless --execute.
    #[command(after_help = UNDO_EXIT_CODES)]
    Undo(UndoArgs),
    /// Render a JSON report (`scan --format json`) as text or as an HTML page.
    Report(ReportArgs),
    /// Inspect or clean the embedding cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Decisions that stick: photos that are not duplicates, or a group kept whole.
    /// Stored in the cache by content; every later scan honours them.
    #[command(subcommand)]
    Decide(DecideCommand),
    /// List the file formats this build reads (HEIC/AVIF need the `heif` feature).
    Formats(FormatsArgs),
    /// Print a shell completion script to standard output (see the README to install it).
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to standard output: `neardup man | man -l -`.
    Man,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct FormatsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

const APPLY_EXIT_CODES: &str = "\
Exit codes:
  0    every planned action was done (or, in a dry run, can be done) or skipped
       for a reason it states (changed or gone since the scan, reference folder...)
  1    some actions failed (the files are where they were) or the run stopped early
  2    usage error or a plan that cannot be applied: nothing was touched
  130  interrupted (Ctrl-C): the current file is finished, the journal is complete
A closed standard output (`| head`) does not stop --execute: every file is still done
and journalled, the lines not shown are counted on stderr; a dry run stops quietly (0).";

const UNDO_EXIT_CODES: &str = "\
Exit codes:
  0    everything recorded was restored (or had nothing to restore)
  1    some entries could not be restored (deleted files, something else in the way)
  2    usage error or a file that is not a neardup journal: nothing was touched
  130  interrupted (Ctrl-C)
A closed standard output does not stop --execute (a dry run stops quietly, 0).";

/// Every `Exit codes:` paragraph of `--help` (a test checks them against
/// [`super::exit::ExitCode`]).
#[cfg(test)]
pub const EXIT_CODE_TEXTS: [&str; 3] = [EXIT_CODES, APPLY_EXIT_CODES, UNDO_EXIT_CODES];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    /// Move under --to DIR, keeping the folder structure (never overwrites).
    Move,
    /// Move to the desktop trash.
    Trash,
    /// Replace by a hard link to the keeper (identical files; others need --to).
    Hardlink,
    /// Replace by a symbolic link to the keeper (identical files; others need --to).
    Symlink,
    /// Delete for good (not undoable).
    Delete,
}

impl From<ActionArg> for neardup::apply::Action {
    fn from(a: ActionArg) -> Self {
        use neardup::apply::Action;
        match a {
            ActionArg::Move => Action::Move,
            ActionArg::Trash => Action::Trash,
            ActionArg::Hardlink => Action::Hardlink,
            ActionArg::Symlink => Action::Symlink,
            ActionArg::Delete => Action::Delete,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The plan: a report written by `neardup scan -o plan.json` (may be edited).
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// What to do with the members that are not kept.
    #[arg(long, value_enum)]
    pub action: ActionArg,
    /// Destination folder of move; for hardlink/symlink, where members that are
    /// not byte-identical to the keeper are moved before being linked.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Really do it (otherwise a dry run that changes nothing).
    #[arg(long)]
    pub execute: bool,
    /// The undo journal [default: PLAN's name with .journal.jsonl, next to it;
    /// never overwritten].
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Another folder whose files are always kept (besides the plan's).
    #[arg(long, value_name = "DIR")]
    pub reference: Vec<PathBuf>,
    /// Act only inside this folder (repeatable), instead of the plan's roots.
    /// Needed when the plan's roots are not sealed by its scan (edited, or
    /// scanned by another user).
    #[arg(long = "root", value_name = "DIR")]
    pub roots: Vec<PathBuf>,
    /// Also act on a member that is the RAW+JPEG twin of its group's keeper
    /// (by default the two files of one shot are both kept).
    #[arg(long)]
    pub pair_raw_jpeg: bool,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print only problems and the summary.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct UndoArgs {
    /// The journal written by `neardup apply --execute`.
    #[arg(value_name = "JOURNAL")]
    pub journal: PathBuf,
    /// Really restore (otherwise a dry run that changes nothing).
    #[arg(long)]
    pub execute: bool,
    /// Print the outcome as JSON on stdout.
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

impl From<ModeArg> for neardup::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Copies => neardup::Mode::Copies,
            ModeArg::Edits => neardup::Mode::Edits,
            ModeArg::Similar => neardup::Mode::Similar,
        }
    }
}

/// The flags that decide whether a pair is an edge: `scan` and `explain`
/// take the same ones.
#[derive(Debug, clap::Args)]
pub struct DecisionArgs {
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

    /// The same picture: share of each photo's area (0 to 1) the other must show,
    /// through the geometric check's model, for a pair above same-pixels (panorama
    /// neighbours, a wide shot and its detail show less).
    #[arg(long, value_name = "SHARE", default_value_t = neardup::verify::decide::MIN_COVERAGE)]
    pub min_coverage: f32,

    /// The same picture: the largest cosine distance (0 to 2) allowed between a
    /// quarter of either photo and what the geometric check's model lines it up with
    /// in the other (two photos sharing one object, tile or detail differ elsewhere;
    /// 2 turns the check off).
    #[arg(long, value_name = "D", default_value_t = neardup::verify::decide::MAX_REGION_DISTANCE)]
    pub max_region_distance: f32,

    /// The same picture: the larger of the two shares (0 to 1) must reach this, so
    /// that one frame shows nearly all of the other (a crop, a zoom, a burst) and not
    /// two frames shifted apart (a panorama's neighbours).
    #[arg(long, value_name = "SHARE", default_value_t = neardup::verify::decide::MIN_CONTAINMENT)]
    pub min_containment: f32,

    /// The same picture: the largest cosine distance (0 to 2) allowed between a
    /// quarter of either photo and the same place in the other, the two framed the
    /// same way (a panorama's neighbours, two photos sharing one tile or object
    /// differ there; needs no keypoints; 2 turns the check off).
    #[arg(long, value_name = "D", default_value_t = neardup::verify::decide::MAX_FRAME_DISTANCE)]
    pub max_frame_distance: f32,

    /// Seed of the random hyperplanes.
    #[arg(long, default_value_t = neardup::pipeline::DEFAULT_SEED)]
    pub seed: u64,
}

impl DecisionArgs {
    /// The same-picture rule's flags.
    pub fn same_picture(&self) -> neardup::verify::decide::SamePicture {
        neardup::verify::decide::SamePicture {
            min_coverage: self.min_coverage,
            min_containment: self.min_containment,
            max_region_distance: self.max_region_distance,
            max_frame_distance: self.max_frame_distance,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The first photo.
    pub a: PathBuf,
    /// The second photo.
    pub b: PathBuf,
    #[command(flatten)]
    pub decision: DecisionArgs,
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

#[derive(Debug, clap::Subcommand)]
pub enum DecideCommand {
    /// These photos are not duplicates of each other: no scan groups any two of them again.
    NotDuplicates(DecidePhotosArgs),
    /// Keep all of these photos: no scan offers to remove one of them for another.
    KeepAll(DecidePhotosArgs),
    /// Store the decisions of a plan (`"decision"` set on a group of a scan's
    /// JSON report) or of `decide list --json`.
    Import(DecideImportArgs),
    /// The stored decisions.
    List(CacheArgs),
    /// Remove stored decisions by number (as `decide list` shows them).
    Forget(DecideForgetArgs),
}

#[derive(Debug, clap::Args)]
pub struct DecidePhotosArgs {
    /// The photos (two or more); their contents are what is remembered.
    #[arg(required = true, num_args = 2.., value_name = "PHOTO")]
    pub photos: Vec<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, clap::Args)]
pub struct DecideImportArgs {
    /// A scan's JSON report with groups marked `"decision": "not-duplicates"`
    /// or `"keep-all"`, or the output of `decide list --json`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, clap::Args)]
pub struct DecideForgetArgs {
    /// The decisions' numbers.
    #[arg(value_name = "ID", required_unless_present = "all")]
    pub ids: Vec<u64>,
    /// Forget every decision.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
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
    /// One self-contained HTML page with thumbnails, to look before deleting.
    Html,
}

impl Format {
    /// The format an output file's extension asks for: .json, .html/.htm.
    pub fn from_output(path: Option<&std::path::Path>) -> Option<Format> {
        let ext = path?.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A JSON report written by `neardup scan --format json`.
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,

    /// Output format [default: text, or as --output's extension says (.json, .html)].
    /// HTML thumbnails are made from the files as they are now, read from the
    /// paths in the report (relative paths from the current folder).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Folders (or single photos) to scan, recursively.
    #[arg(required = true, value_name = "DIR")]
    pub roots: Vec<PathBuf>,

    /// Output format [default: text, or as --output's extension says (.json, .html)].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write the report to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub decision: DecisionArgs,

    /// Bits per LSH table (k) [default: chosen from the number of photos and the
    /// threshold so that 99% of the pairs under the threshold are found].
    #[arg(long, value_name = "K")]
    pub bits: Option<usize>,

    /// Number of LSH tables (L) [default: chosen with --bits, see above].
    #[arg(long, value_name = "L")]
    pub tables: Option<usize>,

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

    /// Group as if no decisions were stored (`neardup decide`): show every group.
    #[arg(long)]
    pub ignore_decisions: bool,

    /// Worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Also scan files and folders whose names start with a dot.
    #[arg(long)]
    pub hidden: bool,

    /// Decode every pixel of every photo (JPEGs at full size with the same
    /// decoder, no reduced-scale decode) and skip the cache: slow; for checking that the fast path gives the same
    /// groups (bench/throughput.py does).
    #[arg(long, hide = true)]
    pub plain_decode: bool,

    /// How each group's keeper is chosen: criteria in order, comma-separated
    /// (pixels, largest, smallest, format, exif, oldest, newest, path); the
    /// default ones not named follow [default: pixels,largest,format,exif,oldest,path].
    #[arg(long, value_name = "LIST")]
    pub keep: Option<String>,

    /// A folder whose files are always kept and never touched by apply (scanned
    /// too). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub reference: Vec<PathBuf>,

    /// Put the seconds spent in each stage into the JSON report (makes the
    /// report differ from run to run).
    #[arg(long)]
    pub timings: bool,

    /// No progress bars and no summary (warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every argument of every subcommand (hidden ones aside) says what it
    /// is for in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for s in cmd.get_subcommands() {
                if s.get_about().is_none() && s.get_long_about().is_none() {
                    missing.push(format!("{path} {}", s.get_name()));
                }
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "neardup", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    /// The lines of `neardup apply --help` from the flag's line to the next
    /// flag's.
    fn help_of(help: &str, flag: &str) -> String {
        let mut lines = help
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(flag));
        let first = lines.next().unwrap_or_default().to_string();
        let rest: Vec<&str> = lines
            .take_while(|l| !l.trim_start().starts_with('-') && !l.trim().is_empty())
            .collect();
        format!("{first}\n{}", rest.join("\n"))
    }

    /// `--pair-raw-jpeg` and `--json` each show their own text.
    #[test]
    fn apply_help_gives_each_flag_its_own_text() {
        let mut cmd = Cli::command();
        let apply = cmd.find_subcommand_mut("apply").expect("apply");
        let help = apply.render_long_help().to_string();
        let pair = help_of(&help, "--pair-raw-jpeg");
        assert!(pair.contains("RAW+JPEG twin"), "{pair}");
        assert!(!pair.contains("JSON"), "{pair}");
        let json = help_of(&help, "--json");
        assert!(json.contains("Print the outcome as JSON"), "{json}");
    }
}
