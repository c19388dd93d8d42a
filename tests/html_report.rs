//! The HTML report: the same page from a cold scan, a warm scan, a cache
//! filled without thumbnails and `neardup report`; and the page as a real
//! browser (headless Chromium) shows it.

mod common;

use common::{run, save, save_jpeg_quality};
use image::{ImageFormat, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::Command;

const EVIL: &str = "<script>alert(1)</script>.jpg";

/// A fully saturated picture (every pixel has chroma 255): concentric rings
/// of hue, or tilted stripes, so that thumbnails are easy to tell from the
/// page's greys in a screenshot.
fn colourful(w: u32, h: u32, rings: bool) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
        let t = if rings {
            ((fx - 0.4).powi(2) + (fy - 0.6).powi(2)).sqrt() * 3.0
        } else {
            fx * 2.0 + fy * 0.7
        };
        hue(t.fract())
    })
}

fn hue(t: f64) -> Rgb<u8> {
    let h = t * 6.0;
    let f = ((h.fract()) * 255.0) as u8;
    match h as u32 % 6 {
        0 => Rgb([255, f, 0]),
        1 => Rgb([255 - f, 255, 0]),
        2 => Rgb([0, 255, f]),
        3 => Rgb([0, 255 - f, 255]),
        4 => Rgb([f, 0, 255]),
        _ => Rgb([255, 0, 255 - f]),
    }
}

/// Two groups to find: rings (original, resized, and a byte copy whose name
/// is markup) and stripes (PNG and JPEG).
fn make_album(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let rings = colourful(640, 480, true);
    save_jpeg_quality(&rings, &dir.join("rings.jpg"), 90);
    let small = image::imageops::resize(&rings, 400, 300, image::imageops::FilterType::Triangle);
    save_jpeg_quality(&small, &dir.join("rings_small.jpg"), 80);
    // The name holds a '/': a file "script>.jpg" in a folder "<script>alert(1)<".
    std::fs::create_dir_all(dir.join(EVIL).parent().unwrap()).unwrap();
    std::fs::copy(dir.join("rings.jpg"), dir.join(EVIL)).unwrap();
    let stripes = colourful(480, 640, false);
    save(&stripes, &dir.join("stripes.png"), ImageFormat::Png);
    save_jpeg_quality(&stripes, &dir.join("stripes.jpg"), 85);
}

