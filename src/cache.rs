//! The embedding cache: an SQLite database (WAL, atomic transactions) that
//! remembers each photo's vector so that a rescan only decodes and embeds
//! what is new or changed.
//!
//! Two tables carry the data:
//! - `vectors(model, content)`: the vector, size and format of a photo's
//!   content, for one model fingerprint. `content` is the file's size and
//!   BLAKE3 hash, so a moved or renamed photo still hits.
//! - `files(path)`: the fast path, `path + size + mtime -> content`, so that
//!   an unchanged file is not even read.
//!
//! The model fingerprint is the sha256 of the model file, its sidecar's
//! input/resize/output, and [`PIPELINE_VERSION`]; a different model never
//! sees another model's vectors.
//!
//! A row is only used after it is checked: every row of `vectors`, `files`
//! and `facts` carries a BLAKE3 checksum of its key and value, and a vector
//! must also have the model's length, finite values and unit length. A row
//! that fails is dropped, counted in a warning and computed again, so one
//! flipped bit on disk never changes a report.
//!
//! Nothing here ever makes a scan fail. Another scan holding a lock is
//! waited for. A cache whose file or folder is read-only is read without
//! writing. Only a cache SQLite finds damaged (corrupt, not a database,
//! failed quick check) or of an unknown schema is set aside (renamed) with a
//! warning that says whether it could be moved, and rebuilt; other errors
//! while working turn the cache off for the rest of the run.

use crate::model::{sha256_hex, ModelSource};
use crate::photo::Format;
use crate::progress::Progress;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod admin;
mod db;
pub mod decisions;
mod encoding;
mod write;

pub use admin::{prune, stats, ModelStats, Pruned, Stats};
use db::*;
use encoding::*;
use write::*;

/// The database layout this build writes.
/// 2: every row of `vectors`, `files` and `facts` carries `sum`, a BLAKE3
/// checksum of its key and value, and `models` records the length of the
/// model's vectors. A version 1 cache (rows without checksums) has its rows
/// dropped once and recomputed.
pub const SCHEMA_VERSION: i64 = 2;
/// Bumped whenever decoding or preprocessing changes the vectors.
/// 2: TIFF-based RAW files (DNG, NEF, ARW...) are read through their JPEG
/// preview (version 1 decoded their small IFD0 thumbnail as a TIFF), and
/// JPEGs are decoded by libjpeg-turbo instead of jpeg-decoder.
/// 3: JPEGs are decoded at 1/8, 1/4 or 1/2 only (no 3/8, 5/8...).
pub const PIPELINE_VERSION: u32 = 3;
/// How long a scan waits for another one that holds the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// Writes are committed in batches of this many rows, or every second.
const BATCH_ROWS: usize = 256;
/// How many damaged rows the warning names (the rest are counted).
const NAMED_BAD_ROWS: usize = 5;
/// How far from 1 the length of a cached (unit) vector may be.
const NORM_TOLERANCE: f32 = 1e-3;

/// The tables of data rows, as this build creates them.
const DATA_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS models (fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL,
        sha256 TEXT NOT NULL, path BLOB, dim INTEGER);
    CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, content TEXT NOT NULL,
        width INTEGER NOT NULL, height INTEGER NOT NULL, format TEXT NOT NULL,
        vector BLOB NOT NULL, sum BLOB NOT NULL, PRIMARY KEY (model, content)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS files (path BLOB PRIMARY KEY, size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, content TEXT NOT NULL, sum BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS facts (kind TEXT NOT NULL, key TEXT NOT NULL,
        value BLOB NOT NULL, sum BLOB NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL, made TEXT NOT NULL, photos TEXT NOT NULL, sum BLOB NOT NULL);";

/// The default location: the platform's cache folder (XDG on Linux).
pub fn default_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("neardup").join("cache.sqlite"))
}

/// The identity of a model's vectors.
pub fn model_fingerprint(model: &ModelSource) -> String {
    let sc = &model.sidecar;
    let desc = serde_json::json!({
        "sha256": model.sha256,
        "input": sc.input,
        "resize": sc.resize,
        "output": sc.output,
        "pipeline": PIPELINE_VERSION,
    });
    sha256_hex(desc.to_string().as_bytes())
}

