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
//! made by the runner, with the same [`ConfigError`]. The resolved tree is what a run folder's
//! `config.yaml` holds, so a run can always be re-read and re-run exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::config::{edit_distance, ConfigError};
use crate::corpus::Format;
use crate::features::Pipeline;
use crate::models::ModelSpec;
use crate::split::Protocol;
use crate::train::FitConfig;

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
    slurm: Option<crate::cluster::SlurmSpec>,
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
    pub slurm: Option<crate::cluster::SlurmSpec>,
    pub cache: PathBuf,
    pub results: PathBuf,
    /// The resolved document (what `config.yaml` of a run holds, with its fold and seed).
    pub resolved: Value,
}

fn err(file: &Path, key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::invalid(file, key, msg)
}

/// Merge `over` into `base`: mappings key by key, anything else replaces. A mapping that names
/// another variant (`kind`, `family` or `type` differs, e.g. a plateau schedule over a cosine
/// one) replaces the base instead of mixing fields of both.
pub fn merge(base: &mut Value, over: Value) {
    let other_variant = |b: &Mapping, o: &Mapping| {
        ["kind", "family", "type"]
            .iter()
            .any(|t| matches!((b.get(*t), o.get(*t)), (Some(x), Some(y)) if x != y))
    };
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) if other_variant(b, &o) => *b = o,
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn read_tree(file: &Path, chain: &mut Vec<PathBuf>) -> Result<Value, ConfigError> {
    let canon = file.canonicalize().map_err(|e| ConfigError {
        file: file.to_path_buf(),
        key: None,
        message: format!("cannot read: {e}"),
        hint: crate::config::missing_file_hint(file),
    })?;
    if chain.contains(&canon) {
        return Err(err(file, "extends", "extends itself (a cycle of extends)"));
    }
    chain.push(canon);
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        key: None,
        message: format!("cannot read: {e}"),
        hint: None,
    })?;
    let mut doc: Value = crate::config::parse_yaml(file, &text)?;
    if doc.is_null() {
        doc = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = &mut doc else {
        return Err(ConfigError {
            file: file.to_path_buf(),
            key: None,
            message: "an experiment is a YAML mapping".into(),
            hint: None,
        });
    };
    if let Some(base) = map.remove("extends") {
        let Value::String(base) = base else {
            return Err(err(file, "extends", "must be a file name"));
        };
        let base_path = file.parent().unwrap_or(Path::new(".")).join(&base);
        if !base_path.exists() {
            return Err(err(
                file,
                "extends",
                format!("{} does not exist", base_path.display()),
            ));
        }
        let mut tree = read_tree(&base_path, chain)?;
        merge(&mut tree, doc);
        return Ok(tree);
    }
    Ok(doc)
}

/// Apply `key.path=value` (value parsed as YAML; `a.b=` sets null).
pub fn apply_set(tree: &mut Value, assignment: &str) -> Result<(), String> {
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| format!("`{assignment}`: expected key.path=value"))?;
    let value: Value = if value.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml::from_str(value).map_err(|e| format!("`{assignment}`: {e}"))?
    };
    set_path(tree, key.trim(), value)
}

