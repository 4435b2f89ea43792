//! Probabilistic YIN (Mauch & Dixon, ICASSP 2014) as `librosa.pyin` (0.11) computes it:
//! YIN's cumulative-mean-normalised difference per frame, F0 candidates at its troughs weighted
//! over a Beta(2, 18) prior on thresholds and a Boltzmann prior favouring short periods, then a
//! Viterbi pass over 0.1-semitone pitch bins × {voiced, unvoiced} with local (triangular) pitch
//! transitions and a 1 % voicing switch probability. The decoded F0 is the pitch bin's centre.
//!
//! Frames are `frame` samples, `hop` apart, not centred (`librosa.pyin(..., center=False)`).

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

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

/// A planned pYIN tracker for one frame length, hop, rate and F0 range.
pub struct Pyin {
    sr: f64,
    frame: usize,
    hop: usize,
    fmin: f64,
    min_period: usize,
    max_period: usize,
    n_fft: usize,
    fft: Arc<dyn RealToComplex<f64>>,
    ifft: Arc<dyn realfft::ComplexToReal<f64>>,
    beta_probs: Vec<f64>,
    n_bins: usize,
    /// Triangular transition weights of a pitch bin to its neighbours (row-normalised per bin).
    width: usize,
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

/// `scipy.stats.boltzmann.pmf(k, λ, n)`.
fn boltzmann(k: usize, lambda: f64, n: usize) -> f64 {
    (1.0 - (-lambda).exp()) * (-lambda * k as f64).exp() / (1.0 - (-lambda * n as f64).exp())
}

impl Pyin {
    pub fn new(sample_rate: f32, frame: usize, hop: usize, fmin: f32, fmax: f32) -> Pyin {
        let sr = sample_rate as f64;
        let min_period = (sr / fmax as f64).floor() as usize;
        let max_period = ((sr / fmin as f64).ceil() as usize).min(frame - 1);
        let n_fft = (2 * frame).next_power_of_two();
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
        Pyin {
            sr,
            frame,
            hop,
            fmin: fmin as f64,
            min_period,
            max_period,
            n_fft,
            fft: planner.plan_fft_forward(n_fft),
            ifft: planner.plan_fft_inverse(n_fft),
            beta_probs,
            n_bins,
            width: per_frame * BINS_PER_SEMITONE + 1,
        }
    }

    /// librosa's `_cumulative_mean_normalized_difference` for one frame, over periods
    /// `min_period..=max_period`.
    fn cmnd(&self, x: &[f64]) -> Vec<f64> {
        let mut input = self.fft.make_input_vec();
        input[..x.len()].copy_from_slice(x);
        let mut spec = self.fft.make_output_vec();
        self.fft
            .process(&mut input, &mut spec)
            .expect("planned sizes");
        for c in spec.iter_mut() {
            *c = realfft::num_complex::Complex::new(c.norm_sqr(), 0.0);
        }
        let mut acf = self.ifft.make_output_vec();
        self.ifft
            .process(&mut spec, &mut acf)
            .expect("planned sizes");
        let scale = 1.0 / self.n_fft as f64;
        let acf: Vec<f64> = acf[..=self.max_period].iter().map(|v| v * scale).collect();
        // d(k) = 2 (ACF(0) − ACF(k)) − Σ_{m<k} y(m)².
        let mut cum = 0.0;
        let mut d = vec![0f64; self.max_period + 1];
        for k in 1..=self.max_period {
            cum += x[k - 1] * x[k - 1];
            d[k] = 2.0 * (acf[0] - acf[k]) - cum;
        }
        let mut out = Vec::with_capacity(self.max_period + 1 - self.min_period);
        let mut run = 0.0;
        for k in 1..=self.max_period {
            run += d[k];
            if k >= self.min_period {
                let mean = run / k as f64;
                out.push(d[k] / (mean + f64::MIN_POSITIVE));
            }
        }
        out
    }

    /// Track `y`: one frame per `hop` (the last frame ending within the signal; a signal
    /// shorter than a frame gives one zero-padded frame).
    pub fn track(&self, y: &[f32]) -> Vec<PyinFrame> {
        let starts = super::pitch::frame_starts(y.len(), self.frame, self.hop);
        let nb = self.n_bins;
        // Observation probabilities per frame: voiced bins (sparse) and the voiced mass.
        let mut obs: Vec<Vec<(usize, f64, f64)>> = Vec::with_capacity(starts.len());
        for &s in &starts {
            let mut x = vec![0f64; self.frame];
            for (i, v) in x.iter_mut().enumerate() {
                if let Some(&a) = y.get(s + i) {
                    *v = a as f64;
                }
            }
            let yin = self.cmnd(&x);
            let n = yin.len();
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
            let mut cands = Vec::new();
            if !troughs.is_empty() {
                let mut probs = vec![0f64; troughs.len()];
                for (t, &bp) in self.beta_probs.iter().enumerate() {
                    let thr = (t + 1) as f64 / N_THRESHOLDS as f64;
                    let below: Vec<usize> = (0..troughs.len())
                        .filter(|&j| yin[troughs[j]] < thr)
                        .collect();
                    for (pos, &j) in below.iter().enumerate() {
                        probs[j] += boltzmann(pos, BOLTZMANN, below.len()) * bp;
                    }
                }
                let global = (0..troughs.len())
                    .min_by(|&a, &b| yin[troughs[a]].total_cmp(&yin[troughs[b]]))
                    .expect("non-empty");
                let h = yin[troughs[global]];
                let not_below: f64 = self
                    .beta_probs
                    .iter()
                    .enumerate()
                    .filter(|(t, _)| !(h < (t + 1) as f64 / N_THRESHOLDS as f64))
                    .map(|(_, p)| p)
                    .sum();
                probs[global] += NO_TROUGH_PROB * not_below;
                for (j, &i) in troughs.iter().enumerate() {
                    if probs[j] > 0.0 {
                        let period = (self.min_period + i) as f64 + shift(i);
                        let f0 = self.sr / period;
                        let bin = (12.0 * BINS_PER_SEMITONE as f64 * (f0 / self.fmin).log2())
                            .round()
                            .clamp(0.0, nb as f64) as usize;
                        cands.push((bin, probs[j], period));
                    }
                }
            }
            obs.push(cands);
        }
        self.decode(&obs)
    }

