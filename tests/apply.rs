//! `neardup apply` and `neardup undo` on photos made here: dry runs, every
//! action, undo, bad plans and injected faults. Every test counts the photos
//! by content before and after: no photo's content may be gone unless the
//! action was delete or trash.

mod common;
use common::*;
use image::ImageFormat;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A library under `root`:
/// - group A: `a/orig.jpg`, its byte copy `a/copy/orig.jpg`, a half-size
///   `b/small.jpg` (keeper: `a/copy/orig.jpg` or `a/orig.jpg`, same pixels and
///   bytes, so the path decides: `a/copy/orig.jpg`);
/// - group B: `c/p.png` and the same photo as `c/p.jpg` (keeper: the PNG);
/// - `d/solo.jpg`, in no group.
fn make_library(root: &Path) {
    let a = load(&album().join("day1/DSC_0045.JPG"));
    save(&a, &root.join("a/orig.jpg"), ImageFormat::Jpeg);
    std::fs::create_dir_all(root.join("a/copy")).unwrap();
    std::fs::copy(root.join("a/orig.jpg"), root.join("a/copy/orig.jpg")).unwrap();
    let (w, h) = a.dimensions();
    let small = image::imageops::resize(&a, w / 2, h / 2, image::imageops::FilterType::Triangle);
    save(&small, &root.join("b/small.jpg"), ImageFormat::Jpeg);
    let b = load(&album().join("day2/phone/IMG_0002.JPG"));
    save(&b, &root.join("c/p.png"), ImageFormat::Png);
    std::fs::create_dir_all(root.join("c")).unwrap();
    save_jpeg_quality(&b, &root.join("c/p.jpg"), 85);
    let d = load(&album().join("day2/phone/IMG_0003.JPG"));
    save(&d, &root.join("d/solo.jpg"), ImageFormat::Jpeg);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Scan `roots` into `plan` (JSON); returns the report.
fn scan_plan(plan: &Path, extra: &[&str]) -> neardup::report::Report {
    let mut args = vec!["scan", "--mode", "edits", "-q", "-o", s(plan)];
    args.extend_from_slice(extra);
    let (code, _, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    neardup::report::read_json(&std::fs::read_to_string(plan).unwrap()).unwrap()
}

/// Every regular file under the folders (links not followed), by content:
/// content -> paths.
fn census(dirs: &[&Path]) -> BTreeMap<String, BTreeSet<PathBuf>> {
    let mut out: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    for d in dirs {
        if !d.exists() {
            continue;
        }
        for e in walkdir::WalkDir::new(d).follow_links(false) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let c = neardup::apply::content_of(e.path()).unwrap();
                out.entry(c).or_default().insert(e.path().to_path_buf());
            }
        }
    }
    out
}

/// No content of `before` is missing from `after`.
fn nothing_lost(
    before: &BTreeMap<String, BTreeSet<PathBuf>>,
    after: &BTreeMap<String, BTreeSet<PathBuf>>,
) {
    for (c, paths) in before {
        assert!(
            after.contains_key(c),
            "the content of {paths:?} is gone; after: {after:#?}"
        );
    }
}

/// Paths (relative to `root`) with their contents: to check a full restore.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (String, i64)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false) {
        let e = e.unwrap();
        if e.file_type().is_file() || e.file_type().is_symlink() {
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let c = if meta.is_file() {
                neardup::apply::content_of(e.path()).unwrap()
            } else {
                format!("link:{}", std::fs::read_link(e.path()).unwrap().display())
            };
            out.insert(rel, (c, neardup::cache::mtime_ns(&meta)));
        }
    }
    out
}

fn apply(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c: Command = bin();
    c.arg("apply").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    base: PathBuf,
    lib: PathBuf,
    plan: PathBuf,
    report: neardup::report::Report,
}

fn fixture(extra: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let lib = base.join("lib");
    make_library(&lib);
    let plan = base.join("plan.json");
    let mut args = extra.to_vec();
    args.push(s(&lib));
    let report = scan_plan(&plan, &args);
    Fixture {
        _dir: dir,
        base,
        lib,
        plan,
        report,
    }
}

fn keeper_of<'a>(r: &'a neardup::report::Report, name: &str) -> &'a str {
    r.groups
        .iter()
        .find(|g| g.files.iter().any(|f| f.ends_with(name)))
        .and_then(|g| g.keeper.as_deref())
        .unwrap()
}

