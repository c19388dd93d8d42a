//! `neardup completions SHELL` and `neardup man`: made from the clap
//! definition (src/cli/args.rs), so they always match the flags.

use super::args::{Cli, CompletionsArgs};
use super::exit::ExitCode;
use super::out::emit;
use clap::CommandFactory;

/// The completion script for one shell.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "neardup", &mut buf);
    buf
}

/// The manual page (roff): `neardup(1)` followed by one page per
/// subcommand (`neardup-scan(1)`, ..., `neardup-cache-stats(1)`), in one
/// stream that `man -l` reads.
pub fn man() -> std::io::Result<Vec<u8>> {
    fn pages(cmd: &clap::Command, buf: &mut Vec<u8>) -> std::io::Result<()> {
        clap_mangen::Man::new(cmd.clone())
            .source(concat!("neardup ", env!("CARGO_PKG_VERSION")))
            .render(buf)?;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages(sub, buf)?;
        }
        Ok(())
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut buf = Vec::new();
    pages(&cmd, &mut buf)?;
    Ok(buf)
}

pub fn run_completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    emit(&completions(args.shell))?;
    Ok(ExitCode::Success)
}

pub fn run_man() -> anyhow::Result<ExitCode> {
    emit(&man()?)?;
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subcommands() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect()
    }

    #[test]
    fn bash_completion_mentions_every_subcommand() {
        let bash = String::from_utf8(completions(clap_complete::Shell::Bash)).unwrap();
        for name in subcommands() {
            assert!(
                bash.contains(&name),
                "{name} missing from the bash completion"
            );
        }
        assert!(bash.contains("--pair-raw-jpeg") && bash.contains("--min-inliers"));
        for shell in [clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            assert!(!completions(shell).is_empty());
        }
    }

    #[test]
    fn man_page_is_roff_naming_each_subcommand() {
        let page = String::from_utf8(man().unwrap()).unwrap();
        assert!(
            page.starts_with(".ie") || page.starts_with(".TH"),
            "{}",
            &page[..80]
        );
        assert!(page.contains(".TH neardup 1"));
        for name in subcommands() {
            assert!(
                page.contains(&format!(".TH neardup-{name} 1")),
                "no page for {name}"
            );
        }
        assert!(page.contains(".TH neardup-cache-prune 1"));
        // Read it with man(1) where there is one (not required).
        let path = std::env::temp_dir().join(format!("neardup-man-{}.1", std::process::id()));
        std::fs::write(&path, &page).unwrap();
        if let Ok(out) = std::process::Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
        {
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("Carry out a plan"), "{text}");
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}
