//! Checks across fields of a parsed experiment: a fine-tuned encoder against its pipeline, the
//! protocol against the corpus, and a sweep's keys against the experiment tree.

use std::path::Path;

use serde_yaml::Value;

use super::{err, Distribution, SweepSpec, SweepValues};
use crate::config::ConfigError;
use crate::split::Protocol;

/// A `finetune` model: its encoder folder defaults to the pipeline's; the pipeline must cache the
/// frames of the hidden state its top layers start from, and features must stay as cached.
pub(super) fn check_finetune(
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

pub(super) fn prefix_key(mut e: ConfigError, prefix: &str) -> ConfigError {
    e.key = Some(match e.key {
        Some(k) => format!("{prefix}.{k}"),
        None => prefix.to_string(),
    });
    e
}

pub(super) fn check_protocol(p: &Protocol, file: &Path) -> Result<(), ConfigError> {
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

pub(super) fn check_sweep(s: &SweepSpec, tree: &Value, file: &Path) -> Result<(), ConfigError> {
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
