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

/// One node of a tree; a tree is a flat array of them in depth-first order.
///
/// A walk picks the next node by indexing `child` with the comparison rather than by
/// branching on it: which side a point goes is as good as random, so a branch would be
/// mispredicted half the time (and the compiler keeps an `if` here as a branch).
/// A leaf is a split that sends every point to itself: its value is −∞, so `x < value`
/// never holds, and both of its children are itself. A walk can then take a fixed number of
/// steps, the tree's height, with no test for having arrived.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Points with x[feature] < value go left, the others right (NaN, which callers
    /// keep out of scores, goes left).
    value: f64,
    feature: u32,
    /// The children, left then right.
    child: [u32; 2],
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    /// Per node, a leaf's path length: its depth plus c(points it holds).
    lengths: Vec<f64>,
    /// The depth of the deepest leaf: the steps a walk takes.
    height: usize,
}

impl Tree {
    /// h(x): the path length of `x`, which has the forest's length (checked by callers).
    fn path_length(&self, x: &[f64]) -> f64 {
        let mut i = 0;
        for _ in 0..self.height {
            let n = self.nodes[i];
            i = n.child[usize::from(x[n.feature as usize] >= n.value)] as usize;
        }
        self.lengths[i]
    }
}

/// Rows scored together by [`IsolationForest::score_batch`]: each tree is walked for a
/// block of rows at once, one step for all of them at a time, so the walks overlap.
const BLOCK: usize = 256;

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
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut grower = Grower {
            sample: Vec::with_capacity(psi * dims),
            dims,
            limit: (psi as f64).log2().ceil() as usize,
            ranges: Vec::with_capacity(dims),
        };
        let mut trees = Vec::with_capacity(config.trees.max(1));
        let mut idx: Vec<usize> = Vec::with_capacity(psi);
        for _ in 0..config.trees.max(1) {
            idx.clear();
            idx.extend(rand::seq::index::sample(&mut rng, clean.len(), psi));
            // The subsample, copied row-major so a tree is grown from one small block.
            grower.sample.clear();
            for &i in &idx {
                grower.sample.extend_from_slice(clean[i]);
            }
            let mut order: Vec<u32> = (0..psi as u32).collect();
            let mut tree = Tree {
                nodes: Vec::with_capacity(2 * psi),
                lengths: Vec::with_capacity(2 * psi),
                height: 0,
            };
            grower.grow(&mut order, 0, &mut rng, &mut tree);
            trees.push(tree);
        }
        Ok(IsolationForest {
            trees,
            dims,
            c_psi: c(psi),
        })
    }

    /// The anomaly score of `x` in (0, 1]; NaN when `x` has the wrong length or NaN.
    pub fn score(&self, x: &[f64]) -> f64 {
        if !self.usable(x) {
            return f64::NAN;
        }
        let total: f64 = self.trees.iter().map(|t| t.path_length(x)).sum();
        self.normalise(total)
    }

    /// The scores of many rows, equal to [`score`](Self::score) of each, using up to
    /// `threads` threads (1: this one). Rows are split into contiguous runs, one per
    /// thread, and each row's path lengths are summed in tree order, so the result does
    /// not depend on `threads`.
    pub fn score_batch<R: AsRef<[f64]> + Sync>(&self, rows: &[R], threads: usize) -> Vec<f64> {
        let mut out = vec![0.0; rows.len()];
        let threads = threads.clamp(1, rows.len().div_ceil(BLOCK).max(1));
        if threads == 1 {
            self.score_into(rows, &mut out);
            return out;
        }
        let per = rows.len().div_ceil(threads);
        std::thread::scope(|s| {
            for (rows, out) in rows.chunks(per).zip(out.chunks_mut(per)) {
                s.spawn(move || self.score_into(rows, out));
            }
        });
        out
    }

    /// Scores `rows` into `out` (same length), a block of rows at a time, tree by tree.
    fn score_into<R: AsRef<[f64]>>(&self, rows: &[R], out: &mut [f64]) {
        // The block's rows feature-major: feature f of row r is cols[f * BLOCK + r].
        let mut cols = vec![0.0; self.dims * BLOCK];
        let mut at = [0u32; BLOCK];
        for (rows, out) in rows.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
            for (r, x) in rows.iter().enumerate() {
                let x = x.as_ref();
                for f in 0..self.dims {
                    // A row of the wrong length walks as zeros; its score is NaN below.
                    cols[f * BLOCK + r] = x.get(f).copied().unwrap_or(0.0);
                }
            }
            let at = &mut at[..rows.len()];
            for tree in &self.trees {
                at.fill(0);
                for _ in 0..tree.height {
                    for (r, i) in at.iter_mut().enumerate() {
                        let n = tree.nodes[*i as usize];
                        let right = cols[n.feature as usize * BLOCK + r] >= n.value;
                        *i = n.child[usize::from(right)];
                    }
                }
                for (total, i) in out.iter_mut().zip(at.iter()) {
                    *total += tree.lengths[*i as usize];
                }
            }
            for (x, total) in rows.iter().zip(out.iter_mut()) {
                *total = if self.usable(x.as_ref()) {
                    self.normalise(*total)
                } else {
                    f64::NAN
                };
            }
        }
    }

    /// Whether `x` can be scored: the forest's length, all finite. (A NaN walks a tree
    /// to some leaf without harm; it is only the score that means nothing.)
    fn usable(&self, x: &[f64]) -> bool {
        x.len() == self.dims && x.iter().all(|v| v.is_finite())
    }

    /// s = 2^(−E[h] / c(ψ)) from the sum of h over the trees.
    fn normalise(&self, total: f64) -> f64 {
        let mean = total / self.trees.len() as f64;
        2f64.powf(-mean / self.c_psi)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }
}

