//! Encoder embeddings as features: a pipeline with `encoder: {path, layers, pooling}` runs a
//! pretrained speech encoder ([`crate::encoders`]) over every clip (and augmented variant) and
//! caches, per clip, the chosen layers' hidden states pooled over time (`mean`, or `mean_std`:
//! mean and standard deviation) or, with `pooling: none`, their frame sequences.
//!
//! Layout in the cache: one "channel" per chosen layer, so a clip is `layers × width` values
//! per frame (width = hidden size, twice that for `mean_std`) and one frame when pooled; the
//! `probe` model family learns a softmax-weighted sum over those channels (SUPERB, Yang et al.,
//! Interspeech 2021), and any clip-vector model (SVM, MLP, ...) reads the flattened vector.
//!
//! Clips longer than `chunk_s` are cut into consecutive pieces (bounded memory; Whisper's
//! window at most), each encoded alone; pooling runs over the frames of every piece. The cache
//! is keyed by the checkpoint's content hash ([`crate::encoders::weights::content_hash`]), not
//! by its folder name, so moving a model keeps its embeddings and replacing it recomputes them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use serde::{Deserialize, Serialize};

use crate::encoders::{Arch, Encoder, EncoderError, ModelConfig, WhisperInput};

/// Version of the embedding layout and pooling, part of the cache key.
pub const EMBEDDINGS_VERSION: u32 = 2;

/// Which hidden states to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(untagged)]
pub enum Layers {
    /// `all`: every hidden state (0 = the input of the first transformer layer).
    #[default]
    #[serde(with = "all")]
    All,
    List(Vec<usize>),
}

mod all {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("all")
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let s = String::deserialize(d)?;
        if s == "all" {
            Ok(())
        } else {
            Err(serde::de::Error::custom(format!(
                "layers: `all` or a list of indices, got `{s}`"
            )))
        }
    }
}

/// Pooling over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    #[default]
    Mean,
    MeanStd,
    /// Frame sequences (50 per second): large; choose one or a few layers.
    None,
}

impl Pooling {
    /// Values per layer and frame for hidden states of width `hidden`.
    pub fn width(self, hidden: usize) -> usize {
        if self == Pooling::MeanStd {
            2 * hidden
        } else {
            hidden
        }
    }
}

fn d_chunk() -> f32 {
    20.0
}

/// `encoder:` block of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// A Hugging Face model folder (`config.json` + `model.safetensors`).
    pub path: PathBuf,
    /// The architecture expected there (checked against `config.json`); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Arch>,
    #[serde(default)]
    pub layers: Layers,
    #[serde(default)]
    pub pooling: Pooling,
    /// Longest piece of a clip one forward pass sees, seconds.
    #[serde(default = "d_chunk")]
    pub chunk_s: f32,
    /// Whisper only: `cropped` (the clip's own frames, the default), `padded` (30 s, as
    /// trained) or a window in seconds (e.g. `5`).
    #[serde(default)]
    pub whisper_input: WhisperInput,
    /// Pieces per forward pass (default 8 on a GPU; on the CPU 16 for cropped or windowed
    /// Whisper, whose masked batches of length-sorted clips cost little padding, else 1). Models with a group-norm
    /// front end always take one: their features would depend on the batch's padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
}

/// What a model folder is, read once per process.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub arch: Arch,
    pub hidden: usize,
    /// Hidden states (layers + 1).
    pub states: usize,
    pub hash: String,
}

