//! Seed ensembles: an experiment run with several seeds also gets, per fold, the entry whose
//! test probabilities are the mean of its seeds' (Dietterich, 2000), written as a run folder of
//! its own (`fold<F>-ensemble/`: `meta.json` naming its members, `metrics.json`,
//! `predictions.parquet`, `split.parquet`, `config.yaml`), so the summary, the leaderboard and
//! the paired comparisons treat it like any other model. It has no weights or history of its
//! own: its members have them.
//!
//! Only folds whose every seed shares one split (a fixed `split_seed`, or a protocol whose
//! folds do not depend on the seed, such as `loso`) can be averaged: other folds are left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::metrics;
use crate::results::{Predictions, RunDir, RunMetrics, RunStatus};

/// The model name of a seed ensemble of `model` over `n` seeds.
pub fn ensemble_model(model: &str, n: usize) -> String {
    format!("{model} ×{n} seeds")
}

/// Average the members' probabilities clip by clip (members must hold the same clips in the
/// same order) and predict the argmax.
pub fn average(members: &[Predictions]) -> Result<Predictions> {
    average_weighted(members, &vec![1.0; members.len()])
}

/// [`average`] with one non-negative weight per member (normalised to sum 1).
pub fn average_weighted(members: &[Predictions], weights: &[f64]) -> Result<Predictions> {
    let first = members.first().context("no members to average")?;
    if weights.len() != members.len() || weights.iter().any(|w| !(*w >= 0.0)) {
        bail!("one non-negative weight per ensemble member is needed");
    }
    let total: f64 = weights.iter().sum();
    let w: Vec<f32> = if total > 0.0 {
        weights.iter().map(|x| (x / total) as f32).collect()
    } else {
        vec![1.0 / members.len() as f32; members.len()]
    };
    for m in &members[1..] {
        if m.clip_id != first.clip_id || m.classes != first.classes {
            bail!("ensemble members were tested on different clips or classes");
        }
    }
    let k = first.classes.len();
    let probs: Vec<Vec<f32>> = (0..first.clip_id.len())
        .map(|i| {
            (0..k)
                .map(|c| {
                    members
                        .iter()
                        .zip(&w)
                        .map(|(m, w)| w * m.probs[i][c])
                        .sum::<f32>()
                })
                .collect()
        })
        .collect();
    let prediction = probs
        .iter()
        .map(|p| first.classes[metrics::argmax(p)].clone())
        .collect();
    Ok(Predictions {
        prediction,
        probs,
        ..first.clone()
    })
}

/// Metrics of predictions against their truth.
pub fn score(p: &Predictions) -> RunMetrics {
    let (truth, pred) = p.indices();
    RunMetrics {
        test: metrics::compute(&truth, &pred, &p.classes),
        by_sex: metrics::by_group(&truth, &pred, &p.sex, &p.classes),
        best_epoch: 0,
        val_ua: f64::NAN,
        temperature: None,
        abstain_entropy: None,
    }
}

/// Write into `out` the run whose test probabilities are the mean of `members`' (complete runs
/// on one split): predictions, metrics, and a `meta.json` naming the members, under `model` (and
/// `experiment`, default the first member's).
pub fn write_average(
    out: &RunDir,
    members: &[RunDir],
    model: &str,
    experiment: Option<&str>,
) -> Result<()> {
    write_fused(out, members, model, experiment, FusionWeights::Equal)
}

/// How a late fusion weighs its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionWeights {
    /// The plain mean of the members' probabilities.
    #[default]
    Equal,
    /// Each member weighted by its validation UA on the fold (chosen on validation speakers
    /// only, never on the test speakers).
    ValUa,
    /// Per fold, the weights (a grid of step 0.1 over the members) whose fused validation
    /// probabilities score the highest validation UA, ties going to the weights nearest equal:
    /// chosen on the fold's validation speakers only, and never below the best member there,
    /// since each member alone is on the grid.
    Validation,
}

