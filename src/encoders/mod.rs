//! Pretrained speech encoders on LibTorch: wav2vec 2.0 (Baevski et al., NeurIPS 2020), HuBERT
//! (Hsu et al., TASLP 2021), WavLM (Chen et al., JSTSP 2022) and the Whisper encoder (Radford et
//! al., ICML 2023), loaded from a Hugging Face model folder (`config.json` +
//! `model.safetensors`) as `huggingface-cli download` writes it.
//!
//! Each is a re-implementation of the `transformers` module of the same name in eval mode
//! ([`wav2vec2`] covers all three self-supervised models; [`whisper`] has its own log-mel front
//! end), checked layer by layer against `transformers` on tiny random checkpoints
//! (`tests/fixtures/encoders/make_fixtures.py`, `tests/encoders.rs`). [`Encoder::forward`] turns
//! a batch of 16 kHz waveforms into the hidden state of every layer: index 0 is the input of the
//! first transformer layer, `i` the output of layer `i` (what `output_hidden_states=True` gives
//! in `transformers` 5). Nothing here downloads anything.

pub mod config;
pub mod wav2vec2;
pub mod weights;
pub mod whisper;

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

pub use config::{Arch, ModelConfig, Preprocessor};

/// Errors of loading or running an encoder.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("encoder folder {dir}: {message}")]
    Folder { dir: PathBuf, message: String },
    #[error("encoder folder {dir}: config.json: {message}")]
    Config { dir: PathBuf, message: String },
    #[error(
        "encoder folder {dir}: the checkpoint does not match config.json:{}",
        list(missing, unexpected, wrong_shape)
    )]
    Weights {
        dir: PathBuf,
        missing: Vec<String>,
        unexpected: Vec<String>,
        wrong_shape: Vec<String>,
    },
    #[error("encoder: {0}")]
    Input(String),
    #[error("encoder: {0}")]
    Torch(#[from] tch::TchError),
}

fn list(missing: &[String], unexpected: &[String], wrong: &[String]) -> String {
    let mut s = String::new();
    for (what, xs) in [
        ("missing tensor", missing),
        ("unexpected tensor", unexpected),
        ("wrong shape", wrong),
    ] {
        for x in xs {
            s.push_str(&format!("\n  {what}: {x}"));
        }
    }
    s
}

impl EncoderError {
    pub(crate) fn folder(dir: &Path, message: impl Into<String>) -> EncoderError {
        EncoderError::Folder {
            dir: dir.to_path_buf(),
            message: message.into(),
        }
    }

    /// The folder does not exist: what to download, and where to point emolab.
    pub fn missing_folder(dir: &Path) -> EncoderError {
        EncoderError::folder(
            dir,
            "not found: download the checkpoint there first (e.g. `huggingface-cli download \
             microsoft/wavlm-base-plus --local-dir models/wavlm-base-plus`; see \
             docs/encoders.md), or point `encoder.path` / $ENCODER_DIR at it",
        )
    }

    pub(crate) fn config(dir: &Path, message: impl Into<String>) -> EncoderError {
        EncoderError::Config {
            dir: dir.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Activation functions of `transformers`' `ACT2FN` that these models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Gelu,
    GeluTanh,
    Relu,
}

impl Activation {
    pub fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            _ => return None,
        })
    }

    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Gelu => x.gelu("none"),
            Activation::GeluTanh => x.gelu("tanh"),
            Activation::Relu => x.relu(),
        }
    }
}

/// `nn.Linear`.
pub(crate) struct Linear {
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    pub(crate) fn load(
        w: &mut weights::Weights,
        name: &str,
        out: i64,
        inp: i64,
        bias: bool,
        field: &str,
    ) -> Linear {
        Linear {
            w: w.get(&format!("{name}.weight"), &[out, inp], field),
            b: bias.then(|| w.get(&format!("{name}.bias"), &[out], field)),
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.w, self.b.as_ref())
    }
}

/// `nn.LayerNorm` over the last dimension.
pub(crate) struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub(crate) fn load(
        w: &mut weights::Weights,
        name: &str,
        dim: i64,
        eps: f64,
        field: &str,
    ) -> LayerNorm {
        LayerNorm {
            w: w.get(&format!("{name}.weight"), &[dim], field),
            b: w.get(&format!("{name}.bias"), &[dim], field),
            eps,
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let d = *x.size().last().expect("a tensor with dimensions");
        x.layer_norm([d], Some(&self.w), Some(&self.b), self.eps, false)
    }
}

/// Multi-head self-attention (`q_proj`, `k_proj`, `v_proj`, `out_proj`); `bias` is an
/// additive `[B, H or 1, T, T]` term (key padding, relative positions).
pub(crate) struct SelfAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: i64,
}

