//! The report as one self-contained HTML page: thumbnails embedded as JPEG
//! data URIs, inline CSS and a few lines of JavaScript, no network.
//!
//! [`render`] is a pure function of the report and the thumbnails. Every
//! path, name and reason is escaped, and every file name or path shown as
//! text is isolated in a `<bdi>` (with `unicode-bidi: isolate`), so that
//! right-to-left overrides in a name cannot reorder the page around it; a
//! Content-Security-Policy allows only
//! data-URI images and the page's own style and script (by hash), so even
//! markup that slipped through could neither run nor load anything.

use super::thumbs::Thumbnails;
use crate::decode::Thumbnail;
use crate::report::{human_bytes, Group, Member, Report};
use crate::verify::decide::{Label, Mode};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Cards whose images load at once; the others load lazily as they
/// scroll into view.
const EAGER_GROUPS: usize = 3;

/// How to render.
#[derive(Debug, Clone, Default)]
pub struct HtmlOptions {
    /// Relative paths are resolved against this folder for the links that
    /// open the original photos (the folder the scan ran in); without it,
    /// only absolute paths are links.
    pub base: Option<PathBuf>,
}

const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1d1d1f; --muted: #5b5b60; --line: #d8d8dc; --bg: #f4f4f6; --card: #fff; --keep: #1a7f37; --focus: #0b57d0; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a.skip { position: absolute; left: -9999px; }
a.skip:focus { left: 1rem; top: 1rem; background: var(--card); padding: .5rem; z-index: 1; }
header, main { max-width: 1240px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
dl.totals { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .5rem; margin: 0 0 1rem; }
dl.totals div { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .5rem .75rem; }
dl.totals dt { color: var(--muted); font-size: .85rem; }
dl.totals dd { margin: 0; font-size: 1.2rem; font-weight: 600; }
details { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .5rem .75rem; margin: 0 0 .75rem; }
summary { cursor: pointer; }
table { border-collapse: collapse; font-size: .85rem; margin-top: .5rem; }
caption { text-align: left; }
th, td { text-align: left; padding: .2rem .6rem .2rem 0; vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; }
section.group { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 0 0 1rem; }
section.group:focus { outline: 3px solid var(--focus); outline-offset: 2px; }
.photos { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; width: 168px; border: 2px solid transparent; border-radius: 6px; padding: 2px; }
figure.keeper { border-color: var(--keep); }
figure a { display: block; }
figure a:focus { outline: 3px solid var(--focus); }
figure img, .nothumb { display: block; max-width: 160px; height: auto; margin: 0 auto; background: #e9e9ec; }
.nothumb { width: 160px; height: 107px; display: flex; align-items: center; justify-content: center; text-align: center; color: var(--muted); font-size: .85rem; padding: .5rem; }
figcaption { font-size: .82rem; margin-top: .4rem; }
figcaption code { display: block; word-break: break-all; font-size: .8rem; }
figcaption dl { display: grid; grid-template-columns: auto 1fr; gap: 0 .5rem; margin: .3rem 0 0; }
figcaption dt { color: var(--muted); }
figcaption dd { margin: 0; }
.why { display: block; color: var(--muted); }
.badge.ref { background: #5b5b60; }
.badge { display: inline-block; background: var(--keep); color: #fff; border-radius: 4px; padding: 0 .4rem; font-size: .75rem; font-weight: 600; margin-bottom: .2rem; }
p.hint { color: var(--muted); font-size: .85rem; }
bdi { unicode-bidi: isolate; }
"#;

const SCRIPT: &str = r#"
(() => {
  const cards = Array.from(document.querySelectorAll('section.group'));
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || (e.key !== 'j' && e.key !== 'k')) return;
    const el = document.activeElement;
    const at = cards.indexOf(el && el.closest ? el.closest('section.group') : null);
    const next = e.key === 'j' ? at + 1 : Math.max(at - 1, 0);
    if (next < cards.length) { cards[next].focus(); e.preventDefault(); }
  });
  const eager = Array.from(document.images).filter((i) => i.loading !== 'lazy');
  Promise.all(eager.map((i) => i.decode())).then(() => {
    document.body.dataset.decoded = String(eager.length);
    document.body.dataset.loaded = 'ok';
  }, (err) => {
    document.body.dataset.loaded = 'error';
    console.error('a thumbnail could not be decoded', err);
  });
})();
"#;

/// Escape text for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A `file://` URL for a local path, every byte outside the unreserved set
/// and `/` percent-encoded.
pub fn file_url(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    let mut out = String::from(if s.starts_with('/') {
        "file://"
    } else {
        "file:///"
    });
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn csp_hash(text: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(text.as_bytes())))
}

fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Copies => "copies",
        Mode::Edits => "edits",
        Mode::Similar => "similar",
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\'])
        .find(|s| !s.is_empty())
        .unwrap_or(path)
}

/// The suggested keeper, when the report names one of the members.
fn keeper(g: &Group) -> Option<&Member> {
    let k = g.keeper.as_deref()?;
    g.members.iter().find(|m| m.path == k)
}

/// The member a group keeps: the suggested keeper, else the largest file
/// (so the bytes freed are not overstated).
fn kept(g: &Group) -> Option<&Member> {
    keeper(g).or_else(|| {
        g.members
            .iter()
            .max_by(|a, b| a.bytes.cmp(&b.bytes).then_with(|| b.path.cmp(&a.path)))
    })
}

/// Bytes freed by keeping one photo of the group.
pub fn bytes_freed(g: &Group) -> u64 {
    let total: u64 = g.members.iter().map(|m| m.bytes).sum();
    total - kept(g).map_or(0, |m| m.bytes)
}

/// The groups in page order: most bytes freed first, then larger groups,
/// then report order.
pub fn page_order(report: &Report) -> Vec<&Group> {
    let mut groups: Vec<&Group> = report.groups.iter().collect();
    groups.sort_by(|a, b| {
        bytes_freed(b)
            .cmp(&bytes_freed(a))
            .then(b.members.len().cmp(&a.members.len()))
            .then(a.id.cmp(&b.id))
    });
    groups
}

