//! Probabilistic YIN (Mauch & Dixon, ICASSP 2014) as `librosa.pyin` (0.11) computes it:
//! YIN's cumulative-mean-normalised difference per frame, F0 candidates at its troughs weighted
//! over a Beta(2, 18) prior on thresholds and a Boltzmann prior favouring short periods, then a
//! Viterbi pass over 0.1-semitone pitch bins × {voiced, unvoiced} with local (triangular) pitch
//! transitions and a 1 % voicing switch probability. The decoded F0 is the pitch bin's centre.
//!
//! Frames are `frame` samples, `hop` apart, not centred (`librosa.pyin(..., center=False)`).
//!
//! The search is librosa's, state for state; what differs is the arithmetic's layout. The
//! difference function's autocorrelation uses the shortest fast FFT that holds a frame and its
//! largest lag without wrapping (2^a·3^b samples), the threshold prior is summed per trough over
//! the thresholds it lies below, and the Viterbi band maximum runs along the pitch bins, blocked
//! in registers, vectorised (AVX-512 or AVX2 when the CPU has them, [`band_max`]).

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use crate::dsp::simd::avx2_dispatch;

/// `librosa.pyin` defaults beyond the frame, hop and F0 range.
const N_THRESHOLDS: usize = 100;
const BETA: (u32, u32) = (2, 18);
const BOLTZMANN: f64 = 2.0;
const BINS_PER_SEMITONE: usize = 10;
const MAX_TRANSITION_RATE: f64 = 35.92;
const SWITCH_PROB: f64 = 0.01;
const NO_TROUGH_PROB: f64 = 0.01;

/// One frame's decoded pitch: F0 (Hz, the bin centre) when voiced, and the refined period (in
/// samples) of the YIN trough nearest that pitch, for the cycle-level measures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PyinFrame {
    pub voiced: bool,
    pub f0: f32,
    pub period: f32,
}

/// One frame's observation: the voiced candidates `(bin, probability, period)`.
type Candidates = Vec<(usize, f64, f64)>;

/// A planned pYIN tracker for one frame length, hop, rate and F0 range (thread-shareable).
pub struct Pyin {
    sr: f64,
    frame: usize,
    fmin: f64,
    min_period: usize,
    max_period: usize,
    n_fft: usize,
    fft: Arc<dyn RealToComplex<f64>>,
    ifft: Arc<dyn realfft::ComplexToReal<f64>>,
    beta_probs: Vec<f64>,
    /// `e^(−λk)` of the Boltzmann prior (λ = 2) for k = 0..=the number of possible troughs.
    decay: Vec<f64>,
    n_bins: usize,
    /// Half the pitch transition band, in bins.
    half: usize,
    /// `n_bins` rounded up to whole blocks of [`band_max`] (the bins past `n_bins` are −∞).
    padded_bins: usize,
    /// `log P(bj + k − half → bj)` at `[k · padded_bins + bj]` for band offset k (triangular
    /// weights row-normalised over each source bin's band; −∞ where the source is out of range).
    trans: Vec<f64>,
}

/// Regularised incomplete beta `I_x(a, b)` for positive integers: `P(Binomial(a+b-1, x) ≥ a)`.
fn beta_cdf(x: f64, a: u32, b: u32) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let n = a + b - 1;
    let mut below = 0.0;
    let mut binom = 1.0f64;
    for j in 0..a {
        if j > 0 {
            binom *= (n - j + 1) as f64 / j as f64;
        }
        below += binom * x.powi(j as i32) * (1.0 - x).powi((n - j) as i32);
    }
    1.0 - below
}

/// `scipy.stats.boltzmann.pmf(k, λ, n)` (the tracker evaluates it from [`Pyin`]'s table).
#[cfg(test)]
fn boltzmann(k: usize, lambda: f64, n: usize) -> f64 {
    (1.0 - (-lambda).exp()) * (-lambda * k as f64).exp() / (1.0 - (-lambda * n as f64).exp())
}

