//! Standard output and standard error: escaped log lines, the whole output
//! of a command, and line-by-line output that survives a closed pipe.

use super::exit::ExitCode;
use anyhow::Context;
use neardup::report;
use std::io::Write;

/// One line on standard error (a warning, a summary, an error), passed
/// through [`report::escape_name`] so that a file name in it cannot forge a
/// line or send terminal controls. Errors are ignored: a closed or broken
/// stderr (`2>&1 >/dev/null | head -1`) never stops or breaks the work.
pub fn log(line: &str) {
    let mut text = report::escape_name(line).into_owned();
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// An error that may span lines (a refused plan lists its problems one per
/// line): each line escaped by itself, the line breaks kept.
pub fn log_error(message: &str) {
    let mut text = String::new();
    for line in message.split('\n') {
        text.push_str(&report::escape_name(line));
        text.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// This binary's `eprintln!` shadows the standard one, which panics when
/// stderr is closed: the same `format!` arguments, written by [`log`]
/// (escaped, errors ignored). Every line this binary writes to stderr goes
/// through it (`#[macro_use]` in src/cli.rs puts it in scope of every
/// module of the binary declared after it).
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::cli::out::log(&format!($($arg)*))
    };
}

/// `writeln!` into a `String` (which cannot fail), as a statement.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Write a command's whole output to standard output. A reader that went
/// away (`neardup scan DIR | head -1`) is not an error: the rest is dropped
/// and the command ends quietly with its usual exit code (0), as ripgrep
/// does. Any other write error (a full disk behind `>`) is an error.
pub fn emit(text: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

/// Standard output line by line, for `apply` and `undo`, which must not stop
/// in the middle of a file because a line cannot be written. After the first
/// failed write (a closed pipe or another error) the output counts as closed:
/// later lines are only counted, and the caller decides what to do.
pub struct Lines {
    out: std::io::StdoutLock<'static>,
    pub closed: bool,
    pub dropped: u64,
    /// The first error that was not a closed pipe.
    pub error: Option<std::io::Error>,
}

impl Lines {
    pub fn new() -> Lines {
        Lines {
            out: std::io::stdout().lock(),
            closed: false,
            dropped: 0,
            error: None,
        }
    }

    /// Write `text` and a newline (`text` is already escaped, or JSON).
    pub fn line(&mut self, text: &str) {
        if !self.closed {
            let written = self
                .out
                .write_all(text.as_bytes())
                .and_then(|()| self.out.write_all(b"\n"))
                .and_then(|()| self.out.flush());
            match written {
                Ok(()) => return,
                Err(e) => {
                    self.closed = true;
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        self.error = Some(e);
                    }
                }
            }
        }
        self.dropped += 1;
    }

    /// The exit code of a dry run whose reader went away: nobody reads the
    /// plan any more, so it stops quietly (0, or 1 for another write error),
    /// without a summary of a partial dry run. `None` while output works.
    pub fn dry_run_abandoned(&self) -> Option<ExitCode> {
        if !self.closed {
            return None;
        }
        Some(match &self.error {
            Some(e) => {
                eprintln!("neardup: error: cannot write to standard output: {e}");
                ExitCode::Failure
            }
            None => ExitCode::Success,
        })
    }
}
