//! Mel scale conversions and the sparse mel filterbank, matching `librosa.filters.mel`.
//!
//! The filterbank is computed in `f64` exactly like librosa (same `linspace`, same ramp
//! formulation, same Slaney normalisation order, including librosa's intermediate rounding of
//! the triangle weights to `float32` before the `float64` normalisation) and only stored as
//! `f32`. Each band keeps just its contiguous non-zero run of FFT bins, so applying it costs
//! about `2 * (n_fft / 2)` multiply-adds per frame instead of `n_mels * (1 + n_fft / 2)`.

use serde::{Deserialize, Serialize};

/// Mel scale flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MelScale {
    /// Slaney's Auditory Toolbox scale (librosa `htk=False`): linear below 1 kHz, log above.
    Slaney,
    /// HTK scale: `2595 * log10(1 + f / 700)`.
    Htk,
}

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz → mel (librosa `hz_to_mel`).
pub fn hz_to_mel(hz: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
        MelScale::Slaney => {
            if hz >= MIN_LOG_HZ {
                MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
            } else {
                hz / F_SP
            }
        }
    }
}

/// Mel → Hz (librosa `mel_to_hz`).
pub fn mel_to_hz(mel: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
        MelScale::Slaney => {
            if mel >= MIN_LOG_MEL {
                MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
            } else {
                F_SP * mel
            }
        }
    }
}

/// `numpy.linspace(start, stop, num)` (endpoint included), bit-for-bit.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    match num {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (stop - start) / (num - 1) as f64;
            let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
            v[num - 1] = stop;
            v
        }
    }
}

/// `n` frequencies (Hz) evenly spaced on the mel scale between `fmin` and `fmax`
/// (librosa `mel_frequencies`).
pub fn mel_frequencies(n: usize, fmin: f64, fmax: f64, scale: MelScale) -> Vec<f64> {
    linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n)
        .into_iter()
        .map(|m| mel_to_hz(m, scale))
        .collect()
}

/// Centre frequencies of the one-sided FFT bins (`numpy.fft.rfftfreq(n_fft, 1 / sr)`).
pub fn fft_frequencies(sample_rate: f64, n_fft: usize) -> Vec<f64> {
    let val = 1.0 / (n_fft as f64 * (1.0 / sample_rate));
    (0..=n_fft / 2).map(|k| k as f64 * val).collect()
}

/// Specification of a mel filterbank (librosa `filters.mel` arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MelFilterbankSpec {
    /// Sample rate in Hz.
    pub sample_rate: f64,
    /// FFT size the filterbank is applied to.
    pub n_fft: usize,
    /// Number of mel bands.
    pub n_mels: usize,
    /// Lowest band edge in Hz.
    pub fmin: f64,
    /// Highest band edge in Hz.
    pub fmax: f64,
    /// Mel scale flavour.
    pub scale: MelScale,
    /// Slaney area normalisation (`norm="slaney"`); `false` = `norm=None`.
    pub slaney_norm: bool,
}

/// One mel band: weights for the contiguous FFT bins `start .. start + weights.len()`.
#[derive(Debug, Clone, PartialEq)]
struct Band {
    start: usize,
    weights: Vec<f32>,
}

/// Sparse mel filterbank: every band stores only its non-zero run of FFT-bin weights.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilterbank {
    n_bins: usize,
    bands: Vec<Band>,
    /// One past the highest bin any band touches: bins above it need not be computed.
    used_bins: usize,
}

impl MelFilterbank {
    /// Builds the filterbank exactly like `librosa.filters.mel(dtype=np.float32)`.
    pub fn new(spec: &MelFilterbankSpec) -> Self {
        let n_bins = 1 + spec.n_fft / 2;
        let fftfreqs = fft_frequencies(spec.sample_rate, spec.n_fft);
        let mel_f = mel_frequencies(spec.n_mels + 2, spec.fmin, spec.fmax, spec.scale);
        let fdiff: Vec<f64> = mel_f.windows(2).map(|w| w[1] - w[0]).collect();

        let mut bands = Vec::with_capacity(spec.n_mels);
        let mut used_bins = 0;
        for i in 0..spec.n_mels {
            let enorm = if spec.slaney_norm {
                Some(2.0 / (mel_f[i + 2] - mel_f[i]))
            } else {
                None
            };
            let weight = |k: usize| -> f32 {
                // ramps = mel_f[:, None] - fftfreqs[None, :]
                let lower = -(mel_f[i] - fftfreqs[k]) / fdiff[i];
                let upper = (mel_f[i + 2] - fftfreqs[k]) / fdiff[i + 1];
                // librosa stores max(0, min(lower, upper)) into a float32 array first ...
                let w = 0.0f64.max(lower.min(upper)) as f32;
                // ... then multiplies that float32 array in place by the float64 enorm.
                match enorm {
                    Some(e) => (w as f64 * e) as f32,
                    None => w,
                }
            };
            let nonzero: Vec<usize> = (0..n_bins).filter(|&k| weight(k) != 0.0).collect();
            let band = match (nonzero.first(), nonzero.last()) {
                (Some(&lo), Some(&hi)) => {
                    used_bins = used_bins.max(hi + 1);
                    Band {
                        start: lo,
                        weights: (lo..=hi).map(weight).collect(),
                    }
                }
                _ => Band {
                    start: 0,
                    weights: Vec::new(),
                },
            };
            bands.push(band);
        }
        MelFilterbank {
            n_bins,
            bands,
            used_bins,
        }
    }

    /// Number of mel bands.
    pub fn n_mels(&self) -> usize {
        self.bands.len()
    }

