//! Multi-class C-SVM: one binary machine per pair of classes (libsvm's and scikit-learn
//! `SVC`'s one-vs-one scheme), each solved by [`super::smo`] on one kernel matrix shared by
//! every pair and every Platt fold.
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
use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::smo::{self, KernelFn};
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

/// One pair's machine: its support vectors (positions in the model's union of support
/// vectors), their coefficients `y α`, the bias, and the sigmoid `(A, B)` of its decision value.
#[derive(Debug)]
struct PairMachine {
    sv: Vec<usize>,
    coef: Vec<f64>,
    rho: f64,
    platt: (f64, f64),
}

impl PairMachine {
    /// Decision value from the kernel values between a clip and every support vector.
    fn decision(&self, k: &[f64]) -> f64 {
        self.sv
            .iter()
            .zip(&self.coef)
            .map(|(&s, c)| c * k[s])
            .sum::<f64>()
            - self.rho
    }
}

/// Cross-validation folds of libsvm's probability estimates.
const PLATT_FOLDS: usize = 5;

/// The fitted pairwise machines over one set of support vectors (a clip that supports several
/// pairs is stored, and its kernel value computed, once, as libsvm does).
#[derive(Debug)]
pub struct OvoSvm {
    k: usize,
    kernel: KernelFn,
    /// `(a, b, machine)` for a < b; `None` when a class is absent from training.
    pairs: Vec<(usize, usize, Option<PairMachine>)>,
    /// The union of the pairs' support vectors and their squared norms.
    sv: Array2<f64>,
    sv_sq: Vec<f64>,
}

/// The folds of the rows of one pair for its Platt cross-validation: dealt round-robin within
/// each class, so that every fold has both classes.
fn platt_folds(y: &[bool]) -> Vec<usize> {
    let (mut p, mut q) = (0usize, 0usize);
    y.iter()
        .map(|&v| {
            let c = if v { &mut p } else { &mut q };
            *c += 1;
            (*c - 1) % PLATT_FOLDS
        })
        .collect()
}

impl OvoSvm {
    pub fn fit(
        spec: &SvmSpec,
        x: &Array2<f64>,
        y: &[usize],
        k: usize,
        class_weights: bool,
    ) -> Result<OvoSvm, ClassicalError> {
        Self::fit_with(spec, x, y, k, class_weights, smo::SHARED_MAX)
    }

