//! MFCCs: orthonormal DCT-II of a dB mel spectrogram along the mel axis, keeping the first
//! `n_mfcc` coefficients — `librosa.feature.mfcc(S=power_to_db(mel), n_mfcc=...)`
//! (`dct_type=2, norm="ortho", lifter=0`).

use serde::{Deserialize, Serialize};

use super::error::DspError;
use super::simd::avx2_dispatch;
use super::spectrogram::Spectrogram;

/// MFCC matrix, **frames × n_mfcc, row-major**: `data[frame * n_mfcc + coefficient]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mfcc {
    /// Number of frames (rows).
    pub n_frames: usize,
    /// Number of coefficients per frame (columns).
    pub n_mfcc: usize,
    /// `n_frames * n_mfcc` values.
    pub data: Vec<f32>,
}

impl Mfcc {
    /// The coefficients of frame `t`.
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * self.n_mfcc..(t + 1) * self.n_mfcc]
    }
}

/// Precomputed truncated DCT-II (orthonormal) basis for a fixed `(n_mels, n_mfcc)`.
#[derive(Debug, Clone, PartialEq)]
pub struct MfccTransform {
    n_mels: usize,
    n_mfcc: usize,
    /// `basis[n * n_mfcc + k] = s_k · cos(π k (2n + 1) / (2 n_mels))` (evaluated in `f64`),
    /// mel-major so that the inner loop over `k` is a vectorisable axpy.
    basis: Vec<f32>,
}

impl MfccTransform {
    /// Builds the basis; requires `1 <= n_mfcc <= n_mels`.
    pub fn new(n_mels: usize, n_mfcc: usize) -> Result<Self, DspError> {
        if n_mels == 0 {
            return Err(DspError::invalid("n_mels", "must be > 0"));
        }
        if n_mfcc == 0 || n_mfcc > n_mels {
            return Err(DspError::invalid(
                "n_mfcc",
                format!("must be in 1..={n_mels} (n_mels), got {n_mfcc}"),
            ));
        }
        let nf = n_mels as f64;
        let mut basis = Vec::with_capacity(n_mels * n_mfcc);
        for n in 0..n_mels {
            for k in 0..n_mfcc {
                let scale = if k == 0 {
                    (1.0 / nf).sqrt()
                } else {
                    (2.0 / nf).sqrt()
                };
                let angle = std::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / (2.0 * nf);
                basis.push((scale * angle.cos()) as f32);
            }
        }
        Ok(MfccTransform {
            n_mels,
            n_mfcc,
            basis,
        })
    }

    /// Number of input bands.
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Number of output coefficients.
    pub fn n_mfcc(&self) -> usize {
        self.n_mfcc
    }

    /// MFCCs of a dB mel spectrogram whose band count must equal `n_mels`.
    pub fn apply(&self, db: &Spectrogram) -> Result<Mfcc, DspError> {
        if db.n_mels != self.n_mels {
            return Err(DspError::invalid(
                "n_mels",
                format!(
                    "spectrogram has {} bands, transform expects {}",
                    db.n_mels, self.n_mels
                ),
            ));
        }
        let mut data = vec![0.0; db.n_frames * self.n_mfcc];
        mfcc_frames(self, &db.data, &mut data);
        Ok(Mfcc {
            n_frames: db.n_frames,
            n_mfcc: self.n_mfcc,
            data,
        })
    }
}

/// Number of mel bands whose products are summed in `f32` before moving to `f64`.
const BLOCK: usize = 16;

/// Applies `tr` to every `n_mels`-long row of `db`, writing `n_mfcc`-long rows into `out`.
///
/// For each frame the products are summed in `f32` over blocks of [`BLOCK`] bands with the
/// coefficient index innermost (an axpy with `n_mfcc` independent accumulators, which
/// vectorises well), and the block sums are accumulated in `f64`: the rounding error of the
/// long sums of large, mostly same-signed dB values stays at the level of a 16-term `f32` sum.
#[inline(always)]
fn mfcc_frames_kernel(tr: &MfccTransform, db: &[f32], out: &mut [f32]) {
    let k = tr.n_mfcc;
    let mut block = vec![0.0f32; k];
    let mut acc = vec![0.0f64; k];
    for (frame, row) in db.chunks_exact(tr.n_mels).zip(out.chunks_exact_mut(k)) {
        acc.fill(0.0);
        for (xs, basis) in frame.chunks(BLOCK).zip(tr.basis.chunks(BLOCK * k)) {
            block.fill(0.0);
            for (&x, weights) in xs.iter().zip(basis.chunks_exact(k)) {
                for (b, &w) in block.iter_mut().zip(weights) {
                    *b += w * x;
                }
            }
            for (a, &b) in acc.iter_mut().zip(&block) {
                *a += b as f64;
            }
        }
        for (o, &a) in row.iter_mut().zip(&acc) {
            *o = a as f32;
        }
    }
}

avx2_dispatch! {
    fn mfcc_frames(tr: &MfccTransform, db: &[f32], out: &mut [f32]) => mfcc_frames_kernel;
}

/// One-shot MFCCs of a dB mel spectrogram (see [`MfccTransform`]).
pub fn mfcc(db: &Spectrogram, n_mfcc: usize) -> Result<Mfcc, DspError> {
    MfccTransform::new(db.n_mels, n_mfcc)?.apply(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthonormal_full_dct_preserves_energy_and_inverts() {
        let n = 16;
        let t = MfccTransform::new(n, n).unwrap();
        let x: Vec<f32> = (0..n)
            .map(|i| (i as f32 * 0.7).sin() * 10.0 - 3.0)
            .collect();
        let s = Spectrogram {
            n_frames: 1,
            n_mels: n,
            data: x.clone(),
        };
        let c = t.apply(&s).unwrap();
        let e_in: f32 = x.iter().map(|v| v * v).sum();
        let e_out: f32 = c.data.iter().map(|v| v * v).sum();
        assert!((e_in - e_out).abs() < 1e-4 * e_in);
        // Orthonormal: the inverse is the transpose.
        for (i, &xi) in x.iter().enumerate() {
            let back: f64 = (0..n)
                .map(|k| t.basis[i * n + k] as f64 * c.data[k] as f64)
                .sum();
            assert!((back as f32 - xi).abs() < 1e-4);
        }
    }

    #[test]
    fn constant_input_only_has_dc() {
        let s = Spectrogram {
            n_frames: 2,
            n_mels: 8,
            data: vec![2.0; 16],
        };
        let c = mfcc(&s, 4).unwrap();
        assert_eq!((c.n_frames, c.n_mfcc), (2, 4));
        for f in 0..2 {
            let fr = c.frame(f);
            assert!((fr[0] - 2.0 * 8f32.sqrt()).abs() < 1e-5);
            assert!(fr[1..].iter().all(|v| v.abs() < 1e-5));
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(MfccTransform::new(8, 0).is_err());
        assert!(MfccTransform::new(8, 9).is_err());
        let t = MfccTransform::new(8, 4).unwrap();
        assert!(t.apply(&Spectrogram::zeros(3, 7)).is_err());
    }
}
