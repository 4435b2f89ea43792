//! The wav2vec 2.0 family: wav2vec 2.0, HuBERT and WavLM share a convolutional waveform front
//! end (7 layers, 20 ms frames; group norm on the first layer for `base` models, layer norm on
//! every layer for `large`), a feature projection, a convolutional positional embedding (weight
//! norm, or HuBERT's batch norm variant) and a transformer, post-norm (`base`) or pre-norm
//! (`large`, `do_stable_layer_norm`). WavLM adds gated relative position bias: bucketed
//! relative positions embedded once in the first layer, scaled in every layer by a gate computed
//! from that layer's input.
//!
//! Mirrors `transformers.models.{wav2vec2,hubert,wavlm}.modeling_*` (eval mode).

use tch::{Kind, Tensor};

use super::config::{Arch, W2vConfig};
use super::weights::Weights;
use super::{frame_mask, key_padding_bias, Activation, Hidden, LayerNorm, Linear, SelfAttention};

enum ConvNorm {
    None,
    /// `GroupNorm(C, C)` (one group per channel): normalises each channel over time.
    Group(Tensor, Tensor),
    /// `LayerNorm(C)` over channels, per frame.
    Layer(Tensor, Tensor),
}

struct ConvLayer {
    w: Tensor,
    b: Option<Tensor>,
    stride: i64,
    norm: ConvNorm,
}

struct Layer {
    attn: SelfAttention,
    norm1: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    norm2: LayerNorm,
    /// WavLM: `gru_rel_pos_linear` and `gru_rel_pos_const`.
    gate: Option<(Linear, Tensor)>,
}

pub struct Wav2Vec2 {
    convs: Vec<ConvLayer>,
    kernels: Vec<i64>,
    act_feat: Activation,
    proj_norm: Option<LayerNorm>,
    proj: Linear,
    pos_w: Tensor,
    pos_b: Tensor,
    pos_bn: Option<[Tensor; 4]>,
    pos_kernel: i64,
    pos_groups: i64,
    /// `encoder.layer_norm` before the layers (post-norm models; pre-norm ones apply it after).
    pre_norm: Option<LayerNorm>,
    stack: Stack,
}

/// Transformer layers `first..` of a model (all of them in [`Wav2Vec2`]; the top ones in a
/// fine-tuned [`Top`]), with what they need around them.
pub struct Stack {
    layers: Vec<Layer>,
    stable: bool,
    act: Activation,
    heads: i64,
    /// WavLM: `rel_attn_embed` of the first layer, buckets, max distance.
    rel: Option<(Tensor, i64, i64)>,
    /// Pre-norm models: `encoder.layer_norm` after the last layer.
    final_norm: Option<LayerNorm>,
}

/// The top layers of a model as trainable variables (the `finetune` model family).
pub struct Top {
    pub stack: Stack,
}

impl Top {
    /// Layers `first..num_hidden_layers` (and the final layer norm of pre-norm models) as
    /// variables under `path`; WavLM's relative position embedding stays frozen.
    pub fn load<'p>(
        w: &mut Weights<'p>,
        arch: Arch,
        c: &W2vConfig,
        first: i64,
        path: tch::nn::Path<'p>,
    ) -> Top {
        let rel = rel_embedding(w, arch, c);
        w.train_into(Some(path));
        let mut stack = Stack::load(w, arch, c, first);
        w.train_into(None);
        stack.rel = rel;
        Top { stack }
    }
}

fn rel_embedding(w: &mut Weights, arch: Arch, c: &W2vConfig) -> Option<(Tensor, i64, i64)> {
    (arch == Arch::Wavlm).then(|| {
        (
            w.get(
                "encoder.layers.0.attention.rel_attn_embed.weight",
                &[c.num_buckets, c.num_attention_heads],
                "num_buckets",
            ),
            c.num_buckets,
            c.max_bucket_distance,
        )
    })
}

