//! Every format a photographer has: HEIC/AVIF (with the `heif` feature),
//! RAW files through their previews, TIFF 8/16-bit and multi-page, BMP,
//! GIF and WebP (lossy, lossless, animated). Fixtures: tests/formats/
//! (made by tests/formats/make_fixtures.py, see its README).

mod common;

use common::{repo, run, scan_json};
use image::{DynamicImage, ImageFormat};
use neardup::decode::{self, Geometry, Limits, SkipKind};
use neardup::Label;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    repo().join("tests/formats")
}

/// (file, format) of every fixture that shows the photo; HEIC and AVIF
/// only when this build reads them.
fn readable() -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("twin.jpg", "jpeg"),
        ("lossy.webp", "webp"),
        ("lossless.webp", "webp"),
        ("animated.webp", "webp"),
        ("animated.gif", "gif"),
        ("multipage.tif", "tiff"),
        ("shot.dng", "dng"),
        ("DSC_0042.NEF", "nef"),
        ("shot.arw", "arw"),
        ("shot.cr2", "cr2"),
        ("shot.cr3", "cr3"),
        ("shot.orf", "orf"),
        ("shot.raf", "raf"),
        ("shot.rw2", "rw2"),
    ];
    if cfg!(feature = "heif") {
        v.extend([
            ("photo.heic", "heic"),
            ("rotated.heic", "heic"),
            ("photo.avif", "avif"),
            ("rotated.avif", "avif"),
        ]);
    }
    v
}

const HEIF_FILES: [&str; 4] = ["photo.heic", "rotated.heic", "photo.avif", "rotated.avif"];

/// The twin decoded as the test makes further copies of it.
fn twin() -> DynamicImage {
    image::open(fixtures().join("twin.jpg")).unwrap()
}

/// 16-bit TIFF and BMP copies of the twin, made here (the image crate
/// writes both).
fn write_generated(dir: &Path) {
    DynamicImage::ImageRgb16(twin().into_rgb16())
        .save_with_format(dir.join("sixteen.tif"), ImageFormat::Tiff)
        .unwrap();
    twin()
        .into_rgb8()
        .save_with_format(dir.join("copy.bmp"), ImageFormat::Bmp)
        .unwrap();
}