/// The whole page.
pub fn render(report: &Report, thumbs: &Thumbnails, opts: &HtmlOptions) -> String {
    let groups = page_order(report);
    let s = &report.stats;
    let p = &report.parameters;
    let freed: u64 = groups.iter().map(|g| bytes_freed(g)).sum();
    let mut h = String::with_capacity(4096 + groups.len() * 3 * 12_000);
    let title = match groups.len() {
        0 => "no near-duplicate photos".to_string(),
        1 => "1 group of near-duplicate photos".to_string(),
        n => format!("{n} groups of near-duplicate photos"),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; \
         style-src {}; script-src {}; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"generator\" content=\"{} {}\">\n<title>neardup: {}</title>\n<style>{}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#groups\">Skip to the groups</a>\n<header>\n<h1>neardup: {}</h1>\n",
        csp_hash(STYLE),
        csp_hash(SCRIPT),
        escape(&report.tool.name),
        escape(&report.tool.version),
        title,
        STYLE,
        title
    );

    // Totals.
    h.push_str("<dl class=\"totals\">\n");
    let mut total = |label: &str, value: String| {
        let _ = writeln!(h, "<div><dt>{label}</dt><dd>{value}</dd></div>");
    };
    total("Photos scanned", s.photos_embedded.to_string());
    total("Files seen", s.files_seen.to_string());
    total("Groups", s.groups.to_string());
    total("Photos in groups", s.photos_in_groups.to_string());
    total(
        "Could be freed",
        format!(
            "<span title=\"{freed} bytes\">{}</span>",
            escape(&human_bytes(freed))
        ),
    );
    total("Files skipped", s.files_skipped.to_string());
    h.push_str("</dl>\n");
    let _ = writeln!(
        h,
        "<p class=\"hint\">Bytes that could be freed keep each group's suggested keeper \
         (or its largest file when none is suggested). \
         Groups with the most bytes to free come first. Keys: <kbd>j</kbd> next group, \
         <kbd>k</kbd> previous group; a thumbnail opens the original photo.</p>"
    );

    // Skipped files.
    if !s.skipped.is_empty() {
        let _ = write!(
            h,
            "<details>\n<summary>Skipped files ({})</summary>\n<table>\n\
             <thead><tr><th scope=\"col\">File</th><th scope=\"col\">Kind</th><th scope=\"col\">Reason</th></tr></thead>\n<tbody>\n",
            s.skipped.len()
        );
        for k in &s.skipped {
            let kind = serde_json::to_value(k.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr><td><code><bdi>{}</bdi></code></td><td>{}</td><td>{}</td></tr>",
                escape(&k.path),
                escape(&kind),
                escape(&k.reason)
            );
        }
        h.push_str("</tbody>\n</table>\n</details>\n");
    }

    // Parameters.
    h.push_str("<details>\n<summary>Parameters</summary>\n<table>\n<tbody>\n");
    let mut param = |name: &str, value: String| {
        let _ = writeln!(h, "<tr><th scope=\"row\">{name}</th><td>{value}</td></tr>");
    };
    param(
        "Folders",
        p.roots
            .iter()
            .map(|r| format!("<code><bdi>{}</bdi></code>", escape(r)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    param("Mode", mode_str(p.mode).to_string());
    param(
        "Threshold",
        format!("{} ({})", p.threshold, escape(&p.metric)),
    );
    param("Search radius", p.search_radius.to_string());
    param(
        "Geometric check",
        format!("{} inliers", p.rules.min_inliers),
    );
    param(
        "Same picture",
        format!(
            "each shows {:.0}% of the other, one {:.0}%; quarters within {}, framed alike within {}",
            100.0 * p.rules.min_coverage,
            100.0 * p.rules.min_containment,
            p.rules.max_region_distance,
            p.rules.max_frame_distance
        ),
    );
    param(
        "Mirrored copies",
        if p.mirror { "yes" } else { "no" }.into(),
    );
    param("Hidden files", if p.hidden { "yes" } else { "no" }.into());
    param(
        "LSH",
        format!(
            "{} bits × {} tables, seed {}, recall at threshold {}",
            p.bits, p.tables, p.seed, p.pair_recall_at_threshold
        ),
    );
    param(
        "Model",
        format!(
            "{} ({}, sha256 {})",
            escape(&report.model.name),
            escape(&report.model.source),
            escape(&report.model.sha256)
        ),
    );
    param(
        "Tool",
        format!(
            "{} {}",
            escape(&report.tool.name),
            escape(&report.tool.version)
        ),
    );
    h.push_str("</tbody>\n</table>\n</details>\n</header>\n");

    // Groups.
    h.push_str("<main id=\"groups\">\n");
    if groups.is_empty() {
        h.push_str("<p>No near-duplicates found.</p>\n");
    }
    for (rank, g) in groups.iter().enumerate() {
        group_card(&mut h, g, rank < EAGER_GROUPS, thumbs, opts);
    }
    let _ = write!(h, "</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}

fn group_card(h: &mut String, g: &Group, eager: bool, thumbs: &Thumbnails, opts: &HtmlOptions) {
    let id = g.id;
    let freed = bytes_freed(g);
    let _ = write!(
        h,
        "<section class=\"group\" id=\"g{id}\" tabindex=\"-1\" aria-labelledby=\"g{id}-h\">\n\
         <h2 id=\"g{id}-h\">Group {id} · {} photos · {} · {} could be freed</h2>\n<div class=\"photos\">\n",
        g.members.len(),
        g.label.as_str(),
        escape(&human_bytes(freed))
    );
    for m in &g.members {
        photo(h, g, m, eager, thumbs.get(&m.path), opts);
    }
    h.push_str("</div>\n");
    if !g.pairs.is_empty() {
        h.push_str(
            "<table>\n<caption class=\"hint\">Distances between photos (cosine distance of the embeddings)</caption>\n\
             <thead><tr><th scope=\"col\">Photo</th><th scope=\"col\">Photo</th><th scope=\"col\">Distance</th><th scope=\"col\">Kind</th></tr></thead>\n<tbody>\n",
        );
        for pair in &g.pairs {
            let mut kind = pair.label.as_str().to_string();
            if let Some(n) = pair.inliers {
                let _ = write!(kind, ", {n} inliers");
            }
            // What each shows of the other, and how well the rest lines up.
            if let Some([a, b]) = pair.coverage {
                let _ = write!(kind, ", coverage {:.0}% / {:.0}%", 100.0 * a, 100.0 * b);
            }
            if let Some(r) = pair.regions {
                let _ = write!(kind, ", worst quarter {r:.2}");
            }
            if let Some(f) = pair.frame {
                let _ = write!(kind, ", framed alike {f:.2}");
            }
            if pair.mirrored {
                kind.push_str(", mirrored");
            }
            let _ = writeln!(
                h,
                "<tr><td title=\"{}\"><bdi>{}</bdi></td><td title=\"{}\"><bdi>{}</bdi></td><td class=\"num\">{:.4}</td><td>{}</td></tr>",
                escape(&pair.a),
                escape(file_name(&pair.a)),
                escape(&pair.b),
                escape(file_name(&pair.b)),
                pair.distance,
                kind
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("</section>\n");
}

/// The pairs of `m`'s group that hold it: (the other photo, distance, label).
fn pairs_of<'a>(g: &'a Group, m: &'a Member) -> impl Iterator<Item = (&'a str, f64, Label)> {
    g.pairs.iter().filter_map(move |p| {
        if p.a == m.path {
            Some((p.b.as_str(), p.distance, p.label))
        } else if p.b == m.path {
            Some((p.a.as_str(), p.distance, p.label))
        } else {
            None
        }
    })
}

/// The closest other member of `m`'s group, by the group's pairs.
fn closest<'a>(g: &'a Group, m: &'a Member) -> Option<(&'a str, f64, Label)> {
    pairs_of(g, m).min_by(|x, y| x.1.total_cmp(&y.1).then_with(|| x.0.cmp(y.0)))
}

fn photo(
    h: &mut String,
    g: &Group,
    m: &Member,
    eager: bool,
    thumb: Option<&Result<Thumbnail, String>>,
    opts: &HtmlOptions,
) {
    let name = file_name(&m.path);
    let dims = format!("{}×{}", m.width, m.height);
    let alt = escape(&format!(
        "{name}, {dims}, {}, {}",
        human_bytes(m.bytes),
        m.format
    ));
    let keeper = keeper(g);
    let is_keeper = keeper.is_some_and(|k| k.path == m.path);
    h.push_str(if is_keeper {
        "<figure class=\"keeper\">\n"
    } else {
        "<figure>\n"
    });
    let link = {
        let path = Path::new(&m.path);
        if path.is_absolute() {
            Some(file_url(path))
        } else {
            opts.base.as_ref().map(|b| file_url(&b.join(path)))
        }
    };
    if let Some(url) = &link {
        let _ = write!(
            h,
            "<a href=\"{}\" title=\"Open the original: {}\">",
            escape(url),
            escape(name)
        );
    }
    match thumb {
        Some(Ok(t)) => {
            let _ = write!(
                h,
                "<img src=\"data:image/jpeg;base64,{}\" width=\"{}\" height=\"{}\" alt=\"{alt}\" loading=\"{}\" decoding=\"async\">",
                base64(&t.jpeg),
                t.width,
                t.height,
                if eager { "eager" } else { "lazy" }
            );
        }
        other => {
            let why = match other {
                Some(Err(e)) => e.as_str(),
                _ => "no thumbnail was made",
            };
            let _ = write!(
                h,
                "<div class=\"nothumb\" role=\"img\" aria-label=\"{alt}; no preview: {}\">No preview: {}</div>",
                escape(why),
                escape(why)
            );
        }
    }
    if link.is_some() {
        h.push_str("</a>");
    }
    h.push_str("\n<figcaption>\n");
    if is_keeper {
        h.push_str("<span class=\"badge\">Suggested keeper</span>\n");
        if let Some(why) = &g.keeper_reason {
            let _ = writeln!(h, "<span class=\"why\">{}</span>", escape(why));
        }
    }
    if m.reference {
        h.push_str("<span class=\"badge ref\">Reference folder</span>\n");
    }
    let _ = write!(
        h,
        "<code class=\"path\"><bdi>{}</bdi></code>\n<dl>\n\
         <dt>Size</dt><dd>{dims}</dd>\n\
         <dt>File</dt><dd><span title=\"{} bytes\">{}</span>, {}</dd>\n",
        escape(&m.path),
        m.bytes,
        escape(&human_bytes(m.bytes)),
        escape(&m.format)
    );
    if let Some(date) = &m.captured {
        let _ = writeln!(h, "<dt>Taken</dt><dd>{}</dd>", escape(date));
    }
    if let Some(camera) = &m.camera {
        let _ = writeln!(h, "<dt>Camera</dt><dd>{}</dd>", escape(camera));
    }
    if let (Some(k), false) = (keeper, is_keeper) {
        match pairs_of(g, m).find(|(other, _, _)| *other == k.path) {
            Some((_, d, label)) => {
                let _ = writeln!(h, "<dt>To keeper</dt><dd>{d:.4} ({})</dd>", label.as_str());
            }
            None => h.push_str(
                "<dt>To keeper</dt><dd>no direct pair (grouped through the others)</dd>\n",
            ),
        }
    } else if let (None, Some((other, d, label))) = (keeper, closest(g, m)) {
        let _ = writeln!(
            h,
            "<dt>Closest</dt><dd><span title=\"{}\"><bdi>{}</bdi></span>: {d:.4} ({})</dd>",
            escape(other),
            escape(file_name(other)),
            label.as_str()
        );
    }
    h.push_str("</dl>\n</figcaption>\n</figure>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    const EVIL: &str = "album/<script>alert(1)</script>.jpg";

    fn jpeg_thumb(w: u32, h: u32, seed: u8) -> Thumbnail {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([seed, (x * 7) as u8, (y * 5) as u8])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 75)
            .encode_image(&img)
            .unwrap();
        Thumbnail {
            width: w,
            height: h,
            jpeg,
        }
    }

    /// The sample report (its group without a suggested keeper) plus a
    /// second group of three that frees more bytes, whose keeper is not the
    /// largest file, and that holds a photo whose name is markup.
    fn fixture() -> (Report, Thumbnails) {
        let mut r = sample();
        r.groups[0].keeper = None;
        r.groups[0].keeper_reason = None;
        let member = |path: &str, bytes: u64| Member {
            path: path.into(),
            bytes,
            width: 3000,
            height: 2000,
            format: "jpeg".into(),
            ..Member::default()
        };
        let pair = |a: &str, b: &str, d: f64| crate::report::Pair {
            a: a.into(),
            b: b.into(),
            distance: d,
            label: Label::Edited,
            inliers: None,
            coverage: None,
            regions: None,
            frame: None,
            mirrored: false,
            raw_jpeg_pair: false,
        };
        let members = vec![
            member("album/c.jpg", 5_000_000),
            member("album/d.jpg", 4_000_000),
            member(EVIL, 3_000_000),
        ];
        r.groups.push(Group {
            id: 2,
            label: Label::Edited,
            raw_jpeg_pair: false,
            files: members.iter().map(|m| m.path.clone()).collect(),
            members,
            pairs: vec![
                crate::report::Pair {
                    inliers: Some(240),
                    coverage: Some([0.81, 1.0]),
                    regions: Some(0.234),
                    ..pair("album/c.jpg", "album/d.jpg", 0.05)
                },
                pair("album/c.jpg", EVIL, 0.02),
            ],
            keeper: Some("album/d.jpg".into()),
            keeper_reason: Some("<b>oldest</b> capture date".into()),
            decision: None,
        });
        r.groups[1].members[1].captured = Some("2021-05-06T07:08:09".into());
        r.stats.groups = 2;
        let mut t = Thumbnails::new();
        t.insert("album/a.jpg".into(), Ok(jpeg_thumb(256, 192, 10)));
        t.insert("album/b.png".into(), Err("cannot read: gone".into()));
        t.insert("album/c.jpg".into(), Ok(jpeg_thumb(256, 171, 20)));
        t.insert(EVIL.into(), Ok(jpeg_thumb(171, 256, 30)));
        // album/d.jpg has no entry at all.
        (r, t)
    }

    fn sel(s: &str) -> scraper::Selector {
        scraper::Selector::parse(s).unwrap()
    }

    fn text(e: scraper::ElementRef) -> String {
        e.text().collect::<String>()
    }

    #[test]
    fn page_structure_order_thumbnails_and_escaping() {
        let (r, t) = fixture();
        let opts = HtmlOptions {
            base: Some(PathBuf::from("/photos")),
        };
        let page = render(&r, &t, &opts);
        assert_eq!(page, render(&r, &t, &opts), "deterministic");
        // A pair's evidence: inliers, what each shows of the other, the
        // worst quarter.
        assert!(
            page.contains("edited, 240 inliers, coverage 81% / 100%, worst quarter 0.23<"),
            "{page}"
        );
        let doc = scraper::Html::parse_document(&page);

        // One card per group, most bytes freed first, each with a heading.
        let cards: Vec<_> = doc.select(&sel("main section.group")).collect();
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].value().attr("id"), Some("g2"));
        assert_eq!(cards[1].value().attr("id"), Some("g1"));
        let h2 = text(cards[0].select(&sel("h2")).next().unwrap());
        assert_eq!(h2, "Group 2 · 3 photos · edited · 8.0 MB could be freed");
        assert_eq!(doc.select(&sel("h1")).count(), 1);
        assert_eq!(cards[0].select(&sel("figure")).count(), 3);
        assert_eq!(cards[1].select(&sel("figure")).count(), 2);

        // Totals: 8.0 MB (keeping d.jpg) + 900 B (keeping the largest).
        let totals: Vec<(String, String)> = doc
            .select(&sel("dl.totals div"))
            .map(|d| {
                (
                    text(d.select(&sel("dt")).next().unwrap()),
                    text(d.select(&sel("dd")).next().unwrap()),
                )
            })
            .collect();
        assert!(
            totals.contains(&("Could be freed".into(), "8.0 MB".into())),
            "{totals:?}"
        );
        assert!(
            totals.contains(&("Groups".into(), "2".into())),
            "{totals:?}"
        );
        assert!(totals.contains(&("Files skipped".into(), "1".into())));
        let skipped = text(doc.select(&sel("header details td")).nth(2).unwrap());
        assert_eq!(skipped, "not an image: the file is text");

        // The markup in a file name is text: no element made of it, only
        // the page's own script, and the name reads back as it is.
        assert!(!page.contains("<script>alert"));
        assert_eq!(doc.select(&sel("script")).count(), 1);
        let paths: Vec<String> = doc.select(&sel("code.path")).map(text).collect();
        assert!(paths.contains(&EVIL.to_string()), "{paths:?}");
        let evil_img = cards[0].select(&sel("img")).nth(1).unwrap();
        // (A file name holds no '/': this is a file "script>.jpg" in a
        // folder "<script>alert(1)<".)
        assert_eq!(
            evil_img.value().attr("alt"),
            Some("script>.jpg, 3000×2000, 3.0 MB, jpeg")
        );
        let href = cards[0].select(&sel("figure a")).nth(2).unwrap();
        assert_eq!(
            href.value().attr("href"),
            Some("file:///photos/album/%3Cscript%3Ealert%281%29%3C/script%3E.jpg")
        );

        // Thumbnails are the JPEGs given, with their size; the first cards
        // load at once; a missing one says why.
        let imgs: Vec<_> = doc.select(&sel("img")).collect();
        assert_eq!(imgs.len(), 3);
        let c = t["album/c.jpg"].as_ref().unwrap();
        let src = format!("data:image/jpeg;base64,{}", base64(&c.jpeg));
        assert_eq!(imgs[0].value().attr("src"), Some(src.as_str()));
        assert_eq!(imgs[0].value().attr("width"), Some("256"));
        assert_eq!(imgs[0].value().attr("height"), Some("171"));
        assert_eq!(imgs[0].value().attr("loading"), Some("eager"));
        let missing: Vec<String> = doc.select(&sel(".nothumb")).map(text).collect();
        assert_eq!(
            missing,
            [
                "No preview: no thumbnail was made",
                "No preview: cannot read: gone"
            ]
        );

        // The suggested keeper is marked, with its reason (escaped), and
        // every other photo says its distance to it, or that it has none.
        let keepers: Vec<_> = doc.select(&sel("figure.keeper")).collect();
        assert_eq!(keepers.len(), 1);
        let k = keepers[0];
        assert_eq!(
            text(k.select(&sel("code.path")).next().unwrap()),
            "album/d.jpg"
        );
        assert_eq!(
            text(k.select(&sel(".badge")).next().unwrap()),
            "Suggested keeper"
        );
        assert_eq!(
            text(k.select(&sel(".why")).next().unwrap()),
            "<b>oldest</b> capture date"
        );
        let k_dl = text(k.select(&sel("dl")).next().unwrap());
        assert!(k_dl.contains("Taken2021-05-06T07:08:09"), "{k_dl}");
        let dls: Vec<String> = cards[0].select(&sel("figcaption dl")).map(text).collect();
        assert!(dls[0].contains("To keeper0.0500 (edited)"), "{}", dls[0]);
        assert!(dls[2].contains("To keeper") && dls[2].contains("no direct pair"));
        assert!(!dls.iter().any(|d| d.contains("Closest")));
        assert_eq!(cards[0].select(&sel("tbody tr")).count(), 2);
        // Without a keeper: no mark, the closest photo instead.
        assert_eq!(cards[1].select(&sel("figure.keeper")).count(), 0);
        let g1 = text(cards[1].select(&sel("figcaption dl")).next().unwrap());
        assert!(g1.contains("Closest") && g1.contains("0.0123"), "{g1}");

        // The policy allows exactly the page's own script and style.
        let csp = doc
            .select(&sel("meta[http-equiv=Content-Security-Policy]"))
            .next()
            .unwrap()
            .value()
            .attr("content")
            .unwrap()
            .to_string();
        let script = text(doc.select(&sel("script")).next().unwrap());
        let style = text(doc.select(&sel("style")).next().unwrap());
        assert!(
            csp.contains(&format!("script-src {}", csp_hash(&script))),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("style-src {}", csp_hash(&style))),
            "{csp}"
        );
        assert!(csp.contains("default-src 'none'") && csp.contains("img-src data:"));
    }

    #[test]
    fn a_report_without_groups_says_so() {
        let mut r = sample();
        r.groups.clear();
        let doc =
            scraper::Html::parse_document(&render(&r, &Thumbnails::new(), &HtmlOptions::default()));
        assert_eq!(doc.select(&sel("section.group")).count(), 0);
        assert_eq!(
            text(doc.select(&sel("main p")).next().unwrap()),
            "No near-duplicates found."
        );
        assert_eq!(
            text(doc.select(&sel("h1")).next().unwrap()),
            "neardup: no near-duplicate photos"
        );
    }

    #[test]
    fn page_size_at_two_thousand_groups() {
        // Thumbnails of the sample album's real photos, three per group.
        let album = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/album");
        let thumbs: Vec<Thumbnail> = [
            "day1/DSC_0042.JPG",
            "day1/DSC_0044.JPG",
            "day1/DSC_0047.JPG",
            "day1/DSC_0049.JPG",
            "shared/IMG_0005.JPG",
            "day1/DSC_0043.PNG",
        ]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(album.join(f)).unwrap();
            crate::decode::thumbnail(
                &bytes,
                256,
                Default::default(),
                crate::decode::THUMB_LONG_SIDE,
            )
            .unwrap()
        })
        .collect();
        let mean = thumbs.iter().map(|t| t.jpeg.len()).sum::<usize>() / thumbs.len();
        let mut r = sample();
        let template = r.groups[0].clone();
        r.groups.clear();
        let mut map = Thumbnails::new();
        for g in 0..2000u64 {
            let mut group = template.clone();
            group.id = g + 1;
            group.members.push(group.members[1].clone());
            for (k, m) in group.members.iter_mut().enumerate() {
                m.path = format!("/photos/2024/{g:04}/IMG_{k}.JPG");
                let t = thumbs[(g as usize * 3 + k) % thumbs.len()].clone();
                map.insert(m.path.clone(), Ok(t));
            }
            group.files = group.members.iter().map(|m| m.path.clone()).collect();
            group.pairs[0].a = group.files[0].clone();
            group.pairs[0].b = group.files[1].clone();
            r.groups.push(group);
        }
        let page = render(&r, &map, &HtmlOptions::default());
        let mb = page.len() as f64 / 1e6;
        eprintln!("2000 groups × 3 photos, mean thumbnail {mean} B: page {mb:.1} MB");
        assert!(mb < 50.0, "page {mb:.1} MB");
        // Lazy loading for everything past the first cards.
        assert_eq!(page.matches("loading=\"eager\"").count(), 3 * EAGER_GROUPS);
        assert_eq!(
            page.matches("loading=\"lazy\"").count(),
            6000 - 3 * EAGER_GROUPS
        );
    }

    #[test]
    fn base64_and_urls() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xFB, 0xFF]), "+/8=");
        assert_eq!(
            file_url(Path::new("/a b/<x>\"é.jpg")),
            "file:///a%20b/%3Cx%3E%22%C3%A9.jpg"
        );
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
