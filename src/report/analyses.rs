//! Tables computed from the runs' test predictions for the per-speaker and calibration
//! sections: UA per test speaker, and calibration (ECE before and after the temperature each
//! run fitted on its validation speakers, reliability bins, UA against coverage).

use polars::prelude::*;

use super::load::{Loaded, Run};
use super::{Result, TableContext};
use crate::calibration;
use crate::results::Predictions;

/// Confidence bins of the reliability diagrams and of the ECE (Guo et al., 2017).
pub const BINS: usize = 15;
/// Coverages of the selective-classification table.
pub const COVERAGES: [f64; 5] = [1.0, 0.9, 0.8, 0.7, 0.5];

/// Every complete run with its readable test predictions, read once for both tables.
pub fn predictions(loaded: &Loaded) -> Vec<(&Run, Predictions)> {
    loaded
        .runs
        .iter()
        .filter_map(|r| {
            let p =
                crate::results::read_predictions(r.predictions.as_ref()?, &r.meta.classes).ok()?;
            Some((r, p))
        })
        .collect()
}

/// UA per entry and test speaker, mean over the entry's runs that tested the speaker, worst
/// speakers first within each entry.
pub fn per_speaker(runs: &[(&Run, Predictions)]) -> Result<DataFrame> {
    let (mut entry, mut speaker, mut clips, mut ua) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (r, p) in runs {
        let (truth, pred) = p.indices();
        let groups = crate::metrics::by_group(&truth, &pred, &p.speaker, &p.classes);
        for (s, m) in groups {
            entry.push(r.entry());
            speaker.push(s);
            clips.push(m.n as u64);
            ua.push(m.ua);
        }
    }
    DataFrame::new(vec![
        Column::new("entry".into(), entry),
        Column::new("speaker".into(), speaker),
        Column::new("clips".into(), clips),
        Column::new("ua".into(), ua),
    ])
    .table("per_speaker")?
    .lazy()
    .group_by_stable([col("entry"), col("speaker")])
    .agg([
        len().alias("runs"),
        col("clips").sum(),
        col("ua").mean().alias("ua_mean"),
    ])
    .sort(
        ["entry", "ua_mean"],
        SortMultipleOptions::default().with_maintain_order(true),
    )
    .collect()
    .table("per_speaker")
}

