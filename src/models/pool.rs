//! Padded batches: valid-frame masks, lengths through pooling, LSTMs that see only a clip's own
//! frames, and pooling over time (mean, last step, attention) that ignores padding.
//!
//! A batch may hold clips shorter than its time axis (padded at the end, with their lengths
//! given). Every family re-zeroes padded frames after each conv block and pools only over valid
//! frames, so in evaluation mode a padded clip gives the same output as the same clip alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::nn::{self, RNN};
use tch::{Device, Kind, Tensor};

/// How a sequence `[B, T, D]` becomes one vector `[B, D]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SeqPool {
    /// The last valid time step (for a bidirectional model: last forward, first backward state).
    Last,
    /// The mean over valid time steps.
    #[default]
    Mean,
    /// Learned attention weights over valid time steps (a softmax of `w·tanh(Wx)`, as in the
    /// attention layer of Chen et al., 2018, 3-D ACRNN).
    Attention,
}

/// `1.0` for valid frames, `0.0` for padding: `[B, T]`.
pub fn time_mask(lengths: &[i64], t: i64, device: Device) -> Tensor {
    let steps = Tensor::arange(t, (Kind::Int64, device)).unsqueeze(0);
    let l = Tensor::from_slice(lengths).to_device(device).unsqueeze(1);
    steps.lt_tensor(&l).to_kind(Kind::Float)
}

/// Lengths after an operation that maps `l` frames to `f(l)` (a pooling stride, a valid
/// convolution), never below one frame.
pub fn map_lengths(lengths: Option<&[i64]>, f: impl Fn(i64) -> i64) -> Option<Vec<i64>> {
    lengths.map(|ls| ls.iter().map(|&l| f(l).max(1)).collect())
}

/// One masked conv block (conv → batch norm → ReLU → max pool), as the CNN, the CRNN and the
/// CNN+LSTM stack them: each clip's valid length is carried through the pooling and the padded
/// frames are re-zeroed after the block.
#[derive(Debug)]
pub struct ConvBlock {
    pub conv: nn::Conv2D,
    pub bn: Option<nn::BatchNorm>,
    /// Max-pooling kernel and stride `[bins, frames]` (`[1, 1]`: no pooling).
    pub pool: [i64; 2],
    /// Frames lost by a valid convolution (`kernel - 1`; 0 for same padding).
    pub shrink: i64,
}

/// `blocks` in order over a padded batch `[B, C, H, T]` with per-clip valid `lengths`: the
/// activations and the lengths after the last block.
pub fn conv_blocks(
    blocks: &[ConvBlock],
    xs: &Tensor,
    lengths: Option<&[i64]>,
    train: bool,
) -> (Tensor, Option<Vec<i64>>) {
    let mut x = mask_4d(xs.shallow_clone(), lengths);
    let mut lengths = lengths.map(<[i64]>::to_vec);
    for b in blocks {
        x = x.apply(&b.conv);
        if let Some(bn) = &b.bn {
            x = x.apply_t(bn, train);
        }
        x = x.relu();
        if b.pool != [1, 1] {
            x = max_pool(&x, b.pool);
        }
        let (shrink, k) = (b.shrink, b.pool[1]);
        lengths = map_lengths(lengths.as_deref(), |l| (l - shrink) / k);
        x = mask_4d(x, lengths.as_deref());
    }
    (x, lengths)
}

/// Max pooling of `[B, C, H, W]` over non-overlapping `k[0] × k[1]` tiles (stride = kernel, no
/// padding, trailing rows and columns that fill no tile dropped): the values of
/// `max_pool2d(k, k)`, computed as element-wise maxima of strided views (rows of a tile, then
/// columns). LibTorch's CPU `max_pool2d` on channels-first tensors is a scalar loop, slower
/// than these strided maxima for inference. With gradients it is the other way round (the
/// maxima's backward masks cost more than `max_pool2d`'s forward and backward), so a tensor that
/// requires a gradient (training) goes through `max_pool2d`; both give the same values.
pub fn max_pool(x: &Tensor, k: [i64; 2]) -> Tensor {
    if x.requires_grad() {
        return x.max_pool2d(k, k, [0, 0], [1, 1], false);
    }
    let s = x.size();
    let (h, w) = (s[2], s[3]);
    let (h2, w2) = (h / k[0], w / k[1]);
    if h2 == 0 || w2 == 0 || k[0] < 1 || k[1] < 1 {
        // Let LibTorch raise its own error for an input smaller than a tile.
        return x.max_pool2d(k, k, [0, 0], [1, 1], false);
    }
    let (hh, ww) = (h2 * k[0], w2 * k[1]);
    let rows = |i: i64| x.slice(2, i, hh, k[0]).narrow(3, 0, ww);
    let mut m = rows(0);
    for i in 1..k[0] {
        m = m.maximum(&rows(i));
    }
    let cols = |j: i64| m.slice(3, j, ww, k[1]);
    let mut out = cols(0);
    for j in 1..k[1] {
        out = out.maximum(&cols(j));
    }
    if k == [1, 1] {
        out = out.copy();
    }
    out
}

