//! Run folders: `results/<experiment>/<run>/` with
//! - `config.yaml`: the resolved experiment with this run's fold and seed (re-runnable as is);
//! - `meta.json`: [`RunMeta`]: versions, git revision, device, seed, fold, timings, status;
//! - `split.parquet`: every clip of the fold with its role (`train`, `val`, `test`);
//! - `history.parquet`: per-epoch losses, UA/WA, learning rate and seconds;
//! - `predictions.parquet`: one row per test clip: clip, speaker, sex, truth, prediction, and a
//!   `prob_<class>` column per class;
//! - `metrics.json`: [`RunMetrics`]: test metrics, the same by speaker sex, validation UA of the
//!   selected epoch;
//! - `model.safetensors`: weights and the normaliser;
//! - `val_predictions.parquet`: the same for the validation clips (what fusion weights are
//!   chosen on);
//! - `layer_weights.json`: [`LayerWeights`], the learned weight of each encoder layer (probe and
//!   fine-tuned encoder runs).
//!
//! Every file is written atomically; `meta.json` says `running` first and `complete` only after
//! everything else is written, so a run counts as complete exactly when it is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

mod summary;

pub use summary::{aggregate, pretty, summary, write_summary};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Complete,
    Failed,
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub experiment: String,
    pub run: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub model: String,
    pub family: String,
    pub protocol: String,
    pub speaker_leaky: bool,
    /// The seed's mistake (validation on the test clips) was on.
    pub test_as_val: bool,
    /// Normalisation statistics used the test speakers' (unlabelled) audio
    /// (`normalize: speaker`).
    #[serde(default)]
    pub transductive: bool,
    /// For a seed ensemble: the member runs whose test probabilities it averages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<String>,
    pub target: String,
    pub corpus: String,
    pub pipeline: String,
    /// The feature cache folder the run read (`<cache>/<feature_key>`).
    #[serde(default)]
    pub feature_key: String,
    /// Extra copies of byte-identical clips left out before splitting (one copy of each kept).
    #[serde(default)]
    pub duplicates_dropped: usize,
    /// Of those contents, how many were filed under more than one speaker.
    #[serde(default)]
    pub duplicates_cross_speaker: usize,
    pub fold: usize,
    pub seed: u64,
    pub split_seed: u64,
    /// Sweep trial id and its parameter values, for sweep runs.
    pub trial: Option<String>,
    pub params: BTreeMap<String, serde_json::Value>,
    pub classes: Vec<String>,
    pub n_train: usize,
    pub n_train_variants: usize,
    pub n_val: usize,
    pub n_test: usize,
    pub parameters: i64,
    pub device: String,
    pub threads: i32,
    pub precision: String,
    pub emolab_version: String,
    pub tch_version: String,
    pub libtorch_version: String,
    pub git_revision: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub seconds: Option<f64>,
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// Mean wall time of one training pass (forward, backward, update).
    pub train_seconds_per_epoch: Option<f64>,
    /// The host and process that run it, so `emolab status` tells a live run from an
    /// interrupted one.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub pid: Option<u32>,
    /// The Slurm job (`JOBID_TASK` for an array task) that runs it, when Slurm started it.
    #[serde(default)]
    pub slurm_job: Option<String>,
    /// A classical model's size and fit times (it has no epochs or network parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classical: Option<ClassicalInfo>,
    /// The pretrained encoder whose features the run read (encoder pipelines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderInfo>,
}

/// Which pretrained encoder produced a run's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// `whisper`, `wavlm`, ...
    pub arch: String,
    /// The model folder as the experiment named it.
    pub path: String,
    /// Content hash of `config.json` and the weights (the feature cache's key).
    pub hash: String,
    /// Transformer layers and width.
    pub layers: usize,
    pub hidden: usize,
    pub parameters: u64,
    /// The hidden states kept (0 = the first layer's input).
    pub states: Vec<usize>,
    pub pooling: String,
    /// Whisper only: `padded`, `cropped` or the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whisper_input: Option<String>,
}

impl EncoderInfo {
    /// One line for logs and reports: `whisper 4 × 384, 8.2 M parameters, states 0-4 (mean), cropped, 1a2b3c4d`.
    pub fn line(&self) -> String {
        let states = match (self.states.first(), self.states.last()) {
            (Some(a), Some(b)) if self.states.len() > 1 && b - a + 1 == self.states.len() => {
                format!("states {a}-{b}")
            }
            _ => format!(
                "states {}",
                self.states
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let input = self
            .whisper_input
            .as_ref()
            .map(|w| format!(", {w}"))
            .unwrap_or_default();
        format!(
            "{} {} × {}, {:.1} M parameters, {states} ({}){input}, {} [{}]",
            self.arch,
            self.layers,
            self.hidden,
            self.parameters as f64 / 1e6,
            self.pooling,
            &self.hash[..self.hash.len().min(12)],
            self.path,
        )
    }
}

/// `layer_weights.json`: the softmax weight a probe (or fine-tuned encoder) learned for each
/// hidden state it reads; the weights sum to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerWeights {
    /// Hidden-state indices (0 = the input of the first transformer layer).
    pub states: Vec<usize>,
    pub weights: Vec<f64>,
}

/// File names of a run folder.
pub const LAYER_WEIGHTS: &str = "layer_weights.json";
pub const VAL_PREDICTIONS: &str = "val_predictions.parquet";

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    pub test: Metrics,
    /// Test metrics per speaker sex (`female`, `male`) where known.
    pub by_sex: BTreeMap<String, Metrics>,
    pub best_epoch: usize,
    /// Validation UA at the selected epoch (what model selection saw).
    pub val_ua: f64,
    /// Temperature that minimises the validation speakers' NLL (`crate::calibration`): applied
    /// to the probabilities `predict` reports; the stored test probabilities are unscaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Abstain threshold: the prediction entropy (nats, of the temperature-scaled
    /// probabilities) under which 80% of the validation speakers' clips fall; `predict` flags
    /// clips above it, the report shows test coverage and UA at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abstain_entropy: Option<f64>,
}

