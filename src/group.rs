//! Grouping: verified pairs become groups of near-duplicates (the connected
//! components of the graph whose edges are the pairs under the threshold).

use crate::index::ScoredPair;

/// A group: the indices of its photos (sorted) and its pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub members: Vec<u32>,
    pub pairs: Vec<ScoredPair>,
}

struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
        }
    }
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }
    fn union(&mut self, a: u32, b: u32) {
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

    #[test]
    fn no_pairs_no_groups() {
        assert!(connected_components(5, &[]).is_empty());
    }
}
