//! Output that cannot be forged or crash: file names are escaped in every
//! text printer (one line per file whatever the name holds), and a closed
//! stdout or stderr neither panics nor stops `apply --execute` half way.

mod common;
use common::*;
use image::ImageFormat;
use neardup::report::escape_name;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The write end of a pipe whose read end is already closed: every write
/// to it fails with EPIPE (a `| head` that has gone).
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// Run the binary with `stdout` and `stderr` as given (`None`: captured).
fn run_with(args: &[&str], stdout: Option<Stdio>, stderr: Option<Stdio>) -> (i32, String, String) {
    let mut c: Command = bin();
    c.args(args);
    if let Some(o) = stdout {
        c.stdout(o);
    }
    if let Some(e) = stderr {
        c.stderr(e);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a reader of the escaped text sees: the characters `escape_name`
/// must never let through.
fn raw_control(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            || matches!(
                c,
                '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{2028}' | '\u{2029}'
            )
    })
}

/// The reverse of `escape_name`, as its documentation states the rules:
/// `\\` is a backslash, `\n` `\r` `\t` `\xHH` `\u{H..}` are the escaped
/// characters, any other backslash is itself.
fn unescape(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] != '\\' || i + 1 == c.len() {
            out.push(c[i]);
            i += 1;
            continue;
        }
        match c[i + 1] {
            '\\' => {
                out.push('\\');
                i += 2;
            }
            'n' => {
                out.push('\n');
                i += 2;
            }
            'r' => {
                out.push('\r');
                i += 2;
            }
            't' => {
                out.push('\t');
                i += 2;
            }
            'x' => {
                let hex: String = c[i + 2..i + 4].iter().collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                i += 4;
            }
            'u' => {
                let end = i + c[i..].iter().position(|&x| x == '}').unwrap();
                let hex: String = c[i + 3..end].iter().collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                i = end + 1;
            }
            _ => {
                out.push('\\');
                i += 1;
            }
        }
    }
    out
}

#[test]
fn escape_name_shows_controls_as_escapes() {
    assert_eq!(escape_name("a\nb"), "a\\nb");
    assert_eq!(escape_name("a\rb\tc"), "a\\rb\\tc");
    assert_eq!(escape_name("\u{1b}[31mred"), "\\x1b[31mred");
    assert_eq!(
        escape_name("nul\0bel\u{7}del\u{7f}"),
        "nul\\x00bel\\x07del\\x7f"
    );
    assert_eq!(escape_name("c1\u{85}\u{9b}"), "c1\\u{85}\\u{9b}");
    assert_eq!(escape_name("photo\u{202e}gpj.exe"), "photo\\u{202e}gpj.exe");
    assert_eq!(
        escape_name("\u{202a}\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}\u{2028}\u{2029}"),
        "\\u{202a}\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{61c}\\u{2028}\\u{2029}"
    );
    // Other scripts, accents and emoji are printed as they are.
    assert_eq!(escape_name("été/日本/שלום/😀.jpg"), "été/日本/שלום/😀.jpg");
}