#[test]
fn scan_names_a_keeper_per_group_and_the_new_fields() {
    let f = fixture(&[]);
    let r = &f.report;
    assert_eq!(r.groups.len(), 2, "{r:?}");
    assert!(keeper_of(r, "small.jpg").ends_with("a/copy/orig.jpg"));
    assert!(keeper_of(r, "p.png").ends_with("c/p.png"));
    let g = r
        .groups
        .iter()
        .find(|g| g.files.iter().any(|p| p.ends_with("p.png")))
        .unwrap();
    assert_eq!(
        g.keeper_reason.as_deref(),
        Some("larger file (724.1 kB vs 113.3 kB)")
    );
    let ga = r
        .groups
        .iter()
        .find(|g| g.files.iter().any(|p| p.ends_with("small.jpg")))
        .unwrap();
    assert_eq!(
        ga.keeper_reason.as_deref(),
        Some("otherwise equal: its path sorts first")
    );
    for m in r.groups.iter().flat_map(|g| &g.members) {
        let c = m.content.as_deref().unwrap();
        assert_eq!(c, neardup::apply::content_of(Path::new(&m.path)).unwrap());
        assert!(m.mtime_ns.is_some() && m.modified.as_deref().unwrap().ends_with('Z'));
    }
    assert_eq!(r.parameters.keep[0], neardup::keep::Criterion::Pixels);
    // The text report shows the keeper.
    let (code, out, err) = run(&["scan", "--mode", "edits", "-q", s(&f.lib)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "  keep: {} (larger file (724.1 kB vs 113.3 kB))\n",
            f.lib.join("c/p.png").display()
        )),
        "{out}"
    );
    // --keep smallest picks the small copy; --reference makes a folder win.
    let (code, out, err) = run(&[
        "scan",
        "--mode",
        "edits",
        "--format",
        "json",
        "--keep",
        "smallest",
        s(&f.lib),
    ]);
    assert_eq!(code, 0, "{err}");
    let r2 = neardup::report::read_json(&out).unwrap();
    assert!(keeper_of(&r2, "small.jpg").ends_with("b/small.jpg"));
    let refdir = f.lib.join("c");
    let (code, out, err) = run(&[
        "scan",
        "--mode",
        "edits",
        "--format",
        "json",
        "--reference",
        s(&refdir),
        s(&f.lib),
    ]);
    assert_eq!(code, 0, "{err}");
    let r3 = neardup::report::read_json(&out).unwrap();
    let g = r3
        .groups
        .iter()
        .find(|g| g.files.iter().any(|p| p.ends_with("p.png")))
        .unwrap();
    assert!(g.members.iter().all(|m| m.reference));
    assert_eq!(r3.parameters.reference, vec![s(&refdir).to_string()]);
    let (code, _, err) = run(&["scan", "--keep", "biggest", s(&f.lib)]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown criterion"), "{err}");
}

#[test]
fn exif_metadata_is_reported_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let a = load(&album().join("day1/DSC_0046.JPG"));
    std::fs::create_dir_all(&lib).unwrap();
    save_jpeg_quality(&a, &lib.join("plain.jpg"), 90);
    let jpeg = std::fs::read(lib.join("plain.jpg")).unwrap();
    let fields = [
        exif::Field {
            tag: exif::Tag::Make,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Ascii(vec![b"Canon".to_vec()]),
        },
        exif::Field {
            tag: exif::Tag::Model,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Ascii(vec![b"Canon EOS R5".to_vec()]),
        },
        exif::Field {
            tag: exif::Tag::DateTimeOriginal,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Ascii(vec![b"2018:07:01 12:00:00".to_vec()]),
        },
    ];
    let mut w = exif::experimental::Writer::new();
    for f in &fields {
        w.push_field(f);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    w.write(&mut tiff, false).unwrap();
    let tiff = tiff.into_inner();
    let mut with = jpeg[..2].to_vec();
    with.extend_from_slice(&[0xFF, 0xE1]);
    with.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    with.extend_from_slice(b"Exif\0\0");
    with.extend_from_slice(&tiff);
    with.extend_from_slice(&jpeg[2..]);
    std::fs::write(lib.join("tagged.jpg"), &with).unwrap();
    let cache = dir.path().join("c.sqlite");
    let cold = scan_json(&["--mode", "copies", "--cache", s(&cache), s(&lib)]);
    let warm = scan_json(&["--mode", "copies", "--cache", s(&cache), s(&lib)]);
    assert_eq!(cold, warm);
    assert_eq!(cold.groups.len(), 1, "{cold:?}");
    let g = &cold.groups[0];
    let m = g
        .members
        .iter()
        .find(|m| m.path.ends_with("tagged.jpg"))
        .unwrap();
    assert_eq!(m.captured.as_deref(), Some("2018-07-01T12:00:00"));
    assert_eq!(m.camera.as_deref(), Some("Canon EOS R5"));
    assert_eq!(m.exif_fields, 3);
    assert!(!m.gps);
    // Same pixels; the tagged file is larger, so it is kept.
    assert!(g.keeper.as_deref().unwrap().ends_with("tagged.jpg"));
    // With size out of the way (smallest first would pick plain), exif decides
    // among equals: --keep exif puts it first.
    let r = scan_json(&[
        "--mode",
        "copies",
        "--keep",
        "exif",
        "--cache",
        s(&cache),
        s(&lib),
    ]);
    assert_eq!(
        r.groups[0].keeper_reason.as_deref(),
        Some("more EXIF metadata (capture date, camera vs none)")
    );
}