static RESOLVED: LazyLock<Mutex<HashMap<PathBuf, Resolved>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl EncoderSpec {
    /// The folder's architecture, sizes and content hash (memoised per process).
    pub fn resolve(&self) -> Result<Resolved, EncoderError> {
        let key = self
            .path
            .canonicalize()
            .unwrap_or_else(|_| self.path.clone());
        if let Some(r) = RESOLVED.lock().expect("not poisoned").get(&key) {
            return Ok(r.clone());
        }
        if !self.path.is_dir() {
            return Err(EncoderError::missing_folder(&self.path));
        }
        let cfg = ModelConfig::load(&self.path)?;
        let r = Resolved {
            arch: cfg.arch(),
            hidden: cfg.hidden_size() as usize,
            states: cfg.layers() as usize + 1,
            hash: crate::encoders::weights::content_hash(&self.path)?,
        };
        RESOLVED
            .lock()
            .expect("not poisoned")
            .insert(key, r.clone());
        Ok(r)
    }

    /// Values that parse but cannot work: `(key, message)`.
    pub fn check(&self, sample_rate: u32) -> Result<(), (&'static str, String)> {
        if sample_rate != 16000 {
            return Err((
                "sample_rate",
                format!("encoders run at 16 kHz: set sample_rate: 16000 (got {sample_rate})"),
            ));
        }
        if !(self.chunk_s >= 1.0 && self.chunk_s.is_finite()) {
            return Err(("chunk_s", format!("must be >= 1 s, got {}", self.chunk_s)));
        }
        if !self.path.is_dir() {
            // Checked for real where the encoder is needed (featurize, predict).
            return Ok(());
        }
        let r = self.resolve().map_err(|e| ("path", e.to_string()))?;
        if let Some(k) = self.kind {
            if k != r.arch {
                return Err((
                    "kind",
                    format!(
                        "{} holds a {} model, not {}",
                        self.path.display(),
                        r.arch.name(),
                        k.name()
                    ),
                ));
            }
        }
        if let Layers::List(l) = &self.layers {
            if l.is_empty() {
                return Err(("layers", "give at least one layer, or `all`".into()));
            }
            if let Some(i) = l.iter().find(|&&i| i >= r.states) {
                return Err((
                    "layers",
                    format!(
                        "layer {i} does not exist: the model has hidden states 0..={}",
                        r.states - 1
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The chosen hidden-state indices (needs the folder).
    pub fn layer_indices(&self) -> Option<Vec<usize>> {
        match &self.layers {
            Layers::List(l) => Some(l.clone()),
            Layers::All => self.resolve().ok().map(|r| (0..r.states).collect()),
        }
    }

    /// Values per frame and layer.
    pub fn width(&self) -> Option<usize> {
        Some(self.pooling.width(self.resolve().ok()?.hidden))
    }

    /// Names of a pooled clip vector: `l{layer}_mean{j}` (and `l{layer}_std{j}`).
    pub fn names(&self) -> Option<Vec<String>> {
        let layers = self.layer_indices()?;
        let h = self.resolve().ok()?.hidden;
        let stats: &[&str] = if self.pooling == Pooling::MeanStd {
            &["mean", "std"]
        } else {
            &["mean"]
        };
        Some(
            layers
                .iter()
                .flat_map(|l| {
                    stats
                        .iter()
                        .flat_map(move |s| (0..h).map(move |j| format!("l{l}_{s}{j}")))
                })
                .collect(),
        )
    }

    /// Which encoder this is, for `meta.json`, logs and reports (needs the folder).
    pub fn info(&self) -> Option<crate::results::EncoderInfo> {
        let r = self.resolve().ok()?;
        let summary = crate::encoders::Summary::of(&self.path).ok()?;
        Some(crate::results::EncoderInfo {
            arch: r.arch.name().into(),
            path: self.path.display().to_string(),
            hash: r.hash.clone(),
            layers: r.states - 1,
            hidden: r.hidden,
            parameters: summary.parameters,
            states: self.layer_indices()?,
            pooling: match self.pooling {
                Pooling::Mean => "mean",
                Pooling::MeanStd => "mean_std",
                Pooling::None => "frames",
            }
            .into(),
            whisper_input: (r.arch == Arch::Whisper).then(|| self.whisper_input.name()),
        })
    }

    /// What the cache key holds in place of the folder: the content hash and the version.
    pub fn key_part(&self) -> String {
        let hash = self
            .resolve()
            .map(|r| r.hash)
            .unwrap_or_else(|_| format!("unresolved:{}", self.path.display()));
        format!("|encoder-{hash}|embeddings-v{EMBEDDINGS_VERSION}")
    }
}

/// An encoder ready to embed clips under a spec.
pub struct Embedder {
    encoder: Mutex<Encoder>,
    layers: Vec<usize>,
    pooling: Pooling,
    chunk: usize,
    min: usize,
    whisper_input: WhisperInput,
    hidden: usize,
    /// Pieces per forward pass.
    batch: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedder(layers {:?}, {:?})", self.layers, self.pooling)
    }
}

impl Embedder {
    pub fn new(spec: &EncoderSpec, device: tch::Device) -> Result<Embedder, EncoderError> {
        spec.resolve()?;
        let started = std::time::Instant::now();
        let encoder = Encoder::load(&spec.path, device)?;
        if let Some(info) = spec.info() {
            eprintln!(
                "encoder: {} loaded on {device:?} in {:.2} s",
                info.line(),
                started.elapsed().as_secs_f64()
            );
        }
        let layers = spec.layer_indices().expect("resolved");
        let mut chunk = (spec.chunk_s * 16000.0) as usize;
        if let Some(m) = encoder.max_samples() {
            chunk = chunk.min(m);
        }
        // Group-norm front ends (wav2vec2 / HuBERT / WavLM base) normalise over the padded
        // batch, so their features would depend on what a clip is batched with: one at a time.
        let batch = if encoder.pads_invariantly() {
            spec.batch.unwrap_or(if device.is_cuda() {
                8
            } else if encoder.arch() == crate::encoders::Arch::Whisper
                && spec.whisper_input != WhisperInput::Padded
            {
                // 535 EmoDB clips, cropped, 2 cores: 12.5 s one at a time, 6.4 s in 16s.
                16
            } else {
                1
            })
        } else {
            1
        };
        Ok(Embedder {
            batch,
            min: encoder.min_samples(),
            hidden: encoder.hidden_size(),
            encoder: Mutex::new(encoder),
            layers,
            pooling: spec.pooling,
            chunk,
            whisper_input: spec.whisper_input,
        })
    }

    /// Values per frame: layers × width.
    pub fn n_features(&self) -> usize {
        self.layers.len() * self.pooling.width(self.hidden)
    }

    /// A clip's features: `(frames, frame-major values)`.
    pub fn embed(&self, y: &[f32]) -> Result<(usize, Vec<f32>), EncoderError> {
        self.embed_many(&[y]).pop().expect("one clip")
    }

    /// Clips cut into equal pieces of at most `chunk` samples (each at least half a chunk, so
    /// never shorter than the receptive field; a clip shorter than that is zero-padded to it).
    fn pieces<'y>(&self, y: &'y [f32], padded: &'y mut Vec<f32>) -> Vec<&'y [f32]> {
        let y = if y.len() < self.min {
            *padded = y.to_vec();
            padded.resize(self.min, 0.0);
            &padded[..]
        } else {
            y
        };
        let n = y.len().div_ceil(self.chunk).max(1);
        let step = y.len().div_ceil(n);
        (0..n)
            .map(|i| &y[i * step..((i + 1) * step).min(y.len())])
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// Features of several clips, `batch` pieces per forward pass (pieces of similar length
    /// together; padded frames are masked and left out of pooling).
    pub fn embed_many(&self, clips: &[&[f32]]) -> Vec<Result<(usize, Vec<f32>), EncoderError>> {
        let mut pads: Vec<Vec<f32>> = vec![Vec::new(); clips.len()];
        // (clip, piece of the clip, samples), run shortest first to batch similar lengths.
        let mut pieces: Vec<(usize, usize, &[f32])> = Vec::new();
        for (i, (y, pad)) in clips.iter().zip(pads.iter_mut()).enumerate() {
            for (k, p) in self.pieces(y, pad).into_iter().enumerate() {
                pieces.push((i, k, p));
            }
        }
        pieces.sort_by_key(|(i, k, p)| (p.len(), *i, *k));
        let mut pools: Vec<Pool> = (0..clips.len())
            .map(|_| Pool::new(self.layers.len(), self.hidden))
            .collect();
        let mut failed: Vec<Option<EncoderError>> = (0..clips.len()).map(|_| None).collect();
        let enc = self.encoder.lock().expect("not poisoned");
        for group in pieces.chunks(self.batch.max(1)) {
            let waves: Vec<&[f32]> = group.iter().map(|(_, _, p)| *p).collect();
            match enc.forward(&waves, self.whisper_input) {
                Ok(out) => {
                    for (b, (owner, piece, _)) in group.iter().enumerate() {
                        pools[*owner].add(&out, b, *piece, &self.layers, self.pooling);
                    }
                }
                Err(e) => {
                    for (owner, _, _) in group {
                        failed[*owner] = Some(EncoderError::Input(e.to_string()));
                    }
                }
            }
        }
        pools
            .into_iter()
            .zip(failed)
            .map(|(pool, f)| match f {
                Some(e) => Err(e),
                None => Ok(pool.finish(self.pooling)),
            })
            .collect()
    }
}

/// Running sums (pooled modes) or frames (`pooling: none`) of one clip's pieces.
struct Pool {
    sum: Vec<f64>,
    sq: Vec<f64>,
    frames: usize,
    /// `pooling: none`: each piece's frames with its index in the clip (pieces arrive in
    /// length order, not time order).
    seq: Vec<(usize, Vec<f32>)>,
    layers: usize,
    hidden: usize,
}

impl Pool {
    fn new(layers: usize, hidden: usize) -> Pool {
        Pool {
            sum: vec![0.0; layers * hidden],
            sq: vec![0.0; layers * hidden],
            frames: 0,
            seq: Vec::new(),
            layers,
            hidden,
        }
    }

    /// Row `b` of a batch's hidden states: piece `piece` of the clip.
    fn add(
        &mut self,
        out: &crate::encoders::Hidden,
        b: usize,
        piece: usize,
        layers: &[usize],
        pooling: Pooling,
    ) {
        let h = self.hidden;
        let n = out.lengths[b];
        let picked: Vec<Vec<f32>> = layers
            .iter()
            .map(|&i| {
                Vec::<f32>::try_from(
                    out.states[i]
                        .get(b as i64)
                        .narrow(0, 0, n)
                        .to_device(tch::Device::Cpu)
                        .to_kind(tch::Kind::Float)
                        .contiguous()
                        .flatten(0, -1),
                )
                .expect("f32 tensor")
            })
            .collect();
        let n = n as usize;
        if pooling == Pooling::None {
            let mut frames = Vec::with_capacity(n * picked.len() * h);
            for t in 0..n {
                for p in &picked {
                    frames.extend_from_slice(&p[t * h..(t + 1) * h]);
                }
            }
            self.seq.push((piece, frames));
        } else {
            for (li, p) in picked.iter().enumerate() {
                for t in 0..n {
                    for j in 0..h {
                        let v = p[t * h + j] as f64;
                        self.sum[li * h + j] += v;
                        self.sq[li * h + j] += v * v;
                    }
                }
            }
        }
        self.frames += n;
    }

    fn finish(mut self, pooling: Pooling) -> (usize, Vec<f32>) {
        if pooling == Pooling::None {
            self.seq.sort_by_key(|(k, _)| *k);
            return (
                self.frames,
                self.seq.into_iter().flat_map(|(_, f)| f).collect(),
            );
        }
        let h = self.hidden;
        let n = self.frames.max(1) as f64;
        let mut out = Vec::new();
        for li in 0..self.layers {
            let mean: Vec<f64> = (0..h).map(|j| self.sum[li * h + j] / n).collect();
            out.extend(mean.iter().map(|&m| m as f32));
            if pooling == Pooling::MeanStd {
                out.extend((0..h).map(|j| {
                    ((self.sq[li * h + j] / n - mean[j] * mean[j]).max(0.0)).sqrt() as f32
                }));
            }
        }
        (1, out)
    }
}
