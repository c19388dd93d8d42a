//! The cost of `apply`'s re-verification of each member against its keeper
//! (src/reverify.rs), per label path.
//!
//!     cargo run --release --example reverify_cost -- [--scale F] [--runs N]
//!
//! For each label path it generates a folder from the sample album's photos
//! (each scaled by F, default 1: 600x400 to 800x541 pixels), scans it into a
//! plan, then times `apply --action delete` dry runs of that plan side by
//! side, with the verification and without it (the benchmark-only switch
//! `ApplyOptions::bench_skip_reverify`, which the binary sets from
//! `NEARDUP_BENCH_SKIP_REVERIFY=1`), best of N runs (default 3). Folders:
//! - identical: each photo and two byte copies;
//! - same-pixels: each photo as PNG, BMP and TIFF;
//! - edited: each photo as JPEG q95, q75, q50 and at 3/4 size;
//! - similar: each photo and a zoomed-in crop (mode similar).
//!
//! Prints one line per path: members verified, the labels of the keeper's
//! direct pairs, ms per member with and without, the difference per
//! member, and that difference less the model load (measured once here;
//! paid once per run by the paths that need embeddings). Numbers, not
//! assertions.

mod support;
use support::arg;

use image::{imageops, ImageFormat, RgbImage};
use neardup::apply::{self, Action, ApplyOptions, Status};
use neardup::model::ModelSource;
use neardup::pipeline::{self, ScanOptions};
use neardup::progress::NoProgress;
use neardup::Mode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

const SOURCES: [&str; 10] = [
    "day1/DSC_0042.JPG",
    "day1/DSC_0043.PNG",
    "day1/DSC_0044.JPG",
    "day1/DSC_0045.JPG",
    "day1/DSC_0046.JPG",
    "day1/DSC_0047.JPG",
    "day1/DSC_0049.JPG",
    "day2/phone/IMG_0002.JPG",
    "day2/phone/IMG_0003.JPG",
    "day2/phone/IMG_0004.JPG",
];

fn jpeg(img: &RgbImage, path: &Path, quality: u8) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality).encode_image(img)?;
    std::fs::write(path, buf)?;
    Ok(())
}

fn make(kind: &str, dir: &Path, photos: &[RgbImage]) -> anyhow::Result<()> {
    for (k, img) in photos.iter().enumerate() {
        let d = dir.join(format!("p{k:02}"));
        std::fs::create_dir_all(&d)?;
        let (w, h) = img.dimensions();
        match kind {
            "identical" => {
                jpeg(img, &d.join("a.jpg"), 92)?;
                std::fs::copy(d.join("a.jpg"), d.join("b.jpg"))?;
                std::fs::copy(d.join("a.jpg"), d.join("c.jpg"))?;
            }
            "same-pixels" => {
                img.save_with_format(d.join("a.png"), ImageFormat::Png)?;
                img.save_with_format(d.join("b.bmp"), ImageFormat::Bmp)?;
                img.save_with_format(d.join("c.tif"), ImageFormat::Tiff)?;
            }
            "edited" => {
                jpeg(img, &d.join("a.jpg"), 95)?;
                jpeg(img, &d.join("b.jpg"), 75)?;
                jpeg(img, &d.join("c.jpg"), 50)?;
                let small =
                    imageops::resize(img, w * 3 / 4, h * 3 / 4, imageops::FilterType::Triangle);
                jpeg(&small, &d.join("d.jpg"), 85)?;
            }
            _ => {
                jpeg(img, &d.join("a.jpg"), 92)?;
                let zoom = imageops::crop_imm(img, w / 10, h / 5, w / 2, h / 2).to_image();
                let zoom = imageops::resize(
                    &zoom,
                    w * 4 / 5,
                    h * 4 / 5,
                    imageops::FilterType::CatmullRom,
                );
                jpeg(&zoom, &d.join("b.jpg"), 92)?;
            }
        }
    }
    Ok(())
}

