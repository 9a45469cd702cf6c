//! Isolation forest (Liu, Ting and Zhou, "Isolation Forest", ICDM 2008).
//!
//! Each tree isolates a random subsample of ψ points by random axis-parallel splits,
//! down to a height limit of ⌈log2 ψ⌉. A point's path length h(x) is the depth at
//! which it lands, plus c(size) for the points its external node still holds; the
//! score is s(x) = 2^(−E[h(x)] / c(ψ)), in (0, 1]: near 1 is anomalous, below ~0.5
//! normal. c(n) = 2·H(n−1) − 2(n−1)/n is the average path length of an unsuccessful
//! search in a binary search tree of n points, H the harmonic number.
//! Seeded, so the same data and seed give the same forest.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationForestConfig {
    /// Trees in the forest. Default 100.
    #[serde(default = "default_trees")]
    pub trees: usize,
    /// Subsample size ψ per tree. Default 256.
    #[serde(default = "default_sample")]
    pub sample_size: usize,
    /// Random seed. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_trees() -> usize {
    100
}
fn default_sample() -> usize {
    256
}
fn default_seed() -> u64 {
    42
}

impl Default for IsolationForestConfig {
    fn default() -> Self {
        IsolationForestConfig {
            trees: default_trees(),
            sample_size: default_sample(),
            seed: default_seed(),
        }
    }
}

impl IsolationForestConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.trees == 0 {
            p.push(("trees".into(), "must be at least 1".into()));
        }
        if self.sample_size < 2 {
            p.push(("sample_size".into(), "must be at least 2".into()));
        }
        p
    }
}

/// c(n): the average path length of an unsuccessful BST search among n points.
pub fn c(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        n => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Leaf {
        size: usize,
    },
    Split {
        feature: usize,
        value: f64,
        left: u32,
        right: u32,
    },
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
}

/// A trained forest.
#[derive(Debug, Clone)]
pub struct IsolationForest {
    trees: Vec<Tree>,
    dims: usize,
    c_psi: f64,
}

impl IsolationForest {
    /// Train on `rows` (each a feature vector of the same length; rows with NaN are
    /// skipped). Errors name what is wrong with the data.
    pub fn fit(rows: &[Vec<f64>], config: &IsolationForestConfig) -> Result<Self, String> {
        let dims = rows.first().map_or(0, Vec::len);
        if dims == 0 {
            return Err("no training data".into());
        }
        if let Some(i) = rows.iter().position(|r| r.len() != dims) {
            return Err(format!(
                "row {i} has {} features, the first has {dims}",
                rows[i].len()
            ));
        }
        let clean: Vec<&[f64]> = rows
            .iter()
            .filter(|r| r.iter().all(|v| v.is_finite()))
            .map(Vec::as_slice)
            .collect();
        if clean.len() < 2 {
            return Err(format!(
                "{} usable rows; at least 2 are needed",
                clean.len()
            ));
        }
        let psi = config.sample_size.min(clean.len()).max(2);
        let height_limit = (psi as f64).log2().ceil() as usize;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut trees = Vec::with_capacity(config.trees.max(1));
        let mut idx: Vec<usize> = Vec::with_capacity(psi);
        for _ in 0..config.trees.max(1) {
            idx.clear();
            idx.extend(rand::seq::index::sample(&mut rng, clean.len(), psi));
            let mut nodes = Vec::with_capacity(2 * psi);
            build(
                &clean,
                &mut idx[..],
                0,
                height_limit,
                dims,
                &mut rng,
                &mut nodes,
            );
            trees.push(Tree { nodes });
        }
        Ok(IsolationForest {
            trees,
            dims,
            c_psi: c(psi),
        })
    }

    /// The anomaly score of `x` in (0, 1]; NaN when `x` has the wrong length or NaN.
    pub fn score(&self, x: &[f64]) -> f64 {
        if x.len() != self.dims || x.iter().any(|v| !v.is_finite()) {
            return f64::NAN;
        }
        let total: f64 = self.trees.iter().map(|t| path_length(t, x)).sum();
        let mean = total / self.trees.len() as f64;
        2f64.powf(-mean / self.c_psi)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }
}

