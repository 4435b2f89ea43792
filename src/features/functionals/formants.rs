//! Formants F1-F3 with their bandwidths by linear prediction (the textbook method: Markel &
//! Gray, "Linear Prediction of Speech", 1976; Rabiner & Schafer, "Digital Processing of Speech
//! Signals", §8.7).
//!
//! Per frame: pre-emphasis from 50 Hz (`x[n] - e^(-2π·50/sr)·x[n-1]`, as Praat does), a Hamming
//! window, the autocorrelation method with Levinson-Durbin recursion at order `2 + sr/1000`
//! (two poles per kHz of bandwidth plus two for the glottal and radiation spectrum), and the
//! roots of the prediction polynomial (Aberth-Ehrlich iteration in f64). A root `r·e^(iθ)`
//! with `θ > 0` is a resonance at `θ·sr/2π` Hz with bandwidth `-ln(r)·sr/π` Hz; resonances
//! between [`MIN_HZ`] and `sr/2 - MIN_HZ` with a bandwidth under [`MAX_BANDWIDTH_HZ`] are
//! formant candidates, and the lowest three are F1, F2 and F3. Frames with fewer candidates
//! give only the formants they have.

use num_complex::Complex64;

/// Lowest formant frequency accepted, Hz (and the distance kept from Nyquist).
pub const MIN_HZ: f64 = 90.0;
/// Widest bandwidth of a formant, Hz (wider resonances shape the spectral tilt).
pub const MAX_BANDWIDTH_HZ: f64 = 400.0;

/// One formant of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Formant {
    pub hz: f32,
    pub bandwidth_hz: f32,
}

/// A planned formant analyser for frames of one length at one sample rate.
#[derive(Debug, Clone)]
pub struct FormantAnalyzer {
    sample_rate: f64,
    order: usize,
    window: Vec<f64>,
    pre_emphasis: f64,
}

impl FormantAnalyzer {
    pub fn new(sample_rate: f32, frame: usize) -> FormantAnalyzer {
        let sr = sample_rate as f64;
        let n = frame.max(2);
        FormantAnalyzer {
            sample_rate: sr,
            order: 2 + (sr / 1000.0).round() as usize,
            window: (0..n)
                .map(|i| {
                    0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos()
                })
                .collect(),
            pre_emphasis: (-2.0 * std::f64::consts::PI * 50.0 / sr).exp(),
        }
    }

    /// The prediction order.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Up to three formants of frame `x` (as long as the planned frame; shorter frames are
    /// zero-padded), lowest first. Silent frames give none.
    pub fn formants(&self, x: &[f32]) -> Vec<Formant> {
        let n = self.window.len();
        let mut s = vec![0f64; n];
        let mut prev = 0f64;
        for (i, w) in self.window.iter().enumerate() {
            let v = x.get(i).copied().unwrap_or(0.0) as f64;
            s[i] = (v - self.pre_emphasis * prev) * w;
            prev = v;
        }
        let Some(a) = lpc(&s, self.order) else {
            return Vec::new();
        };
        let mut found: Vec<Formant> = roots(&a)
            .into_iter()
            .filter(|z| z.im > 0.0)
            .filter_map(|z| {
                let hz = z.arg() * self.sample_rate / (2.0 * std::f64::consts::PI);
                let bw = -z.norm().ln() * self.sample_rate / std::f64::consts::PI;
                (hz > MIN_HZ
                    && hz < self.sample_rate / 2.0 - MIN_HZ
                    && bw > 0.0
                    && bw < MAX_BANDWIDTH_HZ)
                    .then_some(Formant {
                        hz: hz as f32,
                        bandwidth_hz: bw as f32,
                    })
            })
            .collect();
        found.sort_by(|a, b| a.hz.total_cmp(&b.hz));
        found.truncate(3);
        found
    }
}

