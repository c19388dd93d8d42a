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
//! sees another model's vectors. Nothing here ever makes a scan fail: a
//! cache that cannot be opened, is corrupt, or has a newer schema is set
//! aside (renamed) with a warning and rebuilt, and errors while working turn
//! the cache off for the rest of the run.

use crate::model::{sha256_hex, ModelSource};
use crate::progress::Progress;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The database layout this build writes.
pub const SCHEMA_VERSION: i64 = 1;
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
    pub format: String,
    pub vector: Vec<f32>,
}

enum Write {
    File {
        path: Vec<u8>,
        size: u64,
        mtime: i64,
        content: String,
    },
    Vector {
        content: String,
        entry: Entry,
    },
    Fact {
        kind: String,
        key: String,
        value: Vec<u8>,
    },
}

/// An open cache for one model.
pub struct Cache {
    path: PathBuf,
    fingerprint: String,
    reader: Mutex<Option<Connection>>,
    writer: Mutex<Option<mpsc::Sender<Write>>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    /// Set when a database error turned the cache off during the run.
    failed: Mutex<Option<String>>,
}

fn path_bytes(p: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        p.to_string_lossy().into_owned().into_bytes()
    }
}

fn vec_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_to_vec(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[derive(Debug)]
enum OpenError {
    /// The file is not a usable cache: set it aside.
    Unusable(String),
    /// Could not even try (folder not writable...): run without cache.
    Unavailable(String),
}

fn connect(path: &Path) -> Result<Connection, OpenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| OpenError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    let conn = Connection::open(path).map_err(|e| OpenError::Unavailable(e.to_string()))?;
    let unusable = |e: rusqlite::Error| OpenError::Unusable(e.to_string());
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unusable)?;
    // Reading the journal mode reads the header: garbage fails here.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(unusable)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(unusable)?;
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS models (fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL,
             sha256 TEXT NOT NULL, path BLOB);
         CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, content TEXT NOT NULL,
             width INTEGER NOT NULL, height INTEGER NOT NULL, format TEXT NOT NULL,
             vector BLOB NOT NULL, PRIMARY KEY (model, content)) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS files (path BLOB PRIMARY KEY, size INTEGER NOT NULL,
             mtime_ns INTEGER NOT NULL, content TEXT NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS facts (kind TEXT NOT NULL, key TEXT NOT NULL,
             value BLOB NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
         INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
         COMMIT;",
    )
    .map_err(unusable)?;
    let version: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .map_err(unusable)?;
    match version.parse::<i64>() {
        Ok(SCHEMA_VERSION) => {}
        _ => {
            return Err(OpenError::Unusable(format!(
                "schema version {version} is not the {SCHEMA_VERSION} this build reads"
            )))
        }
    }
    // A small cache is checked whole; a large one is checked as it is read.
    let small = std::fs::metadata(path)
        .map(|m| m.len() < 64 << 20)
        .unwrap_or(true);
    if small {
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(unusable)?;
        if check != "ok" {
            return Err(OpenError::Unusable(format!(
                "integrity check failed: {check}"
            )));
        }
    }
    Ok(conn)
}

/// Rename a broken cache (and its WAL files) out of the way.
fn set_aside(path: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".broken-{stamp}"));
    let aside = PathBuf::from(aside);
    let _ = std::fs::rename(path, &aside);
    for ext in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    aside
}

/// Open (or create) a database, setting aside one that is unusable.
/// Returns `None` (after a warning) when no cache can be used at all.
fn open_db(path: &Path, progress: &dyn Progress) -> Option<Connection> {
    match connect(path) {
        Ok(c) => Some(c),
        Err(OpenError::Unavailable(m)) => {
            progress.warn(&format!(
                "cache {}: {m}; scanning without cache",
                path.display()
            ));
            None
        }
        Err(OpenError::Unusable(m)) => {
            let aside = set_aside(path);
            progress.warn(&format!(
                "cache {} is unusable ({m}); moved to {} and rebuilt",
                path.display(),
                aside.display()
            ));
            match connect(path) {
                Ok(c) => Some(c),
                Err(OpenError::Unusable(m) | OpenError::Unavailable(m)) => {
                    progress.warn(&format!(
                        "cache {}: {m}; scanning without cache",
                        path.display()
                    ));
                    None
                }
            }
        }
    }
}

