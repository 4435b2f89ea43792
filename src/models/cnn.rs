//! 2-D CNN over the spectrogram: the seed's `cnn_v1` and `cnn_v3`, plus batch-norm, global
//! average pooling and attention pooling options.
//!
//! Layout per block: Conv2D(k×k, valid or same) → [BatchNorm] → ReLU → MaxPool(2). Then Flatten
//! (the seed), global average pooling, or attention pooling over time of each frame's features
//! (channels × remaining frequency bins) → Dense(relu) → Dropout → Dense(n_classes). The pooled heads respect padding (masked
//! after every block); Flatten needs a fixed input length.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::pool::{self, ConvBlock, Pooler, SeqPool};
use super::{invalid, Input, ModelError, Net, L2_GROUP};

/// How the conv stack is turned into a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CnnHead {
    #[default]
    Flatten,
    /// Global average pooling over frequency and time.
    Gap,
    /// Attention pooling over time of each frame's features (channels × remaining bins).
    Attention,
}

/// CNN hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CnnSpec {
    /// Output channels of each conv block.
    pub channels: Vec<i64>,
    pub kernel: i64,
    /// `valid` (no padding, the seed's) or `same`.
    pub padding: Padding,
    pub batch_norm: bool,
    pub head: CnnHead,
    /// Width of the dense layer before the classifier (0: none).
    pub dense: i64,
    pub dropout: f64,
    /// L2 coefficient on conv and dense kernels (Keras convention), 0 for none.
    pub l2: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    #[default]
    Valid,
    Same,
}

impl Default for CnnSpec {
    fn default() -> Self {
        CnnSpec::v1()
    }
}

impl CnnSpec {
    /// Seed Milestone 2: Conv 32 → pool → Conv 64 → pool → Flatten → Dense 128 → Dropout 0.5.
    pub fn v1() -> Self {
        CnnSpec {
            channels: vec![32, 64],
            kernel: 3,
            padding: Padding::Valid,
            batch_norm: false,
            head: CnnHead::Flatten,
            dense: 128,
            dropout: 0.5,
            l2: 0.0,
        }
    }

    /// emolab's recommended CNN (preset `cnn`): same-padded Conv 32/64/128 with batch-norm, each
    /// pooled, attention pooling over time (padding-aware, any clip length), Dense 64, Dropout
    /// 0.3, no L2 (the optimizer's decoupled weight decay regularises instead).
    pub fn recommended() -> Self {
        CnnSpec {
            channels: vec![32, 64, 128],
            kernel: 3,
            padding: Padding::Same,
            batch_norm: true,
            head: CnnHead::Attention,
            dense: 64,
            dropout: 0.3,
            l2: 0.0,
        }
    }

    /// The seed's final CNN: Conv 32/64/128 (L2 1e-3) each pooled → Flatten → Dense 128 (L2
    /// 1e-3) → Dropout 0.3.
    pub fn v3() -> Self {
        CnnSpec {
            channels: vec![32, 64, 128],
            dropout: 0.3,
            l2: 1e-3,
            ..CnnSpec::v1()
        }
    }
}

/// The built CNN.
#[derive(Debug)]
pub struct Cnn {
    blocks: Vec<ConvBlock>,
    head: CnnHead,
    dense: Option<nn::Linear>,
    out: nn::Linear,
    dropout: f64,
    attention: Option<Pooler>,
}

impl Cnn {
    pub fn new(
        p: &nn::Path,
        s: &CnnSpec,
        input: Input,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        let Input {
            channels,
            bins: n_mels,
            frames,
        } = input;
        if s.channels.is_empty() || s.kernel < 1 {
            return Err(invalid(
                "cnn",
                "needs at least one conv block and kernel >= 1",
            ));
        }
        let reg = if s.l2 > 0.0 {
            p.set_group(L2_GROUP)
        } else {
            p.clone()
        };
        let pad = match s.padding {
            Padding::Valid => 0,
            Padding::Same => s.kernel / 2,
        };
        let (mut h, mut w, mut c_in) = (n_mels, frames, channels);
        let mut blocks = Vec::new();
        for (i, &c) in s.channels.iter().enumerate() {
            let conv = nn::conv2d(
                &reg / format!("conv{i}"),
                c_in,
                c,
                s.kernel,
                nn::ConvConfig {
                    padding: pad,
                    ..Default::default()
                },
            );
            let bn = s
                .batch_norm
                .then(|| nn::batch_norm2d(p / format!("bn{i}"), c, Default::default()));
            blocks.push(ConvBlock {
                conv,
                bn,
                pool: [2, 2],
                shrink: s.kernel - 1 - 2 * pad,
            });
            h = (h + 2 * pad - s.kernel + 1) / 2;
            w = (w + 2 * pad - s.kernel + 1) / 2;
            if h < 1 || w < 1 {
                return Err(invalid(
                    "cnn",
                    format!("input {n_mels}×{frames} is too small for {} blocks", i + 1),
                ));
            }
            c_in = c;
        }
        let flat = match s.head {
            CnnHead::Flatten => c_in * h * w,
            CnnHead::Gap => c_in,
            CnnHead::Attention => c_in * h,
        };
        let attention = (s.head == CnnHead::Attention)
            .then(|| Pooler::new(p / "pool", SeqPool::Attention, flat, 64, None));
        let dense =
            (s.dense > 0).then(|| nn::linear(&reg / "dense", flat, s.dense, Default::default()));
        let width = if s.dense > 0 { s.dense } else { flat };
        Ok(Cnn {
            blocks,
            head: s.head,
            dense,
            out: nn::linear(p / "out", width, n_classes, Default::default()),
            dropout: s.dropout,
            attention,
        })
    }
}

impl Net for Cnn {
    fn classifier(&self) -> &nn::Linear {
        &self.out
    }

    fn embed(&self, xs: &Tensor, lengths: Option<&[i64]>, train: bool) -> Tensor {
        let (mut x, lengths) = pool::conv_blocks(&self.blocks, xs, lengths, train);
        x = match (self.head, &self.attention) {
            (CnnHead::Flatten, _) => x.flatten(1, -1),
            (CnnHead::Attention, Some(att)) => {
                // Each frame's features: every channel at every remaining frequency bin.
                let (b, c, f, t) = x.size4().expect("4-d activations");
                let seq = x.permute([0, 3, 1, 2]).reshape([b, t, c * f]);
                att.forward(&seq, lengths.as_deref())
            }
            _ => {
                // Mean over frequency and the valid frames.
                let seq = x
                    .mean_dim([2i64].as_slice(), false, x.kind())
                    .transpose(1, 2);
                Pooler::new_mean().forward(&seq, lengths.as_deref())
            }
        };
        if let Some(d) = &self.dense {
            x = x.apply(d).relu();
        }
        x.dropout(self.dropout, train)
    }
}