    /// Viterbi over `2 × n_bins` states (voiced bins, then unvoiced bins).
    fn decode(&self, obs: &[Vec<(usize, f64, f64)>]) -> Vec<PyinFrame> {
        let nb = self.n_bins;
        let ns = 2 * nb;
        let tiny = f64::MIN_POSITIVE;
        // Row-normalised triangular transitions within the band |i − j| ≤ width / 2.
        let half = self.width / 2;
        let tri = |d: usize| -> f64 {
            // scipy's symmetric triangle of odd length w: 1 − |n − (w−1)/2| / ((w+1)/2).
            1.0 - d as f64 / ((self.width + 1) as f64 / 2.0)
        };
        let row_sum: Vec<f64> = (0..nb)
            .map(|i| {
                let lo = i.saturating_sub(half);
                let hi = (i + half).min(nb - 1);
                (lo..=hi).map(|j| tri(i.abs_diff(j))).sum()
            })
            .collect();
        let log_stay = (1.0 - SWITCH_PROB + tiny).ln();
        let log_switch = (SWITCH_PROB + tiny).ln();
        let mut delta = vec![(1.0 / ns as f64 + tiny).ln(); ns];
        let log_zero = tiny.ln();
        let emit = |cands: &[(usize, f64, f64)]| -> Vec<f64> {
            // Voiced bins without a candidate have probability 0; unvoiced bins share the rest.
            let mut p = vec![0f64; nb];
            for &(b, prob, _) in cands {
                if b < nb {
                    p[b] = prob;
                }
            }
            let voiced: f64 = p.iter().sum::<f64>().clamp(0.0, 1.0);
            let mut e = vec![log_zero; ns];
            for (b, &v) in p.iter().enumerate() {
                if v > 0.0 {
                    e[b] = (v + tiny).ln();
                }
            }
            let unvoiced = ((1.0 - voiced) / nb as f64 + tiny).ln();
            e[nb..].fill(unvoiced);
            e
        };
        let t_len = obs.len();
        let mut back = vec![vec![0u32; ns]; t_len];
        if let Some(first) = obs.first() {
            let e = emit(first);
            for (d, v) in delta.iter_mut().zip(e) {
                *d += v;
            }
        }
        // Per target bin, log P(bi → bj) for the source bins of its band, contiguous.
        let band = 2 * half + 1;
        let mut into = vec![f64::NEG_INFINITY; nb * band];
        for bj in 0..nb {
            let lo = bj.saturating_sub(half);
            for bi in lo..=(bj + half).min(nb - 1) {
                into[bj * band + bi - lo] = (tri(bi.abs_diff(bj)) / row_sum[bi] + tiny).ln();
            }
        }
        // The best source of each block (voiced, unvoiced) for every target bin: the voicing
        // switch cost depends only on the two blocks, so it is added after the band maximum.
        let mut best = [vec![0f64; nb], vec![0f64; nb]];
        let mut arg = [vec![0usize; nb], vec![0usize; nb]];
        for t in 1..t_len {
            let e = emit(&obs[t]);
            for v in 0..2 {
                let src = &delta[v * nb..(v + 1) * nb];
                for bj in 0..nb {
                    let lo = bj.saturating_sub(half);
                    let hi = (bj + half).min(nb - 1);
                    let w = &into[bj * band..bj * band + hi - lo + 1];
                    let (mut m, mut a) = (f64::NEG_INFINITY, lo);
                    for (k, (&d, &l)) in src[lo..=hi].iter().zip(w).enumerate() {
                        let s = d + l;
                        if s > m {
                            m = s;
                            a = lo + k;
                        }
                    }
                    best[v][bj] = m;
                    arg[v][bj] = a;
                }
            }
            let mut next = vec![f64::NEG_INFINITY; ns];
            for vj in 0..2 {
                let (sw0, sw1) = if vj == 0 {
                    (log_stay, log_switch)
                } else {
                    (log_switch, log_stay)
                };
                for bj in 0..nb {
                    let (s0, s1) = (best[0][bj] + sw0, best[1][bj] + sw1);
                    let j = vj * nb + bj;
                    let (s, from) = if s0 >= s1 {
                        (s0, arg[0][bj])
                    } else {
                        (s1, nb + arg[1][bj])
                    };
                    next[j] = s + e[j];
                    back[t][j] = from as u32;
                }
            }
            delta = next;
        }
        let mut state = (0..ns)
            .max_by(|&a, &b| delta[a].total_cmp(&delta[b]).then(b.cmp(&a)))
            .unwrap_or(nb);
        let mut states = vec![0usize; t_len];
        for t in (0..t_len).rev() {
            states[t] = state;
            if t > 0 {
                state = back[t][state] as usize;
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
        let total: f64 = (0..=100)
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| beta_cdf(w[1] as f64 / 100.0, 2, 18) - beta_cdf(w[0] as f64 / 100.0, 2, 18))
            .sum();
        assert!((total - 1.0).abs() < 1e-12);
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
        let fr = p.track(&y);
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
