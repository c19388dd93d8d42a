//! Opening the database: connect (read-write, or read-only when the file or
//! its folder may not be written), wait for a busy lock, check its schema
//! and integrity, migrate it, and set a damaged one aside.

use super::*;

pub(super) fn damaged(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

pub(super) fn busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Run `f` again while another scan holds a lock that SQLite's busy handler
/// does not wait for (setting up the WAL, upgrading a read to a write...),
/// for up to [`BUSY_TIMEOUT`].
pub(super) fn retry<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match f() {
            Err(e) if busy(&e) && start.elapsed() < BUSY_TIMEOUT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            r => return r,
        }
    }
}

#[derive(Debug)]
pub(super) enum OpenError {
    /// The file is not a usable cache (damaged, unknown schema): set it
    /// aside, unless it is read-only.
    Unusable { why: String, read_only: bool },
    /// Could not use it now (locked for too long, folder not writable and
    /// no cache yet, I/O error...): run without cache, touch nothing.
    Unavailable(String),
}

pub(super) fn open_error(e: rusqlite::Error, read_only: bool) -> OpenError {
    if damaged(&e) {
        OpenError::Unusable {
            why: e.to_string(),
            read_only,
        }
    } else {
        OpenError::Unavailable(e.to_string())
    }
}

/// An open database.
pub(super) struct Db {
    pub(super) conn: Connection,
    pub(super) read_only: bool,
    /// One-line notes for the user (an old cache migrated...).
    pub(super) notes: Vec<String>,
}

/// True when this process may write `p` (a file or a folder): its mode has a
/// write bit (root ignores modes, so they are read too) and `access(W_OK)`
/// agrees (read-only mounts, immutable files, other owners).
#[cfg(unix)]
pub(super) fn may_write(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    if meta.permissions().mode() & 0o222 == 0 {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(not(unix))]
pub(super) fn may_write(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| !m.permissions().readonly())
}

pub(super) fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The version in `meta`, `None` for an empty database. Reading it reads
/// the header: garbage fails here.
pub(super) fn schema_version(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if tables == 0 {
        let others: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        return Ok((others > 0).then(|| "none".to_string()));
    }
    let v = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| {
                Ok(match r.get_ref(0)? {
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    ValueRef::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
            },
        )
        .optional()?;
    Ok(Some(v.unwrap_or_else(|| "none".to_string())))
}

/// What [`setup`] found.
pub(super) enum Schema {
    Current,
    /// An older cache whose rows were dropped.
    Migrated(String),
    Unknown(String),
}

/// WAL mode, then the tables, in one immediate transaction (so that two
/// scans creating or migrating the cache at once do it one after the other).
pub(super) fn setup(conn: &mut Connection) -> rusqlite::Result<Schema> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let schema = match schema_version(&tx)?.as_deref() {
        None => {
            tx.execute_batch(&format!(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 {DATA_TABLES}
                 INSERT INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
            ))?;
            Schema::Current
        }
        Some(v) if v == SCHEMA_VERSION.to_string() => {
            tx.execute_batch(DATA_TABLES)?;
            Schema::Current
        }
        Some("1") => {
            tx.execute_batch(&format!(
                "DROP TABLE IF EXISTS vectors; DROP TABLE IF EXISTS files;
                 DROP TABLE IF EXISTS facts; DROP TABLE IF EXISTS models;
                 {DATA_TABLES}
                 UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version';"
            ))?;
            Schema::Migrated("1".into())
        }
        Some(v) => return Ok(Schema::Unknown(v.to_string())),
    };
    tx.commit()?;
    Ok(schema)
}

/// A small cache is checked whole; a large one is checked as it is read
/// (SQLite reports a damaged page it reads, and every row has a checksum).
pub(super) fn quick_check(
    conn: &Connection,
    path: &Path,
    read_only: bool,
) -> Result<(), OpenError> {
    let small = std::fs::metadata(path)
        .map(|m| m.len() < 64 << 20)
        .unwrap_or(true);
    if !small {
        return Ok(());
    }
    let check: String = retry(|| conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)))
        .map_err(|e| open_error(e, read_only))?;
    if check != "ok" {
        return Err(OpenError::Unusable {
            why: format!("integrity check failed: {check}"),
            read_only,
        });
    }
    Ok(())
}

pub(super) fn unknown_schema(v: &str, read_only: bool) -> OpenError {
    OpenError::Unusable {
        why: format!("schema version {v} is not the {SCHEMA_VERSION} this build reads"),
        read_only,
    }
}