/// The files of a run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub dir: PathBuf,
}

impl RunDir {
    pub fn new(dir: impl Into<PathBuf>) -> RunDir {
        RunDir { dir: dir.into() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The run's status, `None` when it never started (or `meta.json` is unreadable).
    pub fn status(&self) -> Option<RunStatus> {
        self.meta().ok().map(|m| m.status)
    }

    pub fn is_complete(&self) -> bool {
        self.status() == Some(RunStatus::Complete)
    }

    pub fn meta(&self) -> Result<RunMeta> {
        read_json(&self.path("meta.json"))
    }

    pub fn metrics(&self) -> Result<RunMetrics> {
        read_json(&self.path("metrics.json"))
    }

    pub fn write_meta(&self, meta: &RunMeta) -> Result<()> {
        write_json(&self.path("meta.json"), meta)
    }

    pub fn write_metrics(&self, m: &RunMetrics) -> Result<()> {
        write_json(&self.path("metrics.json"), m)
    }

    pub fn write_config(&self, yaml: &str) -> Result<()> {
        crate::util::atomic_write_bytes(&self.path("config.yaml"), yaml.as_bytes())
    }

    pub fn write_history(&self, history: &[EpochStats]) -> Result<()> {
        let col = |name: &str, f: &dyn Fn(&EpochStats) -> f64| {
            Column::new(name.into(), history.iter().map(f).collect::<Vec<f64>>())
        };
        let mut df = DataFrame::new(vec![
            Column::new(
                "epoch".into(),
                history.iter().map(|h| h.epoch as u32).collect::<Vec<_>>(),
            ),
            col("train_loss", &|h| h.train_loss),
            col("train_ua", &|h| h.train_ua),
            col("train_wa", &|h| h.train_wa),
            col("val_loss", &|h| h.val_loss),
            col("val_ua", &|h| h.val_ua),
            col("val_wa", &|h| h.val_wa),
            col("lr", &|h| h.lr),
            col("train_seconds", &|h| h.train_seconds),
            col("epoch_seconds", &|h| h.epoch_seconds),
        ])?;
        write_parquet(&self.path("history.parquet"), &mut df)
    }

    pub fn write_split(&self, rows: &SplitRows) -> Result<()> {
        let mut df = DataFrame::new(vec![
            Column::new("clip_id".into(), &rows.clip_id),
            Column::new("speaker".into(), &rows.speaker),
            Column::new("sex".into(), &rows.sex),
            Column::new("label".into(), &rows.label),
            Column::new("role".into(), &rows.role),
        ])?;
        write_parquet(&self.path("split.parquet"), &mut df)
    }

    /// The clip ids of one role (`train`, `val`, `test`) in `split.parquet`.
    pub fn split_ids(&self, role: &str) -> Result<std::collections::HashSet<String>> {
        let path = self.path("split.parquet");
        let split = ParquetReader::new(
            std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        )
        .finish()?;
        Ok(split
            .lazy()
            .filter(col("role").eq(lit(role)))
            .collect()?
            .column("clip_id")?
            .str()?
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect())
    }

    /// Test predictions: ids, truth, prediction and one probability column per class.
    pub fn write_predictions(&self, p: &Predictions, path: Option<&Path>) -> Result<()> {
        let mut df = p.to_dataframe()?;
        let target = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.path("predictions.parquet"));
        write_parquet(&target, &mut df)
    }
}

/// The rows of `split.parquet`.
#[derive(Debug, Clone, Default)]
pub struct SplitRows {
    pub clip_id: Vec<String>,
    pub speaker: Vec<Option<String>>,
    pub sex: Vec<Option<String>>,
    pub label: Vec<String>,
    pub role: Vec<&'static str>,
}

/// Predictions of a set of clips.
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    pub clip_id: Vec<String>,
    pub path: Vec<String>,
    pub speaker: Vec<Option<String>>,
    pub sex: Vec<Option<String>>,
    pub truth: Vec<String>,
    pub prediction: Vec<String>,
    pub classes: Vec<String>,
    pub probs: Vec<Vec<f32>>,
}

