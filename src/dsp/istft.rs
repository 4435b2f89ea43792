//! Inverse STFT by weighted overlap-add, matching `librosa.istft` with an explicit `length`.
//!
//! Each frame is inverted with a planned `f32` inverse real FFT (imaginary parts of the DC
//! and Nyquist bins are ignored, as `irfft` does), multiplied by the synthesis window and
//! overlap-added; the result is divided by the overlap-added squared window wherever that
//! envelope exceeds the smallest normal `f32` (librosa's `util.tiny`).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner};

use super::error::DspError;
use super::stft::{ComplexStft, StftParams};
use super::window::{stft_window, stft_window_squared};

/// A planned inverse STFT; shareable across threads.
#[derive(Clone)]
pub struct IstftPlan {
    params: StftParams,
    window: Vec<f32>,
    window_sq: Vec<f32>,
    ifft: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for IstftPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IstftPlan")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl IstftPlan {
    /// Validates `params` and plans the inverse FFT.
    pub fn new(params: StftParams) -> Result<Self, DspError> {
        params.validate()?;
        Ok(IstftPlan {
            params,
            window: stft_window(params.win_length, params.n_fft),
            window_sq: stft_window_squared(params.win_length, params.n_fft),
            ifft: RealFftPlanner::<f32>::new().plan_fft_inverse(params.n_fft),
        })
    }

    /// The framing parameters.
    pub fn params(&self) -> &StftParams {
        &self.params
    }

    /// Reconstructs exactly `length` samples from `stft` (missing samples are zero).
    pub fn process(&self, stft: &ComplexStft, length: usize) -> Result<Vec<f32>, DspError> {
        let n_fft = self.params.n_fft;
        let n_bins = self.params.n_bins();
        if stft.n_bins != n_bins {
            return Err(DspError::invalid(
                "n_fft",
                format!(
                    "STFT has {} bins, plan for n_fft={n_fft} expects {n_bins}",
                    stft.n_bins
                ),
            ));
        }
        let pad = self.params.pad() as isize;
        let hop = self.params.hop as isize;
        let mut y = vec![0.0f32; length];
        let mut envelope = vec![0.0f32; length];
        let mut spectrum: Vec<Complex<f32>> = self.ifft.make_input_vec();
        let mut frame = self.ifft.make_output_vec();
        let mut scratch = self.ifft.make_scratch_vec();
        let scale = 1.0 / n_fft as f32;

        for t in 0..stft.n_frames {
            // Output sample of frame tap i: t * hop + i - pad.
            let start = t as isize * hop - pad;
            if start >= length as isize {
                break;
            }
            let lo = (-start).max(0) as usize;
            let hi = (length as isize - start).min(n_fft as isize) as usize;
            if lo >= hi {
                continue;
            }
            spectrum.copy_from_slice(stft.frame(t));
            spectrum[0].im = 0.0;
            if n_fft.is_multiple_of(2) {
                spectrum[n_bins - 1].im = 0.0;
            }
            self.ifft
                .process_with_scratch(&mut spectrum, &mut frame, &mut scratch)
                .expect("buffers were allocated by this plan");
            let base = (start + lo as isize) as usize;
            let out = &mut y[base..base + (hi - lo)];
            let env = &mut envelope[base..base + (hi - lo)];
            for (i, (o, e)) in out.iter_mut().zip(env.iter_mut()).enumerate() {
                let tap = lo + i;
                *o += self.window[tap] * (frame[tap] * scale);
                *e += self.window_sq[tap];
            }
        }
        for (v, &e) in y.iter_mut().zip(&envelope) {
            if e > f32::MIN_POSITIVE {
                *v /= e;
            }
        }
        Ok(y)
    }
}

/// One-shot inverse STFT producing exactly `length` samples.
pub fn istft(stft: &ComplexStft, params: &StftParams, length: usize) -> Result<Vec<f32>, DspError> {
    IstftPlan::new(*params)?.process(stft, length)
}

#[cfg(test)]
mod tests {
    use super::super::stft::StftPlan;
    use super::*;

    #[test]
    fn stft_istft_round_trip() {
        for (n_fft, hop, win, center) in [
            (2048, 512, 2048, true),
            (512, 128, 400, true),
            (256, 64, 256, false),
        ] {
            let p = StftParams {
                n_fft,
                hop,
                win_length: win,
                center,
            };
            let y: Vec<f32> = (0..5000)
                .map(|i| (i as f32 * 0.013).sin() * 0.5 + ((i * 7 % 13) as f32 - 6.0) * 0.01)
                .collect();
            let s = StftPlan::new(p).unwrap().complex(&y);
            let back = istft(&s, &p, y.len()).unwrap();
            assert_eq!(back.len(), y.len());
            // Without centring, the edges are only covered by the tapering window ends.
            let (a, b) = if center {
                (0, 5000)
            } else {
                (n_fft / 4, 5000 - n_fft)
            };
            for i in a..b {
                assert!((back[i] - y[i]).abs() < 1e-4, "{p:?} sample {i}");
            }
        }
    }

    #[test]
    fn length_longer_than_frames_is_zero_filled() {
        let p = StftParams::default();
        let y = vec![0.3f32; 1000];
        let s = StftPlan::new(p).unwrap().complex(&y);
        let back = istft(&s, &p, 5000).unwrap();
        assert!((back[500] - 0.3).abs() < 1e-4);
        assert!(back[4500..].iter().all(|&v| v == 0.0));
    }
}
