//! The embedding stage: every walked file decoded and embedded, the cache
//! first ([`embed`] → [`Embedded`]). The model runs in [`tract`], the only
//! module that knows tract; the stage sees it through the small [`Embed`]
//! trait, so that tests can pass a fake embedder and run without the model.

mod tract;

pub use tract::{Depthwise, Embedder, LazyEmbedder, OpTime};

use crate::cache::{self, Cache};
use crate::decode::meta::{self, Meta};
use crate::decode::{self, Geometry, Limits, SkipKind, SkipReason};
use crate::error::{Error, Result};
use crate::index::Embeddings;
use crate::layout::{self, Layout, Layouts};
use crate::open;
use crate::photo::Format;
use crate::progress::Progress;
use crate::report;
use crate::report::thumbs::{self, Spool};
use crate::reread;
use crate::walk::{FileEntry, WalkOutput};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the embed stage needs of a model: L2-normalised vectors of prepared
/// photos. [`LazyEmbedder`] (tract, loaded on first use) implements it; tests
/// implement it with a fake.
pub trait Embed: Sync {
    /// Make the model ready (loading it if needed). An error fails the run.
    fn ready(&self) -> std::result::Result<(), String>;
    /// The L2-normalised vector of one photo given as RGB pixels in display
    /// orientation (what [`decode::prepare`] returns). An error skips the
    /// photo.
    fn embed(&self, rgb: &[u8]) -> Result<Vec<f32>>;
    /// [`Embed::embed`], and where things are in the photo when the model
    /// gives a feature map ([`Layout`]).
    fn embed_with_layout(&self, rgb: &[u8]) -> Result<(Vec<f32>, Option<Layout>)> {
        Ok((self.embed(rgb)?, None))
    }
    /// True when [`Embed::embed_with_layout`] gives layouts (the model's
    /// output is a feature map, pooled by neardup), known without loading it.
    fn gives_layout(&self) -> bool {
        false
    }
    /// Length of the vectors (makes the model ready).
    fn dim(&self) -> std::result::Result<usize, String>;
    /// Time spent loading the model (zero when it was never loaded).
    fn load_time(&self) -> Duration {
        Duration::ZERO
    }
}

impl Embed for LazyEmbedder<'_> {
    fn ready(&self) -> std::result::Result<(), String> {
        self.get().map(|_| ())
    }
    fn embed(&self, rgb: &[u8]) -> Result<Vec<f32>> {
        self.get().map_err(Error::Model)?.embed(rgb)
    }
    fn embed_with_layout(&self, rgb: &[u8]) -> Result<(Vec<f32>, Option<Layout>)> {
        self.get().map_err(Error::Model)?.embed_with_layout(rgb)
    }
    fn gives_layout(&self) -> bool {
        let sc = &self.model().sidecar;
        sc.output.pooling == "gap" && sc.input.width == sc.input.height
    }
    fn dim(&self) -> std::result::Result<usize, String> {
        self.get().map(Embedder::dim)
    }
    fn load_time(&self) -> Duration {
        LazyEmbedder::load_time(self)
    }
}

/// Takes the gray image of each photo the embed stage decodes and embeds,
/// when that decode serves it ([`decode::Extras::gray`]): the verify stage
/// makes its keypoints from it instead of decoding the photo again.
pub trait GraySink: Sync {
    /// The longer side of the gray images it takes.
    fn long_side(&self) -> u32;
    /// Whether it takes the gray image of a file this long (one that is
    /// cheap to decode again may not be worth holding).
    fn wants(&self, file_bytes: u64) -> bool;
    /// The gray image of the photo of this content.
    fn put(&self, content: &str, gray: &decode::GrayImage);
}

/// A photo that was embedded.
#[derive(Debug, Clone)]
pub struct Photo {
    pub file: FileEntry,
    pub width: u32,
    pub height: u32,
    pub format: Format,
    /// Size and BLAKE3 hash of the file's bytes (see [`cache::content_key`]).
    pub content: String,
    /// What its EXIF says.
    pub meta: Meta,
}

/// The photos found under the roots and their vectors.
#[derive(Debug)]
pub struct Embedded {
    /// Photos in path order; `vectors.row(i)` belongs to `photos[i]`.
    pub photos: Vec<Photo>,
    pub vectors: Embeddings,
    /// Files not used (the walk's skips and this stage's), sorted by path.
    pub skipped: Vec<(PathBuf, SkipReason)>,
    pub files_seen: u64,
    /// Seconds spent decoding and embedding, summed over threads.
    pub decode_thread_s: f64,
    pub embed_thread_s: f64,
    /// Seconds spent making keypoints for the `grays` sink, summed over threads.
    pub keypoints_thread_s: f64,
    /// The thumbnails made while decoding, with [`EmbedOptions::thumbnails`].
    pub thumbs: Option<Spool>,
    /// Where things are in each photo, for the verify stage.
    pub layouts: Layouts,
}