/// The content key of a file's bytes: size and BLAKE3 hash.
pub fn content_key(bytes: &[u8]) -> String {
    format!("{}:{}", bytes.len(), blake3::hash(bytes).to_hex())
}

/// Modification time in nanoseconds since the epoch (0 when unknown).
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// What the cache knows of a photo's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub width: u32,
    pub height: u32,
    pub format: Format,
    pub vector: Vec<f32>,
}

/// Why the cache was turned off during a run.
struct Failure {
    message: String,
    /// SQLite found the file damaged (corrupt, not a database).
    damaged: bool,
}

impl Failure {
    fn of(e: &rusqlite::Error) -> Failure {
        Failure {
            message: e.to_string(),
            damaged: damaged(e),
        }
    }
}

/// Rows that failed their checks during a run.
#[derive(Default)]
struct BadRows {
    seen: std::collections::HashSet<String>,
    count: usize,
    named: Vec<String>,
}

/// An open cache for one model.
pub struct Cache {
    path: PathBuf,
    fingerprint: String,
    reader: Mutex<Option<Connection>>,
    /// More read-only connections, one per worker thread beyond the first,
    /// so that a warm scan's lookups (three per photo) run side by side;
    /// used only while `reader` is open (`off` tells it without its lock).
    readers: Vec<Mutex<Connection>>,
    off: std::sync::atomic::AtomicBool,
    writer: Mutex<Option<mpsc::Sender<Write>>>,
    thread: Option<std::thread::JoinHandle<rusqlite::Result<()>>>,
    /// Set when a database error turned the cache off during the run.
    failed: Mutex<Option<Failure>>,
    /// Opened without writing (the file or its folder is read-only).
    read_only: bool,
    /// The length of this model's vectors (0: not known yet).
    dim: AtomicUsize,
    bad: Mutex<BadRows>,
}

impl Cache {
    fn off(path: &Path, fingerprint: String) -> Cache {
        Cache {
            path: path.to_path_buf(),
            fingerprint,
            reader: Mutex::new(None),
            readers: Vec::new(),
            off: std::sync::atomic::AtomicBool::new(false),
            writer: Mutex::new(None),
            thread: None,
            failed: Mutex::new(None),
            read_only: false,
            dim: AtomicUsize::new(0),
            bad: Mutex::new(BadRows::default()),
        }
    }

    /// Open the cache at `path` for this model. Never fails: without a
    /// usable database it returns a cache that always misses.
    pub fn open(path: &Path, model: &ModelSource, progress: &dyn Progress) -> Cache {
        let fingerprint = model_fingerprint(model);
        let mut cache = Cache::off(path, fingerprint.clone());
        let Some(db) = open_db(path, progress) else {
            return cache;
        };
        for note in &db.notes {
            progress.warn(note);
        }
        let reader = db.conn;
        if db.read_only {
            progress.warn(&format!(
                "cache {} is read-only: using it without writing",
                path.display()
            ));
            cache.read_only = true;
            *cache.reader.lock().expect("cache lock") = Some(reader);
            return cache;
        }
        let registered = retry(|| {
            reader.execute(
                "INSERT OR IGNORE INTO models (fingerprint, name, sha256, path) VALUES (?1, ?2, ?3, ?4)",
                params![
                    fingerprint,
                    model.sidecar.name,
                    model.sha256,
                    model.path.as_deref().map(path_bytes)
                ],
            )
        });
        if let Err(e) = registered {
            progress.warn(&format!(
                "cache {}: {e}; scanning without cache",
                path.display()
            ));
            return cache;
        }
        let writer_conn = match Connection::open(path) {
            Ok(c) if c.busy_timeout(BUSY_TIMEOUT).is_ok() => c,
            _ => {
                progress.warn(&format!(
                    "cache {}: cannot open it for writing; scanning without cache",
                    path.display()
                ));
                return cache;
            }
        };
        cache.readers = (1..rayon::current_num_threads())
            .map_while(|_| open_reader(path).map(Mutex::new))
            .collect();
        let (tx, rx) = mpsc::channel::<Write>();
        let fp = fingerprint;
        cache.thread = Some(std::thread::spawn(move || write_loop(writer_conn, &fp, rx)));
        *cache.reader.lock().expect("cache lock") = Some(reader);
        *cache.writer.lock().expect("cache lock") = Some(tx);
        cache
    }

