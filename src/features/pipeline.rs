//! Feature pipelines (`pipelines/*.yaml`): parsed once into a validated [`Pipeline`].
//!
//! A pipeline fixes everything that determines a clip's features: sample rate, STFT, mel
//! filterbank, dB scaling, optional MFCC, the frame policy, and the augmented variants to make.
//! Its [`Pipeline::feature_key`] (a hash of the fields that shape the output, not of names or
//! comments) names the cache folder; each augmentation's own parameters extend that key per
//! variant, so changing one augmentation recomputes only its variants.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use super::embeddings::EncoderSpec;
pub use super::functionals::FunctionalsSpec;
use crate::config::{load_yaml, ConfigError};
use crate::dsp::MelParams;

fn d_n_fft() -> usize {
    2048
}
fn d_hop() -> usize {
    512
}
fn d_true() -> bool {
    true
}
fn d_n_mels() -> usize {
    128
}
fn d_power() -> f32 {
    2.0
}
fn d_one() -> usize {
    1
}

/// Window function (librosa's default periodic Hann is the only one offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    #[default]
    Hann,
}

/// Mel filter normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    #[default]
    Slaney,
    None,
}

/// dB reference: the clip's maximum (librosa `ref=np.max`) or 1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DbRef {
    #[default]
    Max,
    One,
}

/// `power_to_db` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSpec {
    #[serde(rename = "ref", default)]
    pub reference: DbRef,
    #[serde(default = "DbSpec::d_amin")]
    pub amin: f32,
    /// Clip below `max - top_db`; `null` keeps everything.
    #[serde(default = "DbSpec::d_top_db")]
    pub top_db: Option<f32>,
}

impl DbSpec {
    fn d_amin() -> f32 {
        1e-10
    }
    fn d_top_db() -> Option<f32> {
        Some(80.0)
    }
}

impl Default for DbSpec {
    fn default() -> Self {
        DbSpec {
            reference: DbRef::Max,
            amin: 1e-10,
            top_db: Some(80.0),
        }
    }
}

/// MFCC settings: the first `n` DCT-II (ortho) coefficients of the dB mel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfccSpec {
    pub n: usize,
}

/// Δ (and ΔΔ) of the features along time, appended to each frame as extra channels, as
/// `librosa.feature.delta(x, width, order, mode="interp")` computes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaSpec {
    /// 1: Δ; 2: Δ and ΔΔ (three channels in all).
    #[serde(default = "d_two")]
    pub order: usize,
    /// Odd window width in frames (librosa's default 9).
    #[serde(default = "d_nine")]
    pub width: usize,
}

fn d_two() -> usize {
    2
}

fn d_nine() -> usize {
    9
}

/// How to bring every clip to a common number of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FrameMode {
    /// Pad shorter clips (at the end) to `size`; keep longer ones.
    Pad,
    /// Crop longer clips to their first `size` frames; keep shorter ones.
    Crop,
    /// Pad or crop to exactly `size` (the seed's policy).
    #[default]
    PadCrop,
    /// Linear interpolation along time to exactly `size`.
    Resize,
    /// Keep every clip's own length.
    None,
    /// The mean over all frames: one frame per clip (the seed's MFCC-mean vectors).
    Mean,
}

/// Frame policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramesSpec {
    #[serde(default)]
    pub mode: FrameMode,
    #[serde(default)]
    pub size: Option<usize>,
    /// Value written into padded frames. The seed padded with 0 dB (the loudest value), which
    /// leaks clip length; the dB floor (-top_db) is silence.
    #[serde(default)]
    pub pad_value: f32,
}

impl Default for FramesSpec {
    fn default() -> Self {
        FramesSpec {
            mode: FrameMode::None,
            size: None,
            pad_value: 0.0,
        }
    }
}