    /// [`OvoSvm::fit`], sharing one kernel matrix when `x` has at most `shared_max` rows.
    fn fit_with(
        spec: &SvmSpec,
        x: &Array2<f64>,
        y: &[usize],
        k: usize,
        class_weights: bool,
        shared_max: usize,
    ) -> Result<OvoSvm, ClassicalError> {
        if !(spec.c > 0.0) {
            return Err(fit_error("svm", format!("c must be > 0, got {}", spec.c)));
        }
        let weights = if class_weights {
            super::balanced(y, k)
        } else {
            vec![1.0; k]
        };
        let kernel = match spec.kernel {
            Kernel::Linear => KernelFn::Linear,
            Kernel::Rbf => KernelFn::Rbf(match spec.gamma {
                Some(g) if g > 0.0 => g,
                Some(g) => return Err(fit_error("svm", format!("gamma must be > 0, got {g}"))),
                None => {
                    let var = x.var(0.0);
                    1.0 / (x.ncols() as f64 * if var > 0.0 { var } else { 1.0 })
                }
            }),
        };
        let gram = smo::Gram::new(x.view(), kernel, shared_max);
        // Each pair: its rows, labels (true: the first class) and Platt folds.
        struct Pair {
            a: usize,
            b: usize,
            rows: Vec<usize>,
            y: Vec<bool>,
            folds: Vec<usize>,
        }
        let pairs: Vec<Pair> = (0..k)
            .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
            .map(|(a, b)| {
                let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == a || y[i] == b).collect();
                let yb: Vec<bool> = rows.iter().map(|&i| y[i] == a).collect();
                let folds = platt_folds(&yb);
                Pair {
                    a,
                    b,
                    rows,
                    y: yb,
                    folds,
                }
            })
            .collect();
        let usable = |p: &Pair| p.y.iter().any(|&v| v) && p.y.iter().any(|&v| !v);
        // Every (pair, Platt fold) and every pair's final machine is an independent problem on
        // the shared matrix: all solved in parallel, each deterministic.
        let tasks: Vec<(usize, Option<usize>)> = (0..pairs.len())
            .filter(|&p| usable(&pairs[p]))
            .flat_map(|p| {
                (0..PLATT_FOLDS)
                    .map(move |f| (p, Some(f)))
                    .chain([(p, None)])
            })
            .collect();
        enum Done {
            /// Cross-validated decision values of the held rows `(position in pair, value)`.
            Held(Vec<(usize, f64)>),
            Final(smo::Solution),
        }
        let solve = |p: &Pair, keep: &[usize]| {
            let idx: Vec<usize> = keep.iter().map(|&t| p.rows[t]).collect();
            let yk: Vec<bool> = keep.iter().map(|&t| p.y[t]).collect();
            let sol = smo::solve(&smo::Problem {
                gram: &gram,
                kernel,
                idx: &idx,
                y: &yk,
                c_pos: spec.c * weights[p.a],
                c_neg: spec.c * weights[p.b],
                eps: spec.tol,
            });
            (idx, sol)
        };
        let done: Vec<Done> = tasks
            .par_iter()
            .map(|&(pi, fold)| {
                let p = &pairs[pi];
                let n = p.rows.len();
                match fold {
                    None => Done::Final(solve(p, &(0..n).collect::<Vec<_>>()).1),
                    Some(f) => {
                        let fit: Vec<usize> = (0..n).filter(|&t| p.folds[t] != f).collect();
                        let held: Vec<usize> = (0..n).filter(|&t| p.folds[t] == f).collect();
                        let (pos, neg) =
                            (fit.iter().any(|&t| p.y[t]), fit.iter().any(|&t| !p.y[t]));
                        if !(pos && neg) {
                            // One class only in this fold's training part: libsvm's fallback.
                            let v = if pos { 1.0 } else { -1.0 };
                            return Done::Held(held.iter().map(|&t| (t, v)).collect());
                        }
                        let (idx, sol) = solve(p, &fit);
                        Done::Held(
                            held.iter()
                                .map(|&t| {
                                    let r = p.rows[t];
                                    let d = idx
                                        .iter()
                                        .zip(&sol.coef)
                                        .filter(|(_, c)| **c != 0.0)
                                        .map(|(&s, c)| c * kernel.of(gram.arg(r, s)))
                                        .sum::<f64>()
                                        - sol.rho;
                                    (t, d)
                                })
                                .collect(),
                        )
                    }
                }
            })
            .collect();
        drop(gram);
        // Sigmoids from the held-out decisions; the union of the final machines' vectors.
        let platt_params = PlattParams::<f64, ()>::default()
            .check()
            .map_err(|e| fit_error("svm", e))?;
        let mut fitted: Vec<Option<((f64, f64), smo::Solution)>> = Vec::new();
        let mut it = done.into_iter();
        for p in &pairs {
            if !usable(p) {
                fitted.push(None);
                continue;
            }
            let mut dec = vec![0f64; p.rows.len()];
            for _ in 0..PLATT_FOLDS {
                match it.next() {
                    Some(Done::Held(v)) => v.into_iter().for_each(|(t, d)| dec[t] = d),
                    _ => unreachable!("tasks are in pair order, folds first"),
                }
            }
            let targets: Array1<bool> = p.y.iter().copied().collect();
            let platt =
                platt_newton_method(Array1::from(dec).view(), targets.view(), &platt_params)
                    .map_err(|e| fit_error("svm", e))?;
            let Some(Done::Final(sol)) = it.next() else {
                unreachable!("the final machine follows its folds")
            };
            fitted.push(Some((platt, sol)));
        }
        let mut in_union = vec![usize::MAX; x.nrows()];
        let mut union = Vec::new();
        for (p, f) in pairs.iter().zip(&fitted) {
            if let Some((_, sol)) = f {
                for (t, &c) in sol.coef.iter().enumerate() {
                    let r = p.rows[t];
                    if c != 0.0 && in_union[r] == usize::MAX {
                        in_union[r] = 0;
                        union.push(r);
                    }
                }
            }
        }
        union.sort_unstable();
        for (u, &r) in union.iter().enumerate() {
            in_union[r] = u;
        }
        let machines = pairs
            .iter()
            .zip(fitted)
            .map(|(p, f)| {
                let m = f.map(|(platt, sol)| {
                    let (sv, coef) = sol
                        .coef
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| **c != 0.0)
                        .map(|(t, &c)| (in_union[p.rows[t]], c))
                        .unzip();
                    PairMachine {
                        sv,
                        coef,
                        rho: sol.rho,
                        platt,
                    }
                });
                (p.a, p.b, m)
            })
            .collect();
        let sv = x.select(Axis(0), &union);
        let sv_sq = smo::squared_norms(sv.view());
        Ok(OvoSvm {
            k,
            kernel,
            pairs: machines,
            sv,
            sv_sq,
        })
    }

    /// Kernel arguments between the rows of `x` and the support vectors.
    fn arguments(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros((x.nrows(), self.sv.nrows()));
        let sq = smo::squared_norms(x.view());
        smo::arguments(
            self.kernel,
            x.view(),
            &sq,
            self.sv.view(),
            &self.sv_sq,
            out.view_mut(),
        );
        out
    }

    /// Pairwise votes and probabilities of one clip from its kernel values; `need_probs`:
    /// false when only the class is wanted (probabilities then only break tied votes).
    fn decide(&self, kv: &[f64], need_probs: bool) -> (Vec<f32>, usize) {
        let mut r = vec![vec![0.5f64; self.k]; self.k];
        let mut present = vec![false; self.k];
        let mut votes = vec![0usize; self.k];
        for (a, b, m) in &self.pairs {
            if let Some(m) = m {
                let d = m.decision(kv);
                votes[if d > 0.0 { *a } else { *b }] += 1;
                let p = (*platt_predict(d, m.platt.0, m.platt.1) as f64).clamp(1e-7, 1.0 - 1e-7);
                r[*a][*b] = p;
                r[*b][*a] = 1.0 - p;
                present[*a] = true;
                present[*b] = true;
            }
        }
        let top = votes.iter().copied().max().unwrap_or(0);
        if !need_probs && votes.iter().filter(|&&v| v == top).count() == 1 {
            let best = votes.iter().position(|&v| v == top).unwrap_or(0);
            return (Vec::new(), best);
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
    }

    /// Class probabilities and the voted class of every row.
    pub fn predict(&self, x: &Array2<f64>) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut args = self.arguments(x);
        // Rows are independent: scored in parallel, in order.
        args.outer_iter_mut()
            .into_par_iter()
            .map(|mut row| {
                row.mapv_inplace(|a| self.kernel.of(a));
                self.decide(row.as_slice().expect("rows are contiguous"), true)
            })
            .unzip()
    }

    pub fn predict_proba(&self, x: &Array2<f64>) -> Vec<Vec<f32>> {
        self.predict(x).0
    }

    /// Support vectors (clips that support at least one pair).
    pub fn support_vectors(&self) -> usize {
        self.sv.nrows()
    }

    pub fn size(&self) -> i64 {
        (self.sv.nrows() * self.sv.ncols()) as i64
    }

    /// A scorer of `x` with columns permuted (permutation importance): the kernel arguments of
    /// the unshuffled rows are computed once, and shuffling columns `cols` updates them by
    /// those columns' terms only (`O(|cols|)` per clip and support vector, not `O(features)`).
    pub fn permuted(&self, x: &Array2<f64>) -> PermutedSvm<'_> {
        PermutedSvm {
            svm: self,
            args: self.arguments(x),
            x: x.clone(),
            sv_t: self.sv.t().as_standard_layout().into_owned(),
        }
    }
}

