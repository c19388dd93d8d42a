//! The report as text for people, and the escaping of names on a terminal.

use super::Report;
use crate::units::human_bytes;
use std::io::Write;

/// Whether `c` is printed as an escape by [`escape_name`].
fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(
            c,
            '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{200e}' | '\u{200f}' | '\u{061c}' // bidi marks
                | '\u{2028}' | '\u{2029}' // line and paragraph separators
        )
}

/// A file name (or a path, or a message naming one) made safe to print on
/// a terminal as one line of text: a name cannot start a new line, move the
/// cursor, change colours or reorder the text around it.
///
/// - `\n`, `\r`, `\t` are printed as `\n`, `\r`, `\t`;
/// - the other C0 controls and DEL as `\x01` .. `\x1f`, `\x7f`;
/// - the C1 controls as `\u{80}` .. `\u{9f}`;
/// - the bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E,
///   U+200F, U+061C) and the line and paragraph separators (U+2028, U+2029)
///   as `\u{202e}` and so on.
///
/// A backslash stays one backslash (`C:\Users\me` reads as it is), except
/// where it would read as the start of an escape: before `n`, `r`, `t`,
/// `x`, `u`, another backslash or an escaped character it is doubled.
/// So the output reads back without ambiguity: `\\` is one backslash,
/// `\n` `\r` `\t` `\xHH` `\u{H..}` are the escaped characters, and any
/// other backslash is itself. Everything else (accents, emoji, other
/// scripts) is printed as it is. The JSON report is not escaped this way:
/// JSON has its own escapes.
pub fn escape_name(s: &str) -> std::borrow::Cow<'_, str> {
    let ambiguous = |next: Option<char>| {
        next.is_some_and(|n| matches!(n, '\\' | 'n' | 'r' | 't' | 'x' | 'u') || needs_escape(n))
    };
    let mut chars = s.chars().peekable();
    let clean = {
        let mut it = s.chars().peekable();
        let mut ok = true;
        while let Some(c) = it.next() {
            if needs_escape(c) || (c == '\\' && ambiguous(it.peek().copied())) {
                ok = false;
                break;
            }
        }
        ok
    };
    if clean {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => {
                out.push('\\');
                if ambiguous(chars.peek().copied()) {
                    out.push('\\');
                }
            }
            c if needs_escape(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The groups as text for people. Paths and reasons are printed through
/// [`escape_name`]: one line per file whatever its name holds.
pub fn write_text(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    if report.groups.is_empty() {
        writeln!(out, "No near-duplicates found.")?;
        return Ok(());
    }
    for g in &report.groups {
        writeln!(
            out,
            "Group {} · {} photos · {}",
            g.id,
            g.members.len(),
            g.label.as_str()
        )?;
        let paths: Vec<_> = g.members.iter().map(|m| escape_name(&m.path)).collect();
        let wpath = paths.iter().map(|p| p.chars().count()).max().unwrap_or(0);
        for (m, path) in g.members.iter().zip(&paths) {
            let dims = format!("{}×{}", m.width, m.height);
            writeln!(
                out,
                "  {:<wpath$}  {:>9}  {:>11}  {}{}",
                path,
                human_bytes(m.bytes),
                dims,
                escape_name(&m.format),
                if m.reference { "  (reference)" } else { "" }
            )?;
        }
        if let Some(k) = &g.keeper {
            let k = escape_name(k);
            match &g.keeper_reason {
                Some(why) => writeln!(out, "  keep: {k} ({})", escape_name(why))?,
                None => writeln!(out, "  keep: {k}")?,
            }
        }
        writeln!(out, "  distances:")?;
        for p in &g.pairs {
            let mut why = match p.inliers {
                Some(k) => format!("{} ({k} inliers)", p.label.as_str()),
                None => p.label.as_str().to_string(),
            };
            if p.mirrored {
                why.push_str(", mirrored");
            }
            writeln!(
                out,
                "    {:.4}  {:<24}  {}  ~  {}",
                p.distance,
                why,
                escape_name(&p.a),
                escape_name(&p.b)
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn text_lists_members_and_distances() {
        let mut buf = Vec::new();
        write_text(&sample(), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with("Group 1 · 2 photos · edited\n"), "{text}");
        assert!(
            text.contains("album/a.jpg") && text.contains("2.4 MB") && text.contains("4000×3000"),
            "{text}"
        );
        assert!(
            text.contains("0.0123  edited                    album/a.jpg  ~  album/b.png"),
            "{text}"
        );
        assert!(
            text.contains("  keep: album/a.jpg (more pixels (4000×3000 vs 400×300))\n"),
            "{text}"
        );
        let mut empty = sample();
        empty.groups.clear();
        let mut buf = Vec::new();
        write_text(&empty, &mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "No near-duplicates found.\n"
        );
    }
}
