//! RAW camera files, read through their largest embedded JPEG preview.
//!
//! No demosaicing: every camera stores a JPEG rendering of the shot inside
//! its RAW file, and that is what a person sees in a viewer. This module
//! finds it and the orientation the RAW's metadata gives; the JPEG itself
//! goes through the ordinary JPEG decoder (DCT-scaled).
//!
//! Where the previews live:
//! - TIFF-based RAWs (DNG, NEF, ARW, CR2, ORF, RW2, PEF, SRW...): IFD0 and
//!   its chain, SubIFDs (`0x014A`) and the EXIF IFD are walked; a preview is
//!   an IFD's `JPEGInterchangeFormat`/`Length` (`0x0201`/`0x0202`), a single
//!   JPEG strip (compression 6 or 7, not sensor data), Panasonic's
//!   `JpgFromRaw` (`0x002E`), Nikon's maker-note `PreviewIFD` (`0x0011`) or
//!   Olympus' maker-note `CameraSettings` preview (`0x2020` -> `0x0101`/`0x0102`).
//!   The orientation is IFD0's `Orientation` (`0x0112`).
//! - RAF (Fujifilm): the header gives the JPEG's offset and length at byte
//!   84; the orientation is in the JPEG's own EXIF.
//! - CR3 (Canon, ISO-BMFF): the full-size JPEG of the first track, the
//!   `PRVW` preview and the `THMB` thumbnail; the orientation is in `CMT1`
//!   (a TIFF IFD0).
//!
//! Of all candidates, the JPEG with the most pixels (from its frame header;
//! lossless-JPEG sensor data is not a candidate) is taken.

use crate::photo::{Format, SkipKind, SkipReason};
use std::collections::HashSet;

/// True when `format` (a name from [`crate::decode::sniff`]) is a RAW
/// format ([`Format::is_raw`]).
pub fn is_raw(format: &str) -> bool {
    Format::from_name(format).is_some_and(Format::is_raw)
}

/// A RAW file's preview: JPEG bytes and the orientation the RAW gives
/// (an EXIF orientation value, 1-8), when it gives one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preview<'a> {
    pub jpeg: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub orientation: Option<u16>,
}

/// The RAW format of a file from its first bytes, or `None` when it is not
/// a RAW file this module knows. TIFF-based RAWs that only differ from a
/// plain TIFF in their IFDs (DNG, NEF, ARW...) are recognised only when the
/// IFDs are within `head`.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"FUJIFILMCCD-RAW") {
        return Some(Format::Raf);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" && &head[8..12] == b"crx " {
        return Some(Format::Cr3);
    }
    match head.get(..4)? {
        b"IIRO" | b"IIRS" | b"MMOR" => return Some(Format::Orf),
        b"IIU\0" => return Some(Format::Rw2),
        b"II*\0" if head.get(8..10) == Some(b"CR") => return Some(Format::Cr2),
        b"II*\0" | b"MM\0*" => {}
        _ => return None,
    }
    let mut w = Walker::new(head);
    w.walk_tiff(Tiff::at(head, 0)?);
    if w.dng {
        Some(Format::Dng)
    } else if w.sensor_data {
        let make = w.make.to_ascii_uppercase();
        Some(if make.starts_with("NIKON") {
            Format::Nef
        } else if make.starts_with("SONY") {
            Format::Arw
        } else if make.starts_with("PENTAX") || make.starts_with("RICOH") {
            Format::Pef
        } else if make.starts_with("SAMSUNG") {
            Format::Srw
        } else if make.starts_with("CANON") {
            Format::Cr2
        } else {
            Format::Raw
        })
    } else {
        None
    }
}

