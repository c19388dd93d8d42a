//! `neardup apply` re-verifies each member against its keeper from the
//! files before acting on it: a corrupted cache or an edited plan cannot
//! make it remove photos that are not near-duplicates of the keeper.

mod common;
use common::*;
use image::{imageops, ImageFormat};
use neardup::apply::{Status, Step, StepKind, Summary};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Scan into `plan` (JSON); returns the plan as JSON to edit.
fn scan_plan(plan: &Path, args: &[&str]) -> Value {
    let mut all = vec!["scan", "-q", "-o", s(plan)];
    all.extend_from_slice(args);
    let (code, _, err) = run(&all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap()
}

fn write_plan(plan: &Path, v: &Value) {
    std::fs::write(plan, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// `apply PLAN --json ARGS`: the exit code and the summary.
fn apply(plan: &Path, args: &[&str]) -> (i32, Summary) {
    let mut all = vec!["apply", s(plan), "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    let summary = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, summary)
}

fn dry_delete(plan: &Path) -> Summary {
    let (code, summary) = apply(plan, &["--action", "delete"]);
    assert_eq!(code, 0, "{summary:?}");
    summary
}

fn step<'a>(summary: &'a Summary, name: &str) -> &'a Step {
    summary
        .steps
        .iter()
        .find(|st| st.path.ends_with(name))
        .unwrap_or_else(|| panic!("no step for {name}: {:#?}", summary.steps))
}

fn not_verified(summary: &Summary, name: &str) -> String {
    let st = step(summary, name);
    assert_eq!(st.status, Status::Skipped, "{st:?}");
    assert_eq!(st.kind, Some(StepKind::NotVerified), "{st:?}");
    st.reason.clone().unwrap()
}

fn would_do(summary: &Summary, name: &str) {
    let st = step(summary, name);
    assert_eq!(st.status, Status::WouldDo, "{st:?}");
}

/// The plan's entry for a file as it is now (what a scan would write).
fn member_entry(path: &Path) -> Value {
    let meta = std::fs::metadata(path).unwrap();
    let img = load(path);
    json!({
        "path": s(path),
        "bytes": meta.len(),
        "width": img.width(),
        "height": img.height(),
        "format": "jpeg",
        "mtime_ns": neardup::cache::mtime_ns(&meta),
        "content": neardup::apply::content_of(path).unwrap(),
    })
}

/// The group of `plan` that holds a file ending with `name`.
fn group_with<'a>(plan: &'a mut Value, name: &str) -> &'a mut Value {
    plan["groups"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|g| {
            g["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f.as_str().unwrap().ends_with(name))
        })
        .unwrap_or_else(|| panic!("no group holds {name}"))
}

/// Put `path` into `group` with a pair to every member at `distance` and
/// `label`; with `keeper`, make it the keeper.
fn add_member(group: &mut Value, path: &Path, label: &str, distance: f64, keeper: bool) {
    let paths: Vec<String> = group["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    for p in &paths {
        group["pairs"].as_array_mut().unwrap().push(json!({
            "a": s(path), "b": p, "distance": distance, "label": label, "inliers": 40,
        }));
    }
    group["members"]
        .as_array_mut()
        .unwrap()
        .push(member_entry(path));
    group["files"].as_array_mut().unwrap().push(json!(s(path)));
    if keeper {
        group["keeper"] = json!(s(path));
    }
}

/// Set the label of the pair between the files ending with `a` and `b`.
fn relabel(group: &mut Value, a: &str, b: &str, label: &str) {
    let pair = group["pairs"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| {
            let (x, y) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
            (x.ends_with(a) && y.ends_with(b)) || (x.ends_with(b) && y.ends_with(a))
        })
        .unwrap_or_else(|| panic!("no pair {a} {b}"));
    pair["label"] = json!(label);
}

/// A folder of byte-different edited copies of one photo (`real/`), one
/// unrelated photo with more pixels than any of them (`other/`), and an
/// honest group of two (`honest/`).
fn make_story(root: &Path) -> Vec<PathBuf> {
    let photo = load(&album().join("day1/DSC_0042.JPG"));
    let real = root.join("real");
    std::fs::create_dir_all(&real).unwrap();
    let mut copies = Vec::new();
    for q in [95u8, 80, 60, 40] {
        let p = real.join(format!("q{q}.jpg"));
        save_jpeg_quality(&photo, &p, q);
        copies.push(p);
    }
    let (w, h) = photo.dimensions();
    let small = imageops::resize(&photo, w * 3 / 4, h * 3 / 4, imageops::FilterType::Triangle);
    let p = real.join("smaller.jpg");
    save_jpeg_quality(&small, &p, 90);
    copies.push(p);
    let other = load(&album().join("day2/phone/IMG_0004.JPG"));
    std::fs::create_dir_all(root.join("other")).unwrap();
    save_jpeg_quality(&other, &root.join("other/unrelated.jpg"), 90);
    let scene = load(&album().join("day1/DSC_0044.JPG"));
    std::fs::create_dir_all(root.join("honest")).unwrap();
    save_jpeg_quality(&scene, &root.join("honest/scene.jpg"), 92);
    let (w, h) = scene.dimensions();
    let half = imageops::resize(&scene, w / 2, h / 2, imageops::FilterType::Triangle);
    save_jpeg_quality(&half, &root.join("honest/scene_small.jpg"), 85);
    copies
}

/// Delete with the plan at `plan` after a dry run; the real copies must all
/// survive (skipped as not verified, with the distance recomputed) and the
/// honest group's copy must go.
fn delete_and_check(plan: &Path, copies: &[PathBuf], journal: &Path) {
    let dry = dry_delete(plan);
    for c in copies {
        let why = not_verified(&dry, c.file_name().unwrap().to_str().unwrap());
        assert!(
            why.contains("distance") && why.contains("> threshold"),
            "{why}"
        );
    }
    would_do(&dry, "honest/scene_small.jpg");
    let (code, done) = apply(
        plan,
        &["--action", "delete", "--execute", "--journal", s(journal)],
    );
    assert_eq!(code, 0, "{done:?}");
    for c in copies {
        assert!(c.exists(), "{} was deleted", c.display());
        not_verified(&done, c.file_name().unwrap().to_str().unwrap());
    }
    assert_eq!(
        done.skip_kinds.get(&StepKind::NotVerified),
        Some(&(copies.len() as u64))
    );
    assert_eq!(step(&done, "honest/scene_small.jpg").status, Status::Done);
    assert!(!plan
        .parent()
        .unwrap()
        .join("lib/honest/scene_small.jpg")
        .exists());
}

#[test]
fn a_corrupted_cache_or_an_edited_plan_cannot_delete_the_real_copies() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let copies = make_story(&lib);
    let unrelated = lib.join("other/unrelated.jpg");
    let db = dir.path().join("cache.sqlite");
    let clean_plan = dir.path().join("clean.json");
    let clean = scan_plan(
        &clean_plan,
        &["--mode", "edits", "--cache", s(&db), s(&lib)],
    );
    let real = clean["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["files"].to_string().contains("q95.jpg"))
        .unwrap();
    assert_eq!(real["members"].as_array().unwrap().len(), copies.len());
    assert!(!clean.to_string().contains("unrelated.jpg"));

    // 1. The cache story: the unrelated photo's cached vector becomes the
    // vector of one copy (SQLite's own checks pass).
    let content_of = |p: &Path| neardup::apply::content_of(p).unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n = conn
            .execute(
                "UPDATE vectors SET vector = (SELECT vector FROM vectors WHERE content = ?1) WHERE content = ?2",
                [content_of(&copies[0]), content_of(&unrelated)],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let bad_plan = dir.path().join("corrupt.json");
    let bad = scan_plan(&bad_plan, &["--mode", "edits", "--cache", s(&db), s(&lib)]);
    let fooled = bad.to_string().contains("unrelated.jpg");
    eprintln!("the corrupted cache row was believed by the scan: {fooled}");
    if fooled {
        // The scan believed the cache: the unrelated photo (more pixels)
        // is the keeper of the real copies, at distance 0.
        let mut bad = bad;
        let g = group_with(&mut bad, "unrelated.jpg");
        assert!(g["keeper"].as_str().unwrap().ends_with("unrelated.jpg"));
        assert_eq!(g["members"].as_array().unwrap().len(), copies.len() + 1);
        delete_and_check(&bad_plan, &copies, &dir.path().join("j1.jsonl"));
        // The honest copy is gone now: the rest of the test needs it again.
        make_story(&lib);
    }

    // 2. The same outcome from an edited plan (whether or not the cache
    // caught the corruption): the unrelated photo is made a member and the
    // keeper, paired with every copy at distance 0.
    let mut plan = scan_plan(&clean_plan, &["--mode", "edits", "--no-cache", s(&lib)]);
    add_member(
        group_with(&mut plan, "q95.jpg"),
        &unrelated,
        "edited",
        0.0,
        true,
    );
    write_plan(&clean_plan, &plan);
    delete_and_check(&clean_plan, &copies, &dir.path().join("j2.jsonl"));
}

#[test]
fn identical_and_same_pixels_pairs_rest_on_the_bytes_and_the_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let img = load(&album().join("day2/phone/IMG_0004.JPG"));
    save(&img, &lib.join("a.png"), ImageFormat::Png);
    std::fs::copy(lib.join("a.png"), lib.join("a_copy.png")).unwrap();
    save(&img, &lib.join("a_resaved.bmp"), ImageFormat::Bmp);
    save_jpeg_quality(&img, &lib.join("a_q70.jpg"), 70);
    let plan_path = dir.path().join("plan.json");
    let plan = scan_plan(
        &plan_path,
        &["--mode", "edits", "--keep", "format", "--no-cache", s(&lib)],
    );
    let labels = plan["groups"][0]["pairs"].to_string();
    assert!(
        labels.contains("identical") && labels.contains("same-pixels"),
        "{labels}"
    );
    let keeper = plan["groups"][0]["keeper"].as_str().unwrap().to_string();
    assert!(keeper.ends_with("a.png"), "{keeper}");
    // True couples verify.
    let ok = dry_delete(&plan_path);
    would_do(&ok, "a_copy.png");
    would_do(&ok, "a_resaved.bmp");
    would_do(&ok, "a_q70.jpg");
    assert_eq!(ok.skipped, 0, "{ok:?}");

    // False ones: the plan says identical or same-pixels, the files say no.
    let mut bad = plan.clone();
    let g = group_with(&mut bad, "a.png");
    relabel(g, "a.png", "a_resaved.bmp", "identical");
    relabel(g, "a.png", "a_q70.jpg", "same-pixels");
    write_plan(&plan_path, &bad);
    let r = dry_delete(&plan_path);
    let why = not_verified(&r, "a_resaved.bmp");
    assert!(
        why.contains("identical") && why.contains("different bytes"),
        "{why}"
    );
    let why = not_verified(&r, "a_q70.jpg");
    assert!(
        why.contains("same-pixels") && why.contains("pixels differ"),
        "{why}"
    );
    would_do(&r, "a_copy.png");
}

#[test]
fn edited_pairs_rest_on_the_distance_and_mirrored_ones_on_the_flipped_image() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let img = load(&album().join("day2/phone/IMG_0002.JPG"));
    save_jpeg_quality(&img, &lib.join("view.jpg"), 92);
    save_jpeg_quality(
        &imageops::flip_horizontal(&img),
        &lib.join("view_flipped.jpg"),
        92,
    );
    let (w, h) = img.dimensions();
    let small = imageops::resize(&img, w / 2, h / 2, imageops::FilterType::Triangle);
    save_jpeg_quality(&small, &lib.join("view_small.jpg"), 80);
    let plan_path = dir.path().join("plan.json");
    let mut plan = scan_plan(
        &plan_path,
        &["--mode", "edits", "--mirror", "--no-cache", s(&lib)],
    );
    let g = group_with(&mut plan, "view.jpg");
    assert_eq!(g["members"].as_array().unwrap().len(), 3, "{g:#}");
    assert!(
        g["pairs"].to_string().contains("\"mirrored\":true"),
        "{g:#}"
    );
    assert!(g["keeper"].as_str().unwrap().ends_with("/view.jpg"));
    let ok = dry_delete(&plan_path);
    would_do(&ok, "view_flipped.jpg");
    would_do(&ok, "view_small.jpg");

    // With a threshold just over the mirrored distance, the flipped copy
    // verifies as a mirror image, and not when the plan drops the flag (its
    // direct distance is larger).
    let g = group_with(&mut plan, "view.jpg");
    let mirrored = g["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["mirrored"] == json!(true))
        .unwrap()["distance"]
        .as_f64()
        .unwrap();
    plan["parameters"]["rules"]["threshold"] = json!(mirrored + 0.01);
    write_plan(&plan_path, &plan);
    would_do(&dry_delete(&plan_path), "view_flipped.jpg");
    let g = group_with(&mut plan, "view.jpg");
    for p in g["pairs"].as_array_mut().unwrap() {
        p["mirrored"] = json!(false);
    }
    write_plan(&plan_path, &plan);
    let why = not_verified(&dry_delete(&plan_path), "view_flipped.jpg");
    assert!(why.contains("> threshold"), "{why}");

    // An unrelated photo paired as an edit, at a made-up distance.
    let other = load(&album().join("day1/DSC_0046.JPG"));
    let intruder = lib.join("intruder.jpg");
    save_jpeg_quality(&other, &intruder, 90);
    let mut plan = scan_plan(
        &plan_path,
        &["--mode", "edits", "--mirror", "--no-cache", s(&lib)],
    );
    assert!(!plan.to_string().contains("intruder.jpg"));
    add_member(
        group_with(&mut plan, "view.jpg"),
        &intruder,
        "edited",
        0.01,
        false,
    );
    write_plan(&plan_path, &plan);
    let r = dry_delete(&plan_path);
    let why = not_verified(&r, "intruder.jpg");
    assert!(
        why.contains("pairs them as edited") && why.contains("> threshold"),
        "{why}"
    );
    would_do(&r, "view_small.jpg");
}

#[test]
fn similar_pairs_rest_on_the_geometric_check() {
    // A tighter framing of the same view, over a low threshold: confirmed by
    // the geometric check (see tests/cache.rs).
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let src = load(&album().join("day1/DSC_0044.JPG"));
    let (w, h) = src.dimensions();
    save(&src, &lib.join("scene.jpg"), ImageFormat::Jpeg);
    let zoom = imageops::crop_imm(&src, w / 8, h / 8, w * 3 / 4, h * 3 / 4).to_image();
    let zoom = imageops::resize(
        &zoom,
        w * 4 / 5,
        h * 4 / 5,
        imageops::FilterType::CatmullRom,
    );
    save(&zoom, &lib.join("scene_zoomed.jpg"), ImageFormat::Jpeg);
    let plan_path = dir.path().join("plan.json");
    let mut plan = scan_plan(
        &plan_path,
        &[
            "--mode",
            "similar",
            "--threshold",
            "0.05",
            "--no-cache",
            s(&lib),
        ],
    );
    let g = group_with(&mut plan, "scene.jpg");
    assert!(g["pairs"].to_string().contains("similar"), "{g:#}");
    assert!(g["keeper"].as_str().unwrap().ends_with("/scene.jpg"));
    would_do(&dry_delete(&plan_path), "scene_zoomed.jpg");

    // Another scene, claimed similar with 40 inliers.
    let intruder = lib.join("intruder.jpg");
    save(
        &load(&album().join("day1/DSC_0047.JPG")),
        &intruder,
        ImageFormat::Jpeg,
    );
    add_member(
        group_with(&mut plan, "scene.jpg"),
        &intruder,
        "similar",
        0.3,
        false,
    );
    write_plan(&plan_path, &plan);
    let r = dry_delete(&plan_path);
    let why = not_verified(&r, "intruder.jpg");
    assert!(
        why.contains("similar")
            && why.contains("> threshold")
            && (why.contains("inliers <") || why.contains("geometric radius")),
        "{why}"
    );
    would_do(&r, "scene_zoomed.jpg");
}

#[test]
fn chain_members_verify_directly_against_the_keeper() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let img = load(&album().join("day1/DSC_0045.JPG"));
    save_jpeg_quality(&img, &lib.join("big.jpg"), 95);
    let (w, h) = img.dimensions();
    let small = imageops::resize(&img, w * 2 / 3, h * 2 / 3, imageops::FilterType::Triangle);
    save_jpeg_quality(&small, &lib.join("mid.jpg"), 85);
    let plan_path = dir.path().join("plan.json");
    let mut plan = scan_plan(&plan_path, &["--mode", "edits", "--no-cache", s(&lib)]);
    // An unrelated photo that is in the group only through a pair with the
    // other member (no pair with the keeper).
    let intruder = lib.join("intruder.jpg");
    save_jpeg_quality(&load(&album().join("day1/DSC_0049.JPG")), &intruder, 90);
    let g = group_with(&mut plan, "big.jpg");
    assert!(g["keeper"].as_str().unwrap().ends_with("big.jpg"));
    // Drop the keeper's direct pairs: both members are in through a chain.
    g["pairs"] = json!([]);
    add_member(g, &intruder, "edited", 0.0, false);
    g["pairs"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p.to_string().contains("mid.jpg"));
    assert_eq!(g["pairs"].as_array().unwrap().len(), 1, "{g:#}");
    write_plan(&plan_path, &plan);
    let r = dry_delete(&plan_path);
    // The real copy has no direct pair with the keeper but verifies by its
    // own distance; the intruder does not.
    would_do(&r, "mid.jpg");
    let why = not_verified(&r, "intruder.jpg");
    assert!(
        why.contains("through other members") && why.contains("> threshold"),
        "{why}"
    );
}