/// `Σ a[i]·b[i]` over the shorter length, in four interleaved partial sums (so that it
/// vectorises), added pairwise at the end.
fn dot4(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (u, v) in (&mut ca).zip(&mut cb) {
        for l in 0..4 {
            acc[l] += u[l] * v[l];
        }
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(u, v)| u * v)
        .sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Prediction coefficients `[1, a1, …, ap]` of `x` by the autocorrelation method
/// (Levinson-Durbin); `None` for a silent frame or a numerically singular one.
pub fn lpc(x: &[f64], order: usize) -> Option<Vec<f64>> {
    let r: Vec<f64> = (0..=order).map(|k| dot4(x, &x[k.min(x.len())..])).collect();
    if r[0].is_nan() || r[0] <= 1e-12 {
        return None;
    }
    let mut a = vec![0f64; order + 1];
    a[0] = 1.0;
    let mut err = r[0];
    for i in 1..=order {
        let acc: f64 = (1..i).map(|j| a[j] * r[i - j]).sum::<f64>() + r[i];
        let k = -acc / err;
        // a[j] += k·a[i-j] for 0 < j < i, from the old values: in place, pair by pair.
        for j in 1..=i / 2 {
            let (lo, hi) = (a[j], a[i - j]);
            a[j] = lo + k * hi;
            if i - j != j {
                a[i - j] = hi + k * lo;
            }
        }
        a[i] = k;
        err *= 1.0 - k * k;
        if err.is_nan() || err <= r[0] * 1e-12 {
            return None;
        }
    }
    Some(a)
}

/// The roots of `z^p + c[1] z^(p-1) + … + c[p]` (`c[0] = 1`) by Aberth-Ehrlich iteration,
/// started on a circle inside the unit circle (where a stable predictor's roots lie).
pub fn roots(c: &[f64]) -> Vec<Complex64> {
    let p = c.len().saturating_sub(1);
    if p == 0 {
        return Vec::new();
    }
    let eval = |z: Complex64| -> (Complex64, Complex64) {
        // Horner for the value and the derivative.
        let mut v = Complex64::new(1.0, 0.0);
        let mut d = Complex64::new(0.0, 0.0);
        for &ck in &c[1..] {
            d = d * z + v;
            v = v * z + ck;
        }
        (v, d)
    };
    let mut z: Vec<Complex64> = (0..p)
        .map(|k| {
            Complex64::from_polar(
                0.9,
                2.0 * std::f64::consts::PI * (k as f64 + 0.25) / p as f64,
            )
        })
        .collect();
    for _ in 0..500 {
        let mut moved = 0f64;
        for i in 0..p {
            let (v, d) = eval(z[i]);
            if v.re == 0.0 && v.im == 0.0 {
                continue;
            }
            let ratio = v / d;
            let sum: Complex64 = (0..p)
                .filter(|&j| j != i)
                .map(|j| Complex64::new(1.0, 0.0) / (z[i] - z[j]))
                .sum();
            let step = ratio / (Complex64::new(1.0, 0.0) - ratio * sum);
            if step.is_finite() {
                z[i] -= step;
                moved = moved.max(step.norm_sqr());
            }
        }
        if moved < 1e-24 {
            break;
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An impulse train at `f0` through a cascade of two-pole resonators (the Klatt / source-
    /// filter vowel), 0.2 s at `sr`.
    fn vowel(sr: f64, f0: f64, formants: &[(f64, f64)]) -> Vec<f32> {
        let n = (0.2 * sr) as usize;
        let period = (sr / f0).round() as usize;
        let mut y: Vec<f64> = (0..n).map(|i| (i % period == 0) as u8 as f64).collect();
        for &(f, bw) in formants {
            let r = (-std::f64::consts::PI * bw / sr).exp();
            let th = 2.0 * std::f64::consts::PI * f / sr;
            let (a1, a2) = (2.0 * r * th.cos(), -r * r);
            let mut out = vec![0f64; n];
            for i in 0..n {
                out[i] = y[i]
                    + a1 * if i >= 1 { out[i - 1] } else { 0.0 }
                    + a2 * if i >= 2 { out[i - 2] } else { 0.0 };
            }
            y = out;
        }
        let peak = y.iter().fold(0f64, |m, v| m.max(v.abs()));
        y.iter().map(|v| (v / peak * 0.5) as f32).collect()
    }

    #[test]
    fn roots_of_a_known_polynomial() {
        // (z - 0.5)(z + 0.25)(z² - 2·0.9·cos(1) z + 0.81) expanded.
        let (r, th) = (0.9f64, 1.0f64);
        let quad = [1.0, -2.0 * r * th.cos(), r * r];
        let lin = [1.0, -0.25, -0.125]; // (z - 0.5)(z + 0.25) = z² - 0.25 z - 0.125
        let mut c = [0f64; 5];
        for (i, a) in lin.iter().enumerate() {
            for (j, b) in quad.iter().enumerate() {
                c[i + j] += a * b;
            }
        }
        let mut got = roots(&c);
        got.sort_by(|a, b| a.re.total_cmp(&b.re).then(a.im.total_cmp(&b.im)));
        let want = [
            Complex64::new(-0.25, 0.0),
            Complex64::from_polar(r, -th),
            Complex64::from_polar(r, th),
            Complex64::new(0.5, 0.0),
        ];
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).norm() < 1e-9, "{got:?}");
        }
    }

    #[test]
    fn a_synthetic_vowel_gives_its_formants() {
        // /a/-like: F1 700, F2 1220, F3 2600 Hz (Peterson & Barney's adult male means), with
        // bandwidths 60, 70, 110 Hz, at 120 Hz F0, sampled at 16 kHz; 50 ms frames.
        let sr = 16000.0;
        let truth = [(700.0, 60.0), (1220.0, 70.0), (2600.0, 110.0)];
        let y = vowel(sr, 120.0, &truth);
        let a = FormantAnalyzer::new(sr as f32, 800);
        assert_eq!(a.order(), 18);
        let mut per: Vec<Vec<Formant>> = vec![Vec::new(); 3];
        for start in (800..y.len() - 800).step_by(160) {
            let f = a.formants(&y[start..start + 800]);
            assert_eq!(f.len(), 3, "frame at {start}: {f:?}");
            for (k, v) in f.into_iter().enumerate() {
                per[k].push(v);
            }
        }
        for (k, &(hz, bw)) in truth.iter().enumerate() {
            let mut f: Vec<f32> = per[k].iter().map(|v| v.hz).collect();
            f.sort_by(f32::total_cmp);
            let med = f[f.len() / 2] as f64;
            assert!((med - hz).abs() / hz < 0.05, "F{}: {med} vs {hz}", k + 1);
            let mut b: Vec<f32> = per[k].iter().map(|v| v.bandwidth_hz).collect();
            b.sort_by(f32::total_cmp);
            let bmed = b[b.len() / 2] as f64;
            assert!(
                bmed > bw / 3.0 && bmed < bw * 3.0,
                "B{}: {bmed} vs {bw}",
                k + 1
            );
        }
        // A different vowel moves them: /i/ (F1 270, F2 2290, F3 3010). A low F1 only two
        // harmonics above F0 is pulled towards them (LPC's known bias; 306 Hz measured here).
        let y = vowel(sr, 120.0, &[(270.0, 60.0), (2290.0, 90.0), (3010.0, 120.0)]);
        let f = a.formants(&y[1600..2400]);
        assert!((f[0].hz - 270.0).abs() < 50.0, "{f:?}");
        assert!(
            (f[1].hz - 2290.0).abs() < 50.0 && (f[2].hz - 3010.0).abs() < 50.0,
            "{f:?}"
        );
        // Silence: nothing, not NaN.
        assert!(a.formants(&[0.0; 800]).is_empty());
    }
}
