//! Stacked (Bi-)LSTM over time frames (each frame = its features of every channel).
//!
//! Layers are separate single-layer LSTMs with dropout between them applied as a tensor op, so
//! it is off at evaluation (tch's `RNNConfig::dropout` would stay on).

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::pool::{lstm_masked, Pooler};
use super::{invalid, Input, ModelError, Net, SeqPool};

/// (Bi-)LSTM hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RnnSpec {
    pub hidden: i64,
    pub layers: i64,
    pub dropout: f64,
    pub pool: SeqPool,
    /// Width of the attention layer when `pool: attention`.
    pub attention_dim: i64,
}

impl Default for RnnSpec {
    fn default() -> Self {
        RnnSpec {
            hidden: 128,
            layers: 2,
            dropout: 0.3,
            pool: SeqPool::Mean,
            attention_dim: 64,
        }
    }
}

/// The built model.
#[derive(Debug)]
pub struct Rnn {
    layers: Vec<nn::LSTM>,
    pool: Pooler,
    dropout: f64,
    out: nn::Linear,
}

/// `[B, C, M, T]` → `[B, T, C·M]`.
pub(crate) fn frames_first(xs: &Tensor) -> Tensor {
    let (b, c, m, t) = xs.size4().expect("[B, C, M, T]");
    xs.permute([0, 3, 1, 2]).reshape([b, t, c * m])
}

/// The pooling of a (bi)LSTM's `[B, T, H·dirs]` outputs.
pub(crate) fn seq_pooler(
    p: nn::Path,
    pool: SeqPool,
    hidden: i64,
    bidirectional: bool,
    attention_dim: i64,
) -> Pooler {
    let dirs = if bidirectional { 2 } else { 1 };
    Pooler::new(
        p,
        pool,
        hidden * dirs,
        attention_dim,
        bidirectional.then_some(hidden),
    )
}

pub(crate) fn lstm_layer(p: nn::Path, input: i64, hidden: i64, bidirectional: bool) -> nn::LSTM {
    nn::lstm(
        p,
        input,
        hidden,
        nn::RNNConfig {
            bidirectional,
            batch_first: true,
            ..Default::default()
        },
    )
}

impl Rnn {
    pub fn new(
        p: &nn::Path,
        s: &RnnSpec,
        bidirectional: bool,
        input: Input,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        let n_in = input.channels * input.bins;
        let family = if bidirectional { "bilstm" } else { "lstm" };
        if s.hidden < 1 || s.layers < 1 {
            return Err(invalid(family, "hidden and layers must be >= 1"));
        }
        let dirs = if bidirectional { 2 } else { 1 };
        let layers = (0..s.layers)
            .map(|i| {
                let input = if i == 0 { n_in } else { s.hidden * dirs };
                lstm_layer(p / format!("lstm{i}"), input, s.hidden, bidirectional)
            })
            .collect();
        Ok(Rnn {
            layers,
            pool: seq_pooler(p / "pool", s.pool, s.hidden, bidirectional, s.attention_dim),
            dropout: s.dropout,
            out: nn::linear(p / "out", s.hidden * dirs, n_classes, Default::default()),
        })
    }
}

impl Net for Rnn {
    fn classifier(&self) -> &nn::Linear {
        &self.out
    }

    fn embed(&self, xs: &Tensor, lengths: Option<&[i64]>, train: bool) -> Tensor {
        let mut x = frames_first(xs);
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                x = x.dropout(self.dropout, train);
            }
            x = lstm_masked(l, &x, lengths);
        }
        self.pool.forward(&x, lengths).dropout(self.dropout, train)
    }
}
