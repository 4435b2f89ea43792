//! Experiment files (`experiments/*.yaml`): parsed once into a validated, typed [`Experiment`].
//!
//! Before typing, the YAML document is resolved as a tree:
//! 1. `extends: base.yaml` (relative to the file) is loaded first and this file is merged over
//!    it (mappings merge key by key, anything else replaces);
//! 2. `--set key.path=value` overrides are applied (the value is parsed as YAML);
//! 3. `${VAR}` and `${VAR:-default}` in strings are replaced from the environment;
//! 4. `pipeline: file.yaml` or `pipeline: {file: file.yaml, n_mels: 64, ...}` becomes the
//!    pipeline file's content with the overrides merged in;
//! 5. `model: {preset: cnn_v3, dropout: 0.4}` becomes the preset's full spec with overrides.
//!
//! Then the tree is typed with `deny_unknown_fields` everywhere, so a typo is an error naming the
//! file and the key with a did-you-mean, and values that parse but cannot work are checked.
//! Checks that need the data (k larger than the number of speakers, a label no clip has) are
//! made when the experiment is prepared ([`crate::prepare`]), with the same [`ConfigError`].
//! The resolved tree is what a run folder's `config.yaml` holds, so a run can always be re-read
//! and re-run exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

mod checks;
mod resolve;
mod slurm;

pub use slurm::SlurmSpec;

/// Experiment files merge as every YAML tree does ([`crate::config::merge`]).
pub use crate::config::merge;
use crate::config::{apply_set, expand_env, locate, read_tree, set_path, ConfigError};
use crate::corpus::Format;
use crate::features::Pipeline;
use crate::models::ModelSpec;
use crate::split::Protocol;
use crate::train::FitConfig;
use checks::{check_finetune, check_protocol, check_sweep, prefix_key};
use resolve::{resolve_fold_file, resolve_model, resolve_pipeline};

/// What a model learns to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    #[default]
    Emotion,
    /// The sentence (text) spoken: the seed's "93.88%" target.
    Sentence,
    Intensity,
    Sex,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Emotion => "emotion",
            Target::Sentence => "sentence",
            Target::Intensity => "intensity",
            Target::Sex => "sex",
        }
    }
}

/// The `corpus:` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusSpec {
    /// A corpus folder, or a manifest (`.parquet`) from `emolab corpus scan`.
    pub path: PathBuf,
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub target: Target,
    /// Labels to keep (after `merge`); default: every label present.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Rename labels before keeping, e.g. `{calm: neutral}`.
    #[serde(default)]
    pub merge: BTreeMap<String, String>,
    /// CREMA-D `VideoDemographics.csv` (default: next to the audio).
    #[serde(default)]
    pub demographics: Option<PathBuf>,
    /// Folder format: regex whose first group, on the file name, is the speaker.
    #[serde(default)]
    pub speaker_pattern: Option<String>,
    /// Keep only clips of this vocal channel (RAVDESS: `speech` or `song`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocal_channel: Option<String>,
}

/// One swept parameter: a list of values (grid), or a distribution (random search).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SweepValues {
    List(Vec<Value>),
    Dist(Distribution),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    Uniform([f64; 2]),
    LogUniform([f64; 2]),
}

/// The `sweep:` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// `key.path: [values]` or `key.path: {log_uniform: [lo, hi]}`.
    #[serde(default)]
    pub params: BTreeMap<String, SweepValues>,
    /// Random search: this many trials drawn from the lists and distributions (default: the
    /// full grid; required when a distribution is given).
    #[serde(default)]
    pub budget: Option<usize>,
    /// Seed of the random draws.
    #[serde(default)]
    pub seed: u64,
}

/// The typed top level (after tree resolution).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    corpus: CorpusSpec,
    pipeline: Pipeline,
    #[serde(default = "d_protocol")]
    protocol: Protocol,
    /// The split seed for every run; default: each run's seed.
    #[serde(default)]
    split_seed: Option<u64>,
    model: ModelSpec,
    #[serde(default)]
    model_name: Option<String>,
    #[serde(default)]
    train: FitConfig,
    #[serde(default = "d_seeds")]
    seeds: Vec<u64>,
    /// Run only these folds (default: all).
    #[serde(default)]
    folds: Option<Vec<usize>>,
    #[serde(default)]
    sweep: Option<SweepSpec>,
    /// Resources of Slurm jobs (`emolab run --slurm`); not part of any run's configuration.
    #[serde(default)]
    slurm: Option<SlurmSpec>,
    /// Feature cache root (default: `$EMOLAB_CACHE` or `data/cache`).
    #[serde(default)]
    cache: Option<PathBuf>,
    /// Results root (default: `$EMOLAB_RESULTS` or `results`).
    #[serde(default)]
    results: Option<PathBuf>,
}

fn d_protocol() -> Protocol {
    Protocol::SpeakerKfold {
        k: 5,
        val_fraction: 0.15,
    }
}

fn d_seeds() -> Vec<u64> {
    vec![0]
}

