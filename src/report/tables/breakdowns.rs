//! The tables that break an entry down: per-class F1, summed confusion matrices, mean learning
//! curves, permutation importance, sweep trials and parameter marginals, UA by speaker sex.

use std::collections::BTreeSet;

use polars::lazy::frame::pivot::pivot_stable;
use polars::prelude::*;

use super::super::load::Loaded;
use super::super::{Result, TableContext};
use super::*;

pub(super) fn per_class(
    loaded: &Loaded,
    leaderboard: &DataFrame,
) -> Result<(DataFrame, DataFrame)> {
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

pub(super) fn confusion(loaded: &Loaded) -> Result<DataFrame> {
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
pub(super) fn scan_runs(
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

pub(super) fn curves(loaded: &Loaded) -> Result<DataFrame> {
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

pub(super) fn importance(loaded: &Loaded) -> Result<DataFrame> {
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

pub(super) fn sweeps(loaded: &Loaded, runs: &DataFrame) -> Result<(DataFrame, DataFrame)> {
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

pub(super) fn by_sex(loaded: &Loaded, leaderboard: &DataFrame) -> Result<(DataFrame, DataFrame)> {
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