/// Zero the padded frames of `[B, C, F, T]` activations.
pub fn mask_4d(x: Tensor, lengths: Option<&[i64]>) -> Tensor {
    match lengths {
        None => x,
        Some(ls) => {
            let t = x.size()[3];
            let m = time_mask(ls, t, x.device()).to_kind(x.kind());
            x * m.unsqueeze(1).unsqueeze(1)
        }
    }
}

/// A single-layer (Bi-)LSTM over `[B, T, D]` where clip `i` has `lengths[i]` valid steps: clips
/// are grouped by length and each group runs on its own frames only, so the backward direction
/// starts at a clip's real end. Outputs past a clip's end are zero.
pub fn lstm_masked(lstm: &nn::LSTM, x: &Tensor, lengths: Option<&[i64]>) -> Tensor {
    let t = x.size()[1];
    let Some(ls) = lengths.filter(|ls| ls.iter().any(|&l| l < t)) else {
        return lstm.seq(x).0;
    };
    let mut groups: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (i, &l) in ls.iter().enumerate() {
        groups.entry(l.clamp(1, t)).or_default().push(i as i64);
    }
    let mut parts = Vec::new();
    let mut order = Vec::with_capacity(ls.len());
    for (len, idx) in groups {
        let sel = Tensor::from_slice(&idx).to_device(x.device());
        let y = lstm.seq(&x.index_select(0, &sel).narrow(1, 0, len)).0;
        parts.push(if len < t {
            y.constant_pad_nd([0, 0, 0, t - len])
        } else {
            y
        });
        order.extend(idx);
    }
    // Position of each clip in the concatenation, to restore batch order.
    let mut inverse = vec![0i64; order.len()];
    for (pos, &i) in order.iter().enumerate() {
        inverse[i as usize] = pos as i64;
    }
    Tensor::cat(&parts, 0).index_select(0, &Tensor::from_slice(&inverse).to_device(x.device()))
}

/// Pooling over time, with its weights when it has any.
#[derive(Debug)]
pub struct Pooler {
    kind: SeqPool,
    /// For `Last` on a bidirectional output: the width of one direction.
    bidirectional_hidden: Option<i64>,
    attention: Option<(nn::Linear, nn::Linear)>,
}

impl Pooler {
    /// `dim`: the width of each step; `bidirectional_hidden`: `Some(h)` when the steps are the
    /// `[forward h | backward h]` outputs of a bidirectional LSTM.
    pub fn new(
        p: nn::Path,
        kind: SeqPool,
        dim: i64,
        attention_dim: i64,
        bidirectional_hidden: Option<i64>,
    ) -> Pooler {
        let attention = (kind == SeqPool::Attention).then(|| {
            (
                nn::linear(&p / "att_proj", dim, attention_dim, Default::default()),
                nn::linear(
                    &p / "att_score",
                    attention_dim,
                    1,
                    nn::LinearConfig {
                        bias: false,
                        ..Default::default()
                    },
                ),
            )
        });
        Pooler {
            kind,
            bidirectional_hidden,
            attention,
        }
    }

    /// Mean pooling (no weights).
    pub fn new_mean() -> Pooler {
        Pooler {
            kind: SeqPool::Mean,
            bidirectional_hidden: None,
            attention: None,
        }
    }

