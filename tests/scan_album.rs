//! The real bundled model on the sample album shipped in the repository.

mod common;
use common::*;
use neardup::decode::SkipKind;

#[derive(serde::Deserialize)]
struct Expected {
    groups: Vec<Vec<String>>,
    singletons: Vec<String>,
    junk: Vec<String>,
}

#[test]
fn sample_album_gives_the_expected_groups_and_skips_the_junk() {
    let expected: Expected = serde_json::from_str(
        &std::fs::read_to_string(repo().join("samples/expected.json")).unwrap(),
    )
    .unwrap();
    let root = album();
    let report = scan_json(&[root.to_str().unwrap()]);

    let mut want = expected.groups.clone();
    want.iter_mut().for_each(|g| g.sort());
    want.sort();
    assert_eq!(groups_rel(&report, &root), want);

    // The junk is listed with a reason, not grouped.
    let skipped: Vec<String> = report
        .stats
        .skipped
        .iter()
        .map(|s| {
            std::path::Path::new(&s.path)
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut junk = expected.junk.clone();
    junk.sort();
    assert_eq!(skipped, junk);
    assert!(report
        .stats
        .skipped
        .iter()
        .all(|s| matches!(s.kind, SkipKind::NotAnImage | SkipKind::Corrupt)));

    // Every singleton was embedded and is in no group.
    let grouped: Vec<&String> = report.groups.iter().flat_map(|g| &g.files).collect();
    for s in &expected.singletons {
        assert!(
            !grouped.iter().any(|g| g.ends_with(s.as_str())),
            "{s} was grouped"
        );
    }
    let total = expected.groups.iter().map(Vec::len).sum::<usize>() + expected.singletons.len();
    assert_eq!(report.stats.photos_embedded as usize, total);
    assert_eq!(
        report.stats.files_seen as usize,
        total + expected.junk.len()
    );

    // The report describes the model and the parameters.
    assert_eq!(
        report.model.sha256,
        "0a7bb2ba6fe9ef80e0f186f540dfaf7429c43a194ced7239a7ce1f4ad67bb3a9"
    );
    assert_eq!(report.model.source, "bundled");
    assert_eq!(report.model.dimension, 1280);
    assert_eq!(report.parameters.threshold, 0.21);
    assert!(report.parameters.pair_recall_at_threshold >= 0.99);
    assert!(report.stats.seconds.is_none());

    // Pairs carry exact distances under the threshold; the byte copy is at 0.
    for g in &report.groups {
        assert!(!g.pairs.is_empty());
        for p in &g.pairs {
            assert!(p.distance >= 0.0 && p.distance <= 0.21, "{p:?}");
            assert!(g.files.contains(&p.a) && g.files.contains(&p.b));
        }
        for m in &g.members {
            assert!(m.width > 0 && m.height > 0 && m.bytes > 0);
        }
    }
    let copy = report
        .groups
        .iter()
        .flat_map(|g| &g.pairs)
        .find(|p| p.a.ends_with("IMG_0001 (1).JPG"))
        .unwrap();
    assert_eq!(copy.distance, 0.0);
    // The EXIF-rotated copy is reported with its displayed (portrait) size.
    let rotated = report
        .groups
        .iter()
        .flat_map(|g| &g.members)
        .find(|m| m.path.ends_with("shared/IMG_0005.JPG"))
        .unwrap();
    assert!(rotated.height > rotated.width, "{rotated:?}");
}

#[test]
fn same_input_same_bytes_in_json_and_text() {
    let root = album();
    let r = root.to_str().unwrap();
    for fmt in ["json", "text"] {
        let a = run(&["scan", "--format", fmt, "--quiet", r]);
        let b = run(&["scan", "--format", fmt, "--quiet", "--threads", "1", r]);
        assert_eq!(a.0, 0, "{}", a.2);
        assert_eq!(a.1, b.1, "{fmt} output differs between runs");
    }
}

#[test]
fn text_output_and_summary() {
    let (code, out, err) = run(&["scan", album().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Group 1 · 3 photos · edited\n"), "{out}");
    assert!(out.contains("distances:"));
    assert!(
        err.contains("21 files, 19 photos scanned")
            && err.contains(", 2 skipped, 4 groups (10 photos) in "),
        "{err}"
    );
    assert!(
        err.contains("warning:") && err.contains("notes_IMG_9999.jpg: not an image"),
        "{err}"
    );
    // No progress bar escape codes when stderr is not a terminal.
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn output_file_and_timings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let (code, stdout, err) = run(&[
        "scan",
        "--quiet",
        "--timings",
        "-o",
        out.to_str().unwrap(),
        album().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.is_empty());
    let report = neardup::report::read_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let s = report.stats.seconds.expect("timings");
    assert!(s.total > 0.0 && s.decode_embed > 0.0 && s.total >= s.decode_embed);
}

#[test]
fn reduced_scale_decode_gives_the_groups_of_a_full_decode() {
    // Most of the album's JPEGs are read at 1/2 or 1/4 scale; --plain-decode
    // reads every pixel with the same decoder. Same groups, and every pair's
    // distance within the tolerance the README gives (0.03).
    let root = album();
    let root_s = root.to_str().unwrap();
    let fast = scan_json(&["--no-cache", root_s]);
    let plain = scan_json(&["--plain-decode", root_s]);
    assert_eq!(groups_rel(&fast, &root), groups_rel(&plain, &root));
    let distances =
        |r: &neardup::report::Report| -> std::collections::BTreeMap<(String, String), f64> {
            r.groups
                .iter()
                .flat_map(|g| &g.pairs)
                .map(|p| ((p.a.clone(), p.b.clone()), p.distance))
                .collect()
        };
    let (df, dp) = (distances(&fast), distances(&plain));
    assert_eq!(df.keys().collect::<Vec<_>>(), dp.keys().collect::<Vec<_>>());
    assert!(!df.is_empty());
    let mut changed = 0;
    for (k, d) in &df {
        let delta = (d - dp[k]).abs();
        assert!(delta <= 0.03, "{k:?}: {d} fast, {} plain", dp[k]);
        changed += (delta > 0.0) as usize;
    }
    // The check is not vacuous: some photos were decoded at reduced scale.
    assert!(changed > 0, "no distance changed: nothing was scaled");
}
