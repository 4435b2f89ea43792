//! Stacked (Bi-)LSTM over time frames (each frame = its n_mels features).
//!
//! Layers are separate single-layer LSTMs with dropout between them applied as a tensor op, so
//! it is off at evaluation (tch's `RNNConfig::dropout` would stay on).

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, RNN};
use tch::Tensor;

use super::{invalid, ModelError, SeqPool};

/// (Bi-)LSTM hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RnnSpec {
    pub hidden: i64,
    pub layers: i64,
    pub dropout: f64,
    pub pool: SeqPool,
}

impl Default for RnnSpec {
    fn default() -> Self {
        RnnSpec {
            hidden: 128,
            layers: 2,
            dropout: 0.3,
            pool: SeqPool::Mean,
        }
    }
}

/// The built model.
#[derive(Debug)]
pub struct Rnn {
    layers: Vec<nn::LSTM>,
    bidirectional: bool,
    hidden: i64,
    pool: SeqPool,
    dropout: f64,
    out: nn::Linear,
}

/// `[B, 1, M, T]` → `[B, T, M]`.
pub(crate) fn frames_first(xs: &Tensor) -> Tensor {
    xs.squeeze_dim(1).transpose(1, 2)
}

/// Pool `[B, T, H·dirs]` outputs of a (bi)LSTM into `[B, H·dirs]`.
pub(crate) fn pool_seq(out: &Tensor, pool: SeqPool, hidden: i64, bidirectional: bool) -> Tensor {
    match pool {
        SeqPool::Mean => out.mean_dim([1i64].as_slice(), false, out.kind()),
        SeqPool::Last if !bidirectional => out.select(1, -1),
        SeqPool::Last => {
            // Forward direction's last step, backward direction's first (its final state).
            let fwd = out.select(1, -1).narrow(1, 0, hidden);
            let bwd = out.select(1, 0).narrow(1, hidden, hidden);
            Tensor::cat(&[fwd, bwd], 1)
        }
    }
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
        n_mels: i64,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        let family = if bidirectional { "bilstm" } else { "lstm" };
        if s.hidden < 1 || s.layers < 1 {
            return Err(invalid(family, "hidden and layers must be >= 1"));
        }
        let dirs = if bidirectional { 2 } else { 1 };
        let layers = (0..s.layers)
            .map(|i| {
                let input = if i == 0 { n_mels } else { s.hidden * dirs };
                lstm_layer(p / format!("lstm{i}"), input, s.hidden, bidirectional)
            })
            .collect();
        Ok(Rnn {
            layers,
            bidirectional,
            hidden: s.hidden,
            pool: s.pool,
            dropout: s.dropout,
            out: nn::linear(p / "out", s.hidden * dirs, n_classes, Default::default()),
        })
    }
}

impl ModuleT for Rnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = frames_first(xs);
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                x = x.dropout(self.dropout, train);
            }
            x = l.seq(&x).0;
        }
        pool_seq(&x, self.pool, self.hidden, self.bidirectional)
            .dropout(self.dropout, train)
            .apply(&self.out)
    }
}
