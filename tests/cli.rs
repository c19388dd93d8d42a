//! The binary's exit codes (src/cli/exit.rs), completions and man page.

mod common;

use common::{album, bin, run};
use std::process::Stdio;

/// Run with standard output on /dev/full (every write fails with ENOSPC);
/// `None` where there is no /dev/full.
fn code_with_full_stdout(args: &[&str]) -> Option<(i32, String)> {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .ok()?;
    let out = bin()
        .args(args)
        .stdout(Stdio::from(full))
        .output()
        .expect("run neardup");
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn help_and_version_succeed_bad_flags_are_usage_errors() {
    assert_eq!(run(&["--help"]).0, 0);
    assert_eq!(run(&["--version"]).0, 0);
    assert_eq!(run(&["apply", "--help"]).0, 0);
    assert_eq!(run(&["scan"]).0, 2);
    assert_eq!(run(&["no-such-command"]).0, 2);
    assert_eq!(run(&["scan", "--mode", "nonsense", "x"]).0, 2);
}

#[test]
fn unusable_inputs_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let (code, _, err) = run(&["report", missing]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["apply", missing, "--action", "trash"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["undo", missing]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["cache", "stats", "--cache", missing]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["scan", "--threads", "0", missing]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("neardup: error: "), "{err}");
}

/// Standard output that cannot be written is a failure while working (1)
/// for every command; `explain` and `cache` used to say 2 for it.
#[test]
fn a_full_standard_output_is_a_failure_while_working() {
    let a = album().join("day1/DSC_0042.JPG");
    let b = album().join("day1/edits/DSC_0042_web.jpg");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for args in [
        vec!["formats"],
        vec!["explain", a, b],
        vec!["completions", "bash"],
        vec!["man"],
    ] {
        let Some((code, err)) = code_with_full_stdout(&args) else {
            return;
        };
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn completions_and_man_page_go_to_stdout() {
    let (code, out, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    for sub in [
        "scan", "explain", "apply", "undo", "report", "cache", "formats", "man",
    ] {
        assert!(out.contains(sub), "{sub}");
    }
    let (code, out, _) = run(&["completions", "fish"]);
    assert_eq!(code, 0);
    assert!(out.contains("complete -c neardup"));
    assert_eq!(run(&["completions", "no-such-shell"]).0, 2);
    let (code, out, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(".TH neardup 1"),
        "{}",
        &out[..200.min(out.len())]
    );
}