fn ok(args: &[&str]) -> String {
    let (code, _, err) = run(args);
    assert_eq!(code, 0, "neardup {args:?}\nstderr: {err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_same_page_from_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let album = tmp.path().join("album");
    make_album(&album);
    let out = |name: &str| tmp.path().join(name);
    let (c1, c2) = (out("c1.sqlite"), out("c2.sqlite"));

    // Cold scan (thumbnails from the decode), inferred from the extension.
    ok(&[
        "scan",
        s(&album),
        "--cache",
        s(&c1),
        "-o",
        s(&out("cold.html")),
    ]);
    let cold = std::fs::read_to_string(out("cold.html")).unwrap();
    assert!(cold.starts_with("<!DOCTYPE html>"), "{}", &cold[..100]);
    assert_eq!(cold.matches("<section class=\"group\"").count(), 2);
    assert_eq!(
        cold.matches("<img src=\"data:image/jpeg;base64,").count(),
        5
    );
    // Each group's suggested keeper is marked; the others give their distance to it.
    assert_eq!(cold.matches("<figure class=\"keeper\">").count(), 2);
    assert_eq!(cold.matches("<dt>To keeper</dt>").count(), 3);
    assert!(cold.contains("&lt;script&gt;alert(1)&lt;/script&gt;.jpg"));
    assert!(!cold.contains("<script>alert"));

    // Warm scan: nothing decoded, thumbnails from the cache.
    ok(&[
        "scan",
        s(&album),
        "--cache",
        s(&c1),
        "--format",
        "html",
        "-o",
        s(&out("warm.html")),
    ]);
    assert_eq!(std::fs::read_to_string(out("warm.html")).unwrap(), cold);

    // A cache filled by a JSON scan has no thumbnails: made again from the files.
    ok(&[
        "scan",
        s(&album),
        "--cache",
        s(&c2),
        "-o",
        s(&out("r.json")),
    ]);
    let (code, stdout, err) = run(&["scan", s(&album), "--cache", s(&c2), "--format", "html"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("(5 from cache)") && !err.contains("thumbnail"),
        "{err}"
    );
    assert_eq!(stdout, cold);

    // An existing JSON report rendered afterwards.
    ok(&[
        "report",
        s(&out("r.json")),
        "--format",
        "html",
        "-o",
        s(&out("r.html")),
    ]);
    assert_eq!(std::fs::read_to_string(out("r.html")).unwrap(), cold);
    let (code, text, _) = run(&["report", s(&out("r.json"))]);
    assert_eq!(code, 0);
    assert!(text.starts_with("Group 1 · "), "{text}");

    // A photo gone since the scan: the page says so, with a warning.
    std::fs::remove_file(album.join("stripes.jpg")).unwrap();
    let (code, page, err) = run(&["report", s(&out("r.json")), "--format", "html"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("stripes.jpg: no thumbnail: cannot read"),
        "{err}"
    );
    assert!(page.contains("No preview: cannot read"), "{err}");

    // Not a report, or no file at all: usage errors.
    let (code, _, err) = run(&["report", s(&album.join("rings.jpg"))]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a neardup JSON report"), "{err}");
    let (code, _, _) = run(&["report", s(&out("missing.json"))]);
    assert_eq!(code, 2);
}

/// The Chromium binary, if any. Without one the browser test is skipped with
/// a notice, except in CI (env CI set), where it must be there.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("NEARDUP_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file());
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if found.is_none() {
        assert!(
            !in_ci,
            "CI is set but Chromium is missing: .ci/run installs it (apt-get install -y chromium)"
        );
        eprintln!("NOTICE: skipping the browser test: no Chromium (apt-get install -y chromium)");
    }
    found
}

/// Run headless Chromium on `page` with `extra` flags; returns (stdout, stderr).
fn headless(chrome: &Path, profile: &Path, page: &Path, extra: &[&str]) -> (String, String) {
    let url = format!("file://{}", page.display());
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .output()
        .expect("run chromium");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {stderr}");
    (stdout, stderr)
}

/// What the page said on its console (Chromium logs every console message,
/// errors, CSP violations and uncaught exceptions included, as `:CONSOLE`).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn the_page_loads_in_a_real_browser_and_shows_the_thumbnails() {
    let Some(chrome) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let album = tmp.path().join("album");
    make_album(&album);
    let page = tmp.path().join("report.html");
    let json = tmp.path().join("report.json");
    ok(&["scan", s(&album), "--no-cache", "-o", s(&json)]);
    ok(&["report", s(&json), "-o", s(&page)]);
    let report = neardup::report::read_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.groups.len(), 2);
    let html = std::fs::read_to_string(&page).unwrap();
    let images = html.matches("<img ").count();
    assert_eq!(images, 5);

    // The DOM after load: the page's script ran and decoded every image,
    // nothing was logged, and the markup in a file name stayed text.
    // Image decoding runs on real time, not on the virtual time budget: on
    // a loaded machine the DOM can be dumped before the last image decoded,
    // so a page that did not finish is loaded again (at most three times).
    let (mut dom, mut log) = (String::new(), String::new());
    for attempt in 1..=3 {
        let profile = tmp.path().join(format!("p1-{attempt}"));
        (dom, log) = headless(&chrome, &profile, &page, &["--dump-dom"]);
        if dom.contains("data-loaded=\"ok\"") {
            break;
        }
    }
    assert!(
        dom.contains("data-loaded=\"ok\""),
        "the page's script did not finish: {}\n{log}",
        &dom[dom.find("<body").unwrap_or(0)..][..300.min(dom.len())]
    );
    assert!(dom.contains(&format!("data-decoded=\"{images}\"")), "{log}");
    assert_eq!(console_lines(&log), Vec::<&str>::new());
    assert_eq!(dom.matches("<script").count(), 1);
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;.jpg"));

    // The screenshot: the thumbnails are drawn. The test photos are fully
    // saturated and the page is grey: count the colourful pixels against
    // the area the thumbnails cover (all in view).
    let png = tmp.path().join("shot.png");
    let (_, log) = headless(
        &chrome,
        &tmp.path().join("p2"),
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,2000",
        ],
    );
    assert_eq!(console_lines(&log), Vec::<&str>::new());
    let shot = image::open(&png).unwrap().into_rgb8();
    assert_eq!(shot.dimensions(), (1280, 2000));
    let area: u64 = report
        .groups
        .iter()
        .flat_map(|g| &g.members)
        .map(|m| {
            let side = neardup::decode::THUMB_LONG_SIDE as f64;
            let k = (side / m.width.max(m.height) as f64).min(1.0);
            (m.width as f64 * k).round() as u64 * (m.height as f64 * k).round() as u64
        })
        .sum();
    let mut colours = std::collections::HashSet::new();
    let colourful = shot
        .pixels()
        .filter(|p| {
            // The page's only colour is the keeper's green mark (26, 127, 55).
            let green =
                p.0.iter()
                    .zip([26i32, 127, 55])
                    .all(|(&c, g)| (c as i32 - g).abs() < 40);
            let (hi, lo) = (p.0.iter().max().unwrap(), p.0.iter().min().unwrap());
            hi - lo > 100 && !green
        })
        .inspect(|p| {
            colours.insert([p[0] >> 4, p[1] >> 4, p[2] >> 4]);
        })
        .count() as u64;
    eprintln!("{colourful} colourful pixels for {area} pixels of thumbnails");
    assert!(
        colourful * 10 >= area * 8 && colourful <= area * 11 / 10,
        "{colourful} colourful pixels for {area} pixels of thumbnails"
    );
    assert!(colours.len() > 100, "{} colours", colours.len());
}