/// The smallest `2^a · 3^b ≥ n` (a ≥ 1): an FFT length rustfft handles fast.
fn fast_len(n: usize) -> usize {
    let mut best = n.next_power_of_two().max(2);
    let mut p3 = 1;
    while p3 < best {
        let mut m = 2 * p3;
        while m < n {
            m *= 2;
        }
        best = best.min(m);
        p3 *= 3;
    }
    best
}

/// The first threshold index `t` (thresholds `(t + 1) / 100`) that `v` lies below;
/// [`N_THRESHOLDS`] when it is below none (or NaN).
fn first_threshold(v: f64) -> usize {
    let thr = |t: usize| (t + 1) as f64 / N_THRESHOLDS as f64;
    let mut t = ((v * N_THRESHOLDS as f64).floor().max(0.0) as usize).min(N_THRESHOLDS);
    while t > 0 && v < thr(t - 1) {
        t -= 1;
    }
    while t < N_THRESHOLDS && !(v < thr(t)) {
        t += 1;
    }
    t
}

/// Per-call buffers of the difference function.
struct Scratch {
    x: Vec<f64>,
    input: Vec<f64>,
    spec: Vec<realfft::num_complex::Complex<f64>>,
    acf: Vec<f64>,
    fft: Vec<realfft::num_complex::Complex<f64>>,
    ifft: Vec<realfft::num_complex::Complex<f64>>,
    yin: Vec<f64>,
}

