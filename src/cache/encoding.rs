//! The rows of the cache as bytes: checksums of keys and values, vectors
//! as blobs, and the checks a vector row must pass before it is used.

use super::*;

/// The checksum of a row: BLAKE3 (first 16 bytes) of its table and of every
/// field of its key and value, each prefixed by its length.
pub(super) fn row_sum(table: &str, fields: &[&[u8]]) -> [u8; 16] {
    let mut h = blake3::Hasher::new_derive_key("neardup cache row, schema 2");
    h.update(table.as_bytes());
    for f in fields {
        h.update(&(f.len() as u64).to_le_bytes());
        h.update(f);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

pub(super) fn vector_sum(
    model: &str,
    content: &str,
    w: i64,
    h: i64,
    format: &str,
    blob: &[u8],
) -> [u8; 16] {
    row_sum(
        "vectors",
        &[
            model.as_bytes(),
            content.as_bytes(),
            &w.to_le_bytes(),
            &h.to_le_bytes(),
            format.as_bytes(),
            blob,
        ],
    )
}

pub(super) fn file_sum(path: &[u8], size: i64, mtime: i64, content: &str) -> [u8; 16] {
    row_sum(
        "files",
        &[
            path,
            &size.to_le_bytes(),
            &mtime.to_le_bytes(),
            content.as_bytes(),
        ],
    )
}

pub(super) fn fact_sum(kind: &str, key: &str, value: &[u8]) -> [u8; 16] {
    row_sum("facts", &[kind.as_bytes(), key.as_bytes(), value])
}

pub(super) fn path_bytes(p: &Path) -> Vec<u8> {
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

pub(super) fn vec_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn blob_to_vec(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A vector row checked: types, length, finite values, unit length and
/// checksum. `Err` says why it is not used.
pub(super) fn vector_row(
    fingerprint: &str,
    content: &str,
    dim: usize,
    r: &rusqlite::Row,
) -> rusqlite::Result<Result<Entry, String>> {
    let cols = (
        r.get_ref(0)?,
        r.get_ref(1)?,
        r.get_ref(2)?,
        r.get_ref(3)?,
        r.get_ref(4)?,
    );
    let (
        ValueRef::Integer(w),
        ValueRef::Integer(h),
        ValueRef::Text(format),
        ValueRef::Blob(blob),
        ValueRef::Blob(sum),
    ) = cols
    else {
        return Ok(Err("a column of the wrong type".into()));
    };
    let Ok(format) = std::str::from_utf8(format) else {
        return Ok(Err("a format that is not text".into()));
    };
    if blob.len() != dim * 4 {
        return Ok(Err(format!(
            "{} bytes where {dim} floats were expected",
            blob.len()
        )));
    }
    let (Ok(width), Ok(height)) = (u32::try_from(w), u32::try_from(h)) else {
        return Ok(Err(format!("a size of {w}x{h}")));
    };
    let vector = blob_to_vec(blob);
    if !vector.iter().all(|x| x.is_finite()) {
        return Ok(Err("a value that is not finite".into()));
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm != 0.0 && (norm - 1.0).abs() > NORM_TOLERANCE {
        return Ok(Err(format!("a length of {norm}, not 1")));
    }
    if sum != vector_sum(fingerprint, content, w, h, format, blob) {
        return Ok(Err("a checksum mismatch".into()));
    }
    // Only builds of neardup write these names; one this build does not
    // know (a newer build's format) is not used.
    let Some(format) = Format::from_name(format) else {
        return Ok(Err(format!("an unknown format {format:?}")));
    };
    Ok(Ok(Entry {
        width,
        height,
        format,
        vector,
    }))
}
