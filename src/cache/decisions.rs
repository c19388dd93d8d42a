//! The `decisions` table: the user's decisions ([`crate::decisions`]),
//! kept in the cache file beside the vectors. Unlike the rest of the cache
//! they cannot be computed again, so every change is its own committed
//! transaction, and a row that fails its checksum is reported, never
//! dropped.

use super::*;
use crate::decisions::{normalise, DecidedPhoto, Decision, DecisionKind};

fn decision_sum(kind: &str, made: &str, photos: &str) -> [u8; 16] {
    row_sum(
        "decisions",
        &[kind.as_bytes(), made.as_bytes(), photos.as_bytes()],
    )
}

fn kind_of(name: &str) -> Option<DecisionKind> {
    match name {
        "not-duplicates" => Some(DecisionKind::NotDuplicates),
        "keep-all" => Some(DecisionKind::KeepAll),
        _ => None,
    }
}

/// Every decision whose row is sound, by id; and a warning for each row
/// that is not (it is left in place).
pub(super) fn read(conn: &Connection) -> rusqlite::Result<(Vec<Decision>, Vec<String>)> {
    // A read-only cache of an older build may not have the table.
    let table: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'decisions'",
        [],
        |r| r.get(0),
    )?;
    if table == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut stmt =
        conn.prepare_cached("SELECT id, kind, made, photos, sum FROM decisions ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Vec<u8>>(4)?,
        ))
    })?;
    let mut decisions = Vec::new();
    let mut bad = Vec::new();
    for row in rows {
        let (id, kind, made, photos, sum) = row?;
        let parsed = (sum == decision_sum(&kind, &made, &photos))
            .then(|| kind_of(&kind))
            .flatten()
            .zip(serde_json::from_str::<Vec<DecidedPhoto>>(&photos).ok());
        match parsed {
            Some((kind, photos)) => decisions.push(Decision {
                id: id as u64,
                kind,
                made,
                photos,
            }),
            None => bad.push(format!(
                "decision {id} in the cache fails its checks and is not honoured"
            )),
        }
    }
    Ok((decisions, bad))
}

impl Cache {
    /// The decisions stored in this cache (none for a disabled cache). A
    /// damaged row gives a warning through `progress`.
    pub fn decisions(&self, progress: &dyn Progress) -> Vec<Decision> {
        let (decisions, bad) = self.with_reader(|c| read(c).map(Some)).unwrap_or_default();
        for b in bad {
            progress.warn(&b);
        }
        decisions
    }
}

/// What [`add`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Added {
    pub decision: Decision,
    /// The same decision (kind and contents) was already stored.
    pub existed: bool,
}

fn open_for_writing(path: &Path) -> Result<Connection, String> {
    let db = match connect(path) {
        Ok(db) => db,
        Err(OpenError::Unusable { why: m, .. } | OpenError::Unavailable(m)) => {
            return Err(format!("cache {}: {m}", path.display()))
        }
    };
    if db.read_only {
        return Err(format!(
            "cache {} is read-only: no decision stored",
            path.display()
        ));
    }
    Ok(db.conn)
}

