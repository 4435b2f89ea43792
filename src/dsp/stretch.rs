//! Phase-vocoder time stretching and pitch shifting, matching `librosa.effects.time_stretch`
//! and `librosa.effects.pitch_shift` (librosa 0.11, `n_fft=2048`, `hop_length=512` defaults).
//!
//! The phase vocoder follows `librosa.phase_vocoder` step by step: analysis positions
//! `arange(0, n_frames, rate)`, two zero frames appended, linear magnitude interpolation,
//! phase advance wrapped with round-half-even, and a `float32` phase accumulator updated from
//! `float64` increments (librosa's dtype behaviour, which matters over long clips). Pitch
//! shifting resamples with [`SincResampler`] where librosa uses `soxr_hq`, so it is close to
//! but not sample-identical with librosa.

use realfft::num_complex::Complex;

use super::error::DspError;
use super::fastmath;
use super::istft::IstftPlan;
use super::resample::{fix_length, SincResampler};
use super::simd::avx2_dispatch;
use super::stft::{ComplexStft, StftParams, StftPlan};

/// `librosa.phase_vocoder(D, rate=rate, hop_length=hop, n_fft=n_fft)` on a frame-major STFT.
/// Produces `ceil(n_frames / rate)` frames; `rate` must be finite and > 0.
pub fn phase_vocoder(
    stft: &ComplexStft,
    rate: f64,
    hop: usize,
    n_fft: usize,
) -> Result<ComplexStft, DspError> {
    check_rate(rate)?;
    let n_bins = stft.n_bins;
    let n_in = stft.n_frames;
    if n_in == 0 || n_bins == 0 {
        return Ok(ComplexStft {
            n_frames: 0,
            n_bins,
            data: Vec::new(),
        });
    }
    // len(np.arange(0, n_in, rate)) = ceil(n_in / rate)
    let n_out = (n_in as f64 / rate).ceil() as usize;
    // phi_advance = hop * rfftfreq(n_fft, 1 / (2 pi))
    let bin_rad = 1.0 / (n_fft as f64 * (1.0 / (2.0 * std::f64::consts::PI)));
    let phi_advance: Vec<f64> = (0..n_bins)
        .map(|k| hop as f64 * (k as f64 * bin_rad))
        .collect();
    let mut data = vec![Complex::new(0.0, 0.0); n_out * n_bins];
    vocoder(stft, rate, &phi_advance, &mut data);
    Ok(ComplexStft {
        n_frames: n_out,
        n_bins,
        data,
    })
}

/// The phase-vocoder loops: `out` holds `ceil(n_frames / rate)` frames of `stft.n_bins` bins.
#[inline(always)]
fn vocoder_kernel(stft: &ComplexStft, rate: f64, phi_advance: &[f64], out: &mut [Complex<f32>]) {
    let n_bins = stft.n_bins;
    let n_in = stft.n_frames;
    let two_pi = 2.0 * std::f64::consts::PI;

    // Magnitudes and phases of every input frame (float32, like np.abs / np.angle on
    // complex64), followed by the two zero frames librosa pads with.
    let mut mag = vec![0.0f32; (n_in + 2) * n_bins];
    let mut ang = vec![0.0f32; (n_in + 2) * n_bins];
    for ((c, m), a) in stft.data.iter().zip(&mut mag).zip(&mut ang) {
        *m = (c.re * c.re + c.im * c.im).sqrt();
        *a = fastmath::atan2(c.im, c.re);
    }

    let mut phase_acc: Vec<f32> = ang[..n_bins].to_vec();
    for (t, frame) in out.chunks_exact_mut(n_bins).enumerate() {
        let step = t as f64 * rate;
        let i0 = step as usize;
        let alpha = step - step.floor();
        let m0 = &mag[i0 * n_bins..(i0 + 1) * n_bins];
        let m1 = &mag[(i0 + 1) * n_bins..(i0 + 2) * n_bins];
        let a0 = &ang[i0 * n_bins..(i0 + 1) * n_bins];
        let a1 = &ang[(i0 + 1) * n_bins..(i0 + 2) * n_bins];
        for k in 0..n_bins {
            let magnitude = (1.0 - alpha) * m0[k] as f64 + alpha * m1[k] as f64;
            let (sin, cos) = fastmath::sin_cos(phase_acc[k]);
            frame[k] = Complex::new(
                (cos as f64 * magnitude) as f32,
                (sin as f64 * magnitude) as f32,
            );
            let mut dphase = (a1[k] - a0[k]) as f64 - phi_advance[k];
            dphase -= two_pi * (dphase / two_pi).round_ties_even();
            // numpy: float32 phase_acc += float64 (phi_advance + dphase), rounded to float32.
            phase_acc[k] = (phase_acc[k] as f64 + (phi_advance[k] + dphase)) as f32;
        }
    }
}

