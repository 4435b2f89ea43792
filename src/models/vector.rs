//! Networks over one vector per clip (functionals, or the seed's 40-MFCC mean): an MLP, and the
//! seed's emotion models, which read the vector's values as a sequence of scalars (Keras
//! `Conv1D` / `LSTM` on an input of shape `(40, 1)`).
//!
//! `model: {family: vector, conv: [..], kernel, lstm, bidirectional, dense: [..], dropout}`:
//! optional `Conv1D` blocks (ReLU, max-pool 2) along the vector, an optional (Bi-)LSTM over the
//! result whose last step is kept, then dense layers. With neither conv nor LSTM it is an MLP
//! on the whole vector. Presets:
//! * `mlp`: dense 256 → 128, dropout 0.3;
//! * `seed_conv1d`, `seed_lstm`, `seed_cnn_lstm`, `seed_cnn_bilstm`: the structures of the seed's
//!   emotion models (Conv1D; LSTM; CNN+LSTM; CNN+Bi-LSTM over the 40 MFCC means). The seed's
//!   notebooks report their accuracies (46.5 %, 37.7 %, 39.2 %, 38.9 % on a clip-level split) but
//!   the layer sizes here are emolab's reading of those structures: Conv1D 64 / 128 with kernel 3,
//!   LSTM 128 (64 after a conv block), dense 64.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, RNN};
use tch::Tensor;

use super::rnn::lstm_layer;
use super::{invalid, Input, ModelError, Net};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorSpec {
    /// Conv1D channels per block (each: conv, ReLU, max-pool 2); empty: none.
    pub conv: Vec<i64>,
    pub kernel: i64,
    /// LSTM width over the (convolved) sequence; 0: none.
    pub lstm: i64,
    pub bidirectional: bool,
    /// Dense layers (ReLU) before the output.
    pub dense: Vec<i64>,
    pub dropout: f64,
}

impl Default for VectorSpec {
    fn default() -> Self {
        VectorSpec::mlp()
    }
}

impl VectorSpec {
    pub fn mlp() -> Self {
        VectorSpec {
            conv: Vec::new(),
            kernel: 3,
            lstm: 0,
            bidirectional: false,
            dense: vec![256, 128],
            dropout: 0.3,
        }
    }

    pub fn seed_conv1d() -> Self {
        VectorSpec {
            conv: vec![64, 128],
            dense: vec![64],
            ..VectorSpec::mlp()
        }
    }

    pub fn seed_lstm() -> Self {
        VectorSpec {
            lstm: 128,
            dense: vec![64],
            ..VectorSpec::mlp()
        }
    }

    pub fn seed_cnn_lstm() -> Self {
        VectorSpec {
            conv: vec![64],
            lstm: 64,
            dense: vec![64],
            ..VectorSpec::mlp()
        }
    }

    pub fn seed_cnn_bilstm() -> Self {
        VectorSpec {
            bidirectional: true,
            ..VectorSpec::seed_cnn_lstm()
        }
    }
}

#[derive(Debug)]
pub struct VectorNet {
    convs: Vec<nn::Conv1D>,
    lstm: Option<nn::LSTM>,
    bidirectional: bool,
    dense: Vec<nn::Linear>,
    out: nn::Linear,
    dropout: f64,
}

impl VectorNet {
    pub fn new(
        p: &nn::Path,
        s: &VectorSpec,
        input: Input,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        let len = input.channels * input.bins * input.frames;
        if s.kernel < 1 || s.conv.iter().any(|&c| c < 1) || s.dense.iter().any(|&d| d < 1) {
            return Err(invalid(
                "vector",
                "kernel, conv and dense sizes must be >= 1",
            ));
        }
        let mut steps = len;
        let mut width = 1;
        let mut convs = Vec::new();
        for (i, &c) in s.conv.iter().enumerate() {
            if steps < s.kernel {
                return Err(invalid(
                    "vector",
                    format!("conv block {i}: {steps} values left, kernel {}", s.kernel),
                ));
            }
            convs.push(nn::conv1d(
                p / format!("conv{i}"),
                width,
                c,
                s.kernel,
                Default::default(),
            ));
            steps = (steps - s.kernel + 1) / 2;
            width = c;
            if steps < 1 {
                return Err(invalid("vector", "the conv blocks pool the vector away"));
            }
        }
        let (lstm, mut features) = if s.lstm > 0 {
            let dirs = if s.bidirectional { 2 } else { 1 };
            (
                Some(lstm_layer(p / "lstm", width, s.lstm, s.bidirectional)),
                s.lstm * dirs,
            )
        } else {
            (None, width * steps)
        };
        let mut dense = Vec::new();
        for (i, &d) in s.dense.iter().enumerate() {
            dense.push(nn::linear(
                p / format!("dense{i}"),
                features,
                d,
                Default::default(),
            ));
            features = d;
        }
        Ok(VectorNet {
            convs,
            lstm,
            bidirectional: s.bidirectional,
            dense,
            out: nn::linear(p / "out", features, n_classes, Default::default()),
            dropout: s.dropout,
        })
    }
}

impl Net for VectorNet {
    fn classifier(&self) -> &nn::Linear {
        &self.out
    }

    /// A clip's whole input (every channel, bin and frame) is its vector; lengths are unused
    /// (clip vectors have one frame).
    fn embed(&self, xs: &Tensor, _lengths: Option<&[i64]>, train: bool) -> Tensor {
        let b = xs.size()[0];
        let mut x = xs.reshape([b, 1, -1]);
        for c in &self.convs {
            x = c.forward(&x).relu().max_pool1d(2, 2, 0, 1, false);
        }
        let mut x = match &self.lstm {
            Some(l) => {
                // [B, C, L] → [B, L, C]; the last step of each direction.
                let seq = x.transpose(1, 2);
                let (out, _) = l.seq(&seq);
                let h = out.size()[2];
                let last = out.select(1, -1);
                if self.bidirectional {
                    // Forward direction: its last step; backward: its last step is position 0.
                    let half = h / 2;
                    Tensor::cat(
                        &[
                            last.narrow(1, 0, half),
                            out.select(1, 0).narrow(1, half, half),
                        ],
                        1,
                    )
                } else {
                    last
                }
            }
            None => x.flatten(1, -1),
        };
        for d in &self.dense {
            x = x.apply(d).relu().dropout(self.dropout, train);
        }
        x
    }
}
