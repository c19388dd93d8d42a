//! The sample album's reports, byte for byte, against the ones checked in
//! under `tests/expected/`: a restructure or a refactor must not change a
//! single byte of what a scan writes.
//!
//! The album is copied into a temporary folder with fixed modification
//! times and scanned from there by a relative path, with a fixed seal key,
//! so the report depends only on the photos and the code. After a change
//! that is meant to alter the report, rewrite the expected files with
//! `NEARDUP_BLESS=1 cargo test --test golden` and review their diff.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The seal key of these scans (32 bytes), so that `roots_seal` is fixed.
const SEAL_KEY: &[u8; 32] = b"neardup golden report test key!!";

/// Copy `from` into `to`, every file with the same fixed modification time.
fn copy_fixed(from: &Path, to: &Path) {
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
    std::fs::create_dir_all(to).unwrap();
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for src in entries {
        let dst = to.join(src.file_name().unwrap());
        if src.is_dir() {
            copy_fixed(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
            let f = std::fs::File::options().write(true).open(&dst).unwrap();
            f.set_modified(when).unwrap();
        }
    }
}

/// Scan the fixed copy of the album with `extra` flags; the JSON report.
fn scan_fixed(extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    copy_fixed(&album(), &dir.path().join("album"));
    let key = dir.path().join("seal.key");
    std::fs::write(&key, SEAL_KEY).unwrap();
    let mut args = vec!["scan", "album", "--no-cache", "--format", "json"];
    args.extend_from_slice(extra);
    let out = bin()
        .current_dir(dir.path())
        .env("NEARDUP_SEAL_KEY", &key)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compare with `tests/expected/NAME`, or rewrite it with `NEARDUP_BLESS=1`.
fn check(name: &str, got: &[u8]) {
    let path = repo().join("tests/expected").join(name);
    if std::env::var_os("NEARDUP_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if got != want.as_slice() {
        let kept = std::env::temp_dir().join(format!("neardup-golden-{name}"));
        std::fs::write(&kept, got).unwrap();
        let (g, w) = (String::from_utf8_lossy(got), String::from_utf8_lossy(&want));
        let line = g
            .lines()
            .zip(w.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(g.lines().count().min(w.lines().count()));
        panic!(
            "the report differs from {} from line {} on (got {}, want {}); \
             the whole report is in {}",
            path.display(),
            line + 1,
            g.lines().nth(line).unwrap_or("<end>"),
            w.lines().nth(line).unwrap_or("<end>"),
            kept.display()
        );
    }
}

#[test]
fn the_album_report_is_byte_identical_to_the_expected_one() {
    check("album.json", &scan_fixed(&[]));
}

#[test]
fn the_album_report_in_edits_mode_with_mirrors_is_byte_identical_to_the_expected_one() {
    check(
        "album-edits-mirror.json",
        &scan_fixed(&["--mode", "edits", "--mirror"]),
    );
}