#[test]
fn every_format_decodes_upright_and_looks_like_its_twin() {
    let geo = Geometry {
        shorter_side: 96,
        width: 96,
        height: 96,
    };
    let read = |p: &Path| std::fs::read(p).unwrap();
    let twin =
        decode::prepare(&read(&fixtures().join("twin.jpg")), geo, Limits::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_generated(dir.path());
    let mut files: Vec<(PathBuf, &str)> = readable()
        .into_iter()
        .map(|(f, fmt)| (fixtures().join(f), fmt))
        .collect();
    files.push((dir.path().join("sixteen.tif"), "tiff"));
    files.push((dir.path().join("copy.bmp"), "bmp"));
    for (path, fmt) in files {
        let p = decode::prepare(&read(&path), geo, Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        assert_eq!(p.format.name(), fmt, "{}", path.display());
        // Displayed size: the RAW previews and the rotated HEIC/AVIF are
        // stored sideways (128x192).
        assert_eq!((p.width, p.height), (192, 128), "{}", path.display());
        let mean = p
            .rgb
            .iter()
            .zip(&twin.rgb)
            .map(|(a, b)| (*a as i64 - *b as i64).abs())
            .sum::<i64>() as f64
            / p.rgb.len() as f64;
        // Upside down or mirrored would be far over this.
        assert!(mean < 10.0, "{}: mean abs diff {mean}", path.display());
    }
}

#[test]
fn scan_groups_every_format_with_its_jpeg_twin_and_labels_raw_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    for (f, _) in readable() {
        std::fs::copy(fixtures().join(f), dir.path().join(f)).unwrap();
    }
    for f in HEIF_FILES {
        std::fs::copy(fixtures().join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(
        fixtures().join("nopreview.dng"),
        dir.path().join("nopreview.dng"),
    )
    .unwrap();
    // The camera JPEG of DSC_0042.NEF.
    std::fs::copy(fixtures().join("twin.jpg"), dir.path().join("DSC_0042.JPG")).unwrap();
    write_generated(dir.path());
    let root = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["scan", "--format", "json", "--no-cache", root]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let report = neardup::report::read_json(&out).unwrap();

    // One group holds every readable file.
    assert_eq!(report.groups.len(), 1, "{:#?}", report.groups);
    let g = &report.groups[0];
    let mut expected: Vec<String> = readable().iter().map(|(f, _)| f.to_string()).collect();
    expected.extend(["DSC_0042.JPG", "sixteen.tif", "copy.bmp"].map(String::from));
    let mut names: Vec<String> = g
        .members
        .iter()
        .map(|m| {
            Path::new(&m.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    expected.sort();
    names.sort();
    assert_eq!(names, expected);
    for m in &g.members {
        assert_eq!((m.width, m.height), (192, 128), "{}", m.path);
    }
    let nef = g.members.iter().find(|m| m.path.ends_with(".NEF")).unwrap();
    assert_eq!(nef.format, "nef");

    // The RAW and the camera JPEG of the same shot are a raw+jpeg pair;
    // nothing else is.
    let raw_pairs: Vec<_> = g.pairs.iter().filter(|p| p.raw_jpeg_pair).collect();
    assert_eq!(raw_pairs.len(), 1, "{:#?}", g.pairs);
    let p = raw_pairs[0];
    assert_eq!(p.label, Label::RawJpeg);
    let mut ends = [p.a.as_str(), p.b.as_str()].map(|s| s.rsplit('/').next().unwrap());
    ends.sort();
    assert_eq!(ends, ["DSC_0042.JPG", "DSC_0042.NEF"]);
    assert!(g.raw_jpeg_pair);
    assert!(g
        .pairs
        .iter()
        .all(|p| p.raw_jpeg_pair == (p.label == Label::RawJpeg)));
    assert!(out.contains("\"raw+jpeg\""), "{out}");

    // The RAW without a preview is skipped with a warning that says so.
    let nop = report
        .stats
        .skipped
        .iter()
        .find(|s| s.path.ends_with("nopreview.dng"))
        .expect("nopreview.dng skipped");
    assert_eq!(nop.kind, SkipKind::NoPreview);
    assert!(err.contains("nopreview.dng: DNG file without a usable embedded JPEG preview"));
    // Without the feature HEIC/AVIF are skipped, saying how to read them.
    let heif_skips: Vec<_> = report
        .stats
        .skipped
        .iter()
        .filter(|s| HEIF_FILES.iter().any(|f| s.path.ends_with(f)))
        .collect();
    if cfg!(feature = "heif") {
        assert!(heif_skips.is_empty(), "{heif_skips:?}");
    } else {
        assert_eq!(heif_skips.len(), 4);
        for s in heif_skips {
            assert_eq!(s.kind, SkipKind::UnsupportedFormat);
            assert!(s.reason.ends_with("; build with --features heif"), "{s:?}");
        }
        assert!(err.contains("this build cannot read HEIC; build with --features heif"));
        assert!(err.contains("this build cannot read AVIF; build with --features heif"));
    }
    assert_eq!(
        report.stats.files_skipped as usize,
        report.stats.skipped.len()
    );

    // The text report names the label too.
    let (code, text, _) = run(&["scan", "--no-cache", root]);
    assert_eq!(code, 0);
    assert!(text.contains("raw+jpeg"), "{text}");
}

#[test]
fn a_truncated_file_of_each_format_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let gen = tempfile::tempdir().unwrap();
    write_generated(gen.path());
    let mut sources: Vec<PathBuf> = readable().iter().map(|(f, _)| fixtures().join(f)).collect();
    sources.extend(HEIF_FILES.iter().map(|f| fixtures().join(f)));
    sources.push(gen.path().join("sixteen.tif"));
    sources.push(gen.path().join("copy.bmp"));
    let mut names = Vec::new();
    for src in &sources {
        let bytes = std::fs::read(src).unwrap();
        let name = format!("cut-{}", src.file_name().unwrap().to_string_lossy());
        // Cut inside the first frame/page: an animation cut after its
        // first frame still shows that frame, and is read.
        std::fs::write(dir.path().join(&name), &bytes[..bytes.len() / 4]).unwrap();
        names.push(name);
    }
    // One whole photo, so that the scan has something to embed.
    std::fs::copy(fixtures().join("twin.jpg"), dir.path().join("whole.jpg")).unwrap();
    let root = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["scan", "--format", "json", "--no-cache", root]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let report = neardup::report::read_json(&out).unwrap();
    assert_eq!(report.stats.photos_embedded, 1, "{:#?}", report.stats);
    for name in &names {
        let s = report
            .stats
            .skipped
            .iter()
            .find(|s| s.path.ends_with(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not skipped: {:#?}", report.stats.skipped));
        let heif = HEIF_FILES.iter().any(|f| name.ends_with(f));
        let expected = if heif && !cfg!(feature = "heif") {
            SkipKind::UnsupportedFormat
        } else {
            SkipKind::Corrupt
        };
        assert_eq!(s.kind, expected, "{s:?}");
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning:") && l.contains(name.as_str())),
            "no warning for {name}: {err}"
        );
    }
}

#[test]
fn formats_lists_what_this_build_reads() {
    let (code, out, _) = run(&["formats"]);
    assert_eq!(code, 0);
    for name in [
        "jpeg", "png", "webp", "tiff", "bmp", "gif", "dng", "nef", "cr3", "raf",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("yes") && l.contains(name)),
            "{name}: {out}"
        );
    }
    let heic = out.lines().find(|l| l.contains("heic")).unwrap();
    if cfg!(feature = "heif") {
        assert!(heic.starts_with("yes"), "{heic}");
    } else {
        assert!(heic.starts_with("no"), "{heic}");
        assert!(heic.contains("--features heif"), "{heic}");
    }
    let (code, json, _) = run(&["formats", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let avif = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "avif")
        .unwrap();
    assert_eq!(avif["readable"], cfg!(feature = "heif"));
    let (_, help, _) = run(&["--help"]);
    assert!(help.contains("formats"), "{help}");
}

/// `neardup formats` and `neardup formats --json`, byte for byte as they
/// were before the list was made from `Format::ALL` (tests/formats/listing/,
/// one pair for each build: with and without the `heif` feature).
#[test]
fn formats_listing_is_unchanged() {
    let build = if cfg!(feature = "heif") {
        "heif"
    } else {
        "default"
    };
    for (args, ext) in [
        (&["formats"][..], "txt"),
        (&["formats", "--json"][..], "json"),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{err}");
        let path = fixtures().join(format!("listing/{build}.{ext}"));
        let want = std::fs::read_to_string(&path).unwrap();
        assert!(
            out == want,
            "{args:?} differs from {}:\n{out}",
            path.display()
        );
    }
}

#[test]
fn raw_files_without_a_photo_extension_are_found_by_their_bytes() {
    // A DNG named .bin is sniffed (64 bytes say TIFF), read, and then
    // recognised as a DNG from its IFDs.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("shot.dng"), dir.path().join("a.bin")).unwrap();
    std::fs::copy(fixtures().join("shot.raf"), dir.path().join("b.dat")).unwrap();
    std::fs::copy(fixtures().join("twin.jpg"), dir.path().join("c.jpg")).unwrap();
    let report = scan_json(&["--no-cache", dir.path().to_str().unwrap()]);
    assert_eq!(report.stats.photos_embedded, 3, "{:#?}", report.stats);
    let formats: Vec<&str> = report.groups[0]
        .members
        .iter()
        .map(|m| m.format.as_str())
        .collect();
    assert_eq!(formats, ["dng", "raf", "jpeg"]);
}

/// apply keeps the RAW+JPEG twin of a keeper unless `--pair-raw-jpeg`.
#[test]
fn apply_keeps_the_raw_jpeg_twin_of_the_keeper_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("DSC_0042.NEF"),
        dir.path().join("DSC_0042.NEF"),
    )
    .unwrap();
    std::fs::copy(fixtures().join("twin.jpg"), dir.path().join("DSC_0042.JPG")).unwrap();
    let plan = dir.path().join("plan.json");
    let root = dir.path().to_str().unwrap();
    let (code, _, err) = common::run(&[
        "scan",
        "--no-cache",
        "-q",
        "--format",
        "json",
        "-o",
        plan.to_str().unwrap(),
        root,
    ]);
    assert_eq!(code, 0, "{err}");
    let report = neardup::report::read_json(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(report.groups.len(), 1);
    assert!(report.groups[0].pairs.iter().any(|p| p.raw_jpeg_pair));
    let keeper = report.groups[0].keeper.clone().expect("a keeper");
    let other = report.groups[0]
        .files
        .iter()
        .find(|f| **f != keeper)
        .unwrap()
        .clone();
    let kind_of_other = |extra: &[&str]| -> Option<String> {
        let mut args = vec![
            "apply",
            plan.to_str().unwrap(),
            "--action",
            "delete",
            "--json",
        ];
        args.extend_from_slice(extra);
        let (_, out, err) = common::run(&args);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == other.as_str())
            .map(|s| s["kind"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(kind_of_other(&[]).as_deref(), Some("raw_jpeg_pair"));
    assert_ne!(
        kind_of_other(&["--pair-raw-jpeg"]).as_deref(),
        Some("raw_jpeg_pair")
    );
    // Dry runs: both files are still there.
    assert!(dir.path().join("DSC_0042.NEF").exists() && dir.path().join("DSC_0042.JPG").exists());
}
