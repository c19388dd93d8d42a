//! Bad input: skipped with a warning and listed, never a panic or a hang.

mod common;
use common::*;
use image::ImageFormat;
use neardup::decode::SkipKind;
use std::path::Path;

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn kinds(report: &neardup::report::Report, root: &Path) -> Vec<(String, SkipKind)> {
    report
        .stats
        .skipped
        .iter()
        .map(|s| {
            (
                Path::new(&s.path)
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                s.kind,
            )
        })
        .collect()
}

#[test]
fn junk_files_are_skipped_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let photo = load(&album().join("day1/DSC_0045.JPG"));
    save(&photo, &root.join("good.jpg"), ImageFormat::Jpeg);
    let good = std::fs::read(root.join("good.jpg")).unwrap();
    std::fs::write(root.join("truncated.jpg"), &good[..good.len() / 3]).unwrap();
    std::fs::write(root.join("empty.jpg"), b"").unwrap();
    std::fs::write(
        root.join("page.jpg"),
        b"<!DOCTYPE html>\n<html><body>Not found</body></html>\n",
    )
    .unwrap();
    std::fs::write(root.join("notes.txt"), b"keep the blue ones\n").unwrap();
    // A PNG named .jpg is a photo: the bytes decide.
    save(&photo, &root.join("really_png.jpg"), ImageFormat::Png);
    // A decompression bomb: a tiny PNG whose header claims 100000 x 100000.
    let mut bomb = std::fs::read(root.join("really_png.jpg")).unwrap();
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(root.join("bomb.png"), &bomb[..200]).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("missing.jpg"), root.join("broken_link.jpg")).unwrap();
        // A named pipe must not hang the scan.
        let fifo = root.join("pipe.jpg");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok || !fifo.exists());
    }

    let (code, out, err) = run(&["scan", "--format", "json", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let report = neardup::report::read_json(&out).unwrap();
    let got = kinds(&report, root);
    let mut want = vec![
        ("bomb.png".to_string(), SkipKind::TooLarge),
        ("empty.jpg".to_string(), SkipKind::NotAnImage),
        ("notes.txt".to_string(), SkipKind::NotAnImage),
        ("page.jpg".to_string(), SkipKind::NotAnImage),
        ("truncated.jpg".to_string(), SkipKind::Corrupt),
    ];
    if cfg!(unix) {
        want.push(("broken_link.jpg".to_string(), SkipKind::BrokenSymlink));
        want.sort();
    }
    assert_eq!(got, want, "{err}");
    let page = report
        .stats
        .skipped
        .iter()
        .find(|s| s.path.ends_with("page.jpg"))
        .unwrap();
    assert!(page.reason.contains("HTML"), "{}", page.reason);
    // One line of warning per skipped file, naming it.
    for (name, _) in &want {
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning: ") && l.contains(name.as_str())),
            "{name}: {err}"
        );
    }
    assert!(!err.contains("panicked"));
    // The two real photos (one a PNG named .jpg) are one group.
    assert_eq!(
        groups_rel(&report, root),
        vec![vec!["good.jpg".to_string(), "really_png.jpg".to_string()]]
    );
    let png = report.groups[0]
        .members
        .iter()
        .find(|m| m.path.ends_with("really_png.jpg"))
        .unwrap();
    assert_eq!(png.format, "png");
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_skipped() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("locked.jpg");
    save(
        &load(&album().join("day1/DSC_0045.JPG")),
        &f,
        ImageFormat::Jpeg,
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&f).is_ok() {
        // Running as root: permissions do not stop reads, nothing to test.
        eprintln!("skipped: permissions are not enforced for this user");
        return;
    }
    let report = scan_json(&[dir.path().to_str().unwrap()]);
    assert_eq!(report.stats.skipped.len(), 1);
    assert_eq!(report.stats.skipped[0].kind, SkipKind::Unreadable);
}

#[test]
fn missing_root_is_a_usage_error() {
    let (code, out, err) = run(&["scan", "/definitely/not/here"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("/definitely/not/here") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn empty_folder_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "No near-duplicates found.\n");
    assert!(err.contains("no files found under"), "{err}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let root = album();
    let r = root.to_str().unwrap();
    for args in [
        vec!["scan", "--threshold", "3", r],
        vec!["scan", "--bits", "0", r],
        vec!["scan", "--bits", "65", r],
        vec!["scan", "--tables", "0", r],
        vec!["scan", "--threads", "0", r],
        vec!["scan", "--format", "xml", r],
        vec!["scan"],
        vec!["frobnicate"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty());
    }
    let (code, out, _) = run(&["scan", "--help"]);
    assert_eq!(code, 0);
    for word in [
        "--threshold",
        "--bits",
        "--tables",
        "--seed",
        "--model",
        "--threads",
        "--quiet",
        "Exit codes",
        "130",
    ] {
        assert!(out.contains(word), "--help lacks {word}");
    }
}

#[test]
fn model_problems_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    std::fs::write(&model, b"garbage").unwrap();
    let (code, _, err) = run(&[
        "scan",
        "--model",
        model.to_str().unwrap(),
        album().to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("sidecar"), "{err}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_exits_130() {
    use std::time::{Duration, Instant};
    // A folder big enough that the scan is still running when the signal comes.
    let dir = tempfile::tempdir().unwrap();
    let photo = load(&album().join("day1/DSC_0045.JPG"));
    for i in 0..300 {
        save(
            &photo,
            &dir.path().join(format!("p{i:03}.png")),
            ImageFormat::Png,
        );
    }
    let child = bin()
        .args([
            "scan",
            "--quiet",
            "--no-cache",
            dir.path().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
}

#[test]
fn many_non_photos_are_counted_not_listed_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..15 {
        std::fs::write(dir.path().join(format!("note{i:02}.txt")), b"not a photo\n").unwrap();
    }
    // A file named like a photo always gets its own warning.
    std::fs::write(dir.path().join("zz_fake.jpg"), b"not a photo\n").unwrap();
    let (code, out, err) = run(&[
        "scan",
        "--no-cache",
        "--format",
        "json",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let report = neardup::report::read_json(&out).unwrap();
    assert_eq!(
        report.stats.skipped.len(),
        16,
        "all are listed in the report"
    );
    let warnings = err
        .lines()
        .filter(|l| l.starts_with("warning: ") && l.contains("not an image"))
        .count();
    assert_eq!(warnings, 11, "{err}");
    assert!(err.contains("zz_fake.jpg: not an image"), "{err}");
    assert!(
        err.contains("warning: 5 more files are not photos"),
        "{err}"
    );
}
