//! Labels, modes, mirror and explain on photos generated from the album.

mod common;
use common::*;
use image::{imageops, ImageFormat};
use neardup::report::Report;
use neardup::Label;
use std::path::Path;

fn label_of(r: &Report, a: &str, b: &str) -> Option<(Label, bool)> {
    r.groups.iter().flat_map(|g| &g.pairs).find_map(|p| {
        let (pa, pb) = (Path::new(&p.a), Path::new(&p.b));
        let hit = (pa.ends_with(a) && pb.ends_with(b)) || (pa.ends_with(b) && pb.ends_with(a));
        hit.then_some((p.label, p.mirrored))
    })
}

fn fixture(root: &Path) {
    let png = load(&album().join("day1/DSC_0043.PNG"));
    save(&png, &root.join("cat.png"), ImageFormat::Png);
    std::fs::copy(root.join("cat.png"), root.join("cat_copy.png")).unwrap();
    save(&png, &root.join("cat_resaved.bmp"), ImageFormat::Bmp);
    let (w, h) = png.dimensions();
    save(
        &imageops::resize(&png, w / 2, h / 2, imageops::FilterType::Triangle),
        &root.join("cat_small.jpg"),
        ImageFormat::Jpeg,
    );
    save(
        &imageops::crop_imm(&png, w / 10, h / 10, w * 8 / 10, h * 8 / 10).to_image(),
        &root.join("cat_crop.jpg"),
        ImageFormat::Jpeg,
    );
    save(
        &imageops::crop_imm(&png, w / 20, 0, w * 19 / 20, h).to_image(),
        &root.join("cat_burst.jpg"),
        ImageFormat::Jpeg,
    );
    save(
        &load(&album().join("day2/phone/IMG_0004.JPG")),
        &root.join("unrelated.jpg"),
        ImageFormat::Jpeg,
    );
}

#[test]
fn each_kind_of_copy_gets_its_label() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let r = scan_json(&["--no-cache", dir.path().to_str().unwrap()]);
    assert_eq!(r.groups.len(), 1, "{:?}", r.groups);
    assert_eq!(
        r.groups[0].members.len(),
        6,
        "the unrelated photo is not grouped"
    );
    assert_eq!(
        label_of(&r, "cat.png", "cat_copy.png"),
        Some((Label::Identical, false))
    );
    assert_eq!(
        label_of(&r, "cat.png", "cat_resaved.bmp"),
        Some((Label::SamePixels, false))
    );
    assert_eq!(
        label_of(&r, "cat.png", "cat_small.jpg"),
        Some((Label::Edited, false))
    );
    assert_eq!(
        label_of(&r, "cat.png", "cat_crop.jpg"),
        Some((Label::Edited, false))
    );
    // A burst frame this close in embedding is labelled by its distance.
    assert_eq!(
        label_of(&r, "cat.png", "cat_burst.jpg"),
        Some((Label::Edited, false))
    );
    // The group's label is its loosest pair's.
    assert_eq!(r.groups[0].label, Label::Edited);
    assert!(r
        .groups
        .iter()
        .flat_map(|g| &g.files)
        .all(|f| !f.ends_with("unrelated.jpg")));
}

