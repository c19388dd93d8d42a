//! The exit codes of every command, documented once, and the one
//! conversion from an error to a code.

use super::out::log_error;

/// Every code `neardup` exits with. The README's "Exit codes" table and the
/// `Exit codes:` paragraphs of `--help` (src/cli/args.rs) say the same; a
/// test checks that they name no other code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: the command did what was asked. Skipped files (scan) and skips
    /// for a stated reason (apply) are warnings, not failures; so is a
    /// closed standard output (`| head`).
    Success,
    /// 1: a failure while working: the report or standard output could not
    /// be written, some of apply's actions failed or the run stopped early,
    /// some of undo's entries could not be restored.
    Failure,
    /// 2: usage error: bad flags, a root that cannot be read, a model that
    /// cannot be loaded, a bad parameter, a plan or journal that cannot be
    /// used, a cache that cannot be opened. Nothing was touched.
    Usage,
    /// 130: interrupted (Ctrl-C; a second Ctrl-C leaves at once).
    Interrupted,
}

impl ExitCode {
    /// Every code, in increasing order.
    #[cfg(test)]
    pub const ALL: [ExitCode; 4] = [
        ExitCode::Success,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::Interrupted,
    ];

    /// The number the process exits with.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Interrupted => 130,
        }
    }

    /// Leave the process with this code.
    pub fn exit(self) -> ! {
        std::process::exit(self.code())
    }
}

/// An error of the binary's own that is the user's doing (like the
/// library's usage errors, [`neardup::Error::is_usage`]): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A usage error with this message.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The one conversion from an error to an exit code, for every command:
/// the library's [`neardup::Error`] says whether it is the user's doing or
/// an interruption, [`UsageError`] marks the binary's own usage errors, and
/// anything else (standard output or the report cannot be written) is a
/// failure while working.
impl From<&anyhow::Error> for ExitCode {
    fn from(e: &anyhow::Error) -> ExitCode {
        if let Some(err) = e.downcast_ref::<neardup::Error>() {
            return match err {
                neardup::Error::Cancelled => ExitCode::Interrupted,
                err if err.is_usage() => ExitCode::Usage,
                _ => ExitCode::Failure,
            };
        }
        if e.downcast_ref::<UsageError>().is_some() {
            return ExitCode::Usage;
        }
        ExitCode::Failure
    }
}

/// A command's result as an exit code; an error is said on stderr first
/// (an interruption as `neardup: interrupted`).
pub fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = ExitCode::from(&e);
            if code == ExitCode::Interrupted {
                eprintln!("neardup: interrupted");
            } else {
                log_error(&format!("neardup: error: {e:#}"));
            }
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    fn code(e: anyhow::Error) -> i32 {
        ExitCode::from(&e).code()
    }

    #[test]
    fn library_errors_map_by_kind() {
        assert_eq!(code(neardup::Error::Param("x".into()).into()), 2);
        assert_eq!(code(neardup::Error::Plan("x".into()).into()), 2);
        assert_eq!(code(neardup::Error::Model("x".into()).into()), 2);
        assert_eq!(code(neardup::Error::Inference("x".into()).into()), 1);
        assert_eq!(
            code(neardup::Error::Io(std::io::Error::other("x")).into()),
            1
        );
        assert_eq!(code(neardup::Error::Cancelled.into()), 130);
    }

    #[test]
    fn context_does_not_hide_the_kind() {
        let e = anyhow::Error::from(neardup::Error::Param("x".into())).context("while y");
        assert_eq!(code(e), 2);
        let e: anyhow::Result<()> = Err(usage("no cache folder"));
        assert_eq!(code(e.context("cache").unwrap_err()), 2);
    }

    /// The failure `report` and `explain` disagreed on (1 and 2): an error
    /// that is neither the library's nor a usage error, such as standard
    /// output that cannot be written. It is a failure while working (1),
    /// as documented.
    #[test]
    fn other_errors_are_failures_while_working() {
        let io: anyhow::Result<()> = Err(std::io::Error::other("no space left on device").into());
        assert_eq!(
            code(io.context("cannot write to standard output").unwrap_err()),
            1
        );
        assert_eq!(code(anyhow::anyhow!("something else")), 1);
    }

    #[test]
    fn codes_are_distinct_and_ordered() {
        let codes: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, [0, 1, 2, 130]);
    }

    /// Every `Exit codes:` paragraph of `--help` and the README's table
    /// name only the codes of [`ExitCode`], and the README names them all.
    #[test]
    fn help_and_readme_name_the_same_codes() {
        let known: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        for text in super::super::args::EXIT_CODE_TEXTS {
            let listed = text
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("  ")?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()
                })
                .collect::<Vec<i32>>();
            assert_eq!(listed, known, "{text}");
        }
        let readme = include_str!("../../README.md");
        let table = readme
            .split("### Exit codes")
            .nth(1)
            .expect("README has an Exit codes section");
        let rows: Vec<i32> = table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                l.trim_start_matches('|')
                    .split('|')
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(rows, known);
    }
}