/// Store a decision about `photos` (at least two different contents) in
/// the cache at `path`, creating the cache if there is none. Storing the
/// same decision again changes nothing.
pub fn add(path: &Path, kind: DecisionKind, photos: Vec<DecidedPhoto>) -> Result<Added, String> {
    let photos = normalise(photos)
        .ok_or("a decision needs at least two different photos (these have the same content)")?;
    let mut conn = open_for_writing(path)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let (existing, _) = read(&tx).map_err(|e| e.to_string())?;
    let contents = |p: &[DecidedPhoto]| p.iter().map(|p| p.content.clone()).collect::<Vec<_>>();
    if let Some(d) = existing
        .into_iter()
        .find(|d| d.kind == kind && contents(&d.photos) == contents(&photos))
    {
        return Ok(Added {
            decision: d,
            existed: true,
        });
    }
    let made = crate::units::utc_timestamp(now_ns());
    let json = serde_json::to_string(&photos).map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO decisions (kind, made, photos, sum) VALUES (?1, ?2, ?3, ?4)",
        params![
            kind.name(),
            made,
            json,
            decision_sum(kind.name(), &made, &json).to_vec()
        ],
    )
    .map_err(|e| e.to_string())?;
    let id = tx.last_insert_rowid() as u64;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(Added {
        decision: Decision {
            id,
            kind,
            made,
            photos,
        },
        existed: false,
    })
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The decisions stored in the cache at `path` (none when there is no
/// cache), and a warning for each damaged row.
pub fn list(path: &Path) -> Result<(Vec<Decision>, Vec<String>), String> {
    if !path.exists() {
        return Ok((Vec::new(), Vec::new()));
    }
    let db = match connect(path) {
        Ok(db) => db,
        Err(OpenError::Unusable { why: m, .. } | OpenError::Unavailable(m)) => {
            return Err(format!("cache {}: {m}", path.display()))
        }
    };
    read(&db.conn).map_err(|e| e.to_string())
}

/// Remove the decisions with these ids (all of them with `None`); returns
/// the ids removed, and the ids asked for that were not there (when there
/// is one, nothing is removed).
pub fn forget(path: &Path, ids: Option<&[u64]>) -> Result<(Vec<u64>, Vec<u64>), String> {
    if !path.exists() {
        return Ok((Vec::new(), ids.map(<[u64]>::to_vec).unwrap_or_default()));
    }
    let mut conn = open_for_writing(path)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let stored: Vec<u64> = {
        let mut stmt = tx
            .prepare("SELECT id FROM decisions ORDER BY id")
            .map_err(|e| e.to_string())?;
        let ids = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| e.to_string())?;
        ids.into_iter().map(|i| i as u64).collect()
    };
    let wanted: Vec<u64> = ids.map_or_else(|| stored.clone(), <[u64]>::to_vec);
    let (removed, missing): (Vec<u64>, Vec<u64>) =
        wanted.into_iter().partition(|i| stored.contains(i));
    if !missing.is_empty() {
        // All or nothing: a mistyped number forgets nothing.
        return Ok((Vec::new(), missing));
    }
    for id in &removed {
        tx.execute("DELETE FROM decisions WHERE id = ?1", params![*id as i64])
            .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok((removed, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(content: &str) -> DecidedPhoto {
        DecidedPhoto {
            content: content.into(),
            path: format!("/photos/{content}.jpg"),
        }
    }

    #[test]
    fn decisions_are_stored_listed_found_again_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        assert_eq!(list(&path).unwrap().0, []);
        let a = add(
            &path,
            DecisionKind::NotDuplicates,
            vec![photo("2:b"), photo("1:a")],
        )
        .unwrap();
        assert!(!a.existed);
        let again = add(
            &path,
            DecisionKind::NotDuplicates,
            vec![photo("1:a"), photo("2:b")],
        )
        .unwrap();
        assert!(again.existed);
        assert_eq!(again.decision.id, a.decision.id);
        let b = add(
            &path,
            DecisionKind::KeepAll,
            vec![photo("1:a"), photo("2:b")],
        )
        .unwrap();
        assert!(!b.existed);
        let (all, bad) = list(&path).unwrap();
        assert!(bad.is_empty());
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].photos[0].content, "1:a");
        assert_eq!(all[1].kind, DecisionKind::KeepAll);
        let (removed, missing) = forget(&path, Some(&[a.decision.id, 99])).unwrap();
        assert_eq!((removed, missing), (vec![], vec![99]));
        assert_eq!(list(&path).unwrap().0.len(), 2);
        let (removed, missing) = forget(&path, Some(&[a.decision.id])).unwrap();
        assert_eq!((removed, missing), (vec![a.decision.id], vec![]));
        assert_eq!(list(&path).unwrap().0, std::slice::from_ref(&b.decision));
        assert_eq!(forget(&path, None).unwrap().0, [b.decision.id]);
        assert!(list(&path).unwrap().0.is_empty());
    }

    #[test]
    fn one_photo_twice_is_no_decision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        assert!(add(
            &path,
            DecisionKind::KeepAll,
            vec![photo("1:a"), photo("1:a")]
        )
        .is_err());
    }

    #[test]
    fn a_damaged_decision_is_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        add(
            &path,
            DecisionKind::KeepAll,
            vec![photo("1:a"), photo("2:b")],
        )
        .unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE decisions SET kind = 'not-duplicates'", [])
            .unwrap();
        drop(conn);
        let (all, bad) = list(&path).unwrap();
        assert!(all.is_empty());
        assert_eq!(bad.len(), 1, "{bad:?}");
        // Still there: a damaged decision is not the cache's to drop.
        assert_eq!(forget(&path, None).unwrap().0.len(), 1);
    }
}
