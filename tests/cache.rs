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
    assert!(err.contains(", the index from cache,"), "{err}");
    assert_eq!(cold, uncached);
    assert_eq!(warm, uncached, "a report from cached vectors differs");

    // Same path, new bytes: recomputed.
    let edited = photos.join("sub0/p000.jpg");
    let img = load(&album().join("day1/DSC_0047.JPG"));
    save(&img, &edited, ImageFormat::Jpeg);
    let (after_edit, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 11, "{err}");
    assert!(!err.contains("the index from cache"), "{err}");
    let (edit_uncached, _) = scan(&["--no-cache", p]);
    assert_eq!(after_edit, edit_uncached);

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
    assert_eq!(stats["models"][0]["name"], "efficientnet_lite0_fmap");
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
    // The message tells where it went, and it is there.
    let aside = err
        .split("moved to ")
        .nth(1)
        .and_then(|s| s.split(" and rebuilt").next())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(Path::new(aside).is_file(), "{err}");
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

/// A JSON scan of `photos` with the cache `db`, started in the background
/// (one thread, so that two at once really overlap on the cache).
fn spawn_scan(db: &str, photos: &str) -> std::process::Child {
    bin()
        .args([
            "scan",
            "--format",
            "json",
            "--threads",
            "1",
            "--cache",
            db,
            photos,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn concurrent_scans_share_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 16);
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let spawn = || spawn_scan(c, p);
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
    // A tighter framing of the same view (3/4 of each side: it still shows
    // more than the minimum coverage of the original), confirmed by the
    // geometric check, whose inliers and coverage come from the cache warm.
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let src = load(&album().join("day1/DSC_0044.JPG"));
    let (w, h) = src.dimensions();
    save(&src, &photos.join("scene.jpg"), ImageFormat::Jpeg);
    let zoom = image::imageops::crop_imm(&src, w / 8, h / 8, w * 3 / 4, h * 3 / 4).to_image();
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
    // A threshold under their distance: the pair needs the geometric check.
    let t = ["--threshold", "0.05"];
    let (uncached, _) = scan(&[&t[..], &["--no-cache", p]].concat());
    let (cold, _) = scan(&[&t[..], &["--cache", c, p]].concat());
    let (warm, err) = scan(&[&t[..], &["--cache", c, p]].concat());
    assert_eq!(from_cache(&err), 3, "{err}");
    assert_eq!(cold, uncached);
    assert_eq!(warm, uncached);
    let r = neardup::report::read_json(&warm).unwrap();
    assert_eq!(r.groups.len(), 1, "{warm}");
    let pair = &r.groups[0].pairs[0];
    assert_eq!(pair.label, neardup::Label::Similar, "{pair:?}");
    assert!(
        pair.distance > 0.05 && pair.inliers.unwrap() >= 12 && pair.coverage.is_some(),
        "{pair:?}"
    );
    // In edits mode the same pair is not grouped.
    let (edits, _) = scan(&[&t[..], &["--no-cache", "--mode", "edits", p]].concat());
    assert!(neardup::report::read_json(&edits)
        .unwrap()
        .groups
        .is_empty());
}

// --- A cache that can be trusted: checked rows, concurrent opens,
// read-only caches.

fn db_conn(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(db).unwrap()
}

fn broken_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".broken-"))
        .collect()
}

/// A folder with near-duplicates (so that the report has groups), and its
/// report without cache.
fn grouped_photos(dir: &Path, n: usize) -> (std::path::PathBuf, String) {
    let photos = dir.join("photos");
    make_photos(&photos, n);
    // A recompressed copy: near, same size, other pixels (a same-pixels
    // answer "no" is cached for it).
    let img = load(&photos.join("sub0/p000.jpg"));
    save_jpeg_quality(&img, &photos.join("sub0/p000_q70.jpg"), 70);
    let (clean, _) = scan(&["--no-cache", photos.to_str().unwrap()]);
    let r = neardup::report::read_json(&clean).unwrap();
    assert!(!r.groups.is_empty(), "{clean}");
    (photos, clean)
}

