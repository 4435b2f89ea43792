//! Classical models over one vector per clip (functionals, or the mean of each feature bin):
//! support vector machines, a random forest of decision trees, multinomial logistic
//! regression. The SVM's solver is a port of libsvm's (`smo`) and the forest's trees are
//! emolab's CART (`cart`); the logistic regression is linfa-logistic's (L-BFGS). All are
//! wrapped into multi-class classifiers that give class probabilities, so their run folders,
//! fusion and reports work like the networks'.
//!
//! * [`svm`]: one-vs-one binary C-SVMs (as libsvm and scikit-learn's `SVC`), RBF or linear
//!   kernel, `gamma: scale` by default (`1 / (n_features · Var(X))`), per-class C from
//!   balanced class weights; predictions by pairwise votes, probabilities as libsvm's (Platt
//!   sigmoids on cross-validated decision values, coupled as Wu, Lin & Weng, JMLR 2004).
//! * [`forest`]: bootstrap samples of the clips, each tree on a random subset of the features
//!   (bagging with Ho's random subspaces); probabilities are the trees' votes.
//! * [`logistic`]: multinomial logistic regression with L2 penalty `1 / C` (scikit-learn's
//!   convention: Σ log-loss + ‖W‖² / 2C).

mod cart;
pub mod forest;
pub mod logistic;
mod smo;
pub mod svm;

use crate::results::ModelSize;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Errors of the classical estimators.
#[derive(Debug, thiserror::Error)]
pub enum ClassicalError {
    #[error("{model}: {message}")]
    Fit {
        model: &'static str,
        message: String,
    },
}

pub(crate) fn fit_error(model: &'static str, e: impl std::fmt::Display) -> ClassicalError {
    ClassicalError::Fit {
        model,
        message: e.to_string(),
    }
}

/// A fitted classical model.
#[derive(Debug)]
pub enum Estimator {
    Svm(svm::OvoSvm),
    Forest(forest::Forest),
    Logistic(logistic::Logistic),
}

impl Estimator {
    /// Class probabilities `[n, k]` of the rows of `x`.
    pub fn predict_proba(&self, x: &Array2<f64>) -> Vec<Vec<f32>> {
        match self {
            Estimator::Svm(m) => m.predict_proba(x),
            Estimator::Forest(m) => m.predict_proba(x),
            Estimator::Logistic(m) => m.predict_proba(x),
        }
    }

    /// Probabilities and predicted classes: the SVM's vote (as libsvm predicts), else the most
    /// probable class.
    pub fn predict(&self, x: &Array2<f64>) -> (Vec<Vec<f32>>, Vec<usize>) {
        match self {
            Estimator::Svm(m) => m.predict(x),
            _ => {
                let p = self.predict_proba(x);
                let pred = p
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .max_by(|&a, &b| r[a].total_cmp(&r[b]).then(b.cmp(&a)))
                            .unwrap_or(0)
                    })
                    .collect();
                (p, pred)
            }
        }
    }

    /// The predicted classes of the rows of `x` with some columns permuted: `votes(cols,
    /// order)` gives row `i` the values of `cols` from row `order[i]` (permutation importance).
    /// The SVM updates kernel values it computed once; the others predict the permuted rows.
    pub fn permuted<'a>(&'a self, x: &'a Array2<f64>) -> Permuted<'a> {
        match self {
            Estimator::Svm(m) => Permuted::Svm(m.permuted(x)),
            other => Permuted::Rows(other, x),
        }
    }

    /// What was fitted, in the terms of the model: support vectors, trees and leaves, weights.
    pub fn describe(&self) -> ModelSize {
        match self {
            Estimator::Svm(m) => ModelSize::SupportVectors(m.support_vectors()),
            Estimator::Forest(m) => ModelSize::Trees {
                trees: m.trees(),
                leaves: m.size() as usize,
            },
            Estimator::Logistic(m) => ModelSize::Weights(m.size() as usize),
        }
    }

    /// Number of fitted values (support vectors × features, tree nodes, or weights).
    pub fn size(&self) -> i64 {
        match self {
            Estimator::Svm(m) => m.size(),
            Estimator::Forest(m) => m.size(),
            Estimator::Logistic(m) => m.size(),
        }
    }
}

