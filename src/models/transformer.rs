//! Transformer encoder over frames: frame (or time-patch) embedding, sinusoidal positional
//! encoding, pre-LayerNorm blocks with residuals (attention through
//! `Tensor::scaled_dot_product_attention`, padded tokens masked out), mean or attention pooling
//! over valid tokens, classifier.
//!
//! Unlike the seed's single attention block (no residuals, no positions), which stayed at
//! chance, this is the standard encoder that trains.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Kind, Tensor};

use super::pool::{self, Pooler, SeqPool};
use super::{invalid, Input, ModelError, Net};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerSpec {
    pub d_model: i64,
    pub heads: i64,
    pub layers: i64,
    /// Feed-forward width as a multiple of d_model.
    pub ff_mult: i64,
    pub dropout: f64,
    /// Frames per token (1: frame embedding; >1: non-overlapping time patches).
    pub patch: i64,
    /// Pooling over tokens: `mean` or `attention`.
    pub pool: SeqPool,
}

impl Default for TransformerSpec {
    fn default() -> Self {
        TransformerSpec {
            d_model: 128,
            heads: 4,
            layers: 3,
            ff_mult: 2,
            dropout: 0.1,
            patch: 2,
            pool: SeqPool::Mean,
        }
    }
}

#[derive(Debug)]
struct Block {
    ln1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    ln2: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
}

#[derive(Debug)]
pub struct Transformer {
    embed: nn::Linear,
    pos: Tensor,
    blocks: Vec<Block>,
    ln: nn::LayerNorm,
    pool: Pooler,
    out: nn::Linear,
    heads: i64,
    patch: i64,
    dropout: f64,
}

/// Sinusoidal positional encoding `[len, d]` (Vaswani et al.).
fn positional(len: i64, d: i64) -> Tensor {
    let pos = Tensor::arange(len, (Kind::Float, tch::Device::Cpu)).unsqueeze(1);
    let i = Tensor::arange_start_step(0, d, 2, (Kind::Float, tch::Device::Cpu));
    let freq = (i * (-(10000f64.ln()) / d as f64)).exp();
    let angles = pos * freq.unsqueeze(0);
    Tensor::stack(&[angles.sin(), angles.cos()], 2).reshape([len, d])
}

impl Transformer {
    pub fn new(
        p: &nn::Path,
        s: &TransformerSpec,
        input: Input,
        n_classes: i64,
    ) -> Result<Self, ModelError> {
        let (n_mels, frames) = (input.channels * input.bins, input.frames);
        if s.d_model % s.heads != 0 || s.d_model % 2 != 0 {
            return Err(invalid(
                "transformer",
                "d_model must be even and divisible by heads",
            ));
        }
        if s.patch < 1 || frames / s.patch < 1 || s.layers < 1 {
            return Err(invalid(
                "transformer",
                "patch and layers must be >= 1, patch <= frames",
            ));
        }
        let d = s.d_model;
        let lin = |q: nn::Path, i: i64, o: i64| nn::linear(q, i, o, Default::default());
        let blocks = (0..s.layers)
            .map(|l| {
                let q = p / format!("block{l}");
                Block {
                    ln1: nn::layer_norm(&q / "ln1", vec![d], Default::default()),
                    qkv: lin(&q / "qkv", d, 3 * d),
                    proj: lin(&q / "proj", d, d),
                    ln2: nn::layer_norm(&q / "ln2", vec![d], Default::default()),
                    ff1: lin(&q / "ff1", d, d * s.ff_mult),
                    ff2: lin(&q / "ff2", d * s.ff_mult, d),
                }
            })
            .collect();
        let tokens = frames / s.patch;
        Ok(Transformer {
            embed: lin(p / "embed", n_mels * s.patch, d),
            pos: positional(tokens, d).to_device(p.device()),
            blocks,
            ln: nn::layer_norm(p / "ln", vec![d], Default::default()),
            pool: if s.pool == SeqPool::Last {
                return Err(invalid("transformer", "pool must be mean or attention"));
            } else {
                Pooler::new(p / "pool", s.pool, d, 64.min(d), None)
            },
            out: lin(p / "out", d, n_classes),
            heads: s.heads,
            patch: s.patch,
            dropout: s.dropout,
        })
    }

    /// `keep`: `[B, 1, 1, T]`, true where a key token is real (None: all are).
    fn attention(&self, b: &Block, x: &Tensor, keep: Option<&Tensor>, train: bool) -> Tensor {
        let (bs, t, d) = x.size3().expect("[B, T, D]");
        let h = self.heads;
        let qkv = x
            .apply(&b.qkv)
            .reshape([bs, t, 3, h, d / h])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let p = if train { self.dropout } else { 0.0 };
        let a = Tensor::scaled_dot_product_attention(&q, &k, &v, keep, p, false, None, false);
        a.transpose(1, 2).reshape([bs, t, d]).apply(&b.proj)
    }
}

impl Net for Transformer {
    fn classifier(&self) -> &nn::Linear {
        &self.out
    }

    fn embed(&self, xs: &Tensor, lengths: Option<&[i64]>, train: bool) -> Tensor {
        // [B, C, M, T] → [B, T/patch, patch·C·M]
        let (b, c, m, t) = xs.size4().expect("[B, C, M, T]");
        let tokens = t / self.patch;
        let x = xs
            .narrow(3, 0, tokens * self.patch)
            .permute([0, 3, 1, 2])
            .reshape([b, tokens, self.patch * c * m]);
        // A token is real when all its frames are.
        let lengths = pool::map_lengths(lengths, |l| l / self.patch);
        let keep = lengths.as_deref().map(|ls| {
            pool::time_mask(ls, tokens, xs.device())
                .gt(0.5)
                .reshape([b, 1, 1, tokens])
        });
        // Sinusoidal positions: a prefix of the stored table (or a longer one computed anew).
        let have = self.pos.size()[0];
        let pos = if tokens <= have {
            self.pos.narrow(0, 0, tokens)
        } else {
            positional(tokens, self.pos.size()[1]).to_device(xs.device())
        };
        let mut x = (x.apply(&self.embed) + pos).dropout(self.dropout, train);
        for blk in &self.blocks {
            let a = self.attention(blk, &x.apply(&blk.ln1), keep.as_ref(), train);
            x = x + a.dropout(self.dropout, train);
            let f = x
                .apply(&blk.ln2)
                .apply(&blk.ff1)
                .gelu("none")
                .apply(&blk.ff2);
            x = x + f.dropout(self.dropout, train);
        }
        self.pool.forward(&x.apply(&self.ln), lengths.as_deref())
    }
}