/// Calibration per run: ECE of the test probabilities as stored and at the run's validation
/// temperature, the temperature, and UA at each coverage of [`COVERAGES`].
pub fn calibration(runs: &[(&Run, Predictions)]) -> Result<(DataFrame, DataFrame)> {
    let mut entry = Vec::new();
    let mut run = Vec::new();
    let (mut t, mut ece, mut ece_t, mut nll, mut nll_t) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cov: Vec<Vec<f64>> = vec![Vec::new(); COVERAGES.len()];
    let (mut ab_t, mut ab_cov, mut ab_ua) = (Vec::new(), Vec::new(), Vec::new());
    let (mut b_entry, mut b_lower, mut b_n, mut b_conf, mut b_acc) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (r, p) in runs {
        if p.probs.iter().any(|q| q.iter().any(|v| !v.is_finite())) {
            continue;
        }
        let (truth, _) = p.indices();
        let temp = r.metrics.temperature.unwrap_or(1.0);
        let scaled = calibration::scale_all(&p.probs, temp);
        entry.push(r.entry());
        run.push(r.run.clone());
        t.push(r.metrics.temperature);
        ece.push(calibration::ece(&p.probs, &truth, BINS));
        ece_t.push(calibration::ece(&scaled, &truth, BINS));
        nll.push(calibration::nll(&p.probs, &truth));
        nll_t.push(calibration::nll(&scaled, &truth));
        for (k, v) in calibration::ua_at_coverage(&p.probs, &truth, &p.classes, &COVERAGES)
            .into_iter()
            .enumerate()
        {
            cov[k].push(v);
        }
        // The abstain threshold the run chose on its validation speakers, applied to its test.
        let th = r.metrics.abstain_entropy;
        let (c, u) = th.map_or((None, None), |th| {
            let (c, u) = calibration::abstain(&scaled, &truth, &p.classes, th);
            (Some(c), u)
        });
        ab_t.push(th);
        ab_cov.push(c);
        ab_ua.push(u);
        for b in calibration::reliability(&scaled, &truth, BINS) {
            b_entry.push(r.entry());
            b_lower.push(b.lower);
            b_n.push(b.count as u64);
            b_conf.push(b.confidence * b.count as f64);
            b_acc.push(b.accuracy * b.count as f64);
        }
    }
    let mut cols = vec![
        Column::new("entry".into(), entry),
        Column::new("run".into(), run),
        Column::new("temperature".into(), t),
        Column::new("ece".into(), ece),
        Column::new("ece_scaled".into(), ece_t),
        Column::new("nll".into(), nll),
        Column::new("nll_scaled".into(), nll_t),
        Column::new("abstain_entropy".into(), ab_t),
        Column::new("abstain_coverage".into(), ab_cov),
        Column::new("abstain_ua".into(), ab_ua),
    ];
    for (k, c) in COVERAGES.iter().enumerate() {
        cols.push(Column::new(
            format!("ua_at_{}", (c * 100.0).round() as u32).into(),
            std::mem::take(&mut cov[k]),
        ));
    }
    let mut aggs = vec![
        len().alias("runs"),
        col("temperature").mean().alias("temperature_mean"),
        col("ece").mean().alias("ece_mean"),
        col("ece_scaled").mean().alias("ece_scaled_mean"),
        col("nll").mean().alias("nll_mean"),
        col("nll_scaled").mean().alias("nll_scaled_mean"),
        col("abstain_coverage")
            .mean()
            .alias("abstain_coverage_mean"),
        col("abstain_ua").mean().alias("abstain_ua_mean"),
    ];
    for c in COVERAGES {
        let name = format!("ua_at_{}", (c * 100.0).round() as u32);
        aggs.push(col(name.as_str()).mean().alias(name.as_str()));
    }
    let per_entry = DataFrame::new(cols)
        .table("calibration")?
        .lazy()
        .group_by_stable([col("entry")])
        .agg(aggs)
        .collect()
        .table("calibration")?;
    // Reliability bins pooled over an entry's runs (temperature-scaled probabilities).
    let bins = DataFrame::new(vec![
        Column::new("entry".into(), b_entry),
        Column::new("lower".into(), b_lower),
        Column::new("clips".into(), b_n),
        Column::new("conf_sum".into(), b_conf),
        Column::new("acc_sum".into(), b_acc),
    ])
    .table("reliability")?
    .lazy()
    .group_by_stable([col("entry"), col("lower")])
    .agg([
        col("clips").sum(),
        col("conf_sum").sum(),
        col("acc_sum").sum(),
    ])
    .with_columns([
        (col("conf_sum") / col("clips").cast(DataType::Float64)).alias("confidence"),
        (col("acc_sum") / col("clips").cast(DataType::Float64)).alias("accuracy"),
    ])
    .select([
        col("entry"),
        col("lower"),
        col("clips"),
        col("confidence"),
        col("accuracy"),
    ])
    .collect()
    .table("reliability")?;
    Ok((per_entry, bins))
}

/// At most this many held-out clips of a run enter its silhouettes (an even stride over them
/// beyond that: the pairwise distances grow with the square).
pub const SILHOUETTE_MAX_POINTS: usize = 2000;

/// The columns of `embedding_map`: one row per clip of each mapped run.
#[derive(Default)]
struct MapColumns {
    entry: Vec<String>,
    run: Vec<String>,
    clip_id: Vec<String>,
    speaker: Vec<Option<String>>,
    label: Vec<String>,
    role: Vec<String>,
    pc1: Vec<f64>,
    pc2: Vec<f64>,
}

