//! Fitting the classical models ([`crate::models::classical`]) on a fold, with the same inputs
//! and outputs as the network trainer: datasets from the cache, the same normalisation modes,
//! a validation UA, test metrics and probabilities, a model file in the run folder.
//!
//! Protocol: the model is fitted on the training clips and scored on the validation speakers
//! (the figure the history and the leaderboard's `val_ua` show); then, as scikit-learn's
//! `GridSearchCV(refit=True)` does, refitted on training + validation clips, and only that model
//! scores the test clips, once. Nothing is chosen on the test speakers.
//!
//! A classical model is saved as `model.json`: its spec, normaliser and the standardised
//! training vectors with their labels. Loading refits it on them (deterministic for a seed, and
//! well under a second for corpora of this size), so no solver state needs a file format.

use std::path::Path;
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::data::{Dataset, NormMode, Normalizer};
use super::{EpochStats, FitConfig, FitResult, TrainError};
use crate::metrics;
use crate::models::classical::{ClassicalSpec, Estimator};
use crate::results::ClassicalInfo;

/// A fitted classical model with what prediction needs.
#[derive(Debug)]
pub struct ClassicalTrained {
    pub spec: ClassicalSpec,
    pub class_names: Vec<String>,
    pub n_features: usize,
    pub norm: Normalizer,
    pub normalize: NormMode,
    pub estimator: Estimator,
    saved: SavedClassical,
    /// How the fit went (`None` for a model loaded from its file).
    pub info: Option<ClassicalInfo>,
}

/// The model fitted on the training clips alone, with the standardised validation vectors and
/// their labels: what permutation importance scores (the refitted model has seen these clips).
pub struct ValidationProbe {
    pub estimator: Estimator,
    pub x: Array2<f64>,
    pub labels: Vec<usize>,
}

/// What `model.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedClassical {
    spec: ClassicalSpec,
    class_names: Vec<String>,
    n_features: usize,
    norm_mean: Vec<f32>,
    norm_std: Vec<f32>,
    normalize: NormMode,
    class_weights: bool,
    seed: u64,
    /// Standardised training vectors and their labels.
    x: Vec<Vec<f32>>,
    y: Vec<usize>,
}

/// Standardised clip vectors of `ds` (one frame per clip), as `f64` rows.
fn vectors(ds: &Dataset, norm: &Normalizer) -> Result<Vec<Vec<f32>>, TrainError> {
    if let Some(i) = ds.lengths.iter().position(|&l| l != 1) {
        return Err(TrainError::Shape(format!(
            "classical models take one vector per clip (a `functionals` pipeline, or `frames: \
             {{mode: mean}}`); clip {i} has {} frames",
            ds.lengths[i]
        )));
    }
    Ok(ds
        .features
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let n = ds.clip_norm.as_ref().map_or(norm, |c| &c[i]);
            x.iter()
                .zip(n.mean.iter().zip(&n.std))
                .map(|(&v, (&m, &s))| (v - m) / s)
                .collect()
        })
        .collect())
}

fn matrix(rows: &[Vec<f32>]) -> Array2<f64> {
    let d = rows.first().map_or(0, |r| r.len());
    Array2::from_shape_fn((rows.len(), d), |(i, j)| rows[i][j] as f64)
}

fn nll(probs: &[Vec<f32>], labels: &[usize]) -> f64 {
    probs
        .iter()
        .zip(labels)
        .map(|(p, &y)| -(p[y].max(1e-7) as f64).ln())
        .sum::<f64>()
        / labels.len().max(1) as f64
}