/// [`Estimator::permuted`].
pub enum Permuted<'a> {
    Svm(svm::PermutedSvm<'a>),
    Rows(&'a Estimator, &'a Array2<f64>),
}

impl Permuted<'_> {
    pub fn votes(&self, cols: &[usize], order: &[usize]) -> Vec<usize> {
        match self {
            Permuted::Svm(p) => p.votes(cols, order),
            Permuted::Rows(m, x) => {
                let mut xs = (*x).clone();
                for (i, &src) in order.iter().enumerate() {
                    for &j in cols {
                        xs[[i, j]] = x[[src, j]];
                    }
                }
                m.predict(&xs).1
            }
        }
    }
}

/// Which classical model and its hyper-parameters (the `model:` block, tagged by family).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClassicalSpec {
    Svm(svm::SvmSpec),
    RandomForest(forest::ForestSpec),
    Logistic(logistic::LogisticSpec),
}

impl ClassicalSpec {
    pub fn family(&self) -> &'static str {
        match self {
            ClassicalSpec::Svm(_) => "svm",
            ClassicalSpec::RandomForest(_) => "random_forest",
            ClassicalSpec::Logistic(_) => "logistic",
        }
    }

    /// Fit on rows `x` with labels `y` in `0..k`; `class_weights`: scikit-learn's "balanced"
    /// weights where the model supports them (SVM).
    pub fn fit(
        &self,
        x: &Array2<f64>,
        y: &[usize],
        k: usize,
        class_weights: bool,
        seed: u64,
    ) -> Result<Estimator, ClassicalError> {
        Ok(match self {
            ClassicalSpec::Svm(s) => Estimator::Svm(svm::OvoSvm::fit(s, x, y, k, class_weights)?),
            ClassicalSpec::RandomForest(s) => {
                Estimator::Forest(forest::Forest::fit(s, x, y, k, seed)?)
            }
            ClassicalSpec::Logistic(s) => Estimator::Logistic(logistic::Logistic::fit(s, x, y, k)?),
        })
    }
}