    /// `[B, T, D]` → `[B, D]` over each clip's valid steps.
    pub fn forward(&self, x: &Tensor, lengths: Option<&[i64]>) -> Tensor {
        let (b, t, _) = x.size3().expect("[B, T, D]");
        let mask = lengths.map(|ls| time_mask(ls, t, x.device()).to_kind(x.kind()));
        match self.kind {
            SeqPool::Mean => match &mask {
                None => x.mean_dim([1i64].as_slice(), false, x.kind()),
                Some(m) => {
                    let n = m.sum_dim_intlist([1i64].as_slice(), true, x.kind());
                    (x * m.unsqueeze(-1)).sum_dim_intlist([1i64].as_slice(), false, x.kind()) / n
                }
            },
            SeqPool::Last => {
                let last: Vec<i64> = match lengths {
                    Some(ls) => ls.iter().map(|&l| l.clamp(1, t) - 1).collect(),
                    None => vec![t - 1; b as usize],
                };
                let idx = Tensor::from_slice(&last).to_device(x.device());
                let rows = Tensor::arange(b, (Kind::Int64, x.device()));
                let at_end = x.index(&[Some(rows), Some(idx)]);
                match self.bidirectional_hidden {
                    None => at_end,
                    Some(h) => {
                        // Forward direction's last valid step, backward direction's first step
                        // (its final state).
                        let fwd = at_end.narrow(1, 0, h);
                        let bwd = x.select(1, 0).narrow(1, h, h);
                        Tensor::cat(&[fwd, bwd], 1)
                    }
                }
            }
            SeqPool::Attention => {
                let (proj, score) = self.attention.as_ref().expect("built with attention");
                let mut e = x.apply(proj).tanh().apply(score).squeeze_dim(-1);
                if let Some(m) = &mask {
                    e = e.masked_fill(&m.eq(0.0), -1e4);
                }
                let w = e.softmax(1, Kind::Float).to_kind(x.kind());
                (x * w.unsqueeze(-1)).sum_dim_intlist([1i64].as_slice(), false, x.kind())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_max_pool_equals_max_pool2d() {
        tch::manual_seed(3);
        for (shape, k) in [
            ([2i64, 3, 9, 13], [2i64, 2]),
            ([1, 4, 8, 8], [2, 2]),
            ([3, 2, 7, 10], [1, 2]),
            ([2, 2, 6, 9], [3, 2]),
        ] {
            let x = Tensor::randn(shape, (tch::Kind::Float, tch::Device::Cpu)).relu();
            let want = x.max_pool2d(k, k, [0, 0], [1, 1], false);
            let got = max_pool(&x, k);
            assert_eq!(got.size(), want.size(), "{shape:?} {k:?}");
            assert_eq!(
                (got - want).abs().max().double_value(&[]),
                0.0,
                "{shape:?} {k:?}"
            );
        }
        // With a gradient (training) it goes through max_pool2d: the same gradients.
        let x = Tensor::randn([2, 3, 6, 8], (tch::Kind::Float, tch::Device::Cpu))
            .set_requires_grad(true);
        max_pool(&x, [2, 2]).sum(tch::Kind::Float).backward();
        let g1 = x.grad().copy();
        let y = x.detach().copy().set_requires_grad(true);
        y.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
            .sum(tch::Kind::Float)
            .backward();
        assert_eq!((g1 - y.grad()).abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn masked_pooling_ignores_padding() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let x = Tensor::randn([2, 5, 4], (Kind::Float, Device::Cpu));
        for kind in [SeqPool::Mean, SeqPool::Last, SeqPool::Attention] {
            let p = Pooler::new(vs.root() / format!("{kind:?}"), kind, 4, 3, None);
            let full = p.forward(&x.narrow(0, 0, 1).narrow(1, 0, 3), None);
            // Clip 0 padded with garbage after 3 steps gives the same vector.
            let padded = x.copy();
            let _ = padded.get(0).narrow(0, 3, 2).fill_(7.0);
            let masked = p.forward(&padded, Some(&[3, 5]));
            assert!(
                masked.get(0).allclose(&full.get(0), 1e-5, 1e-6, false),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn grouped_lstm_equals_each_clip_alone() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let lstm = nn::lstm(
            vs.root(),
            3,
            4,
            nn::RNNConfig {
                bidirectional: true,
                batch_first: true,
                ..Default::default()
            },
        );
        let x = Tensor::randn([3, 6, 3], (Kind::Float, Device::Cpu));
        let y = lstm_masked(&lstm, &x, Some(&[6, 2, 4]));
        for (i, l) in [(0, 6), (1, 2), (2, 4)] {
            let alone = lstm.seq(&x.narrow(0, i, 1).narrow(1, 0, l)).0;
            assert!(y
                .narrow(0, i, 1)
                .narrow(1, 0, l)
                .allclose(&alone, 1e-5, 1e-6, false));
            if l < 6 {
                let rest = y.narrow(0, i, 1).narrow(1, l, 6 - l);
                assert_eq!(rest.abs().sum(Kind::Float).double_value(&[]), 0.0);
            }
        }
    }
}
