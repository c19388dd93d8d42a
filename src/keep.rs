//! Which copy of a group to keep, and why.
//!
//! Members are ranked by an ordered list of criteria; the first criterion on
//! which two members differ decides between them. The default order is
//! [`DEFAULT_ORDER`]: more pixels, the larger file, the better format
//! (RAW > TIFF > PNG > HEIC > JPEG > WebP > others), more EXIF metadata,
//! the older date, the path that sorts first. A user's list (`--keep
//! newest,largest`) comes first; the default criteria it does not name (nor
//! contradict: `newest` drops `oldest`, `smallest` drops `largest`) follow
//! as tie-breakers, and the path always comes last, so the choice is total
//! and deterministic. Members in a reference folder always win.

use crate::error::{Error, Result};
use crate::photo::Format;
use crate::units::{human_bytes, utc_timestamp};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// What a photo is ranked on, borrowed from whatever describes it (the
/// report's members: `report::Member::candidate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The path as the report shows it (the last tie-breaker).
    pub path: &'a str,
    /// File size in bytes.
    pub bytes: u64,
    /// Width as displayed (EXIF orientation applied).
    pub width: u32,
    /// Height as displayed.
    pub height: u32,
    /// The format's name (`jpeg`, `png`, `cr2`, ...): see [`format_rank`].
    pub format: &'a str,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: Option<i64>,
    /// EXIF capture date, `YYYY-MM-DDTHH:MM:SS`.
    pub captured: Option<&'a str>,
    /// EXIF camera make and model.
    pub camera: Option<&'a str>,
    /// The EXIF holds a GPS position.
    pub gps: bool,
    /// Number of EXIF fields.
    pub exif_fields: u32,
    /// In a reference folder: always wins.
    pub reference: bool,
    /// A symbolic link: ranks after every regular file.
    pub symlink: bool,
}

impl Candidate<'_> {
    /// How many of capture date, camera and GPS position are known (0-3).
    pub fn meta_richness(&self) -> u32 {
        self.captured.is_some() as u32 + self.camera.is_some() as u32 + self.gps as u32
    }
}

/// One way to prefer a copy over another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// More pixels (width × height as displayed).
    Pixels,
    /// The larger file.
    Largest,
    /// The smaller file.
    Smallest,
    /// The better format: RAW > TIFF > PNG > HEIC > JPEG > WebP > others.
    Format,
    /// More EXIF metadata: capture date, camera, GPS, then the field count.
    Exif,
    /// The older date: the EXIF capture date, or the file's modification
    /// time when the photo has none.
    Oldest,
    /// The newer date (same date as `oldest`).
    Newest,
    /// The path that sorts first.
    Path,
}

/// The default order of the criteria.
pub const DEFAULT_ORDER: [Criterion; 6] = [
    Criterion::Pixels,
    Criterion::Largest,
    Criterion::Format,
    Criterion::Exif,
    Criterion::Oldest,
    Criterion::Path,
];

impl Criterion {
    pub fn name(self) -> &'static str {
        match self {
            Criterion::Pixels => "pixels",
            Criterion::Largest => "largest",
            Criterion::Smallest => "smallest",
            Criterion::Format => "format",
            Criterion::Exif => "exif",
            Criterion::Oldest => "oldest",
            Criterion::Newest => "newest",
            Criterion::Path => "path",
        }
    }

    fn parse(s: &str) -> Option<Criterion> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "pixels" | "resolution" => Criterion::Pixels,
            "largest" | "bytes" | "size" => Criterion::Largest,
            "smallest" => Criterion::Smallest,
            "format" => Criterion::Format,
            "exif" | "metadata" => Criterion::Exif,
            "oldest" => Criterion::Oldest,
            "newest" => Criterion::Newest,
            "path" => Criterion::Path,
            _ => return None,
        })
    }

    fn opposite(self) -> Option<Criterion> {
        match self {
            Criterion::Largest => Some(Criterion::Smallest),
            Criterion::Smallest => Some(Criterion::Largest),
            Criterion::Oldest => Some(Criterion::Newest),
            Criterion::Newest => Some(Criterion::Oldest),
            _ => None,
        }
    }
}