/// Fit `spec` on `train`, report on `val`, refit on both and score `test` once. Also returns the
/// model fitted on `train` alone with the validation vectors, for permutation importance
/// ([`crate::importance`]).
pub fn fit(
    spec: &ClassicalSpec,
    class_names: &[String],
    train: &Dataset,
    val: &Dataset,
    test: &Dataset,
    cfg: &FitConfig,
) -> Result<(FitResult<ClassicalTrained>, ValidationProbe), TrainError> {
    if train.is_empty() || val.is_empty() || test.is_empty() {
        return Err(TrainError::Empty);
    }
    for other in [val, test] {
        if other.n_features != train.n_features {
            return Err(TrainError::Shape(format!(
                "training vectors have {} values, evaluation vectors {}",
                train.n_features, other.n_features
            )));
        }
    }
    if cfg.normalize == NormMode::Utterance {
        return Err(TrainError::Config(
            "normalize",
            "`utterance` standardises a clip over its own frames; a clip vector has one \
             (use per_mel, global or speaker)"
                .into(),
        ));
    }
    let started = Instant::now();
    let k = class_names.len();
    let (train, val, test) = (
        super::with_norm(train, cfg.normalize)?,
        super::with_norm(val, cfg.normalize)?,
        super::with_norm(test, cfg.normalize)?,
    );
    let norm = match cfg.normalize {
        NormMode::Speaker | NormMode::Utterance | NormMode::None => {
            Normalizer::identity(train.n_features)
        }
        mode => Normalizer::fit(&train, mode),
    };
    let (xt, xv, xs) = (
        vectors(&train, &norm)?,
        vectors(&val, &norm)?,
        vectors(&test, &norm)?,
    );
    let fit_err =
        |e: crate::models::classical::ClassicalError| TrainError::Config("model", e.to_string());
    let first = spec
        .fit(&matrix(&xt), &train.labels, k, cfg.class_weights, cfg.seed)
        .map_err(fit_err)?;
    let score = |m: &Estimator, x: &[Vec<f32>], y: &[usize]| {
        let (p, pred) = m.predict(&matrix(x));
        let mt = metrics::compute(y, &pred, class_names);
        (p, pred, mt)
    };
    let (tp, _, tm) = score(&first, &xt, &train.labels);
    let (vp, _, vm) = score(&first, &xv, &val.labels);
    let train_seconds = started.elapsed().as_secs_f64();
    // Refit on training + validation clips; only this model sees the test clips.
    let timer = Instant::now();
    let probe = ValidationProbe {
        estimator: first,
        x: matrix(&xv),
        labels: val.labels.clone(),
    };
    let mut x_all = xt;
    x_all.extend(xv);
    let mut y_all = train.labels.clone();
    y_all.extend(&val.labels);
    let model = spec
        .fit(&matrix(&x_all), &y_all, k, cfg.class_weights, cfg.seed)
        .map_err(fit_err)?;
    let (test_probs, test_pred, test_metrics) = score(&model, &xs, &test.labels);
    let info = ClassicalInfo {
        model: model.describe(),
        fit_seconds: train_seconds,
        importance_seconds: 0.0,
        refit_seconds: timer.elapsed().as_secs_f64(),
    };
    let history = vec![EpochStats {
        epoch: 1,
        train_loss: nll(&tp, &train.labels),
        train_ua: tm.ua,
        train_wa: tm.wa,
        val_loss: nll(&vp, &val.labels),
        val_ua: vm.ua,
        val_wa: vm.wa,
        lr: 0.0,
        train_seconds,
        epoch_seconds: started.elapsed().as_secs_f64(),
    }];
    let saved = SavedClassical {
        spec: spec.clone(),
        class_names: class_names.to_vec(),
        n_features: train.n_features,
        norm_mean: norm.mean.clone(),
        norm_std: norm.std.clone(),
        normalize: cfg.normalize,
        class_weights: cfg.class_weights,
        seed: cfg.seed,
        x: x_all,
        y: y_all,
    };
    let t = crate::calibration::fit_temperature(&vp, &val.labels);
    Ok((
        FitResult {
            best_epoch: 1,
            history,
            test: test_metrics,
            test_pred,
            test_probs,
            val_probs: vp.clone(),
            // Fitted on the validation speakers' probabilities from the model fitted on the
            // training speakers (the refitted model has seen the validation clips).
            temperature: t,
            abstain_entropy: crate::calibration::entropy_threshold(
                &crate::calibration::scale_all(&vp, t),
                crate::calibration::ABSTAIN_COVERAGE,
            ),
            importance: None,
            model: ClassicalTrained {
                spec: spec.clone(),
                class_names: class_names.to_vec(),
                n_features: train.n_features,
                norm,
                normalize: cfg.normalize,
                estimator: model,
                saved,
                info: Some(info),
            },
        },
        probe,
    ))
}

impl ClassicalTrained {
    /// Write `model.json` atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let text = serde_json::to_vec(&self.saved).map_err(|e| TrainError::ModelFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        crate::util::atomic_write_bytes(path, &text).map_err(|e| TrainError::ModelFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Read `model.json` and refit the model on the vectors it holds.
    pub fn load(path: &Path) -> Result<ClassicalTrained, TrainError> {
        let err = |message: String| TrainError::ModelFile {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let saved: SavedClassical =
            serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
        if saved.x.iter().any(|r| r.len() != saved.n_features)
            || saved.x.len() != saved.y.len()
            || saved.y.iter().any(|&c| c >= saved.class_names.len())
        {
            return Err(err("training vectors and labels do not agree".into()));
        }
        let estimator = saved
            .spec
            .fit(
                &matrix(&saved.x),
                &saved.y,
                saved.class_names.len(),
                saved.class_weights,
                saved.seed,
            )
            .map_err(|e| err(e.to_string()))?;
        Ok(ClassicalTrained {
            spec: saved.spec.clone(),
            class_names: saved.class_names.clone(),
            n_features: saved.n_features,
            norm: Normalizer {
                mean: saved.norm_mean.clone(),
                std: saved.norm_std.clone(),
            },
            normalize: saved.normalize,
            estimator,
            saved,
            info: None,
        })
    }

    /// Class probabilities and predicted classes of every clip of `ds` (an SVM's are its
    /// pairwise votes; labels are ignored; `speaker` normalisation groups the clips of `ds` by
    /// speaker when they carry no statistics).
    pub fn predict(&self, ds: &Dataset) -> Result<(Vec<Vec<f32>>, Vec<usize>), TrainError> {
        if ds.n_features != self.n_features {
            return Err(TrainError::Shape(format!(
                "the model takes {} values per clip, these clips have {}",
                self.n_features, ds.n_features
            )));
        }
        if ds.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let ds = super::with_norm(ds, self.normalize)?;
        Ok(self.estimator.predict(&matrix(&vectors(&ds, &self.norm)?)))
    }
}
