//! The embedding cache: hits, misses, moves, models, corruption,
//! concurrency and a kill mid-write.

mod common;
use common::*;
use image::ImageFormat;
use std::path::Path;
use std::process::Stdio;

/// A folder of `n` distinct photos (crops of the album's photos).
fn make_photos(dir: &Path, n: usize) {
    let sources = [
        "day1/DSC_0045.JPG",
        "day1/DSC_0046.JPG",
        "day2/phone/IMG_0002.JPG",
        "day2/phone/IMG_0003.JPG",
    ];
    for i in 0..n {
        let img = load(&album().join(sources[i % sources.len()]));
        let (w, h) = img.dimensions();
        let k = (i / sources.len()) as u32;
        let crop = image::imageops::crop_imm(&img, k % 40, k % 30, w - 40, h - 30).to_image();
        save(
            &crop,
            &dir.join(format!("sub{}/p{i:03}.jpg", i % 3)),
            ImageFormat::Jpeg,
        );
    }
}

fn scan(args: &[&str]) -> (String, String) {
    let mut all = vec!["scan", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "{err}");
    (out, err)
}

fn from_cache(stderr: &str) -> usize {
    stderr
        .split(" from cache)")
        .next()
        .filter(|s| s.len() < stderr.len())
        .and_then(|s| s.rsplit('(').next())
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn hit_miss_after_edit_hit_after_move_and_identical_reports() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 12);
    let db = dir.path().join("cache.sqlite");
    let c = db.to_str().unwrap();
    let p = photos.to_str().unwrap();

    let (uncached, _) = scan(&["--no-cache", p]);
    let (cold, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 0, "{err}");
    let (warm, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 12, "{err}");
    assert_eq!(cold, uncached);
    assert_eq!(warm, uncached, "a report from cached vectors differs");

    // Same path, new bytes: recomputed.
    let edited = photos.join("sub0/p000.jpg");
    let img = load(&album().join("day1/DSC_0047.JPG"));
    save(&img, &edited, ImageFormat::Jpeg);
    let (_, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 11, "{err}");

    // The whole folder moved: every vector found by content.
    let moved = dir.path().join("elsewhere");
    std::fs::rename(&photos, &moved).unwrap();
    let (after_move, err) = scan(&["--cache", c, moved.to_str().unwrap()]);
    assert_eq!(from_cache(&err), 12, "{err}");
    let (moved_uncached, _) = scan(&["--no-cache", moved.to_str().unwrap()]);
    assert_eq!(after_move, moved_uncached);

    // cache stats and prune.
    let (code, out, err) = run(&["cache", "stats", "--json", "--cache", c]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["vectors"], 13);
    assert_eq!(stats["models"][0]["name"], "efficientnet_lite0_gap");
    let (code, out, err) = run(&["cache", "prune", "--json", "--cache", c]);
    assert_eq!(code, 0, "{err}");
    let pruned: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The 12 paths under photos/ are gone; the old content of p000 too.
    assert_eq!(pruned["files"], 12, "{out}");
    assert_eq!(pruned["vectors"], 1, "{out}");
}

#[test]
fn another_model_does_not_reuse_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 4);
    let c = dir.path().join("cache.sqlite");
    let (c, p) = (c.to_str().unwrap(), photos.to_str().unwrap());
    scan(&["--cache", c, p]);
    let tiny = repo().join("tests/models/tiny_cnn.onnx");
    let (out, err) = scan(&["--cache", c, "--model", tiny.to_str().unwrap(), p]);
    assert_eq!(from_cache(&err), 0, "{err}");
    assert_eq!(
        neardup::report::read_json(&out).unwrap().model.dimension,
        32
    );
    let (_, err) = scan(&["--cache", c, "--model", tiny.to_str().unwrap(), p]);
    assert_eq!(from_cache(&err), 4, "{err}");
}

#[test]
fn corrupt_cache_is_set_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 4);
    let db = dir.path().join("cache.sqlite");
    std::fs::write(
        &db,
        b"this is not a database, just some garbage bytes".repeat(100),
    )
    .unwrap();
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let (out, err) = scan(&["--cache", c, p]);
    assert!(err.contains("unusable") && err.contains("rebuilt"), "{err}");
    let (uncached, _) = scan(&["--no-cache", p]);
    assert_eq!(out, uncached);
    let (_, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 4, "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".broken-")));
}

#[test]
fn concurrent_scans_share_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 16);
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let spawn = || {
        bin()
            .args([
                "scan",
                "--format",
                "json",
                "--threads",
                "1",
                "--cache",
                c,
                p,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(a.stdout, b.stdout);
    let (out, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 16, "{err}");
    assert_eq!(out.as_bytes(), &a.stdout[..]);
}

#[cfg(unix)]
#[test]
fn killed_mid_write_then_rerun_gives_the_clean_result() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 200);
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let mut child = bin()
        .args(["scan", "--quiet", "--cache", c, p])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first batch is in the write-ahead log, then SIGKILL
    // (no chance to clean up) while it goes on embedding and writing.
    let wal = dir.path().join("cache.sqlite-wal");
    let start = std::time::Instant::now();
    while std::fs::metadata(&wal)
        .map(|m| m.len() < 64 * 1024)
        .unwrap_or(true)
    {
        assert!(start.elapsed().as_secs() < 120, "no cache writes seen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the scan ended before it was killed");
    let (out, err) = scan(&["--cache", c, p]);
    assert!(
        !err.contains("unusable") && !err.contains("corrupt"),
        "{err}"
    );
    let served = from_cache(&err);
    assert!(served > 0 && served < 200, "{served} from cache: {err}");
    let (clean, _) = scan(&["--no-cache", p]);
    assert_eq!(out, clean);
    let (_, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 200, "{err}");
}

#[test]
fn similar_pairs_are_the_same_from_a_warm_cache() {
    // A zoomed-in view of the same scene: too far in embedding for an
    // edit, confirmed by the geometric check.
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let src = load(&album().join("day1/DSC_0044.JPG"));
    let (w, h) = src.dimensions();
    save(&src, &photos.join("scene.jpg"), ImageFormat::Jpeg);
    let zoom = image::imageops::crop_imm(&src, w / 10, h / 5, w / 2, h / 2).to_image();
    let zoom = image::imageops::resize(
        &zoom,
        w * 4 / 5,
        h * 4 / 5,
        image::imageops::FilterType::CatmullRom,
    );
    save(&zoom, &photos.join("scene_zoomed.jpg"), ImageFormat::Jpeg);
    save(
        &load(&album().join("day2/phone/IMG_0004.JPG")),
        &photos.join("other.jpg"),
        ImageFormat::Jpeg,
    );
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let (uncached, _) = scan(&["--no-cache", p]);
    let (cold, _) = scan(&["--cache", c, p]);
    let (warm, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 3, "{err}");
    assert_eq!(cold, uncached);
    assert_eq!(warm, uncached);
    let r = neardup::report::read_json(&warm).unwrap();
    assert_eq!(r.groups.len(), 1, "{warm}");
    let pair = &r.groups[0].pairs[0];
    assert_eq!(pair.label, neardup::decide::Label::Similar, "{pair:?}");
    assert!(
        pair.distance > 0.21 && pair.inliers.unwrap() >= 12,
        "{pair:?}"
    );
    // In edits mode the same pair is not grouped.
    let (edits, _) = scan(&["--no-cache", "--mode", "edits", p]);
    assert!(neardup::report::read_json(&edits)
        .unwrap()
        .groups
        .is_empty());
}
