//! The binary C-SVM dual solver: libsvm's SMO with second-order working-set selection (Fan,
//! Chen & Lin, JMLR 2005; `Solver::Solve` in libsvm's `svm.cpp`, which scikit-learn's `SVC`
//! runs), without shrinking.
//!
//! Kernel values come from [`Gram`]: the kernel's argument (squared distance for RBF, dot product
//! for linear) between every pair of training clips, computed once per fit with matrix products
//! and shared by every class pair and Platt fold, or computed row by row where that matrix would
//! not fit in memory. Each solver keeps its own LRU cache of kernel rows, as libsvm does.

use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView2};
use rayon::prelude::*;

/// The kernel function of the arguments [`Gram`] holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum KernelFn {
    /// `exp(−γ ‖x − x'‖²)`
    Rbf(f64),
    /// `x · x'`
    Linear,
}

impl KernelFn {
    /// The argument between two clips from their squared norms and dot product.
    #[inline]
    pub fn arg(self, sq_a: f64, sq_b: f64, dot: f64) -> f64 {
        match self {
            KernelFn::Rbf(_) => (sq_a + sq_b - 2.0 * dot).max(0.0),
            KernelFn::Linear => dot,
        }
    }

    /// The kernel value of an argument (squared distance or dot product).
    #[inline]
    pub fn of(self, arg: f64) -> f64 {
        match self {
            KernelFn::Rbf(g) => (-g * arg).exp(),
            KernelFn::Linear => arg,
        }
    }
}

/// Training clips above which the shared matrix (4 bytes per pair of clips, 1 GiB here) is not
/// built and kernel rows are computed on demand.
pub(super) const SHARED_MAX: usize = 16_384;

/// Kernel arguments between training clips.
pub(super) enum Gram<'a> {
    /// Row-major `n × n` arguments.
    Shared { n: usize, arg: Vec<f32> },
    /// Computed from the clips when asked.
    OnDemand {
        x: ArrayView2<'a, f64>,
        sq: Vec<f64>,
        kernel: KernelFn,
    },
}

/// Rows of `a` per matrix product when arguments are computed in blocks.
const BLOCK: usize = 256;

/// Kernel arguments `[a.nrows(), b.nrows()]` between the rows of `a` and of `b` (squared
/// norms `sq_a`, `sq_b`), in blocks of rows computed in parallel, written by `emit(row, args)`.
pub(super) fn arguments(
    kernel: KernelFn,
    a: ArrayView2<f64>,
    sq_a: &[f64],
    b: ArrayView2<f64>,
    sq_b: &[f64],
    mut out: ndarray::ArrayViewMut2<f64>,
) {
    let m = a.nrows();
    let bt = b.t();
    out.axis_chunks_iter_mut(ndarray::Axis(0), BLOCK)
        .into_par_iter()
        .enumerate()
        .for_each(|(blk, mut o)| {
            let r0 = blk * BLOCK;
            let r1 = (r0 + BLOCK).min(m);
            general_mat_mul(1.0, &a.slice(s![r0..r1, ..]), &bt, 0.0, &mut o);
            for (i, mut row) in o.outer_iter_mut().enumerate() {
                let si = sq_a[r0 + i];
                for (v, &sj) in row.iter_mut().zip(sq_b) {
                    *v = kernel.arg(si, sj, *v);
                }
            }
        });
}

/// Squared norm of every row.
pub(super) fn squared_norms(x: ArrayView2<f64>) -> Vec<f64> {
    x.outer_iter().map(|r| r.dot(&r)).collect()
}