/// One augmentation and how many copies of each clip it makes. Parameters given as
/// `[low, high]` are drawn uniformly per copy, deterministically from (clip, variant, seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Augment {
    /// Additive white noise at an SNR (dB) relative to the clip's RMS.
    Noise {
        snr_db: [f32; 2],
        #[serde(default = "d_one")]
        copies: usize,
    },
    /// Gain in dB.
    Gain {
        db: [f32; 2],
        #[serde(default = "d_one")]
        copies: usize,
    },
    /// Circular-free time shift by up to `max_s` seconds either way (zero fill).
    Shift {
        max_s: f32,
        #[serde(default = "d_one")]
        copies: usize,
    },
    /// librosa `time_stretch` (phase vocoder) by a rate in the range.
    TimeStretch {
        rate: [f32; 2],
        #[serde(default = "d_one")]
        copies: usize,
    },
    /// librosa `pitch_shift` by semitones in the range.
    PitchShift {
        steps: [f32; 2],
        #[serde(default = "d_one")]
        copies: usize,
    },
    /// Speed perturbation (Ko et al., Interspeech 2015): the clip resampled so that it plays
    /// `factor` times faster (tempo and pitch together), one copy per factor, e.g. `[0.9, 1.1]`.
    Speed { factors: Vec<f32> },
}

impl Augment {
    pub fn kind(&self) -> &'static str {
        match self {
            Augment::Noise { .. } => "noise",
            Augment::Gain { .. } => "gain",
            Augment::Shift { .. } => "shift",
            Augment::TimeStretch { .. } => "time_stretch",
            Augment::PitchShift { .. } => "pitch_shift",
            Augment::Speed { .. } => "speed",
        }
    }

    pub fn copies(&self) -> usize {
        match self {
            Augment::Noise { copies, .. }
            | Augment::Gain { copies, .. }
            | Augment::Shift { copies, .. }
            | Augment::TimeStretch { copies, .. }
            | Augment::PitchShift { copies, .. } => *copies,
            Augment::Speed { factors } => factors.len(),
        }
    }

    fn range(&self) -> Option<(&'static str, [f32; 2])> {
        match self {
            Augment::Noise { snr_db, .. } => Some(("snr_db", *snr_db)),
            Augment::Gain { db, .. } => Some(("db", *db)),
            Augment::TimeStretch { rate, .. } => Some(("rate", *rate)),
            Augment::PitchShift { steps, .. } => Some(("steps", *steps)),
            Augment::Shift { .. } | Augment::Speed { .. } => None,
        }
    }
}

/// A feature pipeline as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Defaults to the file name.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub sample_rate: u32,
    #[serde(default = "d_n_fft")]
    pub n_fft: usize,
    #[serde(default = "d_hop")]
    pub hop: usize,
    /// Defaults to n_fft.
    #[serde(default)]
    pub win_length: Option<usize>,
    #[serde(default)]
    pub window: Window,
    #[serde(default = "d_true")]
    pub center: bool,
    #[serde(default = "d_n_mels")]
    pub n_mels: usize,
    #[serde(default)]
    pub fmin: f32,
    /// Defaults to sample_rate / 2.
    #[serde(default)]
    pub fmax: Option<f32>,
    #[serde(default)]
    pub htk: bool,
    #[serde(default)]
    pub norm: Norm,
    #[serde(default = "d_power")]
    pub power: f32,
    /// dB scaling; `null` keeps the power (or magnitude) mel.
    #[serde(default = "Pipeline::d_db")]
    pub db: Option<DbSpec>,
    #[serde(default)]
    pub mfcc: Option<MfccSpec>,
    /// Δ / ΔΔ channels (left out of a pipeline without them, so its cache key stays the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deltas: Option<DeltaSpec>,
    /// One vector of clip-level acoustic functionals per clip instead of a spectrogram (see
    /// [`crate::features::functionals`]); the mel settings are then unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functionals: Option<FunctionalsSpec>,
    /// Hidden states of a pretrained speech encoder instead of a spectrogram (see
    /// [`crate::features::embeddings`]); the mel settings are then unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderSpec>,
    #[serde(default)]
    pub frames: FramesSpec,
    #[serde(default)]
    pub augment: Vec<Augment>,
    /// Seed of the augmentation draws.
    #[serde(default)]
    pub seed: u64,
}

impl Pipeline {
    fn d_db() -> Option<DbSpec> {
        Some(DbSpec::default())
    }

