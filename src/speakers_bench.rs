//! `emolab bench normalisation`: how a `normalize: speaker` run scores new audio depending on
//! what its statistics come from, on its own validation and test speakers (labels known):
//!
//! * `batch`: each speaker's statistics from all their clips (what the run's own metrics used);
//! * `training clips, pooled`: every clip alone, on the statistics stored in the run (the
//!   fallback of [`crate::speakers`]);
//! * `average training speaker`: every clip alone, on the mean of the training speakers' means
//!   and the root mean square of their spreads (the alternative fallback, for comparison);
//! * `k clips`: each clip with `k - 1` other clips of its speaker drawn at random (`repeats`
//!   draws), the situation of a user who gives `k` clips of one person.
//!
//! The smallest `k` whose validation UA reaches the fallback's is where a speaker's own
//! statistics start to pay ([`crate::speakers::DEFAULT_MIN_CLIPS`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::metrics;
use crate::speakers::TrainingSpeakers;
use crate::train::{Dataset, NormMode, Normalizer};

/// UA of one condition on one run and role.
#[derive(Debug, Clone, Serialize)]
pub struct NormScore {
    pub run: String,
    pub role: String,
    pub condition: String,
    pub ua: f64,
    pub clips: usize,
    /// The saved model was fitted on the validation clips too (a classical model's refit):
    /// its `val` rows are not held out.
    pub val_in_training: bool,
}

fn ua_with(
    lr: &crate::infer::LoadedRun,
    ds: &Dataset,
    norms: Vec<Arc<Normalizer>>,
    classes: &[String],
) -> Result<f64> {
    let mut d = ds.clone();
    d.clip_norm = Some(norms);
    let (_, pred) = lr.model.predict(&d)?;
    Ok(metrics::compute(&d.labels, &pred, classes).ua)
}

/// Score every run under `paths` (run folders or experiment result folders) in each condition.
pub fn normalisation(
    paths: &[PathBuf],
    ks: &[usize],
    repeats: usize,
    seed: u64,
) -> Result<Vec<NormScore>> {
    let mut out = Vec::new();
    for path in paths {
        let runs = crate::results::run_folders(path);
        if runs.is_empty() {
            bail!("{}: not a run folder and holds none", path.display());
        }
        for run in runs {
            let lr = crate::infer::load_run(&run, tch::Device::cuda_if_available())?;
            if lr.model.normalize() != NormMode::Speaker {
                bail!(
                    "{}: trained without `normalize: speaker`; nothing to compare",
                    run.display()
                );
            }
            let classes = lr.meta.classes.clone();
            let name = run.display().to_string();
            let pooled = crate::infer::training_speakers(&run, &lr.exp, false)?.normalizer();
            let train = crate::infer::role_dataset(&run, &lr, "train", false)?;
            let stats = crate::train::SpeakerStats::fit(
                train.speaker.iter().zip(&train.features),
                train.n_features,
            );
            let averaged = TrainingSpeakers::averaged(
                &stats,
                train.speaker.iter().flatten().map(String::as_str),
            )
            .ok_or_else(|| anyhow::anyhow!("{}: no training speaker", run.display()))?
            .normalizer();
            // A classical model is refitted on training + validation clips before it is saved.
            let val_seen = lr.exp.model.classical().is_some();
            for role in ["val", "test"] {
                let ds = crate::infer::role_dataset(&run, &lr, role, false)?;
                let n = ds.len();
                let mut by_speaker: BTreeMap<String, Vec<usize>> = BTreeMap::new();
                for (i, s) in ds.speaker.iter().enumerate() {
                    by_speaker
                        .entry(s.clone().unwrap_or_default())
                        .or_default()
                        .push(i);
                }
                let mut push = |condition: String, ua: f64| {
                    out.push(NormScore {
                        run: name.clone(),
                        role: role.into(),
                        condition,
                        ua,
                        clips: n,
                        val_in_training: val_seen,
                    })
                };
                let mut own = ds.clone();
                own.attach_norm(NormMode::Speaker, None)?;
                let batch = own.clip_norm.clone().expect("attached");
                push("batch".into(), ua_with(&lr, &ds, batch, &classes)?);
                push(
                    "training clips, pooled".into(),
                    ua_with(&lr, &ds, vec![pooled.clone(); n], &classes)?,
                );
                push(
                    "average training speaker".into(),
                    ua_with(&lr, &ds, vec![averaged.clone(); n], &classes)?,
                );
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                for &k in ks {
                    let mut total = 0.0;
                    for _ in 0..repeats {
                        let norms: Vec<Arc<Normalizer>> = (0..n)
                            .map(|i| {
                                let key = ds.speaker[i].clone().unwrap_or_default();
                                let mut others: Vec<usize> = by_speaker[&key]
                                    .iter()
                                    .copied()
                                    .filter(|&j| j != i)
                                    .collect();
                                others.shuffle(&mut rng);
                                let mut pick = vec![&ds.features[i][..]];
                                pick.extend(
                                    others
                                        .iter()
                                        .take(k.saturating_sub(1))
                                        .map(|&j| &ds.features[j][..]),
                                );
                                Arc::new(Normalizer::fit_frames(pick, ds.n_features))
                            })
                            .collect();
                        total += ua_with(&lr, &ds, norms, &classes)?;
                    }
                    push(format!("{k} clips"), total / repeats.max(1) as f64);
                }
            }
        }
    }
    Ok(out)
}

/// Mean ± sd of UA over runs, per role and condition, in the order first seen.
pub fn table(scores: &[NormScore]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for s in scores {
        if !order.contains(&s.condition) {
            order.push(s.condition.clone());
        }
        cells
            .entry((s.condition.clone(), s.role.clone()))
            .or_default()
            .push(s.ua);
    }
    let stat = |v: Option<&Vec<f64>>| -> String {
        let Some(v) = v else { return "-".into() };
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = if v.len() > 1 {
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        } else {
            0.0
        };
        format!("{m:.3} ± {sd:.3}")
    };
    let mut t = format!("{:<24} {:>15} {:>15}\n", "statistics", "val UA", "test UA");
    for c in &order {
        t += &format!(
            "{:<24} {:>15} {:>15}\n",
            c,
            stat(cells.get(&(c.clone(), "val".into()))),
            stat(cells.get(&(c.clone(), "test".into())))
        );
    }
    let runs: std::collections::BTreeSet<&str> = scores.iter().map(|s| s.run.as_str()).collect();
    t += &format!("({} runs)\n", runs.len());
    if scores.iter().any(|s| s.val_in_training) {
        t += "note: classical models are refitted on training + validation clips before they are \
              saved, so their val column is not held out\n";
    }
    t
}