impl<'a> Gram<'a> {
    /// The arguments of the rows of `x`: shared when `x` has at most `shared_max` rows.
    pub fn new(x: ArrayView2<'a, f64>, kernel: KernelFn, shared_max: usize) -> Gram<'a> {
        let n = x.nrows();
        let sq = squared_norms(x);
        if n > shared_max {
            return Gram::OnDemand { x, sq, kernel };
        }
        // Blocks of BLOCK rows in f64, stored as f32 (libsvm caches kernel values as float).
        let mut arg = vec![0f32; n * n];
        arg.par_chunks_mut(BLOCK * n.max(1))
            .enumerate()
            .for_each(|(blk, dst)| {
                let r0 = blk * BLOCK;
                let r1 = (r0 + BLOCK).min(n);
                let mut o = Array2::<f64>::zeros((r1 - r0, n));
                arguments(
                    kernel,
                    x.slice(s![r0..r1, ..]),
                    &sq[r0..r1],
                    x,
                    &sq,
                    o.view_mut(),
                );
                for (d, &v) in dst.iter_mut().zip(o.iter()) {
                    *d = v as f32;
                }
            });
        Gram::Shared { n, arg }
    }

    /// The argument between training rows `i` and `j`.
    pub fn arg(&self, i: usize, j: usize) -> f64 {
        match self {
            Gram::Shared { n, arg } => arg[i * n + j] as f64,
            Gram::OnDemand { x, sq, kernel } => kernel.arg(sq[i], sq[j], x.row(i).dot(&x.row(j))),
        }
    }

    /// Arguments between training row `i` and the rows `cols`.
    fn fill(&self, i: usize, cols: &[usize], out: &mut [f64]) {
        match self {
            Gram::Shared { n, arg } => {
                let r = &arg[i * n..(i + 1) * n];
                for (o, &c) in out.iter_mut().zip(cols) {
                    *o = r[c] as f64;
                }
            }
            Gram::OnDemand { .. } => {
                for (o, &c) in out.iter_mut().zip(cols) {
                    *o = self.arg(i, c);
                }
            }
        }
    }
}

/// One binary problem: training rows `idx` (into the [`Gram`]), their labels (`true`: +1) and
/// the penalty of each class.
pub(super) struct Problem<'g, 'a> {
    pub gram: &'g Gram<'a>,
    pub kernel: KernelFn,
    pub idx: &'g [usize],
    pub y: &'g [bool],
    pub c_pos: f64,
    pub c_neg: f64,
    /// Stopping tolerance on the maximal violating pair (libsvm's `eps`).
    pub eps: f64,
}

/// The solution: `coef[t] = y_t α_t` for each row of the problem, and the bias `rho`
/// (decision = Σ coef_t K(x_t, x) − rho).
pub(super) struct Solution {
    pub coef: Vec<f64>,
    pub rho: f64,
}

/// Bytes of kernel rows one solver may cache (libsvm's default `cache_size` is 200 MB).
const CACHE_BYTES: usize = 200 << 20;

/// Least-recently-used cache of the rows of `Q` (`Q_ij = y_i y_j K_ij`).
struct RowCache {
    l: usize,
    cap: usize,
    slot_of: Vec<usize>,
    owner: Vec<usize>,
    stamp: Vec<u64>,
    rows: Vec<Vec<f32>>,
    clock: u64,
    scratch: Vec<f64>,
}

const NONE: usize = usize::MAX;

impl RowCache {
    fn new(l: usize) -> RowCache {
        let cap = (CACHE_BYTES / (4 * l.max(1))).clamp(2, l.max(2));
        RowCache {
            l,
            cap,
            slot_of: vec![NONE; l],
            owner: Vec::new(),
            stamp: Vec::new(),
            rows: Vec::new(),
            clock: 0,
            scratch: vec![0.0; l],
        }
    }

