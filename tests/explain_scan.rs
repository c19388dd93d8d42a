//! `neardup explain A B` measures a pair as the scan does: on every pair of
//! the sample album's reports, explain (with the scan's flags) gives the
//! scan's label, distance, inliers and mirror flag.

mod common;

use common::*;

/// Scan the album with `flags`, then explain every pair of its report with
/// the same flags; returns how many pairs had geometric inliers.
fn explain_agrees_with_scan(flags: &[&str]) -> usize {
    let album = album();
    let mut args = vec![album.to_str().unwrap(), "--no-cache"];
    args.extend_from_slice(flags);
    let report = scan_json(&args);
    let pairs: Vec<_> = report.groups.iter().flat_map(|g| &g.pairs).collect();
    assert!(pairs.len() >= 8, "{} pairs", pairs.len());
    let mut with_inliers = 0;
    for p in pairs {
        // The later path first: explain orders the pair as the scan does.
        let mut args = vec!["explain", "--json", &p.b, &p.a];
        args.extend_from_slice(flags);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        let e: serde_json::Value = serde_json::from_str(&out).unwrap();
        let what = format!("{} | {} with {flags:?}: {out}", p.a, p.b);
        assert_eq!(e["label"], p.label.as_str(), "{what}");
        assert_eq!(e["distance"].as_f64(), Some(p.distance), "{what}");
        assert_eq!(e["inliers"].as_u64(), p.inliers.map(u64::from), "{what}");
        assert_eq!(e["mirrored"].as_bool(), Some(p.mirrored), "{what}");
        // explain's A is the scan's b: the two shares swap.
        let coverage = p.coverage.map(|[x, y]| serde_json::json!([y, x]));
        assert_eq!(e["coverage"], coverage.unwrap_or_default(), "{what}");
        assert_eq!(e["a"]["path"], p.b.as_str(), "{what}");
        with_inliers += p.inliers.is_some() as usize;
    }
    with_inliers
}

#[test]
fn explain_agrees_with_the_default_scan_on_every_pair() {
    explain_agrees_with_scan(&[]);
}

#[test]
fn explain_agrees_with_a_scan_of_edits_with_mirrors_on_every_pair() {
    explain_agrees_with_scan(&["--mode", "edits", "--mirror"]);
}

/// A low threshold sends the album's edited copies through the geometric
/// check: explain finds the same inliers (same pair order, same seed).
#[test]
fn explain_agrees_with_the_geometric_check_on_every_pair() {
    let checked = explain_agrees_with_scan(&["--threshold", "0.015", "--min-inliers", "20"]);
    assert!(
        checked >= 5,
        "only {checked} pairs went through the geometric check"
    );
}