impl Pyin {
    pub fn new(sample_rate: f32, frame: usize, hop: usize, fmin: f32, fmax: f32) -> Pyin {
        let sr = sample_rate as f64;
        let min_period = (sr / fmax as f64).floor() as usize;
        let max_period = ((sr / fmin as f64).ceil() as usize).min(frame - 1);
        let n_fft = fast_len(frame + max_period);
        let mut planner = RealFftPlanner::<f64>::new();
        let thresholds: Vec<f64> = (0..=N_THRESHOLDS)
            .map(|i| i as f64 / N_THRESHOLDS as f64)
            .collect();
        let cdf: Vec<f64> = thresholds
            .iter()
            .map(|&t| beta_cdf(t, BETA.0, BETA.1))
            .collect();
        let beta_probs = cdf.windows(2).map(|w| w[1] - w[0]).collect();
        let n_bins = (12.0 * BINS_PER_SEMITONE as f64 * (fmax as f64 / fmin as f64).log2()).floor()
            as usize
            + 1;
        let per_frame = (MAX_TRANSITION_RATE * 12.0 * hop as f64 / sr).round() as usize;
        let width = per_frame * BINS_PER_SEMITONE + 1;
        let half = width / 2;
        // scipy's symmetric triangle of odd length w: 1 − |n − (w−1)/2| / ((w+1)/2).
        let tri = |d: usize| -> f64 { 1.0 - d as f64 / ((width + 1) as f64 / 2.0) };
        let row_sum: Vec<f64> = (0..n_bins)
            .map(|i| {
                let lo = i.saturating_sub(half);
                let hi = (i + half).min(n_bins - 1);
                (lo..=hi).map(|j| tri(i.abs_diff(j))).sum()
            })
            .collect();
        let band = 2 * half + 1;
        let padded_bins = n_bins.div_ceil(BAND_MAX_BLOCK) * BAND_MAX_BLOCK;
        let mut trans = vec![f64::NEG_INFINITY; band * padded_bins];
        for k in 0..band {
            for bj in 0..n_bins {
                if let Some(bi) = (bj + k).checked_sub(half).filter(|&bi| bi < n_bins) {
                    trans[k * padded_bins + bj] =
                        (tri(bi.abs_diff(bj)) / row_sum[bi] + f64::MIN_POSITIVE).ln();
                }
            }
        }
        Pyin {
            sr,
            frame,
            fmin: fmin as f64,
            min_period,
            max_period,
            n_fft,
            fft: planner.plan_fft_forward(n_fft),
            ifft: planner.plan_fft_inverse(n_fft),
            beta_probs,
            decay: (0..=max_period + 1)
                .map(|k| (-BOLTZMANN * k as f64).exp())
                .collect(),
            n_bins,
            half,
            padded_bins,
            trans,
        }
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            x: vec![0f64; self.frame],
            input: self.fft.make_input_vec(),
            spec: self.fft.make_output_vec(),
            acf: self.ifft.make_output_vec(),
            fft: self.fft.make_scratch_vec(),
            ifft: self.ifft.make_scratch_vec(),
            yin: Vec::with_capacity(self.max_period + 1),
        }
    }

    /// librosa's `_cumulative_mean_normalized_difference` of `sc.x`, over periods
    /// `min_period..=max_period`, into `sc.yin`.
    fn cmnd(&self, sc: &mut Scratch) {
        let x = &sc.x;
        sc.input.fill(0.0);
        sc.input[..x.len()].copy_from_slice(x);
        self.fft
            .process_with_scratch(&mut sc.input, &mut sc.spec, &mut sc.fft)
            .expect("planned sizes");
        for c in sc.spec.iter_mut() {
            *c = realfft::num_complex::Complex::new(c.norm_sqr(), 0.0);
        }
        self.ifft
            .process_with_scratch(&mut sc.spec, &mut sc.acf, &mut sc.ifft)
            .expect("planned sizes");
        let scale = 1.0 / self.n_fft as f64;
        let acf0 = sc.acf[0] * scale;
        // d(k) = 2 (ACF(0) − ACF(k)) − Σ_{m<k} y(m)², then d(k) over its running mean.
        sc.yin.clear();
        let (mut cum, mut run) = (0.0, 0.0);
        for k in 1..=self.max_period {
            cum += x[k - 1] * x[k - 1];
            let d = 2.0 * (acf0 - sc.acf[k] * scale) - cum;
            run += d;
            if k >= self.min_period {
                let mean = run / k as f64;
                sc.yin.push(d / (mean + f64::MIN_POSITIVE));
            }
        }
    }

    /// The voiced candidates of one frame's difference function: its troughs with their
    /// probabilities under the threshold and Boltzmann priors (those above 0).
    fn candidates(&self, yin: &[f64]) -> Candidates {
        let n = yin.len();
        let nb = self.n_bins;
        // Troughs: librosa.util.localmin, and index 0 when below index 1.
        let troughs: Vec<usize> = (0..n)
            .filter(|&i| {
                if i == 0 {
                    n > 1 && yin[0] < yin[1]
                } else {
                    yin[i] < yin[i - 1] && (i + 1 == n || yin[i] <= yin[i + 1])
                }
            })
            .collect();
        if troughs.is_empty() {
            return Vec::new();
        }
        // Trough j lies below thresholds first[j]..; at threshold t, the troughs below it, in
        // order, share boltzmann(pos, λ, count_t).
        let first: Vec<usize> = troughs.iter().map(|&i| first_threshold(yin[i])).collect();
        let mut count = [0usize; N_THRESHOLDS + 1];
        for &f in &first {
            count[f] += 1;
        }
        for t in 1..=N_THRESHOLDS {
            count[t] += count[t - 1];
        }
        let c = 1.0 - self.decay[1];
        let weight: Vec<f64> = (0..N_THRESHOLDS)
            .map(|t| c / (1.0 - self.decay[count[t]]) * self.beta_probs[t])
            .collect();
        let mut before = [0usize; N_THRESHOLDS];
        let mut probs: Vec<f64> = first
            .iter()
            .map(|&f| {
                let mut p = 0.0;
                for (b, &w) in before[f..].iter_mut().zip(&weight[f..]) {
                    p += w * self.decay[*b];
                    *b += 1;
                }
                p
            })
            .collect();
        let global = (0..troughs.len())
            .min_by(|&a, &b| yin[troughs[a]].total_cmp(&yin[troughs[b]]))
            .expect("non-empty");
        let not_below: f64 = self.beta_probs[..first[global]].iter().sum();
        probs[global] += NO_TROUGH_PROB * not_below;
        // Parabolic shifts (0 at the edges and where |b| ≥ |a|).
        let shift = |i: usize| -> f64 {
            if i == 0 || i + 1 >= n {
                return 0.0;
            }
            let a = yin[i + 1] + yin[i - 1] - 2.0 * yin[i];
            let b = (yin[i + 1] - yin[i - 1]) / 2.0;
            if b.abs() >= a.abs() {
                0.0
            } else {
                -b / a
            }
        };
        troughs
            .iter()
            .zip(&probs)
            .filter(|(_, &p)| p > 0.0)
            .map(|(&i, &p)| {
                let period = (self.min_period + i) as f64 + shift(i);
                let f0 = self.sr / period;
                let bin = (12.0 * BINS_PER_SEMITONE as f64 * (f0 / self.fmin).log2())
                    .round()
                    .clamp(0.0, nb as f64) as usize;
                (bin, p, period)
            })
            .collect()
    }

    /// Track `y` over frames starting at `starts` ([`super::pitch::frame_starts`]: one per
    /// `hop`, the last ending within the signal; a signal shorter than a frame gives one
    /// zero-padded frame).
    pub fn track(&self, y: &[f32], starts: &[usize]) -> Vec<PyinFrame> {
        let mut sc = self.scratch();
        let obs: Vec<Candidates> = starts
            .iter()
            .map(|&s| {
                for (i, v) in sc.x.iter_mut().enumerate() {
                    *v = y.get(s + i).map_or(0.0, |&a| a as f64);
                }
                self.cmnd(&mut sc);
                self.candidates(&sc.yin)
            })
            .collect();
        self.decode(&obs)
    }

    /// Viterbi over `2 × n_bins` states (voiced bins, then unvoiced bins).
    fn decode(&self, obs: &[Candidates]) -> Vec<PyinFrame> {
        let nb = self.n_bins;
        let ns = 2 * nb;
        let half = self.half;
        let tiny = f64::MIN_POSITIVE;
        let log_stay = (1.0 - SWITCH_PROB + tiny).ln();
        let log_switch = (SWITCH_PROB + tiny).ln();
        let log_zero = tiny.ln();
        let mut delta = vec![(1.0 / ns as f64 + tiny).ln(); ns];
        // Emission log-probabilities: voiced bins without a candidate have probability 0;
        // unvoiced bins share the rest.
        let mut e = vec![0f64; ns];
        let mut p = vec![0f64; nb];
        let mut emit = |cands: &Candidates, e: &mut [f64]| {
            p.fill(0.0);
            for &(b, prob, _) in cands {
                if b < nb {
                    p[b] = prob;
                }
            }
            let voiced: f64 = p.iter().sum::<f64>().clamp(0.0, 1.0);
            for (e, &v) in e.iter_mut().zip(&p) {
                *e = if v > 0.0 { (v + tiny).ln() } else { log_zero };
            }
            e[nb..].fill(((1.0 - voiced) / nb as f64 + tiny).ln());
        };
        let t_len = obs.len();
        let mut back = vec![0u32; t_len * ns];
        if let Some(first) = obs.first() {
            emit(first, &mut e);
            for (d, v) in delta.iter_mut().zip(&e) {
                *d += v;
            }
        }
        // The previous frame's scores of one voicing block, with `half` −∞ on either side.
        let nbp = self.padded_bins;
        let mut padded = vec![f64::NEG_INFINITY; nbp + 2 * half];
        // The best source of each block (voiced, unvoiced) for every target bin: the voicing
        // switch cost depends only on the two blocks, so it is added after the band maximum.
        let mut best = [vec![0f64; nbp], vec![0f64; nbp]];
        let mut arg = [vec![0f64; nbp], vec![0f64; nbp]];
        // Each block's band offset k of target bin bj is source state (block start + bj + k
        // − half); and before the search every offset is the first in range.
        let base: [Vec<f64>; 2] =
            [0, nb].map(|b| (0..nb).map(|bj| (b + bj) as f64 - half as f64).collect());
        let first_in_range: Vec<f64> = (0..nbp).map(|bj| half.saturating_sub(bj) as f64).collect();
        let mut from = [vec![0f64; nb], vec![0f64; nb]];
        let mut next = vec![0f64; ns];
        for t in 1..t_len {
            emit(&obs[t], &mut e);
            for v in 0..2 {
                padded[half..half + nb].copy_from_slice(&delta[v * nb..(v + 1) * nb]);
                best[v].fill(f64::NEG_INFINITY);
                arg[v].copy_from_slice(&first_in_range);
                band_max(&padded, &self.trans, &mut best[v], &mut arg[v]);
                for ((f, &a), &b) in from[v].iter_mut().zip(&arg[v]).zip(&base[v]) {
                    *f = b + a;
                }
            }
            let back_t = &mut back[t * ns..(t + 1) * ns];
            for (vj, (sw0, sw1)) in [(log_stay, log_switch), (log_switch, log_stay)]
                .into_iter()
                .enumerate()
            {
                let span = vj * nb..(vj + 1) * nb;
                switch_step(
                    [&best[0], &best[1]],
                    [&from[0], &from[1]],
                    [sw0, sw1],
                    &e[span.clone()],
                    &mut next[span.clone()],
                    &mut back_t[span],
                );
            }
            std::mem::swap(&mut delta, &mut next);
        }
        let mut state = (0..ns)
            .max_by(|&a, &b| delta[a].total_cmp(&delta[b]).then(b.cmp(&a)))
            .unwrap_or(nb);
        let mut states = vec![0usize; t_len];
        for t in (0..t_len).rev() {
            states[t] = state;
            if t > 0 {
                state = back[t * ns + state] as usize;
            }
        }
        states
            .iter()
            .zip(obs)
            .map(|(&s, cands)| {
                let bin = s % nb;
                let f0 = self.fmin * 2f64.powf(bin as f64 / (12.0 * BINS_PER_SEMITONE as f64));
                if s >= nb {
                    return PyinFrame::default();
                }
                // The candidate period closest to the decoded bin, else the bin's own period.
                let period = cands
                    .iter()
                    .min_by_key(|c| c.0.abs_diff(bin))
                    .filter(|c| c.0.abs_diff(bin) <= BINS_PER_SEMITONE)
                    .map_or(self.sr / f0, |c| c.2);
                PyinFrame {
                    voiced: true,
                    f0: f0 as f32,
                    period: period as f32,
                }
            })
            .collect()
    }
}

