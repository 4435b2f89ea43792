//! The report's tables, built with Polars from the loaded runs: one row per run, then the
//! leaderboard (group-by over folds × seeds), per-class F1 (a pivot), summed confusion matrices,
//! mean learning curves (lazy scans of every `history.parquet`), sweep trials and parameter
//! marginals (joins), UA by speaker sex (a pivot), and the leakage panel (a join of speaker-leaky
//! entries with the same model's speaker-independent one).
//!
//! An "entry" is one system the report compares: an experiment × model × sweep trial. Means and
//! standard deviations (n − 1) are over the entry's runs (folds × seeds).

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

mod breakdowns;
mod columns;

use breakdowns::*;
pub use columns::*;

use super::load::{self, Loaded};
use super::{Result, TableContext};

/// Every table of the report.
#[derive(Debug, Clone)]
pub struct Tables {
    /// One row per complete run.
    pub runs: DataFrame,
    /// One row per entry, speaker-independent emotion results first, then by mean UA.
    pub leaderboard: DataFrame,
    /// Per-class precision / recall / F1 per entry (long).
    pub per_class: DataFrame,
    /// Mean per-class F1: one row per entry, one column per class (pivot of `per_class`).
    pub per_class_f1: DataFrame,
    /// Confusion counts summed over an entry's runs, with the row-normalised share.
    pub confusion: DataFrame,
    /// Mean train/val loss and UA per entry and epoch.
    pub curves: DataFrame,
    /// One row per sweep trial.
    pub sweep_trials: DataFrame,
    /// Mean validation and test UA per sweep parameter value (over the trials having it).
    pub sweep_params: DataFrame,
    /// UA per entry and speaker sex (long).
    pub by_sex: DataFrame,
    /// Mean UA per entry, one column per sex (pivot of `by_sex`).
    pub by_sex_ua: DataFrame,
    /// Entries of models that have speaker-leaky runs, with the gap to the same model's
    /// speaker-independent entry.
    pub leakage: DataFrame,
    /// Permutation importance per entry and feature: mean UA drop over the runs that measured
    /// it, its standard deviation over those runs, and their count.
    pub importance: DataFrame,
    /// Missing, running, failed and incomplete runs.
    pub issues: DataFrame,
    /// UA per entry and test speaker (worst first within an entry).
    pub per_speaker: DataFrame,
    /// Calibration per entry: ECE / NLL before and after temperature scaling, UA at coverages.
    pub calibration: DataFrame,
    /// Reliability bins per entry (temperature-scaled probabilities, pooled over runs).
    pub reliability: DataFrame,
    /// Embedding-map scores per run: silhouettes by emotion and by speaker, PCA shares.
    pub embedding_scores: DataFrame,
    /// The 2-D PCA map of one run per focus entry.
    pub embedding_points: DataFrame,
    /// Entries shown in detail (confusion, curves, paired comparisons): every entry that is not
    /// a sweep trial, plus each sweep's selected trial; leaderboard order.
    pub focus: Vec<String>,
}

/// What the leaderboard notes about an entry without flagging it: a transductive entry uses the
/// test speakers' unlabelled audio (per-speaker normalisation), which is still speaker-
/// independent in its labels but must be reported as such.
pub const TRANSDUCTIVE_NOTE: &str =
    "transductive: per-speaker normalisation uses the test speakers' audio (never their labels)";

/// The flags that make an entry's figure not a speaker-independent emotion result.
pub fn flags(speaker_leaky: bool, test_as_val: bool, target: &str) -> Vec<String> {
    let mut f = Vec::new();
    if speaker_leaky {
        f.push("speaker-leaky".to_string());
    }
    if test_as_val {
        f.push("test used for validation".to_string());
    }
    if target != "emotion" {
        f.push(format!("target: {target}"));
    }
    f
}

impl Tables {
    pub fn build(loaded: &Loaded) -> Result<Tables> {
        let runs = runs_frame(loaded)?;
        let leaderboard = leaderboard(&runs, loaded)?;
        let (per_class, per_class_f1) = per_class(loaded, &leaderboard)?;
        let confusion = confusion(loaded)?;
        let curves = curves(loaded)?;
        let (sweep_trials, sweep_params) = sweeps(loaded, &runs)?;
        let (by_sex, by_sex_ua) = by_sex(loaded, &leaderboard)?;
        let leakage = leakage(&leaderboard)?;
        let issues = issues(loaded)?;
        let importance = importance(loaded)?;
        let focus = focus(&leaderboard, &sweep_trials)?;
        let predictions = super::analyses::predictions(loaded);
        let per_speaker = super::analyses::per_speaker(&predictions)?;
        let (calibration, reliability) = super::analyses::calibration(&predictions)?;
        let (embedding_scores, embedding_points) = super::analyses::embeddings(loaded, &focus)?;
        Ok(Tables {
            embedding_scores,
            embedding_points,
            per_speaker,
            calibration,
            reliability,
            runs,
            leaderboard,
            per_class,
            per_class_f1,
            confusion,
            curves,
            sweep_trials,
            sweep_params,
            by_sex,
            by_sex_ua,
            leakage,
            importance,
            issues,
            focus,
        })
    }

