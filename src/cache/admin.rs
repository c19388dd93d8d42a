//! `neardup cache stats` and `neardup cache prune`.

use super::*;

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

pub(super) fn disk_size(path: &Path) -> u64 {
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

pub(super) fn open_existing(path: &Path) -> Result<Db, String> {
    if !path.exists() {
        return Err(format!("no cache at {}", path.display()));
    }
    match connect(path) {
        Ok(db) => Ok(db),
        Err(OpenError::Unusable { why: m, .. } | OpenError::Unavailable(m)) => {
            Err(format!("cache {}: {m}", path.display()))
        }
    }
}

/// Entries, size on disk and models of the cache at `path`.
pub fn stats(path: &Path) -> Result<Stats, String> {
    let conn = open_existing(path)?.conn;
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
    let db = open_existing(path)?;
    if db.read_only {
        return Err(format!(
            "cache {} is read-only: nothing pruned",
            path.display()
        ));
    }
    let mut conn = db.conn;
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
