//! The report's tables, built with Polars from the loaded runs: one row per run, then the
//! leaderboard (group-by over folds × seeds), per-class F1 (a pivot), summed confusion matrices,
//! mean learning curves (lazy scans of every `history.parquet`), sweep trials and parameter
//! marginals (joins), UA by speaker sex (a pivot), and the leakage panel (a join of speaker-leaky
//! entries with the same model's speaker-independent one).
//!
//! An "entry" is one system the report compares: an experiment × model × sweep trial. Means and
//! standard deviations (n − 1) are over the entry's runs (folds × seeds).

use std::collections::{BTreeMap, BTreeSet};

use polars::lazy::frame::pivot::pivot_stable;
use polars::prelude::*;

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

fn params_label(params: &BTreeMap<String, serde_json::Value>) -> String {
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
fn in_leaderboard_order(df: DataFrame, leaderboard: &DataFrame, name: &str) -> Result<DataFrame> {
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

fn per_class(loaded: &Loaded, leaderboard: &DataFrame) -> Result<(DataFrame, DataFrame)> {
    let (mut entry, mut run, mut label) = (Vec::new(), Vec::new(), Vec::new());
    let (mut p, mut r, mut f, mut support) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for x in &loaded.runs {
        for c in &x.metrics.test.per_class {
            entry.push(x.entry());
            run.push(x.run.clone());
            label.push(c.label.clone());
            p.push(c.precision);
            r.push(c.recall);
            f.push(c.f1);
            support.push(c.support);
        }
    }
    let long = DataFrame::new(vec![
        Column::new("entry".into(), entry),
        Column::new("run".into(), run),
        Column::new("label".into(), label),
        Column::new("precision".into(), p),
        Column::new("recall".into(), r),
        Column::new("f1".into(), f),
        Column::new("support".into(), support),
    ])
    .table("per_class")?;
    let agg = long
        .lazy()
        .group_by_stable([col("entry"), col("label")])
        .agg([
            len().alias("runs"),
            col("precision").mean().alias("precision_mean"),
            col("recall").mean().alias("recall_mean"),
            col("f1").mean().alias("f1_mean"),
            col("f1").std(1).alias("f1_std"),
            col("support").sum().alias("support"),
        ])
        .collect()
        .table("per_class")?;
    if agg.height() == 0 {
        let empty = DataFrame::new(vec![Column::new_empty("entry".into(), &DataType::String)])
            .table("per_class_f1")?;
        return Ok((agg, empty));
    }
    let wide = pivot_stable(
        &agg,
        ["label"],
        Some(["entry"]),
        Some(["f1_mean"]),
        false,
        None,
        None,
    )
    .table("per_class_f1")?;
    let wide = in_leaderboard_order(wide, leaderboard, "per_class_f1")?;
    Ok((agg, wide))
}

fn confusion(loaded: &Loaded) -> Result<DataFrame> {
    let (mut entry, mut truth, mut pred, mut count) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for x in &loaded.runs {
        let m = &x.metrics.test;
        for (i, row) in m.confusion.iter().enumerate() {
            for (j, &c) in row.iter().enumerate() {
                entry.push(x.entry());
                truth.push(m.labels.get(i).cloned().unwrap_or_default());
                pred.push(m.labels.get(j).cloned().unwrap_or_default());
                count.push(c);
            }
        }
    }
    let long = DataFrame::new(vec![
        Column::new("entry".into(), entry),
        Column::new("truth".into(), truth),
        Column::new("prediction".into(), pred),
        Column::new("count".into(), count),
    ])
    .table("confusion")?
    .lazy()
    .group_by_stable([col("entry"), col("truth"), col("prediction")])
    .agg([col("count").sum()]);
    let row_totals = long
        .clone()
        .group_by([col("entry"), col("truth")])
        .agg([col("count").sum().alias("row_total")]);
    long.join(
        row_totals,
        [col("entry"), col("truth")],
        [col("entry"), col("truth")],
        JoinArgs {
            maintain_order: MaintainOrderJoin::Left,
            ..JoinArgs::new(JoinType::Left)
        },
    )
    .with_column(
        when(col("row_total").gt(lit(0)))
            .then(col("count").cast(DataType::Float64) / col("row_total").cast(DataType::Float64))
            .otherwise(lit(0.0))
            .alias("row_share"),
    )
    .collect()
    .table("confusion")
}

/// Lazy scans of one Parquet file per run (`file` picks it; runs without it are skipped), with
/// the `select` columns and the run's `entry`. A file that does not read as that schema (a
/// truncated write, a foreign file) is left out rather than failing the whole table.
fn scan_runs(
    loaded: &Loaded,
    file: impl Fn(&super::load::Run) -> Option<&std::path::PathBuf>,
    select: impl Fn() -> Vec<Expr>,
) -> Vec<LazyFrame> {
    let mut scans = Vec::new();
    for r in &loaded.runs {
        let Some(path) = file(r) else { continue };
        let Ok(lf) = LazyFrame::scan_parquet(
            PlPath::Local(path.as_path().into()),
            ScanArgsParquet::default(),
        ) else {
            continue;
        };
        let lf = lf
            .select(select())
            .with_column(lit(r.entry()).alias("entry"));
        if lf.clone().limit(1).collect().is_err() {
            continue;
        }
        scans.push(lf);
    }
    scans
}

fn curves(loaded: &Loaded) -> Result<DataFrame> {
    let scans = scan_runs(
        loaded,
        |r| r.history.as_ref(),
        || {
            vec![
                col("epoch").cast(DataType::UInt32),
                col("train_loss").cast(DataType::Float64),
                col("val_loss").cast(DataType::Float64),
                col("train_ua").cast(DataType::Float64),
                col("val_ua").cast(DataType::Float64),
            ]
        },
    );
    if scans.is_empty() {
        return DataFrame::new(vec![
            Column::new_empty("entry".into(), &DataType::String),
            Column::new_empty("epoch".into(), &DataType::UInt32),
            Column::new_empty("runs".into(), &DataType::UInt32),
            Column::new_empty("train_loss".into(), &DataType::Float64),
            Column::new_empty("val_loss".into(), &DataType::Float64),
            Column::new_empty("train_ua".into(), &DataType::Float64),
            Column::new_empty("val_ua".into(), &DataType::Float64),
        ])
        .table("learning_curves");
    }
    concat(scans, UnionArgs::default())
        .table("learning_curves")?
        .group_by_stable([col("entry"), col("epoch")])
        .agg([
            len().alias("runs"),
            col("train_loss").mean(),
            col("val_loss").mean(),
            col("train_ua").mean(),
            col("val_ua").mean(),
        ])
        .sort(
            ["entry", "epoch"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
        .table("learning_curves")
}

fn importance(loaded: &Loaded) -> Result<DataFrame> {
    let scans = scan_runs(
        loaded,
        |r| r.importance.as_ref(),
        || {
            vec![
                col("feature").cast(DataType::String),
                col("importance").cast(DataType::Float64),
            ]
        },
    );
    if scans.is_empty() {
        return DataFrame::new(vec![
            Column::new_empty("entry".into(), &DataType::String),
            Column::new_empty("feature".into(), &DataType::String),
            Column::new_empty("runs".into(), &DataType::UInt32),
            Column::new_empty("importance".into(), &DataType::Float64),
            Column::new_empty("importance_std".into(), &DataType::Float64),
        ])
        .table("importance");
    }
    concat(scans, UnionArgs::default())
        .table("importance")?
        .group_by_stable([col("entry"), col("feature")])
        .agg([
            len().alias("runs"),
            col("importance").mean().alias("importance_mean"),
            col("importance").std(1).alias("importance_std"),
        ])
        .rename(["importance_mean"], ["importance"], true)
        .sort(
            ["entry", "importance"],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, true])
                .with_maintain_order(true),
        )
        .collect()
        .table("importance")
}

fn sweeps(loaded: &Loaded, runs: &DataFrame) -> Result<(DataFrame, DataFrame)> {
    let trials = runs
        .clone()
        .lazy()
        .filter(col("trial").is_not_null())
        .group_by_stable([col("experiment"), col("trial")])
        .agg([
            col("entry").first(),
            col("model").first(),
            col("params").first(),
            len().alias("runs"),
            col("val_ua").mean().alias("val_ua"),
            col("ua").mean().alias("test_ua"),
            col("wa").mean().alias("test_wa"),
            col("macro_f1").mean().alias("test_macro_f1"),
        ])
        .sort(
            ["experiment", "val_ua"],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, true])
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .collect()
        .table("sweep_trials")?;
    // The selected trial of each sweep: the best mean validation UA (the first on ties).
    let exps = str_col(&trials, "experiment")?;
    let selected: Vec<bool> = (0..trials.height())
        .map(|i| i == 0 || exps[i] != exps[i - 1])
        .collect();
    let mut trials = trials;
    trials
        .with_column(Column::new("selected".into(), selected))
        .table("sweep_trials")?;

    let mut seen = BTreeSet::new();
    let (mut exp, mut trial, mut key, mut value) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in &loaded.runs {
        let Some(t) = &r.meta.trial else { continue };
        for (k, v) in &r.meta.params {
            let v = json_scalar(v);
            if seen.insert((r.experiment.clone(), t.clone(), k.clone(), v.clone())) {
                exp.push(r.experiment.clone());
                trial.push(t.clone());
                key.push(k.clone());
                value.push(v);
            }
        }
    }
    let params = DataFrame::new(vec![
        Column::new("experiment".into(), exp),
        Column::new("trial".into(), trial),
        Column::new("parameter".into(), key),
        Column::new("value".into(), value),
    ])
    .table("sweep_params")?;
    let marginal = params
        .lazy()
        .join(
            trials.clone().lazy(),
            [col("experiment"), col("trial")],
            [col("experiment"), col("trial")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("experiment"), col("parameter"), col("value")])
        .agg([
            len().alias("trials"),
            col("val_ua").mean().alias("val_ua"),
            col("test_ua").mean().alias("test_ua"),
            col("val_ua").max().alias("best_val_ua"),
        ])
        .with_column(col("value").cast(DataType::Float64).alias("value_number"))
        .sort(
            ["experiment", "parameter", "value_number", "value"],
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .collect()
        .table("sweep_params")?;
    Ok((trials, marginal))
}

fn by_sex(loaded: &Loaded, leaderboard: &DataFrame) -> Result<(DataFrame, DataFrame)> {
    let (mut entry, mut run, mut sex) = (Vec::new(), Vec::new(), Vec::new());
    let (mut n, mut ua, mut wa, mut f1) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for x in &loaded.runs {
        for (s, m) in &x.metrics.by_sex {
            entry.push(x.entry());
            run.push(x.run.clone());
            sex.push(s.clone());
            n.push(m.n);
            ua.push(m.ua);
            wa.push(m.wa);
            f1.push(m.macro_f1);
        }
    }
    let long = DataFrame::new(vec![
        Column::new("entry".into(), entry),
        Column::new("run".into(), run),
        Column::new("sex".into(), sex),
        Column::new("clips".into(), n),
        Column::new("ua".into(), ua),
        Column::new("wa".into(), wa),
        Column::new("macro_f1".into(), f1),
    ])
    .table("by_sex")?
    .lazy()
    .group_by_stable([col("entry"), col("sex")])
    .agg([
        len().alias("runs"),
        col("clips").sum(),
        col("ua").mean().alias("ua_mean"),
        col("ua").std(1).alias("ua_std"),
        col("wa").mean().alias("wa_mean"),
        col("macro_f1").mean().alias("macro_f1_mean"),
    ])
    .sort(
        ["entry", "sex"],
        SortMultipleOptions::default().with_maintain_order(true),
    )
    .collect()
    .table("by_sex")?;
    if long.height() == 0 {
        let empty = DataFrame::new(vec![Column::new_empty("entry".into(), &DataType::String)])
            .table("by_sex_ua")?;
        return Ok((long, empty));
    }
    let wide = pivot_stable(
        &long,
        ["sex"],
        Some(["entry"]),
        Some(["ua_mean"]),
        true,
        None,
        None,
    )
    .table("by_sex_ua")?;
    let wide = in_leaderboard_order(wide, leaderboard, "by_sex_ua")?;
    Ok((long, wide))
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

/// The names of a wide table's value columns: every column but `entry`.
pub fn value_columns(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| c != "entry")
        .collect()
}

/// A string column (nulls as empty strings).
pub fn str_col(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    Ok(opt_str_col(df, name)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

pub fn opt_str_col(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::String))
        .table(name)?;
    Ok(c.str()
        .table(name)?
        .into_iter()
        .map(|s| s.map(str::to_string))
        .collect())
}

/// A numeric column as f64 (nulls and NaN as `None`).
pub fn f64_col(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .table(name)?;
    Ok(c.f64()
        .table(name)?
        .into_iter()
        .map(|v| v.filter(|x| !x.is_nan()))
        .collect())
}

/// A boolean column (nulls as false).
pub fn bool_col(df: &DataFrame, name: &str) -> Result<Vec<bool>> {
    let c = df.column(name).table(name)?;
    Ok(c.bool()
        .table(name)?
        .into_iter()
        .map(|v| v.unwrap_or(false))
        .collect())
}

/// An integer column as u64 (nulls as 0).
pub fn u64_col(df: &DataFrame, name: &str) -> Result<Vec<u64>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::UInt64))
        .table(name)?;
    Ok(c.u64()
        .table(name)?
        .into_iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

/// The rows of `df` whose `column` equals `value`.
pub fn rows_where(df: &DataFrame, column: &str, value: &str) -> Result<DataFrame> {
    df.clone()
        .lazy()
        .filter(col(column).eq(lit(value.to_string())))
        .collect()
        .table(column)
}
