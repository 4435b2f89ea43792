//! The Whisper encoder (Radford et al., "Robust Speech Recognition via Large-Scale Weak
//! Supervision", ICML 2023) with its own front end.
//!
//! Front end (`WhisperFeatureExtractor`, torch path): the clip zero-padded (or cut) to 30 s,
//! STFT with a 400-point periodic Hann window and hop 160, centred with reflection, power
//! spectrum without the last frame, a Slaney mel filterbank (80 or 128 bands, 0-8 kHz), log10
//! floored at 1e-10, clipped at 8 below the clip's maximum, then `(x + 4) / 4`. Encoder: two
//! GELU convolutions (the second with stride 2: 50 frames/s), sinusoidal positions learned as
//! an embedding, pre-norm transformer layers (no key bias) and a final layer norm. Mirrors
//! `transformers.models.whisper` (eval mode); the last hidden state is the layer-normed one, as
//! `transformers` reports it.

use tch::{Device, Kind, Tensor};

use super::config::{Preprocessor, WhisperConfig};
use super::weights::Weights;
use super::{Activation, EncoderError, Hidden, LayerNorm, Linear, SelfAttention, WhisperInput};
use crate::dsp::mel::{MelFilterbank, MelFilterbankSpec, MelScale};

struct Layer {
    attn: SelfAttention,
    norm1: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    norm2: LayerNorm,
}

/// Encoder layers `first..` and the final layer norm.
pub struct Stack {
    layers: Vec<Layer>,
    norm: LayerNorm,
    act: Activation,
}

impl Stack {
    fn load(w: &mut Weights, c: &WhisperConfig, first: i64) -> Stack {
        let d = c.d_model;
        let layers = (first..c.encoder_layers)
            .map(|i| {
                let p = format!("layers.{i}");
                let f = c.encoder_ffn_dim;
                Layer {
                    attn: SelfAttention::load(
                        w,
                        &format!("{p}.self_attn"),
                        d,
                        c.encoder_attention_heads,
                        false,
                        "d_model",
                    ),
                    norm1: LayerNorm::load(
                        w,
                        &format!("{p}.self_attn_layer_norm"),
                        d,
                        1e-5,
                        "d_model",
                    ),
                    fc1: Linear::load(w, &format!("{p}.fc1"), f, d, true, "encoder_ffn_dim"),
                    fc2: Linear::load(w, &format!("{p}.fc2"), d, f, true, "encoder_ffn_dim"),
                    norm2: LayerNorm::load(w, &format!("{p}.final_layer_norm"), d, 1e-5, "d_model"),
                }
            })
            .collect();
        Stack {
            layers,
            norm: LayerNorm::load(w, "layer_norm", d, 1e-5, "d_model"),
            act: Activation::parse(&c.activation_function).expect("checked"),
        }
    }

    /// The input and every layer's output, the last after the final layer norm (as
    /// `transformers` reports it), and that last state again. `bias`: an additive key mask.
    pub fn run(&self, h: Tensor, bias: Option<&Tensor>) -> (Vec<Tensor>, Tensor) {
        let mut h = h;
        let mut states = vec![h.shallow_clone()];
        for l in &self.layers {
            h = &h + l.attn.forward(&l.norm1.forward(&h), bias);
            h = &h
                + l.fc2
                    .forward(&self.act.apply(&l.fc1.forward(&l.norm2.forward(&h))));
            states.push(h.shallow_clone());
        }
        let last = self.norm.forward(&h);
        *states.last_mut().expect("states") = last.shallow_clone();
        (states, last)
    }
}

/// The top layers as trainable variables (the `finetune` model family).
pub struct Top {
    pub stack: Stack,
}

impl Top {
    pub fn load<'p>(
        w: &mut Weights<'p>,
        c: &WhisperConfig,
        first: i64,
        path: tch::nn::Path<'p>,
    ) -> Top {
        w.train_into(Some(path));
        let stack = Stack::load(w, c, first);
        w.train_into(None);
        Top { stack }
    }
}

pub struct Whisper {
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    positions: Tensor,
    stack: Stack,
    act: Activation,
    /// `[n_mels, n_fft / 2 + 1]`.
    mel: Tensor,
    window: Tensor,
    n_fft: i64,
    hop: i64,
    /// Samples of the 30 s window.
    n_samples: i64,
}

impl Whisper {
    pub fn load(w: &mut Weights, c: &WhisperConfig, p: &Preprocessor, device: Device) -> Whisper {
        let d = c.d_model;
        let m = c.num_mel_bins;
        let conv = |w: &mut Weights, name: &str, inp: i64| {
            (
                w.get(
                    &format!("{name}.weight"),
                    &[d, inp, 3],
                    "d_model / num_mel_bins",
                ),
                w.get(&format!("{name}.bias"), &[d], "d_model"),
            )
        };
        let conv1 = conv(w, "conv1", m);
        let conv2 = conv(w, "conv2", d);
        let positions = w.get(
            "embed_positions.weight",
            &[c.max_source_positions, d],
            "max_source_positions",
        );
        let stack = Stack::load(w, c, 0);
        let bank = MelFilterbank::new(&MelFilterbankSpec {
            sample_rate: 16000.0,
            n_fft: p.n_fft as usize,
            n_mels: m as usize,
            fmin: 0.0,
            fmax: 8000.0,
            scale: MelScale::Slaney,
            slaney_norm: true,
        });
        let mel = Tensor::from_slice(&bank.to_dense())
            .view([m, p.n_fft / 2 + 1])
            .to_device(device);
        Whisper {
            conv1,
            conv2,
            positions,
            stack,
            act: Activation::parse(&c.activation_function).expect("checked"),
            mel,
            window: Tensor::hann_window(p.n_fft, (Kind::Float, device)),
            n_fft: p.n_fft,
            hop: p.hop_length,
            n_samples: p.chunk_length * 16000,
        }
    }

