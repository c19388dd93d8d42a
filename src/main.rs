//! The neardup binary: parse the flags, run the subcommand, exit with its
//! code. The parts live in src/cli.rs and src/cli/.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use cli::exit::{self, ExitCode};
use cli::{apply, cache, decide, explain, formats, generate, report, scan};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print to stdout and succeed; the rest
            // are usage errors.
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::Usage.exit()
            }
            ExitCode::Success.exit()
        }
    };
    // Each subcommand is one function; its error becomes a code in one
    // place (exit::finish, which also says the error on stderr).
    let outcome = match &cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Apply(args) => apply::run_apply(args),
        Command::Undo(args) => apply::run_undo(args),
        Command::Report(args) => report::run(args),
        Command::Cache(cmd) => cache::run(cmd),
        Command::Decide(cmd) => decide::run(cmd),
        Command::Formats(args) => formats::run(args),
        Command::Completions(args) => generate::run_completions(args),
        Command::Man => generate::run_man(),
    };
    exit::finish(outcome).exit()
}
