//! Hugging Face `config.json` / `preprocessor_config.json` of the supported encoders, parsed
//! once into typed structs (defaults are `transformers`' own, so a config that leaves a field
//! out means what it means there).

use std::path::Path;

use serde::Deserialize;

use super::EncoderError;

/// The architectures emolab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Wav2vec2,
    Hubert,
    Wavlm,
    Whisper,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Wav2vec2 => "wav2vec2",
            Arch::Hubert => "hubert",
            Arch::Wavlm => "wavlm",
            Arch::Whisper => "whisper",
        }
    }

    /// From `config.json`'s `model_type`.
    pub fn from_model_type(t: &str) -> Option<Arch> {
        Some(match t {
            "wav2vec2" => Arch::Wav2vec2,
            "hubert" => Arch::Hubert,
            "wavlm" => Arch::Wavlm,
            "whisper" => Arch::Whisper,
            _ => return None,
        })
    }
}

fn d_768() -> i64 {
    768
}
fn d_12() -> i64 {
    12
}
fn d_3072() -> i64 {
    3072
}
fn d_gelu() -> String {
    "gelu".into()
}
fn d_eps() -> f64 {
    1e-5
}
fn d_group() -> String {
    "group".into()
}
fn d_conv_dim() -> Vec<i64> {
    vec![512; 7]
}
fn d_conv_kernel() -> Vec<i64> {
    vec![10, 3, 3, 3, 3, 2, 2]
}
fn d_conv_stride() -> Vec<i64> {
    vec![5, 2, 2, 2, 2, 2, 2]
}
fn d_128() -> i64 {
    128
}
fn d_16() -> i64 {
    16
}
fn d_true() -> bool {
    true
}
fn d_320() -> i64 {
    320
}
fn d_800() -> i64 {
    800
}

/// wav2vec 2.0 / HuBERT / WavLM (`Wav2Vec2Config`, `HubertConfig`, `WavLMConfig`).
#[derive(Debug, Clone, Deserialize)]
pub struct W2vConfig {
    #[serde(default = "d_768")]
    pub hidden_size: i64,
    #[serde(default = "d_12")]
    pub num_hidden_layers: i64,
    #[serde(default = "d_12")]
    pub num_attention_heads: i64,
    #[serde(default = "d_3072")]
    pub intermediate_size: i64,
    #[serde(default = "d_gelu")]
    pub hidden_act: String,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_group")]
    pub feat_extract_norm: String,
    #[serde(default = "d_gelu")]
    pub feat_extract_activation: String,
    #[serde(default = "d_conv_dim")]
    pub conv_dim: Vec<i64>,
    #[serde(default = "d_conv_kernel")]
    pub conv_kernel: Vec<i64>,
    #[serde(default = "d_conv_stride")]
    pub conv_stride: Vec<i64>,
    #[serde(default)]
    pub conv_bias: bool,
    #[serde(default = "d_128")]
    pub num_conv_pos_embeddings: i64,
    #[serde(default = "d_16")]
    pub num_conv_pos_embedding_groups: i64,
    #[serde(default)]
    pub do_stable_layer_norm: bool,
    /// HuBERT only: layer norm before the feature projection.
    #[serde(default = "d_true")]
    pub feat_proj_layer_norm: bool,
    /// HuBERT only: batch norm instead of weight norm in the positional convolution.
    #[serde(default)]
    pub conv_pos_batch_norm: bool,
    /// WavLM only.
    #[serde(default = "d_320")]
    pub num_buckets: i64,
    #[serde(default = "d_800")]
    pub max_bucket_distance: i64,
    #[serde(default)]
    pub add_adapter: bool,
    #[serde(default)]
    pub adapter_attn_dim: Option<i64>,
}

fn d_80() -> i64 {
    80
}
fn d_1500() -> i64 {
    1500
}
fn d_4() -> i64 {
    4
}
fn d_6() -> i64 {
    6
}
fn d_1536() -> i64 {
    1536
}
fn d_384() -> i64 {
    384
}

/// The encoder half of `WhisperConfig`.
#[derive(Debug, Clone, Deserialize)]
pub struct WhisperConfig {
    #[serde(default = "d_384")]
    pub d_model: i64,
    #[serde(default = "d_4")]
    pub encoder_layers: i64,
    #[serde(default = "d_6")]
    pub encoder_attention_heads: i64,
    #[serde(default = "d_1536")]
    pub encoder_ffn_dim: i64,
    #[serde(default = "d_80")]
    pub num_mel_bins: i64,
    #[serde(default = "d_1500")]
    pub max_source_positions: i64,
    #[serde(default = "d_gelu")]
    pub activation_function: String,
    #[serde(default)]
    pub scale_embedding: bool,
}

/// A parsed `config.json`.
#[derive(Debug, Clone)]
pub enum ModelConfig {
    W2v(Arch, W2vConfig),
    Whisper(WhisperConfig),
}

impl ModelConfig {
    pub fn arch(&self) -> Arch {
        match self {
            ModelConfig::W2v(a, _) => *a,
            ModelConfig::Whisper(_) => Arch::Whisper,
        }
    }

    /// Width of every hidden state.
    pub fn hidden_size(&self) -> i64 {
        match self {
            ModelConfig::W2v(_, c) => c.hidden_size,
            ModelConfig::Whisper(c) => c.d_model,
        }
    }

