//! Near-duplicates made in the test from a real photo: edited copies are
//! grouped with their original, unrelated photos are not.

mod common;
use common::*;
use image::{imageops, ImageFormat};

#[test]
fn edited_copies_are_grouped_and_unrelated_photos_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let src = load(&album().join("day2/phone/IMG_0002.JPG"));
    let (w, h) = src.dimensions();
    save(&src, &root.join("orig.jpg"), ImageFormat::Jpeg);
    save(
        &imageops::resize(&src, w / 2, h / 2, imageops::FilterType::Triangle),
        &root.join("copies/half.jpg"),
        ImageFormat::Jpeg,
    );
    save(&src, &root.join("copies/lossless.png"), ImageFormat::Png);
    save_jpeg_quality(&src, &root.join("copies/low_quality.jpg"), 25);
    save(
        &imageops::crop_imm(&src, w / 12, h / 12, w * 5 / 6, h * 5 / 6).to_image(),
        &root.join("copies/crop.webp"),
        ImageFormat::WebP,
    );
    let mut bright = src.clone();
    bright
        .pixels_mut()
        .for_each(|p| p.0.iter_mut().for_each(|c| *c = c.saturating_add(20)));
    save(
        &bright,
        &root.join("copies/brighter.tif"),
        ImageFormat::Tiff,
    );
    // Unrelated photos.
    for (name, f) in [
        ("other1.jpg", "day1/DSC_0046.JPG"),
        ("other2.bmp", "day1/DSC_0047.JPG"),
        ("other3.gif", "day1/DSC_0043.PNG"),
    ] {
        let fmt = ImageFormat::from_path(name).unwrap();
        save(&load(&album().join(f)), &root.join(name), fmt);
    }

    let report = scan_json(&[root.to_str().unwrap()]);
    assert_eq!(report.stats.photos_embedded, 9);
    assert_eq!(
        groups_rel(&report, root),
        vec![vec![
            "copies/brighter.tif".to_string(),
            "copies/crop.webp".into(),
            "copies/half.jpg".into(),
            "copies/lossless.png".into(),
            "copies/low_quality.jpg".into(),
            "orig.jpg".into()
        ]]
    );
}

#[test]
fn several_roots_in_one_run() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let src = load(&album().join("day1/DSC_0045.JPG"));
    save(&src, &a.path().join("x.jpg"), ImageFormat::Jpeg);
    save(&src, &b.path().join("y.png"), ImageFormat::Png);
    let report = scan_json(&[a.path().to_str().unwrap(), b.path().to_str().unwrap()]);
    assert_eq!(report.groups.len(), 1);
    assert_eq!(report.parameters.roots.len(), 2);
    // A root given twice (or nested in another) does not list files twice.
    let report = scan_json(&[a.path().to_str().unwrap(), a.path().to_str().unwrap()]);
    assert_eq!(report.stats.files_seen, 1);
}

#[test]
fn fixed_bits_tables_and_seed_are_reported() {
    let report = scan_json(&[
        "--bits",
        "6",
        "--tables",
        "4",
        "--seed",
        "7",
        album().to_str().unwrap(),
    ]);
    let p = &report.parameters;
    assert_eq!((p.bits, p.tables, p.seed), (6, 4, 7));
    assert_eq!(
        (p.bits_from.as_str(), p.tables_from.as_str()),
        ("user", "user")
    );
    assert!(p.pair_recall_at_threshold < 0.99);
}
