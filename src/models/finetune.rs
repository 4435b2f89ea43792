//! Fine-tuning the top layers of a pretrained encoder with a probe head.
//!
//! `model: {family: finetune, top_layers: N, lr_scale: 0.1, head, hidden, dropout}` on an
//! `encoder` pipeline that caches the frame sequences (`pooling: none`) of hidden state
//! `L - N` (`layers: [L - N]`, L = the model's layers): the model holds the top N transformer
//! layers as trainable variables initialised from the checkpoint ([`TopLayers`]), a learned
//! softmax-weighted sum of their hidden states, the mean over each clip's valid frames and a
//! linear or MLP head. The encoder layers learn at `lr_scale` × `train.lr` (optimizer group
//! [`ENCODER_GROUP`]); the frozen layers below were run once by the feature stage. Features must
//! reach the layers as cached: `train.normalize: none`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Kind, Tensor};

use super::probe::{Head, ProbeHead};
use super::{invalid, Input, ModelError, Net};
use crate::encoders::TopLayers;

/// Optimizer group of fine-tuned encoder variables.
pub const ENCODER_GROUP: usize = 2;

fn d_top() -> usize {
    2
}
fn d_scale() -> f64 {
    0.1
}
fn d_hidden() -> i64 {
    256
}
fn d_dropout() -> f64 {
    0.2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneSpec {
    /// The encoder folder; defaults to the pipeline's `encoder.path`.
    #[serde(default)]
    pub encoder: PathBuf,
    #[serde(default = "d_top")]
    pub top_layers: usize,
    /// Learning-rate factor of the encoder layers.
    #[serde(default = "d_scale")]
    pub lr_scale: f64,
    #[serde(default)]
    pub head: Head,
    #[serde(default = "d_hidden")]
    pub hidden: i64,
    #[serde(default = "d_dropout")]
    pub dropout: f64,
}

impl Default for FinetuneSpec {
    fn default() -> Self {
        FinetuneSpec {
            encoder: PathBuf::new(),
            top_layers: d_top(),
            lr_scale: d_scale(),
            head: Head::Mlp,
            hidden: d_hidden(),
            dropout: d_dropout(),
        }
    }
}

pub struct Finetune {
    top: TopLayers,
    layer_logits: Tensor,
    head: ProbeHead,
}

impl std::fmt::Debug for Finetune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Finetune(top {} states)", self.top.n_states())
    }
}

impl Finetune {
    pub fn new(
        p: &nn::Path,
        s: &FinetuneSpec,
        input: Input,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        if s.encoder.as_os_str().is_empty() {
            return Err(invalid(
                "finetune",
                "no encoder folder (set model.encoder or the pipeline's encoder.path)",
            ));
        }
        if !(s.lr_scale > 0.0 && s.lr_scale.is_finite()) {
            return Err(invalid(
                "finetune",
                format!("lr_scale must be > 0, got {}", s.lr_scale),
            ));
        }
        if input.channels != 1 {
            return Err(invalid(
                "finetune",
                format!("needs the frames of one hidden state (pipeline encoder layers: [i], pooling: none), got {} channels", input.channels),
            ));
        }
        let top = TopLayers::load(
            &s.encoder,
            s.top_layers,
            &p.set_group(super::finetune::ENCODER_GROUP),
            p.device(),
        )
        .map_err(|e| invalid("finetune", e.to_string()))?;
        let head = ProbeHead::new(
            p, "finetune", s.head, s.hidden, s.dropout, input.bins, n_classes,
        )?;
        Ok(Finetune {
            layer_logits: p.zeros("layer_logits", &[top.n_states() as i64]),
            top,
            head,
        })
    }

    /// The hidden state the cache must hold for these top layers.
    pub fn input_state(&self) -> usize {
        self.top.input_state()
    }
}

impl Net for Finetune {
    fn classifier(&self) -> &nn::Linear {
        self.head.out()
    }

    fn embed(&self, xs: &Tensor, lengths: Option<&[i64]>, train: bool) -> Tensor {
        let (b, _, _, t) = xs.size4().expect("[B, 1, width, frames]");
        let x = xs.squeeze_dim(1).transpose(1, 2); // [B, T, D]
        let all = vec![t; b as usize];
        let lengths = lengths.unwrap_or(&all);
        let states = self.top.forward(&x, lengths);
        let w = self.layer_logits.softmax(0, Kind::Float);
        let mut h = states[0].zeros_like();
        for (i, s) in states.iter().enumerate() {
            h += s * w.get(i as i64);
        }
        let x = super::pool::Pooler::new_mean().forward(&h, Some(lengths));
        self.head.embed(&x, train)
    }
}