/// [`OvoSvm::permuted`].
pub struct PermutedSvm<'a> {
    svm: &'a OvoSvm,
    args: Array2<f64>,
    x: Array2<f64>,
    /// Support vectors by feature (a column of them is contiguous).
    sv_t: Array2<f64>,
}

impl PermutedSvm<'_> {
    /// The voted class of every row when row `i` takes the values of `cols` from row
    /// `order[i]`.
    pub fn votes(&self, cols: &[usize], order: &[usize]) -> Vec<usize> {
        let svm = self.svm;
        let mut kv = vec![0f64; svm.sv.nrows()];
        (0..self.x.nrows())
            .map(|i| {
                kv.copy_from_slice(self.args.row(i).as_slice().expect("contiguous"));
                let src = order[i];
                if src != i {
                    for &j in cols {
                        let (old, new) = (self.x[[i, j]], self.x[[src, j]]);
                        if old == new {
                            continue;
                        }
                        let col = self.sv_t.row(j);
                        match svm.kernel {
                            // ‖x − s‖² changes by (new − s)² − (old − s)².
                            KernelFn::Rbf(_) => {
                                let (dn, sn) = (new - old, new + old);
                                for (a, &s) in kv.iter_mut().zip(col) {
                                    *a += dn * (sn - 2.0 * s);
                                }
                            }
                            KernelFn::Linear => {
                                let dn = new - old;
                                for (a, &s) in kv.iter_mut().zip(col) {
                                    *a += dn * s;
                                }
                            }
                        }
                    }
                    if matches!(svm.kernel, KernelFn::Rbf(_)) {
                        kv.iter_mut().for_each(|a| *a = a.max(0.0));
                    }
                }
                kv.iter_mut().for_each(|a| *a = svm.kernel.of(*a));
                svm.decide(&kv, false).1
            })
            .collect()
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
    fn kernel_rows_on_demand_give_the_shared_matrix_model() {
        // Corpora above smo::SHARED_MAX clips compute kernel rows on demand.
        let x = Array2::from_shape_fn((60, 3), |(i, j)| ((i * (j + 3) * 7919) % 101) as f64 / 50.0);
        let y: Vec<usize> = (0..60).map(|i| (i * 13 % 60) / 20).collect();
        let spec = SvmSpec::default();
        let a = OvoSvm::fit_with(&spec, &x, &y, 3, true, smo::SHARED_MAX).unwrap();
        let b = OvoSvm::fit_with(&spec, &x, &y, 3, true, 0).unwrap();
        let (pa, va) = a.predict(&x);
        let (pb, vb) = b.predict(&x);
        assert_eq!(va, vb);
        for (ra, rb) in pa.iter().zip(&pb) {
            for (u, v) in ra.iter().zip(rb) {
                // The shared matrix holds f32 arguments, rows on demand f64 ones: the solver
                // (stopping at tol 1e-3) takes a slightly different path.
                assert!((u - v).abs() < 2e-3, "{ra:?} vs {rb:?}");
            }
        }
        assert_eq!(a.support_vectors(), b.support_vectors());
    }

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