    /// A cache that is never used (`--no-cache`).
    pub fn disabled() -> Cache {
        Cache::off(Path::new(""), String::new())
    }

    /// The identity of this model's vectors ([`model_fingerprint`]); empty
    /// for a disabled cache.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn is_enabled(&self) -> bool {
        self.reader.lock().expect("cache lock").is_some()
    }

    /// True when the cache is read but never written.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn fail(&self, e: rusqlite::Error) {
        self.off.store(true, Ordering::Relaxed);
        *self.reader.lock().expect("cache lock") = None;
        *self.writer.lock().expect("cache lock") = None;
        self.failed
            .lock()
            .expect("cache lock")
            .get_or_insert(Failure::of(&e));
    }

    fn with_reader<T>(&self, f: impl Fn(&Connection) -> rusqlite::Result<Option<T>>) -> Option<T> {
        // A worker thread past the first has a connection of its own.
        let own = rayon::current_thread_index()
            .filter(|&i| i > 0 && !self.readers.is_empty())
            .map(|i| &self.readers[(i - 1) % self.readers.len()]);
        if let Some(conn) = own {
            if self.off.load(Ordering::Relaxed) {
                return None;
            }
            let conn = conn.lock().expect("cache lock");
            return match retry(|| f(&conn)) {
                Ok(v) => v,
                Err(e) => {
                    drop(conn);
                    self.fail(e);
                    None
                }
            };
        }
        let guard = self.reader.lock().expect("cache lock");
        let conn = guard.as_ref()?;
        match retry(|| f(conn)) {
            Ok(v) => v,
            Err(e) => {
                drop(guard);
                self.fail(e);
                None
            }
        }
    }

    /// A row failed its checks: named in the warning, dropped (unless the
    /// cache is read-only) and treated as a miss, so it is computed again.
    fn bad_row(&self, what: String, drop: Write) {
        {
            let mut bad = self.bad.lock().expect("cache lock");
            // The same row may be looked up twice (by path, then by content).
            if !bad.seen.insert(what.clone()) {
                return;
            }
            bad.count += 1;
            if bad.named.len() < NAMED_BAD_ROWS {
                bad.named.push(what);
            }
        }
        self.send(drop);
    }

    /// The length of this model's vectors, as recorded with them.
    fn dim(&self) -> usize {
        let d = self.dim.load(Ordering::Relaxed);
        if d != 0 {
            return d;
        }
        let d = self
            .with_reader(|c| {
                c.prepare_cached("SELECT dim FROM models WHERE fingerprint = ?1")?
                    .query_row(params![self.fingerprint], |r| {
                        Ok(match r.get_ref(0)? {
                            ValueRef::Integer(n) if n > 0 && n < 1 << 24 => n as usize,
                            _ => 0,
                        })
                    })
                    .optional()
            })
            .unwrap_or(0);
        self.dim.store(d, Ordering::Relaxed);
        d
    }

    /// The content key last seen at this path with this size and mtime.
    pub fn content_at(&self, path: &Path, size: u64, mtime: i64) -> Option<String> {
        let pb = path_bytes(path);
        let row = self.with_reader(|c| {
            c.prepare_cached(
                "SELECT content, sum FROM files WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3",
            )?
            .query_row(params![pb, size as i64, mtime], |r| {
                Ok(match (r.get_ref(0)?, r.get_ref(1)?) {
                    (ValueRef::Text(content), ValueRef::Blob(sum)) => std::str::from_utf8(content)
                        .ok()
                        .filter(|c| sum == file_sum(&pb, size as i64, mtime, c))
                        .map(str::to_string),
                    _ => None,
                })
            })
            .optional()
        })?;
        if row.is_none() {
            self.bad_row(
                format!("the content of {}", path.display()),
                Write::DropFile { path: pb },
            );
        }
        row
    }

    /// The vector of this content for this cache's model.
    pub fn get(&self, content: &str) -> Option<Entry> {
        let dim = self.dim();
        if dim == 0 {
            return None;
        }
        let row = self.with_reader(|c| {
            c.prepare_cached(
                "SELECT width, height, format, vector, sum FROM vectors WHERE model = ?1 AND content = ?2",
            )?
            .query_row(params![self.fingerprint, content], |r| {
                vector_row(&self.fingerprint, content, dim, r)
            })
            .optional()
        })?;
        match row {
            Ok(e) => Some(e),
            Err(why) => {
                self.bad_row(
                    format!("the vector of {content} ({why})"),
                    Write::DropVector {
                        content: content.to_string(),
                    },
                );
                None
            }
        }
    }

    /// A derived fact (a pixel hash, the inliers of a pair...) stored under
    /// `kind` (which names what it depends on besides `key`).
    pub fn get_fact(&self, kind: &str, key: &str) -> Option<Vec<u8>> {
        let row = self.with_reader(|c| {
            c.prepare_cached("SELECT value, sum FROM facts WHERE kind = ?1 AND key = ?2")?
                .query_row(params![kind, key], |r| {
                    Ok(match (r.get_ref(0)?, r.get_ref(1)?) {
                        (ValueRef::Blob(v), ValueRef::Blob(sum))
                            if sum == fact_sum(kind, key, v) =>
                        {
                            Some(v.to_vec())
                        }
                        _ => None,
                    })
                })
                .optional()
        })?;
        if row.is_none() {
            self.bad_row(
                format!("the {kind} fact of {key}"),
                Write::DropFact {
                    kind: kind.to_string(),
                    key: key.to_string(),
                },
            );
        }
        row
    }

    /// Remember a derived fact.
    pub fn put_fact(&self, kind: &str, key: &str, value: Vec<u8>) {
        self.send(Write::Fact {
            kind: kind.to_string(),
            key: key.to_string(),
            value,
        });
    }

    fn send(&self, w: Write) {
        if let Some(tx) = self.writer.lock().expect("cache lock").as_ref() {
            let _ = tx.send(w);
        }
    }

    /// Remember that `path` (with this size and mtime) holds `content`.
    pub fn put_file(&self, path: &Path, size: u64, mtime: i64, content: &str) {
        self.send(Write::File {
            path: path_bytes(path),
            size,
            mtime,
            content: content.to_string(),
        });
    }

    /// Remember the vector of `content`.
    pub fn put(&self, content: &str, entry: Entry) {
        if !self.read_only {
            self.dim.store(entry.vector.len(), Ordering::Relaxed);
        }
        self.send(Write::Vector {
            content: content.to_string(),
            entry,
        });
    }

    /// Commit what is pending and close. Returns the warnings of the run:
    /// damaged rows (counted, the first few named), and a database failure
    /// (the cache was then set aside if it was damaged).
    pub fn close(mut self) -> Vec<String> {
        *self.writer.lock().expect("cache lock") = None;
        let written = self.thread.take().map(|t| t.join());
        self.off.store(true, Ordering::Relaxed);
        self.readers.clear();
        *self.reader.lock().expect("cache lock") = None;
        let mut out = Vec::new();
        let bad = std::mem::take(&mut *self.bad.lock().expect("cache lock"));
        if bad.count > 0 {
            let fate = if self.read_only {
                "not used (the cache is read-only: they stay)"
            } else {
                "dropped and computed again"
            };
            let more = if bad.count > bad.named.len() {
                format!("; and {} more", bad.count - bad.named.len())
            } else {
                String::new()
            };
            out.push(format!(
                "cache {}: {} damaged row{} {fate}: {}{more}",
                self.path.display(),
                bad.count,
                if bad.count == 1 { "" } else { "s" },
                bad.named.join("; ")
            ));
        }
        let mut failure = self.failed.lock().expect("cache lock").take();
        match written {
            Some(Ok(Err(e))) => {
                failure.get_or_insert(Failure::of(&e));
            }
            Some(Err(_)) => {
                failure.get_or_insert(Failure {
                    message: "the cache writer panicked".into(),
                    damaged: false,
                });
            }
            _ => {}
        }
        let Some(f) = failure else {
            return out;
        };
        let path = self.path.display();
        let msg = f.message;
        out.push(if !f.damaged {
            format!("cache {path} was not used for part of this run: {msg}")
        } else if self.read_only {
            format!("cache {path} is corrupt ({msg}); it is read-only, so it was left in place")
        } else {
            match set_aside(&self.path) {
                Ok(aside) => format!(
                    "cache {path} is corrupt ({msg}); moved to {}, it will be rebuilt",
                    aside.display()
                ),
                Err(e) => format!(
                    "cache {path} is corrupt ({msg}) and could not be moved aside ({e}): left in place"
                ),
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    fn entry(x: f32) -> Entry {
        Entry {
            width: 4,
            height: 3,
            format: Format::Jpeg,
            vector: vec![x.cos(), x.sin(), 0.0],
        }
    }

    #[test]
    fn put_then_get_across_reopen() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("c.sqlite");
        let model = ModelSource::bundled().unwrap();
        let c = Cache::open(&db, &model, &NoProgress);
        assert!(c.is_enabled());
        assert_eq!(c.get("1:aa"), None);
        c.put("1:aa", entry(0.25));
        c.put_file(Path::new("/x/a.jpg"), 1, 7, "1:aa");
        assert!(c.close().is_empty());
        let c = Cache::open(&db, &model, &NoProgress);
        assert_eq!(c.get("1:aa"), Some(entry(0.25)));
        assert_eq!(
            c.content_at(Path::new("/x/a.jpg"), 1, 7).as_deref(),
            Some("1:aa")
        );
        assert_eq!(c.content_at(Path::new("/x/a.jpg"), 1, 8), None);
        let s = stats(&db).unwrap();
        assert_eq!((s.files, s.vectors, s.models.len()), (1, 1, 1));
    }

    #[test]
    fn other_model_never_sees_the_vectors() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("c.sqlite");
        let model = ModelSource::bundled().unwrap();
        let c = Cache::open(&db, &model, &NoProgress);
        c.put("1:aa", entry(0.25));
        c.close();
        let mut other = model.clone();
        other.sidecar.resize.shorter_side = 300;
        assert_ne!(model_fingerprint(&model), model_fingerprint(&other));
        let c = Cache::open(&db, &other, &NoProgress);
        assert_eq!(c.get("1:aa"), None);
    }

    #[test]
    fn garbage_truncated_and_newer_caches_are_set_aside() {
        let model = ModelSource::bundled().unwrap();
        let d = tempfile::tempdir().unwrap();
        // Garbage.
        let db = d.path().join("garbage.sqlite");
        std::fs::write(&db, vec![0x5a; 10_000]).unwrap();
        let c = Cache::open(&db, &model, &NoProgress);
        assert!(c.is_enabled());
        c.put("1:aa", entry(1.0));
        c.close();
        assert!(std::fs::read_dir(d.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("broken")));
        // Truncated.
        let db2 = d.path().join("trunc.sqlite");
        let c = Cache::open(&db2, &model, &NoProgress);
        for i in 0..500 {
            c.put(&format!("{i}:x"), entry(i as f32));
        }
        c.close();
        let conn = Connection::open(&db2).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        drop(conn);
        let len = std::fs::metadata(&db2).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&db2).unwrap();
        f.set_len(len / 2).unwrap();
        drop(f);
        let c = Cache::open(&db2, &model, &NoProgress);
        assert!(c.is_enabled());
        assert_eq!(c.get("3:x"), None);
        c.close();
        // Newer schema.
        let db3 = d.path().join("new.sqlite");
        Cache::open(&db3, &model, &NoProgress).close();
        let conn = Connection::open(&db3).unwrap();
        conn.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        let c = Cache::open(&db3, &model, &NoProgress);
        assert!(c.is_enabled());
        c.close();
        assert_eq!(stats(&db3).unwrap().vectors, 0);
    }

    /// A Progress that keeps the warnings.
    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl Progress for Warnings {
        fn warn(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    impl Warnings {
        fn all(&self) -> String {
            self.0.lock().unwrap().join("\n")
        }
    }

    fn unit(n: usize, k: usize) -> Vec<f32> {
        let mut v = vec![0.0; n];
        v[k % n] = 0.6;
        v[(k + 1) % n] = 0.8;
        v
    }

    fn unit_entry(k: usize) -> Entry {
        Entry {
            width: 640,
            height: 480,
            format: Format::Jpeg,
            vector: unit(1280, k),
        }
    }

    /// A cache holding two vectors, two paths and two facts.
    fn filled(db: &Path, model: &ModelSource) {
        let c = Cache::open(db, model, &NoProgress);
        c.put("1:aa", unit_entry(0));
        c.put("1:bb", unit_entry(7));
        c.put_file(Path::new("/x/a.jpg"), 1, 7, "1:aa");
        c.put_file(Path::new("/x/b.jpg"), 1, 7, "1:bb");
        c.put_fact("same-pixels/1", "1:aa|1:bb", vec![0]);
        c.put_fact("pixels/2", "1:aa", b"abc".to_vec());
        assert!(c.close().is_empty());
    }

    fn sql(db: &Path, statement: &str) {
        let conn = Connection::open(db).unwrap();
        conn.execute_batch(statement).unwrap();
    }

    #[test]
    fn a_flipped_bit_in_any_row_is_dropped_and_warned_about() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("c.sqlite");
        let model = ModelSource::bundled().unwrap();
        filled(&db, &model);
        let c = Cache::open(&db, &model, &NoProgress);
        assert_eq!(c.get("1:aa"), Some(unit_entry(0)));
        assert_eq!(c.get_fact("same-pixels/1", "1:aa|1:bb"), Some(vec![0]));
        assert_eq!(
            c.content_at(Path::new("/x/a.jpg"), 1, 7).as_deref(),
            Some("1:aa")
        );
        assert!(c.close().is_empty());
        // One low mantissa bit of one float: still finite and of unit
        // length, only the checksum tells.
        let conn = Connection::open(&db).unwrap();
        let mut blob: Vec<u8> = conn
            .query_row(
                "SELECT vector FROM vectors WHERE content = '1:aa'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        blob[0] ^= 1;
        conn.execute(
            "UPDATE vectors SET vector = ?1 WHERE content = '1:aa'",
            params![blob],
        )
        .unwrap();
        // "same pixels: no" becomes "yes"; a path points at other content.
        conn.execute_batch(
            "UPDATE facts SET value = x'01' WHERE kind = 'same-pixels/1';
             UPDATE files SET content = '1:bb' WHERE path = CAST('/x/a.jpg' AS BLOB);",
        )
        .unwrap();
        drop(conn);
        let w = Warnings::default();
        let c = Cache::open(&db, &model, &w);
        assert_eq!(c.get("1:aa"), None);
        assert_eq!(c.get("1:bb"), Some(unit_entry(7)));
        assert_eq!(c.get_fact("same-pixels/1", "1:aa|1:bb"), None);
        assert_eq!(c.get_fact("pixels/2", "1:aa"), Some(b"abc".to_vec()));
        assert_eq!(c.content_at(Path::new("/x/a.jpg"), 1, 7), None);
        assert_eq!(
            c.content_at(Path::new("/x/b.jpg"), 1, 7).as_deref(),
            Some("1:bb")
        );
        let warnings = c.close();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let msg = &warnings[0];
        assert!(msg.contains("3 damaged rows dropped"), "{msg}");
        assert!(
            msg.contains("the vector of 1:aa (a checksum mismatch)"),
            "{msg}"
        );
        assert!(msg.contains("the content of /x/a.jpg"), "{msg}");
        assert!(msg.contains("same-pixels/1"), "{msg}");
        assert_eq!(w.all(), "");
        // Dropped: the next run misses them quietly and the rest is there.
        let c = Cache::open(&db, &model, &NoProgress);
        assert_eq!(c.get("1:aa"), None);
        assert_eq!(c.get_fact("same-pixels/1", "1:aa|1:bb"), None);
        assert_eq!(c.content_at(Path::new("/x/a.jpg"), 1, 7), None);
        assert_eq!(c.get("1:bb"), Some(unit_entry(7)));
        assert!(c.close().is_empty());
    }

    #[test]
    fn vectors_of_another_length_or_not_unit_are_not_used() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("c.sqlite");
        let model = ModelSource::bundled().unwrap();
        filled(&db, &model);
        let long = vec_to_blob(&unit(1281, 0));
        let conn = Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE vectors SET vector = ?1 WHERE content = '1:bb'",
            params![long],
        )
        .unwrap();
        conn.execute_batch("UPDATE vectors SET vector = x'0000803f' WHERE content = '1:aa'")
            .unwrap();
        drop(conn);
        let c = Cache::open(&db, &model, &NoProgress);
        assert_eq!(c.get("1:aa"), None);
        assert_eq!(c.get("1:bb"), None);
        let msg = c.close().join("\n");
        assert!(msg.contains("2 damaged rows"), "{msg}");
        assert!(msg.contains("4 bytes where 1280 floats"), "{msg}");
        assert!(msg.contains("5124 bytes where 1280 floats"), "{msg}");

        // A right checksum does not make a wrong length, a NaN or a long
        // vector usable.
        let fp = model_fingerprint(&model);
        let forge = |content: &str, v: &[f32]| {
            let blob = vec_to_blob(v);
            let sum = vector_sum(&fp, content, 640, 480, "jpeg", &blob);
            let conn = Connection::open(&db).unwrap();
            conn.execute(
                "INSERT OR REPLACE INTO vectors VALUES (?1, ?2, 640, 480, 'jpeg', ?3, ?4)",
                params![fp, content, blob, &sum[..]],
            )
            .unwrap();
        };
        forge("1:cc", &unit(1281, 0));
        let mut nan = unit(1280, 0);
        nan[5] = f32::NAN;
        forge("1:dd", &nan);
        let mut long = unit(1280, 0);
        long[0] = 3.0;
        forge("1:ee", &long);
        forge("1:ff", &unit(1280, 3));
        let c = Cache::open(&db, &model, &NoProgress);
        assert_eq!(c.get("1:cc"), None);
        assert_eq!(c.get("1:dd"), None);
        assert_eq!(c.get("1:ee"), None);
        assert_eq!(c.get("1:ff").map(|e| e.vector), Some(unit(1280, 3)));
        let msg = c.close().join("\n");
        assert!(msg.contains("3 damaged rows"), "{msg}");
        assert!(msg.contains("not finite") && msg.contains("not 1"), "{msg}");
    }

    #[test]
    fn a_schema_1_cache_is_migrated_with_one_note() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("c.sqlite");
        sql(
            &db,
            "PRAGMA journal_mode = WAL;
             CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE models (fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL,
                 sha256 TEXT NOT NULL, path BLOB);
             CREATE TABLE vectors (model TEXT NOT NULL, content TEXT NOT NULL,
                 width INTEGER NOT NULL, height INTEGER NOT NULL, format TEXT NOT NULL,
                 vector BLOB NOT NULL, PRIMARY KEY (model, content)) WITHOUT ROWID;
             CREATE TABLE files (path BLOB PRIMARY KEY, size INTEGER NOT NULL,
                 mtime_ns INTEGER NOT NULL, content TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE facts (kind TEXT NOT NULL, key TEXT NOT NULL,
                 value BLOB NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
             INSERT INTO meta VALUES ('schema_version', '1');
             INSERT INTO facts VALUES ('pixels/2', '1:aa', x'01');",
        );
        let model = ModelSource::bundled().unwrap();
        let w = Warnings::default();
        let c = Cache::open(&db, &model, &w);
        assert!(c.is_enabled() && !c.is_read_only());
        assert_eq!(c.get_fact("pixels/2", "1:aa"), None);
        c.put("1:aa", unit_entry(1));
        assert!(c.close().is_empty());
        let all = w.all();
        assert_eq!(w.0.lock().unwrap().len(), 1, "{all}");
        assert!(all.contains("older neardup (schema 1"), "{all}");
        let w = Warnings::default();
        let c = Cache::open(&db, &model, &w);
        assert_eq!(c.get("1:aa"), Some(unit_entry(1)));
        assert!(c.close().is_empty());
        assert_eq!(w.all(), "");
        assert!(!std::fs::read_dir(d.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("broken")));
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_cache_is_read_not_written_nor_moved() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let folder = d.path().join("ro");
        std::fs::create_dir(&folder).unwrap();
        let db = folder.join("c.sqlite");
        let model = ModelSource::bundled().unwrap();
        filled(&db, &model);
        let before = std::fs::read(&db).unwrap();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        for (file_mode, folder_mode) in [(0o444, 0o755), (0o644, 0o555)] {
            mode(&db, file_mode);
            mode(&folder, folder_mode);
            let w = Warnings::default();
            let c = Cache::open(&db, &model, &w);
            assert!(c.is_enabled() && c.is_read_only());
            assert_eq!(c.get("1:bb"), Some(unit_entry(7)));
            c.put("1:new", unit_entry(2));
            c.put_fact("pixels/2", "1:new", b"x".to_vec());
            assert!(c.close().is_empty());
            assert_eq!(
                w.all(),
                format!(
                    "cache {} is read-only: using it without writing",
                    db.display()
                )
            );
            mode(&folder, 0o755);
            let names: Vec<String> = std::fs::read_dir(&folder)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, ["c.sqlite"], "{file_mode:o} {folder_mode:o}");
            assert_eq!(std::fs::read(&db).unwrap(), before);
            let s = stats(&db).unwrap();
            assert_eq!(s.vectors, 2);
        }
        // Damaged and read-only: left in place, and the message says so.
        mode(&db, 0o644);
        let mut bytes = before.clone();
        bytes[..16].copy_from_slice(b"not a database!!");
        std::fs::write(&db, &bytes).unwrap();
        mode(&db, 0o444);
        let w = Warnings::default();
        let c = Cache::open(&db, &model, &w);
        assert!(!c.is_enabled());
        c.close();
        let all = w.all();
        assert!(
            all.contains("left in place") && !all.contains("moved"),
            "{all}"
        );
        assert_eq!(std::fs::read(&db).unwrap(), bytes);
    }

    #[test]
    fn many_opens_at_once_never_set_the_cache_aside() {
        let d = tempfile::tempdir().unwrap();
        let model = ModelSource::bundled().unwrap();
        for round in 0..5 {
            let db = d.path().join(format!("c{round}.sqlite"));
            let warnings: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..6)
                    .map(|i| {
                        let (db, model) = (&db, &model);
                        s.spawn(move || {
                            let w = Warnings::default();
                            let c = Cache::open(db, model, &w);
                            assert!(c.is_enabled());
                            c.put(&format!("1:{i}"), unit_entry(i));
                            let mut all = c.close();
                            all.extend(w.0.into_inner().unwrap());
                            all
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect()
            });
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(stats(&db).unwrap().vectors, 6);
        }
        assert!(!std::fs::read_dir(d.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("broken")));
    }

    #[test]
    fn prune_drops_gone_files_and_their_vectors() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("c.sqlite");
        let keep = d.path().join("keep.jpg");
        std::fs::write(&keep, b"k").unwrap();
        let m = mtime_ns(&std::fs::metadata(&keep).unwrap());
        let model = ModelSource::bundled().unwrap();
        let c = Cache::open(&db, &model, &NoProgress);
        c.put("1:keep", entry(1.0));
        c.put_file(&keep, 1, m, "1:keep");
        c.put("1:gone", entry(2.0));
        c.put_file(&d.path().join("gone.jpg"), 1, 5, "1:gone");
        c.close();
        let p = prune(&db, &[model_fingerprint(&model)]).unwrap();
        assert_eq!((p.files, p.vectors, p.models), (1, 1, 0));
        let s = stats(&db).unwrap();
        assert_eq!((s.files, s.vectors), (1, 1));
        // A model that is neither kept nor on disk goes with its vectors.
        let p = prune(&db, &[]).unwrap();
        assert_eq!((p.models, p.vectors), (1, 1));
    }
}