    /// Row `i` of Q.
    fn get(&mut self, p: &Problem, i: usize) -> &[f32] {
        self.clock += 1;
        let slot = match self.slot_of[i] {
            NONE => {
                let slot = if self.rows.len() < self.cap {
                    self.rows.push(vec![0f32; self.l]);
                    self.owner.push(i);
                    self.stamp.push(0);
                    self.rows.len() - 1
                } else {
                    let old = (0..self.rows.len())
                        .min_by_key(|&s| self.stamp[s])
                        .expect("cache holds rows");
                    self.slot_of[self.owner[old]] = NONE;
                    self.owner[old] = i;
                    old
                };
                p.gram.fill(p.idx[i], p.idx, &mut self.scratch);
                let yi = p.y[i];
                for ((q, &a), &yj) in self.rows[slot].iter_mut().zip(&self.scratch).zip(p.y) {
                    let k = p.kernel.of(a);
                    *q = if yi == yj { k } else { -k } as f32;
                }
                self.slot_of[i] = slot;
                slot
            }
            s => s,
        };
        self.stamp[slot] = self.clock;
        &self.rows[slot]
    }
}

/// libsvm's `TAU`: the smallest curvature used in a step.
const TAU: f64 = 1e-12;

/// Solve the dual `min ½ αᵀQα − Σα, 0 ≤ α_t ≤ C_t, yᵀα = 0` (libsvm's C-SVC).
pub(super) fn solve(p: &Problem) -> Solution {
    let l = p.idx.len();
    let ys: Vec<f64> = p.y.iter().map(|&v| if v { 1.0 } else { -1.0 }).collect();
    let c: Vec<f64> =
        p.y.iter()
            .map(|&v| if v { p.c_pos } else { p.c_neg })
            .collect();
    let qd: Vec<f64> = p
        .idx
        .iter()
        .map(|&i| p.kernel.of(p.gram.arg(i, i)))
        .collect();
    let mut alpha = vec![0f64; l];
    let mut g = vec![-1f64; l];
    let mut cache = RowCache::new(l);
    let (mut qi, mut qj) = (vec![0f32; l], vec![0f32; l]);
    let upper = |a: &[f64], t: usize| a[t] >= c[t];
    let lower = |a: &[f64], t: usize| a[t] <= 0.0;
    let max_iter = 10_000_000usize.max(100 * l);
    for _ in 0..max_iter {
        // Working set: i maximal violator (first order), j by the second-order gain.
        let mut gmax = f64::NEG_INFINITY;
        let mut gmax_idx = NONE;
        for t in 0..l {
            if ys[t] > 0.0 {
                if !upper(&alpha, t) && -g[t] >= gmax {
                    gmax = -g[t];
                    gmax_idx = t;
                }
            } else if !lower(&alpha, t) && g[t] >= gmax {
                gmax = g[t];
                gmax_idx = t;
            }
        }
        if gmax_idx == NONE {
            break;
        }
        let i = gmax_idx;
        qi.copy_from_slice(cache.get(p, i));
        let mut gmax2 = f64::NEG_INFINITY;
        let mut gmin_idx = NONE;
        let mut obj_min = f64::INFINITY;
        for j in 0..l {
            if ys[j] > 0.0 {
                if !lower(&alpha, j) {
                    let grad_diff = gmax + g[j];
                    if g[j] >= gmax2 {
                        gmax2 = g[j];
                    }
                    if grad_diff > 0.0 {
                        let quad = qd[i] + qd[j] - 2.0 * ys[i] * qi[j] as f64;
                        let obj = -(grad_diff * grad_diff) / if quad > 0.0 { quad } else { TAU };
                        if obj <= obj_min {
                            gmin_idx = j;
                            obj_min = obj;
                        }
                    }
                }
            } else if !upper(&alpha, j) {
                let grad_diff = gmax - g[j];
                if -g[j] >= gmax2 {
                    gmax2 = -g[j];
                }
                if grad_diff > 0.0 {
                    let quad = qd[i] + qd[j] + 2.0 * ys[i] * qi[j] as f64;
                    let obj = -(grad_diff * grad_diff) / if quad > 0.0 { quad } else { TAU };
                    if obj <= obj_min {
                        gmin_idx = j;
                        obj_min = obj;
                    }
                }
            }
        }
        if gmax + gmax2 < p.eps || gmin_idx == NONE {
            break;
        }
        let j = gmin_idx;
        qj.copy_from_slice(cache.get(p, j));
        let (ci, cj) = (c[i], c[j]);
        let (old_i, old_j) = (alpha[i], alpha[j]);
        if ys[i] != ys[j] {
            let mut quad = qd[i] + qd[j] + 2.0 * qi[j] as f64;
            if quad <= 0.0 {
                quad = TAU;
            }
            let delta = (-g[i] - g[j]) / quad;
            let diff = alpha[i] - alpha[j];
            alpha[i] += delta;
            alpha[j] += delta;
            if diff > 0.0 {
                if alpha[j] < 0.0 {
                    alpha[j] = 0.0;
                    alpha[i] = diff;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = -diff;
            }
            if diff > ci - cj {
                if alpha[i] > ci {
                    alpha[i] = ci;
                    alpha[j] = ci - diff;
                }
            } else if alpha[j] > cj {
                alpha[j] = cj;
                alpha[i] = cj + diff;
            }
        } else {
            let mut quad = qd[i] + qd[j] - 2.0 * qi[j] as f64;
            if quad <= 0.0 {
                quad = TAU;
            }
            let delta = (g[i] - g[j]) / quad;
            let sum = alpha[i] + alpha[j];
            alpha[i] -= delta;
            alpha[j] += delta;
            if sum > ci {
                if alpha[i] > ci {
                    alpha[i] = ci;
                    alpha[j] = sum - ci;
                }
            } else if alpha[j] < 0.0 {
                alpha[j] = 0.0;
                alpha[i] = sum;
            }
            if sum > cj {
                if alpha[j] > cj {
                    alpha[j] = cj;
                    alpha[i] = sum - cj;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = sum;
            }
        }
        let (di, dj) = (alpha[i] - old_i, alpha[j] - old_j);
        for ((gt, &a), &b) in g.iter_mut().zip(&qi).zip(&qj) {
            *gt += a as f64 * di + b as f64 * dj;
        }
    }
    // rho: the mean of y·G over free variables, else the middle of the feasible interval.
    let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut nr_free, mut sum_free) = (0usize, 0f64);
    for t in 0..l {
        let yg = ys[t] * g[t];
        if upper(&alpha, t) {
            if ys[t] < 0.0 {
                ub = ub.min(yg);
            } else {
                lb = lb.max(yg);
            }
        } else if lower(&alpha, t) {
            if ys[t] > 0.0 {
                ub = ub.min(yg);
            } else {
                lb = lb.max(yg);
            }
        } else {
            nr_free += 1;
            sum_free += yg;
        }
    }
    let rho = if nr_free > 0 {
        sum_free / nr_free as f64
    } else {
        (ub + lb) / 2.0
    };
    Solution {
        coef: alpha.iter().zip(&ys).map(|(a, y)| a * y).collect(),
        rho,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two separable clusters in 2-D.
    fn toy() -> (Array2<f64>, Vec<bool>) {
        let pts = [
            (0.0, 0.0, true),
            (0.5, 0.2, true),
            (0.1, 0.6, true),
            (2.0, 2.0, false),
            (2.5, 1.8, false),
            (1.9, 2.6, false),
            (1.0, 1.1, true),
            (1.4, 1.2, false),
        ];
        let x = Array2::from_shape_fn(
            (pts.len(), 2),
            |(i, j)| {
                if j == 0 {
                    pts[i].0
                } else {
                    pts[i].1
                }
            },
        );
        (x, pts.iter().map(|p| p.2).collect())
    }

    #[test]
    fn the_solution_satisfies_the_dual_constraints_and_the_kkt_conditions() {
        let (x, y) = toy();
        for kernel in [KernelFn::Rbf(0.7), KernelFn::Linear] {
            let gram = Gram::new(x.view(), kernel, SHARED_MAX);
            let idx: Vec<usize> = (0..x.nrows()).collect();
            let (cp, cn) = (1.0, 2.0);
            let sol = solve(&Problem {
                gram: &gram,
                kernel,
                idx: &idx,
                y: &y,
                c_pos: cp,
                c_neg: cn,
                eps: 1e-6,
            });
            // Σ y α = 0 and 0 ≤ α ≤ C.
            let sum: f64 = sol.coef.iter().sum();
            assert!(sum.abs() < 1e-9, "{sum}");
            for (t, &v) in sol.coef.iter().enumerate() {
                let a = v.abs();
                let c = if y[t] { cp } else { cn };
                assert!(a <= c + 1e-12 && (v == 0.0 || (v > 0.0) == y[t]));
            }
            // KKT: margin ≥ 1 at α = 0, ≤ 1 at α = C, = 1 between.
            for t in 0..x.nrows() {
                let f: f64 = (0..x.nrows())
                    .map(|s| sol.coef[s] * kernel.of(gram.arg(s, t)))
                    .sum::<f64>()
                    - sol.rho;
                let m = if y[t] { f } else { -f };
                let (a, c) = (sol.coef[t].abs(), if y[t] { cp } else { cn });
                if a == 0.0 {
                    assert!(m >= 1.0 - 1e-4, "{kernel:?} row {t}: margin {m} at α = 0");
                } else if a >= c {
                    assert!(m <= 1.0 + 1e-4, "{kernel:?} row {t}: margin {m} at α = C");
                } else {
                    assert!((m - 1.0).abs() < 1e-4, "{kernel:?} row {t}: margin {m}");
                }
            }
        }
    }

    #[test]
    fn rows_on_demand_and_a_tiny_cache_give_the_shared_solution() {
        let (x, y) = toy();
        let kernel = KernelFn::Rbf(0.5);
        let idx: Vec<usize> = (0..x.nrows()).collect();
        let shared = Gram::new(x.view(), kernel, SHARED_MAX);
        let demand = Gram::new(x.view(), kernel, 0);
        assert!(matches!(demand, Gram::OnDemand { .. }));
        let run = |gram: &Gram| {
            solve(&Problem {
                gram,
                kernel,
                idx: &idx,
                y: &y,
                c_pos: 1.0,
                c_neg: 1.0,
                eps: 1e-3,
            })
        };
        let (a, b) = (run(&shared), run(&demand));
        for (u, v) in a.coef.iter().zip(&b.coef) {
            assert!((u - v).abs() < 1e-6, "{:?} vs {:?}", a.coef, b.coef);
        }
        assert!((a.rho - b.rho).abs() < 1e-6);
        // A cache of two rows evicts on every miss and must not change the answer.
        let mut cache = RowCache::new(idx.len());
        cache.cap = 2;
        let p = Problem {
            gram: &shared,
            kernel,
            idx: &idx,
            y: &y,
            c_pos: 1.0,
            c_neg: 1.0,
            eps: 1e-3,
        };
        let first: Vec<f32> = cache.get(&p, 3).to_vec();
        cache.get(&p, 0);
        cache.get(&p, 1);
        assert_eq!(cache.get(&p, 3), &first[..]);
        assert_eq!(cache.rows.len(), 2);
    }
}
