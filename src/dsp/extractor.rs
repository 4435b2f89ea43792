//! [`MelExtractor`]: the planned, reusable, thread-shareable mel-spectrogram front end
//! (`librosa.feature.melspectrogram` with [`MelParams`]).

use super::db::DbParams;
use super::error::DspError;
use super::mel::MelFilterbank;
use super::params::MelParams;
use super::simd::avx2_dispatch;
use super::spectrogram::Spectrogram;
use super::stft::{PowerLaw, StftPlan, StftWorkspace};

/// Per-thread scratch space for [`MelExtractor::power_mel_into`].
pub struct MelWorkspace {
    stft: StftWorkspace,
    power: Vec<f32>,
}

/// Mel-spectrogram extractor: FFT plan, window and sparse filterbank are built once in
/// [`MelExtractor::new`]; extraction takes `&self`, so one instance can be shared by many
/// threads (it is `Send + Sync`).
#[derive(Debug, Clone)]
pub struct MelExtractor {
    params: MelParams,
    stft: StftPlan,
    filterbank: MelFilterbank,
    law: PowerLaw,
}

impl MelExtractor {
    /// Validates `params` and precomputes everything.
    pub fn new(params: MelParams) -> Result<Self, DspError> {
        params.validate()?;
        Ok(MelExtractor {
            params,
            stft: StftPlan::new(params.stft_params())?,
            filterbank: MelFilterbank::new(&params.filterbank_spec()),
            law: PowerLaw::new(params.power),
        })
    }

    /// The configuration.
    pub fn params(&self) -> &MelParams {
        &self.params
    }

    /// The sparse mel filterbank in use.
    pub fn filterbank(&self) -> &MelFilterbank {
        &self.filterbank
    }

    /// Number of frames produced for `len` samples.
    pub fn n_frames(&self, len: usize) -> usize {
        self.params.stft_params().n_frames(len)
    }

    /// Allocates scratch buffers for [`Self::power_mel_into`].
    pub fn workspace(&self) -> MelWorkspace {
        MelWorkspace {
            stft: self.stft.workspace(),
            power: vec![0.0; self.params.stft_params().n_bins()],
        }
    }

    /// Mel spectrogram (`|STFT|^power` projected on the mel bands), frames × n_mels.
    pub fn power_mel(&self, y: &[f32]) -> Spectrogram {
        let mut out = Spectrogram::zeros(0, self.params.n_mels);
        self.power_mel_into(y, &mut self.workspace(), &mut out);
        out
    }

    /// Like [`Self::power_mel`], reusing `ws` and the allocation of `out` (which is resized).
    /// A workspace made by an extractor with a different `n_fft` is replaced.
    pub fn power_mel_into(&self, y: &[f32], ws: &mut MelWorkspace, out: &mut Spectrogram) {
        if ws.power.len() != self.params.stft_params().n_bins()
            || ws.stft.n_fft() != self.params.n_fft
        {
            *ws = self.workspace();
        }
        let n_mels = self.params.n_mels;
        let n_frames = self.n_frames(y.len());
        out.n_frames = n_frames;
        out.n_mels = n_mels;
        out.data.clear();
        out.data.resize(n_frames * n_mels, 0.0);
        mel_frames(self, y, ws, &mut out.data);
    }

    /// `power_to_db(power_mel(y))` with the given dB settings.
    pub fn log_mel(&self, y: &[f32], db: &DbParams) -> Result<Spectrogram, DspError> {
        let mut mel = self.power_mel(y);
        mel.power_to_db_in_place(db)?;
        Ok(mel)
    }
}

/// Per-frame loop of [`MelExtractor::power_mel_into`]: STFT power of each frame projected
/// on the mel bands, written row by row into `out` (already sized `n_frames * n_mels`).
#[inline(always)]
fn mel_frames_kernel(ex: &MelExtractor, y: &[f32], ws: &mut MelWorkspace, out: &mut [f32]) {
    for (t, row) in out.chunks_exact_mut(ex.params.n_mels).enumerate() {
        ex.stft
            .frame_power(y, t, ex.law, &mut ws.stft, &mut ws.power);
        ex.filterbank.apply(&ws.power, row);
    }
}

avx2_dispatch! {
    fn mel_frames(
        ex: &MelExtractor,
        y: &[f32],
        ws: &mut MelWorkspace,
        out: &mut [f32],
    ) => mel_frames_kernel;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn extractor_is_shareable() {
        assert_send_sync::<MelExtractor>();
    }

    #[test]
    fn frame_counts_and_shapes() {
        let ex = MelExtractor::new(MelParams {
            sample_rate: 16000,
            ..MelParams::default()
        })
        .unwrap();
        for (len, frames) in [
            (0, 1),
            (1, 1),
            (511, 1),
            (512, 2),
            (2047, 4),
            (5120, 11),
            (32000, 63),
        ] {
            let y = vec![0.25f32; len];
            let s = ex.power_mel(&y);
            assert_eq!((s.n_frames, s.n_mels), (frames, 128), "len {len}");
            assert_eq!(s.data.len(), frames * 128);
        }
        let nc = MelExtractor::new(MelParams {
            center: false,
            ..MelParams::default()
        })
        .unwrap();
        assert_eq!(nc.power_mel(&[0.1; 2047]).n_frames, 0);
        assert_eq!(nc.power_mel(&[0.1; 2048]).n_frames, 1);
        assert_eq!(nc.power_mel(&[0.1; 2048 + 512]).n_frames, 2);
    }

    #[test]
    fn silence_is_zero_and_sparse_equals_dense() {
        let ex = MelExtractor::new(MelParams {
            n_fft: 256,
            hop: 64,
            win_length: 200,
            n_mels: 24,
            sample_rate: 8000,
            ..MelParams::default()
        })
        .unwrap();
        assert!(ex.power_mel(&[0.0; 1000]).data.iter().all(|&v| v == 0.0));

        let y: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.05).sin() + 0.5 * (i as f32 * 0.9).sin())
            .collect();
        let mel = ex.power_mel(&y);
        let power = ex.stft.power(&y, 2.0);
        let dense = ex.filterbank.to_dense();
        for t in 0..mel.n_frames {
            for m in 0..24 {
                let d: f32 = (0..129)
                    .map(|k| dense[m * 129 + k] * power.frame(t)[k])
                    .sum();
                assert!((d - mel.get(t, m)).abs() <= 1e-5 * d.abs().max(1e-12));
            }
        }
    }

    #[test]
    fn workspace_reuse_gives_identical_results() {
        let ex = MelExtractor::new(MelParams::default()).unwrap();
        let mut ws = ex.workspace();
        let mut out = Spectrogram::zeros(0, 0);
        let a: Vec<f32> = (0..9000).map(|i| (i as f32 * 0.01).sin()).collect();
        let b: Vec<f32> = (0..3000).map(|i| (i as f32 * 0.2).cos()).collect();
        ex.power_mel_into(&a, &mut ws, &mut out);
        assert_eq!(out, ex.power_mel(&a));
        ex.power_mel_into(&b, &mut ws, &mut out);
        assert_eq!(out, ex.power_mel(&b));
        // A workspace from an extractor with another n_fft is replaced, not misused.
        let small = MelExtractor::new(MelParams {
            n_fft: 512,
            win_length: 512,
            hop: 128,
            n_mels: 40,
            ..MelParams::default()
        })
        .unwrap();
        small.power_mel_into(&a, &mut ws, &mut out);
        assert_eq!(out, small.power_mel(&a));
    }
}