    /// Log-mel input features `[B, n_mels, 3000]` of clips padded or cut to 30 s.
    pub fn log_mel(&self, clips: &[&[f32]], device: Device) -> Tensor {
        self.log_mel_frames(clips, 2 * self.positions.size()[0], device)
    }

    /// The first `m` frames of [`Self::log_mel`], computing only the frames they and the
    /// clip-level maximum need: a frame past the audio sees only silence, so its log power is the
    /// floor and it can never be the maximum.
    pub fn log_mel_frames(&self, clips: &[&[f32]], m: i64, device: Device) -> Tensor {
        let total = self.n_samples / self.hop;
        let half = self.n_fft / 2;
        let longest = clips.iter().map(|c| c.len() as i64).max().unwrap_or(0);
        let need = m
            .max((longest.min(self.n_samples) + half + self.hop - 1) / self.hop + 1)
            .min(total);
        let n = (need * self.hop).min(self.n_samples) as usize;
        let mut flat = vec![0f32; clips.len() * n];
        for (i, c) in clips.iter().enumerate() {
            let k = c.len().min(n);
            flat[i * n..i * n + k].copy_from_slice(&c[..k]);
        }
        let x = Tensor::from_slice(&flat)
            .view([clips.len() as i64, 1, n as i64])
            .to_device(device);
        let x = x.reflection_pad1d([half, half]).squeeze_dim(1);
        let spec = x.stft(
            self.n_fft,
            self.hop,
            self.n_fft,
            Some(&self.window),
            false,
            true,
            true,
            false,
        );
        let frames = spec.size()[2];
        let power = spec
            .abs()
            .pow_tensor_scalar(2)
            .narrow(2, 0, frames - 1)
            .contiguous();
        let mel = self.mel.matmul(&power);
        let log = mel.clamp_min(1e-10).log10();
        let max = log.amax([1i64, 2].as_slice(), true);
        let out = (log.maximum(&(max - 8.0)) + 4.0) / 4.0;
        if out.size()[2] > m {
            out.narrow(2, 0, m)
        } else {
            out
        }
    }

    /// Output frames covering `samples` of audio (two mel frames each).
    pub fn frames_for(&self, samples: usize) -> i64 {
        let mel = (samples as i64 + self.hop - 1) / self.hop;
        ((mel + 1) / 2).min(self.positions.size()[0])
    }

    pub fn forward(
        &self,
        clips: &[&[f32]],
        input: WhisperInput,
        device: Device,
    ) -> Result<Hidden, EncoderError> {
        if let Some(c) = clips.iter().find(|c| c.len() as i64 > self.n_samples) {
            return Err(EncoderError::Input(format!(
                "a clip of {:.1} s is longer than Whisper's {} s window (the feature stage cuts long clips into chunks)",
                c.len() as f64 / 16000.0,
                self.n_samples / 16000
            )));
        }
        let max = self.positions.size()[0];
        let lengths: Vec<i64> = clips.iter().map(|c| self.frames_for(c.len())).collect();
        let spans: Vec<i64> = lengths.iter().map(|&l| input.span(l, max)).collect();
        let t = *spans.iter().max().expect("clips");
        let mut feats = self.log_mel_frames(clips, 2 * t, device);
        if spans.iter().any(|&s| s < t) {
            // Each clip sees exactly what it sees alone: input frames past its span are the
            // convolution's zero padding, and attention never reaches them.
            let spans2: Vec<i64> = spans.iter().map(|&s| 2 * s).collect();
            let keep = super::frame_mask(&spans2, 2 * t, device)
                .unsqueeze(1)
                .to_kind(feats.kind());
            feats *= keep;
        }
        Ok(self.encode_spans(&feats, lengths, &spans))
    }

    /// The encoder on input features `[B, n_mels, 2T]` (T ≤ max_source_positions).
    pub fn encode(&self, feats: &Tensor, lengths: Vec<i64>) -> Hidden {
        let t = feats.size()[2] / 2;
        let spans = vec![t; lengths.len()];
        self.encode_spans(feats, lengths, &spans)
    }

    /// [`Self::encode`] where clip `b` attends to its first `spans[b]` frames only.
    fn encode_spans(&self, feats: &Tensor, lengths: Vec<i64>, spans: &[i64]) -> Hidden {
        let h = self
            .act
            .apply(&feats.conv1d(&self.conv1.0, Some(&self.conv1.1), [1], [1], [1], 1));
        let h = self
            .act
            .apply(&h.conv1d(&self.conv2.0, Some(&self.conv2.1), [2], [1], [1], 1));
        let h = h.permute([0, 2, 1]);
        let t = h.size()[1];
        let h = h + self.positions.narrow(0, 0, t);
        let bias = super::key_padding_bias(spans, t, h.device());
        let (states, last) = self.stack.run(h, bias.as_ref());
        Hidden {
            states,
            last,
            lengths,
        }
    }
}