/// Every weight vector of `n` members on a grid of `1 / steps` (summing to 1).
fn simplex_grid(n: usize, steps: usize) -> Vec<Vec<f64>> {
    fn rec(n: usize, left: usize, steps: usize, cur: &mut Vec<f64>, out: &mut Vec<Vec<f64>>) {
        if n == 1 {
            cur.push(left as f64 / steps as f64);
            out.push(cur.clone());
            cur.pop();
            return;
        }
        for k in 0..=left {
            cur.push(k as f64 / steps as f64);
            rec(n - 1, left - k, steps, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    rec(n, steps, steps, &mut Vec::new(), &mut out);
    out
}

/// The member weights maximising validation UA ([`FusionWeights::Validation`]), with that UA.
pub fn choose_weights(val: &[Predictions]) -> Result<(Vec<f64>, f64)> {
    let n = val.len();
    let equal = 1.0 / n as f64;
    let mut best: Option<(f64, f64, Vec<f64>)> = None;
    for w in simplex_grid(n, 10) {
        let ua = score(&average_weighted(val, &w)?).test.ua;
        let dist: f64 = w.iter().map(|x| (x - equal).powi(2)).sum();
        let better = match &best {
            None => true,
            Some((bu, bd, _)) => ua > bu + 1e-12 || ((ua - bu).abs() <= 1e-12 && dist < *bd),
        };
        if better {
            best = Some((ua, dist, w));
        }
    }
    let (ua, _, w) = best.context("no members")?;
    Ok((w, ua))
}

/// [`write_average`] with the members weighted by `weights`.
pub fn write_fused(
    out: &RunDir,
    members: &[RunDir],
    model: &str,
    experiment: Option<&str>,
    weights: FusionWeights,
) -> Result<()> {
    let metas = members
        .iter()
        .map(RunDir::meta)
        .collect::<Result<Vec<_>>>()?;
    let classes = metas[0].classes.clone();
    if let Some(m) = metas.iter().find(|m| m.classes != classes) {
        bail!("{} has other classes than {}", m.run, metas[0].run);
    }
    let preds = members
        .iter()
        .map(|r| crate::results::read_predictions(&r.path("predictions.parquet"), &classes))
        .collect::<Result<Vec<_>>>()?;
    let val: Vec<f64> = members
        .iter()
        .filter_map(|r| r.metrics().ok().map(|x| x.val_ua))
        .collect();
    let val_preds: Option<Vec<Predictions>> = members
        .iter()
        .map(|r| {
            let p = r.path(crate::results::VAL_PREDICTIONS);
            p.exists()
                .then(|| crate::results::read_predictions(&p, &classes))
        })
        .collect::<Option<Result<Vec<_>>>>()
        .transpose()?;
    let (w, fused_val_ua) = match weights {
        FusionWeights::Equal => (vec![1.0; members.len()], None),
        FusionWeights::ValUa => {
            if val.len() != members.len() || val.iter().any(|v| !v.is_finite()) {
                bail!("weights: val_ua needs every member's validation UA (metrics.json)");
            }
            (val.clone(), None)
        }
        FusionWeights::Validation => {
            let Some(vp) = &val_preds else {
                let old = members
                    .iter()
                    .find(|r| !r.path(crate::results::VAL_PREDICTIONS).exists())
                    .map(|r| r.dir.display().to_string())
                    .unwrap_or_default();
                bail!(
                    "weights: validation needs every member's validation predictions; {old} has \
                     no {} (run that experiment again with --force)",
                    crate::results::VAL_PREDICTIONS
                );
            };
            let (w, ua) = choose_weights(vp)?;
            (w, Some(ua))
        }
    };
    let avg = average_weighted(&preds, &w)?;
    let mut m = score(&avg);
    m.val_ua = val.iter().sum::<f64>() / val.len().max(1) as f64;
    if let Some(vp) = &val_preds {
        let fused = average_weighted(vp, &w)?;
        m.val_ua = fused_val_ua.unwrap_or_else(|| score(&fused).test.ua);
        std::fs::create_dir_all(&out.dir)
            .with_context(|| format!("cannot create {}", out.dir.display()))?;
        out.write_predictions(&fused, Some(&out.path(crate::results::VAL_PREDICTIONS)))?;
    }
    std::fs::create_dir_all(&out.dir)
        .with_context(|| format!("cannot create {}", out.dir.display()))?;
    for f in ["split.parquet", "config.yaml"] {
        crate::util::atomic_write_bytes(&out.path(f), &std::fs::read(members[0].path(f))?)?;
    }
    out.write_predictions(&avg, None)?;
    out.write_metrics(&m)?;
    let mut meta = metas[0].clone();
    if let Some(e) = experiment {
        meta.experiment = e.to_string();
    }
    meta.run = out
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    meta.model = model.to_string();
    meta.ensemble = members
        .iter()
        .zip(&metas)
        .map(|(r, m)| {
            let exp = r
                .dir
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{exp}/{}", m.run)
        })
        .collect();
    if weights != FusionWeights::Equal {
        let total: f64 = w.iter().sum();
        meta.params.insert(
            "fusion_weights".into(),
            serde_json::json!(w.iter().map(|x| x / total).collect::<Vec<_>>()),
        );
    }
    meta.encoder = metas.iter().find_map(|m| m.encoder.clone());
    meta.transductive = metas.iter().any(|m| m.transductive);
    meta.parameters = metas.iter().map(|m| m.parameters).sum();
    meta.seconds = Some(metas.iter().filter_map(|m| m.seconds).sum());
    meta.epochs_run = 0;
    meta.best_epoch = 0;
    meta.train_seconds_per_epoch = None;
    meta.status = RunStatus::Complete;
    out.write_meta(&meta)
}

/// Why `members` cannot be averaged clip by clip (one is not complete, or their splits differ),
/// or `None` when they can.
fn not_averageable(members: &[RunDir]) -> Option<String> {
    if let Some(m) = members.iter().find(|m| !m.is_complete()) {
        return Some(format!("{} is not complete", m.dir.display()));
    }
    let split = |r: &RunDir| std::fs::read(r.path("split.parquet")).unwrap_or_default();
    let first = split(members.first()?);
    members[1..]
        .iter()
        .any(|m| split(m) != first)
        .then(|| "the members' splits differ".to_string())
}

/// Whether an experiment file is a late fusion (`ensemble: [...]`) rather than a training run.
pub fn is_fusion(tree: &serde_yaml::Value) -> bool {
    tree.get("ensemble").is_some()
}

/// A late-fusion file: `ensemble: [exp_a, exp_b]` names complete experiments under the results
/// folder, run on the same splits; each of their runs (`fold<F>-seed<S>`) present in all of them
/// becomes a run of this experiment whose test probabilities are the members' mean.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionSpec {
    pub ensemble: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default `$EMOLAB_RESULTS` or `results`.
    #[serde(default)]
    pub results: Option<PathBuf>,
    /// `equal` (the mean), `val_ua` (each member weighted by its validation UA) or
    /// `validation` (per fold, the weights that maximise validation UA).
    #[serde(default)]
    pub weights: FusionWeights,
}

/// Run a late-fusion file: returns (experiment name, results folder, runs written, runs left
/// out with the reason).
/// `sets` (`key=value`, as `emolab run --set`) change the file's keys, e.g. `results=DIR`
/// (where the members are found and the fusion is written) or `name=...`.
pub fn run_fusion(
    file: &Path,
    sets: &[String],
) -> Result<(String, PathBuf, Vec<PathBuf>, Vec<String>)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut tree: serde_yaml::Value = serde_yaml::from_str(&text)
        .with_context(|| format!("{}: not a valid ensemble file", file.display()))?;
    for a in sets {
        crate::config::apply_set(&mut tree, a).map_err(|e| anyhow::anyhow!("--set {a}: {e}"))?;
    }
    let spec: FusionSpec = serde_yaml::from_value(tree).with_context(|| {
        format!(
            "{}{}: not a valid ensemble file",
            file.display(),
            if sets.is_empty() { "" } else { " (with --set)" }
        )
    })?;
    if spec.ensemble.len() < 2 {
        bail!(
            "{}: key `ensemble`: name at least two experiments",
            file.display()
        );
    }
    let name = spec.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "ensemble".into())
    });
    let root = spec
        .results
        .clone()
        .unwrap_or_else(crate::config::results_dir);
    let dirs: Vec<PathBuf> = spec.ensemble.iter().map(|e| root.join(e)).collect();
    for (e, d) in spec.ensemble.iter().zip(&dirs) {
        if !d.is_dir() {
            bail!(
                "{}: key `ensemble`: {} has no results ({} does not exist): run it first",
                file.display(),
                e,
                d.display()
            );
        }
    }
    let re = regex::Regex::new(r"^fold\d+-seed\d+$").expect("valid");
    let mut names: Vec<String> = std::fs::read_dir(&dirs[0])?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| re.is_match(n))
        .collect();
    names.sort();
    let (mut written, mut left_out) = (Vec::new(), Vec::new());
    for run in names {
        let members: Vec<RunDir> = dirs.iter().map(|d| RunDir::new(d.join(&run))).collect();
        if let Some(why) = not_averageable(&members) {
            left_out.push(format!("{run}: {why}"));
            continue;
        }
        let models: Vec<String> = members
            .iter()
            .map(|m| m.meta().map(|x| x.model))
            .collect::<Result<_>>()?;
        let out = RunDir::new(root.join(&name).join(&run));
        write_fused(
            &out,
            &members,
            &models.join(" + "),
            Some(&name),
            spec.weights,
        )?;
        written.push(out.dir);
    }
    Ok((name, root, written, left_out))
}

