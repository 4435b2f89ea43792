//! How a model is trained: the `train:` block of an experiment, typed and checked
//! ([`FitConfig`]), and SpecAugment's masks.

use serde::{Deserialize, Serialize};

use super::*;

/// Settings of one fit (the `train:` block of an experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// scikit-learn's "balanced" class weights in the loss.
    pub class_weights: bool,
    pub label_smoothing: f64,
    /// Stop after this many epochs without a better validation UA.
    pub patience: usize,
    pub seed: u64,
    pub optimizer: optim::OptimizerSpec,
    pub schedule: optim::Schedule,
    /// Clip the global gradient norm to this value.
    pub clip_grad: Option<f64>,
    /// Online SpecAugment on training batches.
    pub spec_augment: Option<SpecAugment>,
    /// Feature standardisation: `per_mel` / `global` (statistics from training clips only),
    /// `speaker` (each speaker's own clips, transductive) or `utterance` (each clip's own).
    pub normalize: NormMode,
    /// Random crops of this many frames for training (new each epoch) and sliding windows with
    /// averaged outputs for evaluation; `null`: whole clips, all of one length.
    pub window: Option<WindowSpec>,
    /// Mixup (Zhang et al., 2018) with this Beta(α, α) parameter, per training batch.
    pub mixup: Option<f64>,
    /// `auto` (CUDA when present), `cpu` or `cuda`.
    pub device: DeviceChoice,
    /// LibTorch intra-op threads (default: LibTorch's, one per core).
    pub threads: Option<usize>,
    /// `fp32`, or `bf16` autocast.
    pub precision: Precision,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 20,
            batch_size: 32,
            lr: 1e-3,
            class_weights: true,
            label_smoothing: 0.0,
            patience: 5,
            seed: 0,
            optimizer: optim::OptimizerSpec::default(),
            schedule: optim::Schedule::Constant,
            clip_grad: None,
            spec_augment: None,
            normalize: NormMode::PerMel,
            window: None,
            mixup: None,
            device: DeviceChoice::Auto,
            threads: None,
            precision: Precision::Fp32,
        }
    }
}

impl FitConfig {
    /// Values that parse but cannot train: `(key, message)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let bad = |k, m: &str| Err((k, m.to_string()));
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing", "must be in [0, 1)");
        }
        if self.patience == 0 {
            return bad("patience", "must be at least 1");
        }
        if self.threads == Some(0) {
            return bad("threads", "must be at least 1");
        }
        if self.clip_grad.is_some_and(|c| c <= 0.0) {
            return bad("clip_grad", "must be positive");
        }
        if let Some(w) = &self.window {
            if w.frames == 0 || w.hop == Some(0) {
                return bad("window", "frames and hop must be at least 1");
            }
        }
        if self.mixup.is_some_and(|a| !(a > 0.0 && a.is_finite())) {
            return bad("mixup", "must be a positive Beta parameter (e.g. 0.2)");
        }
        Ok(())
    }
}

/// SpecAugment (Park et al., 2019): zero (= the training mean, after normalisation) up to
/// `freq_masks` bands of at most `freq_width` bins and `time_masks` spans of at most
/// `time_width` frames per training example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpecAugment {
    pub freq_masks: usize,
    pub freq_width: usize,
    pub time_masks: usize,
    pub time_width: usize,
}

impl Default for SpecAugment {
    fn default() -> Self {
        SpecAugment {
            freq_masks: 2,
            freq_width: 8,
            time_masks: 2,
            time_width: 16,
        }
    }
}

impl SpecAugment {
    /// Mask a normalised `[b, c, m, t]` batch in place (a frequency band is masked in every
    /// channel alike).
    pub fn apply(
        &self,
        x: &mut [f32],
        b: usize,
        c: usize,
        m: usize,
        t: usize,
        rng: &mut ChaCha8Rng,
    ) {
        use rand::Rng;
        let per = c * m * t;
        for i in 0..b {
            let one = &mut x[i * per..(i + 1) * per];
            for _ in 0..self.freq_masks {
                let w = rng.random_range(0..=self.freq_width.min(m));
                let f0 = rng.random_range(0..=m - w);
                for ch in 0..c {
                    one[(ch * m + f0) * t..(ch * m + f0 + w) * t].fill(0.0);
                }
            }
            for _ in 0..self.time_masks {
                let w = rng.random_range(0..=self.time_width.min(t));
                let t0 = rng.random_range(0..=t - w);
                for f in 0..c * m {
                    one[f * t + t0..f * t + t0 + w].fill(0.0);
                }
            }
        }
    }
}