/// Grows trees from one subsample, reusing its buffers from tree to tree.
struct Grower {
    /// The subsample, row-major: row `r` is `sample[r * dims..(r + 1) * dims]`.
    sample: Vec<f64>,
    dims: usize,
    /// The height limit, ⌈log2 ψ⌉.
    limit: usize,
    /// Scratch: (feature, min, max) of the features that vary in a node.
    ranges: Vec<(usize, f64, f64)>,
}

impl Grower {
    fn at(&self, row: u32, feature: usize) -> f64 {
        self.sample[row as usize * self.dims + feature]
    }

    /// Grow a subtree over the rows `order` holds into `tree`, depth first.
    fn grow(&mut self, order: &mut [u32], depth: usize, rng: &mut StdRng, tree: &mut Tree) {
        let me = tree.nodes.len();
        let leaf = |tree: &mut Tree| {
            tree.nodes.push(Node {
                value: f64::NEG_INFINITY,
                feature: 0,
                child: [me as u32; 2],
            });
            tree.lengths.push(depth as f64 + c(order.len()));
            tree.height = tree.height.max(depth);
        };
        if depth >= self.limit || order.len() <= 1 {
            leaf(tree);
            return;
        }
        // Pick a random feature among those that still vary in this node.
        self.ranges.clear();
        for f in 0..self.dims {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &r in order.iter() {
                let v = self.at(r, f);
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi > lo {
                self.ranges.push((f, lo, hi));
            }
        }
        if self.ranges.is_empty() {
            leaf(tree);
            return;
        }
        let (feature, lo, hi) = self.ranges[rng.random_range(0..self.ranges.len())];
        let mut value = rng.random_range(lo..hi);
        if value <= lo {
            value = lo + (hi - lo) * 0.5;
        }
        // Partition: left holds x < value.
        let mut split = 0;
        for j in 0..order.len() {
            if self.at(order[j], feature) < value {
                order.swap(j, split);
                split += 1;
            }
        }
        tree.nodes.push(Node {
            value,
            feature: feature as u32,
            child: [me as u32 + 1, 0],
        });
        tree.lengths.push(0.0);
        let (left, right) = order.split_at_mut(split);
        self.grow(left, depth + 1, rng, tree);
        let right_at = tree.nodes.len() as u32;
        if let Some(n) = tree.nodes.get_mut(me) {
            n.child[1] = right_at;
        }
        self.grow(right, depth + 1, rng, tree);
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
    fn batch_scores_equal_single_scores_for_any_thread_count() {
        let data = cloud(2000, 3);
        let f = IsolationForest::fit(&data, &IsolationForestConfig::default()).unwrap();
        let mut rows = cloud(700, 4);
        rows[5] = vec![9.0, 9.0, -9.0];
        rows[6] = vec![0.0, f64::NAN, 0.0];
        rows[7] = vec![0.0, 0.0];
        let single: Vec<f64> = rows.iter().map(|x| f.score(x)).collect();
        assert!(single[6].is_nan() && single[7].is_nan());
        for threads in [0, 1, 2, 3, 64] {
            let batch = f.score_batch(&rows, threads);
            assert_eq!(batch.len(), rows.len());
            for (i, (a, b)) in single.iter().zip(&batch).enumerate() {
                assert!(
                    a.to_bits() == b.to_bits(),
                    "row {i}, {threads} threads: {a} vs {b}"
                );
            }
        }
        assert!(f.score_batch::<Vec<f64>>(&[], 2).is_empty());
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