    /// Load and validate a pipeline file; `${VAR}` / `${VAR:-default}` read the environment, as
    /// in experiment files.
    pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
        let mut tree: serde_yaml::Value = load_yaml(path)?;
        crate::config::expand_env(&mut tree, path)?;
        let mut p: Pipeline = crate::config::from_value(path, tree)?;
        if p.name.is_empty() {
            p.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into());
        }
        p.validate(path)?;
        Ok(p)
    }

    /// Check values that parse but cannot work.
    pub fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::invalid(file, key, msg));
        if let Err(e) = self.mel_params().validate() {
            return bad("mel", e.to_string());
        }
        if let Some(db) = &self.db {
            if !(db.amin > 0.0) {
                return bad("db.amin", format!("must be > 0, got {}", db.amin));
            }
            if let Some(t) = db.top_db {
                if !(t > 0.0) {
                    return bad("db.top_db", format!("must be > 0 or null, got {t}"));
                }
            }
        }
        if let Some(m) = &self.mfcc {
            if self.db.is_none() {
                return bad("mfcc", "MFCC is computed from the dB mel: set `db`".into());
            }
            if m.n == 0 || m.n > self.n_mels {
                return bad(
                    "mfcc.n",
                    format!("must be in 1..={} (n_mels), got {}", self.n_mels, m.n),
                );
            }
        }
        if let Some(d) = &self.deltas {
            if !(1..=2).contains(&d.order) {
                return bad("deltas.order", format!("must be 1 or 2, got {}", d.order));
            }
            if d.width < 3 || d.width % 2 == 0 {
                return bad(
                    "deltas.width",
                    format!("must be odd and >= 3, got {}", d.width),
                );
            }
        }
        if let Some(f) = &self.functionals {
            if let Err((key, msg)) = f.check(self.sample_rate) {
                return bad(&format!("functionals.{key}"), msg);
            }
            if self.mfcc.is_some() || self.deltas.is_some() {
                return bad(
                    "functionals",
                    "functionals compute their own descriptors: remove `mfcc` and `deltas`".into(),
                );
            }
            if self.frames.mode != FrameMode::None {
                return bad(
                    "frames",
                    "functionals give one vector per clip: leave `frames` out".into(),
                );
            }
        }
        if let Some(e) = &self.encoder {
            if let Err((key, msg)) = e.check(self.sample_rate) {
                let key = if key == "sample_rate" {
                    key.to_string()
                } else {
                    format!("encoder.{key}")
                };
                return bad(&key, msg);
            }
            if self.mfcc.is_some() || self.deltas.is_some() || self.functionals.is_some() {
                return bad(
                    "encoder",
                    "an encoder pipeline makes its own features: remove `mfcc`, `deltas` and `functionals`".into(),
                );
            }
            if e.pooling != super::embeddings::Pooling::None && self.frames.mode != FrameMode::None
            {
                return bad(
                    "frames",
                    "pooled embeddings are one vector per clip: leave `frames` out (or use `pooling: none`)".into(),
                );
            }
            if self.frames.mode == FrameMode::Mean {
                return bad(
                    "frames",
                    "use `pooling: mean` instead of `frames: {mode: mean}`".into(),
                );
            }
        }
        match (self.frames.mode, self.frames.size) {
            (FrameMode::None | FrameMode::Mean, _) => {}
            (_, None) => {
                return bad(
                    "frames.size",
                    format!("mode {:?} needs a size", self.frames.mode),
                )
            }
            (_, Some(0)) => return bad("frames.size", "must be > 0".into()),
            _ => {}
        }
        for (i, a) in self.augment.iter().enumerate() {
            let key = format!("augment[{i}]");
            if a.copies() == 0 {
                return bad(&format!("{key}.copies"), "must be >= 1".into());
            }
            if let Some((name, [lo, hi])) = a.range() {
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return bad(
                        &format!("{key}.{name}"),
                        format!("[{lo}, {hi}] is not a range low <= high"),
                    );
                }
                if name == "rate" && lo <= 0.0 {
                    return bad(&format!("{key}.rate"), "rates must be > 0".into());
                }
            }
            if let Augment::Speed { factors } = a {
                if let Some(f) = factors.iter().find(|f| !(**f >= 0.5 && **f <= 2.0)) {
                    return bad(
                        &format!("{key}.factors"),
                        format!("each factor must be in [0.5, 2], got {f}"),
                    );
                }
            }
            if let Augment::Shift { max_s, .. } = a {
                if !(*max_s >= 0.0) {
                    return bad(&format!("{key}.max_s"), "must be >= 0".into());
                }
            }
        }
        Ok(())
    }

    /// The DSP parameters of the mel stage.
    pub fn mel_params(&self) -> MelParams {
        MelParams {
            sample_rate: self.sample_rate,
            n_fft: self.n_fft,
            hop: self.hop,
            win_length: self.win_length.unwrap_or(self.n_fft),
            center: self.center,
            n_mels: self.n_mels,
            fmin: self.fmin,
            fmax: self.fmax,
            htk: self.htk,
            slaney_norm: self.norm == Norm::Slaney,
            power: self.power,
        }
    }

    /// Values per frame of one channel (mels, or MFCC coefficients).
    pub fn n_bins(&self) -> usize {
        if let Some(f) = &self.functionals {
            return f.len();
        }
        if let Some(e) = &self.encoder {
            // 0 until the model folder exists (a clear error comes from featurize then).
            return e.width().unwrap_or(0);
        }
        self.mfcc.as_ref().map_or(self.n_mels, |m| m.n)
    }

    /// Whether every clip is one vector (functionals, or the mean over frames).
    pub fn clip_vectors(&self) -> bool {
        self.functionals.is_some()
            || self.frames.mode == FrameMode::Mean
            || self
                .encoder
                .as_ref()
                .is_some_and(|e| e.pooling != super::embeddings::Pooling::None)
    }

    /// Names of the values of a clip vector (functionals, or the mean of each bin), in order;
    /// `None` for spectrogram pipelines.
    pub fn feature_names(&self) -> Option<Vec<String>> {
        if let Some(f) = &self.functionals {
            return Some(super::functionals::Functionals::new(f, self.sample_rate).names());
        }
        if let Some(e) = &self.encoder {
            return if self.clip_vectors() { e.names() } else { None };
        }
        if self.frames.mode != FrameMode::Mean {
            return None;
        }
        let base = if self.mfcc.is_some() { "mfcc" } else { "mel" };
        let ch = ["", "_delta", "_delta2"];
        Some(
            (0..self.channels())
                .flat_map(|c| (0..self.n_bins()).map(move |i| format!("{base}{i}{}_mean", ch[c])))
                .collect(),
        )
    }

    /// Permutation-importance units of a clip vector: `(names, column groups)`, one group per
    /// encoder layer (and statistic) for a pretrained encoder, whose single dimensions mean
    /// nothing alone; `None` where every feature is its own unit (or there are no clip vectors).
    pub fn importance_groups(&self) -> Option<(Vec<String>, Vec<Vec<usize>>)> {
        let e = self.encoder.as_ref().filter(|_| self.clip_vectors())?;
        let layers = e.layer_indices()?;
        let h = e.resolve().ok()?.hidden;
        let stats: &[&str] = if e.pooling == super::embeddings::Pooling::MeanStd {
            &["mean", "std"]
        } else {
            &["mean"]
        };
        let mut names = Vec::new();
        let mut groups = Vec::new();
        for l in &layers {
            for s in stats {
                let start = groups.len() * h;
                names.push(format!("state{l}_{s}"));
                groups.push((start..start + h).collect());
            }
        }
        Some((names, groups))
    }

    /// Channels per frame: 1, plus one per delta order.
    pub fn channels(&self) -> usize {
        if let Some(e) = &self.encoder {
            return e.layer_indices().map_or(1, |l| l.len());
        }
        1 + self.deltas.as_ref().map_or(0, |d| d.order)
    }

    /// Width of one output frame (bins × channels).
    pub fn n_features(&self) -> usize {
        self.n_bins() * self.channels()
    }

    /// Hash of every field that shapes the features of an original clip (not name, description,
    /// augmentations or seed). Names the cache folder.
    pub fn feature_key(&self) -> String {
        let mut shape = self.clone();
        shape.name.clear();
        shape.description = None;
        shape.augment.clear();
        shape.seed = 0;
        shape.win_length = Some(self.win_length.unwrap_or(self.n_fft));
        if let Some(e) = &mut shape.encoder {
            // The checkpoint's content, not where it lies (nor how many clips share a forward
            // pass), decides the embeddings.
            // Only Whisper reads `whisper_input`; other encoders keep one key whatever it says.
            if e.resolve().ok().map(|r| r.arch) != Some(crate::encoders::Arch::Whisper) {
                e.whisper_input = crate::encoders::WhisperInput::Padded;
            }
            e.path = std::path::PathBuf::new();
            e.batch = None;
        }
        let mut json = serde_json::to_string(&shape).expect("serialisable");
        if let Some(e) = &self.encoder {
            json.push_str(&e.key_part());
        }
        if self.functionals.is_some() {
            // A new definition of a descriptor must not reuse vectors cached by the old one.
            json.push_str(&format!(
                "|functionals-v{}",
                super::functionals::FUNCTIONALS_VERSION
            ));
        }
        blake3::hash(json.as_bytes()).to_hex()[..16].to_string()
    }

    /// All variants of a clip: the original, then each augmentation's copies.
    pub fn variants(&self) -> Vec<Variant> {
        let mut out = vec![Variant {
            name: "original".into(),
            augment: None,
            copy: 0,
            key: "original".into(),
        }];
        for a in &self.augment {
            let spec = serde_json::to_string(a).expect("serialisable");
            for copy in 0..a.copies() {
                out.push(Variant {
                    name: format!("{}#{copy}", a.kind()),
                    augment: Some(a.clone()),
                    copy,
                    key: format!("{spec}|copy={copy}|seed={}", self.seed),
                });
            }
        }
        out
    }
}