avx2_dispatch! {
    fn vocoder(
        stft: &ComplexStft,
        rate: f64,
        phi_advance: &[f64],
        out: &mut [Complex<f32>],
    ) => vocoder_kernel;
}

fn check_rate(rate: f64) -> Result<(), DspError> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        Err(DspError::invalid(
            "rate",
            format!("must be finite and > 0, got {rate}"),
        ))
    }
}

/// Planned time stretcher / pitch shifter for one `(n_fft, hop)` pair (Hann window of
/// `n_fft`, centred frames). Shareable across threads.
#[derive(Debug, Clone)]
pub struct TimeStretcher {
    analysis: StftPlan,
    synthesis: IstftPlan,
}

impl TimeStretcher {
    /// Plans the forward and inverse transforms.
    pub fn new(n_fft: usize, hop: usize) -> Result<Self, DspError> {
        let params = StftParams {
            n_fft,
            hop,
            win_length: n_fft,
            center: true,
        };
        Ok(TimeStretcher {
            analysis: StftPlan::new(params)?,
            synthesis: IstftPlan::new(params)?,
        })
    }

    /// `librosa.effects.time_stretch(y, rate=rate)`: `rate > 1` speeds up. Returns
    /// `round(len / rate)` samples (round-half-even, like Python's `round`).
    pub fn time_stretch(&self, y: &[f32], rate: f64) -> Result<Vec<f32>, DspError> {
        let p = self.analysis.params();
        let stretched = phase_vocoder(&self.analysis.complex(y), rate, p.hop, p.n_fft)?;
        let len = (y.len() as f64 / rate).round_ties_even() as usize;
        self.synthesis.process(&stretched, len)
    }

    /// `librosa.effects.pitch_shift(y, sr=sample_rate, n_steps=n_steps,
    /// bins_per_octave=bins_per_octave)`: time-stretch by `2^(-n_steps / bins_per_octave)`,
    /// resample from `sr / rate` to `sr`, then fix the length to `y.len()`.
    pub fn pitch_shift(
        &self,
        y: &[f32],
        sample_rate: u32,
        n_steps: f64,
        bins_per_octave: u32,
    ) -> Result<Vec<f32>, DspError> {
        if bins_per_octave == 0 {
            return Err(DspError::invalid("bins_per_octave", "must be > 0"));
        }
        if sample_rate == 0 {
            return Err(DspError::invalid("sample_rate", "must be > 0"));
        }
        if !n_steps.is_finite() {
            return Err(DspError::invalid("n_steps", "must be finite"));
        }
        let rate = 2f64.powf(-n_steps / bins_per_octave as f64);
        let stretched = self.time_stretch(y, rate)?;
        let sr = sample_rate as f64;
        let resampler = SincResampler::new(sr / rate, sr)?;
        let n = resampler.output_len(stretched.len());
        Ok(fix_length(resampler.process_to_len(&stretched, n), y.len()))
    }
}