/// Flip `bit` of the float at `index` of the cached vector of `content`.
fn flip_vector_bit(db: &Path, content: &str, index: usize, bit: u32) {
    let conn = db_conn(db);
    let mut blob: Vec<u8> = conn
        .query_row(
            "SELECT vector FROM vectors WHERE content = ?1",
            [content],
            |r| r.get(0),
        )
        .unwrap();
    let at = index * 4;
    let x = u32::from_le_bytes(blob[at..at + 4].try_into().unwrap()) ^ (1 << bit);
    blob[at..at + 4].copy_from_slice(&x.to_le_bytes());
    conn.execute(
        "UPDATE vectors SET vector = ?1 WHERE content = ?2",
        rusqlite::params![blob, content],
    )
    .unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

fn contents(db: &Path) -> Vec<String> {
    let conn = db_conn(db);
    let mut s = conn
        .prepare("SELECT content FROM vectors ORDER BY content")
        .unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_flipped_bit_in_a_cached_vector_is_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, clean) = grouped_photos(dir.path(), 12);
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let (cold, _) = scan(&["--cache", c, p]);
    assert_eq!(cold, clean);
    let keys = contents(&db);
    assert_eq!(keys.len(), 13);
    // A low mantissa bit (only the checksum tells) and a high exponent bit
    // (the value explodes: the photo would join any group at distance 0).
    flip_vector_bit(&db, &keys[3], 17, 0);
    flip_vector_bit(&db, &keys[8], 100, 30);
    let (warm, err) = scan(&["--cache", c, p]);
    assert!(
        err.contains("2 damaged rows dropped and computed again"),
        "{err}"
    );
    assert!(err.contains(&format!("the vector of {}", keys[3])), "{err}");
    assert_eq!(from_cache(&err), 11, "{err}");
    assert_eq!(warm, clean, "a damaged cache changed the report");
    let (again, err) = scan(&["--cache", c, p]);
    assert!(!err.contains("damaged"), "{err}");
    assert_eq!(from_cache(&err), 13, "{err}");
    assert_eq!(again, clean);
}

#[test]
fn a_flipped_fact_or_path_row_is_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, clean) = grouped_photos(dir.path(), 8);
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    scan(&["--cache", c, p]);
    let conn = db_conn(&db);
    // "Same pixels: no" becomes "yes" (one bit).
    let flipped = conn
        .execute(
            "UPDATE facts SET value = x'01' WHERE kind LIKE 'same-pixels/%' AND value = x'00'",
            [],
        )
        .unwrap();
    assert!(flipped >= 1, "no same-pixels answer was cached");
    // A path now points at another photo's content (same bytes, same vector).
    let other: String = conn
        .query_row(
            "SELECT content FROM files ORDER BY path DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let moved = conn
        .execute(
            "UPDATE files SET content = ?1 WHERE path = (SELECT min(path) FROM files)",
            [&other],
        )
        .unwrap();
    assert_eq!(moved, 1);
    drop(conn);
    let (warm, err) = scan(&["--cache", c, p]);
    assert!(err.contains("damaged row"), "{err}");
    assert!(err.contains("same-pixels/"), "{err}");
    assert!(err.contains("the content of "), "{err}");
    assert_eq!(warm, clean, "a damaged fact changed the report");
}

#[test]
fn vectors_of_the_wrong_length_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 6);
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let (clean, _) = scan(&["--cache", c, p]);
    let keys = contents(&db);
    let conn = db_conn(&db);
    let long: Vec<u8> = (0..1281u32)
        .flat_map(|i| (if i == 0 { 1.0f32 } else { 0.0 }).to_le_bytes())
        .collect();
    conn.execute(
        "UPDATE vectors SET vector = x'0000803f' WHERE content = ?1",
        [&keys[0]],
    )
    .unwrap();
    conn.execute(
        "UPDATE vectors SET vector = ?1 WHERE content = ?2",
        rusqlite::params![long, keys[1]],
    )
    .unwrap();
    drop(conn);
    for _ in 0..2 {
        let (code, out, err) = run(&["scan", "--format", "json", "--cache", c, p]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, clean);
    }
    let (_, err) = scan(&["--cache", c, p]);
    assert_eq!(from_cache(&err), 6, "{err}");
}