/// A validated experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The file it came from (for error messages).
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub corpus: CorpusSpec,
    pub pipeline: Pipeline,
    pub protocol: Protocol,
    pub split_seed: Option<u64>,
    pub model: ModelSpec,
    /// The preset name, or the family.
    pub model_name: String,
    pub train: FitConfig,
    pub seeds: Vec<u64>,
    pub folds: Option<Vec<usize>>,
    pub sweep: Option<SweepSpec>,
    /// The `slurm:` block (job resources), when given.
    pub slurm: Option<SlurmSpec>,
    pub cache: PathBuf,
    pub results: PathBuf,
    /// The resolved document (what `config.yaml` of a run holds, with its fold and seed).
    pub resolved: Value,
}

pub(crate) fn err(file: &Path, key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::invalid(file, key, msg)
}

impl Experiment {
    /// Load, resolve and validate an experiment file with `--set` overrides.
    pub fn load(file: &Path, sets: &[String]) -> Result<Experiment, ConfigError> {
        let mut chain = Vec::new();
        let mut tree = read_tree(file, &mut chain)?;
        for s in sets {
            // `pipeline: file.yaml` takes dotted overrides as `{file: file.yaml, key: value}`.
            if s.trim_start().starts_with("pipeline.") {
                if let Some(p @ Value::String(_)) = tree.get_mut("pipeline") {
                    let mut m = Mapping::new();
                    m.insert("file".into(), p.clone());
                    *p = Value::Mapping(m);
                }
            }
            apply_set(&mut tree, s).map_err(|m| ConfigError {
                file: file.to_path_buf(),
                key: None,
                message: format!("--set {m}"),
                hint: None,
            })?;
        }
        Self::from_tree(file, tree).map_err(|e| locate(e, file, &chain, sets))
    }

    /// Resolve and validate a document tree (after extends and overrides).
    pub fn from_tree(file: &Path, tree: Value) -> Result<Experiment, ConfigError> {
        Self::resolve(file, tree, true)
    }

    /// [`Self::from_tree`] without requiring the corpus to exist (a saved run's `config.yaml`
    /// re-read to evaluate or predict elsewhere).
    pub fn from_tree_unchecked(file: &Path, tree: Value) -> Result<Experiment, ConfigError> {
        Self::resolve(file, tree, false)
    }

