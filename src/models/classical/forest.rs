//! Random forest: bootstrap samples of the clips, each decision tree ([`super::cart`], Gini,
//! grown to purity) on a random subset of the features (bagging with random subspaces, Ho 1998,
//! drawn as linfa-ensemble drew them); trees grown and voting in parallel; a clip's class
//! probabilities are the fraction of trees voting for each class.

use ndarray::Array2;
use rand08::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{cart, fit_error, ClassicalError};

/// `model: {family: random_forest, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForestSpec {
    pub trees: usize,
    /// Fraction of the features each tree sees.
    pub feature_fraction: f64,
    /// Depth limit (`null`: grow to purity).
    pub max_depth: Option<usize>,
}

impl Default for ForestSpec {
    fn default() -> Self {
        ForestSpec {
            trees: 300,
            feature_fraction: 0.5,
            max_depth: None,
        }
    }
}

impl ForestSpec {
    /// The seed's RandomForest, read as scikit-learn's defaults (100 trees grown to purity;
    /// the seed's notebook records no other setting); each tree here sees half the features,
    /// where scikit-learn samples √d of them at every split.
    pub fn seed() -> Self {
        ForestSpec {
            trees: 100,
            ..ForestSpec::default()
        }
    }
}

/// The fitted trees with the features each one reads.
#[derive(Debug)]
pub struct Forest {
    k: usize,
    trees: Vec<cart::Tree>,
}

impl Forest {
    pub fn fit(
        spec: &ForestSpec,
        x: &Array2<f64>,
        y: &[usize],
        k: usize,
        seed: u64,
    ) -> Result<Forest, ClassicalError> {
        if spec.trees == 0 {
            return Err(fit_error("random_forest", "trees must be at least 1"));
        }
        if !(spec.feature_fraction > 0.0 && spec.feature_fraction <= 1.0) {
            return Err(fit_error(
                "random_forest",
                format!(
                    "feature_fraction must be in (0, 1], got {}",
                    spec.feature_fraction
                ),
            ));
        }
        // linfa-ensemble's draws, in its order from the same generator (each tree: clips with
        // replacement, then features with replacement, a repeated feature read once); the
        // trees are then grown in parallel (growing draws nothing, so the forest does not
        // depend on the thread count).
        let mut rng = rand08::rngs::StdRng::seed_from_u64(seed);
        let (n, d) = x.dim();
        let n_feat = ((d as f64) * spec.feature_fraction).ceil() as usize;
        let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..spec.trees)
            .map(|_| {
                let rows: Vec<usize> = (0..n).map(|_| rng.gen_range(0..n)).collect();
                let cols: Vec<usize> = (0..n_feat).map(|_| rng.gen_range(0..d)).collect();
                (rows, cols)
            })
            .collect();
        let trees = draws
            .par_iter()
            .map(|(rows, cols)| {
                let mut seen = vec![false; d];
                let cols: Vec<usize> = cols
                    .iter()
                    .copied()
                    .filter(|&c| !std::mem::replace(&mut seen[c], true))
                    .collect();
                cart::Tree::fit(x, y, k, rows.clone(), &cols, spec.max_depth)
            })
            .collect::<Vec<_>>();
        Ok(Forest { k, trees })
    }

    pub fn predict_proba(&self, x: &Array2<f64>) -> Vec<Vec<f32>> {
        // Trees vote in parallel; the sums do not depend on the order (counts).
        let votes = self
            .trees
            .par_iter()
            .fold(
                || vec![vec![0u32; self.k]; x.nrows()],
                |mut acc, tree| {
                    for (votes, row) in acc.iter_mut().zip(x.outer_iter()) {
                        votes[tree.predict(row)] += 1;
                    }
                    acc
                },
            )
            .reduce(
                || vec![vec![0u32; self.k]; x.nrows()],
                |mut a, b| {
                    for (ra, rb) in a.iter_mut().zip(b) {
                        for (u, v) in ra.iter_mut().zip(rb) {
                            *u += v;
                        }
                    }
                    a
                },
            );
        let n = self.trees.len().max(1) as f32;
        votes
            .into_iter()
            .map(|r| r.into_iter().map(|v| v as f32 / n).collect())
            .collect()
    }

    pub fn trees(&self) -> usize {
        self.trees.len()
    }

    pub fn size(&self) -> i64 {
        self.trees.iter().map(|t| t.leaves() as i64).sum()
    }
}
