//! Named parts of an experiment resolved into its tree: the pipeline file (with overrides), a
//! fold file, and a model preset.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::err;
use crate::config::{closest, merge, ConfigError};
use crate::models::ModelSpec;

/// Where a pipeline file named in an experiment lies: as given (from the current folder), else
/// relative to the experiment's folder, else relative to the folder above it (a project's
/// `pipelines/` beside its `experiments/`), so an experiment runs from any folder.
pub(super) fn pipeline_file(path: &str, experiment: &Path) -> std::path::PathBuf {
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
pub(super) fn resolve_pipeline(tree: &mut Value, file: &Path) -> Result<(), ConfigError> {
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
pub(super) fn resolve_fold_file(tree: &mut Value, file: &Path) -> Result<(), ConfigError> {
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
pub(super) fn resolve_model(tree: &mut Value, file: &Path) -> Result<String, ConfigError> {
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
                let presets = ModelSpec::all_presets();
                let best = closest(p, presets.iter().copied(), usize::MAX).expect("presets");
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