    /// The tables written as CSV and Parquet, by file name.
    pub fn exports(&self, paired: &DataFrame) -> Result<Vec<(&'static str, DataFrame)>> {
        Ok(vec![
            ("leaderboard", self.leaderboard.clone()),
            ("runs", self.runs.clone()),
            ("per_class", self.per_class.clone()),
            ("per_class_f1", self.per_class_f1.clone()),
            ("confusion", self.confusion.clone()),
            ("learning_curves", self.curves.clone()),
            ("sweep_trials", self.sweep_trials.clone()),
            ("sweep_params", self.sweep_params.clone()),
            ("by_sex", self.by_sex.clone()),
            ("by_sex_ua", self.by_sex_ua.clone()),
            ("leakage", self.leakage.clone()),
            ("paired", paired.clone()),
            ("importance", self.importance.clone()),
            ("issues", self.issues.clone()),
            ("per_speaker", self.per_speaker.clone()),
            ("calibration", self.calibration.clone()),
            ("reliability", self.reliability.clone()),
            ("embedding_scores", self.embedding_scores.clone()),
            ("embedding_map", self.embedding_points.clone()),
        ])
    }
}

pub(super) fn params_label(params: &BTreeMap<String, serde_json::Value>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", json_scalar(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A JSON value as a person writes it (`0.001`, `true`, `cnn_v1`).
pub fn json_scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn runs_frame(loaded: &Loaded) -> Result<DataFrame> {
    let r = &loaded.runs;
    let s = |f: &dyn Fn(&load::Run) -> String| r.iter().map(f).collect::<Vec<String>>();
    let x = |f: &dyn Fn(&load::Run) -> f64| r.iter().map(f).collect::<Vec<f64>>();
    let b = |f: &dyn Fn(&load::Run) -> bool| r.iter().map(f).collect::<Vec<bool>>();
    let u = |f: &dyn Fn(&load::Run) -> u64| r.iter().map(f).collect::<Vec<u64>>();
    let df = DataFrame::new(vec![
        Column::new("experiment".into(), s(&|r| r.experiment.clone())),
        Column::new("run".into(), s(&|r| r.run.clone())),
        Column::new("entry".into(), s(&|r| r.entry())),
        Column::new("model".into(), s(&|r| r.meta.model.clone())),
        Column::new("family".into(), s(&|r| r.meta.family.clone())),
        Column::new(
            "trial".into(),
            r.iter().map(|r| r.meta.trial.clone()).collect::<Vec<_>>(),
        ),
        Column::new("params".into(), s(&|r| params_label(&r.meta.params))),
        Column::new("protocol".into(), s(&|r| r.meta.protocol.clone())),
        Column::new("speaker_leaky".into(), b(&|r| r.meta.speaker_leaky)),
        Column::new("test_as_val".into(), b(&|r| r.meta.test_as_val)),
        Column::new("transductive".into(), b(&|r| r.meta.transductive)),
        Column::new(
            "duplicates_dropped".into(),
            u(&|r| r.meta.duplicates_dropped as u64),
        ),
        Column::new(
            "duplicates_cross_speaker".into(),
            u(&|r| r.meta.duplicates_cross_speaker as u64),
        ),
        Column::new("target".into(), s(&|r| r.meta.target.clone())),
        Column::new("corpus".into(), s(&|r| r.meta.corpus.clone())),
        Column::new("crema_d".into(), b(&load::is_crema_d)),
        Column::new("synthetic".into(), b(&load::is_synthetic)),
        Column::new("pipeline".into(), s(&|r| r.meta.pipeline.clone())),
        Column::new("fold".into(), u(&|r| r.meta.fold as u64)),
        Column::new("seed".into(), u(&|r| r.meta.seed)),
        Column::new("split_seed".into(), u(&|r| r.meta.split_seed)),
        Column::new("n_classes".into(), u(&|r| r.meta.classes.len() as u64)),
        Column::new("classes".into(), s(&|r| r.meta.classes.join(","))),
        Column::new("n_train".into(), u(&|r| r.meta.n_train as u64)),
        Column::new("n_val".into(), u(&|r| r.meta.n_val as u64)),
        Column::new("n_test".into(), u(&|r| r.meta.n_test as u64)),
        Column::new(
            "parameters".into(),
            r.iter().map(|r| r.meta.parameters).collect::<Vec<i64>>(),
        ),
        Column::new(
            "model_size".into(),
            s(&|r| {
                r.meta
                    .classical
                    .map(|c| c.model.short())
                    .unwrap_or_default()
            }),
        ),
        Column::new(
            "fit_seconds".into(),
            r.iter()
                .map(|r| {
                    r.meta
                        .classical
                        .map(|c| c.fit_seconds + c.importance_seconds + c.refit_seconds)
                })
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new("device".into(), s(&|r| r.meta.device.clone())),
        Column::new("precision".into(), s(&|r| r.meta.precision.clone())),
        Column::new("epochs_run".into(), u(&|r| r.meta.epochs_run as u64)),
        Column::new("best_epoch".into(), u(&|r| r.metrics.best_epoch as u64)),
        Column::new(
            "train_seconds_per_epoch".into(),
            r.iter()
                .map(|r| r.meta.train_seconds_per_epoch)
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new(
            "seconds".into(),
            r.iter()
                .map(|r| r.meta.seconds)
                .collect::<Vec<Option<f64>>>(),
        ),
        Column::new("ua".into(), x(&|r| r.metrics.test.ua)),
        Column::new("wa".into(), x(&|r| r.metrics.test.wa)),
        Column::new("macro_f1".into(), x(&|r| r.metrics.test.macro_f1)),
        Column::new("val_ua".into(), x(&|r| r.metrics.val_ua)),
    ])
    .table("runs")?;
    Ok(df)
}

fn leaderboard(runs: &DataFrame, loaded: &Loaded) -> Result<DataFrame> {
    let mut devices: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut encoders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &loaded.runs {
        devices
            .entry(r.entry())
            .or_default()
            .insert(r.meta.device.clone());
        if let Some(e) = &r.meta.encoder {
            encoders.entry(r.entry()).or_default().insert(e.line());
        }
    }
    let lb = runs
        .clone()
        .lazy()
        .group_by_stable([col("entry")])
        .agg([
            col("experiment").first(),
            col("model").first(),
            col("trial").first(),
            col("params").first(),
            col("protocol").first(),
            col("target").first(),
            col("corpus").first(),
            col("n_classes").first(),
            len().alias("runs"),
            col("fold").n_unique().alias("folds"),
            col("seed").n_unique().alias("seeds"),
            col("ua").mean().alias("ua_mean"),
            col("ua").std(1).alias("ua_std"),
            col("wa").mean().alias("wa_mean"),
            col("wa").std(1).alias("wa_std"),
            col("macro_f1").mean().alias("macro_f1_mean"),
            col("macro_f1").std(1).alias("macro_f1_std"),
            col("val_ua").mean().alias("val_ua_mean"),
            col("family").first().alias("family"),
            col("parameters").max().alias("parameters"),
            col("model_size").first().alias("model_size"),
            col("fit_seconds").mean().alias("fit_seconds"),
            col("train_seconds_per_epoch")
                .mean()
                .alias("train_seconds_per_epoch"),
            col("speaker_leaky").any(true).alias("speaker_leaky"),
            col("test_as_val").any(true).alias("test_as_val"),
            col("transductive").any(true).alias("transductive"),
            col("duplicates_dropped").max().alias("duplicates_dropped"),
            col("duplicates_cross_speaker")
                .max()
                .alias("duplicates_cross_speaker"),
            col("crema_d").all(true).alias("crema_d"),
            col("synthetic").any(true).alias("synthetic"),
        ])
        .with_columns([
            (lit(1.0) / col("n_classes").cast(DataType::Float64)).alias("chance"),
            (col("speaker_leaky")
                .or(col("test_as_val"))
                .or(col("target").neq(lit("emotion"))))
            .alias("flagged"),
        ])
        .sort(
            ["flagged", "ua_mean"],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, true])
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .collect()
        .table("leaderboard")?;
    let entries = str_col(&lb, "entry")?;
    let leaky = bool_col(&lb, "speaker_leaky")?;
    let tav = bool_col(&lb, "test_as_val")?;
    let trans = bool_col(&lb, "transductive")?;
    let target = str_col(&lb, "target")?;
    let device: Vec<String> = entries
        .iter()
        .map(|e| {
            devices
                .get(e)
                .map(|d| d.iter().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        })
        .collect();
    let warnings: Vec<String> = (0..lb.height())
        .map(|i| flags(leaky[i], tav[i], &target[i]).join("; "))
        .collect();
    let dropped = u64_col(&lb, "duplicates_dropped")?;
    let cross = u64_col(&lb, "duplicates_cross_speaker")?;
    let notes: Vec<String> = (0..lb.height())
        .map(|i| {
            let mut n = Vec::new();
            if let Some(e) = encoders.get(&entries[i]) {
                n.push(format!(
                    "encoder: {}",
                    e.iter().cloned().collect::<Vec<_>>().join(" / ")
                ));
            }
            if trans[i] {
                n.push(TRANSDUCTIVE_NOTE.to_string());
            }
            if dropped[i] > 0 {
                n.push(format!(
                    "{} byte-identical extra copies left out before splitting ({} filed under two speakers)",
                    dropped[i], cross[i]
                ));
            }
            n.join("; ")
        })
        .collect();
    let mut lb = lb;
    lb.with_column(Column::new("device".into(), device))
        .table("leaderboard")?;
    lb.with_column(Column::new("warnings".into(), warnings))
        .table("leaderboard")?;
    lb.with_column(Column::new("notes".into(), notes))
        .table("leaderboard")?;
    Ok(lb)
}

/// Left-join `df` onto the leaderboard's entry order (entries missing from `df` are dropped).
pub(super) fn in_leaderboard_order(
    df: DataFrame,
    leaderboard: &DataFrame,
    name: &str,
) -> Result<DataFrame> {
    leaderboard
        .clone()
        .lazy()
        .select([col("entry")])
        .join(
            df.lazy(),
            [col("entry")],
            [col("entry")],
            JoinArgs {
                maintain_order: MaintainOrderJoin::Left,
                ..JoinArgs::new(JoinType::Inner)
            },
        )
        .collect()
        .table(name)
}

fn leakage(leaderboard: &DataFrame) -> Result<DataFrame> {
    let systems = leaderboard.clone().lazy().filter(col("trial").is_null());
    let key = [col("model"), col("corpus")];
    let leaky_models = systems
        .clone()
        .group_by(key.clone())
        .agg([col("speaker_leaky").any(true).alias("has_leaky")])
        .filter(col("has_leaky"));
    // The reference of each model × corpus × target: its best speaker-independent entry.
    let reference = systems
        .clone()
        .filter(col("speaker_leaky").not())
        .group_by_stable([col("model"), col("corpus"), col("target")])
        .agg([
            col("entry").first().alias("reference"),
            col("ua_mean").first().alias("reference_ua"),
        ]);
    let target_key = [col("model"), col("corpus"), col("target")];
    systems
        .join(
            leaky_models,
            key.clone(),
            key,
            JoinArgs {
                maintain_order: MaintainOrderJoin::Left,
                ..JoinArgs::new(JoinType::Inner)
            },
        )
        .join(
            reference,
            target_key.clone(),
            target_key,
            JoinArgs {
                maintain_order: MaintainOrderJoin::Left,
                ..JoinArgs::new(JoinType::Left)
            },
        )
        .with_column(
            when(col("speaker_leaky"))
                .then(col("ua_mean") - col("reference_ua"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("gap"),
        )
        .select([
            col("model"),
            col("corpus"),
            col("entry"),
            col("experiment"),
            col("protocol"),
            col("target"),
            col("n_classes"),
            col("chance"),
            col("runs"),
            col("ua_mean"),
            col("ua_std"),
            col("speaker_leaky"),
            col("test_as_val"),
            col("crema_d"),
            col("synthetic"),
            col("reference"),
            col("gap"),
        ])
        .sort(
            ["model", "corpus", "speaker_leaky", "target"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
        .table("leakage")
}

fn issues(loaded: &Loaded) -> Result<DataFrame> {
    let i = &loaded.issues;
    DataFrame::new(vec![
        Column::new(
            "experiment".into(),
            i.iter().map(|x| x.experiment.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "run".into(),
            i.iter().map(|x| x.run.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "status".into(),
            i.iter().map(|x| x.status.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "in_report".into(),
            i.iter().map(|x| x.included).collect::<Vec<_>>(),
        ),
        Column::new(
            "problem".into(),
            i.iter().map(|x| x.problem.clone()).collect::<Vec<_>>(),
        ),
    ])
    .table("issues")
}

fn focus(leaderboard: &DataFrame, sweep_trials: &DataFrame) -> Result<Vec<String>> {
    let selected: BTreeSet<String> = str_col(sweep_trials, "entry")?
        .into_iter()
        .zip(bool_col(sweep_trials, "selected")?)
        .filter(|(_, s)| *s)
        .map(|(e, _)| e)
        .collect();
    let entries = str_col(leaderboard, "entry")?;
    let trial = opt_str_col(leaderboard, "trial")?;
    Ok(entries
        .into_iter()
        .zip(trial)
        .filter(|(e, t)| t.is_none() || selected.contains(e))
        .map(|(e, _)| e)
        .collect())
}

// Column access for the renderers.