#[test]
fn escape_name_keeps_backslashes_unless_ambiguous() {
    // A Windows path reads as it is.
    assert_eq!(
        escape_name(r"C:\Users\me\IMG_1.jpg"),
        r"C:\Users\me\IMG_1.jpg"
    );
    assert!(matches!(escape_name(r"C:\Users\me"), Cow::Borrowed(_)));
    assert!(matches!(escape_name("plain.jpg"), Cow::Borrowed(_)));
    // A backslash that would read as an escape is doubled: the name
    // `a\nb` (backslash, n) is not the name with a newline.
    assert_eq!(escape_name(r"a\nb"), r"a\\nb");
    assert_ne!(escape_name(r"a\nb"), escape_name("a\nb"));
    assert_eq!(escape_name(r"\x1b"), r"\\x1b");
    assert_eq!(escape_name(r"\u{202e}"), r"\\u{202e}");
    assert_eq!(escape_name(r"a\\b"), r"a\\\b");
    assert_eq!(escape_name("a\\\n"), r"a\\\n");
    assert_eq!(escape_name("a\\\u{1b}"), r"a\\\x1b");
    assert_eq!(escape_name(r"end\"), r"end\");
}

#[test]
fn escape_name_reads_back_and_never_lets_a_control_through() {
    // Every string of up to 4 characters over an alphabet of the tricky
    // ones: the escaped text has no control, no newline, and reads back
    // to the name (so two names never print the same).
    let alphabet = [
        '\\', 'n', 'x', 'u', '{', '1', 'a', '\n', '\r', '\u{1b}', '\u{85}', '\u{202e}', '\t', 'é',
    ];
    let mut names = vec![String::new()];
    let mut last = vec![String::new()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for p in &last {
            for c in alphabet {
                next.push(format!("{p}{c}"));
            }
        }
        names.extend(next.iter().cloned());
        last = next;
    }
    assert!(names.len() > 38_000);
    for name in &names {
        let e = escape_name(name);
        assert_eq!(raw_control(&e), None, "{name:?} -> {e:?}");
        assert!(!e.contains('\n'), "{name:?} -> {e:?}");
        assert_eq!(unescape(&e), *name, "{name:?} -> {e:?}");
    }
}

/// Names that try to forge lines or move the terminal's cursor.
const FORGED_DIR: &str = "x\nkeep     root";
const EVIL: [&str; 5] = [
    "x\nkeep     root/IMPORTANT.jpg",
    "c\u{1b}[2K\u{1b}[1Ared.jpg",
    "photo\u{202e}gpj.exe.jpg",
    "tab\tcr\r.jpg",
    r"back\nslash.jpg",
];

/// A folder with one photo under six names, five of them evil, and a text
/// file whose name holds a newline and an ESC sequence.
fn evil_library(root: &Path) {
    let img = load(&album().join("day1/DSC_0045.JPG"));
    let img = image::imageops::resize(&img, 240, 160, image::imageops::FilterType::Triangle);
    save(&img, &root.join("a.jpg"), ImageFormat::Jpeg);
    std::fs::create_dir_all(root.join(FORGED_DIR)).unwrap();
    for name in EVIL {
        std::fs::copy(root.join("a.jpg"), root.join(name)).unwrap();
    }
    std::fs::write(
        root.join("notes\u{1b}]0;pwned\u{7}\nwarning: forged.txt"),
        b"not a photo",
    )
    .unwrap();
}

#[test]
fn names_are_escaped_one_line_per_file_in_scan_apply_and_undo() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    evil_library(&lib);
    let plan = tmp.path().join("plan.json");
    let (code, _, err) = run(&["scan", s(&lib), "-q", "-o", s(&plan)]);
    assert_eq!(code, 0, "{err}");
    let report = neardup::report::read_json(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(report.groups.len(), 1, "{report:?}");
    let g = &report.groups[0];
    assert_eq!(g.members.len(), 6);
    // JSON is unchanged: the names are there as they are.
    for name in EVIL {
        let p = lib.join(name);
        assert!(g.files.contains(&s(&p).to_string()), "{:?}", g.files);
    }

    // Scan's text report: one line per member, each name escaped.
    let (code, out, err) = run(&["scan", s(&lib)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(raw_control(&out), None, "{out:?}");
    assert_eq!(raw_control(&err), None, "{err:?}");
    // Group header, 6 members, keep, "distances:", the pairs, a blank line.
    assert_eq!(out.lines().count(), 10 + g.pairs.len(), "{out}");
    for m in &g.members {
        let e = escape_name(&m.path);
        let member_lines = out
            .lines()
            .filter(|l| l.starts_with(&format!("  {e} ")))
            .count();
        assert_eq!(member_lines, 1, "{e}\n{out}");
    }
    assert!(out.contains(r"x\nkeep     root/IMPORTANT.jpg"), "{out}");
    assert!(out.contains(r"c\x1b[2K\x1b[1Ared.jpg"), "{out}");
    assert!(out.contains(r"photo\u{202e}gpj.exe.jpg"), "{out}");
    assert!(out.contains(r"tab\tcr\r.jpg"), "{out}");
    assert!(out.contains(r"back\\nslash.jpg"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("keep")), "{out}");
    // The warning about the text file is one escaped line.
    let warn: Vec<&str> = err.lines().filter(|l| l.contains("notes")).collect();
    assert_eq!(warn.len(), 1, "{err}");
    assert!(
        warn[0].starts_with("warning: ")
            && warn[0].contains(r"notes\x1b]0;pwned\x07\nwarning: forged.txt"),
        "{err}"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("warning: forged")),
        "{err}"
    );

    // neardup report renders the same text.
    let (code, again, err) = run(&["report", s(&plan)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, out);

    // Apply's dry run: one line per member (the keeper and 5 moves).
    let to = tmp.path().join("dupes");
    let args = [s(&plan), "--action", "move", "--to", s(&to)];
    let (code, out, err) = run(&[&["apply"][..], &args[..]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(raw_control(&out), None, "{out:?}");
    assert_eq!(raw_control(&err), None, "{err:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("keep ")).count(), 1);
    assert_eq!(lines.iter().filter(|l| l.starts_with("move ")).count(), 5);
    for m in &g.members {
        let e = escape_name(&m.path);
        let n = lines
            .iter()
            .filter(|l| l.contains(&format!(" {e} ")) || l.ends_with(&format!(" {e}")))
            .count();
        assert_eq!(n, 1, "{e}\n{out}");
    }

    // For real, then undo: the moved names are escaped too, and restored.
    let before = snapshot(&lib);
    let journal = tmp.path().join("j.jsonl");
    let execute = ["--execute", "--journal", s(&journal)];
    let (code, out, err) = run(&[&["apply"][..], &args[..], &execute[..]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(raw_control(&out), None, "{out:?}");
    assert_eq!(out.lines().count(), 6, "{out}");
    // Five photos left the library (the keeper and the text file stay).
    assert_eq!(snapshot(&lib).len(), before.len() - 5);
    assert_eq!(snapshot(&to).len(), 5);
    let (code, out, err) = run(&["undo", s(&journal), "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(raw_control(&out), None, "{out:?}");
    assert_eq!(raw_control(&err), None, "{err:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("restored ")), "{out}");
    assert_eq!(snapshot(&lib), before, "undo did not restore everything");
}

/// Paths (relative to `root`) with their contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            out.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

/// How many photos the move test spreads over folders.
const MANY: usize = 40;

/// `MANY` byte copies of one small photo, `p00/img.jpg` .. , and two text
/// files (warnings on stderr while scanning).
fn many_library(root: &Path) {
    let img = load(&album().join("day2/phone/IMG_0002.JPG"));
    let img = image::imageops::resize(&img, 200, 150, image::imageops::FilterType::Triangle);
    save(&img, &root.join("p00/img.jpg"), ImageFormat::Jpeg);
    for i in 1..MANY {
        std::fs::create_dir_all(root.join(format!("p{i:02}"))).unwrap();
        std::fs::copy(
            root.join("p00/img.jpg"),
            root.join(format!("p{i:02}/img.jpg")),
        )
        .unwrap();
    }
    std::fs::write(root.join("a.txt"), b"text").unwrap();
    std::fs::write(root.join("z.txt"), b"text").unwrap();
}

fn no_panic(text: &str) {
    assert!(!text.contains("panicked"), "{text}");
    assert!(!text.contains("Broken pipe"), "{text}");
}

/// Where each member of the plan is: moved under `to` (true) or in place
/// (false). Panics if a file is in both places or in neither.
fn whereabouts(lib: &Path, to: &Path) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for i in 0..MANY {
        let rel = format!("p{i:02}/img.jpg");
        let here = lib.join(&rel).exists();
        let moved = to.join(&rel).exists();
        assert!(here != moved, "{rel}: in place {here}, moved {moved}");
        out.insert(rel, moved);
    }
    out
}

#[test]
fn closed_stdout_or_stderr_neither_panics_nor_stops_apply_half_way() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    many_library(&lib);
    let plan = tmp.path().join("plan.json");

    // Scan with stderr closed (warnings about the text files, the summary):
    // the report is complete.
    let (code, out, _) = run_with(
        &["scan", s(&lib), "--format", "json", "-o", s(&plan)],
        None,
        Some(closed_pipe()),
    );
    assert_eq!(code, 0);
    no_panic(&out);
    let report = neardup::report::read_json(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(report.groups.len(), 1);
    assert_eq!(report.groups[0].members.len(), MANY);
    assert_eq!(report.stats.files_skipped, 2);

    // Scan with stdout closed: quiet, exit 0, the work is done (summary).
    let (code, _, err) = run_with(&["scan", s(&lib)], Some(closed_pipe()), None);
    assert_eq!(code, 0, "{err}");
    no_panic(&err);
    assert!(err.contains(&format!("{} files", MANY + 2)), "{err}");
    assert!(!err.contains("error"), "{err}");
    // The same with both closed.
    let (code, _, _) = run_with(&["scan", s(&lib)], Some(closed_pipe()), Some(closed_pipe()));
    assert_eq!(code, 0);

    // A file in the middle of the plan changed since the scan: it is
    // skipped with a warning on stderr while the moves go on.
    let keeper = report.groups[0].keeper.clone().unwrap();
    let changed = lib.join("p20/img.jpg");
    assert_ne!(keeper, s(&changed));
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes.push(0);
    std::fs::write(&changed, bytes).unwrap();
    let before = snapshot(&lib);
    let moves = MANY - 2; // not the keeper, not the changed file

    // apply --execute with stderr closed: every move is done and
    // journalled, the skip is accounted for; undo restores.
    let to = tmp.path().join("dupes1");
    let journal = tmp.path().join("j1.jsonl");
    let args = |to: &Path, journal: &Path| {
        vec![
            "apply".to_string(),
            s(&plan).into(),
            "--action".into(),
            "move".into(),
            "--to".into(),
            s(to).into(),
            "--execute".into(),
            "--journal".into(),
            s(journal).into(),
        ]
    };
    let a1 = args(&to, &journal);
    let a1: Vec<&str> = a1.iter().map(String::as_str).collect();
    let (code, out, _) = run_with(&a1, None, Some(closed_pipe()));
    assert_eq!(code, 0, "{out}");
    no_panic(&out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("move ")).count(),
        moves,
        "{out}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("skip ")).count(),
        1,
        "{out}"
    );
    assert_eq!(lines.len(), MANY, "{out}");
    let place = whereabouts(&lib, &to);
    assert_eq!(place.values().filter(|&&m| m).count(), moves);
    assert!(!place["p20/img.jpg"]);
    let (code, _, err) = run(&["undo", s(&journal), "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("{moves} restored")), "{err}");
    assert_eq!(snapshot(&lib), before, "undo did not restore everything");

    // apply --execute with stdout closed: it is not stopped either; it says
    // on stderr how many lines were not shown. Undo with stdout closed too.
    let to = tmp.path().join("dupes2");
    let journal = tmp.path().join("j2.jsonl");
    let a2 = args(&to, &journal);
    let a2: Vec<&str> = a2.iter().map(String::as_str).collect();
    let (code, _, err) = run_with(&a2, Some(closed_pipe()), None);
    assert_eq!(code, 0, "{err}");
    no_panic(&err);
    assert!(err.contains(&format!("move {moves} files")), "{err}");
    assert!(
        err.contains(&format!(
            "standard output was closed: {MANY} lines not shown"
        )),
        "{err}"
    );
    let place = whereabouts(&lib, &to);
    assert_eq!(place.values().filter(|&&m| m).count(), moves);
    let (code, _, err) = run_with(
        &["undo", s(&journal), "--execute"],
        Some(closed_pipe()),
        None,
    );
    assert_eq!(code, 0, "{err}");
    no_panic(&err);
    assert!(err.contains(&format!("{moves} restored")), "{err}");
    assert_eq!(snapshot(&lib), before, "undo did not restore everything");

    // --json with stdout closed: the same, the summary is the lost line.
    let to = tmp.path().join("dupes3");
    let journal = tmp.path().join("j3.jsonl");
    let mut a3 = args(&to, &journal);
    a3.push("--json".into());
    let a3: Vec<&str> = a3.iter().map(String::as_str).collect();
    let (code, _, err) = run_with(&a3, Some(closed_pipe()), Some(closed_pipe()));
    assert_eq!(code, 0);
    let place = whereabouts(&lib, &to);
    assert_eq!(place.values().filter(|&&m| m).count(), moves);
    no_panic(&err);
    let (code, _, err) = run(&["undo", s(&journal), "--execute"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(snapshot(&lib), before, "undo did not restore everything");

    // A dry run with stdout closed stops quietly: exit 0, nothing changed,
    // no summary of a partial run.
    let dry: Vec<&str> = a1[..6].to_vec();
    let (code, _, err) = run_with(&dry, Some(closed_pipe()), None);
    assert_eq!(code, 0, "{err}");
    no_panic(&err);
    assert!(!err.contains("nothing was changed"), "{err}");
    assert_eq!(snapshot(&lib), before);
}

/// A pseudo-terminal: (master, slave). The child gets the slave as its
/// stderr, so it draws progress bars; dropping the master hangs the
/// terminal up, and every later write to it fails (EIO).
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // SAFETY: plain libc calls on a descriptor this function owns; the
    // name buffer is large enough and NUL-terminated by ptsname_r.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        let master_file = std::fs::File::from_raw_fd(master);
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 256];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_owned();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap();
        (master_file, slave)
    }
}

#[test]
fn progress_bars_survive_a_terminal_that_goes_away() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    many_library(&lib);
    let (mut master, slave) = pty();
    let child = bin()
        .args(["scan", s(&lib), "--no-cache", "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The first thing drawn on the terminal (a bar or a warning), then the
    // terminal goes away while the scan goes on drawing its bars.
    let mut first = [0u8; 4096];
    let n = master.read(&mut first).unwrap();
    assert!(n > 0);
    drop(master);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!(" · {MANY} photos · ")), "{text}");
}
