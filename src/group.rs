//! Grouping: verified pairs (edges) become groups of near-duplicates.
//!
//! The default is average linkage: edges are taken from the closest up, and
//! two groups merge only when at least half of all pairs between them are
//! edges. A photo that is close to one member of a group but not to the
//! others cannot chain two unrelated groups together, which connected
//! components would do.

use crate::index::{cosine_distance, Embeddings, ScoredPair};

/// A group: the indices of its photos (sorted) and its pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub members: Vec<u32>,
    pub pairs: Vec<ScoredPair>,
}

/// Disjoint sets over `0..n`.
pub(crate) struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    pub(crate) fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
        }
    }
    pub(crate) fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }
    pub(crate) fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller index becomes the root: the result does not depend
            // on the order of the pairs.
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi as usize] = lo;
        }
    }
}

/// Connected components of `n` photos linked by `pairs`, each with at least
/// two members. Groups come out sorted by their first member; members and
/// pairs are sorted by index.
pub fn connected_components(n: usize, pairs: &[ScoredPair]) -> Vec<Cluster> {
    let mut uf = UnionFind::new(n);
    for p in pairs {
        uf.union(p.a, p.b);
    }
    let mut by_root: std::collections::BTreeMap<u32, Cluster> = Default::default();
    for p in pairs {
        let root = uf.find(p.a);
        by_root
            .entry(root)
            .or_insert_with(|| Cluster {
                members: Vec::new(),
                pairs: Vec::new(),
            })
            .pairs
            .push(*p);
    }
    let mut out: Vec<Cluster> = by_root
        .into_values()
        .map(|mut c| {
            c.members = c.pairs.iter().flat_map(|p| [p.a, p.b]).collect();
            c.members.sort_unstable();
            c.members.dedup();
            c.pairs.sort_by_key(|p| (p.a, p.b));
            c
        })
        .collect();
    out.sort_by_key(|c| c.members[0]);
    out
}

/// The share of cross pairs that must be edges for two groups to merge.
pub const LINK_FRACTION: f64 = 0.5;

/// The group stage: average linkage ([`average_linkage`]) over the edges
/// (the pairs the verify stage judged), with the exact distances of the
/// vectors; `tie_radius` as there.
/// `apart`: pairs of photos that must not end up in one group (the user's
/// decisions, [`crate::decisions::Decisions::apart`]).
pub fn group(
    edges: &[ScoredPair],
    apart: &[(u32, u32)],
    vectors: &Embeddings,
    fraction: f64,
    tie_radius: f32,
) -> Vec<Cluster> {
    let dist = |a: u32, b: u32| cosine_distance(vectors.row(a as usize), vectors.row(b as usize));
    let linkage = Linkage {
        fraction,
        dist: &dist,
        tie_radius,
        apart,
    };
    average_linkage(vectors.len(), edges, &linkage)
}

/// How [`average_linkage`] decides a merge.
pub struct Linkage<'a> {
    /// The share of cross pairs that must be edges.
    pub fraction: f64,
    /// The distance of two photos.
    pub dist: &'a dyn Fn(u32, u32) -> f32,
    /// A merge at exactly `fraction` needs every cross pair within this.
    pub tie_radius: f32,
    /// Pairs of photos never in one group.
    pub apart: &'a [(u32, u32)],
}