impl MapColumns {
    fn push_run(
        &mut self,
        entry: &str,
        run: &str,
        e: &crate::embedding::Embeddings,
        points: &[Vec<f64>],
    ) {
        self.entry
            .extend(std::iter::repeat_n(entry.to_string(), e.len()));
        self.run
            .extend(std::iter::repeat_n(run.to_string(), e.len()));
        self.clip_id.extend(e.clip_id.iter().cloned());
        self.speaker.extend(e.speaker.iter().cloned());
        self.label.extend(e.label.iter().cloned());
        self.role.extend(e.role.iter().cloned());
        self.pc1
            .extend(points.iter().map(|p| p.first().copied().unwrap_or(0.0)));
        self.pc2
            .extend(points.iter().map(|p| p.get(1).copied().unwrap_or(0.0)));
    }
}

/// Embedding maps of the focus entries' runs that stored `embeddings.parquet`: per run, the
/// silhouette of its held-out vectors grouped by emotion and by speaker and the variance shares
/// of the first two principal components (`embedding_scores`); and for each entry's first such
/// run, every clip's coordinates on those components (`embedding_map`). A run whose file is
/// unreadable is left out of both.
pub fn embeddings(loaded: &Loaded, focus: &[String]) -> Result<(DataFrame, DataFrame)> {
    use crate::embedding::{pca, silhouette, Embeddings};
    let (mut entry, mut run, mut clips, mut width) = (vec![], vec![], vec![], vec![]);
    let (mut speakers, mut s_emo, mut s_spk, mut pc1, mut pc2) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut map = MapColumns::default();
    for r in &loaded.runs {
        let name = r.entry();
        if !focus.contains(&name) {
            continue;
        }
        let Some(e) = r.embeddings.as_ref().and_then(|p| Embeddings::read(p).ok()) else {
            continue;
        };
        if e.len() < 3 || e.width() == 0 {
            continue;
        }
        let Ok(proj) = pca(&e.vectors, 2) else {
            continue;
        };
        let stride = e.len().div_ceil(SILHOUETTE_MAX_POINTS);
        let pick: Vec<usize> = (0..e.len()).step_by(stride).collect();
        let rows: Vec<&[f32]> = pick.iter().map(|&i| e.vectors[i].as_slice()).collect();
        let labels: Vec<&String> = pick.iter().map(|&i| &e.label[i]).collect();
        let spk: Vec<&Option<String>> = pick.iter().map(|&i| &e.speaker[i]).collect();
        let mut distinct: Vec<&Option<String>> = e.speaker.iter().collect();
        distinct.sort();
        distinct.dedup();
        entry.push(name.clone());
        run.push(r.run.clone());
        clips.push(e.len() as u64);
        width.push(e.width() as u64);
        speakers.push(distinct.len() as u64);
        s_emo.push(silhouette(&rows, &labels));
        s_spk.push(silhouette(&rows, &spk));
        pc1.push(proj.explained.first().copied());
        pc2.push(proj.explained.get(1).copied());
        if !map.entry.contains(&name) {
            map.push_run(&name, &r.run, &e, &proj.points);
        }
    }
    let scores = DataFrame::new(vec![
        Column::new("entry".into(), entry),
        Column::new("run".into(), run),
        Column::new("clips".into(), clips),
        Column::new("speakers".into(), speakers),
        Column::new("width".into(), width),
        Column::new("silhouette_emotion".into(), s_emo),
        Column::new("silhouette_speaker".into(), s_spk),
        Column::new("pc1_share".into(), pc1),
        Column::new("pc2_share".into(), pc2),
    ])
    .table("embedding_scores")?;
    let points = DataFrame::new(vec![
        Column::new("entry".into(), map.entry),
        Column::new("run".into(), map.run),
        Column::new("clip_id".into(), map.clip_id),
        Column::new("speaker".into(), map.speaker),
        Column::new("label".into(), map.label),
        Column::new("role".into(), map.role),
        Column::new("pc1".into(), map.pc1),
        Column::new("pc2".into(), map.pc2),
    ])
    .table("embedding_map")?;
    Ok((scores, points))
}
