//! The writer: one thread that commits the rows sent to it in batched
//! transactions (every [`BATCH_ROWS`] rows or every second).

use super::*;

pub(super) enum Write {
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
    /// A row that failed its checks.
    DropFile {
        path: Vec<u8>,
    },
    DropVector {
        content: String,
    },
    DropFact {
        kind: String,
        key: String,
    },
}

pub(super) fn write_loop(
    mut conn: Connection,
    fingerprint: &str,
    rx: mpsc::Receiver<Write>,
) -> rusqlite::Result<()> {
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
            retry(|| commit(&mut conn, fingerprint, &pending))?;
            pending.clear();
        }
        if closed {
            return Ok(());
        }
    }
}

pub(super) fn commit(
    conn: &mut Connection,
    fingerprint: &str,
    rows: &[Write],
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut file = tx.prepare_cached(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, content, sum) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut vector = tx.prepare_cached(
            "INSERT OR REPLACE INTO vectors (model, content, width, height, format, vector, sum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut fact = tx.prepare_cached(
            "INSERT OR REPLACE INTO facts (kind, key, value, sum) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut dim = None;
        for w in rows {
            match w {
                Write::Fact { kind, key, value } => {
                    let sum = fact_sum(kind, key, value);
                    fact.execute(params![kind, key, value, &sum[..]])?;
                }
                Write::File {
                    path,
                    size,
                    mtime,
                    content,
                } => {
                    let size = *size as i64;
                    let sum = file_sum(path, size, *mtime, content);
                    file.execute(params![path, size, mtime, content, &sum[..]])?;
                }
                Write::Vector { content, entry } => {
                    let (w, h) = (entry.width as i64, entry.height as i64);
                    let blob = vec_to_blob(&entry.vector);
                    let sum = vector_sum(fingerprint, content, w, h, entry.format.name(), &blob);
                    vector.execute(params![
                        fingerprint,
                        content,
                        w,
                        h,
                        entry.format.name(),
                        blob,
                        &sum[..]
                    ])?;
                    dim = Some(entry.vector.len() as i64);
                }
                Write::DropFile { path } => {
                    tx.execute("DELETE FROM files WHERE path = ?1", params![path])?;
                }
                Write::DropVector { content } => {
                    tx.execute(
                        "DELETE FROM vectors WHERE model = ?1 AND content = ?2",
                        params![fingerprint, content],
                    )?;
                }
                Write::DropFact { kind, key } => {
                    tx.execute(
                        "DELETE FROM facts WHERE kind = ?1 AND key = ?2",
                        params![kind, key],
                    )?;
                }
            }
        }
        if let Some(d) = dim {
            tx.execute(
                "UPDATE models SET dim = ?2 WHERE fingerprint = ?1 AND dim IS NOT ?2",
                params![fingerprint, d],
            )?;
        }
    }
    tx.commit()
}
