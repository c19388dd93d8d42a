//! `--model PATH`: another CNN with its own sidecar (a tiny random-weight
//! CNN with ImageNet normalisation outside the graph, made by
//! tests/models/make_tiny_cnn.py).

mod common;
use common::*;
use image::{imageops, ImageFormat};
use neardup::model::ModelSource;

fn tiny() -> std::path::PathBuf {
    repo().join("tests/models/tiny_cnn.onnx")
}

#[test]
fn tract_output_matches_onnxruntime_reference() {
    #[derive(serde::Deserialize)]
    struct Reference {
        output: Vec<f32>,
    }
    let r: Reference = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/models/tiny_cnn_reference.json")).unwrap(),
    )
    .unwrap();
    let source = ModelSource::from_path(&tiny()).unwrap();
    let e = neardup::embed::Embedder::load(&source).unwrap();
    assert_eq!(e.dim(), 32);
    let input: Vec<f32> = (0..3 * 64 * 64)
        .map(|i| (i % 251) as f32 / 251.0 - 0.5)
        .collect();
    let got = e.run_tensor(&input).unwrap();
    assert_eq!(got.len(), r.output.len());
    for (g, w) in got.iter().zip(&r.output) {
        assert!((g - w).abs() < 1e-4, "{got:?} vs {:?}", r.output);
    }
}

#[test]
fn scan_with_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let src = load(&album().join("day1/DSC_0044.JPG"));
    let (w, h) = src.dimensions();
    save(&src, &root.join("a.jpg"), ImageFormat::Jpeg);
    save(&src, &root.join("a_copy.png"), ImageFormat::Png);
    save(
        &imageops::resize(&src, w * 3 / 4, h * 3 / 4, imageops::FilterType::Triangle),
        &root.join("a_small.png"),
        ImageFormat::Png,
    );
    save(
        &load(&album().join("day2/phone/IMG_0003.JPG")),
        &root.join("b.jpg"),
        ImageFormat::Jpeg,
    );

    let report = scan_json(&[
        "--model",
        tiny().to_str().unwrap(),
        "--threshold",
        "0.002",
        root.to_str().unwrap(),
    ]);
    assert_eq!(report.model.name, "tiny_cnn");
    assert_eq!(report.model.source, "file");
    assert_eq!(
        report.model.sha256,
        "335b3e428d9626a9566c190b09fd14200e233b18d89ab3b70a3bfed79a6dfcf2"
    );
    assert_eq!(report.model.dimension, 32);
    assert_eq!(report.model.input.width, 64);
    assert_eq!(
        groups_rel(&report, root),
        vec![vec![
            "a.jpg".to_string(),
            "a_copy.png".into(),
            "a_small.png".into()
        ]]
    );
    // The bundled model gives other vectors, hence other distances.
    let bundled = scan_json(&["--threshold", "0.002", root.to_str().unwrap()]);
    assert_ne!(bundled.model.sha256, report.model.sha256);
    assert_ne!(
        bundled.groups.first().map(|g| &g.pairs),
        report.groups.first().map(|g| &g.pairs)
    );
}