impl Stack {
    fn load(w: &mut Weights, arch: Arch, c: &W2vConfig, first: i64) -> Stack {
        let d = c.hidden_size;
        let heads = c.num_attention_heads;
        let layers = (first..c.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layers.{i}");
                let gate = (arch == Arch::Wavlm).then(|| {
                    (
                        Linear::load(
                            w,
                            &format!("{p}.attention.gru_rel_pos_linear"),
                            8,
                            d / heads,
                            true,
                            "num_attention_heads",
                        ),
                        w.get(
                            &format!("{p}.attention.gru_rel_pos_const"),
                            &[1, heads, 1, 1],
                            "num_attention_heads",
                        ),
                    )
                });
                Layer {
                    attn: SelfAttention::load(
                        w,
                        &format!("{p}.attention"),
                        d,
                        heads,
                        true,
                        "hidden_size",
                    ),
                    norm1: LayerNorm::load(
                        w,
                        &format!("{p}.layer_norm"),
                        d,
                        c.layer_norm_eps,
                        "hidden_size",
                    ),
                    ff_in: Linear::load(
                        w,
                        &format!("{p}.feed_forward.intermediate_dense"),
                        c.intermediate_size,
                        d,
                        true,
                        "intermediate_size",
                    ),
                    ff_out: Linear::load(
                        w,
                        &format!("{p}.feed_forward.output_dense"),
                        d,
                        c.intermediate_size,
                        true,
                        "intermediate_size",
                    ),
                    norm2: LayerNorm::load(
                        w,
                        &format!("{p}.final_layer_norm"),
                        d,
                        c.layer_norm_eps,
                        "hidden_size",
                    ),
                    gate,
                }
            })
            .collect();
        let final_norm = c
            .do_stable_layer_norm
            .then(|| LayerNorm::load(w, "encoder.layer_norm", d, c.layer_norm_eps, "hidden_size"));
        Stack {
            layers,
            stable: c.do_stable_layer_norm,
            act: Activation::parse(&c.hidden_act).expect("checked"),
            heads,
            rel: None,
            final_norm,
        }
    }

    /// The layers on `h` `[B, T, D]` whose clips have `lengths` valid frames: the input and each
    /// layer's output (`transformers`' hidden states), and the last one after the final layer
    /// norm of pre-norm models.
    pub fn run(&self, h: Tensor, lengths: &[i64]) -> (Vec<Tensor>, Tensor) {
        let t = h.size()[1];
        let bias = key_padding_bias(lengths, t, h.device());
        let pos_bias = self.rel.as_ref().map(|(emb, buckets, max_d)| {
            relative_position_bias(emb, *buckets, *max_d, t).unsqueeze(0) // [1, H, T, T]
        });
        let mut h = h;
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        states.push(h.shallow_clone());
        for layer in &self.layers {
            h = self.layer(layer, &h, bias.as_ref(), pos_bias.as_ref());
            states.push(h.shallow_clone());
        }
        let last = match &self.final_norm {
            Some(n) => n.forward(&h),
            None => h,
        };
        (states, last)
    }

    fn layer(
        &self,
        l: &Layer,
        h: &Tensor,
        padding: Option<&Tensor>,
        pos_bias: Option<&Tensor>,
    ) -> Tensor {
        let attend = |x: &Tensor| {
            let bias = match (pos_bias, &l.gate) {
                (Some(pb), Some((lin, konst))) => Some(self.gated_bias(x, pb, lin, konst, padding)),
                _ => padding.map(|p| p.shallow_clone()),
            };
            l.attn.forward(x, bias.as_ref())
        };
        let ff = |x: &Tensor| l.ff_out.forward(&self.act.apply(&l.ff_in.forward(x)));
        if self.stable {
            let h = h + attend(&l.norm1.forward(h));
            &h + ff(&l.norm2.forward(&h))
        } else {
            let h = l.norm1.forward(&(h + attend(h)));
            l.norm2.forward(&(&h + ff(&h)))
        }
    }

    /// WavLM's gate: from the attention input `x` `[B, T, D]`, per head and frame
    /// `a · (b · const − 1) + 2` scales that query's row of the position bias.
    fn gated_bias(
        &self,
        x: &Tensor,
        pos_bias: &Tensor,
        lin: &Linear,
        konst: &Tensor,
        padding: Option<&Tensor>,
    ) -> Tensor {
        let (b, t, d) = x.size3().expect("[B, T, D]");
        let g = x
            .view([b, t, self.heads, d / self.heads])
            .permute([0, 2, 1, 3]);
        let proj = lin
            .forward(&g)
            .view([b, self.heads, t, 2, 4])
            .sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)
            .sigmoid();
        let ga = proj.narrow(-1, 0, 1);
        let gb = proj.narrow(-1, 1, 1);
        let gate = &ga * (&gb * konst - 1.0) + 2.0; // [B, H, T, 1]
        let bias = gate * pos_bias; // [B, H, T, T]
        match padding {
            Some(p) => bias + p,
            None => bias,
        }
    }
}

