//! neardup's depthwise operator inside tract's plan gives the bundled model's
//! exact output: every sample-album photo and a synthetic input embed to the
//! same bits with tract's own depthwise convolutions and with neardup's.

mod common;
use common::*;
use neardup::decode;
use neardup::embed::{Depthwise, Embedder};
use neardup::model::ModelSource;

#[test]
fn the_model_gives_the_same_bits_with_either_depthwise_operator() {
    let model = ModelSource::bundled().unwrap();
    let ours = Embedder::load_with(&model, Depthwise::Neardup).unwrap();
    let theirs = Embedder::load_with(&model, Depthwise::Tract).unwrap();
    // All 16 of EfficientNet-Lite0's depthwise convolutions are ours.
    assert_eq!(ours.own_depthwise_ops(), 16);
    assert_eq!(theirs.own_depthwise_ops(), 0);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();

    // An input over the model's whole range, pooled before normalising.
    let input: Vec<f32> = (0..3 * 224 * 224)
        .map(|i| ((i * 7919) % 1000) as f32 / 999.0)
        .collect();
    let a = ours.run_tensor(&input).unwrap();
    let b = theirs.run_tensor(&input).unwrap();
    assert_eq!(a.len(), 1280);
    assert_eq!(bits(&a), bits(&b));

    let geo = model.sidecar.geometry();
    let mut photos: Vec<_> = walkdir::WalkDir::new(repo().join("samples/album"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.is_file())
        .collect();
    photos.sort();
    let mut compared = 0;
    for p in &photos {
        let Ok(prepared) =
            decode::prepare(&std::fs::read(p).unwrap(), geo, decode::Limits::default())
        else {
            continue;
        };
        let (va, la) = ours.embed_with_layout(&prepared.rgb).unwrap();
        let (vb, lb) = theirs.embed_with_layout(&prepared.rgb).unwrap();
        assert_eq!(bits(&va), bits(&vb), "{}", p.display());
        assert!(la.is_some() && la == lb, "{}", p.display());
        compared += 1;
    }
    assert!(compared >= 15, "only {compared} photos decoded");
}
