//! Frame-level energy and spectral descriptors (textbook definitions, as in eGeMAPS, Eyben et
//! al., IEEE TAC 2016, and librosa where it has the same measure):
//!
//! * RMS energy (dB) and zero-crossing rate of the unwindowed frame;
//! * loudness: Σ over 26 mel bands of band power^0.3 (an auditory-spectrum loudness);
//! * spectral centroid and 85 % roll-off of the magnitude spectrum (librosa's definitions);
//! * spectral flux: squared L2 distance of consecutive sum-normalised magnitude spectra;
//! * spectral slopes 0-500 Hz and 500-1500 Hz: least-squares slope of the dB power spectrum,
//!   dB per kHz;
//! * alpha ratio: energy 50-1000 Hz over 1-5 kHz, dB; Hammarberg index: the strongest peak
//!   0-2 kHz minus the strongest 2-5 kHz, dB;
//! * MFCC 1..=n: DCT-II (ortho) of the 26 dB mel band energies.
//!
//! RMS, zero-crossing rate, centroid, roll-off and MFCC are checked against librosa 0.11 on real
//! EmoDB clips, frame by frame (`tests/functionals.rs`, fixtures from
//! `tests/fixtures/librosa/make_spectral_fixtures.py`).

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

use crate::dsp::{MelFilterbank, MelFilterbankSpec, MelScale, MfccTransform, Spectrogram};

/// Mel bands of loudness and MFCC.
pub const MEL_BANDS: usize = 26;

/// Descriptors of one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpectralFrame {
    pub rms_db: f32,
    pub zcr: f32,
    pub loudness: f32,
    pub centroid: f32,
    pub rolloff: f32,
    pub flux: f32,
    pub slope_0_500: f32,
    pub slope_500_1500: f32,
    pub alpha_ratio: f32,
    pub hammarberg: f32,
    pub mfcc: Vec<f32>,
}

/// A planned analyser for frames of `frame` samples (zero-padded to a power-of-two FFT).
pub struct SpectralAnalyzer {
    sample_rate: f32,
    frame: usize,
    n_fft: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    mel: MelFilterbank,
    dct: MfccTransform,
    n_mfcc: usize,
}

impl SpectralAnalyzer {
    pub fn new(sample_rate: f32, frame: usize, n_mfcc: usize) -> SpectralAnalyzer {
        let n_fft = frame.next_power_of_two().max(64);
        let window: Vec<f32> = (0..frame)
            .map(|i| {
                let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / frame as f64).cos();
                w as f32
            })
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let mel = MelFilterbank::new(&MelFilterbankSpec {
            sample_rate: sample_rate as f64,
            n_fft,
            n_mels: MEL_BANDS,
            fmin: 20.0,
            fmax: (sample_rate as f64 / 2.0).min(8000.0),
            scale: MelScale::Slaney,
            slaney_norm: false,
        });
        let dct = MfccTransform::new(MEL_BANDS, n_mfcc + 1).expect("n_mfcc < 26 checked");
        SpectralAnalyzer {
            sample_rate,
            frame,
            n_fft,
            window,
            fft,
            mel,
            dct,
            n_mfcc,
        }
    }

    /// Descriptors of every frame of `y` (frames `frame` long, `hop` apart, starting at 0).
    pub fn frames(&self, y: &[f32], hop: usize) -> Vec<SpectralFrame> {
        let starts = super::pitch::frame_starts(y.len(), self.frame, hop);
        let bins = self.n_fft / 2 + 1;
        let hz = |k: usize| k as f32 * self.sample_rate / self.n_fft as f32;
        let bin_of =
            |f: f32| ((f * self.n_fft as f32 / self.sample_rate).round() as usize).min(bins - 1);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        // Per-frame buffers; the dB spectrum is only read up to 5 kHz (slopes and peaks).
        let top = bin_of(5000.0).max(bin_of(1500.0));
        let (mut power, mut mag, mut db) = (Vec::new(), Vec::new(), Vec::new());
        let (mut norm, mut prev) = (Vec::<f32>::new(), Vec::<f32>::new());
        let mut bands = vec![0f32; MEL_BANDS];
        let mut mel_db = Vec::with_capacity(starts.len() * MEL_BANDS);
        let mut out = Vec::with_capacity(starts.len());
        for &s in &starts {
            let end = (s + self.frame).min(y.len());
            let x = &y[s.min(end)..end];
            input.fill(0.0);
            for (i, (&v, &w)) in x.iter().zip(&self.window).enumerate() {
                input[i] = v * w;
            }
            self.fft
                .process(&mut input, &mut spectrum)
                .expect("planned sizes");
            power.clear();
            power.extend(spectrum.iter().map(|c| c.norm_sqr()));
            mag.clear();
            mag.extend(power.iter().map(|p| p.sqrt()));
            let mut f = SpectralFrame::default();
            let n = self.frame as f64;
            let e = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n;
            f.rms_db = (10.0 * (e + 1e-10).log10()) as f32;
            let crossings = x
                .windows(2)
                .filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0))
                .count();
            f.zcr = crossings as f32 / (self.frame.max(2) - 1) as f32;
            self.mel.apply(&power, &mut bands);
            f.loudness = bands.iter().map(|&b| b.max(0.0).powf(0.3)).sum();
            mel_db.extend(bands.iter().map(|&b| 10.0 * b.max(1e-10).log10()));
            let total: f64 = mag.iter().map(|&m| m as f64).sum();
            if total > 0.0 {
                f.centroid = (mag
                    .iter()
                    .enumerate()
                    .map(|(k, &m)| hz(k) as f64 * m as f64)
                    .sum::<f64>()
                    / total) as f32;
                let mut acc = 0f64;
                let mut k_roll = bins - 1;
                for (k, &m) in mag.iter().enumerate() {
                    acc += m as f64;
                    if acc >= 0.85 * total {
                        k_roll = k;
                        break;
                    }
                }
                f.rolloff = hz(k_roll);
            }
            norm.clear();
            norm.extend(mag.iter().map(|&m| (m as f64 / total.max(1e-12)) as f32));
            if !prev.is_empty() {
                f.flux = norm.iter().zip(&prev).map(|(a, b)| (a - b) * (a - b)).sum();
            }
            std::mem::swap(&mut norm, &mut prev);
            db.clear();
            db.extend(power[..=top].iter().map(|&p| 10.0 * p.max(1e-12).log10()));
            f.slope_0_500 = slope(&db, bin_of(0.0), bin_of(500.0), &hz);
            f.slope_500_1500 = slope(&db, bin_of(500.0), bin_of(1500.0), &hz);
            let band = |lo: f32, hi: f32| -> f64 {
                power[bin_of(lo)..=bin_of(hi)]
                    .iter()
                    .map(|&p| p as f64)
                    .sum()
            };
            f.alpha_ratio = (10.0
                * ((band(50.0, 1000.0) + 1e-12) / (band(1000.0, 5000.0) + 1e-12)).log10())
                as f32;
            let peak = |lo: f32, hi: f32| -> f32 {
                db[bin_of(lo)..=bin_of(hi)]
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max)
            };
            f.hammarberg = peak(0.0, 2000.0) - peak(2000.0, 5000.0);
            out.push(f);
        }
        let cepstra = self
            .dct
            .apply(&Spectrogram {
                n_frames: starts.len(),
                n_mels: MEL_BANDS,
                data: mel_db,
            })
            .expect("band count matches");
        for (t, f) in out.iter_mut().enumerate() {
            f.mfcc = cepstra.frame(t)[1..=self.n_mfcc].to_vec();
        }
        out
    }
}