impl Cache {
    /// Open the cache at `path` for this model. Never fails: without a
    /// usable database it returns a cache that always misses.
    pub fn open(path: &Path, model: &ModelSource, progress: &dyn Progress) -> Cache {
        let fingerprint = model_fingerprint(model);
        let mut cache = Cache {
            path: path.to_path_buf(),
            fingerprint: fingerprint.clone(),
            reader: Mutex::new(None),
            writer: Mutex::new(None),
            thread: None,
            failed: Mutex::new(None),
        };
        let Some(reader) = open_db(path, progress) else {
            return cache;
        };
        let registered = reader.execute(
            "INSERT OR IGNORE INTO models (fingerprint, name, sha256, path) VALUES (?1, ?2, ?3, ?4)",
            params![
                fingerprint,
                model.sidecar.name,
                model.sha256,
                model.path.as_deref().map(path_bytes)
            ],
        );
        if let Err(e) = registered {
            progress.warn(&format!(
                "cache {}: {e}; scanning without cache",
                path.display()
            ));
            return cache;
        }
        let writer_conn = match Connection::open(path) {
            Ok(c) if c.busy_timeout(BUSY_TIMEOUT).is_ok() => c,
            _ => return cache,
        };
        let (tx, rx) = mpsc::channel::<Write>();
        let fp = fingerprint;
        cache.thread = Some(std::thread::spawn(move || write_loop(writer_conn, &fp, rx)));
        *cache.reader.lock().expect("cache lock") = Some(reader);
        *cache.writer.lock().expect("cache lock") = Some(tx);
        cache
    }