/// Average-linkage groups of `n` photos linked by `edges`: edges in order of
/// (distance, a, b); groups `A` and `B` merge when the edges between them
/// number more than `fraction · |A| · |B|`, or exactly that many and every
/// cross pair is within `tie_radius` by `dist`. (So a photo close to one of
/// two members joins them only if it is not unrelated to the other: a line
/// A~B~C of an unrelated A and C stays apart.) Two groups holding the two
/// photos of an `apart` pair never merge. Only groups of two or more come
/// out, sorted by first member; each keeps the edges inside it.
pub fn average_linkage(n: usize, edges: &[ScoredPair], linkage: &Linkage) -> Vec<Cluster> {
    let Linkage {
        fraction,
        dist,
        tie_radius,
        apart,
    } = *linkage;
    let mut kept_apart: Vec<Vec<u32>> = vec![Vec::new(); if apart.is_empty() { 0 } else { n }];
    for &(a, b) in apart {
        kept_apart[a as usize].push(b);
        kept_apart[b as usize].push(a);
    }
    let mut order: Vec<&ScoredPair> = edges.iter().collect();
    order.sort_by(|x, y| {
        x.distance
            .total_cmp(&y.distance)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
    for e in edges {
        adj[e.a as usize].push(e.b);
        adj[e.b as usize].push(e.a);
    }
    // group[i] is the id (smallest member) of i's group.
    let mut group: Vec<u32> = (0..n as u32).collect();
    let mut members: Vec<Vec<u32>> = (0..n as u32).map(|i| vec![i]).collect();
    for e in order {
        let (gi, gj) = (group[e.a as usize], group[e.b as usize]);
        if gi == gj {
            continue;
        }
        let (small, other) = if members[gi as usize].len() <= members[gj as usize].len() {
            (gi, gj)
        } else {
            (gj, gi)
        };
        let links: usize = members[small as usize]
            .iter()
            .map(|&x| {
                adj[x as usize]
                    .iter()
                    .filter(|&&y| group[y as usize] == other)
                    .count()
            })
            .sum();
        let forbidden = !kept_apart.is_empty()
            && members[small as usize].iter().any(|&x| {
                kept_apart[x as usize]
                    .iter()
                    .any(|&y| group[y as usize] == other)
            });
        if forbidden {
            continue;
        }
        let need = fraction * members[gi as usize].len() as f64 * members[gj as usize].len() as f64;
        let merge = links as f64 > need
            || (links as f64 >= need
                && members[gi as usize].iter().all(|&x| {
                    members[gj as usize]
                        .iter()
                        .all(|&y| dist(x, y) <= tie_radius)
                }));
        if merge {
            let (keep, gone) = (gi.min(gj), gi.max(gj));
            let moved = std::mem::take(&mut members[gone as usize]);
            for &m in &moved {
                group[m as usize] = keep;
            }
            members[keep as usize].extend(moved);
        }
    }
    let mut out: Vec<Cluster> = Vec::new();
    let mut index_of: std::collections::HashMap<u32, usize> = Default::default();
    for (id, m) in members.iter().enumerate() {
        if m.len() >= 2 {
            let mut sorted = m.clone();
            sorted.sort_unstable();
            index_of.insert(id as u32, out.len());
            out.push(Cluster {
                members: sorted,
                pairs: Vec::new(),
            });
        }
    }
    for e in edges {
        let g = group[e.a as usize];
        if g == group[e.b as usize] {
            if let Some(&k) = index_of.get(&g) {
                out[k].pairs.push(*e);
            }
        }
    }
    for c in &mut out {
        c.pairs.sort_by_key(|p| (p.a, p.b));
    }
    out.sort_by_key(|c| c.members[0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: u32, b: u32, d: f32) -> ScoredPair {
        ScoredPair { a, b, distance: d }
    }

    #[test]
    fn components_are_found_and_sorted() {
        let pairs = vec![p(5, 6, 0.1), p(0, 3, 0.05), p(3, 4, 0.02), p(1, 7, 0.0)];
        let g = connected_components(8, &pairs);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].members, vec![0, 3, 4]);
        assert_eq!(g[0].pairs, vec![p(0, 3, 0.05), p(3, 4, 0.02)]);
        assert_eq!(g[1].members, vec![1, 7]);
        assert_eq!(g[2].members, vec![5, 6]);
    }

    #[test]
    fn result_does_not_depend_on_pair_order() {
        let mut pairs = vec![
            p(2, 9, 0.1),
            p(0, 9, 0.05),
            p(4, 5, 0.02),
            p(5, 8, 0.0),
            p(1, 2, 0.2),
        ];
        let a = connected_components(10, &pairs);
        pairs.reverse();
        assert_eq!(a, connected_components(10, &pairs));
        assert_eq!(a[0].members, vec![0, 1, 2, 9]);
    }

    /// Distances of a small made-up collection: the edges' own, 0.3 for
    /// the other pairs among 0..=3, 0.9 (unrelated) for pairs with 4..
    fn dist_of(edges: &[ScoredPair]) -> impl Fn(u32, u32) -> f32 + '_ {
        move |a, b| {
            let (a, b) = (a.min(b), a.max(b));
            edges
                .iter()
                .find(|e| e.a == a && e.b == b)
                .map(|e| e.distance)
                .unwrap_or(if b < 4 { 0.3 } else { 0.9 })
        }
    }

    fn linkage<'a>(dist: &'a dyn Fn(u32, u32) -> f32, apart: &'a [(u32, u32)]) -> Linkage<'a> {
        Linkage {
            fraction: LINK_FRACTION,
            dist,
            tie_radius: 0.5,
            apart,
        }
    }

    #[test]
    fn photos_kept_apart_never_share_a_group_and_the_others_still_join() {
        // Three copies, all edges; the user said 0 and 2 are not duplicates.
        let edges = vec![p(0, 1, 0.01), p(0, 2, 0.05), p(1, 2, 0.02)];
        let d = dist_of(&edges);
        let g = average_linkage(3, &edges, &linkage(&d, &[]));
        assert_eq!(g[0].members, vec![0, 1, 2]);
        let g = average_linkage(3, &edges, &linkage(&d, &[(0, 2)]));
        // 1 joins the closer of the two; 2 stays alone.
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].members, vec![0, 1]);
        assert_eq!(g[0].pairs, vec![p(0, 1, 0.01)]);
    }

    #[test]
    fn average_linkage_does_not_chain_a_line() {
        // A~B and B~C are close, A and C are unrelated: no group of three.
        let line = vec![p(0, 1, 0.10), p(1, 4, 0.12)];
        let g = average_linkage(5, &line, &linkage(&dist_of(&line), &[]));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].members, vec![0, 1]);
        assert_eq!(g[0].pairs, vec![p(0, 1, 0.10)]);
        // Connected components would have chained them.
        assert_eq!(connected_components(5, &line)[0].members, vec![0, 1, 4]);
        // When A and C are merely not close enough for an edge (0.3), the
        // middle photo may join them: half the cross pairs are edges.
        let near = vec![p(0, 1, 0.10), p(1, 2, 0.12)];
        let g = average_linkage(3, &near, &linkage(&dist_of(&near), &[]));
        assert_eq!(g[0].members, vec![0, 1, 2]);
    }

    #[test]
    fn average_linkage_keeps_a_group_with_a_missing_edge() {
        // Four copies: every pair but one is an edge (5 of 6).
        let edges = vec![
            p(0, 1, 0.01),
            p(0, 2, 0.02),
            p(0, 3, 0.05),
            p(1, 2, 0.03),
            p(1, 3, 0.08),
        ];
        let g = average_linkage(5, &edges, &linkage(&dist_of(&edges), &[]));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].members, vec![0, 1, 2, 3]);
        assert_eq!(g[0].pairs.len(), 5);
    }

    #[test]
    fn average_linkage_does_not_depend_on_edge_order() {
        let mut edges = vec![
            p(2, 9, 0.1),
            p(0, 9, 0.05),
            p(4, 5, 0.02),
            p(5, 8, 0.0),
            p(0, 2, 0.2),
            p(4, 8, 0.03),
        ];
        let e0 = edges.clone();
        let d = dist_of(&e0);
        let a = average_linkage(10, &edges, &linkage(&d, &[]));
        edges.reverse();
        assert_eq!(a, average_linkage(10, &edges, &linkage(&d, &[])));
        assert_eq!(
            a.iter().map(|c| c.members.clone()).collect::<Vec<_>>(),
            vec![vec![0, 2, 9], vec![4, 5, 8]]
        );
    }

    #[test]
    fn no_pairs_no_groups() {
        assert!(connected_components(5, &[]).is_empty());
    }
}