    fn resolve(
        file: &Path,
        mut tree: Value,
        check_corpus: bool,
    ) -> Result<Experiment, ConfigError> {
        expand_env(&mut tree, file)?;
        if !tree.is_mapping() {
            return Err(err(file, "", "an experiment is a YAML mapping"));
        }
        // A file name or `{file, overrides}` is expanded; a mapping without `file` is already a
        // whole pipeline (as in a run's config.yaml); a missing one is an error from there.
        let pipeline_is_whole = tree
            .get("pipeline")
            .is_some_and(|p| p.is_mapping() && p.get("file").is_none());
        if !pipeline_is_whole {
            resolve_pipeline(&mut tree, file)?;
            // A pipeline file may read the environment too (`encoder: {path: ${ENCODER_DIR}}`).
            if let Some(p) = tree.get_mut("pipeline") {
                expand_env(p, file)?;
            }
        }
        resolve_fold_file(&mut tree, file)?;
        // The preset (or family) names the model unless `model_name` says otherwise.
        let name = resolve_model(&mut tree, file)?;
        if tree.get("model_name").is_none() {
            tree["model_name"] = Value::String(name.clone());
        }
        // From the merged tree (no line numbers: those of a merged document would point
        // nowhere the user wrote; `Experiment::load` finds the line in the user's files).
        let mut raw: Raw = crate::config::from_value(file, tree)?;
        if let ModelSpec::Finetune(f) = &mut raw.model {
            check_finetune(f, &raw.pipeline, raw.train.normalize, file)?;
        }
        let exp_name = raw.name.clone().unwrap_or_else(|| {
            file.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "experiment".into())
        });
        let mut pipeline = raw.pipeline.clone();
        if pipeline.name.is_empty() {
            pipeline.name = "pipeline".into();
        }
        pipeline
            .validate(file)
            .map_err(|e| prefix_key(e, "pipeline"))?;
        raw.train
            .check()
            .map_err(|(k, m)| err(file, &format!("train.{k}"), m))?;
        check_protocol(&raw.protocol, file)?;
        if raw.seeds.is_empty() {
            return Err(err(file, "seeds", "give at least one seed"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(s) = raw.seeds.iter().find(|s| !seen.insert(**s)) {
            return Err(err(file, "seeds", format!("seed {s} is listed twice")));
        }
        if raw.folds.as_ref().is_some_and(|f| f.is_empty()) {
            return Err(err(
                file,
                "folds",
                "give at least one fold, or leave it out for all",
            ));
        }
        if check_corpus && !raw.corpus.path.exists() {
            return Err(err(
                file,
                "corpus.path",
                format!(
                    "{} does not exist (put the corpus there, or point corpus.path at it)",
                    raw.corpus.path.display()
                ),
            ));
        }
        if let Some(p) = &raw.corpus.speaker_pattern {
            regex::Regex::new(p).map_err(|e| err(file, "corpus.speaker_pattern", e.to_string()))?;
        }
        // The full document: every default written out (what a run's config.yaml holds, and
        // what sweep keys must name).
        let tree = serde_yaml::to_value(&raw).expect("a typed experiment serialises");
        if let Some(s) = &raw.slurm {
            s.check()
                .map_err(|(k, m)| err(file, &format!("slurm.{k}"), m))?;
        }
        if let Some(s) = &raw.sweep {
            check_sweep(s, &tree, file)?;
        }
        if raw.model.classical().is_some() {
            if !pipeline.clip_vectors() {
                return Err(err(
                    file,
                    "pipeline",
                    format!(
                        "{} needs one vector per clip: a pipeline with `functionals` (e.g. \
                         pipelines/functionals.yaml) or `frames: {{mode: mean}}`",
                        raw.model.family()
                    ),
                ));
            }
            if raw.train.window.is_some() {
                return Err(err(
                    file,
                    "train.window",
                    "clip vectors have no time axis to window",
                ));
            }
            if raw.train.normalize == crate::train::NormMode::Utterance {
                return Err(err(
                    file,
                    "train.normalize",
                    "`utterance` standardises a clip over its own frames; a clip vector has one \
                     (use per_mel, global or speaker)",
                ));
            }
        } else {
            if matches!(raw.model, ModelSpec::Vector(_)) && !pipeline.clip_vectors() {
                return Err(err(
                    file,
                    "pipeline",
                    "the vector family needs one vector per clip: a pipeline with `functionals` \
                     or `frames: {mode: mean}` (e.g. pipelines/mfcc_mean40.yaml)",
                ));
            }
            // Build the model once on a typical input to surface impossible sizes early.
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let frames = match &raw.train.window {
                Some(_) if pipeline.clip_vectors() => 1,
                Some(w) => w.frames,
                None if pipeline.clip_vectors() => 1,
                None => pipeline.frames.size.unwrap_or(128),
            };
            let input = crate::models::Input {
                channels: pipeline.channels() as i64,
                bins: pipeline.n_bins() as i64,
                frames: frames as i64,
            };
            let _rng = crate::train::torch_rng_guard();
            // Without the encoder's folder its sizes are unknown: the model is built (and the
            // folder demanded) when the run starts.
            if input.bins > 0 {
                raw.model
                    .build(&vs.root(), input, 2)
                    .map_err(|e| err(file, "model", e.to_string()))?;
            }
        }
        if check_corpus {
            if let Some(e) = &pipeline.encoder {
                e.resolve()
                    .map_err(|er| err(file, "pipeline.encoder.path", er.to_string()))?;
            }
        }
        Ok(Experiment {
            file: file.to_path_buf(),
            name: exp_name,
            description: raw.description,
            corpus: raw.corpus,
            pipeline,
            protocol: raw.protocol,
            split_seed: raw.split_seed,
            model: raw.model,
            model_name: raw.model_name.unwrap_or(name),
            train: raw.train,
            seeds: raw.seeds,
            folds: raw.folds,
            sweep: raw.sweep,
            slurm: raw.slurm,
            cache: raw.cache.unwrap_or_else(crate::config::cache_dir),
            results: raw.results.unwrap_or_else(crate::config::results_dir),
            resolved: tree,
        })
    }

    /// An error about this experiment's `key`.
    /// The experiment's folder of runs: `<results>/<name>/`.
    pub fn dir(&self) -> PathBuf {
        self.results.join(&self.name)
    }

    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        err(&self.file, key, message)
    }

    /// The experiment with `key.path` set to `value` (a sweep trial), re-validated.
    pub fn with(&self, assignments: &[(String, Value)]) -> Result<Experiment, ConfigError> {
        let mut tree = self.resolved.clone();
        for (k, v) in assignments {
            set_path(&mut tree, k, v.clone()).map_err(|m| err(&self.file, k, m))?;
        }
        if let Value::Mapping(m) = &mut tree {
            m.remove("sweep");
        }
        Experiment::from_tree(&self.file, tree)
    }

    /// The resolved document of one run (fold and seed fixed) as YAML.
    pub fn run_yaml(&self, fold: usize, seed: u64) -> String {
        let mut tree = self.resolved.clone();
        if let Value::Mapping(m) = &mut tree {
            // Where and how a run is scheduled does not change what it computes.
            m.remove("sweep");
            m.remove("slurm");
            m.insert("name".into(), Value::String(self.name.clone()));
            m.insert(
                "seeds".into(),
                serde_yaml::to_value(vec![seed]).expect("ok"),
            );
            m.insert(
                "folds".into(),
                serde_yaml::to_value(vec![fold]).expect("ok"),
            );
        }
        serde_yaml::to_string(&tree).expect("a tree serialises")
    }
}
