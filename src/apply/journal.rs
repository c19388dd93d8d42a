//! The undo journal: JSON lines, each flushed and fsynced.

use super::fs::{parent, sync_dir};
use super::lock;
use super::plan::normalize;
use super::Action;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The journal format's version (first line: `{"neardup_journal": 1, ..}`).
pub const JOURNAL_VERSION: u32 = 1;

/// The largest journal undo reads (a regular file, never a FIFO or device).
pub const JOURNAL_CAP: u64 = 4 << 30;

/// The state a journal line records for its change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Written before the change.
    #[default]
    Begin,
    Done,
    /// Nothing was changed.
    Failed,
    /// Written by undo.
    Undone,
}

/// One journal line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub state: EntryState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Action>,
    /// The member acted on (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Where it was moved (move; the links' backup of a member that is not
    /// identical to the keeper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<PathBuf>,
    /// The keeper (links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeper: Option<PathBuf>,
    /// The temporary name a link is made under before it replaces the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmp: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Seconds since the epoch when the change began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The journal's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub neardup_journal: u32,
    pub tool_version: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<PathBuf>,
}

/// An append-only JSON-lines file; each line is flushed and fsynced.
pub(super) struct Journal {
    pub(super) file: File,
}

impl Journal {
    pub(super) fn create(path: &Path) -> Result<Journal> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                Error::Plan(format!(
                    "cannot create the journal {}: {e}{}",
                    path.display(),
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        " (an existing journal is never overwritten: give another --journal)"
                    } else {
                        ""
                    }
                ))
            })?;
        sync_dir(parent(&normalize(path)));
        // Held for the whole run: an undo of this journal waits for it.
        lock::wait_for(&file, path, &mut |_| {})
            .map_err(|e| Error::Plan(format!("cannot lock the journal {}: {e}", path.display())))?;
        Ok(Journal { file })
    }
    pub(super) fn append(path: &Path) -> io::Result<Journal> {
        let file = fs::OpenOptions::new().append(true).open(path)?;
        Ok(Journal { file })
    }
    pub(super) fn write<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(v).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()?;
        self.file.sync_data()
    }
}

pub(super) fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Read a journal: its header and entries.
pub(super) fn read_journal(path: &Path) -> Result<(Header, Vec<Entry>, bool)> {
    let text = crate::open::read_text_capped(path, JOURNAL_CAP)
        .map_err(|e| Error::Plan(format!("cannot read the journal {}: {e}", path.display())))?;
    let mut lines = text.split('\n').filter(|l| !l.trim().is_empty()).peekable();
    let head = lines
        .next()
        .ok_or_else(|| Error::Plan(format!("{} is empty", path.display())))?;
    let header: Header = serde_json::from_str(head).map_err(|e| {
        Error::Plan(format!(
            "{} is not a neardup journal (first line: {e})",
            path.display()
        ))
    })?;
    if header.neardup_journal != JOURNAL_VERSION {
        return Err(Error::Plan(format!(
            "{} is a journal of version {}; this neardup reads version {JOURNAL_VERSION}",
            path.display(),
            header.neardup_journal
        )));
    }
    let mut entries = Vec::new();
    let mut torn = false;
    let complete = text.ends_with('\n');
    let mut k = 1;
    while let Some(line) = lines.next() {
        k += 1;
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => entries.push(e),
            Err(_) if lines.peek().is_none() && !complete => torn = true,
            Err(e) => {
                return Err(Error::Plan(format!(
                    "{} line {k} is not a journal entry: {e}",
                    path.display()
                )))
            }
        }
    }
    Ok((header, entries, torn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_journal_line_is_ignored_but_a_torn_middle_is_not() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j.jsonl");
        let head = r#"{"neardup_journal":1,"tool_version":"0.1.0","action":"delete"}"#;
        let entry =
            r#"{"seq":1,"state":"begin","op":"delete","path":"/nowhere/x.jpg","content":"1:00"}"#;
        fs::write(&p, format!("{head}\n{entry}\n{{\"seq\":1,\"sta")).unwrap();
        let (_, entries, torn) = read_journal(&p).unwrap();
        assert!(torn);
        assert_eq!(entries.len(), 1);
        fs::write(&p, format!("{head}\n{{\"seq\":1,\"sta\n{entry}\n")).unwrap();
        assert!(read_journal(&p).is_err());
        fs::write(
            &p,
            "{\"neardup_journal\":2,\"tool_version\":\"9\",\"action\":\"move\"}\n",
        )
        .unwrap();
        assert!(read_journal(&p)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
        fs::write(&p, "not json\n").unwrap();
        assert!(read_journal(&p)
            .unwrap_err()
            .to_string()
            .contains("not a neardup journal"));
    }
}