pub(super) fn connect(path: &Path) -> Result<Db, OpenError> {
    let dir = folder_of(path);
    let exists = std::fs::metadata(path).is_ok();
    if !exists {
        std::fs::create_dir_all(&dir)
            .map_err(|e| OpenError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        if !may_write(&dir) {
            return Err(OpenError::Unavailable(format!(
                "there is no cache yet and {} is read-only",
                dir.display()
            )));
        }
    } else if !may_write(path) || !may_write(&dir) {
        return connect_read_only(path);
    }
    let mut conn = Connection::open(path).map_err(|e| open_error(e, false))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_error(e, false))?;
    let notes = match retry(|| setup(&mut conn)) {
        Ok(Schema::Current) => Vec::new(),
        Ok(Schema::Migrated(v)) => vec![format!(
            "cache {} was written by an older neardup (schema {v}, rows without checksums): \
             its entries were dropped and are computed again",
            path.display()
        )],
        Ok(Schema::Unknown(v)) => return Err(unknown_schema(&v, false)),
        Err(e) if exists && e.sqlite_error_code() == Some(ErrorCode::ReadOnly) => {
            drop(conn);
            return connect_read_only(path);
        }
        Err(e) => return Err(open_error(e, false)),
    };
    quick_check(&conn, path, false)?;
    Ok(Db {
        conn,
        read_only: false,
        notes,
    })
}

/// One more connection that only reads a cache [`connect`] opened for
/// writing (WAL mode, schema checked); `None` if it cannot be opened, and
/// the scan reads through the first connection alone.
pub(super) fn open_reader(path: &Path) -> Option<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).ok()?;
    conn.busy_timeout(BUSY_TIMEOUT).ok()?;
    Some(conn)
}

/// `file:` URI of `path` that reads it as it is, without locks or WAL.
pub(super) fn immutable_uri(path: &Path) -> String {
    let mut s = String::from("file:");
    for b in path_bytes(path) {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str("?immutable=1");
    s
}

/// Open a cache that must not be written.
pub(super) fn connect_read_only(path: &Path) -> Result<Db, OpenError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open = |name: &str, flags: OpenFlags| -> rusqlite::Result<(Connection, Option<String>)> {
        let conn = Connection::open_with_flags(name, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let v = retry(|| schema_version(&conn))?;
        Ok((conn, v))
    };
    // Without a write-ahead log, everything is in the file: read it as it
    // is, without locks (which would leave -wal and -shm files behind).
    // With one, SQLite reads the log too (through its existing -shm).
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let plain = (path.to_string_lossy().into_owned(), flags);
    let immutable = (immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI);
    let (first, then) = if std::fs::symlink_metadata(PathBuf::from(wal)).is_ok() {
        (plain, immutable)
    } else {
        (immutable, plain)
    };
    let (conn, version) = match open(&first.0, first.1) {
        Ok(x) => x,
        Err(e) if damaged(&e) => return Err(open_error(e, true)),
        Err(_) => open(&then.0, then.1).map_err(|e| open_error(e, true))?,
    };
    match version.as_deref() {
        Some(v) if v == SCHEMA_VERSION.to_string() => {}
        None => {
            return Err(OpenError::Unavailable(
                "it is read-only and empty".to_string(),
            ))
        }
        Some("1") => {
            return Err(OpenError::Unavailable(
                "it is read-only and was written by an older neardup (schema 1, rows \
                 without checksums)"
                    .to_string(),
            ))
        }
        Some(v) => return Err(unknown_schema(v, true)),
    }
    quick_check(&conn, path, true)?;
    Ok(Db {
        conn,
        read_only: true,
        notes: Vec::new(),
    })
}

/// Rename a broken cache out of the way (and remove its WAL files).
pub(super) fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut n = 0;
    let aside = loop {
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".broken-{stamp}"));
        if n > 0 {
            aside.push(format!("-{n}"));
        }
        let aside = PathBuf::from(aside);
        if std::fs::symlink_metadata(&aside).is_err() {
            break aside;
        }
        n += 1;
    };
    std::fs::rename(path, &aside)?;
    for ext in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    Ok(aside)
}

/// Open (or create) a database, setting aside one that is damaged.
/// Returns `None` (after a warning) when no cache can be used at all.
pub(super) fn open_db(path: &Path, progress: &dyn Progress) -> Option<Db> {
    let without = |m: &str| {
        progress.warn(&format!(
            "cache {}: {m}; scanning without cache",
            path.display()
        ));
    };
    match connect(path) {
        Ok(db) => Some(db),
        Err(OpenError::Unavailable(m)) => {
            without(&m);
            None
        }
        Err(OpenError::Unusable {
            why,
            read_only: true,
        }) => {
            progress.warn(&format!(
                "cache {} is unusable ({why}); it is read-only, so it was left in place; \
                 scanning without cache",
                path.display()
            ));
            None
        }
        Err(OpenError::Unusable { why, .. }) => match set_aside(path) {
            Ok(aside) => {
                progress.warn(&format!(
                    "cache {} is unusable ({why}); moved to {} and rebuilt",
                    path.display(),
                    aside.display()
                ));
                match connect(path) {
                    Ok(db) => Some(db),
                    Err(OpenError::Unusable { why: m, .. } | OpenError::Unavailable(m)) => {
                        without(&m);
                        None
                    }
                }
            }
            Err(e) => {
                progress.warn(&format!(
                    "cache {} is unusable ({why}) and could not be moved aside ({e}): \
                     left in place; scanning without cache",
                    path.display()
                ));
                None
            }
        },
    }
}