impl SelfAttention {
    pub(crate) fn load(
        w: &mut weights::Weights,
        name: &str,
        dim: i64,
        heads: i64,
        k_bias: bool,
        field: &str,
    ) -> SelfAttention {
        SelfAttention {
            q: Linear::load(w, &format!("{name}.q_proj"), dim, dim, true, field),
            k: Linear::load(w, &format!("{name}.k_proj"), dim, dim, k_bias, field),
            v: Linear::load(w, &format!("{name}.v_proj"), dim, dim, true, field),
            o: Linear::load(w, &format!("{name}.out_proj"), dim, dim, true, field),
            heads,
        }
    }

    /// `x`: `[B, T, D]`.
    pub(crate) fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let (b, t, d) = x.size3().expect("[B, T, D]");
        let hd = d / self.heads;
        let split = |y: Tensor| y.view([b, t, self.heads, hd]).transpose(1, 2);
        let q = split(self.q.forward(x));
        let k = split(self.k.forward(x));
        let v = split(self.v.forward(x));
        let out = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            bias,
            0.0,
            false,
            (hd as f64).powf(-0.5),
            false,
        );
        self.o
            .forward(&out.transpose(1, 2).contiguous().view([b, t, d]))
    }
}

/// An additive key-padding mask `[B, 1, 1, T]` (0 where valid, the lowest f32 where padded)
/// from per-clip valid frame counts; `None` when no clip is padded.
pub(crate) fn key_padding_bias(lengths: &[i64], t: i64, device: Device) -> Option<Tensor> {
    if lengths.iter().all(|&l| l >= t) {
        return None;
    }
    let valid = frame_mask(lengths, t, device);
    Some(
        Tensor::zeros([lengths.len() as i64, 1, 1, t], (Kind::Float, device))
            .masked_fill(&valid.logical_not().view([-1, 1, 1, t]), f32::MIN as f64),
    )
}

/// `[B, T]` booleans: frame `t` of clip `b` is within its length.
pub(crate) fn frame_mask(lengths: &[i64], t: i64, device: Device) -> Tensor {
    let pos = Tensor::arange(t, (Kind::Int64, device)).view([1, t]);
    let len = Tensor::from_slice(lengths).to_device(device).view([-1, 1]);
    pos.lt_tensor(&len)
}

/// Hidden states of a batch.
pub struct Hidden {
    /// One `[B, T, D]` tensor per hidden state (layers + 1).
    pub states: Vec<Tensor>,
    /// `transformers`' `last_hidden_state` (after the final layer norm where there is one).
    pub last: Tensor,
    /// Valid frames of each clip.
    pub lengths: Vec<i64>,
}

enum Inner {
    W2v(wav2vec2::Wav2Vec2),
    Whisper(whisper::Whisper),
}

/// How Whisper sees a clip shorter than its 30 s window. Every mode takes the log-mel
/// spectrogram of the clip padded with silence to 30 s (as `transformers` computes it, clip-level
/// maximum included) and runs the encoder on its first frames with the first positional
/// embeddings; they differ in how many frames the encoder attends to. Pooling always uses the
/// frames that cover the clip (50 per second).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum WhisperInput {
    /// As Whisper was trained and `transformers` runs it: all 1500 frames (30 s).
    Padded,
    /// The clip's own frames only: ~15× less compute for a 2 s clip than `padded`.
    #[default]
    Cropped,
    /// A window of this many seconds (rounded up to a multiple of it for longer clips, at most
    /// 30 s): the clip and some of the silence Whisper saw in training.
    Window(f32),
}

impl WhisperInput {
    /// Encoder frames (50 per second) the encoder attends to for a clip covering `frames`
    /// frames, of at most `max` (1500).
    pub fn span(self, frames: i64, max: i64) -> i64 {
        match self {
            WhisperInput::Padded => max,
            WhisperInput::Cropped => frames.min(max),
            WhisperInput::Window(s) => {
                let w = ((s as f64 * 50.0).round() as i64).clamp(1, max);
                ((frames.max(1) + w - 1) / w * w).min(max)
            }
        }
    }

    /// `padded`, `cropped` or the window's seconds.
    pub fn parse(s: &str) -> Option<WhisperInput> {
        match s.trim() {
            "padded" => Some(WhisperInput::Padded),
            "cropped" => Some(WhisperInput::Cropped),
            t => {
                let v: f32 = t.trim_end_matches('s').parse().ok()?;
                (v > 0.0 && v <= 30.0).then_some(WhisperInput::Window(v))
            }
        }
    }

    pub fn name(self) -> String {
        match self {
            WhisperInput::Padded => "padded".into(),
            WhisperInput::Cropped => "cropped".into(),
            WhisperInput::Window(s) => format!("{s} s window"),
        }
    }
}

