//! Decisions that stick (`neardup decide`): stored in the cache by
//! content, honoured by every later scan (through renames), forgotten on
//! request, imported from an edited plan that `apply` then leaves alone.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The sample album's first day, copied (so that files can be renamed).
fn day1() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(photos.join("edits")).unwrap();
    for sub in ["", "edits"] {
        for e in std::fs::read_dir(album().join("day1").join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), photos.join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    let cache = dir.path().join("cache.sqlite");
    (dir, photos, cache)
}

fn scan(photos: &Path, cache: &Path, extra: &[&str]) -> neardup::report::Report {
    let mut args = vec!["-q", s(photos), "--cache", s(cache)];
    args.extend_from_slice(extra);
    scan_json(&args)
}

fn decide(args: &[&str], cache: &Path) -> (i32, String, String) {
    let mut all = vec!["decide"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--cache", s(cache)]);
    run(&all)
}

fn listed(cache: &Path) -> Vec<Value> {
    let (code, out, err) = decide(&["list", "--json"], cache);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["decisions"].as_array().unwrap().clone()
}

const ENHANCED: &str = "edits/DSC_0044-enhanced.jpg";

#[test]
fn a_not_duplicates_decision_sticks_through_a_rename_until_forgotten() {
    let (_dir, photos, cache) = day1();
    let pair = vec!["DSC_0044.JPG".to_string(), ENHANCED.to_string()];
    let before = scan(&photos, &cache, &[]);
    assert!(groups_rel(&before, &photos).contains(&pair), "{before:?}");
    assert_eq!(before.stats.decided_pairs, 0);
    assert!(before.parameters.decisions.is_empty());

    let (a, b) = (photos.join("DSC_0044.JPG"), photos.join(ENHANCED));
    let (code, out, err) = decide(&["not-duplicates", s(&a), s(&b)], &cache);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("not-duplicates (2 photos)"), "{out}");
    // The same decision again is not stored twice.
    let (code, out, _) = decide(&["not-duplicates", s(&b), s(&a)], &cache);
    assert_eq!(code, 0);
    assert!(out.contains("already stored"), "{out}");
    let decisions = listed(&cache);
    assert_eq!(decisions.len(), 1);
    let id = decisions[0]["id"].as_u64().unwrap();

    // Renamed: the decision holds the contents, not the paths.
    let renamed = photos.join("renamed.jpg");
    std::fs::rename(&b, &renamed).unwrap();
    let after = scan(&photos, &cache, &[]);
    let groups = groups_rel(&after, &photos);
    assert!(
        groups
            .iter()
            .all(|g| !g.contains(&"DSC_0044.JPG".to_string())),
        "{groups:?}"
    );
    assert_eq!(after.stats.decided_pairs, 1);
    assert_eq!(after.parameters.decisions.len(), 1);
    // The other groups are as before.
    assert_eq!(groups.len(), groups_rel(&before, &photos).len() - 1);

    // --ignore-decisions shows everything.
    let all = scan(&photos, &cache, &["--ignore-decisions"]);
    let pair = vec!["DSC_0044.JPG".to_string(), "renamed.jpg".to_string()];
    assert!(groups_rel(&all, &photos).contains(&pair));
    assert_eq!(all.stats.decided_pairs, 0);

    // A number that is not there forgets nothing and says so.
    let (code, _, err) = decide(&["forget", "999", &id.to_string()], &cache);
    assert_eq!(code, 2);
    assert!(err.contains("no decision 999"), "{err}");
    assert_eq!(listed(&cache).len(), 1);
    let (code, _, err) = decide(&["forget", &id.to_string()], &cache);
    assert_eq!(code, 0, "{err}");
    assert!(listed(&cache).is_empty());
    let again = scan(&photos, &cache, &[]);
    assert!(groups_rel(&again, &photos).contains(&pair));
}

#[test]
fn a_group_marked_keep_all_in_the_plan_is_left_alone_by_apply_and_by_later_scans() {
    let (dir, photos, cache) = day1();
    let plan = dir.path().join("plan.json");
    let (code, _, err) = run(&[
        "scan",
        "-q",
        s(&photos),
        "--cache",
        s(&cache),
        "-o",
        s(&plan),
    ]);
    assert_eq!(code, 0, "{err}");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let groups = v["groups"].as_array_mut().unwrap();
    assert!(groups.len() >= 2, "{groups:?}");
    let marked = groups
        .iter_mut()
        .find(|g| {
            g["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f.as_str().unwrap().ends_with("DSC_0042.JPG"))
        })
        .expect("the DSC_0042 group");
    marked["decision"] = "keep-all".into();
    let members: Vec<String> = marked["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert!(members.len() >= 2);
    std::fs::write(&plan, serde_json::to_string_pretty(&v).unwrap()).unwrap();

    // apply (a dry run) acts on the other groups only.
    let (code, out, err) = run(&["apply", s(&plan), "--json", "--action", "delete"]);
    assert_eq!(code, 0, "{err}");
    let summary: neardup::apply::Summary = serde_json::from_str(&out).unwrap();
    assert!(!summary.steps.is_empty(), "the other groups are acted on");
    for st in &summary.steps {
        assert!(!members.contains(&st.path), "{st:?} is in a keep-all group");
    }

    let (code, out, err) = decide(&["import", s(&plan)], &cache);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("keep-all"), "{out}");
    let stored = listed(&cache);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["photos"].as_array().unwrap().len(), members.len());

    let later = scan(&photos, &cache, &[]);
    for g in &later.groups {
        let inside = g.files.iter().filter(|f| members.contains(f)).count();
        assert!(inside <= 1, "two kept-all photos grouped again: {g:?}");
    }
    assert!(later.stats.decided_pairs >= 1);

    // Round trip: list --json is importable.
    let export = dir.path().join("decisions.json");
    let (_, out, _) = decide(&["list", "--json"], &cache);
    std::fs::write(&export, out).unwrap();
    let (code, _, _) = decide(&["forget", "--all"], &cache);
    assert_eq!(code, 0);
    let (code, _, err) = decide(&["import", s(&export)], &cache);
    assert_eq!(code, 0, "{err}");
    assert_eq!(listed(&cache).len(), 1);
}

#[test]
fn a_decision_that_cannot_be_made_stores_nothing() {
    let (dir, photos, cache) = day1();
    let a = photos.join("DSC_0044.JPG");
    let missing = dir.path().join("missing.jpg");
    let (code, _, err) = decide(&["keep-all", s(&a), s(&missing)], &cache);
    assert_eq!(code, 2);
    assert!(err.contains("missing.jpg"), "{err}");
    // Two files with the same bytes are one photo: nothing to decide.
    let copy = dir.path().join("copy.jpg");
    std::fs::copy(&a, &copy).unwrap();
    let (code, _, err) = decide(&["not-duplicates", s(&a), s(&copy)], &cache);
    assert_eq!(code, 2);
    assert!(err.contains("at least two different photos"), "{err}");
    // A file that holds no decisions.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"groups\": 3}").unwrap();
    let (code, _, err) = decide(&["import", s(&junk)], &cache);
    assert_eq!(code, 2, "{err}");
    assert!(listed(&cache).is_empty());
}