impl Wav2Vec2 {
    pub fn load(w: &mut Weights, arch: Arch, c: &W2vConfig) -> Wav2Vec2 {
        let mut convs = Vec::new();
        let mut inp = 1;
        for (i, ((&out, &k), &s)) in c
            .conv_dim
            .iter()
            .zip(&c.conv_kernel)
            .zip(&c.conv_stride)
            .enumerate()
        {
            let name = format!("feature_extractor.conv_layers.{i}");
            let cw = w.get(
                &format!("{name}.conv.weight"),
                &[out, inp, k],
                "conv_dim / conv_kernel",
            );
            let cb = c
                .conv_bias
                .then(|| w.get(&format!("{name}.conv.bias"), &[out], "conv_bias"));
            let affine = |w: &mut Weights| {
                (
                    w.get(
                        &format!("{name}.layer_norm.weight"),
                        &[out],
                        "feat_extract_norm",
                    ),
                    w.get(
                        &format!("{name}.layer_norm.bias"),
                        &[out],
                        "feat_extract_norm",
                    ),
                )
            };
            let norm = match (c.feat_extract_norm.as_str(), i) {
                ("group", 0) => {
                    let (g, b) = affine(w);
                    ConvNorm::Group(g, b)
                }
                ("layer", _) => {
                    let (g, b) = affine(w);
                    ConvNorm::Layer(g, b)
                }
                _ => ConvNorm::None,
            };
            convs.push(ConvLayer {
                w: cw,
                b: cb,
                stride: s,
                norm,
            });
            inp = out;
        }
        let feat = *c.conv_dim.last().expect("checked");
        let d = c.hidden_size;
        let proj_ln = arch != Arch::Hubert || c.feat_proj_layer_norm;
        let proj_norm = proj_ln.then(|| {
            LayerNorm::load(
                w,
                "feature_projection.layer_norm",
                feat,
                c.layer_norm_eps,
                "conv_dim",
            )
        });
        let proj = Linear::load(
            w,
            "feature_projection.projection",
            d,
            feat,
            true,
            "hidden_size",
        );
        let k = c.num_conv_pos_embeddings;
        let g = c.num_conv_pos_embedding_groups;
        let pc = "encoder.pos_conv_embed.conv";
        let wshape = [d, d / g, k];
        let field = "num_conv_pos_embeddings / num_conv_pos_embedding_groups";
        let (pos_w, pos_bn) = if arch == Arch::Hubert && c.conv_pos_batch_norm {
            let bn = "encoder.pos_conv_embed.batch_norm";
            let bn = [
                w.get(&format!("{bn}.weight"), &[d], "conv_pos_batch_norm"),
                w.get(&format!("{bn}.bias"), &[d], "conv_pos_batch_norm"),
                w.get(&format!("{bn}.running_mean"), &[d], "conv_pos_batch_norm"),
                w.get(&format!("{bn}.running_var"), &[d], "conv_pos_batch_norm"),
            ];
            if w.has(&format!(
                "encoder.pos_conv_embed.batch_norm.num_batches_tracked"
            )) {
                let _ = w.get(
                    "encoder.pos_conv_embed.batch_norm.num_batches_tracked",
                    &[],
                    "conv_pos_batch_norm",
                );
            }
            (w.get(&format!("{pc}.weight"), &wshape, field), Some(bn))
        } else {
            // Weight norm over dim 2: weight = g · v / ‖v‖ (norm over the other dims), saved as
            // `parametrizations.weight.original{0,1}` (torch ≥ 2.1) or `weight_{g,v}`.
            let (gn, vn) = if w.has(&format!("{pc}.weight_g")) {
                (format!("{pc}.weight_g"), format!("{pc}.weight_v"))
            } else {
                (
                    format!("{pc}.parametrizations.weight.original0"),
                    format!("{pc}.parametrizations.weight.original1"),
                )
            };
            let gt = w.get(&gn, &[1, 1, k], field);
            let vt = w.get(&vn, &wshape, field);
            (Tensor::internal_weight_norm(&vt, &gt, 2), None)
        };
        let pos_b = w.get(&format!("{pc}.bias"), &[d], "hidden_size");
        let pre_norm = (!c.do_stable_layer_norm)
            .then(|| LayerNorm::load(w, "encoder.layer_norm", d, c.layer_norm_eps, "hidden_size"));
        let mut stack = Stack::load(w, arch, c, 0);
        stack.rel = rel_embedding(w, arch, c);
        Wav2Vec2 {
            convs,
            kernels: c.conv_kernel.clone(),
            act_feat: Activation::parse(&c.feat_extract_activation).expect("checked"),
            proj_norm,
            proj,
            pos_w,
            pos_b,
            pos_bn,
            pos_kernel: k,
            pos_groups: g,
            pre_norm,
            stack,
        }
    }

