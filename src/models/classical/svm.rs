//! Multi-class C-SVM: one binary linfa-svm machine per pair of classes (libsvm's and
//! scikit-learn `SVC`'s one-vs-one scheme).
//!
//! * Prediction: the class with most pairwise wins (libsvm's vote; ties go to the more probable
//!   class), exactly what `SVC.predict` does.
//! * Probabilities (for fusion and reports), as libsvm's `-b 1`: each pair's sigmoid (Platt) is
//!   fitted on decision values of 5-fold cross-validation inside the pair's training clips (not
//!   on the training decisions themselves, which sit at the margins and give over-confident,
//!   mis-ranked probabilities), and the pairwise probabilities are coupled (Wu, Lin & Weng 2004).

use linfa::composing::platt_scaling::{platt_newton_method, platt_predict};
use linfa::composing::PlattParams;
use linfa::prelude::*;
use linfa::Dataset as LinfaDataset;
use linfa_svm::Svm;
use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{fit_error, ClassicalError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    #[default]
    Rbf,
    Linear,
}

/// `model: {family: svm, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SvmSpec {
    pub kernel: Kernel,
    /// Soft-margin penalty.
    pub c: f64,
    /// RBF width `exp(−γ‖x − x'‖²)`; `null`: scikit-learn's `scale`, 1 / (n_features · Var(X)).
    pub gamma: Option<f64>,
    /// Stopping tolerance of the SMO solver (libsvm's `eps`).
    pub tol: f64,
}

impl Default for SvmSpec {
    fn default() -> Self {
        SvmSpec {
            kernel: Kernel::Rbf,
            c: 1.0,
            gamma: None,
            tol: 1e-3,
        }
    }
}

/// One pair's machine (decision > 0: the first class) and its sigmoid `(A, B)`.
#[derive(Debug)]
pub struct PairMachine {
    svm: Svm<f64, bool>,
    platt: (f64, f64),
}

impl PairMachine {
    fn decision(&self, x: ndarray::ArrayView1<f64>) -> f64 {
        self.svm.weighted_sum(&x) - self.svm.rho
    }
}

/// Cross-validation folds of libsvm's probability estimates.
const PLATT_FOLDS: usize = 5;

/// The fitted pairwise machines.
#[derive(Debug)]
pub struct OvoSvm {
    k: usize,
    /// `(a, b, machine)` for a < b; `None` when a class is absent from training.
    pairs: Vec<(usize, usize, Option<PairMachine>)>,
    features: usize,
}

/// One pair's binary problem: the kernel, and C for the positive and the negative class.
struct Binary<'a> {
    spec: &'a SvmSpec,
    gamma: f64,
    c_pos: f64,
    c_neg: f64,
}

impl Binary<'_> {
    fn fit(&self, x: &Array2<f64>, y: &Array1<bool>) -> Result<Svm<f64, bool>, ClassicalError> {
        let params = Svm::<f64, bool>::params()
            .pos_neg_weights(self.c_pos, self.c_neg)
            .eps(self.spec.tol);
        let params = match self.spec.kernel {
            Kernel::Rbf => params.gaussian_kernel(1.0 / self.gamma),
            Kernel::Linear => params.linear_kernel(),
        };
        params
            .fit(&LinfaDataset::new(x.clone(), y.clone()))
            .map_err(|e| fit_error("svm", e))
    }

    /// Decision values of each row from a machine that did not see it (`PLATT_FOLDS`-fold,
    /// the rows dealt round-robin within each class so that every fold has both classes).
    fn cv_decisions(&self, x: &Array2<f64>, y: &Array1<bool>) -> Result<Vec<f64>, ClassicalError> {
        let n = y.len();
        let mut fold = vec![0usize; n];
        let (mut p, mut q) = (0usize, 0usize);
        for i in 0..n {
            if y[i] {
                fold[i] = p % PLATT_FOLDS;
                p += 1;
            } else {
                fold[i] = q % PLATT_FOLDS;
                q += 1;
            }
        }
        let mut dec = vec![0f64; n];
        for f in 0..PLATT_FOLDS {
            let fit: Vec<usize> = (0..n).filter(|&i| fold[i] != f).collect();
            let held: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
            if held.is_empty() {
                continue;
            }
            let yf: Array1<bool> = fit.iter().map(|&i| y[i]).collect();
            let (pos, neg) = (yf.iter().any(|&v| v), yf.iter().any(|&v| !v));
            if !(pos && neg) {
                // One class only in this fold's training part: libsvm's fallback.
                for &i in &held {
                    dec[i] = if pos { 1.0 } else { -1.0 };
                }
                continue;
            }
            let m = self.fit(&x.select(Axis(0), &fit), &yf)?;
            for &i in &held {
                dec[i] = m.weighted_sum(&x.row(i)) - m.rho;
            }
        }
        Ok(dec)
    }
}

