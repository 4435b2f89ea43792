//! CRNN with attention pooling, after the 3-D ACRNN of Chen et al. (IEEE Signal Processing
//! Letters 25(10), 2018): a conv stack over the (static, Δ, ΔΔ) log-mel channels, the frequency
//! axis folded into the features of each frame, a (Bi-)LSTM over time, attention pooling over the
//! valid frames, a small dense layer and the classifier.
//!
//! Per block: Conv2D(3×3, same) → BatchNorm → ReLU → MaxPool(freq × time) → padded frames
//! zeroed. The original uses 5×3 kernels with 128/256 filters on 3 s segments; the presets here are
//! narrower so that a 10-fold leave-one-speaker-out run fits a 2-core CPU.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::pool::{self, lstm_masked, ConvBlock, Pooler};
use super::rnn::{lstm_layer, seq_pooler};
use super::{invalid, Input, ModelError, Net, SeqPool};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrnnSpec {
    /// Output channels of each conv block.
    pub channels: Vec<i64>,
    /// `[frequency, time]` max-pool of each block (as many as `channels`).
    pub pools: Vec<[i64; 2]>,
    /// LSTM width per direction (0: no LSTM, pool the conv features directly).
    pub hidden: i64,
    pub bidirectional: bool,
    pub pool: SeqPool,
    pub attention_dim: i64,
    /// Dense layer after pooling (0: none).
    pub dense: i64,
    pub dropout: f64,
}

impl Default for CrnnSpec {
    /// emolab's recommended CRNN: four blocks (32/64/128/128), a 64-wide Bi-LSTM, attention.
    fn default() -> Self {
        CrnnSpec {
            channels: vec![32, 64, 128, 128],
            pools: vec![[2, 2], [2, 2], [2, 1], [2, 1]],
            hidden: 64,
            bidirectional: true,
            pool: SeqPool::Attention,
            attention_dim: 64,
            dense: 64,
            dropout: 0.3,
        }
    }
}

impl CrnnSpec {
    /// After Chen et al. (2018): wider conv blocks (64/128/128/128, the original's first block
    /// pooled 2×2 and the rest along frequency), a 128-wide Bi-LSTM, attention, dense 64.
    pub fn acrnn() -> Self {
        CrnnSpec {
            channels: vec![64, 128, 128, 128],
            pools: vec![[2, 2], [2, 1], [2, 1], [2, 1]],
            hidden: 128,
            ..CrnnSpec::default()
        }
    }
}

#[derive(Debug)]
pub struct Crnn {
    blocks: Vec<ConvBlock>,
    lstm: Option<nn::LSTM>,
    pool: Pooler,
    dense: Option<nn::Linear>,
    out: nn::Linear,
    dropout: f64,
}

impl Crnn {
    pub fn new(
        p: &nn::Path,
        s: &CrnnSpec,
        input: Input,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        if s.channels.is_empty() || s.channels.len() != s.pools.len() {
            return Err(invalid(
                "crnn",
                format!(
                    "needs conv channels and one [freq, time] pool per block ({} channels, {} pools)",
                    s.channels.len(),
                    s.pools.len()
                ),
            ));
        }
        if s.pools.iter().flatten().any(|&k| k < 1) || s.attention_dim < 1 || s.hidden < 0 {
            return Err(invalid(
                "crnn",
                "pools and attention_dim must be >= 1, hidden >= 0",
            ));
        }
        let (mut h, mut t, mut c_in) = (input.bins, input.frames, input.channels);
        let mut blocks = Vec::new();
        for (i, (&c, &pool)) in s.channels.iter().zip(&s.pools).enumerate() {
            blocks.push(ConvBlock {
                conv: nn::conv2d(
                    p / format!("conv{i}"),
                    c_in,
                    c,
                    3,
                    nn::ConvConfig {
                        padding: 1,
                        ..Default::default()
                    },
                ),
                bn: Some(nn::batch_norm2d(
                    p / format!("bn{i}"),
                    c,
                    Default::default(),
                )),
                pool,
                shrink: 0,
            });
            (h, t, c_in) = (h / pool[0], t / pool[1], c);
            if h < 1 || t < 1 {
                return Err(invalid(
                    "crnn",
                    format!(
                        "input {}×{} is too small for {} blocks",
                        input.bins,
                        input.frames,
                        i + 1
                    ),
                ));
            }
        }
        let feat = c_in * h;
        let (lstm, width, pooler) = if s.hidden > 0 {
            let dirs = if s.bidirectional { 2 } else { 1 };
            (
                Some(lstm_layer(p / "lstm", feat, s.hidden, s.bidirectional)),
                s.hidden * dirs,
                seq_pooler(
                    p / "pool",
                    s.pool,
                    s.hidden,
                    s.bidirectional,
                    s.attention_dim,
                ),
            )
        } else {
            (
                None,
                feat,
                Pooler::new(p / "pool", s.pool, feat, s.attention_dim, None),
            )
        };
        let dense =
            (s.dense > 0).then(|| nn::linear(p / "dense", width, s.dense, Default::default()));
        let width = if s.dense > 0 { s.dense } else { width };
        Ok(Crnn {
            blocks,
            lstm,
            pool: pooler,
            dense,
            out: nn::linear(p / "out", width, n_classes, Default::default()),
            dropout: s.dropout,
        })
    }
}

impl Net for Crnn {
    fn classifier(&self) -> &nn::Linear {
        &self.out
    }

    fn embed(&self, xs: &Tensor, lengths: Option<&[i64]>, train: bool) -> Tensor {
        let (x, lengths) = pool::conv_blocks(&self.blocks, xs, lengths, train);
        // [B, C, F, T] → [B, T, C·F]
        let (b, c, f, t) = x.size4().expect("4-d activations");
        let mut seq = x.permute([0, 3, 1, 2]).reshape([b, t, c * f]);
        if let Some(lstm) = &self.lstm {
            seq = lstm_masked(lstm, &seq.dropout(self.dropout, train), lengths.as_deref());
        }
        let mut v = self.pool.forward(&seq, lengths.as_deref());
        if let Some(d) = &self.dense {
            v = v.dropout(self.dropout, train).apply(d).relu();
        }
        v.dropout(self.dropout, train)
    }
}
