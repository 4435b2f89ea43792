//! An experiment folder's summary: one row per complete run (`summary.parquet`) and the mean ±
//! std of UA, WA and macro-F1 per model and trial, as `emolab run` prints it.

use std::path::Path;

use anyhow::Result;
use polars::prelude::*;

use super::{RunDir, RunMeta, RunMetrics};

/// One row per complete run of `exp` (optionally one trial): the summary table.
pub fn summary(exp_dir: &Path) -> Result<DataFrame> {
    let mut rows: Vec<(RunMeta, RunMetrics)> = Vec::new();
    for dir in super::run_folders(exp_dir) {
        let d = RunDir::new(dir);
        if d.is_complete() {
            if let (Ok(m), Ok(x)) = (d.meta(), d.metrics()) {
                rows.push((m, x));
            }
        }
    }
    rows.sort_by(|a, b| a.0.run.cmp(&b.0.run));
    let s = |f: &dyn Fn(&(RunMeta, RunMetrics)) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let x = |f: &dyn Fn(&(RunMeta, RunMetrics)) -> f64| rows.iter().map(f).collect::<Vec<_>>();
    let df = DataFrame::new(vec![
        Column::new("experiment".into(), s(&|r| r.0.experiment.clone())),
        Column::new("run".into(), s(&|r| r.0.run.clone())),
        Column::new("model".into(), s(&|r| r.0.model.clone())),
        Column::new("family".into(), s(&|r| r.0.family.clone())),
        Column::new(
            "trial".into(),
            rows.iter().map(|r| r.0.trial.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "params".into(),
            s(&|r| serde_json::to_string(&r.0.params).unwrap_or_default()),
        ),
        Column::new("protocol".into(), s(&|r| r.0.protocol.clone())),
        Column::new(
            "speaker_leaky".into(),
            rows.iter().map(|r| r.0.speaker_leaky).collect::<Vec<_>>(),
        ),
        Column::new("target".into(), s(&|r| r.0.target.clone())),
        Column::new(
            "fold".into(),
            rows.iter().map(|r| r.0.fold as u32).collect::<Vec<_>>(),
        ),
        Column::new(
            "seed".into(),
            rows.iter().map(|r| r.0.seed).collect::<Vec<_>>(),
        ),
        Column::new("ua".into(), x(&|r| r.1.test.ua)),
        Column::new("wa".into(), x(&|r| r.1.test.wa)),
        Column::new("macro_f1".into(), x(&|r| r.1.test.macro_f1)),
        Column::new("val_ua".into(), x(&|r| r.1.val_ua)),
        Column::new(
            "best_epoch".into(),
            rows.iter()
                .map(|r| r.1.best_epoch as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "parameters".into(),
            rows.iter().map(|r| r.0.parameters).collect::<Vec<_>>(),
        ),
        Column::new(
            "train_seconds_per_epoch".into(),
            x(&|r| r.0.train_seconds_per_epoch.unwrap_or(f64::NAN)),
        ),
        Column::new("device".into(), s(&|r| r.0.device.clone())),
    ])?;
    Ok(df)
}

/// Mean ± std of UA, WA and macro-F1 per model (and trial) of a summary.
pub fn aggregate(summary: &DataFrame) -> Result<DataFrame> {
    let agg = summary
        .clone()
        .lazy()
        .group_by_stable([col("experiment"), col("model"), col("trial")])
        .agg([
            len().alias("runs"),
            col("ua").mean().alias("ua_mean"),
            col("ua").std(1).alias("ua_std"),
            col("wa").mean().alias("wa_mean"),
            col("wa").std(1).alias("wa_std"),
            col("macro_f1").mean().alias("f1_mean"),
            col("macro_f1").std(1).alias("f1_std"),
            col("val_ua").mean().alias("val_ua_mean"),
            col("speaker_leaky").any(true).alias("speaker_leaky"),
        ])
        .collect()?;
    Ok(agg)
}

/// The aggregate as printable `mean ± std` strings.
pub fn pretty(agg: &DataFrame) -> Result<DataFrame> {
    let f = |name: &str| -> Result<Vec<Option<f64>>> {
        Ok(agg.column(name)?.f64()?.into_iter().collect())
    };
    let pm = |m: &str, s: &str| -> Result<Vec<String>> {
        Ok(f(m)?
            .into_iter()
            .zip(f(s)?)
            .map(|(m, s)| match m {
                Some(m) => match s {
                    Some(s) => format!("{m:.3} ± {s:.3}"),
                    None => format!("{m:.3}"), // one run: no spread to show
                },
                None => "-".into(),
            })
            .collect())
    };
    Ok(DataFrame::new(vec![
        agg.column("model")?.clone(),
        agg.column("trial")?.clone(),
        agg.column("runs")?.clone(),
        Column::new("UA".into(), pm("ua_mean", "ua_std")?),
        Column::new("WA".into(), pm("wa_mean", "wa_std")?),
        Column::new("macro-F1".into(), pm("f1_mean", "f1_std")?),
        agg.column("speaker_leaky")?
            .clone()
            .with_name("leaky".into()),
    ])?)
}

/// Write `summary.parquet` into an experiment's folder and return the aggregate.
pub fn write_summary(dir: &Path) -> Result<DataFrame> {
    let mut df = summary(&dir)?;
    crate::util::atomic_write(&dir.join("summary.parquet"), |w| {
        ParquetWriter::new(w).finish(&mut df)?;
        Ok(())
    })?;
    aggregate(&df)
}