    /// Frames the front end makes of `samples` (`_get_feat_extract_output_lengths`).
    pub fn frames(&self, samples: i64) -> i64 {
        self.kernels
            .iter()
            .zip(self.convs.iter().map(|c| c.stride))
            .fold(samples, |n, (&k, s)| (n - k).div_euclid(s) + 1)
    }

    /// The shortest input giving one frame.
    pub fn min_samples(&self) -> i64 {
        self.kernels
            .iter()
            .zip(self.convs.iter().map(|c| c.stride))
            .rev()
            .fold(1, |n, (&k, s)| (n - 1) * s + k)
    }

    /// `x`: `[B, N]` (already normalised); `lengths`: valid samples per clip when padded.
    pub fn forward(&self, x: &Tensor, lengths: Option<&[i64]>) -> Hidden {
        let mut h = x.unsqueeze(1);
        for c in &self.convs {
            h = h.conv1d(&c.w, c.b.as_ref(), [c.stride], [0], [1], 1);
            h = match &c.norm {
                ConvNorm::None => h,
                ConvNorm::Group(g, b) => h.group_norm(g.size()[0], Some(g), Some(b), 1e-5, false),
                ConvNorm::Layer(g, b) => h
                    .transpose(-2, -1)
                    .layer_norm([g.size()[0]], Some(g), Some(b), 1e-5, false)
                    .transpose(-2, -1),
            };
            h = self.act_feat.apply(&h);
        }
        let mut h = h.transpose(1, 2);
        let (b, t, _) = h.size3().expect("[B, T, C]");
        let frame_lengths: Vec<i64> = match lengths {
            Some(l) => l.iter().map(|&n| self.frames(n).min(t)).collect(),
            None => vec![t; b as usize],
        };
        if let Some(n) = &self.proj_norm {
            h = n.forward(&h);
        }
        let mut h = self.proj.forward(&h);
        let device = h.device();
        if frame_lengths.iter().any(|&l| l < t) {
            let mask = frame_mask(&frame_lengths, t, device).unsqueeze(-1);
            h = h.where_scalarother(&mask, 0.0);
        }
        h = &h + self.positional(&h);
        if let Some(n) = &self.pre_norm {
            h = n.forward(&h);
        }
        let (states, last) = self.stack.run(h, &frame_lengths);
        Hidden {
            states,
            last,
            lengths: frame_lengths,
        }
    }

    fn positional(&self, h: &Tensor) -> Tensor {
        let mut x = h.transpose(1, 2);
        if let Some([w, b, m, v]) = &self.pos_bn {
            x = x.batch_norm(Some(w), Some(b), Some(m), Some(v), false, 0.1, 1e-5, false);
        }
        let mut y = x.conv1d(
            &self.pos_w,
            Some(&self.pos_b),
            [1],
            [self.pos_kernel / 2],
            [1],
            self.pos_groups,
        );
        if self.pos_kernel % 2 == 0 {
            let n = y.size()[2];
            y = y.narrow(2, 0, n - 1);
        }
        self.act_feat.apply(&y).transpose(1, 2)
    }
}

/// WavLM's bucketed relative position embedding, `[H, T, T]` (`WavLMAttention.compute_bias`).
fn relative_position_bias(emb: &Tensor, num_buckets: i64, max_distance: i64, t: i64) -> Tensor {
    let device = emb.device();
    let ctx = Tensor::arange(t, (Kind::Int64, device)).view([t, 1]);
    let mem = Tensor::arange(t, (Kind::Int64, device)).view([1, t]);
    let rel = mem - ctx;
    let nb = num_buckets / 2;
    let mut buckets = rel.gt(0).to_kind(Kind::Int64) * nb;
    let rel = rel.abs();
    let max_exact = nb / 2;
    let small = rel.lt(max_exact);
    let large = (rel.to_kind(Kind::Float) / max_exact as f64).log()
        / ((max_distance as f64) / (max_exact as f64)).ln()
        * (nb - max_exact) as f64;
    let large = (large + max_exact as f64)
        .to_kind(Kind::Int64)
        .clamp_max(nb - 1);
    buckets += rel.where_self(&small, &large);
    Tensor::embedding(emb, &buckets, -1, false, false).permute([2, 0, 1])
}