    /// Number of FFT bins the filterbank expects (`1 + n_fft / 2`).
    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// One past the highest FFT bin with a non-zero weight in any band.
    pub fn used_bins(&self) -> usize {
        self.used_bins
    }

    /// Bands whose weights are all zero (librosa warns about "empty filters" for these).
    pub fn empty_bands(&self) -> Vec<usize> {
        (0..self.bands.len())
            .filter(|&i| self.bands[i].weights.is_empty())
            .collect()
    }

    /// `(first_bin, weights)` of band `m`.
    pub fn band(&self, m: usize) -> (usize, &[f32]) {
        let b = &self.bands[m];
        (b.start, &b.weights)
    }

    /// Dense `(n_mels, n_bins)` row-major weight matrix, identical to librosa's array.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut dense = vec![0.0; self.bands.len() * self.n_bins];
        for (m, b) in self.bands.iter().enumerate() {
            let row = &mut dense[m * self.n_bins..(m + 1) * self.n_bins];
            row[b.start..b.start + b.weights.len()].copy_from_slice(&b.weights);
        }
        dense
    }

    /// Projects one spectrum frame onto the bands: `out[m] = Σ_k W[m, k] · spectrum[k]`.
    ///
    /// `spectrum` must hold at least [`Self::used_bins`] values; `out` exactly `n_mels`.
    #[inline(always)]
    pub fn apply(&self, spectrum: &[f32], out: &mut [f32]) {
        debug_assert!(spectrum.len() >= self.used_bins);
        debug_assert_eq!(out.len(), self.bands.len());
        for (o, b) in out.iter_mut().zip(&self.bands) {
            let bins = &spectrum[b.start..b.start + b.weights.len()];
            *o = dot(&b.weights, bins);
        }
    }
}

/// Dot product with eight independent accumulators so that it vectorises.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(scale: MelScale, slaney_norm: bool) -> MelFilterbankSpec {
        MelFilterbankSpec {
            sample_rate: 16000.0,
            n_fft: 512,
            n_mels: 40,
            fmin: 0.0,
            fmax: 8000.0,
            scale,
            slaney_norm,
        }
    }

    #[test]
    fn mel_scales_round_trip_and_anchor_points() {
        for scale in [MelScale::Slaney, MelScale::Htk] {
            for hz in [0.0, 55.0, 999.0, 1000.0, 4321.0, 11025.0] {
                let back = mel_to_hz(hz_to_mel(hz, scale), scale);
                assert!((back - hz).abs() < 1e-9 * hz.max(1.0), "{scale:?} {hz}");
            }
        }
        assert!((hz_to_mel(1000.0, MelScale::Slaney) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(6400.0, MelScale::Slaney) - 42.0).abs() < 1e-12);
        assert!((hz_to_mel(700.0, MelScale::Htk) - 2595.0 * 2f64.log10()).abs() < 1e-9);
    }

    #[test]
    fn linspace_hits_endpoints() {
        let v = linspace(0.1, 0.7, 7);
        assert_eq!(v[0], 0.1);
        assert_eq!(v[6], 0.7);
        assert!((v[3] - 0.4).abs() < 1e-15);
    }

    #[test]
    fn triangles_are_contiguous_and_slaney_normalised() {
        let fb = MelFilterbank::new(&spec(MelScale::Slaney, true));
        assert_eq!(fb.n_mels(), 40);
        assert_eq!(fb.n_bins(), 257);
        assert!(fb.empty_bands().is_empty());
        let mel_f = mel_frequencies(42, 0.0, 8000.0, MelScale::Slaney);
        let df = 16000.0 / 512.0;
        for m in 0..40 {
            let (start, w) = fb.band(m);
            assert!(w.iter().all(|&x| x > 0.0), "band {m} has interior zeros");
            // Support lies strictly inside (mel_f[m], mel_f[m + 2]).
            assert!(start as f64 * df > mel_f[m]);
            assert!((start + w.len() - 1) as f64 * df < mel_f[m + 2]);
            // Slaney norm: the peak is at most 2 / (f[m+2] - f[m]).
            let peak = w.iter().cloned().fold(0.0f32, f32::max) as f64;
            assert!(peak <= 2.0 / (mel_f[m + 2] - mel_f[m]) * (1.0 + 1e-6));
        }
        // Dense and sparse application agree.
        let dense = fb.to_dense();
        let spec_frame: Vec<f32> = (0..257).map(|k| 1.0 + (k as f32 * 0.37).sin()).collect();
        let mut out = vec![0.0; 40];
        fb.apply(&spec_frame, &mut out);
        for m in 0..40 {
            let d: f32 = (0..257).map(|k| dense[m * 257 + k] * spec_frame[k]).sum();
            assert!((d - out[m]).abs() <= 1e-6 * d.abs());
        }
    }

    #[test]
    fn unnormalised_htk_peaks_at_most_one() {
        let fb = MelFilterbank::new(&spec(MelScale::Htk, false));
        for m in 0..fb.n_mels() {
            let (_, w) = fb.band(m);
            assert!(w.iter().all(|&x| x > 0.0 && x <= 1.0));
        }
    }

    #[test]
    fn too_many_bands_yield_empty_filters() {
        let mut s = spec(MelScale::Slaney, true);
        s.n_fft = 64;
        s.n_mels = 128;
        let fb = MelFilterbank::new(&s);
        assert!(!fb.empty_bands().is_empty());
        let mut out = vec![1.0; 128];
        fb.apply(&[1.0; 33], &mut out);
        for m in fb.empty_bands() {
            assert_eq!(out[m], 0.0);
        }
    }
}