/// Write the seed ensemble of every fold of `exp_dir` whose `seeds` runs (`fold<F>-seed<S>`,
/// not sweep trials) are all complete and share one split. Returns the folders written.
pub fn write_seed_ensembles(exp_dir: &Path, seeds: &[u64]) -> Result<Vec<PathBuf>> {
    if seeds.len() < 2 {
        return Ok(Vec::new());
    }
    let mut folds: BTreeMap<usize, Vec<RunDir>> = BTreeMap::new();
    let re = regex::Regex::new(r"^fold(\d+)-seed(\d+)$").expect("valid");
    for dir in crate::results::run_folders(exp_dir) {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(c) = re.captures(&name) {
            let (f, s): (usize, u64) = (c[1].parse()?, c[2].parse()?);
            if seeds.contains(&s) {
                folds.entry(f).or_default().push(RunDir::new(dir));
            }
        }
    }
    let mut written = Vec::new();
    for (fold, mut runs) in folds {
        runs.sort_by(|a, b| a.dir.cmp(&b.dir));
        // Incomplete seeds, or seeds that each split anew: nothing to average clip by clip.
        if runs.len() != seeds.len() || not_averageable(&runs).is_some() {
            continue;
        }
        let out = RunDir::new(exp_dir.join(format!("fold{fold}-ensemble")));
        let model = ensemble_model(&runs[0].meta()?.model, runs.len());
        write_average(&out, &runs, &model, None)?;
        written.push(out.dir);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preds(probs: Vec<Vec<f32>>) -> Predictions {
        let classes = vec!["a".to_string(), "b".to_string()];
        Predictions {
            clip_id: vec!["c1".into(), "c2".into()],
            path: vec!["1.wav".into(), "2.wav".into()],
            speaker: vec![Some("s".into()); 2],
            sex: vec![None; 2],
            truth: vec!["a".into(), "b".into()],
            prediction: vec![],
            classes,
            probs,
        }
    }

    #[test]
    fn the_ensemble_averages_exactly_its_members() {
        let a = preds(vec![vec![0.9, 0.1], vec![0.6, 0.4]]);
        let b = preds(vec![vec![0.3, 0.7], vec![0.0, 1.0]]);
        let e = average(&[a, b]).unwrap();
        assert_eq!(e.probs, vec![vec![0.6, 0.4], vec![0.3, 0.7]]);
        assert_eq!(e.prediction, vec!["a", "b"]);
        assert_eq!(score(&e).test.ua, 1.0);
        let mut other = preds(vec![vec![0.5, 0.5]; 2]);
        other.clip_id.reverse();
        let x = preds(vec![vec![0.5, 0.5]; 2]);
        assert!(average(&[x, other]).is_err());
    }

    #[test]
    fn weighted_fusion_weighs_members() {
        let a = preds(vec![vec![1.0, 0.0], vec![1.0, 0.0]]);
        let b = preds(vec![vec![0.0, 1.0], vec![0.0, 1.0]]);
        // Weights 3 : 1 → 0.75 / 0.25.
        let e = average_weighted(&[a.clone(), b.clone()], &[0.6, 0.2]).unwrap();
        for p in &e.probs {
            assert!(
                (p[0] - 0.75).abs() < 1e-6 && (p[1] - 0.25).abs() < 1e-6,
                "{p:?}"
            );
        }
        assert!(average_weighted(&[a.clone(), b.clone()], &[1.0]).is_err());
        assert!(average_weighted(&[a, b], &[1.0, f64::NAN]).is_err());
    }

    /// Validation-chosen weights never fuse below the better member on validation, prefer the
    /// equal mix on ties, and span the simplex in 0.1 steps.
    #[test]
    fn validation_weights_never_lose_to_a_member_and_tie_to_equal() {
        assert_eq!(simplex_grid(2, 10).len(), 11);
        assert_eq!(simplex_grid(3, 10).len(), 66);
        assert!(simplex_grid(3, 10)
            .iter()
            .all(|w| (w.iter().sum::<f64>() - 1.0).abs() < 1e-9));
        // A is confidently wrong on clip 2, B mildly wrong on clip 1: only a mix gets both.
        let a = preds(vec![vec![0.9, 0.1], vec![0.9, 0.1]]);
        let b = preds(vec![vec![0.4, 0.6], vec![0.0, 1.0]]);
        let (w, ua) = choose_weights(&[a.clone(), b.clone()]).unwrap();
        let alone = |p: &Predictions| {
            score(&average_weighted(&[p.clone()], &[1.0]).unwrap())
                .test
                .ua
        };
        assert_eq!(ua, 1.0, "{w:?}");
        assert!(ua >= alone(&a) && ua >= alone(&b));
        assert_eq!(
            score(&average_weighted(&[a.clone(), b.clone()], &w).unwrap())
                .test
                .ua,
            ua
        );
        // Identical members tie everywhere: the equal mix is kept.
        let (w, _) = choose_weights(&[a.clone(), a]).unwrap();
        assert_eq!(w, vec![0.5, 0.5]);
        // One member that is always right, one always wrong: all weight on the right one
        // would do, and so does anything above half; ties go to the one nearest equal.
        let right = preds(vec![vec![0.8, 0.2], vec![0.2, 0.8]]);
        let wrong = preds(vec![vec![0.2, 0.8], vec![0.8, 0.2]]);
        let (w, ua) = choose_weights(&[right, wrong]).unwrap();
        assert_eq!(ua, 1.0);
        assert!((w[0] - 0.6).abs() < 1e-9, "{w:?}");
    }
}
