//! `neardup apply` must never lose a photo: two applies at once, symbolic
//! links as keepers, roots taken from an edited plan, one validated plan
//! reader for `report` and `apply`, and an opening line that says what
//! passed the checks.

mod common;
use common::*;
use image::{ImageFormat, RgbImage};
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small photo of noise from `seed` (distinct seeds: distinct pixels).
fn noise_photo(path: &Path, seed: u64) {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let img = RgbImage::from_fn(40, 40, |_, _| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let b = (x >> 33) as u32;
        image::Rgb([b as u8, (b >> 8) as u8, (b >> 16) as u8])
    });
    save(&img, path, ImageFormat::Jpeg);
}

/// Scan `root` with `--mode copies` into `plan`; the report as JSON.
fn scan_copies(plan: &Path, root: &Path) -> serde_json::Value {
    let (code, _, err) = run(&[
        "scan",
        "--mode",
        "copies",
        "--no-cache",
        "-q",
        "-o",
        s(plan),
        s(root),
    ]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// Copy a tree of files, keeping their modification times (a plan checks them).
fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dst = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            let m = std::fs::metadata(e.path()).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&dst)
                .unwrap()
                .set_modified(m.modified().unwrap())
                .unwrap();
        }
    }
}

fn member_paths(g: &serde_json::Value) -> Vec<String> {
    g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap().to_string())
        .collect()
}

#[cfg(unix)]
fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