/// Least-squares slope of `db[lo..=hi]` against frequency, in dB per kHz.
fn slope(db: &[f32], lo: usize, hi: usize, hz: &dyn Fn(usize) -> f32) -> f32 {
    if hi <= lo {
        return 0.0;
    }
    let n = (hi - lo + 1) as f64;
    let xs: Vec<f64> = (lo..=hi).map(|k| hz(k) as f64 / 1000.0).collect();
    let mx = xs.iter().sum::<f64>() / n;
    let my = db[lo..=hi].iter().map(|&v| v as f64).sum::<f64>() / n;
    let sxy: f64 = xs
        .iter()
        .zip(&db[lo..=hi])
        .map(|(x, &y)| (x - mx) * (y as f64 - my))
        .sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx > 0.0 {
        (sxy / sxx) as f32
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(f: f32, sr: f32, n: usize, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * f * i as f32 / sr).sin())
            .collect()
    }

    #[test]
    fn a_sine_has_its_frequency_as_centroid_and_known_rms_and_zcr() {
        let sr = 16000.0;
        let a = SpectralAnalyzer::new(sr, 400, 13);
        let frames = a.frames(&sine(1000.0, sr, 4000, 0.5), 160);
        for f in &frames {
            assert!(
                (f.centroid - 1000.0).abs() < 60.0,
                "centroid {}",
                f.centroid
            );
            assert!((f.rolloff - 1000.0).abs() < 60.0, "roll-off {}", f.rolloff);
            // RMS of a sine of amplitude 0.5: 0.5/√2 → 20·log10 = −9.03 dB.
            assert!((f.rms_db + 9.03).abs() < 0.1, "rms {}", f.rms_db);
            // 1 kHz at 16 kHz: 2 crossings per 16 samples.
            assert!((f.zcr - 0.125).abs() < 0.01, "zcr {}", f.zcr);
            // All energy below 1 kHz → alpha ratio strongly positive; a 1 kHz peak dominates
            // 0-2 kHz over 2-5 kHz.
            assert!(f.hammarberg > 20.0, "hammarberg {}", f.hammarberg);
        }
        // A steady tone has (almost) no flux after the first frame.
        assert!(frames[1..].iter().all(|f| f.flux < 1e-3));
    }

    #[test]
    fn louder_is_louder_and_high_frequencies_lower_the_alpha_ratio() {
        let sr = 16000.0;
        let a = SpectralAnalyzer::new(sr, 400, 4);
        let quiet = &a.frames(&sine(500.0, sr, 1600, 0.05), 160)[2];
        let loud = &a.frames(&sine(500.0, sr, 1600, 0.5), 160)[2];
        assert!(loud.loudness > quiet.loudness * 2.0);
        let low = &a.frames(&sine(500.0, sr, 1600, 0.3), 160)[2];
        let high = &a.frames(&sine(3000.0, sr, 1600, 0.3), 160)[2];
        assert!(
            low.alpha_ratio > 10.0 && high.alpha_ratio < -10.0,
            "{} {}",
            low.alpha_ratio,
            high.alpha_ratio
        );
        assert_eq!(low.mfcc.len(), 4);
    }

    #[test]
    fn slope_of_a_line_is_its_gradient() {
        let hz = |k: usize| k as f32 * 10.0;
        let db: Vec<f32> = (0..200)
            .map(|k| -3.0 * (k as f32 * 10.0) / 1000.0 + 5.0)
            .collect();
        assert!((slope(&db, 0, 150, &hz) + 3.0).abs() < 1e-4);
    }
}