/// scikit-learn's balanced class weights `n / (k · n_c)` (0 for absent classes).
pub fn balanced(y: &[usize], k: usize) -> Vec<f64> {
    let mut counts = vec![0usize; k];
    for &c in y {
        counts[c] += 1;
    }
    counts
        .iter()
        .map(|&n| {
            if n == 0 {
                0.0
            } else {
                y.len() as f64 / (k as f64 * n as f64)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three Gaussian blobs in 4-D, `n` points each, deterministic.
    fn blobs(n: usize, spread: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut s = seed;
        let mut gauss = || {
            // Box-Muller from a 64-bit LCG.
            let mut u = || {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            let (a, b) = (u(), u());
            (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
        };
        let centres = [
            [0.0, 0.0, 0.0, 0.0],
            [3.0, 0.0, 1.0, 0.0],
            [0.0, 3.0, 0.0, -1.0],
        ];
        let mut x = Array2::zeros((3 * n, 4));
        let mut y = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for i in 0..n {
                for d in 0..4 {
                    x[[c * n + i, d]] = centre[d] + spread * gauss();
                }
                y.push(c);
            }
        }
        (x, y)
    }

    fn accuracy(p: &[Vec<f32>], y: &[usize]) -> f64 {
        let hits = p
            .iter()
            .zip(y)
            .filter(|(row, &t)| {
                let best = (0..row.len())
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap();
                best == t
            })
            .count();
        hits as f64 / y.len() as f64
    }

    #[test]
    fn every_model_separates_blobs_and_gives_probabilities() {
        let (x, y) = blobs(40, 0.7, 1);
        let (xt, yt) = blobs(30, 0.7, 2);
        let specs = [
            ClassicalSpec::Svm(svm::SvmSpec::default()),
            ClassicalSpec::Svm(svm::SvmSpec {
                kernel: svm::Kernel::Linear,
                ..Default::default()
            }),
            ClassicalSpec::RandomForest(forest::ForestSpec::default()),
            ClassicalSpec::Logistic(logistic::LogisticSpec::default()),
        ];
        for spec in specs {
            let m = spec.fit(&x, &y, 3, true, 0).unwrap();
            let p = m.predict_proba(&xt);
            assert_eq!(p.len(), yt.len());
            for row in &p {
                let s: f32 = row.iter().sum();
                assert!((s - 1.0).abs() < 1e-4 && row.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            let acc = accuracy(&p, &yt);
            assert!(acc > 0.9, "{}: accuracy {acc}", spec.family());
            assert!(m.size() > 0);
        }
    }

    #[test]
    fn random_blobs_labels_stay_near_chance() {
        // Labels independent of the features: no model may score far above chance on new data.
        let (x, mut y) = blobs(40, 0.7, 3);
        y.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = (i * 7 + i / 3) % 3);
        let (xt, mut yt) = blobs(40, 0.7, 4);
        yt.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = (i * 5 + i / 2) % 3);
        let m = ClassicalSpec::Svm(svm::SvmSpec::default())
            .fit(&x, &y, 3, true, 0)
            .unwrap();
        let acc = accuracy(&m.predict_proba(&xt), &yt);
        assert!(acc < 0.6, "accuracy {acc} on unrelated labels");
    }

    #[test]
    fn the_same_rows_and_seed_give_the_same_model() {
        // linfa-trees' forests differed between two fits of the same rows (hash-map order).
        let (x, y) = blobs(30, 1.5, 5);
        let (xt, _) = blobs(20, 1.5, 6);
        for spec in [
            ClassicalSpec::Svm(svm::SvmSpec::default()),
            ClassicalSpec::RandomForest(forest::ForestSpec {
                trees: 40,
                ..Default::default()
            }),
            ClassicalSpec::Logistic(logistic::LogisticSpec::default()),
        ] {
            let a = spec.fit(&x, &y, 3, true, 7).unwrap().predict(&xt);
            let b = spec.fit(&x, &y, 3, true, 7).unwrap().predict(&xt);
            assert_eq!(a, b, "{}", spec.family());
        }
    }

    #[test]
    fn permuted_votes_are_the_votes_of_permuted_rows() {
        // The SVM updates kernel arguments column by column; the result must be what
        // predicting the permuted rows gives.
        let (x, y) = blobs(25, 1.2, 8);
        let order: Vec<usize> = (0..x.nrows()).map(|i| (i * 7 + 3) % x.nrows()).collect();
        for spec in [
            ClassicalSpec::Svm(svm::SvmSpec::default()),
            ClassicalSpec::Svm(svm::SvmSpec {
                kernel: svm::Kernel::Linear,
                ..Default::default()
            }),
            ClassicalSpec::Logistic(logistic::LogisticSpec::default()),
        ] {
            let m = spec.fit(&x, &y, 3, true, 0).unwrap();
            let p = m.permuted(&x);
            for cols in [vec![], vec![0], vec![1, 3], vec![0, 1, 2, 3]] {
                let mut xs = x.clone();
                for (i, &src) in order.iter().enumerate() {
                    for &j in &cols {
                        xs[[i, j]] = x[[src, j]];
                    }
                }
                assert_eq!(
                    p.votes(&cols, &order),
                    m.predict(&xs).1,
                    "{} columns {cols:?}",
                    spec.family()
                );
            }
        }
    }

    #[test]
    fn balanced_weights_are_sklearns() {
        assert_eq!(balanced(&[0, 0, 0, 1], 3), vec![4.0 / 9.0, 4.0 / 3.0, 0.0]);
    }
}