/// The largest JPEG preview of a RAW file of `format` (a name from
/// [`sniff`]). A file without one, or whose data runs past its end, is
/// refused with a reason a person can act on.
pub fn preview<'a>(bytes: &'a [u8], format: Format) -> Result<Preview<'a>, SkipReason> {
    let name = format.name().to_uppercase();
    let mut w = Walker::new(bytes);
    let parsed = match format {
        Format::Raf => w.walk_raf(),
        Format::Cr3 => w.walk_cr3(),
        _ => Tiff::at(bytes, 0).and_then(|t| w.walk_tiff(t)),
    };
    if parsed.is_none() {
        return Err(SkipReason::new(
            SkipKind::Corrupt,
            format!("damaged {name}: its header or first directory is cut short or invalid"),
        ));
    }
    if w.max_end > bytes.len() as u64 {
        return Err(SkipReason::new(
            SkipKind::Corrupt,
            format!("truncated {name}: its data runs past the end of the file"),
        ));
    }
    let best = w
        .candidates
        .iter()
        .filter_map(|&(off, len)| {
            let jpeg = bytes.get(off..off.checked_add(len)?)?;
            let (width, height) = jpeg_frame_size(jpeg)?;
            Some((width as u64 * height as u64, len, jpeg, width, height))
        })
        // Most pixels, then most bytes; the first found wins a tie.
        .fold(
            None,
            |best: Option<(u64, usize, &[u8], u32, u32)>, c| match best {
                Some(b) if (b.0, b.1) >= (c.0, c.1) => Some(b),
                _ => Some(c),
            },
        );
    match best {
        Some((_, _, jpeg, width, height)) => Ok(Preview {
            jpeg,
            width,
            height,
            orientation: w.orientation,
        }),
        None => Err(SkipReason::new(
            SkipKind::NoPreview,
            format!(
                "{name} file without a usable embedded JPEG preview \
                 (neardup reads RAW files through their preview; it does not demosaic)"
            ),
        )),
    }
}

/// Width and height from a JPEG's frame header, for baseline, extended and
/// progressive Huffman JPEGs; `None` for anything else (lossless JPEG is
/// sensor data in RAW files, not a preview).
pub fn jpeg_frame_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut p = 2;
    loop {
        while *jpeg.get(p)? != 0xFF {
            p += 1;
        }
        while *jpeg.get(p)? == 0xFF {
            p += 1;
        }
        let marker = *jpeg.get(p)?;
        p += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xC0..=0xC2 => {
                let h = u16::from_be_bytes([*jpeg.get(p + 3)?, *jpeg.get(p + 4)?]) as u32;
                let w = u16::from_be_bytes([*jpeg.get(p + 5)?, *jpeg.get(p + 6)?]) as u32;
                return (w > 0 && h > 0).then_some((w, h));
            }
            // Other frame types, or scan data before any frame header.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDA | 0xD9 => return None,
            _ => {
                let len = u16::from_be_bytes([*jpeg.get(p)?, *jpeg.get(p + 1)?]) as usize;
                p += len.max(2);
            }
        }
    }
}

/// A TIFF structure inside `data`: offsets are relative to `base`.
#[derive(Clone, Copy)]
struct Tiff<'a> {
    data: &'a [u8],
    base: usize,
    le: bool,
}

/// One IFD entry; `at` is where its value is, relative to the TIFF's base.
#[derive(Clone, Copy, Debug)]
struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    at: usize,
}

impl<'a> Tiff<'a> {
    /// A TIFF header ("II"/"MM", any magic) at `base`; returns it with the
    /// offset of its first IFD.
    fn at(data: &'a [u8], base: usize) -> Option<(Tiff<'a>, usize)> {
        let le = match data.get(base..base + 2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let t = Tiff { data, base, le };
        let first = t.u32(4)? as usize;
        Some((t, first))
    }

    fn bytes(&self, off: usize, n: usize) -> Option<&'a [u8]> {
        let start = self.base.checked_add(off)?;
        self.data.get(start..start.checked_add(n)?)
    }

    fn u16(&self, off: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes(off, 2)?.try_into().ok()?;
        Some(if self.le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, off: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes(off, 4)?.try_into().ok()?;
        Some(if self.le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// The entries of the IFD at `off` and the offset of the next IFD.
    fn ifd(&self, off: usize) -> Option<(Vec<Entry>, usize)> {
        let n = self.u16(off)? as usize;
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let e = off + 2 + i * 12;
            let (tag, typ, count) = (self.u16(e)?, self.u16(e + 2)?, self.u32(e + 4)?);
            let unit: u64 = match typ {
                1 | 2 | 6 | 7 => 1,
                3 | 8 => 2,
                4 | 9 | 11 | 13 => 4,
                5 | 10 | 12 => 8,
                _ => continue,
            };
            let size = unit * count as u64;
            let at = if size <= 4 {
                e + 8
            } else {
                self.u32(e + 8)? as usize
            };
            entries.push(Entry {
                tag,
                typ,
                count,
                at,
            });
        }
        let next = self.u32(off + 2 + n * 12).unwrap_or(0) as usize;
        Some((entries, next))
    }

    /// Integer values of an entry (BYTE, SHORT, LONG, IFD), at most `max`.
    fn values(&self, e: &Entry, max: usize) -> Vec<u32> {
        let n = (e.count as usize).min(max);
        (0..n)
            .map_while(|i| match e.typ {
                1 | 7 => self.bytes(e.at + i, 1).map(|b| b[0] as u32),
                3 => self.u16(e.at + 2 * i).map(u32::from),
                4 | 13 => self.u32(e.at + 4 * i),
                _ => None,
            })
            .collect()
    }

    fn value(&self, e: &Entry) -> Option<u32> {
        self.values(e, 1).first().copied()
    }

    fn text(&self, e: &Entry) -> String {
        let raw = self.bytes(e.at, (e.count as usize).min(64)).unwrap_or(&[]);
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).trim().to_string()
    }
}

/// Everything found while walking a RAW file's structure.
struct Walker<'a> {
    data: &'a [u8],
    /// JPEG candidates: absolute offset and length.
    candidates: Vec<(usize, usize)>,
    orientation: Option<u16>,
    make: String,
    dng: bool,
    /// An IFD holds sensor data (CFA or linear raw).
    sensor_data: bool,
    /// The end of the farthest data the structure points to.
    max_end: u64,
    visited: HashSet<usize>,
}

