//! The probe over encoder layers (SUPERB, Yang et al., Interspeech 2021; EmoBox, Ma et al.,
//! Interspeech 2024): a learned softmax-weighted sum of the hidden states of every layer, then a
//! linear or MLP head.
//!
//! Input: the `encoder` pipelines' layout, one channel per layer: `[B, layers, width, frames]`
//! (frames = 1 for pooled embeddings; with `pooling: none` the weighted sum is averaged over each
//! clip's valid frames). `model: {family: probe, head: mlp|linear, hidden, dropout}`; presets
//! `probe` (MLP, 256 units) and `probe_linear`.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::{invalid, Input, ModelError, Net};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    Linear,
    #[default]
    Mlp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSpec {
    pub head: Head,
    /// Units of the MLP head's hidden layer.
    pub hidden: i64,
    pub dropout: f64,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec {
            head: Head::Mlp,
            hidden: 256,
            dropout: 0.2,
        }
    }
}

impl ProbeSpec {
    pub fn linear() -> Self {
        ProbeSpec {
            head: Head::Linear,
            ..Default::default()
        }
    }
}

/// The head shared by the probe and the fine-tuned encoder: dropout, then a linear layer, or
/// an MLP (one ReLU layer of `hidden` units, dropout again).
#[derive(Debug)]
pub struct ProbeHead {
    hidden: Option<nn::Linear>,
    out: nn::Linear,
    dropout: f64,
}

impl ProbeHead {
    pub fn new(
        p: &nn::Path,
        family: &'static str,
        head: Head,
        hidden: i64,
        dropout: f64,
        width: i64,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        if head == Head::Mlp && hidden < 1 {
            return Err(invalid(family, "hidden must be >= 1"));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(invalid(family, "dropout must be in [0, 1)"));
        }
        let (hidden, width) = match head {
            Head::Mlp => (
                Some(nn::linear(p / "hidden", width, hidden, Default::default())),
                hidden,
            ),
            Head::Linear => (None, width),
        };
        Ok(ProbeHead {
            hidden,
            out: nn::linear(p / "out", width, n_classes, Default::default()),
            dropout,
        })
    }

    /// What the output layer sees, from pooled features `[B, width]`.
    pub fn embed(&self, x: &Tensor, train: bool) -> Tensor {
        let x = x.dropout(self.dropout, train);
        match &self.hidden {
            Some(h) => h.forward(&x).relu().dropout(self.dropout, train),
            None => x,
        }
    }

    /// The output layer.
    pub fn out(&self) -> &nn::Linear {
        &self.out
    }
}

#[derive(Debug)]
pub struct Probe {
    /// Logits of the layer weights (zeros: equal weights at the start).
    layer_logits: Tensor,
    head: ProbeHead,
}

impl Probe {
    pub fn new(
        p: &nn::Path,
        s: &ProbeSpec,
        input: Input,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        let head = ProbeHead::new(
            p, "probe", s.head, s.hidden, s.dropout, input.bins, n_classes,
        )?;
        Ok(Probe {
            layer_logits: p.zeros("layer_logits", &[input.channels]),
            head,
        })
    }

    /// The learned layer weights (softmax of the logits).
    pub fn layer_weights(&self) -> Tensor {
        self.layer_logits.softmax(0, Kind::Float)
    }
}

impl Net for Probe {
    fn classifier(&self) -> &nn::Linear {
        self.head.out()
    }

    fn embed(&self, xs: &Tensor, lengths: Option<&[i64]>, train: bool) -> Tensor {
        let c = xs.size()[1];
        let w = self.layer_weights().view([1, c, 1, 1]);
        let x = (xs * w).sum_dim_intlist([1i64].as_slice(), false, Kind::Float); // [B, width, T]
                                                                                 // The weighted sum's mean over each clip's valid frames (one frame when pooled).
        let x = super::pool::Pooler::new_mean().forward(&x.transpose(1, 2), lengths);
        self.head.embed(&x, train)
    }
}
