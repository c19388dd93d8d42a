//! `neardup report`, and the report writer that scan shares.

use super::args::{Format, ReportArgs};
use super::exit::ExitCode;
use super::out::emit;
use anyhow::Context;
use neardup::report::{self, html, thumbs};
use std::path::Path;

/// Write the report in `format` to `output` or standard output.
pub fn write_output(
    report: &report::Report,
    thumbnails: &thumbs::Thumbnails,
    format: Format,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    match format {
        Format::Text => report::write_text(report, &mut buf)?,
        Format::Json => report::write_json(report, &mut buf)?,
        Format::Html => {
            let opts = html::HtmlOptions {
                base: std::env::current_dir().ok(),
            };
            buf = html::render(report, thumbnails, &opts).into_bytes();
        }
    }
    match output {
        Some(path) => std::fs::write(path, &buf)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => emit(&buf)?,
    }
    Ok(())
}

/// `neardup report`: render an existing JSON report.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let report = report::read_plan(&args.report)?;
    let format = args
        .format
        .or_else(|| Format::from_output(args.output.as_deref()))
        .unwrap_or(Format::Text);
    let thumbnails = if format == Format::Html {
        let t = thumbs::from_files(&report, Default::default());
        for (path, t) in &t {
            if let Err(why) = t {
                eprintln!("warning: {path}: no thumbnail: {why}");
            }
        }
        t
    } else {
        thumbs::Thumbnails::new()
    };
    write_output(&report, &thumbnails, format, args.output.as_deref())?;
    Ok(ExitCode::Success)
}
