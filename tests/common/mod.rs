//! Helpers shared by the integration tests: run the built binary, make
//! photos and junk files.

#![allow(dead_code)]

use image::{ImageFormat, RgbImage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where a test process keeps its own files: under cargo's `target/tmp`, so
/// that they do not pile up in the system's temporary folder.
fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The binary, with its default cache in a folder of this test process (so
/// that tests never touch the user's cache or each other's).
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_neardup"));
    let cache_home = scratch().join(format!("neardup-test-cache-{}", std::process::id()));
    c.env("XDG_CACHE_HOME", cache_home);
    // The key that seals a scan's roots: this test process's, never the user's.
    c.env("NEARDUP_SEAL_KEY", seal_key());
    c
}

/// The seal key file of this test process (scan and apply agree on it).
pub fn seal_key() -> PathBuf {
    scratch().join(format!("neardup-test-seal-{}.key", std::process::id()))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn album() -> PathBuf {
    repo().join("samples/album")
}

/// Run the binary; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out: Output = bin().args(args).output().expect("run neardup");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Scan with `--format json` and parse the report into typed structs.
pub fn scan_json(args: &[&str]) -> neardup::report::Report {
    let mut all = vec!["scan", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "stderr: {err}");
    neardup::report::read_json(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

/// Groups as sorted lists of file names relative to `root`.
pub fn groups_rel(report: &neardup::report::Report, root: &Path) -> Vec<Vec<String>> {
    let mut g: Vec<Vec<String>> = report
        .groups
        .iter()
        .map(|g| {
            let mut v: Vec<String> = g
                .files
                .iter()
                .map(|f| {
                    Path::new(f)
                        .strip_prefix(root)
                        .unwrap_or(Path::new(f))
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            v.sort();
            v
        })
        .collect();
    g.sort();
    g
}

pub fn load(path: &Path) -> RgbImage {
    image::open(path).unwrap().into_rgb8()
}

pub fn save(img: &RgbImage, path: &Path, fmt: ImageFormat) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_with_format(path, fmt).unwrap();
}

pub fn save_jpeg_quality(img: &RgbImage, path: &Path, quality: u8) {
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .encode_image(img)
        .unwrap();
    std::fs::write(path, buf).unwrap();
}