/// Case 1: two `apply --action delete --execute` at once, the second plan
/// with every keeper swapped. Without locks both processes delete "their"
/// member of a group, and the group loses both files.
#[test]
fn two_applies_at_once_never_delete_a_groups_last_copy() {
    const GROUPS: u64 = 150;
    const ROUNDS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    for g in 0..GROUPS {
        let x = pristine.join(format!("p{g:04}/x.jpg"));
        noise_photo(&x, g + 1);
        std::fs::copy(&x, x.with_file_name("y.jpg")).unwrap();
    }
    let originals: Vec<Vec<u8>> = (0..GROUPS)
        .map(|g| std::fs::read(pristine.join(format!("p{g:04}/x.jpg"))).unwrap())
        .collect();
    let root = dir.path().join("root");
    copy_tree(&pristine, &root);
    let plan_a = dir.path().join("a.json");
    let mut v = scan_copies(&plan_a, &root);
    assert_eq!(v["groups"].as_array().unwrap().len() as u64, GROUPS);
    for g in v["groups"].as_array_mut().unwrap() {
        let keeper = g["keeper"].as_str().unwrap().to_string();
        let other = member_paths(g).into_iter().find(|p| *p != keeper).unwrap();
        g["keeper"] = other.into();
    }
    let plan_b = dir.path().join("b.json");
    write_json(&plan_b, &v);
    for round in 0..ROUNDS {
        std::fs::remove_dir_all(&root).unwrap();
        copy_tree(&pristine, &root);
        let start = |plan: &Path, j: &str| {
            bin()
                .args([
                    "apply",
                    s(plan),
                    "--action",
                    "delete",
                    "--execute",
                    "--json",
                ])
                .arg("--journal")
                .arg(dir.path().join(format!("{j}{round}.jsonl")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut a = start(&plan_a, "a");
        let mut b = start(&plan_b, "b");
        let (ca, cb) = (a.wait().unwrap(), b.wait().unwrap());
        let mut lost = Vec::new();
        let mut deleted = 0;
        for g in 0..GROUPS {
            let d = root.join(format!("p{g:04}"));
            let kept = ["x.jpg", "y.jpg"]
                .iter()
                .filter(|n| std::fs::read(d.join(n)).is_ok_and(|b| b == originals[g as usize]))
                .count();
            if kept == 0 {
                lost.push(g);
            }
            deleted += 2 - kept;
        }
        assert!(
            lost.is_empty(),
            "round {round}: {} groups lost both files: {lost:?} (exit {ca}, {cb})",
            lost.len()
        );
        // Both ran to the end and one of them deleted one file per group.
        assert!(ca.success() && cb.success(), "round {round}: {ca} {cb}");
        assert_eq!(deleted as u64, GROUPS, "round {round}");
    }
}

/// An undo waits for the journal's lock and an apply's file locks: a plain
/// check that a locked journal makes undo say it waits, then go on.
#[cfg(unix)]
#[test]
fn undo_waits_for_a_locked_journal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    noise_photo(&root.join("a/x.jpg"), 1);
    std::fs::copy(root.join("a/x.jpg"), root.join("a/y.jpg")).unwrap();
    let plan = dir.path().join("plan.json");
    scan_copies(&plan, &root);
    let to = dir.path().join("dupes");
    let j = dir.path().join("j.jsonl");
    let (code, _, err) = run(&[
        "apply",
        s(&plan),
        "--action",
        "move",
        "--to",
        s(&to),
        "--execute",
        "--journal",
        s(&j),
    ]);
    assert_eq!(code, 0, "{err}");
    let held = std::fs::File::open(&j).unwrap();
    held.lock().unwrap();
    let child = bin()
        .args(["undo", s(&j), "--execute"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Still waiting: nothing restored yet.
    assert!(!root.join("a/x.jpg").exists() || !root.join("a/y.jpg").exists());
    drop(held);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("waiting for another neardup process"), "{err}");
    assert!(root.join("a/x.jpg").exists() && root.join("a/y.jpg").exists());
}

/// Case 2: `a/0keeper.jpg -> real.jpg` sorts first, but the scan keeps the
/// real file; a plan edited to keep the link links to its real file, and
/// undo restores.
#[cfg(unix)]
#[test]
fn a_symlink_keeper_is_resolved_and_never_linked_to() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let real = root.join("a/real.jpg");
    noise_photo(&real, 5);
    std::os::unix::fs::symlink("real.jpg", root.join("a/0keeper.jpg")).unwrap();
    let copy = root.join("b/c/copy.jpg");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&real, &copy).unwrap();
    let bytes = std::fs::read(&real).unwrap();
    let plan = dir.path().join("plan.json");
    let mut v = scan_copies(&plan, &root);
    let g = &v["groups"][0];
    assert_eq!(member_paths(g).len(), 3, "{g}");
    // Scan side: the link ranks last.
    assert_eq!(g["keeper"], s(&real), "{g}");
    let link_member = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().unwrap().ends_with("0keeper.jpg"))
        .unwrap();
    assert_eq!(link_member["symlink"], true);

    // Apply side: a plan that keeps the link (edited by hand).
    v["groups"][0]["keeper"] = s(&root.join("a/0keeper.jpg")).into();
    write_json(&plan, &v);
    let j = dir.path().join("h.jsonl");
    let (code, out, err) = run(&[
        "apply",
        s(&plan),
        "--action",
        "hardlink",
        "--execute",
        "--journal",
        s(&j),
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let meta = std::fs::symlink_metadata(&copy).unwrap();
    assert!(meta.file_type().is_file(), "copy.jpg is a regular file");
    assert_eq!(inode(&copy), inode(&real), "linked to the real file");
    assert_eq!(std::fs::read(&copy).unwrap(), bytes);
    assert!(
        out.contains("is the keeper's own file"),
        "real.jpg is the keeper's file: {out}"
    );
    assert_eq!(std::fs::read(&real).unwrap(), bytes);
    let (code, out, err) = run(&["undo", s(&j), "--execute"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(std::fs::symlink_metadata(&copy).unwrap().is_file());
    assert_ne!(inode(&copy), inode(&real), "a separate copy again");
    assert_eq!(std::fs::read(&copy).unwrap(), bytes);

    // A keeper that is a link to something that is not a regular file
    // (here: a folder inside the roots) skips the group.
    let mut w = v.clone();
    std::fs::remove_file(root.join("a/0keeper.jpg")).unwrap();
    std::os::unix::fs::symlink(root.join("b"), root.join("a/0keeper.jpg")).unwrap();
    w["groups"][0]["keeper"] = s(&root.join("a/0keeper.jpg")).into();
    write_json(&plan, &w);
    let (code, out, err) = run(&["apply", s(&plan), "--action", "delete", "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("keeper not a file"), "{err}\n{out}");
    assert!(real.exists() && copy.exists());
}

/// Case 3: the keeper is a link out of the roots: deleting the other
/// member would leave no real copy inside them.
#[cfg(unix)]
#[test]
fn a_symlink_keeper_out_of_the_roots_keeps_the_real_copy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let elsewhere = dir.path().join("elsewhere");
    noise_photo(&elsewhere.join("real.jpg"), 9);
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("real.jpg"), root.join("a/0keeper.jpg")).unwrap();
    let copy = root.join("b/copy.jpg");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(elsewhere.join("real.jpg"), &copy).unwrap();
    let plan = dir.path().join("plan.json");
    let mut v = scan_copies(&plan, &root);
    // The scan keeps the real file.
    assert_eq!(v["groups"][0]["keeper"], s(&copy));
    let (code, out, err) = run(&["apply", s(&plan), "--action", "delete", "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("resolves outside the scanned roots"), "{out}");
    // A plan that keeps the link: the group is skipped.
    v["groups"][0]["keeper"] = s(&root.join("a/0keeper.jpg")).into();
    write_json(&plan, &v);
    for action in ["delete", "trash", "hardlink", "symlink"] {
        let j = dir.path().join(format!("{action}.jsonl"));
        let (code, out, err) = run(&[
            "apply",
            s(&plan),
            "--action",
            action,
            "--execute",
            "--journal",
            s(&j),
        ]);
        assert_eq!(code, 0, "{action}: {err}");
        assert!(out.contains("outside the roots"), "{action}: {out}");
        assert!(err.contains("1 keeper outside roots"), "{action}: {err}");
        assert!(
            std::fs::symlink_metadata(&copy).unwrap().is_file(),
            "{action}: the only real copy inside the roots stays"
        );
    }
}

/// A plan scanned from `root/lib` with one group of two copies, and a file
/// outside the scanned folder: `(dir, lib, outside file, plan path, plan)`.
fn roots_fixture() -> (
    tempfile::TempDir,
    PathBuf,
    PathBuf,
    PathBuf,
    serde_json::Value,
) {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("root/lib");
    noise_photo(&lib.join("x.jpg"), 3);
    std::fs::copy(lib.join("x.jpg"), lib.join("y.jpg")).unwrap();
    let outside = dir.path().join("root/other/victim.jpg");
    noise_photo(&outside, 4);
    let plan = dir.path().join("plan.json");
    let v = scan_copies(&plan, &lib);
    (dir, lib, outside, plan, v)
}

/// Case 4: a plan's roots are trusted only when the scan's seal over them
/// matches; otherwise only with `--root`, and then exactly those.
#[test]
fn roots_from_an_edited_plan_are_never_trusted() {
    let (dir, lib, outside, plan, v) = roots_fixture();
    // The dry run says which roots it trusts, first.
    let (code, _, err) = run(&["apply", s(&plan), "--action", "delete"]);
    assert_eq!(code, 0, "{err}");
    let first = err.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "neardup: roots: {} (the plan's, sealed by its scan)",
            s(&lib)
        )
    );
    // The outside file, with its true size, mtime and hash, as a member.
    let mut victim = v["groups"][0]["members"][0].clone();
    let m = std::fs::metadata(&outside).unwrap();
    victim["path"] = s(&outside).into();
    victim["bytes"] = m.len().into();
    victim["mtime_ns"] = neardup::cache::mtime_ns(&m).into();
    victim["content"] = neardup::apply::content_of(&outside).unwrap().into();
    let mut with_victim = v.clone();
    with_victim["groups"][0]["members"]
        .as_array_mut()
        .unwrap()
        .push(victim);
    with_victim["groups"][0]["files"]
        .as_array_mut()
        .unwrap()
        .push(s(&outside).into());
    let parent_of_lib = format!("{}/..", s(&lib));
    let other_root = s(dir.path().join("root/other").as_path()).to_string();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "/",
            serde_json::json!(["/"]),
            "are not those its scan sealed",
        ),
        ("empty", serde_json::json!([""]), "is empty"),
        ("..", serde_json::json!([parent_of_lib]), "climbs with .."),
        (
            "another folder",
            serde_json::json!([other_root]),
            "are not those its scan sealed",
        ),
    ];
    let before = std::fs::read(&outside).unwrap();
    for (name, roots, want) in cases {
        let mut w = with_victim.clone();
        w["parameters"]["roots"] = roots;
        let p = dir.path().join("edited.json");
        write_json(&p, &w);
        let (code, _, err) = run(&["apply", s(&p), "--action", "delete", "--execute"]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(want), "{name}: {want:?} in {err}");
        assert!(err.contains("--root DIR"), "{name}: {err}");
        assert_eq!(std::fs::read(&outside).unwrap(), before, "{name}");
        assert!(lib.join("x.jpg").exists() && lib.join("y.jpg").exists());
    }
    // A plan without a seal (an older neardup, or removed).
    let mut w = v.clone();
    w["parameters"]
        .as_object_mut()
        .unwrap()
        .remove("roots_seal");
    let p = dir.path().join("unsealed.json");
    write_json(&p, &w);
    let (code, _, err) = run(&["apply", s(&p), "--action", "delete"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no roots seal"), "{err}");
    // ... is applied when the user gives the roots again.
    let (code, _, err) = run(&["apply", s(&p), "--action", "delete", "--root", s(&lib)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with(&format!("neardup: roots: {} (given with --root)", s(&lib))),
        "{err}"
    );
    // --root: exactly those roots; a member outside them refuses the plan.
    let mut w = with_victim.clone();
    w["parameters"]["roots"] = serde_json::json!(["/"]);
    let p = dir.path().join("edited.json");
    write_json(&p, &w);
    let (code, _, err) = run(&[
        "apply",
        s(&p),
        "--action",
        "delete",
        "--execute",
        "--root",
        s(&lib),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is outside the scanned roots"), "{err}");
    assert_eq!(std::fs::read(&outside).unwrap(), before);
    let gone = dir.path().join("nowhere");
    let (code, _, err) = run(&["apply", s(&p), "--action", "delete", "--root", s(&gone)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--root"), "{err}");
    // Another user's key (or a lost one) does not match.
    let mut c = bin();
    c.env("NEARDUP_SEAL_KEY", dir.path().join("other.key"));
    let out = c
        .args(["scan", "--mode", "copies", "--no-cache", "-q", "-o"])
        .arg(dir.path().join("theirs.json"))
        .arg(&lib)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, _, err) = run(&[
        "apply",
        s(&dir.path().join("theirs.json")),
        "--action",
        "delete",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("are not those its scan sealed"), "{err}");
}

#[cfg(unix)]
#[test]
fn the_seal_key_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("data/neardup/seal.key");
    let lib = dir.path().join("lib");
    noise_photo(&lib.join("x.jpg"), 1);
    let out = bin()
        .env("NEARDUP_SEAL_KEY", &key)
        .args(["scan", "--format", "json", "-q"])
        .arg(&lib)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["parameters"]["roots_seal"].as_str().unwrap().len(), 64);
    let m = std::fs::metadata(&key).unwrap();
    assert_eq!(m.len(), 32);
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
}

/// Case 5: the same bad plans get the same refusal from `report` and
/// `apply`, exit 2.
#[test]
fn report_and_apply_refuse_the_same_bad_plans() {
    let (dir, lib, _, plan, v) = roots_fixture();
    let text = serde_json::to_string_pretty(&v).unwrap();
    let keeper_line = format!("\"keeper\": \"{}\"", s(&lib.join("x.jpg")));
    let mut cases: Vec<(&str, String)> = Vec::new();
    // A duplicated keeper key (serde_json::Value would keep the last).
    let dup = text.replacen(
        "\"keeper\":",
        &format!("{keeper_line},\n      \"keeper\":"),
        1,
    );
    assert_ne!(dup, text);
    cases.push(("given twice", dup));
    // A duplicated key where the report ignores it.
    cases.push((
        "given twice",
        text.replacen("\"stats\": {", "\"stats\": {\"zz\": 1, \"zz\": 2,", 1),
    ));
    let mut w = v.clone();
    w["schema_version"] = 2.into();
    cases.push(("schema_version 2", w.to_string()));
    let mut w = v.clone();
    let mut deep = serde_json::json!(1);
    for _ in 0..100 {
        deep = serde_json::json!([deep]);
    }
    w["parameters"]["extra"] = deep;
    cases.push(("nested deeper than", w.to_string()));
    let mut w = v.clone();
    w["tool"]["name"] = "other".into();
    cases.push(("is not a neardup JSON report", w.to_string()));
    cases.push(("not valid JSON", text[..text.len() / 2].to_string()));
    for (want, body) in cases {
        let p = dir.path().join("bad.json");
        std::fs::write(&p, body).unwrap();
        let (rc, _, rerr) = run(&["report", s(&p)]);
        let (ac, _, aerr) = run(&["apply", s(&p), "--action", "delete", "--execute"]);
        assert_eq!((rc, ac), (2, 2), "{want}: {rerr} / {aerr}");
        assert!(rerr.contains(want), "{want}: {rerr}");
        assert_eq!(rerr.lines().last(), aerr.lines().last(), "{want}");
        assert!(lib.join("x.jpg").exists() && lib.join("y.jpg").exists());
    }
    // A FIFO is refused at once (never waited on), by both.
    #[cfg(unix)]
    {
        let fifo = dir.path().join("fifo.json");
        let c = std::ffi::CString::new(s(&fifo)).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (rc, _, rerr) = run(&["report", s(&fifo)]);
        let (ac, _, aerr) = run(&["apply", s(&fifo), "--action", "delete"]);
        assert_eq!((rc, ac), (2, 2), "{rerr} / {aerr}");
        assert!(rerr.contains("not a regular file"), "{rerr}");
        assert_eq!(rerr.lines().last(), aerr.lines().last());
    }
    // The good plan still reads.
    let (code, out, err) = run(&["report", s(&plan)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("x.jpg"), "{out}");
}

/// Case 6: the opening line counts what passed the checks, in English.
#[test]
fn the_opening_line_counts_what_passes_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for (k, name) in ["a", "b"].iter().enumerate() {
        let x = root.join(format!("{name}/x.jpg"));
        noise_photo(&x, 20 + k as u64);
        std::fs::copy(&x, x.with_file_name("y.jpg")).unwrap();
    }
    let plan = dir.path().join("plan.json");
    let v = scan_copies(&plan, &root);
    let both: u64 = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["members"][0]["bytes"].as_u64().unwrap())
        .sum();
    let (code, _, err) = run(&["apply", s(&plan), "--action", "delete"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "neardup: would delete 2 files, {} ({both} bytes)",
            neardup::report::human_bytes(both)
        )),
        "{err}"
    );
    // Group b's keeper changes after the scan (a check only the hash
    // sees: same size and mtime): its member is not deleted.
    let kb = v["groups"][1]["keeper"].as_str().unwrap().to_string();
    let m = std::fs::metadata(&kb).unwrap();
    let mut b = std::fs::read(&kb).unwrap();
    let n = b.len();
    b[n - 3] ^= 0x55;
    std::fs::write(&kb, &b).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&kb)
        .unwrap()
        .set_modified(m.modified().unwrap())
        .unwrap();
    let a_member = v["groups"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] != v["groups"][0]["keeper"])
        .unwrap()
        .clone();
    let bytes = a_member["bytes"].as_u64().unwrap();
    let want = |verb: &str| {
        format!(
            "neardup: {verb} 1 file, {} ({bytes} bytes)",
            neardup::report::human_bytes(bytes)
        )
    };
    let (code, _, err) = run(&["apply", s(&plan), "--action", "delete"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&want("would delete")), "{err}");
    assert!(err.contains("would delete 1 file ("), "{err}");
    let (code, _, err) = run(&["apply", s(&plan), "--action", "delete", "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&want("deleting")), "{err}");
    assert!(err.contains("delete 1 file, "), "{err}");
    assert!(!Path::new(a_member["path"].as_str().unwrap()).exists());
    assert!(Path::new(&kb).exists());
}