/// One variant of a clip (the original or one augmented copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// `original`, `noise#0`, `pitch_shift#1`, ...
    pub name: String,
    pub augment: Option<Augment>,
    pub copy: usize,
    /// What, beyond the clip and the pipeline, determines this variant's features.
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pipeline, ConfigError> {
        let p: Pipeline = crate::config::parse_yaml(Path::new("t.yaml"), text)?;
        p.validate(Path::new("t.yaml"))?;
        Ok(p)
    }

    #[test]
    fn defaults_are_librosas() {
        let p = parse("sample_rate: 16000\n").unwrap();
        let m = p.mel_params();
        assert_eq!(
            (m.n_fft, m.hop, m.win_length, m.n_mels),
            (2048, 512, 2048, 128)
        );
        assert!(m.center && m.slaney_norm && !m.htk);
        assert_eq!(p.db, Some(DbSpec::default()));
    }

    #[test]
    fn errors_name_key_and_suggest() {
        let e = parse("sample_rate: 16000\nn_mel: 64\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `n_mel`") && e.contains("did you mean `n_mels`?"),
            "{e}"
        );
        let e = parse("sample_rate: 16000\ndb: {ref: maximum}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("db.ref") && e.contains("did you mean `max`?"),
            "{e}"
        );
        let e = parse("sample_rate: 16000\naugment: [{type: nois, snr_db: [1, 2]}]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `noise`?"), "{e}");
        let e = parse("sample_rate: 16000\naugment: [{type: gain, db: [3, -3]}]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("augment[0].db"), "{e}");
        let e = parse("sample_rate: 16000\nframes: {mode: pad_crop}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("frames.size"), "{e}");
        let e = parse("sample_rate: 16000\nmfcc: {n: 200}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mfcc.n"), "{e}");
    }

    #[test]
    fn feature_key_ignores_names_and_augmentations_only() {
        let a = parse("sample_rate: 16000\n").unwrap();
        let mut b = a.clone();
        b.name = "other".into();
        b.augment.push(Augment::Gain {
            db: [-3.0, 3.0],
            copies: 2,
        });
        assert_eq!(a.feature_key(), b.feature_key());
        assert_eq!(b.variants().len(), 3);
        let mut c = a.clone();
        c.hop = 256;
        assert_ne!(a.feature_key(), c.feature_key());
    }
}