/// The full order for a user's list (comma-separated names, e.g.
/// `newest,largest`): the user's criteria, then the default ones it leaves
/// out, then the path.
pub fn parse_order(list: &str) -> Result<Vec<Criterion>> {
    let mut user = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let c = Criterion::parse(part).ok_or_else(|| {
            Error::Param(format!(
                "--keep: unknown criterion {:?} (known: pixels, largest, smallest, format, exif, oldest, newest, path)",
                part.trim()
            ))
        })?;
        if user.contains(&c) {
            return Err(Error::Param(format!(
                "--keep: {} is listed twice",
                c.name()
            )));
        }
        if let Some(o) = c.opposite().filter(|o| user.contains(o)) {
            return Err(Error::Param(format!(
                "--keep: {} contradicts {}",
                c.name(),
                o.name()
            )));
        }
        user.push(c);
    }
    Ok(complete(&user))
}

/// `user` followed by the default criteria it neither names nor contradicts,
/// ending with the path.
pub fn complete(user: &[Criterion]) -> Vec<Criterion> {
    let mut order: Vec<Criterion> = user.to_vec();
    for c in DEFAULT_ORDER {
        let contradicted = c.opposite().is_some_and(|o| order.contains(&o));
        if !order.contains(&c) && !contradicted {
            order.push(c);
        }
    }
    // The path is the last word (it never ties).
    order.retain(|&c| c != Criterion::Path);
    order.push(Criterion::Path);
    order
}

/// Rank of a format name (higher is better, [`Format::keep_rank`]); 0 for a
/// name that is not a [`Format::name`] (any case).
pub fn format_rank(format: &str) -> u8 {
    Format::from_name(&format.to_ascii_lowercase()).map_or(0, Format::keep_rank)
}

/// The date a member is ranked by: the capture date, or the modification
/// time (UTC) when there is none.
fn date(m: &Candidate) -> Option<String> {
    m.captured
        .map(str::to_owned)
        .or_else(|| m.mtime_ns.map(utc_timestamp))
}

fn pixels(m: &Candidate) -> u64 {
    m.width as u64 * m.height as u64
}