/// One-shot [`TimeStretcher::time_stretch`] with the given `n_fft` and `hop`
/// (librosa's defaults are 2048 and 512).
pub fn time_stretch(y: &[f32], rate: f64, n_fft: usize, hop: usize) -> Result<Vec<f32>, DspError> {
    TimeStretcher::new(n_fft, hop)?.time_stretch(y, rate)
}

/// One-shot [`TimeStretcher::pitch_shift`] with librosa's `n_fft = 2048`, `hop = 512`.
pub fn pitch_shift(
    y: &[f32],
    sample_rate: u32,
    n_steps: f64,
    bins_per_octave: u32,
) -> Result<Vec<f32>, DspError> {
    TimeStretcher::new(2048, 512)?.pitch_shift(y, sample_rate, n_steps, bins_per_octave)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, sr: f64, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / sr).sin()) as f32)
            .collect()
    }

    /// Frequency of the strongest DFT bin of `y` (coarse, direct DFT on a grid).
    fn peak_freq(y: &[f32], sr: f64, lo: f64, hi: f64) -> f64 {
        let mut best = (0.0, lo);
        let mut f = lo;
        while f < hi {
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (i, &v) in y.iter().enumerate() {
                let a = 2.0 * std::f64::consts::PI * f * i as f64 / sr;
                re += v as f64 * a.cos();
                im += v as f64 * a.sin();
            }
            let p = re * re + im * im;
            if p > best.0 {
                best = (p, f);
            }
            f += 1.0;
        }
        best.1
    }

    #[test]
    fn vocoder_frame_count() {
        let s = ComplexStft {
            n_frames: 10,
            n_bins: 3,
            data: vec![Complex::new(1.0, 0.0); 30],
        };
        let frames = |rate| phase_vocoder(&s, rate, 1, 4).unwrap().n_frames;
        assert_eq!(frames(1.0), 10);
        assert_eq!(frames(1.25), 8);
        assert_eq!(frames(0.5), 20);
        assert_eq!(frames(3.0), 4);
        assert!(phase_vocoder(&s, 0.0, 1, 4).is_err());
    }

    #[test]
    fn unit_rate_is_near_identity() {
        let y = tone(440.0, 16000.0, 16000);
        let out = time_stretch(&y, 1.0, 2048, 512).unwrap();
        assert_eq!(out.len(), y.len());
        let err = y
            .iter()
            .zip(&out)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max err {err}");
    }

    #[test]
    fn stretch_keeps_pitch_and_changes_length() {
        let sr = 16000.0;
        let y = tone(440.0, sr, 16000);
        for rate in [0.8, 1.25] {
            let out = time_stretch(&y, rate, 2048, 512).unwrap();
            assert_eq!(out.len(), (16000.0 / rate).round() as usize);
            let mid = &out[4000..8000];
            assert!((peak_freq(mid, sr, 400.0, 480.0) - 440.0).abs() <= 2.0);
        }
    }

    #[test]
    fn pitch_shift_moves_the_tone() {
        let sr = 16000;
        let y = tone(440.0, sr as f64, 16000);
        let out = pitch_shift(&y, sr, 2.0, 12).unwrap();
        assert_eq!(out.len(), y.len());
        let expect = 440.0 * 2f64.powf(2.0 / 12.0); // 493.9 Hz
        let f = peak_freq(&out[4000..12000], sr as f64, 420.0, 560.0);
        assert!((f - expect).abs() <= 2.0, "peak at {f}, expected {expect}");
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(time_stretch(&[0.0; 100], 0.0, 2048, 512).is_err());
        assert!(time_stretch(&[0.0; 100], f64::NAN, 2048, 512).is_err());
        assert!(pitch_shift(&[0.0; 100], 16000, 1.0, 0).is_err());
        assert!(time_stretch(&[], 1.5, 2048, 512).unwrap().is_empty());
    }
}