avx2_dispatch! {
    /// The voicing switch of one Viterbi step for the target bins of one block: the better of
    /// the two blocks' band maxima plus their switch costs (the voiced block on a tie), plus the
    /// emission, into `next`, with the source state into `back`.
    fn switch_step(
        best: [&[f64]; 2],
        from: [&[f64]; 2],
        switch: [f64; 2],
        e: &[f64],
        next: &mut [f64],
        back: &mut [u32],
    ) => switch_step_kernel;
}

#[inline(always)]
fn switch_step_kernel(
    best: [&[f64]; 2],
    from: [&[f64]; 2],
    switch: [f64; 2],
    e: &[f64],
    next: &mut [f64],
    back: &mut [u32],
) {
    let n = next.len();
    let (b0, b1, f0, f1, e) = (
        &best[0][..n],
        &best[1][..n],
        &from[0][..n],
        &from[1][..n],
        &e[..n],
    );
    let back = &mut back[..n];
    for i in 0..n {
        let (s0, s1) = (b0[i] + switch[0], b1[i] + switch[1]);
        let voiced = s0 >= s1;
        next[i] = if voiced { s0 } else { s1 } + e[i];
        back[i] = if voiced { f0[i] } else { f1[i] } as u32;
    }
}

/// The band maximum of the Viterbi step: for every target bin `j`, the largest
/// `src[j + k] + trans[k · n + j]` over the band offsets `k` (`n = best.len()`), kept in
/// `best[j]` (which starts at −∞) with its offset in `arg[j]` (as f64, for the lanes); the first
/// offset wins a tie, as a scan over the source bins in order does. Compiled for AVX-512 or
/// AVX2 when the CPU has them (the same additions and comparisons, so the same result).
fn band_max(src: &[f64], trans: &[f64], best: &mut [f64], arg: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512(src: &[f64], trans: &[f64], best: &mut [f64], arg: &mut [f64]) {
            band_max_kernel::<BAND_MAX_BLOCK>(src, trans, best, arg)
        }
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(src: &[f64], trans: &[f64], best: &mut [f64], arg: &mut [f64]) {
            band_max_kernel::<16>(src, trans, best, arg)
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: `avx512` only requires AVX-512F, which the CPU was just detected to have.
            return unsafe { avx512(src, trans, best, arg) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2.
            return unsafe { avx2(src, trans, best, arg) };
        }
    }
    band_max_kernel::<16>(src, trans, best, arg)
}

