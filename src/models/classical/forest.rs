//! Random forest: bootstrap samples of the clips, each decision tree (linfa-trees, Gini, grown
//! to purity) on a random subset of the features (linfa-ensemble's bagging with random
//! subspaces, Ho 1998); a clip's class probabilities are the fraction of trees voting for each
//! class.

use linfa::prelude::*;
use linfa::Dataset as LinfaDataset;
use linfa_ensemble::EnsembleLearnerParams;
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2, Axis};
use rand08::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{fit_error, ClassicalError};

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
    trees: Vec<DecisionTree<f64, usize>>,
    features: Vec<Vec<usize>>,
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
        let data = LinfaDataset::new(x.clone(), y.iter().copied().collect::<Array1<usize>>());
        let rng = rand08::rngs::StdRng::seed_from_u64(seed);
        let fitted = EnsembleLearnerParams::new_fixed_rng(
            DecisionTree::params().max_depth(spec.max_depth),
            rng,
        )
        .ensemble_size(spec.trees)
        .bootstrap_proportion(1.0)
        .feature_proportion(spec.feature_fraction)
        .fit(&data)
        .map_err(|e| fit_error("random_forest", e))?;
        Ok(Forest {
            k,
            trees: fitted.models,
            features: fitted.model_features,
        })
    }

    pub fn predict_proba(&self, x: &Array2<f64>) -> Vec<Vec<f32>> {
        let mut votes = vec![vec![0f32; self.k]; x.nrows()];
        for (tree, feat) in self.trees.iter().zip(&self.features) {
            let sub = x.select(Axis(1), feat);
            let pred: Array1<usize> = tree.predict(&sub);
            for (row, &c) in votes.iter_mut().zip(pred.iter()) {
                row[c] += 1.0;
            }
        }
        let n = self.trees.len().max(1) as f32;
        votes
            .into_iter()
            .map(|r| r.into_iter().map(|v| v / n).collect())
            .collect()
    }

    pub fn trees(&self) -> usize {
        self.trees.len()
    }

    pub fn size(&self) -> i64 {
        self.trees.iter().map(|t| t.num_leaves() as i64).sum()
    }
}