/// Seconds of the best of `runs` dry runs, and the members acted on.
fn time_apply(
    report: &neardup::report::Report,
    skip: bool,
    runs: usize,
) -> anyhow::Result<(f64, u64, u64)> {
    let mut opts = ApplyOptions::new(Action::Delete);
    opts.bench_skip_reverify = skip;
    let cancel = AtomicBool::new(false);
    let mut best = f64::INFINITY;
    let (mut acted, mut skipped) = (0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let s = apply::apply(report, &opts, &mut |_| {}, &cancel)?;
        best = best.min(t.elapsed().as_secs_f64());
        acted = s
            .steps
            .iter()
            .filter(|st| st.status == Status::WouldDo)
            .count() as u64;
        skipped = s.skipped;
    }
    Ok((best, acted, skipped))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scale: f64 = arg(&args, "--scale", 1.0);
    let runs: usize = arg(&args, "--runs", 3);
    let album = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/album");
    let photos: Vec<RgbImage> = SOURCES
        .iter()
        .map(|p| {
            let img = image::open(album.join(p)).map(|i| i.into_rgb8())?;
            let (w, h) = img.dimensions();
            let (w2, h2) = ((w as f64 * scale) as u32, (h as f64 * scale) as u32);
            Ok(if (w2, h2) == (w, h) {
                img
            } else {
                imageops::resize(&img, w2, h2, imageops::FilterType::Triangle)
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let model = ModelSource::bundled()?;
    let t = Instant::now();
    drop(neardup::embed::Embedder::load(&model)?);
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let (w, h) = photos[0].dimensions();
    println!("reverify cost: {} photos of about {w}x{h}, best of {runs} dry runs of apply --action delete; model load {load_ms:.0} ms", photos.len());
    println!(
        "{:<12} {:>7}  {:<26} {:>10} {:>10} {:>10} {:>17}",
        "path",
        "members",
        "keeper's direct pairs",
        "with ms/m",
        "w/o ms/m",
        "cost ms/m",
        "less load ms/m"
    );
    for kind in ["identical", "same-pixels", "edited", "similar"] {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join(kind);
        make(kind, &root, &photos)?;
        let mut sopts = ScanOptions::new(vec![root.clone()]);
        sopts.mode = if kind == "similar" {
            Mode::Similar
        } else {
            Mode::Edits
        };
        let report = pipeline::scan(&sopts, &model, &NoProgress, &AtomicBool::new(false))?;
        let mut labels: BTreeMap<String, u64> = BTreeMap::new();
        for g in &report.groups {
            let keeper = g.keeper.as_deref().unwrap_or_default();
            for m in g.members.iter().filter(|m| m.path != keeper) {
                let direct = g
                    .pairs
                    .iter()
                    .find(|p| (p.a == keeper && p.b == m.path) || (p.b == keeper && p.a == m.path));
                let l = direct.map(|p| p.label.as_str()).unwrap_or("chain");
                *labels.entry(l.to_string()).or_default() += 1;
            }
        }
        let (with, acted, skipped) = time_apply(&report, false, runs)?;
        let (without, acted_wo, _) = time_apply(&report, true, runs)?;
        let n = acted_wo.max(1) as f64;
        let shown: Vec<String> = labels.iter().map(|(l, k)| format!("{k} {l}")).collect();
        // The paths that need embeddings load the model once per run.
        let load = if matches!(kind, "edited" | "similar") {
            load_ms
        } else {
            0.0
        };
        println!(
            "{kind:<12} {acted_wo:>7}  {:<26} {:>10.2} {:>10.2} {:>10.2} {:>17.2}{}",
            shown.join(", "),
            with * 1e3 / n,
            without * 1e3 / n,
            (with - without) * 1e3 / n,
            ((with - without) * 1e3 - load) / n,
            if skipped > 0 || acted != acted_wo {
                format!("  ({skipped} not verified)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
