//! Ranking files by how much the rest of the repository leans on them: a PageRank over the
//! file → file graph, where a file points at each *other* file that defines a name it uses
//! (a name defined in k files gives each 1/k; names defined in very many files, like `new` or
//! `main`, carry no signal and are ignored). Deterministic: fixed iteration count, every sum
//! taken in path order, ties broken by path.

use std::collections::{BTreeMap, BTreeSet};

/// PageRank's damping factor.
const DAMPING: f64 = 0.85;
/// Power iterations (converged well enough for an ordering; fixed so results never vary).
const ITERATIONS: usize = 30;
/// A name defined in more files than this is too common to say who depends on whom.
pub const MAX_DEFINERS_PER_NAME: usize = 12;

/// A file as the ranking sees it.
#[derive(Debug)]
pub struct Node<'a> {
    pub path: &'a str,
    pub defines: BTreeSet<&'a str>,
    pub references: &'a BTreeSet<String>,
}

/// The order of `nodes` (indices, most relied-on first) and, per node, how many other files
/// refer to it.
pub fn rank(nodes: &[Node<'_>]) -> (Vec<usize>, Vec<u32>) {
    let n = nodes.len();
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let edges = edges(nodes);
    let mut referenced_by = vec![0u32; n];
    for targets in &edges {
        for &(to, _) in targets {
            referenced_by[to] += 1;
        }
    }
    let scores = pagerank(n, &edges);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        scores[b]
            .total_cmp(&scores[a])
            .then_with(|| nodes[a].path.cmp(nodes[b].path))
    });
    (order, referenced_by)
}

/// For each file, the files it refers to with the edge's weight (targets in index order).
fn edges(nodes: &[Node<'_>]) -> Vec<Vec<(usize, f64)>> {
    let mut definers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for name in &node.defines {
            definers.entry(name).or_default().push(i);
        }
    }
    nodes
        .iter()
        .enumerate()
        .map(|(from, node)| {
            let mut weights: BTreeMap<usize, f64> = BTreeMap::new();
            for name in node.references {
                let Some(files) = definers.get(name.as_str()) else {
                    continue;
                };
                if files.len() > MAX_DEFINERS_PER_NAME {
                    continue;
                }
                let share = 1.0 / files.len() as f64;
                for &to in files.iter().filter(|&&to| to != from) {
                    *weights.entry(to).or_default() += share;
                }
            }
            weights.into_iter().collect()
        })
        .collect()
}

fn pagerank(n: usize, edges: &[Vec<(usize, f64)>]) -> Vec<f64> {
    let out_weight: Vec<f64> = edges
        .iter()
        .map(|e| e.iter().map(|(_, w)| w).sum())
        .collect();
    let base = (1.0 - DAMPING) / n as f64;
    let mut scores = vec![1.0 / n as f64; n];
    for _ in 0..ITERATIONS {
        // Files that refer to nothing spread their score evenly.
        let dangling: f64 = (0..n)
            .filter(|&i| out_weight[i] == 0.0)
            .map(|i| scores[i])
            .sum();
        let mut next = vec![base + DAMPING * dangling / n as f64; n];
        for (from, targets) in edges.iter().enumerate() {
            if out_weight[from] == 0.0 {
                continue;
            }
            let give = DAMPING * scores[from] / out_weight[from];
            for &(to, weight) in targets {
                next[to] += give * weight;
            }
        }
        scores = next;
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_most_used_file_comes_first_and_ties_go_by_path() {
        let refs_core = set(&["parse", "Config"]);
        let refs_one = set(&["parse"]);
        let none = set(&[]);
        let nodes = vec![
            Node {
                path: "a.rs",
                defines: ["alpha"].into(),
                references: &refs_core,
            },
            Node {
                path: "b.rs",
                defines: ["beta"].into(),
                references: &refs_core,
            },
            Node {
                path: "c.rs",
                defines: ["gamma"].into(),
                references: &refs_one,
            },
            Node {
                path: "core.rs",
                defines: ["parse", "Config"].into(),
                references: &none,
            },
            Node {
                path: "lonely.rs",
                defines: ["unused"].into(),
                references: &none,
            },
            Node {
                path: "aaa-lonely.rs",
                defines: ["unused2"].into(),
                references: &none,
            },
        ];
        let (order, referenced_by) = rank(&nodes);
        assert_eq!(nodes[order[0]].path, "core.rs");
        assert_eq!(referenced_by[3], 3);
        assert_eq!(referenced_by[4], 0);
        let paths: Vec<&str> = order.iter().map(|&i| nodes[i].path).collect();
        // The unreferenced files tie and follow in path order.
        assert_eq!(
            &paths[1..],
            ["a.rs", "aaa-lonely.rs", "b.rs", "c.rs", "lonely.rs"]
        );
        assert_eq!(rank(&nodes).0, order, "deterministic");
    }

    #[test]
    fn a_file_does_not_rank_itself_up() {
        let own = set(&["helper", "helper2"]);
        let other = set(&["shared"]);
        let none = set(&[]);
        let nodes = vec![
            Node {
                path: "self.rs",
                defines: ["helper", "helper2"].into(),
                references: &own,
            },
            Node {
                path: "user.rs",
                defines: [].into(),
                references: &other,
            },
            Node {
                path: "shared.rs",
                defines: ["shared"].into(),
                references: &none,
            },
        ];
        let (order, referenced_by) = rank(&nodes);
        assert_eq!(referenced_by[0], 0);
        assert_eq!(nodes[order[0]].path, "shared.rs");
    }
}
