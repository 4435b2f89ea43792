//! Frame-major feature matrices returned by the mel front end.

use serde::{Deserialize, Serialize};

use super::db::{power_to_db_in_place, DbParams};
use super::error::DspError;

/// A mel spectrogram (power, magnitude or dB), **frames × n_mels, row-major**:
/// `data[frame * n_mels + band]`. This is the transpose of librosa's `(n_mels, frames)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spectrogram {
    /// Number of frames (rows).
    pub n_frames: usize,
    /// Number of mel bands (columns).
    pub n_mels: usize,
    /// `n_frames * n_mels` values.
    pub data: Vec<f32>,
}

impl Spectrogram {
    /// An all-zero spectrogram of the given shape.
    pub fn zeros(n_frames: usize, n_mels: usize) -> Self {
        Spectrogram {
            n_frames,
            n_mels,
            data: vec![0.0; n_frames * n_mels],
        }
    }

    /// The bands of frame `t`.
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * self.n_mels..(t + 1) * self.n_mels]
    }

    /// Value of band `m` in frame `t`.
    pub fn get(&self, t: usize, m: usize) -> f32 {
        self.data[t * self.n_mels + m]
    }

    /// Iterator over frames (rows).
    pub fn frames(&self) -> impl Iterator<Item = &[f32]> {
        (0..self.n_frames).map(move |t| self.frame(t))
    }

    /// Copy in librosa's layout: `(n_mels, n_frames)` row-major.
    pub fn to_mel_major(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.data.len()];
        for t in 0..self.n_frames {
            for m in 0..self.n_mels {
                out[m * self.n_frames + t] = self.data[t * self.n_mels + m];
            }
        }
        out
    }

    /// `librosa.power_to_db` of the whole matrix (reference and `top_db` floor are computed
    /// over the whole clip).
    pub fn power_to_db(&self, params: &DbParams) -> Result<Spectrogram, DspError> {
        let mut out = self.clone();
        out.power_to_db_in_place(params)?;
        Ok(out)
    }

    /// In-place version of [`Self::power_to_db`] (no copy of the matrix).
    pub fn power_to_db_in_place(&mut self, params: &DbParams) -> Result<(), DspError> {
        power_to_db_in_place(&mut self.data, params)
    }
}
