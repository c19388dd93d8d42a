//! The user's decisions about photos a scan grouped: "these are not
//! duplicates" and "I keep them all". A decision names its photos by
//! content (`size:blake3` of the bytes, as the cache and the report do), so
//! it survives renames and moves; it is stored in the cache file
//! ([`crate::cache::decisions`]) and every later scan honours it: no pair of
//! two of its photos (of different contents) is an edge. A new photo that
//! joins such a group still shows, with its own edges only.

use crate::embed::Photo;
use crate::index::ScoredPair;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the user said about a set of photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    /// They are not the same picture (a false alarm).
    NotDuplicates,
    /// They may be duplicates, and the user keeps every one of them.
    KeepAll,
}

impl DecisionKind {
    pub fn name(self) -> &'static str {
        match self {
            DecisionKind::NotDuplicates => "not-duplicates",
            DecisionKind::KeepAll => "keep-all",
        }
    }
}

impl std::fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One photo of a decision: its content, and where it was when decided
/// (for people: the content is what counts).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DecidedPhoto {
    pub content: String,
    pub path: String,
}

/// A stored decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Its number in the cache (`neardup decide forget ID`).
    pub id: u64,
    pub kind: DecisionKind,
    /// When it was made, `YYYY-MM-DDTHH:MM:SSZ`.
    pub made: String,
    /// Sorted by content, one per content.
    pub photos: Vec<DecidedPhoto>,
}

/// A decision as a report's parameters record it: what it says, without
/// its number, date or paths, so that the same decisions give the same
/// report bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DecisionRule {
    pub kind: DecisionKind,
    pub contents: Vec<String>,
}

/// The photos of a decision in their stored form: one per content, sorted;
/// `None` when fewer than two contents remain (nothing to decide).
pub fn normalise(mut photos: Vec<DecidedPhoto>) -> Option<Vec<DecidedPhoto>> {
    photos.sort();
    photos.dedup_by(|a, b| a.content == b.content);
    (photos.len() >= 2).then_some(photos)
}

/// The decisions in force for one scan, looked up by content.
#[derive(Debug, Default)]
pub struct Decisions {
    rules: Vec<DecisionRule>,
    /// Content → the rules (indices into `rules`) that name it.
    by_content: HashMap<String, Vec<usize>>,
}

/// What the decisions did to a scan's edges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The edges left, in their order.
    pub edges: Vec<ScoredPair>,
    /// Edges removed because a decision holds both photos.
    pub removed: u64,
    /// The decisions that name at least two of the scanned photos' contents
    /// (those that could remove an edge), sorted.
    pub rules: Vec<DecisionRule>,
}

impl Decisions {
    /// No decisions (`--no-cache`, `--ignore-decisions`).
    pub fn none() -> Decisions {
        Decisions::default()
    }