/// Set `key.path` in a tree, creating mappings on the way.
pub fn set_path(tree: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let mut node = tree;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}`: empty key segment"));
    }
    for (i, part) in parts.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(format!(
                "`{key}`: `{}` is not a mapping",
                parts[..i].join(".")
            ));
        };
        let k = Value::String(part.to_string());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map.entry(k).or_insert(Value::Null);
    }
    unreachable!("the loop returns at the last segment")
}

/// A `finetune` model: its encoder folder defaults to the pipeline's; the pipeline must cache the
/// frames of the hidden state its top layers start from, and features must stay as cached.
fn check_finetune(
    f: &mut crate::models::finetune::FinetuneSpec,
    pipeline: &crate::features::Pipeline,
    normalize: crate::train::NormMode,
    file: &Path,
) -> Result<(), ConfigError> {
    use crate::features::embeddings::{Layers, Pooling};
    let Some(e) = &pipeline.encoder else {
        return Err(err(
            file,
            "pipeline",
            "finetune runs on an encoder pipeline (e.g. pipelines/encoder_frames.yaml)",
        ));
    };
    if f.encoder.as_os_str().is_empty() {
        f.encoder = e.path.clone();
    }
    if normalize != crate::train::NormMode::None {
        return Err(err(
            file,
            "train.normalize",
            "finetune feeds cached hidden states to pretrained layers: set `normalize: none`",
        ));
    }
    if let Ok(r) = e.resolve() {
        let want = (r.states - 1).checked_sub(f.top_layers).ok_or_else(|| {
            err(
                file,
                "model.top_layers",
                format!(
                    "the model has {} layers, got top_layers {}",
                    r.states - 1,
                    f.top_layers
                ),
            )
        })?;
        if e.pooling != Pooling::None || e.layers != Layers::List(vec![want]) {
            return Err(err(
                file,
                "pipeline.encoder",
                format!(
                    "finetune with top_layers {} of this {}-layer model starts from hidden state                      {want}: set `encoder: {{layers: [{want}], pooling: none}}`",
                    f.top_layers,
                    r.states - 1
                ),
            ));
        }
    }
    Ok(())
}

/// Point an error about the merged experiment at what the user wrote: the `--set` that gave
/// the key, or `file:line` of the first file of the `extends` chain (the experiment first)
/// that writes it.
fn locate(mut e: ConfigError, file: &Path, chain: &[PathBuf], sets: &[String]) -> ConfigError {
    let Some(key) = e.key.clone() else { return e };
    if e.file != file {
        return e;
    }
    for s in sets.iter().rev() {
        let k = s.split('=').next().unwrap_or("").trim();
        if !k.is_empty()
            && (key == k || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}.")))
        {
            e.file = PathBuf::from(format!("--set {s}"));
            return e;
        }
    }
    let Some(last) = key.rsplit('.').find(|p| !p.is_empty() && *p != "?") else {
        return e;
    };
    let Ok(re) = regex::Regex::new(&format!(r"(^|[\s{{,\-])\s*{}\s*:", regex::escape(last))) else {
        return e;
    };
    let canon_file = file.canonicalize().ok();
    for path in chain {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if let Some(n) = text.lines().position(|l| {
            let code = l.split(" #").next().unwrap_or(l);
            !l.trim_start().starts_with('#') && re.is_match(code)
        }) {
            let shown = if canon_file.as_ref() == Some(path) {
                file.to_path_buf()
            } else {
                path.clone()
            };
            e.file = PathBuf::from(format!("{}:{}", shown.display(), n + 1));
            return e;
        }
    }
    e
}

/// Replace `${VAR}` / `${VAR:-default}` in every string of the tree.
pub fn expand_env(v: &mut Value, file: &Path) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains("${") => {
            let re = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}").unwrap();
            let mut missing = None;
            let out = re.replace_all(s, |c: &regex::Captures| {
                match (std::env::var(&c[1]), c.get(2)) {
                    (Ok(v), _) if !v.is_empty() => v,
                    (_, Some(d)) => d.as_str().to_string(),
                    _ => {
                        missing = Some(c[1].to_string());
                        String::new()
                    }
                }
            });
            if let Some(var) = missing {
                return Err(ConfigError {
                    file: file.to_path_buf(),
                    key: None,
                    message: format!("`{s}`: environment variable {var} is not set and has no default (write ${{{var}:-default}})"),
                    hint: None,
                });
            }
            *s = out.into_owned();
        }
        Value::Mapping(m) => {
            for (_, x) in m.iter_mut() {
                expand_env(x, file)?;
            }
        }
        Value::Sequence(xs) => {
            for x in xs {
                expand_env(x, file)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Where a pipeline file named in an experiment lies: as given (from the current folder), else
/// relative to the experiment's folder, else relative to the folder above it (a project's
/// `pipelines/` beside its `experiments/`), so an experiment runs from any folder.
fn pipeline_file(path: &str, experiment: &Path) -> std::path::PathBuf {
    let given = Path::new(path);
    if given.is_absolute() || given.exists() {
        return given.to_path_buf();
    }
    let dir = experiment.parent().unwrap_or(Path::new(""));
    [dir.join(given), dir.join("..").join(given)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| given.to_path_buf())
}

/// `pipeline:` as a file name or `{file, overrides…}` → the pipeline's full tree.
fn resolve_pipeline(tree: &mut Value, file: &Path) -> Result<(), ConfigError> {
    let Some(p) = tree.get_mut("pipeline") else {
        return Err(err(
            file,
            "pipeline",
            "missing: name a pipelines/*.yaml file",
        ));
    };
    let (path, overrides) = match p.clone() {
        Value::String(s) => (Some(s), Mapping::new()),
        Value::Mapping(mut m) => {
            let path = match m.remove("file") {
                Some(Value::String(s)) => Some(s),
                Some(_) => return Err(err(file, "pipeline.file", "must be a file name")),
                None => None,
            };
            (path, m)
        }
        _ => {
            return Err(err(
                file,
                "pipeline",
                "a file name, or a mapping with `file` and overrides",
            ))
        }
    };
    let mut full = match &path {
        Some(path) => {
            let found = pipeline_file(path, file);
            let text = std::fs::read_to_string(&found).map_err(|e| {
                err(
                    file,
                    "pipeline",
                    format!(
                        "cannot read pipeline {path}: {e} (looked in the current folder, beside \
                         the experiment and in the pipelines/ folder next to its experiments/)"
                    ),
                )
            })?;
            let mut v: Value = crate::config::parse_yaml(&found, &text)?;
            if let (Value::Mapping(m), Some(stem)) = (&mut v, Path::new(path).file_stem()) {
                m.entry("name".into())
                    .or_insert_with(|| Value::String(stem.to_string_lossy().into_owned()));
            }
            v
        }
        None => Value::Mapping(Mapping::new()),
    };
    merge(&mut full, Value::Mapping(overrides));
    *p = full;
    Ok(())
}

/// `protocol: {kind: folds, file: F}` → the test speakers of F (`folds: [[speaker, …], …]`),
/// read relative to the experiment file (or as given, when that is where it lies), written
/// into the tree as `test_speakers` so a run's `config.yaml` holds its folds.
fn resolve_fold_file(tree: &mut Value, file: &Path) -> Result<(), ConfigError> {
    let Some(Value::Mapping(p)) = tree.get_mut("protocol") else {
        return Ok(());
    };
    let Some(Value::String(name)) = p.get("file").cloned() else {
        return Ok(());
    };
    // A run's config.yaml holds the speakers already.
    if p.get("test_speakers")
        .is_some_and(|t| t.as_sequence().is_some_and(|s| !s.is_empty()))
    {
        return Ok(());
    }
    let beside = file.parent().unwrap_or(Path::new(".")).join(&name);
    let path = if beside.exists() || !Path::new(&name).exists() {
        beside
    } else {
        PathBuf::from(&name)
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        err(
            file,
            "protocol.file",
            format!("cannot read fold file {}: {e}", path.display()),
        )
    })?;
    #[derive(serde::Deserialize)]
    struct FoldFile {
        folds: Vec<Vec<serde_yaml::Value>>,
        #[serde(default)]
        #[allow(dead_code)]
        source: Option<String>,
    }
    let f: FoldFile = crate::config::parse_yaml(&path, &text)?;
    let speakers: Vec<Value> = f
        .folds
        .into_iter()
        .map(|fold| {
            Value::Sequence(
                fold.into_iter()
                    .map(|v| match v {
                        Value::String(s) => Value::String(s),
                        other => Value::String(
                            serde_yaml::to_string(&other)
                                .unwrap_or_default()
                                .trim()
                                .to_string(),
                        ),
                    })
                    .collect(),
            )
        })
        .collect();
    p.insert("test_speakers".into(), Value::Sequence(speakers));
    Ok(())
}

/// `model: {preset: x, …}` → the preset's full tree with the overrides; returns the model name.
fn resolve_model(tree: &mut Value, file: &Path) -> Result<String, ConfigError> {
    let Some(Value::Mapping(m)) = tree.get_mut("model") else {
        return Err(err(
            file,
            "model",
            format!(
                "missing: a mapping with `preset` ({}) or `family`",
                ModelSpec::all_presets().join(", ")
            ),
        ));
    };
    let mut m = m.clone();
    let preset = match m.remove("preset") {
        None => None,
        Some(Value::String(p)) => Some(p),
        Some(_) => return Err(err(file, "model.preset", "must be a preset name")),
    };
    let name = match &preset {
        Some(p) => {
            let spec = ModelSpec::preset(p).ok_or_else(|| {
                let best = ModelSpec::all_presets()
                    .into_iter()
                    .min_by_key(|c| edit_distance(p, c))
                    .expect("presets");
                ConfigError {
                    file: file.to_path_buf(),
                    key: Some("model.preset".into()),
                    message: format!(
                        "unknown preset `{p}`, expected one of {}",
                        ModelSpec::all_presets().join(", ")
                    ),
                    hint: Some(format!("did you mean `{best}`?")),
                }
            })?;
            let mut full = serde_yaml::to_value(&spec).expect("serialisable");
            if let Some(f) = m.get("family") {
                if Some(f) != full.get("family") {
                    return Err(err(
                        file,
                        "model.family",
                        format!("preset `{p}` is family {:?}", spec.family()),
                    ));
                }
            }
            merge(&mut full, Value::Mapping(m));
            tree["model"] = full;
            p.clone()
        }
        None => {
            let fam = m
                .get("family")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| err(file, "model", "give `preset` or `family`"))?;
            tree["model"] = Value::Mapping(m);
            fam
        }
    };
    Ok(name)
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
            cache: raw.cache.unwrap_or_else(crate::doctor::cache_dir),
            results: raw.results.unwrap_or_else(crate::doctor::results_dir),
            resolved: tree,
        })
    }

    /// An error about this experiment's `key`.
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

fn prefix_key(mut e: ConfigError, prefix: &str) -> ConfigError {
    e.key = Some(match e.key {
        Some(k) => format!("{prefix}.{k}"),
        None => prefix.to_string(),
    });
    e
}

fn check_protocol(p: &Protocol, file: &Path) -> Result<(), ConfigError> {
    let frac = |key: &str, v: f64, hi: f64| {
        if (0.0..hi).contains(&v) {
            Ok(())
        } else {
            Err(err(
                file,
                &format!("protocol.{key}"),
                format!("{v} is not in [0, {hi})"),
            ))
        }
    };
    match p {
        Protocol::SpeakerKfold { k, val_fraction } => {
            if *k < 2 {
                return Err(err(file, "protocol.k", "k must be at least 2"));
            }
            frac("val_fraction", *val_fraction, 1.0)
        }
        Protocol::Loso { val_fraction } | Protocol::Folds { val_fraction, .. } => {
            frac("val_fraction", *val_fraction, 1.0)
        }
        Protocol::SpeakerHoldout {
            test_fraction,
            val_fraction,
        }
        | Protocol::Random {
            test_fraction,
            val_fraction,
            ..
        } => {
            frac("test_fraction", *test_fraction, 1.0)?;
            if *test_fraction == 0.0 {
                return Err(err(file, "protocol.test_fraction", "must be above 0"));
            }
            frac("val_fraction", *val_fraction, 1.0 - test_fraction)
        }
    }
}

fn check_sweep(s: &SweepSpec, tree: &Value, file: &Path) -> Result<(), ConfigError> {
    if s.params.is_empty() {
        return Err(err(file, "sweep.params", "name at least one key to sweep"));
    }
    for (k, v) in &s.params {
        let key = format!("sweep.params.{k}");
        let mut node = tree;
        for part in k.split('.') {
            node = node.get(part).ok_or_else(|| {
                err(
                    file,
                    &key,
                    format!("`{k}` is not a key of this experiment (e.g. model.dropout, train.lr)"),
                )
            })?;
        }
        match v {
            SweepValues::List(xs) if xs.is_empty() => {
                return Err(err(file, &key, "give at least one value"))
            }
            SweepValues::Dist(Distribution::LogUniform([lo, hi])) if !(*lo > 0.0 && lo < hi) => {
                return Err(err(file, &key, "log_uniform needs 0 < lo < hi"))
            }
            SweepValues::Dist(Distribution::Uniform([lo, hi])) if lo >= hi => {
                return Err(err(file, &key, "uniform needs lo < hi"))
            }
            SweepValues::Dist(_) if s.budget.is_none() => {
                return Err(err(
                    file,
                    "sweep.budget",
                    "a distribution needs a budget (the number of random trials)",
                ))
            }
            _ => {}
        }
    }
    if s.budget == Some(0) {
        return Err(err(file, "sweep.budget", "must be at least 1"));
    }
    Ok(())
}