impl OvoSvm {
    pub fn fit(
        spec: &SvmSpec,
        x: &Array2<f64>,
        y: &[usize],
        k: usize,
        class_weights: bool,
    ) -> Result<OvoSvm, ClassicalError> {
        if !(spec.c > 0.0) {
            return Err(fit_error("svm", format!("c must be > 0, got {}", spec.c)));
        }
        let weights = if class_weights {
            super::balanced(y, k)
        } else {
            vec![1.0; k]
        };
        let gamma = match spec.gamma {
            Some(g) if g > 0.0 => g,
            Some(g) => return Err(fit_error("svm", format!("gamma must be > 0, got {g}"))),
            None => {
                let var = x.var(0.0);
                1.0 / (x.ncols() as f64 * if var > 0.0 { var } else { 1.0 })
            }
        };
        // Pairs are independent problems: fitted in parallel (each deterministic, so the
        // result does not depend on the thread count).
        let todo: Vec<(usize, usize)> = (0..k)
            .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
            .collect();
        let pairs = todo
            .into_par_iter()
            .map(|(a, b)| -> Result<_, ClassicalError> {
                let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == a || y[i] == b).collect();
                let has = |c: usize| rows.iter().any(|&i| y[i] == c);
                if !has(a) || !has(b) {
                    return Ok((a, b, None));
                }
                let records = x.select(Axis(0), &rows);
                let targets: Array1<bool> = rows.iter().map(|&i| y[i] == a).collect();
                let pair = Binary {
                    spec,
                    gamma,
                    c_pos: spec.c * weights[a],
                    c_neg: spec.c * weights[b],
                };
                let dec = pair.cv_decisions(&records, &targets)?;
                let platt_params = PlattParams::<f64, ()>::default()
                    .check()
                    .map_err(|e| fit_error("svm", e))?;
                let platt =
                    platt_newton_method(Array1::from(dec).view(), targets.view(), &platt_params)
                        .map_err(|e| fit_error("svm", e))?;
                let svm = pair.fit(&records, &targets)?;
                Ok((a, b, Some(PairMachine { svm, platt })))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OvoSvm {
            k,
            pairs,
            features: x.ncols(),
        })
    }

    /// Class probabilities and the voted class of every row.
    pub fn predict(&self, x: &Array2<f64>) -> (Vec<Vec<f32>>, Vec<usize>) {
        // Rows are independent: scored in parallel, in order.
        (0..x.nrows())
            .into_par_iter()
            .map(|i| {
                let row = x.row(i);
                let mut r = vec![vec![0.5f64; self.k]; self.k];
                let mut present = vec![false; self.k];
                let mut votes = vec![0usize; self.k];
                for (a, b, m) in &self.pairs {
                    if let Some(m) = m {
                        let d = m.decision(row);
                        votes[if d > 0.0 { *a } else { *b }] += 1;
                        let p = (*platt_predict(d, m.platt.0, m.platt.1) as f64)
                            .clamp(1e-7, 1.0 - 1e-7);
                        r[*a][*b] = p;
                        r[*b][*a] = 1.0 - p;
                        present[*a] = true;
                        present[*b] = true;
                    }
                }
                let probs = couple(&r, &present);
                let best = (0..self.k)
                    .max_by(|&i, &j| {
                        votes[i]
                            .cmp(&votes[j])
                            .then(probs[i].total_cmp(&probs[j]))
                            .then(j.cmp(&i))
                    })
                    .unwrap_or(0);
                (probs, best)
            })
            .unzip()
    }

    pub fn predict_proba(&self, x: &Array2<f64>) -> Vec<Vec<f32>> {
        self.predict(x).0
    }

    pub fn size(&self) -> i64 {
        self.pairs
            .iter()
            .filter_map(|(_, _, m)| m.as_ref())
            .map(|m| (m.svm.nsupport() * self.features) as i64)
            .sum()
    }
}

/// Class probabilities from pairwise ones `r[i][j] = P(i | i or j)`: libsvm's
/// `multiclass_probability` (Wu, Lin & Weng 2004, method 2) over the classes present in
/// training; absent classes get 0.
pub fn couple(r: &[Vec<f64>], present: &[bool]) -> Vec<f32> {
    let idx: Vec<usize> = (0..present.len()).filter(|&i| present[i]).collect();
    let k = idx.len();
    let mut out = vec![0f32; present.len()];
    if k == 0 {
        return out;
    }
    if k == 1 {
        out[idx[0]] = 1.0;
        return out;
    }
    let mut q = vec![vec![0f64; k]; k];
    for t in 0..k {
        for j in 0..k {
            if j != t {
                let (it, ij) = (idx[t], idx[j]);
                q[t][t] += r[ij][it] * r[ij][it];
                q[t][j] = -r[ij][it] * r[it][ij];
            }
        }
    }
    let mut p = vec![1.0 / k as f64; k];
    let mut qp = vec![0f64; k];
    let eps = 0.005 / k as f64;
    for _ in 0..100.max(k) {
        let mut pqp = 0.0;
        for t in 0..k {
            qp[t] = (0..k).map(|j| q[t][j] * p[j]).sum();
            pqp += p[t] * qp[t];
        }
        let max_err = (0..k).map(|t| (qp[t] - pqp).abs()).fold(0.0, f64::max);
        if max_err < eps {
            break;
        }
        for t in 0..k {
            let diff = (-qp[t] + pqp) / q[t][t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * q[t][t] + 2.0 * qp[t])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[t][j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
    let s: f64 = p.iter().map(|v| v.max(0.0)).sum();
    for (t, &i) in idx.iter().enumerate() {
        out[i] = (p[t].max(0.0) / s.max(1e-12)) as f32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coupling_recovers_consistent_pairwise_probabilities() {
        // r_ij = p_i / (p_i + p_j) for p = (0.6, 0.3, 0.1): coupling gives p back.
        let p = [0.6, 0.3, 0.1];
        let r: Vec<Vec<f64>> = (0..3)
            .map(|i| (0..3).map(|j| p[i] / (p[i] + p[j])).collect())
            .collect();
        let got = couple(&r, &[true; 3]);
        for (a, b) in got.iter().zip(p) {
            assert!((*a as f64 - b).abs() < 5e-3, "{got:?}");
        }
        let got = couple(&r, &[true, false, true]);
        assert_eq!(got[1], 0.0);
        assert!((got[0] - 0.6 / 0.7).abs() < 5e-3, "{got:?}");
    }
}