/// What shapes the embed stage.
#[derive(Debug, Clone, Copy)]
pub struct EmbedOptions {
    /// The model's input geometry.
    pub geometry: Geometry,
    pub limits: Limits,
    /// Make thumbnails from the decoded pixels.
    pub thumbnails: bool,
}

enum Outcome {
    Photo(Photo, Vec<f32>, Option<Layout>),
    Skip(PathBuf, SkipReason),
    /// The model could not be loaded: the whole run fails.
    Fatal(String),
}

/// Decode and embed every walked file (the embed stage), the cache first.
/// Each photo decoded here is offered to `grays`, if given.
pub fn embed(
    walked: WalkOutput,
    opts: EmbedOptions,
    embedder: &dyn Embed,
    cache: &Cache,
    grays: Option<&dyn GraySink>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Embedded> {
    // Decode and embed, one photo per task on every core. The model is
    // loaded on first need: a rescan served by the cache never loads it.
    let geo = opts.geometry;
    let decode_ns = AtomicU64::new(0);
    let embed_ns = AtomicU64::new(0);
    let keypoints_ns = AtomicU64::new(0);
    let spool = if opts.thumbnails { Spool::new() } else { None };
    let layout_kind = layout::fact_kind(cache);
    let outcomes: Vec<Outcome> = walked
        .files
        .par_iter()
        .map(|file| {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            // The EXIF metadata, from the cache or the bytes (read again
            // when a warm scan did not read them and the cache lacks it).
            let meta_of = |content: &str, bytes: Option<&[u8]>| -> Meta {
                if let Some(m) = cache
                    .get_fact(meta::FACT_KIND, content)
                    .and_then(|b| Meta::from_bytes(&b))
                {
                    return m;
                }
                let read;
                let bytes = match bytes {
                    Some(b) => b,
                    None => match reread::read_unchanged(&file.path, content) {
                        Ok(b) => {
                            read = b;
                            &read[..]
                        }
                        Err(_) => return Meta::default(),
                    },
                };
                let m = meta::read(bytes);
                cache.put_fact(meta::FACT_KIND, content, m.to_bytes());
                m
            };
            let photo = |e: &cache::Entry, content: String, meta: Meta| Photo {
                file: file.clone(),
                width: e.width,
                height: e.height,
                format: e.format,
                content,
                meta,
            };
            // Fast path: same path, size and mtime as last time.
            if let Some(content) = cache.content_at(&file.path, file.bytes, file.mtime_ns) {
                if let Some(e) = cache.get(&content) {
                    let m = meta_of(&content, None);
                    progress.cached();
                    progress.advance(1);
                    return Some(Outcome::Photo(
                        photo(&e, content.clone(), m),
                        e.vector,
                        None,
                    ));
                }
            }
            let t0 = Instant::now();
            let bytes = match read_photo(file) {
                Ok(b) => b,
                Err(reason) => {
                    progress.skipped(&file.path, &reason);
                    progress.advance(1);
                    return Some(Outcome::Skip(file.path.clone(), reason));
                }
            };
            let content = cache::content_key(&bytes);
            // Same content seen elsewhere (moved, renamed, copied).
            let m = meta_of(&content, Some(&bytes));
            if let Some(e) = cache.get(&content) {
                cache.put_file(&file.path, file.bytes, file.mtime_ns, &content);
                progress.cached();
                progress.advance(1);
                return Some(Outcome::Photo(
                    photo(&e, content.clone(), m),
                    e.vector,
                    None,
                ));
            }
            // Thumbnails and gray images, when wanted, come from the same
            // decoded pixels.
            let extras = decode::Extras {
                thumbnail: spool.as_ref().map(|_| decode::THUMB_LONG_SIDE),
                gray: grays
                    .filter(|g| g.wants(bytes.len() as u64))
                    .map(|g| g.long_side()),
            };
            let prepared = decode::prepare_with(&bytes, geo, opts.limits, extras).inspect(|d| {
                if let (Some(spool), Some(t)) = (&spool, &d.thumbnail) {
                    spool.put(&content, t);
                    cache.put_fact(thumbs::FACT_KIND, &content, t.to_bytes());
                }
            });
            drop(bytes);
            let t1 = Instant::now();
            decode_ns.fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
            let mut keypoints = Duration::ZERO;
            let outcome = match prepared {
                Err(reason) => Outcome::Skip(file.path.clone(), reason),
                Ok(decode::Decoded {
                    prepared: p, gray, ..
                }) => match embedder.ready() {
                    Err(e) => Outcome::Fatal(e),
                    Ok(()) => match embedder.embed_with_layout(&p.rgb) {
                        Ok((v, layout)) => {
                            if let Some(l) = &layout {
                                cache.put_fact(&layout_kind, &content, l.to_bytes());
                            }
                            let entry = cache::Entry {
                                width: p.width,
                                height: p.height,
                                format: p.format,
                                vector: v,
                            };
                            cache.put(&content, entry.clone());
                            cache.put_file(&file.path, file.bytes, file.mtime_ns, &content);
                            if let (Some(sink), Some(g)) = (grays, &gray) {
                                let tk = Instant::now();
                                sink.put(&content, g);
                                keypoints = tk.elapsed();
                            }
                            Outcome::Photo(photo(&entry, content, m), entry.vector, layout)
                        }
                        Err(e) => Outcome::Skip(
                            file.path.clone(),
                            SkipReason::new(SkipKind::Corrupt, e.to_string()),
                        ),
                    },
                },
            };
            let embedding = t1.elapsed().saturating_sub(keypoints);
            embed_ns.fetch_add(embedding.as_nanos() as u64, Ordering::Relaxed);
            keypoints_ns.fetch_add(keypoints.as_nanos() as u64, Ordering::Relaxed);
            if let Outcome::Skip(path, reason) = &outcome {
                progress.skipped(path, reason);
            }
            progress.advance(1);
            Some(outcome)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(Error::Cancelled)?;
    if let Some(fatal) = outcomes.iter().find_map(|o| match o {
        Outcome::Fatal(e) => Some(e.clone()),
        _ => None,
    }) {
        return Err(Error::Model(fatal));
    }
    let dim = match outcomes.iter().find_map(|o| match o {
        Outcome::Photo(_, v, _) => Some(v.len()),
        _ => None,
    }) {
        Some(d) => d,
        None => embedder.dim().map_err(Error::Model)?,
    };

    let mut photos = Vec::new();
    let mut vectors = Embeddings::new(dim);
    // Entries the walk itself skipped that name a file (not a folder it
    // could not read) count as seen.
    let walked_files = walked.files.len();
    let skipped_entries = walked
        .skipped
        .iter()
        .filter(|s| {
            matches!(
                s.1.kind,
                SkipKind::BrokenSymlink | SkipKind::NotAFile | SkipKind::NonUtf8Name
            )
        })
        .count();
    let mut skipped = walked.skipped;
    let mut layouts = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Photo(p, v, layout) => {
                vectors.try_push(&v)?;
                photos.push(p);
                layouts.push(layout);
            }
            Outcome::Skip(path, reason) => skipped.push((path, reason)),
            Outcome::Fatal(_) => {}
        }
    }
    skipped.sort_by(|a, b| a.0.cmp(&b.0));
    let files_seen = (walked_files + skipped_entries) as u64;
    Ok(Embedded {
        photos,
        vectors,
        skipped,
        files_seen,
        decode_thread_s: decode_ns.into_inner() as f64 / 1e9,
        embed_thread_s: embed_ns.into_inner() as f64 / 1e9,
        keypoints_thread_s: keypoints_ns.into_inner() as f64 / 1e9,
        thumbs: spool,
        layouts: Layouts::new(layouts),
    })
}

/// Read a file that may be a photo: a regular file (never a FIFO or a
/// device, checked on the open handle), sniffed from its first bytes, then
/// read whole only when its length is within what its format allows
/// ([`decode::max_file_bytes`]); a sparse file of gigabytes is refused
/// before anything but its first bytes is read.
fn read_photo(file: &FileEntry) -> std::result::Result<Vec<u8>, SkipReason> {
    let (mut f, meta) = open::open_regular(&file.path).map_err(read_skip)?;
    let len = meta.len();
    if len > decode::MAX_FILE_BYTES {
        return Err(too_large(len, decode::MAX_FILE_BYTES));
    }
    let mut head = [0u8; 4096];
    let n = open::read_up_to(&mut f, &mut head).map_err(|e| read_skip(e.into()))?;
    let format = decode::sniff(&head[..n])?;
    let cap = decode::max_file_bytes(format);
    if len > cap {
        return Err(too_large(len, cap));
    }
    std::io::Seek::rewind(&mut f).map_err(|e| read_skip(e.into()))?;
    open::read_open_capped(f, &meta, cap).map_err(read_skip)
}

fn too_large(len: u64, cap: u64) -> SkipReason {
    SkipReason::new(
        SkipKind::TooLarge,
        format!(
            "{} is too large for a photo (at most {} of this format are read)",
            report::human_bytes(len),
            report::human_bytes(cap)
        ),
    )
}

/// Why a file could not be read, as a skip.
fn read_skip(e: open::ReadError) -> SkipReason {
    match e {
        open::ReadError::NotFound => {
            SkipReason::new(SkipKind::Vanished, "the file disappeared during the scan")
        }
        open::ReadError::NotAFile(kind) => {
            SkipReason::new(SkipKind::NotAFile, format!("not a regular file: {kind}"))
        }
        open::ReadError::TooLarge { len, cap } => too_large(len, cap),
        open::ReadError::Io(e) => {
            SkipReason::new(SkipKind::Unreadable, format!("cannot read: {e}"))
        }
    }
}

/// Scale `v` to unit length (a zero vector stays zero).
pub fn l2_normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
