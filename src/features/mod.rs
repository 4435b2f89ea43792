//! Feature stage: waveform → (augmented) log-mel / MFCC frames, cached to Parquet.
//!
//! [`crate::dsp`] holds the librosa-exact signal processing; [`pipeline`] the typed YAML config;
//! [`augment`] the deterministic augmentations; [`frames`] the frame policies; [`stage`] runs it
//! all over a corpus with rayon into the [`crate::cache`].

pub mod augment;
pub mod delta;
pub mod embeddings;
pub mod frames;
pub mod functionals;
pub mod pipeline;
pub mod stage;

pub use pipeline::Pipeline;
pub use stage::{featurize, FeaturizeReport};

use crate::dsp::{DbParams, DbRef, DspError, MelExtractor, MfccTransform};

/// Errors of building or running a feature extractor.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Dsp(#[from] DspError),
    #[error(transparent)]
    Encoder(#[from] crate::encoders::EncoderError),
}

/// Everything needed to turn one waveform into its feature matrix under a pipeline; built once,
/// shared by all threads.
pub struct FeatureExtractor {
    mel: MelExtractor,
    db: Option<DbParams>,
    mfcc: Option<MfccTransform>,
    deltas: Option<pipeline::DeltaSpec>,
    functionals: Option<functionals::Functionals>,
    embedder: Option<embeddings::Embedder>,
    frames: pipeline::FramesSpec,
    n_bins: usize,
    n_features: usize,
}

impl FeatureExtractor {
    pub fn new(p: &Pipeline) -> Result<Self, FeatureError> {
        let db = p.db.as_ref().map(|d| DbParams {
            reference: match d.reference {
                pipeline::DbRef::Max => DbRef::Max,
                pipeline::DbRef::One => DbRef::Value(1.0),
            },
            amin: d.amin,
            top_db: d.top_db,
        });
        Ok(FeatureExtractor {
            mel: MelExtractor::new(p.mel_params())?,
            db,
            mfcc: p
                .mfcc
                .as_ref()
                .map(|m| MfccTransform::new(p.n_mels, m.n))
                .transpose()?,
            deltas: p.deltas.clone(),
            functionals: p
                .functionals
                .as_ref()
                .map(|f| functionals::Functionals::new(f, p.sample_rate)),
            embedder: p
                .encoder
                .as_ref()
                .map(|e| embeddings::Embedder::new(e, tch::Device::cuda_if_available()))
                .transpose()?,
            frames: p.frames.clone(),
            n_bins: p.n_bins(),
            n_features: p.n_features(),
        })
    }

    /// Features of mono samples at the pipeline's rate: (frames, frame-major values).
    pub fn compute(&self, y: &[f32]) -> Result<(usize, Vec<f32>), FeatureError> {
        if let Some(f) = &self.functionals {
            return Ok((1, f.compute(y)));
        }
        if self.embedder.is_some() {
            return self.compute_many(&[y]).pop().expect("one clip");
        }
        let mut spec = self.mel.power_mel(y);
        if let Some(db) = &self.db {
            spec.power_to_db_in_place(db)?;
        }
        let mut data = match &self.mfcc {
            Some(t) => t.apply(&spec)?.data,
            None => spec.data,
        };
        let real = data.len() / self.n_bins.max(1);
        if let Some(d) = &self.deltas {
            data = delta::with_deltas(&data, self.n_bins, d.order, d.width);
        }
        let n = frames::apply(&self.frames, &mut data, self.n_features);
        // Padded frames hold the pad value in the static channel and no change (0) in Δ / ΔΔ.
        let padded = matches!(
            self.frames.mode,
            pipeline::FrameMode::Pad | pipeline::FrameMode::PadCrop
        ) && n > real;
        if self.deltas.is_some() && padded {
            for frame in data[real * self.n_features..].chunks_exact_mut(self.n_features) {
                frame[self.n_bins..].fill(0.0);
            }
        }
        Ok((n, data))
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Whether this extractor runs a pretrained encoder (the stage then batches clips).
    pub fn uses_encoder(&self) -> bool {
        self.embedder.is_some()
    }

    /// Features of several clips; an encoder embeds them in batches.
    pub fn compute_many(&self, ys: &[&[f32]]) -> Vec<Result<(usize, Vec<f32>), FeatureError>> {
        let Some(e) = &self.embedder else {
            return ys.iter().map(|y| self.compute(y)).collect();
        };
        e.embed_many(ys)
            .into_iter()
            .map(|r| {
                let (n, mut data) = r?;
                if n == 1 && self.frames.mode == pipeline::FrameMode::None {
                    return Ok((1, data));
                }
                let n = frames::apply(&self.frames, &mut data, self.n_features);
                Ok((n, data))
            })
            .collect()
    }
}