/// Grow a subtree over `idx` into `nodes`, returning its root's index.
fn build(
    data: &[&[f64]],
    idx: &mut [usize],
    depth: usize,
    limit: usize,
    dims: usize,
    rng: &mut StdRng,
    nodes: &mut Vec<Node>,
) -> u32 {
    let me = nodes.len() as u32;
    if depth >= limit || idx.len() <= 1 {
        nodes.push(Node::Leaf { size: idx.len() });
        return me;
    }
    // Pick a random feature among those that still vary in this node.
    let mut lo = vec![f64::INFINITY; dims];
    let mut hi = vec![f64::NEG_INFINITY; dims];
    for &i in idx.iter() {
        for (f, v) in data[i].iter().enumerate() {
            lo[f] = lo[f].min(*v);
            hi[f] = hi[f].max(*v);
        }
    }
    let ranges: Vec<(usize, f64, f64)> = (0..dims)
        .filter(|&f| hi[f] > lo[f])
        .map(|f| (f, lo[f], hi[f]))
        .collect();
    if ranges.is_empty() {
        nodes.push(Node::Leaf { size: idx.len() });
        return me;
    }
    let (feature, lo, hi) = ranges[rng.random_range(0..ranges.len())];
    let mut value = rng.random_range(lo..hi);
    if value <= lo {
        value = lo + (hi - lo) * 0.5;
    }
    // Partition: left holds x < value.
    let mut split = 0;
    for j in 0..idx.len() {
        if data[idx[j]][feature] < value {
            idx.swap(j, split);
            split += 1;
        }
    }
    nodes.push(Node::Split {
        feature,
        value,
        left: 0,
        right: 0,
    });
    let (left_idx, right_idx) = idx.split_at_mut(split);
    let left = build(data, left_idx, depth + 1, limit, dims, rng, nodes);
    let right = build(data, right_idx, depth + 1, limit, dims, rng, nodes);
    if let Some(Node::Split {
        left: l, right: r, ..
    }) = nodes.get_mut(me as usize)
    {
        *l = left;
        *r = right;
    }
    me
}

fn path_length(tree: &Tree, x: &[f64]) -> f64 {
    let mut node = 0usize;
    let mut depth = 0.0;
    loop {
        match &tree.nodes[node] {
            Node::Leaf { size } => return depth + c(*size),
            Node::Split {
                feature,
                value,
                left,
                right,
            } => {
                node = if x[*feature] < *value {
                    *left as usize
                } else {
                    *right as usize
                };
                depth += 1.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| (0..3).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect()
    }

    #[test]
    fn c_matches_the_paper() {
        assert_eq!(c(1), 0.0);
        assert_eq!(c(2), 1.0);
        // c(256) ≈ 10.24 (2·(ln 255 + γ) − 2·255/256)
        assert!((c(256) - 10.244).abs() < 1e-3, "{}", c(256));
    }

    #[test]
    fn outliers_score_high_and_inliers_low() {
        let data = cloud(1000, 1);
        let f = IsolationForest::fit(&data, &IsolationForestConfig::default()).unwrap();
        let inlier = f.score(&[0.0, 0.0, 0.0]);
        let outlier = f.score(&[6.0, -6.0, 6.0]);
        assert!(outlier > 0.6, "outlier {outlier}");
        assert!(inlier < 0.5, "inlier {inlier}");
        assert!(outlier > inlier);
    }

    #[test]
    fn seeded_runs_repeat() {
        let data = cloud(500, 2);
        let cfg = IsolationForestConfig {
            seed: 7,
            ..Default::default()
        };
        let a = IsolationForest::fit(&data, &cfg).unwrap();
        let b = IsolationForest::fit(&data, &cfg).unwrap();
        for x in data.iter().take(20) {
            assert_eq!(a.score(x), b.score(x));
        }
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        let cfg = IsolationForestConfig::default();
        assert!(IsolationForest::fit(&[], &cfg).is_err());
        assert!(IsolationForest::fit(&[vec![1.0, 2.0], vec![1.0]], &cfg).is_err());
        assert!(IsolationForest::fit(&[vec![f64::NAN], vec![1.0]], &cfg).is_err());
        // Constant data: every tree is one leaf; scores are defined.
        let f = IsolationForest::fit(&vec![vec![5.0, 5.0]; 50], &cfg).unwrap();
        assert!(f.score(&[5.0, 5.0]).is_finite());
        assert!(f.score(&[1.0]).is_nan());
    }
}