#[test]
fn a_plan_whose_model_is_not_the_one_here_verifies_only_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let img = load(&album().join("day1/DSC_0048.PNG"));
    save_jpeg_quality(&img, &lib.join("a.jpg"), 95);
    std::fs::copy(lib.join("a.jpg"), lib.join("a_copy.jpg")).unwrap();
    let (w, h) = img.dimensions();
    let small = imageops::resize(&img, w / 2, h / 2, imageops::FilterType::Triangle);
    save_jpeg_quality(&small, &lib.join("a_small.jpg"), 85);
    let plan_path = dir.path().join("plan.json");
    let mut plan = scan_plan(&plan_path, &["--mode", "edits", "--no-cache", s(&lib)]);
    let ok = dry_delete(&plan_path);
    would_do(&ok, "a_small.jpg");
    plan["model"]["sha256"] = json!("0".repeat(64));
    write_plan(&plan_path, &plan);
    let r = dry_delete(&plan_path);
    let keeper = plan["groups"][0]["keeper"].as_str().unwrap();
    let twin = if keeper.ends_with("a_copy.jpg") {
        "/a.jpg"
    } else {
        "a_copy.jpg"
    };
    would_do(&r, twin);
    let why = not_verified(&r, "a_small.jpg");
    assert!(why.contains("sha256") && why.contains("differs"), "{why}");
}
