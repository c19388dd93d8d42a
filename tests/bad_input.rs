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
        want.push(("pipe.jpg".to_string(), SkipKind::NotAFile));
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

#[cfg(unix)]
#[test]
fn a_root_whose_name_is_not_utf8_is_a_usage_error() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(OsStr::from_bytes(b"album\xff"));
    std::fs::create_dir(&root).unwrap();
    std::fs::copy(album().join("day1/DSC_0045.JPG"), root.join("a.jpg")).unwrap();
    let out = bin()
        .args(["scan", "--no-cache"])
        .arg(&root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("album") && err.contains("not valid UTF-8"),
        "{err}"
    );
    assert!(!err.contains('\u{fffd}'), "{err}");
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

/// Run the binary, failing the test if it has not finished within `secs`
/// (a hang is the bug): (exit code, stdout, stderr).
fn run_within(args: &[&str], secs: u64) -> (i32, String, String) {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let mut child = bin()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drained on threads so that a full pipe cannot stall the child.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        so.read_to_string(&mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        se.read_to_string(&mut s).ok();
        s
    });
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(secs) {
            child.kill().ok();
            child.wait().ok();
            panic!("neardup {args:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    )
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[cfg(unix)]
#[test]
fn special_files_huge_files_and_non_utf8_names_are_skipped_fast() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let photo = load(&album().join("day1/DSC_0045.JPG"));
    save(&photo, &root.join("good.jpg"), ImageFormat::Jpeg);
    save(&photo, &root.join("good_copy.png"), ImageFormat::Png);
    let good = std::fs::read(root.join("good.jpg")).unwrap();
    // A FIFO named like a photo, a link to an endless device.
    mkfifo(&root.join("x.jpg"));
    std::os::unix::fs::symlink("/dev/zero", root.join("z.jpg")).unwrap();
    // A sparse 3.9 GB "JPEG": a real JPEG's first bytes, then a hole.
    let big = std::fs::File::create(root.join("big.jpg")).unwrap();
    std::io::Write::write_all(&mut &big, &good[..4096]).unwrap();
    big.set_len(3_900_000_000).unwrap();
    drop(big);
    // Two names that differ only in bytes that are not UTF-8.
    for name in [&b"a\xff.jpg"[..], b"a\xfe.jpg"] {
        std::fs::write(root.join(OsStr::from_bytes(name)), &good).unwrap();
    }
    let (code, out, err) = run_within(
        &[
            "scan",
            "--no-cache",
            "--threads",
            "2",
            "--format",
            "json",
            root.to_str().unwrap(),
        ],
        60,
    );
    assert_eq!(code, 0, "{err}");
    let report = neardup::report::read_json(&out).unwrap();
    assert_eq!(
        kinds(&report, root),
        vec![
            ("a\\xfe.jpg".to_string(), SkipKind::NonUtf8Name),
            ("a\\xff.jpg".to_string(), SkipKind::NonUtf8Name),
            ("big.jpg".to_string(), SkipKind::TooLarge),
            ("x.jpg".to_string(), SkipKind::NotAFile),
            ("z.jpg".to_string(), SkipKind::NotAFile),
        ],
        "{err}"
    );
    // Text output escapes the name once more (a backslash before `x` is
    // doubled, so that it cannot be read as an escape): `a\\xff.jpg`.
    for (name, what) in [
        ("a\\\\xff.jpg", "not UTF-8"),
        ("a\\\\xfe.jpg", "not UTF-8"),
        ("big.jpg", "too large"),
        ("x.jpg", "FIFO"),
        ("z.jpg", "device"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning: ") && l.contains(name) && l.contains(what)),
            "{name}: {err}"
        );
    }
    assert!(!err.contains("panicked"));
    // The rest of the folder is scanned.
    assert_eq!(
        groups_rel(&report, root),
        vec![vec!["good.jpg".to_string(), "good_copy.png".to_string()]]
    );
}

#[cfg(unix)]
#[test]
fn html_report_does_not_hang_on_a_member_that_became_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    std::fs::create_dir(&root).unwrap();
    let photo = load(&album().join("day1/DSC_0045.JPG"));
    save(&photo, &root.join("a.jpg"), ImageFormat::Jpeg);
    save(&photo, &root.join("b.png"), ImageFormat::Png);
    let json = dir.path().join("r.json");
    let (code, _, err) = run(&[
        "scan",
        "--no-cache",
        "-o",
        json.to_str().unwrap(),
        root.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(root.join("b.png")).unwrap();
    mkfifo(&root.join("b.png"));
    let (code, page, err) = run_within(&["report", json.to_str().unwrap(), "--format", "html"], 60);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("b.png: no thumbnail: cannot read: not a regular file (a FIFO)"),
        "{err}"
    );
    assert!(page.contains("No preview"), "{err}");
}

#[cfg(unix)]
#[test]
fn explain_and_model_refuse_devices_fast() {
    let photo = album().join("day1/DSC_0045.JPG");
    let (code, _, err) = run_within(&["explain", "/dev/zero", photo.to_str().unwrap()], 60);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    let (code, _, err) = run_within(
        &["scan", "--model", "/dev/zero", album().to_str().unwrap()],
        30,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file (a device)"), "{err}");
}