/// IFDs visited at most (a loop or a hostile file cannot make us spin).
const MAX_IFDS: usize = 64;

impl<'a> Walker<'a> {
    fn new(data: &'a [u8]) -> Walker<'a> {
        Walker {
            data,
            candidates: Vec::new(),
            orientation: None,
            make: String::new(),
            dng: false,
            sensor_data: false,
            max_end: 0,
            visited: HashSet::new(),
        }
    }

    fn range(&mut self, abs: usize, len: usize, jpeg: bool) {
        self.max_end = self.max_end.max(abs as u64 + len as u64);
        if jpeg && len > 0 {
            self.candidates.push((abs, len));
        }
    }

    /// Walk IFD0, its chain, and everything they point to. `None` when even
    /// IFD0 cannot be read.
    fn walk_tiff(&mut self, (t, first): (Tiff<'a>, usize)) -> Option<()> {
        let next = self.walk_ifd(t, first, true)?;
        self.walk_chain(t, next, false);
        Some(())
    }

    fn walk_chain(&mut self, t: Tiff<'a>, mut off: usize, ifd0: bool) -> Option<()> {
        let mut first = ifd0;
        while off != 0 {
            off = self.walk_ifd(t, off, first)?;
            first = false;
        }
        Some(())
    }

    /// One IFD and its children; returns the next IFD's offset.
    fn walk_ifd(&mut self, t: Tiff<'a>, off: usize, ifd0: bool) -> Option<usize> {
        if self.visited.len() >= MAX_IFDS || !self.visited.insert(t.base + off) {
            return Some(0);
        }
        let (entries, next) = t.ifd(off)?;
        let get = |tag: u16| entries.iter().find(|e| e.tag == tag);
        let photometric = get(0x0106).and_then(|e| t.value(e));
        let sensor = matches!(photometric, Some(32803 | 34892));
        self.sensor_data |= sensor;
        if ifd0 {
            if let Some(o) = get(0x0112).and_then(|e| t.value(e)) {
                if (1..=8).contains(&o) {
                    self.orientation = Some(o as u16);
                }
            }
            if let Some(e) = get(0x010F) {
                self.make = t.text(e);
            }
        }
        if get(0xC612).is_some() {
            self.dng = true;
        }
        // JPEGInterchangeFormat / Length.
        if let (Some(o), Some(l)) = (
            get(0x0201).and_then(|e| t.value(e)),
            get(0x0202).and_then(|e| t.value(e)),
        ) {
            self.range(t.base + o as usize, l as usize, true);
        }
        // Strips: a single JPEG strip is a candidate; every strip counts for
        // the truncation check.
        if let (Some(so), Some(sc)) = (get(0x0111), get(0x0117)) {
            let offs = t.values(so, 4096);
            let lens = t.values(sc, 4096);
            let compression = get(0x0103).and_then(|e| t.value(e));
            let jpeg = offs.len() == 1 && matches!(compression, Some(6 | 7)) && !sensor;
            for (&o, &l) in offs.iter().zip(&lens) {
                self.range(t.base + o as usize, l as usize, jpeg);
            }
        }
        // Panasonic JpgFromRaw: the JPEG is the tag's value.
        if let Some(e) = get(0x002E).filter(|e| e.typ == 7) {
            self.range(t.base + e.at, e.count as usize, true);
        }
        // SubIFDs.
        if let Some(e) = get(0x014A) {
            for sub in t.values(e, 16) {
                self.walk_chain(t, sub as usize, false);
            }
        }
        // The EXIF IFD, and its maker note.
        if let Some(exif) = get(0x8769).and_then(|e| t.value(e)) {
            if let Some((exif_entries, _)) = t.ifd(exif as usize) {
                if let Some(mn) = exif_entries.iter().find(|e| e.tag == 0x927C) {
                    self.maker_note(t, t.base + mn.at, mn.count as usize);
                }
            }
        }
        Some(next)
    }

    /// Previews inside Nikon and Olympus maker notes.
    fn maker_note(&mut self, outer: Tiff<'a>, abs: usize, len: usize) -> Option<()> {
        let note = self.data.get(abs..abs.checked_add(len)?)?;
        if note.starts_with(b"Nikon\0") {
            // Its own TIFF header at +10; tag 0x0011 is the PreviewIFD.
            let (t, first) = Tiff::at(self.data, abs + 10)?;
            let (entries, _) = t.ifd(first)?;
            let preview = entries.iter().find(|e| e.tag == 0x0011)?;
            let (p, _) = t.ifd(t.value(preview)? as usize)?;
            let get = |tag: u16| p.iter().find(|e| e.tag == tag).and_then(|e| t.value(e));
            self.range(t.base + get(0x0201)? as usize, get(0x0202)? as usize, true);
        } else if note.starts_with(b"OLYMPUS\0") || note.starts_with(b"OLYMP\0") {
            // New style: byte order at +8, IFD at +12, offsets from the note's
            // start. Old style: IFD at +8, offsets from the file's TIFF header.
            let (t, ifd) = if note.starts_with(b"OLYMPUS\0") {
                let le = match note.get(8..10)? {
                    b"II" => true,
                    b"MM" => false,
                    _ => return None,
                };
                (
                    Tiff {
                        data: self.data,
                        base: abs,
                        le,
                    },
                    12,
                )
            } else {
                (outer, abs - outer.base + 8)
            };
            let (entries, _) = t.ifd(ifd)?;
            let settings = entries.iter().find(|e| e.tag == 0x2020)?;
            let (cs, _) = t.ifd(t.value(settings)? as usize)?;
            let get = |tag: u16| cs.iter().find(|e| e.tag == tag).and_then(|e| t.value(e));
            if get(0x0100) != Some(0) {
                self.range(t.base + get(0x0101)? as usize, get(0x0102)? as usize, true);
            }
        }
        Some(())
    }

    /// Fujifilm RAF: big-endian offsets of the JPEG and the sensor data.
    fn walk_raf(&mut self) -> Option<()> {
        let be = |o: usize| -> Option<usize> {
            Some(u32::from_be_bytes(self.data.get(o..o + 4)?.try_into().ok()?) as usize)
        };
        let (jpeg_at, jpeg_len) = (be(84)?, be(88)?);
        let (cfa_at, cfa_len) = (be(100)?, be(104)?);
        self.range(jpeg_at, jpeg_len, true);
        self.range(cfa_at, cfa_len, false);
        Some(())
    }

    /// Canon CR3 (ISO-BMFF).
    fn walk_cr3(&mut self) -> Option<()> {
        const CANON: [u8; 16] = [
            0x85, 0xc0, 0xb6, 0x87, 0x82, 0x0f, 0x11, 0xe0, 0x81, 0x11, 0xf4, 0xce, 0x46, 0x2b,
            0x6a, 0x48,
        ];
        const PREVIEW: [u8; 16] = [
            0xea, 0xf4, 0x2b, 0x5e, 0x1c, 0x98, 0x4b, 0x88, 0xb9, 0xfb, 0xb7, 0xdc, 0x40, 0x6e,
            0x4d, 0x16,
        ];
        let data = self.data;
        let top = boxes(data, 0, data.len());
        if top.is_empty() {
            return None;
        }
        for b in top {
            self.max_end = self.max_end.max(b.end);
            let end = (b.end as usize).min(data.len());
            match &b.kind {
                b"moov" => {
                    for c in boxes(data, b.body, end) {
                        let cend = (c.end as usize).min(end);
                        if &c.kind == b"uuid" && data.get(c.body..c.body + 16) == Some(&CANON) {
                            for m in boxes(data, c.body + 16, cend) {
                                let mend = (m.end as usize).min(cend);
                                match &m.kind {
                                    b"CMT1" => {
                                        if let Some((t, first)) = Tiff::at(data, m.body) {
                                            if let Some((e, _)) = t.ifd(first) {
                                                if let Some(o) = e
                                                    .iter()
                                                    .find(|e| e.tag == 0x0112)
                                                    .and_then(|e| t.value(e))
                                                    .filter(|o| (1..=8).contains(o))
                                                {
                                                    self.orientation = Some(o as u16);
                                                }
                                            }
                                        }
                                    }
                                    b"THMB" => self.embedded_jpeg(m.body, mend),
                                    _ => {}
                                }
                            }
                        } else if &c.kind == b"trak" {
                            self.cr3_track(c.body, cend);
                        }
                    }
                }
                b"uuid" if data.get(b.body..b.body + 16) == Some(&PREVIEW) => {
                    for c in boxes(data, b.body + 24, end) {
                        if &c.kind == b"PRVW" {
                            self.embedded_jpeg(c.body, (c.end as usize).min(end));
                        }
                    }
                }
                _ => {}
            }
        }
        Some(())
    }

    /// A JPEG that starts within the first bytes of a box's body and runs
    /// to the box's end (THMB, PRVW).
    fn embedded_jpeg(&mut self, body: usize, end: usize) {
        let window = self.data.get(body..end.min(body + 64)).unwrap_or(&[]);
        if let Some(i) = window.windows(3).position(|w| w == [0xFF, 0xD8, 0xFF]) {
            self.range(body + i, end - (body + i), true);
        }
    }

    /// The first sample of a CR3 track (its size from `stsz`, its offset
    /// from `co64`/`stco`): the first track holds the full-size JPEG.
    fn cr3_track(&mut self, start: usize, end: usize) {
        let data = self.data;
        let mut stbl = None;
        let mut scope = (start, end);
        for kind in [b"mdia", b"minf", b"stbl"] {
            match boxes(data, scope.0, scope.1)
                .into_iter()
                .find(|b| &b.kind == kind)
            {
                Some(b) => {
                    scope = (b.body, (b.end as usize).min(scope.1));
                    stbl = Some(scope);
                }
                None => return,
            }
        }
        let Some((s, e)) = stbl else { return };
        let be32 = |o: usize| -> Option<u64> {
            Some(u32::from_be_bytes(data.get(o..o + 4)?.try_into().ok()?) as u64)
        };
        let mut size = None;
        let mut offset = None;
        for b in boxes(data, s, e) {
            match &b.kind {
                b"stsz" => {
                    let fixed = be32(b.body + 4);
                    size = match fixed {
                        Some(0) => be32(b.body + 12),
                        other => other,
                    };
                }
                b"co64" => {
                    offset = data
                        .get(b.body + 8..b.body + 16)
                        .map(|x| u64::from_be_bytes(x.try_into().expect("8 bytes")));
                }
                b"stco" => offset = be32(b.body + 8),
                _ => {}
            }
        }
        if let (Some(o), Some(l)) = (offset, size) {
            if let (Ok(o), Ok(l)) = (usize::try_from(o), usize::try_from(l)) {
                let is_jpeg = data.get(o..o + 2) == Some(&[0xFF, 0xD8]);
                self.range(o, l, is_jpeg || o >= data.len());
            }
        }
    }
}

/// An ISO-BMFF box: its type, where its body starts, where it ends (as
/// declared: may be past the end of a truncated file).
struct Bmff {
    kind: [u8; 4],
    body: usize,
    end: u64,
}

/// The boxes in `data[start..end]`, in order; stops at the first that does
/// not parse.
fn boxes(data: &[u8], mut start: usize, end: usize) -> Vec<Bmff> {
    let mut out = Vec::new();
    while start + 8 <= end.min(data.len()) && out.len() < 4096 {
        let size = u32::from_be_bytes(data[start..start + 4].try_into().expect("4 bytes")) as u64;
        let kind: [u8; 4] = data[start + 4..start + 8].try_into().expect("4 bytes");
        let (size, header) = match size {
            0 => ((end - start) as u64, 8),
            1 => match data.get(start + 8..start + 16) {
                Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 16),
                None => break,
            },
            s => (s, 8),
        };
        if size < header as u64 {
            break;
        }
        let box_end = start as u64 + size;
        out.push(Bmff {
            kind,
            body: start + header,
            end: box_end,
        });
        match usize::try_from(box_end) {
            Ok(e) if e <= end => start = e,
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/formats/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const RAWS: &[(&str, Format)] = &[
        ("shot.dng", Format::Dng),
        ("DSC_0042.NEF", Format::Nef),
        ("shot.arw", Format::Arw),
        ("shot.cr2", Format::Cr2),
        ("shot.cr3", Format::Cr3),
        ("shot.orf", Format::Orf),
        ("shot.raf", Format::Raf),
        ("shot.rw2", Format::Rw2),
    ];

    #[test]
    fn every_raw_kind_is_recognised_and_its_largest_preview_found() {
        for &(file, kind) in RAWS {
            let bytes = fixture(file);
            assert_eq!(sniff(&bytes), Some(kind), "{file}");
            let p = preview(&bytes, kind).unwrap_or_else(|e| panic!("{file}: {e:?}"));
            // The preview is the photo stored sideways (128x192), never a
            // decoy thumbnail or the CR2's lossless sensor stream.
            assert_eq!((p.width, p.height), (128, 192), "{file}");
            let expected = if kind == Format::Raf { None } else { Some(6) };
            assert_eq!(p.orientation, expected, "{file}");
            assert!(p.jpeg.starts_with(&[0xFF, 0xD8]), "{file}");
        }
    }

    #[test]
    fn plain_tiff_and_other_files_are_not_raw() {
        assert_eq!(sniff(&fixture("multipage.tif")), None);
        assert_eq!(sniff(&fixture("twin.jpg")), None);
        assert_eq!(sniff(&fixture("photo.heic")), None);
        assert_eq!(sniff(b""), None);
        // A DNG's first 64 bytes do not reach its IFDs: not known yet.
        assert_eq!(sniff(&fixture("shot.dng")[..64]), None);
    }

    #[test]
    fn a_raw_without_preview_or_cut_short_is_refused_with_a_reason() {
        let r = preview(&fixture("nopreview.dng"), Format::Dng).unwrap_err();
        assert_eq!(r.kind, SkipKind::NoPreview);
        assert!(
            r.message.contains("without a usable embedded JPEG preview"),
            "{r:?}"
        );
        for &(file, kind) in RAWS {
            let bytes = fixture(file);
            for cut in [bytes.len() * 3 / 5, bytes.len() - 40, 100, 10] {
                match preview(&bytes[..cut], kind) {
                    Err(r) => assert!(
                        matches!(r.kind, SkipKind::Corrupt | SkipKind::NoPreview),
                        "{file} cut at {cut}: {r:?}"
                    ),
                    Ok(p) => panic!(
                        "{file} cut at {cut} gave a {}x{} preview",
                        p.width, p.height
                    ),
                }
            }
        }
    }

    #[test]
    fn jpeg_frame_sizes() {
        let jpeg = fixture("twin.jpg");
        assert_eq!(jpeg_frame_size(&jpeg), Some((192, 128)));
        // SOF3 (lossless): sensor data, not a preview.
        let lossless = [
            0xFF, 0xD8, 0xFF, 0xC3, 0, 11, 14, 0, 16, 0, 16, 1, 1, 0x11, 0,
        ];
        assert_eq!(jpeg_frame_size(&lossless), None);
        assert_eq!(jpeg_frame_size(&jpeg[..3]), None);
        assert_eq!(jpeg_frame_size(b"not a jpeg"), None);
    }

    #[test]
    fn hostile_structures_do_not_loop_or_panic() {
        // IFD0 points to itself through the next-IFD link and its SubIFDs.
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend_from_slice(&2u16.to_le_bytes());
        for (tag, typ, count, value) in [(0x014Au16, 4u16, 1u32, 8u32), (0x0106, 3, 1, 32803)] {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&typ.to_le_bytes());
            t.extend_from_slice(&count.to_le_bytes());
            t.extend_from_slice(&value.to_le_bytes());
        }
        t.extend_from_slice(&8u32.to_le_bytes());
        assert_eq!(sniff(&t), Some(Format::Raw));
        assert_eq!(
            preview(&t, Format::Raw).unwrap_err().kind,
            SkipKind::NoPreview
        );
        // Boxes with absurd sizes.
        let mut b = b"\0\0\0\x10ftypcrx \0\0\0\x01".to_vec();
        b.extend_from_slice(b"\xff\xff\xff\xffmoov");
        assert_eq!(sniff(&b), Some(Format::Cr3));
        assert!(preview(&b, Format::Cr3).is_err());
    }
}