/// `jpeg` with a comment segment after its start marker: other bytes, the
/// same coded image (what a photo manager's metadata edit does).
fn with_comment(jpeg: &[u8], text: &str) -> Vec<u8> {
    let len = (text.len() + 2) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn jpeg_copies_with_other_metadata_are_the_same_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let img = load(&album().join("day2/phone/IMG_0004.JPG"));
    save_jpeg_quality(&img, &root.join("a.jpg"), 90);
    let a = std::fs::read(root.join("a.jpg")).unwrap();
    std::fs::write(root.join("b.jpg"), with_comment(&a, "rated 3 stars")).unwrap();
    std::fs::write(root.join("c.jpg"), with_comment(&a, "tagged: holiday")).unwrap();
    // Same size, re-encoded: close in embedding, not the same pixels.
    save_jpeg_quality(&img, &root.join("d.jpg"), 60);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("cache.db");
    let args = |cache_flag: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["--mode".into(), "copies".into()];
        v.extend(cache_flag.iter().map(|s| s.to_string()));
        v.push(root.to_str().unwrap().into());
        v
    };
    let cache_args = ["--cache", cache.to_str().unwrap()];
    let mut reports = Vec::new();
    for flags in [&["--no-cache"][..], &cache_args[..], &cache_args[..]] {
        let a = args(flags);
        let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        reports.push(scan_json(&a));
    }
    let r = &reports[0];
    assert_eq!(groups_rel(r, root), vec![vec!["a.jpg", "b.jpg", "c.jpg"]]);
    for (x, y) in [("a.jpg", "b.jpg"), ("a.jpg", "c.jpg"), ("b.jpg", "c.jpg")] {
        assert_eq!(
            label_of(r, x, y),
            Some((Label::SamePixels, false)),
            "{x} {y}"
        );
    }
    // Cold, warm and uncached say the same.
    for other in &reports[1..] {
        assert_eq!(groups_rel(other, root), groups_rel(r, root));
        assert_eq!(
            serde_json::to_string(&other.groups).unwrap(),
            serde_json::to_string(&r.groups).unwrap()
        );
    }
    // With edits, the re-encoded copy joins as an edit.
    let e = scan_json(&["--no-cache", "--mode", "edits", root.to_str().unwrap()]);
    assert_eq!(label_of(&e, "a.jpg", "d.jpg"), Some((Label::Edited, false)));
}

#[test]
fn mode_copies_keeps_only_copies() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let r = scan_json(&[
        "--no-cache",
        "--mode",
        "copies",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(r.groups.len(), 1);
    let mut files: Vec<String> = r.groups[0]
        .files
        .iter()
        .map(|f| {
            Path::new(f)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(files, vec!["cat.png", "cat_copy.png", "cat_resaved.bmp"]);
    assert_eq!(r.groups[0].label, Label::SamePixels);
    assert_eq!(r.parameters.mode, neardup::Mode::Copies);
}

#[test]
fn mirror_is_off_by_default_and_finds_flipped_copies() {
    let dir = tempfile::tempdir().unwrap();
    let src = load(&album().join("day2/phone/IMG_0002.JPG"));
    save(&src, &dir.path().join("view.jpg"), ImageFormat::Jpeg);
    save(
        &imageops::flip_horizontal(&src),
        &dir.path().join("view_flipped.jpg"),
        ImageFormat::Jpeg,
    );
    let root = dir.path().to_str().unwrap();
    let plain = scan_json(&["--no-cache", root]);
    assert!(!plain.parameters.mirror);
    assert!(plain
        .groups
        .iter()
        .flat_map(|g| &g.pairs)
        .all(|p| !p.mirrored));
    let with = scan_json(&["--no-cache", "--mirror", root]);
    assert!(with.parameters.mirror);
    let pair = &with.groups[0].pairs[0];
    assert!(pair.mirrored, "{pair:?}");
    // As mirror images, the two are nearly the same photo.
    assert!(pair.distance < 0.02, "{pair:?}");
    let direct = plain
        .groups
        .first()
        .map(|g| g.pairs[0].distance)
        .unwrap_or(1.0);
    assert!(pair.distance < direct);
}

#[test]
fn explain_gives_the_numbers_behind_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let (code, out, err) = run(&["explain", "--json", &p("cat.png"), &p("cat_small.jpg")]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["label"], "edited");
    assert!(v["distance"].as_f64().unwrap() <= 0.21);
    assert_eq!(v["same_bytes"], false);
    let (code, out, _) = run(&["explain", &p("cat.png"), &p("unrelated.jpg")]);
    assert_eq!(code, 0);
    assert!(
        out.contains("verdict:          not near-duplicates"),
        "{out}"
    );
    assert!(out.contains("cosine distance:"));
    let (code, out, _) = run(&["explain", &p("cat.png"), &p("cat_copy.png")]);
    assert_eq!(code, 0);
    assert!(out.contains("near-duplicates, identical"), "{out}");
    let (code, _, err) = run(&["explain", &p("cat.png"), &p("missing.jpg")]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.jpg"), "{err}");
}