#[test]
fn dry_run_changes_nothing_then_move_and_undo_restore_everything() {
    let f = fixture(&[]);
    let to = f.base.join("dupes");
    let before = snapshot(&f.lib);
    let census0 = census(&[&f.lib]);
    let (code, out, err) = apply(&[s(&f.plan), "--action", "move", "--to", s(&to)], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "move     {} -> {}",
            f.lib.join("b/small.jpg").display(),
            to.join("b/small.jpg").display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "move     {} -> {}",
            f.lib.join("c/p.jpg").display(),
            to.join("c/p.jpg").display()
        )),
        "{out}"
    );
    assert!(out.contains("keep     "), "{out}");
    assert!(err.contains("dry run: would move 3 files"), "{err}");
    assert_eq!(snapshot(&f.lib), before, "a dry run changed files");
    assert!(!to.exists());
    assert!(!f.base.join("plan.journal.jsonl").exists());

    // A name already taken at the destination gets a suffix.
    std::fs::create_dir_all(to.join("c")).unwrap();
    std::fs::write(to.join("c/p.jpg"), b"someone else's file").unwrap();
    let (code, out, err) = apply(
        &[s(&f.plan), "--action", "move", "--to", s(&to), "--execute"],
        &[],
    );
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(err.contains("move 3 files"), "{err}");
    let journal = f.base.join("plan.journal.jsonl");
    assert!(journal.exists());
    assert_eq!(
        std::fs::read(to.join("c/p.jpg")).unwrap(),
        b"someone else's file"
    );
    assert!(
        to.join("c/p-1.jpg").exists()
            && to.join("b/small.jpg").exists()
            && to.join("a/orig.jpg").exists()
    );
    assert!(!f.lib.join("b/small.jpg").exists());
    assert!(f.lib.join("a/copy/orig.jpg").exists() && f.lib.join("c/p.png").exists());
    nothing_lost(&census0, &census(&[&f.lib, &to]));

    // Undo: a dry run first, then for real; a second undo has nothing left.
    let (code, out, _) = run(&["undo", s(&journal)]);
    assert_eq!(code, 0);
    assert!(out.contains("restore "), "{out}");
    assert!(!f.lib.join("b/small.jpg").exists());
    let (code, out, err) = run(&["undo", s(&journal), "--execute"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(snapshot(&f.lib), before, "undo did not restore everything");
    let (code, out, _) = run(&["undo", s(&journal), "--execute"]);
    assert_eq!(code, 0);
    assert!(out.contains("undone") && !out.contains("restored"), "{out}");
    // A second apply does not overwrite the first journal.
    let (code, _, err) = apply(
        &[s(&f.plan), "--action", "move", "--to", s(&to), "--execute"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(f.base.join("plan.journal-2.jsonl").exists());
}

#[test]
fn hardlink_symlink_and_their_undo() {
    let f = fixture(&[]);
    let before = snapshot(&f.lib);
    let census0 = census(&[&f.lib]);
    let keeper = f.lib.join("a/copy/orig.jpg");
    // Without --to only the identical copy is linked.
    let (code, out, err) = apply(
        &[
            s(&f.plan),
            "--action",
            "hardlink",
            "--execute",
            "--journal",
            s(&f.base.join("h.jsonl")),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("not byte-identical to the keeper"), "{out}");
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(&f.lib.join("a/orig.jpg")), ino(&keeper));
    assert_ne!(ino(&f.lib.join("b/small.jpg")), ino(&keeper));
    nothing_lost(&census0, &census(&[&f.lib]));
    let (code, _, err) = run(&["undo", s(&f.base.join("h.jsonl")), "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(ino(&f.lib.join("a/orig.jpg")), ino(&keeper));
    assert_eq!(snapshot(&f.lib), before);

    // Symlinks, with --to for the copies that are not identical.
    let backup = f.base.join("originals");
    let j = f.base.join("s.jsonl");
    let (code, out, err) = apply(
        &[
            s(&f.plan),
            "--action",
            "symlink",
            "--to",
            s(&backup),
            "--execute",
            "--journal",
            s(&j),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}\n{out}");
    for p in ["a/orig.jpg", "b/small.jpg", "c/p.jpg"] {
        let l = std::fs::read_link(f.lib.join(p)).unwrap();
        assert!(l.is_absolute(), "{l:?}");
    }
    assert!(backup.join("b/small.jpg").exists() && backup.join("c/p.jpg").exists());
    assert!(!backup.join("a/orig.jpg").exists());
    nothing_lost(&census0, &census(&[&f.lib, &backup]));
    let (code, _, err) = run(&["undo", s(&j), "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(snapshot(&f.lib), before);
}

#[test]
fn delete_says_what_it_frees_and_trash_is_undone() {
    let f = fixture(&[]);
    let census0 = census(&[&f.lib]);
    let before = snapshot(&f.lib);
    let bytes: u64 = ["a/orig.jpg", "b/small.jpg", "c/p.jpg"]
        .iter()
        .map(|p| std::fs::metadata(f.lib.join(p)).unwrap().len())
        .sum();
    let (code, _, err) = apply(&[s(&f.plan), "--action", "delete"], &[]);
    assert_eq!(code, 0);
    assert!(
        err.contains(&format!(
            "would delete 3 files, {} ({bytes} bytes)",
            neardup::report::human_bytes(bytes)
        )),
        "{err}"
    );
    assert_eq!(snapshot(&f.lib), before);

    // Trash, in a desktop trash of this test.
    let data = f.base.join("xdg-data");
    std::fs::create_dir_all(&data).unwrap();
    let env = [("XDG_DATA_HOME", s(&data)), ("HOME", s(&f.base))];
    let j = f.base.join("t.jsonl");
    let (code, out, err) = apply(
        &[
            s(&f.plan),
            "--action",
            "trash",
            "--execute",
            "--journal",
            s(&j),
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(!f.lib.join("b/small.jpg").exists());
    let trash = data.join("Trash/files");
    assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 3);
    nothing_lost(&census0, &census(&[&f.lib, &trash]));
    let mut c = bin();
    c.args(["undo", s(&j), "--execute"]);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(&f.lib), before);

    // Delete for real: the keepers stay, undo cannot bring the rest back.
    let j = f.base.join("d.jsonl");
    let (code, _, err) = apply(
        &[
            s(&f.plan),
            "--action",
            "delete",
            "--execute",
            "--journal",
            s(&j),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "deleting 3 files, {}",
            neardup::report::human_bytes(bytes)
        )),
        "{err}"
    );
    let after = census(&[&f.lib]);
    for g in &f.report.groups {
        let k = g
            .members
            .iter()
            .find(|m| Some(&m.path) == g.keeper.as_ref())
            .unwrap();
        assert!(after.contains_key(k.content.as_deref().unwrap()));
    }
    assert!(f.lib.join("d/solo.jpg").exists());
    let (code, out, _) = run(&["undo", s(&j), "--execute"]);
    assert_eq!(code, 1);
    assert!(out.contains("a deleted file cannot be restored"), "{out}");
}

#[test]
fn bad_plans_are_refused_before_anything_is_touched() {
    let f = fixture(&[]);
    let before = snapshot(&f.lib);
    let to = f.base.join("dupes");
    let text = std::fs::read_to_string(&f.plan).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(&str, String)> = {
        let mut c = Vec::new();
        c.push(("not valid JSON", text[..text.len() / 2].to_string()));
        let mut w = v.clone();
        w["schema_version"] = 2.into();
        c.push(("schema_version 2", w.to_string()));
        let mut w = v.clone();
        let extra = w["groups"][0]["members"][1].clone();
        w["groups"][1]["members"]
            .as_array_mut()
            .unwrap()
            .push(extra.clone());
        w["groups"][1]["files"]
            .as_array_mut()
            .unwrap()
            .push(extra["path"].clone());
        c.push(("is listed in groups 1 and 2", w.to_string()));
        let mut w = v.clone();
        w["groups"][0]["members"][0]["path"] = "/etc/passwd".into();
        w["groups"][0]["files"][0] = "/etc/passwd".into();
        c.push(("is outside the scanned roots", w.to_string()));
        let mut w = v.clone();
        let dotdot = format!("{}/../../etc/passwd", f.lib.display());
        w["groups"][0]["members"][0]["path"] = dotdot.clone().into();
        w["groups"][0]["files"][0] = dotdot.into();
        c.push(("is outside the scanned roots", w.to_string()));
        let mut w = v.clone();
        w["groups"][0]["keeper"] = s(&f.lib.join("d/solo.jpg")).into();
        c.push(("is not one of its members", w.to_string()));
        let mut w = v.clone();
        w["groups"][0]["members"][0]
            .as_object_mut()
            .unwrap()
            .remove("content");
        c.push(("written by an older neardup", w.to_string()));
        let mut w = v.clone();
        w["groups"][0]["files"].as_array_mut().unwrap().pop();
        c.push((
            "\"files\" and \"members\" list different paths",
            w.to_string(),
        ));
        c.push((
            "is not a neardup JSON report",
            "{\"groups\": []}".to_string(),
        ));
        c
    };
    for (want, plan) in cases {
        let p = f.base.join("bad.json");
        std::fs::write(&p, plan).unwrap();
        let (code, _, err) = apply(
            &[s(&p), "--action", "move", "--to", s(&to), "--execute"],
            &[],
        );
        assert_eq!(code, 2, "{want}: {err}");
        assert!(err.contains(want), "expected {want:?} in: {err}");
        assert_eq!(snapshot(&f.lib), before, "{want}");
        assert!(!to.exists(), "{want}");
        assert!(!f.base.join("bad.journal.jsonl").exists(), "{want}");
    }
    // Flags that do not fit.
    let (code, _, err) = apply(&[s(&f.plan), "--action", "move"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--to DIR"), "{err}");
    let (code, _, err) = apply(&[s(&f.plan), "--action", "delete", "--to", s(&to)], &[]);
    assert_eq!(code, 2, "{err}");
    let j = f.base.join("exists.jsonl");
    std::fs::write(&j, "mine").unwrap();
    let (code, _, err) = apply(
        &[
            s(&f.plan),
            "--action",
            "delete",
            "--execute",
            "--journal",
            s(&j),
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("never overwritten"), "{err}");
    assert_eq!(std::fs::read(&j).unwrap(), b"mine");
    assert_eq!(snapshot(&f.lib), before);
}

#[test]
fn changed_gone_reference_and_escaping_files_are_skipped() {
    let f = fixture(&[]);
    // Changed after the scan (same size, other bytes, mtime kept): only the
    // hash can tell.
    let p = f.lib.join("a/orig.jpg");
    let m = std::fs::metadata(&p).unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&p, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(m.modified().unwrap())
        .unwrap();
    // Gone.
    std::fs::remove_file(f.lib.join("b/small.jpg")).unwrap();
    // The keeper of group B changed: nothing in B is touched.
    let png = f.lib.join("c/p.png");
    let mut b = std::fs::read(&png).unwrap();
    b.push(0);
    std::fs::write(&png, b).unwrap();
    let census1 = census(&[&f.lib]);
    let to = f.base.join("dupes");
    let (code, out, err) = apply(
        &[s(&f.plan), "--action", "move", "--to", s(&to), "--execute"],
        &[],
    );
    assert_eq!(code, 0, "documented skips exit 0: {err}");
    assert!(out.contains("changed since the scan (content)"), "{out}");
    assert!(out.contains("gone since the scan"), "{out}");
    assert!(out.contains("is not as scanned"), "{out}");
    assert!(err.contains("3 skipped"), "{err}");
    assert!(f.lib.join("a/orig.jpg").exists() && f.lib.join("c/p.jpg").exists());
    assert_eq!(census(&[&f.lib, &to]), census1);
    // Apply changed nothing at all: every skip left its file alone.
}

#[test]
fn reference_folders_and_links_out_of_the_roots_are_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let archive = dir.path().join("archive");
    let a = load(&album().join("day1/DSC_0045.JPG"));
    save(&a, &archive.join("orig.jpg"), ImageFormat::Jpeg);
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(archive.join("orig.jpg"), lib.join("copy.jpg")).unwrap();
    save(&a, &lib.join("copy.png"), ImageFormat::Png);
    let plan = dir.path().join("plan.json");
    let r = scan_plan(&plan, &["--reference", s(&archive), s(&lib)]);
    assert_eq!(r.groups.len(), 1, "{r:?}");
    let g = &r.groups[0];
    assert!(g.keeper.as_deref().unwrap().ends_with("archive/orig.jpg"));
    assert_eq!(g.keeper_reason.as_deref(), Some("in a reference folder"));
    // A hand-edited plan makes the PNG the keeper: the archive is still kept.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    v["groups"][0]["keeper"] = s(&lib.join("copy.png")).into();
    std::fs::write(&plan, v.to_string()).unwrap();
    let before = snapshot(&archive);
    let (code, out, err) = apply(&[s(&plan), "--action", "delete", "--execute"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("in a reference folder"), "{out}");
    assert_eq!(snapshot(&archive), before);
    assert!(!lib.join("copy.jpg").exists() && lib.join("copy.png").exists());

    // A member whose folder became a link out of the roots after the scan.
    let dir2 = tempfile::tempdir().unwrap();
    let lib2 = dir2.path().join("lib");
    let outside = dir2.path().join("outside");
    save(&a, &lib2.join("sub/x.jpg"), ImageFormat::Jpeg);
    save(&a, &lib2.join("keep.png"), ImageFormat::Png);
    let plan2 = dir2.path().join("plan.json");
    let r = scan_plan(&plan2, &[s(&lib2)]);
    assert!(r.groups[0].keeper.as_deref().unwrap().ends_with("keep.png"));
    std::fs::rename(lib2.join("sub"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, lib2.join("sub")).unwrap();
    let census0 = census(&[&outside]);
    let (code, out, err) = apply(&[s(&plan2), "--action", "delete", "--execute"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("resolves outside the scanned roots"), "{out}");
    assert_eq!(census(&[&outside]), census0);
}

/// Faults: a read-only destination (chmod, and chattr +i when run as root,
/// who ignores modes; when neither holds, a file in place of a destination
/// folder), a full one (a tiny tmpfs when it can be mounted, and always the
/// injected "no space left" of NEARDUP_TEST_FAULTS).
#[test]
fn unwritable_or_full_destination_loses_nothing() {
    let f = fixture(&[]);
    let census0 = census(&[&f.lib]);
    let before = snapshot(&f.lib);
    use std::os::unix::fs::PermissionsExt;

    // Read-only.
    let ro = f.base.join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let writable = |d: &Path| {
        let probe = d.join("probe");
        let ok = std::fs::write(&probe, b"x").is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    };
    let mut chattr = false;
    if writable(&ro) {
        chattr = Command::new("chattr")
            .args(["+i", s(&ro)])
            .status()
            .is_ok_and(|s| s.success());
    }
    let dest = if writable(&ro) {
        // Neither works here: a file where a destination folder must go.
        eprintln!("note: cannot make a read-only folder here; using a file in place of a folder");
        std::fs::write(ro.join("a"), b"a file, not a folder").unwrap();
        ro.clone()
    } else {
        ro.clone()
    };
    let (code, out, err) = apply(
        &[
            s(&f.plan),
            "--action",
            "move",
            "--to",
            s(&dest),
            "--execute",
            "--journal",
            s(&f.base.join("ro.jsonl")),
        ],
        &[],
    );
    if chattr {
        let _ = Command::new("chattr").args(["-i", s(&ro)]).status();
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(err.contains("failed"), "{err}");
    assert_eq!(snapshot(&f.lib), before);
    nothing_lost(&census0, &census(&[&f.lib]));

    // Full, injected: the second copy runs out of space part-way.
    let full = f.base.join("full");
    let first = std::fs::metadata(f.lib.join("a/orig.jpg")).unwrap().len();
    let fault = format!("force_copy,enospc_after={}", first + 100);
    let j = f.base.join("full.jsonl");
    let (code, out, err) = apply(
        &[
            s(&f.plan),
            "--action",
            "move",
            "--to",
            s(&full),
            "--execute",
            "--journal",
            s(&j),
        ],
        &[("NEARDUP_TEST_FAULTS", &fault)],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("No space left on device"), "{out}");
    nothing_lost(&census0, &census(&[&f.lib, &full]));
    // No partial copy is left behind: every file at the destination is whole.
    let at_dest = census(&[&full]);
    for c in at_dest.keys() {
        assert!(
            census0.contains_key(c),
            "partial file at the destination: {at_dest:?}"
        );
    }
    let (code, _, err) = run(&["undo", s(&j), "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(snapshot(&f.lib), before);

    // Full, for real: a tiny tmpfs (another file system: copy, fsync, verify,
    // remove), when this machine lets the test mount one.
    let mnt = f.base.join("tiny");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs", s(&mnt)])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("note: cannot mount a tmpfs here; the injected fault above stands in");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let j = f.base.join("tmpfs.jsonl");
    let (code, out, err) = apply(
        &[
            s(&f.plan),
            "--action",
            "move",
            "--to",
            s(&mnt),
            "--execute",
            "--journal",
            s(&j),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
    nothing_lost(&census0, &census(&[&f.lib, &mnt]));
    for c in census(&[&mnt]).keys() {
        assert!(census0.contains_key(c), "partial file on the full tmpfs");
    }
    let (code, _, err) = run(&["undo", s(&j), "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(snapshot(&f.lib), before);
}

/// Kill the process at every checkpoint of a run (just before a change,
/// just after it, between a copy and the removal of its source, between a
/// link and the replacement), then undo: everything is back.
#[test]
fn killed_at_any_point_undo_restores_everything() {
    let f = fixture(&[]);
    let pristine = f.base.join("pristine");
    copy_tree(&f.lib, &pristine);
    let before = snapshot(&f.lib);
    let census0 = census(&[&f.lib]);
    // (action, faults, --to, checkpoints at least: 3 per file acted on)
    let cases: [(&str, &str, bool, u64); 4] = [
        ("move", "", true, 9),
        ("move", "force_copy", true, 9),
        ("hardlink", "", false, 3),
        ("symlink", "", true, 9),
    ];
    for (action, extra, with_to, least) in cases {
        for n in 1.. {
            // A fresh library, same paths, same mtimes: the plan still holds.
            let _ = std::fs::remove_dir_all(&f.lib);
            copy_tree(&pristine, &f.lib);
            assert_eq!(snapshot(&f.lib), before);
            let to = f.base.join(format!("to-{action}-{n}"));
            let j = f.base.join(format!("kill-{action}-{extra}-{n}.jsonl"));
            let fault = format!("abort_at={n},{extra}");
            let mut args = vec![
                s(&f.plan),
                "--action",
                action,
                "--execute",
                "--journal",
                s(&j),
            ];
            if with_to {
                args.extend_from_slice(&["--to", s(&to)]);
            }
            let (code, out, err) = apply(&args, &[("NEARDUP_TEST_FAULTS", &fault)]);
            nothing_lost(&census0, &census(&[&f.lib, &to]));
            let (ucode, uout, uerr) = run(&["undo", s(&j), "--execute"]);
            assert_eq!(ucode, 0, "{action} {extra} abort at {n}: {uout}{uerr}");
            assert_eq!(
                snapshot(&f.lib),
                before,
                "{action} {extra} abort at {n}: {uout}"
            );
            if code == 0 {
                // The run finished before checkpoint n: every point was tried
                // (at least two per file acted on).
                eprintln!("{action} {extra}: killed at each of {} checkpoints", n - 1);
                assert!(n > least, "{out}{err}");
                break;
            }
            assert_ne!(code, 1, "{action} abort at {n}: {out}{err}");
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
            let m = std::fs::metadata(e.path()).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&dest)
                .unwrap()
                .set_modified(m.modified().unwrap())
                .unwrap();
        }
    }
}