/// The largest block of [`band_max_kernel`]: the tracker pads its bins to a multiple of it, so
/// that no bins are left for the kernel's scalar tail.
const BAND_MAX_BLOCK: usize = 32;

/// [`band_max`] in blocks of `L` bins held in registers across the band (`L` = four vectors:
/// four independent max chains).
#[inline(always)]
fn band_max_kernel<const L: usize>(src: &[f64], trans: &[f64], best: &mut [f64], arg: &mut [f64]) {
    let n = best.len();
    let band = trans.len() / n;
    #[inline(always)]
    fn step<const L: usize>(
        m: &mut [f64; L],
        a: &mut [f64; L],
        s: &[f64; L],
        t: &[f64; L],
        k: f64,
    ) {
        for l in 0..L {
            let v = s[l] + t[l];
            let better = v > m[l];
            a[l] = if better { k } else { a[l] };
            m[l] = if better { v } else { m[l] };
        }
    }
    let mut j = 0;
    while j + L <= n {
        let mut m: [f64; L] = best[j..j + L].try_into().expect("block");
        let mut a: [f64; L] = arg[j..j + L].try_into().expect("block");
        for k in 0..band {
            let s = src[k + j..k + j + L].try_into().expect("block");
            let t = trans[k * n + j..k * n + j + L].try_into().expect("block");
            step(&mut m, &mut a, s, t, k as f64);
        }
        best[j..j + L].copy_from_slice(&m);
        arg[j..j + L].copy_from_slice(&a);
        j += L;
    }
    for j in j..n {
        let (mut m, mut a) = ([best[j]], [arg[j]]);
        for k in 0..band {
            step(&mut m, &mut a, &[src[k + j]], &[trans[k * n + j]], k as f64);
        }
        best[j] = m[0];
        arg[j] = a[0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_and_boltzmann_match_scipy() {
        // scipy.stats.beta.cdf(0.1, 2, 18) = 0.57973502..., boltzmann.pmf(1, 2, 3) = 0.11731043...
        assert!(
            (beta_cdf(0.1, 2, 18) - 0.579_735_02).abs() < 1e-8,
            "{}",
            beta_cdf(0.1, 2, 18)
        );
        assert!(
            (boltzmann(1, 2.0, 3) - 0.117_310_43).abs() < 1e-8,
            "{}",
            boltzmann(1, 2.0, 3)
        );
        let p = Pyin::new(16000.0, 800, 160, 60.0, 600.0);
        for (k, n) in [(0, 1), (1, 3), (5, 40), (30, 240)] {
            let table = (1.0 - p.decay[1]) * p.decay[k] / (1.0 - p.decay[n]);
            assert_eq!(table, boltzmann(k, BOLTZMANN, n), "k {k}, n {n}");
        }
        let total: f64 = (0..=100)
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| beta_cdf(w[1] as f64 / 100.0, 2, 18) - beta_cdf(w[0] as f64 / 100.0, 2, 18))
            .sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn fft_lengths_and_threshold_indices() {
        assert_eq!(fast_len(1067), 1152);
        assert_eq!(fast_len(1024), 1024);
        assert_eq!(fast_len(1025), 1152);
        assert_eq!(fast_len(7), 8);
        assert_eq!(fast_len(5), 6);
        for v in [
            -0.5,
            0.0,
            0.004,
            0.01,
            0.0100001,
            0.29,
            0.3,
            0.57,
            0.99,
            0.995,
            1.0,
            3.0,
            f64::NAN,
        ] {
            let scan = (0..N_THRESHOLDS)
                .find(|&t| v < (t + 1) as f64 / N_THRESHOLDS as f64)
                .unwrap_or(N_THRESHOLDS);
            assert_eq!(first_threshold(v), scan, "{v}");
        }
    }

    #[test]
    fn band_max_is_the_first_best_of_a_plain_scan() {
        // Scores on a coarse grid, so that ties are common; a tail that is not a whole block.
        let (n, band) = (37, 9);
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 5) as f64 - 2.0
        };
        let src: Vec<f64> = (0..n + band).map(|_| next()).collect();
        let mut trans: Vec<f64> = (0..band * n).map(|_| next()).collect();
        trans[3] = f64::NEG_INFINITY;
        let mut best = vec![f64::NEG_INFINITY; n];
        let mut arg = vec![-1.0; n];
        band_max(&src, &trans, &mut best, &mut arg);
        for j in 0..n {
            let (mut m, mut a) = (f64::NEG_INFINITY, -1.0);
            for k in 0..band {
                let v = src[j + k] + trans[k * n + j];
                if v > m {
                    m = v;
                    a = k as f64;
                }
            }
            assert_eq!((best[j], arg[j]), (m, a), "bin {j}");
        }
        // The portable kernels (either block size) agree with the dispatched one.
        let (mut b2, mut a2) = (vec![f64::NEG_INFINITY; n], vec![-1.0; n]);
        band_max_kernel::<16>(&src, &trans, &mut b2, &mut a2);
        assert_eq!((&b2, &a2), (&best, &arg));
        let (mut b3, mut a3) = (vec![f64::NEG_INFINITY; n], vec![-1.0; n]);
        band_max_kernel::<32>(&src, &trans, &mut b3, &mut a3);
        assert_eq!((b3, a3), (best, arg));
    }

    #[test]
    fn a_tone_then_silence_is_voiced_then_not() {
        let sr = 16000.0;
        let mut y: Vec<f32> = (0..8000)
            .map(|i| {
                let t = i as f32 / sr;
                (1..=3)
                    .map(|h| (2.0 * std::f32::consts::PI * 180.0 * h as f32 * t).sin() / h as f32)
                    .sum::<f32>()
                    * 0.3
            })
            .collect();
        y.extend(vec![0.0; 8000]);
        let p = Pyin::new(sr, 800, 160, 60.0, 600.0);
        let fr = p.track(
            &y,
            &crate::features::functionals::pitch::frame_starts(y.len(), p.frame, 160),
        );
        let n = fr.len();
        assert!(fr[5..n / 2 - 5].iter().all(|f| f.voiced), "tone voiced");
        assert!(
            fr[n / 2 + 5..].iter().all(|f| !f.voiced),
            "silence unvoiced"
        );
        for f in &fr[5..n / 2 - 5] {
            let cents = 1200.0 * (f.f0 / 180.0).log2();
            assert!(cents.abs() < 10.0, "f0 {} ({cents} cents)", f.f0);
            assert!(
                (f.period - 16000.0 / 180.0).abs() < 0.5,
                "period {}",
                f.period
            );
        }
    }
}