    /// Transformer layers; the encoder gives `layers() + 1` hidden states (the input of the
    /// first layer, then each layer's output).
    pub fn layers(&self) -> i64 {
        match self {
            ModelConfig::W2v(_, c) => c.num_hidden_layers,
            ModelConfig::Whisper(c) => c.encoder_layers,
        }
    }

    /// Read `<dir>/config.json`.
    pub fn load(dir: &Path) -> Result<ModelConfig, EncoderError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            EncoderError::folder(
                dir,
                format!(
                    "cannot read config.json ({e}); an encoder folder is a Hugging Face model \
                     folder as `huggingface-cli download <model> --local-dir <dir>` writes it \
                     (see docs/encoders.md)"
                ),
            )
        })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| EncoderError::config(dir, format!("not JSON: {e}")))?;
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| EncoderError::config(dir, "no `model_type`"))?;
        let arch = Arch::from_model_type(model_type).ok_or_else(|| {
            EncoderError::config(
                dir,
                format!(
                    "model_type `{model_type}` is not supported (supported: wav2vec2, hubert, \
                     wavlm, whisper)"
                ),
            )
        })?;
        let bad = |e: serde_json::Error| EncoderError::config(dir, e.to_string());
        let cfg = match arch {
            Arch::Whisper => ModelConfig::Whisper(serde_json::from_value(value).map_err(bad)?),
            a => ModelConfig::W2v(a, serde_json::from_value(value).map_err(bad)?),
        };
        cfg.check(dir)?;
        Ok(cfg)
    }

    fn check(&self, dir: &Path) -> Result<(), EncoderError> {
        let bad =
            |field: &str, msg: String| Err(EncoderError::config(dir, format!("{field}: {msg}")));
        match self {
            ModelConfig::W2v(_, c) => {
                if c.conv_dim.len() != c.conv_kernel.len()
                    || c.conv_dim.len() != c.conv_stride.len()
                {
                    return bad(
                        "conv_dim",
                        "conv_dim, conv_kernel and conv_stride must have the same length".into(),
                    );
                }
                if c.hidden_size % c.num_attention_heads != 0 {
                    return bad(
                        "num_attention_heads",
                        format!(
                            "hidden_size {} is not a multiple of {}",
                            c.hidden_size, c.num_attention_heads
                        ),
                    );
                }
                if !matches!(c.feat_extract_norm.as_str(), "group" | "layer") {
                    return bad(
                        "feat_extract_norm",
                        format!("`{}` (expected group or layer)", c.feat_extract_norm),
                    );
                }
                if c.add_adapter || c.adapter_attn_dim.is_some() {
                    return bad(
                        "add_adapter",
                        "adapter layers are not supported; use the base model".into(),
                    );
                }
                for a in [&c.hidden_act, &c.feat_extract_activation] {
                    super::Activation::parse(a).ok_or_else(|| {
                        EncoderError::config(dir, format!("activation `{a}` is not supported"))
                    })?;
                }
            }
            ModelConfig::Whisper(c) => {
                if c.d_model % c.encoder_attention_heads != 0 {
                    return bad(
                        "encoder_attention_heads",
                        format!(
                            "d_model {} is not a multiple of {}",
                            c.d_model, c.encoder_attention_heads
                        ),
                    );
                }
                super::Activation::parse(&c.activation_function).ok_or_else(|| {
                    EncoderError::config(
                        dir,
                        format!("activation `{}` is not supported", c.activation_function),
                    )
                })?;
            }
        }
        Ok(())
    }
}

fn d_400() -> i64 {
    400
}
fn d_160() -> i64 {
    160
}
fn d_30() -> i64 {
    30
}
fn d_16k() -> i64 {
    16000
}

/// `preprocessor_config.json` (all optional).
#[derive(Debug, Clone, Deserialize)]
pub struct Preprocessor {
    /// wav2vec 2.0 family: zero-mean, unit-variance input per clip.
    #[serde(default = "d_true")]
    pub do_normalize: bool,
    #[serde(default = "d_16k")]
    pub sampling_rate: i64,
    /// Whisper: mel bins (its config's `num_mel_bins` rules).
    #[serde(default)]
    pub feature_size: Option<i64>,
    #[serde(default = "d_400")]
    pub n_fft: i64,
    #[serde(default = "d_160")]
    pub hop_length: i64,
    #[serde(default = "d_30")]
    pub chunk_length: i64,
}

impl Default for Preprocessor {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all defaults")
    }
}

impl Preprocessor {
    pub fn load(dir: &Path) -> Result<Preprocessor, EncoderError> {
        let path = dir.join("preprocessor_config.json");
        if !path.exists() {
            return Ok(Preprocessor::default());
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| EncoderError::folder(dir, format!("preprocessor_config.json: {e}")))?;
        let p: Preprocessor = serde_json::from_str(&text)
            .map_err(|e| EncoderError::folder(dir, format!("preprocessor_config.json: {e}")))?;
        if p.sampling_rate != 16000 {
            return Err(EncoderError::folder(
                dir,
                format!(
                    "preprocessor_config.json: sampling_rate {} (emolab runs encoders at 16 kHz)",
                    p.sampling_rate
                ),
            ));
        }
        Ok(p)
    }
}