/// Every text node of the page that holds `c`, with whether a `<bdi>` encloses it.
fn text_nodes_with(doc: &scraper::Html, c: char) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for node in doc.tree.root().descendants() {
        if let Some(t) = node.value().as_text() {
            if t.contains(c) {
                let in_bdi = node
                    .ancestors()
                    .any(|a| a.value().as_element().is_some_and(|e| e.name() == "bdi"));
                out.push((String::from(&**t), in_bdi));
            }
        }
    }
    out
}

#[test]
fn right_to_left_overrides_in_names_are_isolated() {
    let tmp = tempfile::tempdir().unwrap();
    let album = tmp.path().join("album");
    std::fs::create_dir_all(&album).unwrap();
    let rings = colourful(320, 240, true);
    save_jpeg_quality(&rings, &album.join("rings.jpg"), 90);
    // Shown raw, "photo\u{202e}gpj.exe" reads "photoexe.jpg".
    let evil = "photo\u{202e}gpj.exe";
    std::fs::copy(album.join("rings.jpg"), album.join(evil)).unwrap();
    std::fs::write(album.join("note\u{202e}txt.jpg"), b"not a photo").unwrap();
    let page = tmp.path().join("page.html");
    ok(&["scan", s(&album), "-q", "--no-cache", "-o", s(&page)]);
    let html = std::fs::read_to_string(&page).unwrap();
    let doc = scraper::Html::parse_document(&html);

    // The name is in the page as it is (HTML-escaped, not altered), and
    // every text that holds the override is inside a <bdi>: the caption's
    // path, the distance table, the skipped file.
    let texts = text_nodes_with(&doc, '\u{202e}');
    let outside: Vec<_> = texts.iter().filter(|(_, in_bdi)| !in_bdi).collect();
    assert!(outside.is_empty(), "not isolated: {outside:?}");
    let path = format!("{}", album.join(evil).display());
    let sel = |q: &str| scraper::Selector::parse(q).unwrap();
    let captions: Vec<String> = doc
        .select(&sel("code.path > bdi"))
        .map(|e| e.text().collect())
        .collect();
    assert!(captions.contains(&path), "{captions:?}");
    let cells: Vec<String> = doc
        .select(&sel("section.group td > bdi"))
        .map(|e| e.text().collect())
        .collect();
    assert!(cells.contains(&evil.to_string()), "{cells:?}");
    let skipped: Vec<String> = doc
        .select(&sel("header details td code > bdi"))
        .map(|e| e.text().collect())
        .collect();
    assert!(
        skipped.iter().any(|t| t.ends_with("note\u{202e}txt.jpg")),
        "{skipped:?}"
    );
    assert!(texts.len() >= 3, "{texts:?}");

    // The CSS isolates every <bdi>.
    let style: String = doc
        .select(&sel("head style"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(style.contains("bdi { unicode-bidi: isolate; }"), "{style}");
}
