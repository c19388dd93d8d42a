//! `neardup formats`: what this build reads.

use super::args::FormatsArgs;
use super::exit::ExitCode;
use super::out::emit;

/// `neardup formats`: what this build reads, one format a line.
pub fn run(args: &FormatsArgs) -> anyhow::Result<ExitCode> {
    let all = neardup::formats::catalogue();
    let mut out = String::new();
    if args.json {
        out = serde_json::to_string_pretty(&all).expect("plain data") + "\n";
    } else {
        for f in &all {
            let ext = if f.extensions.is_empty() {
                "(any name)".to_string()
            } else {
                f.extensions
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let yes = if f.readable { "yes" } else { "no " };
            let note = if f.note.is_empty() {
                String::new()
            } else {
                format!(": {}", f.note)
            };
            out += &format!("{yes}  {:<6} {:<22} {ext}{note}\n", f.name, f.description);
        }
        out += "Files are recognised by their bytes, not their names. RAW files are read \
                through their largest embedded JPEG preview.\n";
    }
    emit(out.as_bytes())?;
    Ok(ExitCode::Success)
}