    /// A cache that is never used (`--no-cache`).
    pub fn disabled() -> Cache {
        Cache {
            path: PathBuf::new(),
            fingerprint: String::new(),
            reader: Mutex::new(None),
            writer: Mutex::new(None),
            thread: None,
            failed: Mutex::new(None),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.reader.lock().expect("cache lock").is_some()
    }

    fn fail(&self, e: rusqlite::Error) {
        *self.reader.lock().expect("cache lock") = None;
        *self.writer.lock().expect("cache lock") = None;
        self.failed
            .lock()
            .expect("cache lock")
            .get_or_insert(e.to_string());
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<Option<T>>,
    ) -> Option<T> {
        let guard = self.reader.lock().expect("cache lock");
        let conn = guard.as_ref()?;
        match f(conn) {
            Ok(v) => v,
            Err(e) => {
                drop(guard);
                self.fail(e);
                None
            }
        }
    }

    /// The content key last seen at this path with this size and mtime.
    pub fn content_at(&self, path: &Path, size: u64, mtime: i64) -> Option<String> {
        self.with_reader(|c| {
            c.prepare_cached(
                "SELECT content FROM files WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3",
            )?
            .query_row(params![path_bytes(path), size as i64, mtime], |r| r.get(0))
            .optional()
        })
    }

    /// The vector of this content for this cache's model.
    pub fn get(&self, content: &str) -> Option<Entry> {
        self.with_reader(|c| {
            c.prepare_cached("SELECT width, height, format, vector FROM vectors WHERE model = ?1 AND content = ?2")?
                .query_row(params![self.fingerprint, content], |r| {
                    Ok(Entry {
                        width: r.get::<_, i64>(0)? as u32,
                        height: r.get::<_, i64>(1)? as u32,
                        format: r.get(2)?,
                        vector: blob_to_vec(&r.get::<_, Vec<u8>>(3)?),
                    })
                })
                .optional()
        })
    }

    /// A derived fact (a pixel hash, the inliers of a pair...) stored under
    /// `kind` (which names what it depends on besides `key`).
    pub fn get_fact(&self, kind: &str, key: &str) -> Option<Vec<u8>> {
        self.with_reader(|c| {
            c.prepare_cached("SELECT value FROM facts WHERE kind = ?1 AND key = ?2")?
                .query_row(params![kind, key], |r| r.get(0))
                .optional()
        })
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
        self.send(Write::Vector {
            content: content.to_string(),
            entry,
        });
    }

    /// Commit what is pending and close. Returns a warning when the cache
    /// failed during the run (it was then set aside if it was corrupt).
    pub fn close(mut self) -> Option<String> {
        *self.writer.lock().expect("cache lock") = None;
        let written = self
            .thread
            .take()
            .map(|t| t.join().unwrap_or_else(|_| Err("writer panicked".into())));
        *self.reader.lock().expect("cache lock") = None;
        let mut failure = self.failed.lock().expect("cache lock").take();
        if let Some(Err(e)) = written {
            failure.get_or_insert(e);
        }
        let failure = failure?;
        let corrupt = failure.contains("malformed")
            || failure.contains("not a database")
            || failure.contains("corrupt");
        if corrupt {
            let aside = set_aside(&self.path);
            Some(format!(
                "cache {} is corrupt ({failure}); moved to {}, it will be rebuilt",
                self.path.display(),
                aside.display()
            ))
        } else {
            Some(format!(
                "cache {} was not used for part of this run: {failure}",
                self.path.display()
            ))
        }
    }
}

fn write_loop(
    mut conn: Connection,
    fingerprint: &str,
    rx: mpsc::Receiver<Write>,
) -> Result<(), String> {
    let mut pending: Vec<Write> = Vec::new();
    let mut since = Instant::now();
    loop {
        let msg = rx.recv_timeout(Duration::from_millis(200));
        let closed = matches!(msg, Err(mpsc::RecvTimeoutError::Disconnected));
        if let Ok(w) = msg {
            if pending.is_empty() {
                since = Instant::now();
            }
            pending.push(w);
        }
        if !pending.is_empty()
            && (closed || pending.len() >= BATCH_ROWS || since.elapsed() >= Duration::from_secs(1))
        {
            commit(&mut conn, fingerprint, &pending).map_err(|e| e.to_string())?;
            pending.clear();
        }
        if closed {
            return Ok(());
        }
    }
}

fn commit(conn: &mut Connection, fingerprint: &str, rows: &[Write]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut file = tx.prepare_cached(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, content) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut vector = tx.prepare_cached(
            "INSERT OR REPLACE INTO vectors (model, content, width, height, format, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut fact = tx.prepare_cached(
            "INSERT OR REPLACE INTO facts (kind, key, value) VALUES (?1, ?2, ?3)",
        )?;
        for w in rows {
            match w {
                Write::Fact { kind, key, value } => {
                    fact.execute(params![kind, key, value])?;
                }
                Write::File {
                    path,
                    size,
                    mtime,
                    content,
                } => {
                    file.execute(params![path, *size as i64, mtime, content])?;
                }
                Write::Vector { content, entry } => {
                    vector.execute(params![
                        fingerprint,
                        content,
                        entry.width as i64,
                        entry.height as i64,
                        entry.format,
                        vec_to_blob(&entry.vector)
                    ])?;
                }
            }
        }
    }
    tx.commit()
}

/// What `neardup cache stats` shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    pub path: String,
    pub bytes_on_disk: u64,
    pub files: u64,
    pub vectors: u64,
    pub models: Vec<ModelStats>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelStats {
    pub name: String,
    pub sha256: String,
    pub fingerprint: String,
    pub vectors: u64,
}