impl serde::Serialize for WhisperInput {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WhisperInput::Padded => s.serialize_str("padded"),
            WhisperInput::Cropped => s.serialize_str("cropped"),
            WhisperInput::Window(v) => s.serialize_f32(*v),
        }
    }
}

impl<'de> serde::Deserialize<'de> for WhisperInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Seconds(f64),
            Name(String),
        }
        let bad = |what: String| {
            serde::de::Error::custom(format!(
                "whisper_input: `padded`, `cropped` or a window in seconds (0 < s <= 30), got {what}"
            ))
        };
        match Repr::deserialize(d)? {
            Repr::Name(n) => WhisperInput::parse(&n).ok_or_else(|| bad(format!("`{n}`"))),
            Repr::Seconds(v) => {
                WhisperInput::parse(&v.to_string()).ok_or_else(|| bad(v.to_string()))
            }
        }
    }
}

enum TopInner {
    W2v(wav2vec2::Top),
    Whisper(whisper::Top),
}

/// The top `n` transformer layers of a checkpoint as trainable variables of a var store (the
/// `finetune` model family): they run on the cached hidden state [`TopLayers::input_state`] of
/// the frozen layers below, so fine-tuning never recomputes the bottom of the encoder. Padded
/// frames are masked out of attention (Whisper too, which `transformers` does not mask: its
/// top layers here see the clip's own frames, as in the `cropped` mode). Dropout inside the
/// layers is not applied.
pub struct TopLayers {
    inner: TopInner,
    first: usize,
    layers: usize,
}

impl TopLayers {
    pub fn load(
        dir: &Path,
        n: usize,
        path: &tch::nn::Path,
        device: Device,
    ) -> Result<TopLayers, EncoderError> {
        if !dir.is_dir() {
            return Err(EncoderError::missing_folder(dir));
        }
        let config = ModelConfig::load(dir)?;
        let layers = config.layers() as usize;
        if n == 0 || n > layers {
            return Err(EncoderError::Input(format!(
                "top_layers must be in 1..={layers} for {}, got {n}",
                dir.display()
            )));
        }
        let first = layers - n;
        let mut w = weights::Weights::load(dir, config.arch(), device)?;
        let inner = match &config {
            ModelConfig::W2v(arch, c) => TopInner::W2v(wav2vec2::Top::load(
                &mut w,
                *arch,
                c,
                first as i64,
                path / "encoder",
            )),
            ModelConfig::Whisper(c) => TopInner::Whisper(whisper::Top::load(
                &mut w,
                c,
                first as i64,
                path / "encoder",
            )),
        };
        w.finish_partial()?;
        Ok(TopLayers {
            inner,
            first,
            layers,
        })
    }

    /// The hidden state the top layers start from (what the feature cache must hold).
    pub fn input_state(&self) -> usize {
        self.first
    }

    /// Hidden states this returns (the input and each top layer's output).
    pub fn n_states(&self) -> usize {
        self.layers - self.first + 1
    }

    /// `x`: `[B, T, D]` hidden states [`Self::input_state`] with `lengths` valid frames: the
    /// input and each top layer's output, the last after the final layer norm where the model
    /// has one.
    pub fn forward(&self, x: &Tensor, lengths: &[i64]) -> Vec<Tensor> {
        match &self.inner {
            TopInner::W2v(t) => {
                let (mut states, last) = t.stack.run(x.shallow_clone(), lengths);
                *states.last_mut().expect("states") = last;
                states
            }
            TopInner::Whisper(t) => {
                let bias = key_padding_bias(lengths, x.size()[1], x.device());
                t.stack.run(x.shallow_clone(), bias.as_ref()).0
            }
        }
    }
}

/// A loaded encoder (eval mode; no gradients).
pub struct Encoder {
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub preprocessor: Preprocessor,
    pub device: Device,
    inner: Inner,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Encoder({} {} × {}, {})",
            self.config.arch().name(),
            self.config.layers(),
            self.config.hidden_size(),
            self.dir.display()
        )
    }
}