impl Predictions {
    /// Truth and predicted labels as indices into `classes`.
    pub fn indices(&self) -> (Vec<usize>, Vec<usize>) {
        let idx = |l: &String| self.classes.iter().position(|c| c == l).unwrap_or(0);
        (
            self.truth.iter().map(idx).collect(),
            self.prediction.iter().map(idx).collect(),
        )
    }

    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let correct: Vec<bool> = self
            .truth
            .iter()
            .zip(&self.prediction)
            .map(|(t, p)| t == p)
            .collect();
        let mut cols = vec![
            Column::new("clip_id".into(), &self.clip_id),
            Column::new("path".into(), &self.path),
            Column::new("speaker".into(), &self.speaker),
            Column::new("sex".into(), &self.sex),
            Column::new("truth".into(), &self.truth),
            Column::new("prediction".into(), &self.prediction),
            Column::new("correct".into(), correct),
        ];
        for (i, c) in self.classes.iter().enumerate() {
            cols.push(Column::new(
                format!("prob_{c}").into(),
                self.probs.iter().map(|p| p[i]).collect::<Vec<f32>>(),
            ));
        }
        Ok(DataFrame::new(cols)?)
    }
}

fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    crate::util::atomic_write(path, |w| {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)?;
        Ok(())
    })
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    crate::util::atomic_write_bytes(path, text.as_bytes())
}

/// The git revision of the working directory, when it is a git checkout.
pub fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_string();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}

/// Read a `predictions.parquet` back.
pub fn read_predictions(path: &Path, classes: &[String]) -> Result<Predictions> {
    let df = ParquetReader::new(
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    )
    .finish()
    .with_context(|| format!("{} is not Parquet", path.display()))?;
    let strs = |c: &str| -> Result<Vec<Option<String>>> {
        Ok(df
            .column(c)?
            .str()?
            .into_iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let req = |c: &str| -> Result<Vec<String>> {
        Ok(strs(c)?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect())
    };
    let mut probs = vec![Vec::with_capacity(classes.len()); df.height()];
    for c in classes {
        let col = df.column(&format!("prob_{c}"))?.f32()?;
        for (row, v) in probs.iter_mut().zip(col.into_iter()) {
            row.push(v.unwrap_or(f32::NAN));
        }
    }
    Ok(Predictions {
        clip_id: req("clip_id")?,
        path: req("path")?,
        speaker: strs("speaker")?,
        sex: strs("sex")?,
        truth: req("truth")?,
        prediction: req("prediction")?,
        classes: classes.to_vec(),
        probs,
    })
}

/// The run folders under `path`: itself when it is one, else its sub-folders that are.
pub fn run_folders(path: &Path) -> Vec<PathBuf> {
    if path.join("meta.json").exists() {
        return vec![path.to_path_buf()];
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    v.sort();
    v
}

/// The size of a fitted classical model, as its family counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSize {
    SupportVectors(usize),
    Trees { trees: usize, leaves: usize },
    Weights(usize),
}

impl ModelSize {
    /// For a table cell: `3.5k SVs`, `300 trees`, `602 weights`.
    pub fn short(&self) -> String {
        let n = |v: usize| {
            if v >= 10_000 {
                format!("{:.0}k", v as f64 / 1e3)
            } else if v >= 1_000 {
                format!("{:.1}k", v as f64 / 1e3)
            } else {
                v.to_string()
            }
        };
        match self {
            ModelSize::SupportVectors(v) => format!("{} SVs", n(*v)),
            ModelSize::Trees { trees, .. } => format!("{trees} trees"),
            ModelSize::Weights(v) => format!("{} weights", n(*v)),
        }
    }
}

impl std::fmt::Display for ModelSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSize::SupportVectors(n) => write!(f, "{n} support vectors"),
            ModelSize::Trees { trees, leaves } => write!(f, "{trees} trees, {leaves} leaves"),
            ModelSize::Weights(n) => write!(f, "{n} weights"),
        }
    }
}

/// A classical fit's size and where its time went, for `meta.json` (a classical model has no
/// epochs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassicalInfo {
    /// The refitted model (training + validation clips).
    pub model: ModelSize,
    /// Fit on the training clips (with an SVM's Platt cross-validation) and scoring them and
    /// the validation clips.
    pub fit_seconds: f64,
    /// Permutation importance on the validation clips.
    pub importance_seconds: f64,
    /// Refit on training + validation clips and scoring the test clips.
    pub refit_seconds: f64,
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    /// UA and WA of the training batches' predictions (train mode: dropout and masks on).
    #[serde(default)]
    pub train_ua: f64,
    #[serde(default)]
    pub train_wa: f64,
    pub val_loss: f64,
    pub val_ua: f64,
    pub val_wa: f64,
    pub lr: f64,
    /// Wall time of the training pass (forward, backward, update), without validation.
    #[serde(default)]
    pub train_seconds: f64,
    /// Wall time of the whole epoch, validation and checkpoint included.
    #[serde(default)]
    pub epoch_seconds: f64,
}

/// The model file of a classical run (its training vectors; see `train::classical`).
pub const CLASSICAL_MODEL: &str = "model.json";