fn disk_size(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .map(|ext| {
            let mut p = path.as_os_str().to_owned();
            p.push(ext);
            std::fs::metadata(PathBuf::from(p))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

fn open_existing(path: &Path) -> Result<Connection, String> {
    if !path.exists() {
        return Err(format!("no cache at {}", path.display()));
    }
    match connect(path) {
        Ok(c) => Ok(c),
        Err(OpenError::Unusable(m) | OpenError::Unavailable(m)) => {
            Err(format!("cache {}: {m}", path.display()))
        }
    }
}

/// Entries, size on disk and models of the cache at `path`.
pub fn stats(path: &Path) -> Result<Stats, String> {
    let conn = open_existing(path)?;
    let q = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map_err(|e| e.to_string())
    };
    let files = q("SELECT count(*) FROM files")? as u64;
    let vectors = q("SELECT count(*) FROM vectors")? as u64;
    let mut stmt = conn
        .prepare(
            "SELECT m.name, m.sha256, m.fingerprint, (SELECT count(*) FROM vectors v WHERE v.model = m.fingerprint)
             FROM models m ORDER BY m.name, m.fingerprint",
        )
        .map_err(|e| e.to_string())?;
    let models = stmt
        .query_map([], |r| {
            Ok(ModelStats {
                name: r.get(0)?,
                sha256: r.get(1)?,
                fingerprint: r.get(2)?,
                vectors: r.get::<_, i64>(3)? as u64,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| e.to_string())?;
    Ok(Stats {
        path: path.display().to_string(),
        bytes_on_disk: disk_size(path),
        files,
        vectors,
        models,
    })
}

/// What `neardup cache prune` removed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Pruned {
    pub files: u64,
    pub vectors: u64,
    pub models: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Drop file entries whose file is gone (or changed), models that are
/// neither `keep_models` nor a model file still on disk with its sha256,
/// and vectors no remaining file or model needs.
pub fn prune(path: &Path, keep_models: &[String]) -> Result<Pruned, String> {
    let mut conn = open_existing(path)?;
    let err = |e: rusqlite::Error| e.to_string();
    let bytes_before = disk_size(path);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let mut out = Pruned {
        bytes_before,
        ..Default::default()
    };
    {
        let rows: Vec<(Vec<u8>, i64, i64)> = tx
            .prepare("SELECT path, size, mtime_ns FROM files")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(err)?;
        let mut del = tx
            .prepare("DELETE FROM files WHERE path = ?1")
            .map_err(err)?;
        for (p, size, mtime) in rows {
            #[cfg(unix)]
            let pb =
                PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&p));
            #[cfg(not(unix))]
            let pb = PathBuf::from(String::from_utf8_lossy(&p).into_owned());
            let same = std::fs::metadata(&pb)
                .map(|m| m.len() as i64 == size && mtime_ns(&m) == mtime)
                .unwrap_or(false);
            if !same {
                del.execute(params![p]).map_err(err)?;
                out.files += 1;
            }
        }
        let models: Vec<(String, String, Option<Vec<u8>>)> = tx
            .prepare("SELECT fingerprint, sha256, path FROM models")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(err)?;
        for (fp, sha, mpath) in models {
            let on_disk = mpath
                .map(|p| String::from_utf8_lossy(&p).into_owned())
                .and_then(|p| std::fs::read(p).ok())
                .is_some_and(|bytes| sha256_hex(&bytes) == sha);
            if !keep_models.contains(&fp) && !on_disk {
                out.vectors += tx
                    .execute("DELETE FROM vectors WHERE model = ?1", params![fp])
                    .map_err(err)? as u64;
                tx.execute("DELETE FROM models WHERE fingerprint = ?1", params![fp])
                    .map_err(err)?;
                out.models += 1;
            }
        }
        out.vectors += tx
            .execute(
                "DELETE FROM vectors WHERE content NOT IN (SELECT content FROM files)",
                [],
            )
            .map_err(err)? as u64;
    }
    tx.commit().map_err(err)?;
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;");
    out.bytes_after = disk_size(path);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    fn entry(x: f32) -> Entry {
        Entry {
            width: 4,
            height: 3,
            format: "jpeg".into(),
            vector: vec![x, 0.5, -1.0],
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
        assert_eq!(c.close(), None);
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