/// Ordering::Less when `a` is the better copy by `c`.
fn compare(a: &Candidate, b: &Candidate, c: Criterion) -> Ordering {
    match c {
        Criterion::Pixels => pixels(b).cmp(&pixels(a)),
        Criterion::Largest => b.bytes.cmp(&a.bytes),
        Criterion::Smallest => a.bytes.cmp(&b.bytes),
        Criterion::Format => format_rank(b.format).cmp(&format_rank(a.format)),
        Criterion::Exif => {
            (b.meta_richness(), b.exif_fields).cmp(&(a.meta_richness(), a.exif_fields))
        }
        // A member without any date ranks after those with one.
        Criterion::Oldest => match (date(a), date(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (x, y) => x.is_none().cmp(&y.is_none()),
        },
        Criterion::Newest => match (date(a), date(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            (x, y) => x.is_none().cmp(&y.is_none()),
        },
        Criterion::Path => a.path.cmp(b.path),
    }
}

fn compare_all(a: &Candidate, b: &Candidate, order: &[Criterion]) -> Ordering {
    // A symbolic link last (the keeper is a real file), then reference
    // members first, whatever the criteria.
    a.symlink
        .cmp(&b.symlink)
        .then_with(|| b.reference.cmp(&a.reference))
        .then_with(|| {
            order
                .iter()
                .map(|&c| compare(a, b, c))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        })
        .then_with(|| a.path.cmp(b.path))
}

/// Why `k` beats `r` by `c`, in words.
fn explain(k: &Candidate, r: &Candidate, c: Criterion) -> String {
    let dims = |m: &Candidate| format!("{}×{}", m.width, m.height);
    let what = |m: &Candidate| {
        let mut v = Vec::new();
        if m.captured.is_some() {
            v.push("capture date");
        }
        if m.camera.is_some() {
            v.push("camera");
        }
        if m.gps {
            v.push("GPS");
        }
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let show_date = |m: &Candidate| date(m).unwrap_or_else(|| "no date".into());
    match c {
        Criterion::Pixels => format!("more pixels ({} vs {})", dims(k), dims(r)),
        Criterion::Largest => format!(
            "larger file ({} vs {})",
            human_bytes(k.bytes),
            human_bytes(r.bytes)
        ),
        Criterion::Smallest => format!(
            "smaller file ({} vs {})",
            human_bytes(k.bytes),
            human_bytes(r.bytes)
        ),
        Criterion::Format => format!("better format ({} vs {})", k.format, r.format),
        Criterion::Exif if k.meta_richness() != r.meta_richness() => {
            format!("more EXIF metadata ({} vs {})", what(k), what(r))
        }
        Criterion::Exif => format!(
            "more EXIF metadata ({} vs {} fields)",
            k.exif_fields, r.exif_fields
        ),
        Criterion::Oldest => format!("older ({} vs {})", show_date(k), show_date(r)),
        Criterion::Newest => format!("newer ({} vs {})", show_date(k), show_date(r)),
        Criterion::Path => "otherwise equal: its path sorts first".to_string(),
    }
}

/// The member to keep (its index in `members`) and why, in words, against
/// the runner-up. `None` for an empty group.
pub fn choose(members: &[Candidate], order: &[Criterion]) -> Option<(usize, String)> {
    let mut idx: Vec<usize> = (0..members.len()).collect();
    idx.sort_by(|&a, &b| compare_all(&members[a], &members[b], order));
    let best = *idx.first()?;
    let k = &members[best];
    let Some(&second) = idx.get(1) else {
        return Some((best, "the only member".into()));
    };
    let r = &members[second];
    let reason = if !k.symlink && r.symlink {
        "a regular file (the other copies are symbolic links)".to_string()
    } else if k.reference && !r.reference {
        "in a reference folder".to_string()
    } else {
        let c = order
            .iter()
            .copied()
            .find(|&c| compare(k, r, c).is_ne())
            .unwrap_or(Criterion::Path);
        let why = explain(k, r, c);
        if k.reference {
            format!("in a reference folder; {why}")
        } else {
            why
        }
    };
    Some((best, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(
        path: &'static str,
        w: u32,
        h: u32,
        bytes: u64,
        format: &'static str,
    ) -> Candidate<'static> {
        Candidate {
            path,
            bytes,
            width: w,
            height: h,
            format,
            ..Candidate::default()
        }
    }

    #[test]
    fn default_order_pixels_then_bytes_then_format() {
        let order = complete(&[]);
        assert_eq!(
            order,
            vec![
                Criterion::Pixels,
                Criterion::Largest,
                Criterion::Format,
                Criterion::Exif,
                Criterion::Oldest,
                Criterion::Path
            ]
        );
        let g = [
            m("a.jpg", 2000, 1500, 900_000, "jpeg"),
            m("b.jpg", 4000, 3000, 800_000, "jpeg"),
        ];
        let (k, why) = choose(&g, &order).unwrap();
        assert_eq!(k, 1);
        assert_eq!(why, "more pixels (4000×3000 vs 2000×1500)");
        let g = [
            m("a.jpg", 100, 100, 5_000, "jpeg"),
            m("b.png", 100, 100, 5_000, "png"),
            m("c.tif", 100, 100, 4_000, "tiff"),
        ];
        let (k, why) = choose(&g, &order).unwrap();
        assert_eq!((k, why.as_str()), (1, "better format (png vs jpeg)"));
        let g = [
            m("b.jpg", 100, 100, 5_000, "jpeg"),
            m("a.jpg", 100, 100, 5_000, "jpeg"),
        ];
        let (k, why) = choose(&g, &order).unwrap();
        assert_eq!(
            (k, why.as_str()),
            (1, "otherwise equal: its path sorts first")
        );
    }

    #[test]
    fn format_ranks() {
        let ranked = ["dng", "tiff", "png", "heic", "jpeg", "webp", "bmp"];
        for w in ranked.windows(2) {
            assert!(format_rank(w[0]) > format_rank(w[1]), "{w:?}");
        }
    }

    #[test]
    fn exif_then_dates() {
        let mut a = m("a.jpg", 10, 10, 100, "jpeg");
        let mut b = m("b.jpg", 10, 10, 100, "jpeg");
        b.captured = Some("2020-01-01T00:00:00");
        b.camera = Some("X");
        let (k, why) = choose(&[a, b], &complete(&[])).unwrap();
        assert_eq!(k, 1);
        assert_eq!(why, "more EXIF metadata (capture date, camera vs none)");
        a.captured = Some("2019-01-01T00:00:00");
        a.camera = Some("Y");
        let (k, why) = choose(&[a, b], &complete(&[])).unwrap();
        assert_eq!(k, 0);
        assert_eq!(why, "older (2019-01-01T00:00:00 vs 2020-01-01T00:00:00)");
        let order = parse_order("newest").unwrap();
        let (k, why) = choose(&[a, b], &order).unwrap();
        assert_eq!(k, 1);
        assert!(why.starts_with("newer"), "{why}");
    }

    #[test]
    fn user_order_overrides_and_is_completed() {
        let order = parse_order("newest,largest").unwrap();
        assert_eq!(
            order,
            vec![
                Criterion::Newest,
                Criterion::Largest,
                Criterion::Pixels,
                Criterion::Format,
                Criterion::Exif,
                Criterion::Path
            ]
        );
        let mut a = m("a.jpg", 4000, 3000, 100, "jpeg");
        let mut b = m("b.jpg", 400, 300, 50, "jpeg");
        a.mtime_ns = Some(1_000_000_000);
        b.mtime_ns = Some(2_000_000_000);
        assert_eq!(choose(&[a, b], &order).unwrap().0, 1);
        assert_eq!(choose(&[a, b], &complete(&[])).unwrap().0, 0);
        assert_eq!(
            parse_order("smallest").unwrap()[..2],
            [Criterion::Smallest, Criterion::Pixels]
        );
        assert!(parse_order("biggest").is_err());
        assert!(parse_order("newest,oldest").is_err());
        assert!(parse_order("pixels,pixels").is_err());
    }

    #[test]
    fn symbolic_links_rank_last() {
        // The link's name sorts first and it has more pixels: still last.
        let mut link = m("a/0keeper.jpg", 4000, 3000, 900, "jpeg");
        link.symlink = true;
        let real = m("a/real.jpg", 400, 300, 900, "jpeg");
        let copy = m("b/c/copy.jpg", 400, 300, 900, "jpeg");
        let members = vec![link, real, copy];
        let (i, why) = choose(&members, &complete(&[])).unwrap();
        assert_eq!(members[i].path, "a/real.jpg");
        assert!(why.contains("path sorts first"), "{why}");
        let (i, why) = choose(&[link, m("z.jpg", 10, 10, 1, "webp")], &complete(&[])).unwrap();
        assert_eq!(i, 1);
        assert!(why.contains("symbolic link"), "{why}");
    }

    #[test]
    fn reference_members_always_win() {
        let a = m("big.jpg", 4000, 3000, 100, "jpeg");
        let mut b = m("archive/small.jpg", 40, 30, 10, "jpeg");
        b.reference = true;
        let (k, why) = choose(&[a, b], &complete(&[])).unwrap();
        assert_eq!((k, why.as_str()), (1, "in a reference folder"));
    }
}