/// A small xorshift generator (seeded, no dependency).
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_damage_to_the_cache_file_never_changes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, clean) = grouped_photos(dir.path(), 8);
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    scan(&["--cache", c, p]);
    let good = std::fs::read(&db).unwrap();
    assert!(good.len() > 64 * 1024, "{} bytes", good.len());
    let mut noticed = 0;
    for seed in 1..=6u64 {
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap().path();
            if f.to_string_lossy().contains("cache.sqlite") {
                std::fs::remove_file(f).unwrap();
            }
        }
        let mut bytes = good.clone();
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for _ in 0..8 {
            let at = (xorshift(&mut state) % (bytes.len() as u64 - 16)) as usize;
            for b in &mut bytes[at..at + 16] {
                *b = xorshift(&mut state) as u8;
            }
        }
        std::fs::write(&db, &bytes).unwrap();
        let (code, out, err) = run(&["scan", "--format", "json", "--cache", c, p]);
        assert_eq!(code, 0, "seed {seed}: {err}");
        assert_eq!(out, clean, "seed {seed}: the report changed; {err}");
        if err.contains("moved to") {
            assert!(!broken_files(dir.path()).is_empty(), "seed {seed}: {err}");
        }
        if err.contains("damaged row") || err.contains("unusable") || err.contains("corrupt") {
            noticed += 1;
        }
    }
    // Not every span lands on live data, but some must.
    assert!(noticed > 0, "no damage was ever noticed");
}

#[test]
fn concurrent_scans_never_set_the_cache_aside() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 4);
    let db = dir.path().join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let (clean, _) = scan(&["--no-cache", p]);
    let spawn = || spawn_scan(c, p);
    for round in 0..12 {
        // Every third round starts without a cache: both create it at once.
        if round % 3 == 0 {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{c}{ext}"));
            }
        }
        let (a, b) = (spawn(), spawn());
        for o in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "round {round}: {err}");
            assert!(
                err.lines()
                    .all(|l| !l.contains("cache") || l.contains("from cache")),
                "round {round}: {err}"
            );
            assert_eq!(String::from_utf8_lossy(&o.stdout), clean, "round {round}");
        }
        assert!(broken_files(dir.path()).is_empty(), "round {round}");
    }
}

#[cfg(unix)]
#[test]
fn a_read_only_cache_or_folder_is_used_without_writing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    make_photos(&photos, 6);
    let folder = dir.path().join("cache");
    let db = folder.join("cache.sqlite");
    let (c, p) = (db.to_str().unwrap(), photos.to_str().unwrap());
    let (clean, _) = scan(&["--cache", c, p]);
    let before = std::fs::read(&db).unwrap();
    let mode = |path: &Path, m: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap()
    };
    for (file_mode, folder_mode) in [(0o444, 0o755), (0o644, 0o555)] {
        mode(&db, file_mode);
        mode(&folder, folder_mode);
        let (out, err) = scan(&["--cache", c, p]);
        assert!(
            err.contains(&format!("cache {c} is read-only: using it without writing")),
            "{err}"
        );
        assert!(!err.contains("moved") && !err.contains("unusable"), "{err}");
        assert_eq!(from_cache(&err), 6, "{err}");
        assert_eq!(out, clean);
        // A new photo is embedded, not remembered.
        let extra = photos.join("extra.jpg");
        save(
            &load(&album().join("day1/DSC_0047.JPG")),
            &extra,
            ImageFormat::Jpeg,
        );
        let (_, err) = scan(&["--cache", c, p]);
        assert_eq!(from_cache(&err), 6, "{err}");
        std::fs::remove_file(&extra).unwrap();
        mode(&folder, 0o755);
        assert!(broken_files(&folder).is_empty());
        assert_eq!(std::fs::read(&db).unwrap(), before, "the cache was written");
    }
    mode(&db, 0o644);
}
