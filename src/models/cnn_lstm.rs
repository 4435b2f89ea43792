//! CNN + LSTM hybrid: a conv front end over the spectrogram (same padding, batch-norm, ReLU,
//! max-pool 2), the frequency axis folded into channels, then a (Bi-)LSTM over time.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::pool::{self, lstm_masked, ConvBlock, Pooler};
use super::rnn::{lstm_layer, seq_pooler};
use super::{invalid, Input, ModelError, Net, SeqPool};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CnnLstmSpec {
    /// Output channels of each conv block (each halves frequency and time).
    pub channels: Vec<i64>,
    pub hidden: i64,
    pub bidirectional: bool,
    pub dropout: f64,
    pub pool: SeqPool,
    /// Width of the attention layer when `pool: attention`.
    pub attention_dim: i64,
}

impl Default for CnnLstmSpec {
    fn default() -> Self {
        CnnLstmSpec {
            channels: vec![32, 64],
            hidden: 128,
            bidirectional: true,
            dropout: 0.3,
            pool: SeqPool::Mean,
            attention_dim: 64,
        }
    }
}

#[derive(Debug)]
pub struct CnnLstm {
    convs: Vec<ConvBlock>,
    lstm: nn::LSTM,
    pool: Pooler,
    dropout: f64,
    out: nn::Linear,
}

impl CnnLstm {
    pub fn new(
        p: &nn::Path,
        s: &CnnLstmSpec,
        input: Input,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        let (n_mels, frames) = (input.bins, input.frames);
        if s.channels.is_empty() || s.hidden < 1 {
            return Err(invalid("cnn_lstm", "needs conv channels and hidden >= 1"));
        }
        let (mut h, mut t, mut c_in) = (n_mels, frames, input.channels);
        let mut convs = Vec::new();
        for (i, &c) in s.channels.iter().enumerate() {
            let conv = nn::conv2d(
                p / format!("conv{i}"),
                c_in,
                c,
                3,
                nn::ConvConfig {
                    padding: 1,
                    ..Default::default()
                },
            );
            convs.push(ConvBlock {
                conv,
                bn: Some(nn::batch_norm2d(
                    p / format!("bn{i}"),
                    c,
                    Default::default(),
                )),
                pool: [2, 2],
                shrink: 0,
            });
            (h, t, c_in) = (h / 2, t / 2, c);
        }
        if h < 1 || t < 1 {
            return Err(invalid(
                "cnn_lstm",
                format!(
                    "input {n_mels}×{frames} is too small for {} blocks",
                    convs.len()
                ),
            ));
        }
        let dirs = if s.bidirectional { 2 } else { 1 };
        Ok(CnnLstm {
            convs,
            lstm: lstm_layer(p / "lstm", c_in * h, s.hidden, s.bidirectional),
            pool: seq_pooler(
                p / "pool",
                s.pool,
                s.hidden,
                s.bidirectional,
                s.attention_dim,
            ),
            dropout: s.dropout,
            out: nn::linear(p / "out", s.hidden * dirs, n_classes, Default::default()),
        })
    }
}

impl Net for CnnLstm {
    fn classifier(&self) -> &nn::Linear {
        &self.out
    }

    fn embed(&self, xs: &Tensor, lengths: Option<&[i64]>, train: bool) -> Tensor {
        let (x, lengths) = pool::conv_blocks(&self.convs, xs, lengths, train);
        // [B, C, F, T] → [B, T, C·F]
        let (b, c, f, t) = x.size4().expect("4-d activations");
        let seq = x.permute([0, 3, 1, 2]).reshape([b, t, c * f]);
        let seq = seq.dropout(self.dropout, train);
        let out = lstm_masked(&self.lstm, &seq, lengths.as_deref());
        self.pool
            .forward(&out, lengths.as_deref())
            .dropout(self.dropout, train)
    }
}
