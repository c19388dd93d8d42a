//! `neardup decide not-duplicates|keep-all|import|list|forget`: the user's
//! decisions, stored in the cache by content (src/decisions.rs).

use super::args::{CacheArgs, DecideCommand, DecideForgetArgs, DecideImportArgs, DecidePhotosArgs};
use super::exit::{usage, ExitCode};
use super::out::emit;
use neardup::cache::decisions::{self as store, Added};
use neardup::decisions::{DecidedPhoto, Decision, DecisionKind};
use neardup::report::{self, Report};
use std::path::{Path, PathBuf};

/// Every failure but a closed or full standard output is a usage error (2):
/// a photo that cannot be read, a file that holds no decisions, a cache
/// that cannot be opened. Nothing is stored then.
pub fn run(cmd: &DecideCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DecideCommand::NotDuplicates(args) => decide(args, DecisionKind::NotDuplicates)?,
        DecideCommand::KeepAll(args) => decide(args, DecisionKind::KeepAll)?,
        DecideCommand::Import(args) => import(args)?,
        DecideCommand::List(args) => list(args)?,
        DecideCommand::Forget(args) => forget(args)?,
    }
    Ok(ExitCode::Success)
}

fn cache_path(args: &CacheArgs) -> anyhow::Result<PathBuf> {
    args.cache
        .clone()
        .or_else(neardup::cache::default_path)
        .ok_or_else(|| usage("no cache folder on this platform: give --cache PATH"))
}

/// A photo as a decision remembers it: its content, and its absolute path.
fn decided_photo(path: &Path) -> anyhow::Result<DecidedPhoto> {
    let bytes = std::fs::read(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(DecidedPhoto {
        content: neardup::cache::content_key(&bytes),
        path: shown.to_string_lossy().into_owned(),
    })
}

fn decide(args: &DecidePhotosArgs, kind: DecisionKind) -> anyhow::Result<()> {
    let photos = args
        .photos
        .iter()
        .map(|p| decided_photo(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let path = cache_path(&args.cache)?;
    let added = store::add(&path, kind, photos).map_err(usage)?;
    say_added(&[added], args.cache.json)
}

fn say_added(added: &[Added], json: bool) -> anyhow::Result<()> {
    if json {
        return emit(format!("{}\n", serde_json::to_string_pretty(added)?).as_bytes());
    }
    let mut o = String::new();
    for a in added {
        let d = &a.decision;
        outln!(
            o,
            "decision {}: {} ({} photos){}",
            d.id,
            d.kind,
            d.photos.len(),
            if a.existed { ", already stored" } else { "" }
        );
    }
    emit(o.as_bytes())
}

/// What `decide list --json` prints and `decide import` reads back.
#[derive(serde::Serialize, serde::Deserialize)]
struct Listed {
    decisions: Vec<Decision>,
}

fn import(args: &DecideImportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| usage(format!("{}: {e}", args.file.display())))?;
    let wanted: Vec<(DecisionKind, Vec<DecidedPhoto>)> =
        if let Ok(listed) = serde_json::from_str::<Listed>(&text) {
            listed
                .decisions
                .into_iter()
                .map(|d| (d.kind, d.photos))
                .collect()
        } else {
            let plan: Report = serde_json::from_str(&text).map_err(|e| {
                usage(format!(
                    "{}: neither a scan's JSON report nor `decide list --json`: {e}",
                    args.file.display()
                ))
            })?;
            plan_decisions(&plan)?
        };
    if wanted.is_empty() {
        return Err(usage(format!(
            "{}: no decisions in it (set \"decision\": \"not-duplicates\" or \"keep-all\" on a group)",
            args.file.display()
        )));
    }
    let path = cache_path(&args.cache)?;
    let added = wanted
        .into_iter()
        .map(|(kind, photos)| store::add(&path, kind, photos).map_err(usage))
        .collect::<anyhow::Result<Vec<_>>>()?;
    say_added(&added, args.cache.json)
}

/// The decisions marked on a plan's groups, by the contents the scan
/// recorded (a member without one, from an old report, is read now).
fn plan_decisions(plan: &Report) -> anyhow::Result<Vec<(DecisionKind, Vec<DecidedPhoto>)>> {
    plan.groups
        .iter()
        .filter_map(|g| g.decision.map(|k| (k, g)))
        .map(|(kind, g)| {
            let photos = g
                .members
                .iter()
                .map(|m| match &m.content {
                    Some(c) => Ok(DecidedPhoto {
                        content: c.clone(),
                        path: m.path.clone(),
                    }),
                    None => decided_photo(Path::new(&m.path)),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((kind, photos))
        })
        .collect()
}

fn list(args: &CacheArgs) -> anyhow::Result<()> {
    let path = cache_path(args)?;
    let (decisions, bad) = store::list(&path).map_err(usage)?;
    for b in &bad {
        eprintln!("warning: {b}");
    }
    if args.json {
        let listed = Listed { decisions };
        return emit(format!("{}\n", serde_json::to_string_pretty(&listed)?).as_bytes());
    }
    let mut o = String::new();
    if decisions.is_empty() {
        outln!(
            o,
            "no decisions in {}",
            report::escape_name(&path.to_string_lossy())
        );
    }
    for d in &decisions {
        outln!(o, "decision {}: {}, {}", d.id, d.kind, d.made);
        for p in &d.photos {
            outln!(o, "  {}", report::escape_name(&p.path));
        }
    }
    emit(o.as_bytes())
}

fn forget(args: &DecideForgetArgs) -> anyhow::Result<()> {
    let path = cache_path(&args.cache)?;
    let ids = (!args.all).then_some(args.ids.as_slice());
    let (removed, missing) = store::forget(&path, ids).map_err(usage)?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(u64::to_string).collect();
        return Err(usage(format!(
            "no decision {} in {} (`neardup decide list`): nothing forgotten",
            list.join(", "),
            path.display()
        )));
    }
    if args.cache.json {
        let v = serde_json::json!({ "forgotten": removed, "not_found": missing });
        return emit(format!("{}\n", serde_json::to_string_pretty(&v)?).as_bytes());
    }
    let mut o = String::new();
    outln!(
        o,
        "forgot {} {}",
        removed.len(),
        if removed.len() == 1 {
            "decision"
        } else {
            "decisions"
        }
    );
    emit(o.as_bytes())
}