impl Encoder {
    /// Load a model folder onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Encoder, EncoderError> {
        if !dir.is_dir() {
            return Err(EncoderError::missing_folder(dir));
        }
        let config = ModelConfig::load(dir)?;
        let preprocessor = Preprocessor::load(dir)?;
        let mut w = weights::Weights::load(dir, config.arch(), device)?;
        let inner = match &config {
            ModelConfig::W2v(arch, c) => Inner::W2v(wav2vec2::Wav2Vec2::load(&mut w, *arch, c)),
            ModelConfig::Whisper(c) => {
                if let Some(n) = preprocessor.feature_size {
                    if n != c.num_mel_bins {
                        return Err(EncoderError::config(
                            dir,
                            format!(
                                "num_mel_bins {} but preprocessor_config.json feature_size {n}",
                                c.num_mel_bins
                            ),
                        ));
                    }
                }
                Inner::Whisper(whisper::Whisper::load(&mut w, c, &preprocessor, device))
            }
        };
        w.finish()?;
        Ok(Encoder {
            dir: dir.to_path_buf(),
            config,
            preprocessor,
            device,
            inner,
        })
    }

    pub fn arch(&self) -> Arch {
        self.config.arch()
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size() as usize
    }

    /// Whisper's log-mel input features `[B, n_mels, 3000]` of 16 kHz clips; `None` for the
    /// other architectures.
    pub fn whisper_log_mel(&self, clips: &[&[f32]]) -> Option<Tensor> {
        let _guard = tch::no_grad_guard();
        match &self.inner {
            Inner::Whisper(m) => Some(m.log_mel(clips, self.device)),
            Inner::W2v(_) => None,
        }
    }

    /// Output frames of a clip of `samples` samples.
    pub fn frames_for(&self, samples: usize) -> usize {
        match &self.inner {
            Inner::W2v(m) => m.frames(samples as i64).max(0) as usize,
            Inner::Whisper(m) => m.frames_for(samples) as usize,
        }
    }

    /// Whether a clip's hidden states are the same alone and zero-padded in a batch (masked):
    /// not for a group-norm front end, which normalises over the padding too. Whisper pads
    /// every clip to 30 s anyway.
    pub fn pads_invariantly(&self) -> bool {
        match &self.config {
            ModelConfig::W2v(_, c) => c.feat_extract_norm == "layer",
            ModelConfig::Whisper(_) => true,
        }
    }

    /// The shortest clip the encoder accepts, in samples.
    pub fn min_samples(&self) -> usize {
        match &self.inner {
            Inner::W2v(m) => m.min_samples() as usize,
            Inner::Whisper(_) => 1,
        }
    }

    /// The longest clip one forward pass takes (Whisper's window), in samples.
    pub fn max_samples(&self) -> Option<usize> {
        match &self.inner {
            Inner::W2v(_) => None,
            Inner::Whisper(_) => Some(self.preprocessor.chunk_length as usize * 16000),
        }
    }

    /// Hidden states of 16 kHz mono clips, zero-padded into one batch (with an attention mask
    /// where the architecture uses one).
    pub fn forward(
        &self,
        clips: &[&[f32]],
        whisper_input: WhisperInput,
    ) -> Result<Hidden, EncoderError> {
        if clips.is_empty() {
            return Err(EncoderError::Input("no clips".into()));
        }
        let _guard = tch::no_grad_guard();
        match &self.inner {
            Inner::W2v(m) => {
                if let Some(c) = clips.iter().find(|c| (c.len() as i64) < m.min_samples()) {
                    return Err(EncoderError::Input(format!(
                        "a clip of {} samples is shorter than the encoder's receptive field ({} samples)",
                        c.len(),
                        m.min_samples()
                    )));
                }
                let lengths: Vec<i64> = clips.iter().map(|c| c.len() as i64).collect();
                let n = *lengths.iter().max().expect("clips");
                let mut flat = vec![0f32; clips.len() * n as usize];
                for (i, c) in clips.iter().enumerate() {
                    let row = &mut flat[i * n as usize..i * n as usize + c.len()];
                    if self.preprocessor.do_normalize {
                        normalize_into(c, row);
                    } else {
                        row.copy_from_slice(c);
                    }
                }
                let x = Tensor::from_slice(&flat)
                    .view([clips.len() as i64, n])
                    .to_device(self.device);
                let padded = lengths.iter().any(|&l| l < n);
                Ok(m.forward(&x, padded.then_some(lengths.as_slice())))
            }
            Inner::Whisper(m) => m.forward(clips, whisper_input, self.device),
        }
    }
}

/// `Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm` of one clip.
fn normalize_into(x: &[f32], out: &mut [f32]) {
    let n = x.len().max(1) as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let s = (var + 1e-7).sqrt();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = ((v as f64 - mean) / s) as f32;
    }
}

/// What `emolab doctor` shows of a model folder, read from its config and safetensors headers.
#[derive(Debug, Clone)]
pub struct Summary {
    pub arch: Arch,
    pub layers: i64,
    pub hidden_size: i64,
    pub parameters: u64,
    pub dtypes: Vec<String>,
}

impl Summary {
    pub fn of(dir: &Path) -> Result<Summary, EncoderError> {
        let config = ModelConfig::load(dir)?;
        let (parameters, dtypes) = weights::header_summary(dir, config.arch())?;
        Ok(Summary {
            arch: config.arch(),
            layers: config.layers(),
            hidden_size: config.hidden_size(),
            parameters,
            dtypes: dtypes.into_keys().collect(),
        })
    }
}