    pub fn new(decisions: &[Decision]) -> Decisions {
        let mut rules: Vec<DecisionRule> = decisions
            .iter()
            .filter_map(|d| {
                let contents: Vec<String> = normalise(d.photos.clone())?
                    .into_iter()
                    .map(|p| p.content)
                    .collect();
                Some(DecisionRule {
                    kind: d.kind,
                    contents,
                })
            })
            .collect();
        rules.sort();
        rules.dedup();
        let mut by_content: HashMap<String, Vec<usize>> = HashMap::new();
        for (k, r) in rules.iter().enumerate() {
            for c in &r.contents {
                by_content.entry(c.clone()).or_default().push(k);
            }
        }
        Decisions { rules, by_content }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The decision that holds both contents, if any (the first in sorted
    /// order: `not-duplicates` before `keep-all`).
    pub fn between(&self, a: &str, b: &str) -> Option<&DecisionRule> {
        if a == b {
            return None;
        }
        let (ra, rb) = (self.by_content.get(a)?, self.by_content.get(b)?);
        // Both lists are increasing: the first common index.
        let (mut i, mut j) = (0, 0);
        while i < ra.len() && j < rb.len() {
            match ra[i].cmp(&rb[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => return Some(&self.rules[ra[i]]),
            }
        }
        None
    }

    /// The pairs of `photos` (indices, `a < b`) that a decision keeps out
    /// of one group: two of its photos of different contents. Bounded by
    /// the decisions' own sizes, not by the photos.
    pub fn apart(&self, photos: &[Photo]) -> Vec<(u32, u32)> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut by_rule: HashMap<usize, Vec<u32>> = HashMap::new();
        for (i, p) in photos.iter().enumerate() {
            for &r in self.by_content.get(&p.content).into_iter().flatten() {
                by_rule.entry(r).or_default().push(i as u32);
            }
        }
        let mut out = Vec::new();
        for members in by_rule.values() {
            for (k, &a) in members.iter().enumerate() {
                for &b in &members[k + 1..] {
                    if photos[a as usize].content != photos[b as usize].content {
                        out.push((a.min(b), a.max(b)));
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Drop the edges a decision forbids.
    pub fn apply(&self, photos: &[Photo], edges: Vec<ScoredPair>) -> Applied {
        if self.is_empty() {
            return Applied {
                edges,
                ..Applied::default()
            };
        }
        let content = |i: u32| photos[i as usize].content.as_str();
        let before = edges.len();
        let edges: Vec<ScoredPair> = edges
            .into_iter()
            .filter(|e| self.between(content(e.a), content(e.b)).is_none())
            .collect();
        let mut scanned: HashMap<&str, ()> = HashMap::new();
        for p in photos {
            scanned.insert(p.content.as_str(), ());
        }
        let rules = self
            .rules
            .iter()
            .filter(|r| {
                r.contents
                    .iter()
                    .filter(|c| scanned.contains_key(c.as_str()))
                    .count()
                    >= 2
            })
            .cloned()
            .collect();
        Applied {
            removed: (before - edges.len()) as u64,
            edges,
            rules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(content: &str, path: &str) -> DecidedPhoto {
        DecidedPhoto {
            content: content.into(),
            path: path.into(),
        }
    }

    fn decision(kind: DecisionKind, contents: &[&str]) -> Decision {
        Decision {
            id: 1,
            kind,
            made: "2026-12-03T00:00:00Z".into(),
            photos: contents.iter().map(|c| photo(c, "p")).collect(),
        }
    }

    #[test]
    fn a_decision_holds_every_pair_of_its_distinct_contents_and_no_other() {
        let d = Decisions::new(&[
            decision(DecisionKind::NotDuplicates, &["1:a", "1:b", "1:c"]),
            decision(DecisionKind::KeepAll, &["1:d", "1:e"]),
        ]);
        assert_eq!(
            d.between("1:a", "1:c").map(|r| r.kind),
            Some(DecisionKind::NotDuplicates)
        );
        assert_eq!(
            d.between("1:e", "1:d").map(|r| r.kind),
            Some(DecisionKind::KeepAll)
        );
        // Across two decisions, with an unknown photo, or a copy of itself.
        assert!(d.between("1:a", "1:d").is_none());
        assert!(d.between("1:a", "1:z").is_none());
        assert!(d.between("1:a", "1:a").is_none());
    }

    #[test]
    fn a_decision_of_fewer_than_two_contents_is_nothing() {
        assert!(normalise(vec![photo("1:a", "x"), photo("1:a", "y")]).is_none());
        let kept = normalise(vec![
            photo("1:b", "y"),
            photo("1:a", "x"),
            photo("1:b", "z"),
        ]);
        let contents: Vec<_> = kept.unwrap().into_iter().map(|p| p.content).collect();
        assert_eq!(contents, ["1:a", "1:b"]);
        let d = Decisions::new(&[decision(DecisionKind::KeepAll, &["1:a", "1:a"])]);
        assert!(d.is_empty());
    }

    #[test]
    fn the_same_decision_twice_is_one_rule() {
        let d = Decisions::new(&[
            decision(DecisionKind::KeepAll, &["1:b", "1:a"]),
            decision(DecisionKind::KeepAll, &["1:a", "1:b"]),
        ]);
        assert_eq!(d.rules.len(), 1);
    }
}
