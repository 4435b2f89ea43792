//! Permutation importance (Breiman 2001; scikit-learn's `permutation_importance`) of clip-vector
//! models on the validation speakers: each feature's values are shuffled across the validation
//! clips, and the drop in validation UA, averaged over [`REPEATS`] seeded shuffles, is its
//! importance (a pretrained encoder's dimensions are shuffled a layer at a time). Measured with
//! the model fitted on the training clips only (a classical model's
//! refit on training + validation clips is not used), so the validation clips are unseen; the
//! test clips are never touched. Written per run as `importance.parquet` (feature, importance,
//! std) and summarised over runs by `emolab report`.

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::metrics;
use crate::train::classical::ValidationProbe;
use crate::train::{Dataset, TrainError, Trained};

/// Shuffles per feature.
pub const REPEATS: usize = 5;

/// The run file.
pub const FILE: &str = "importance.parquet";

/// `(mean, std)` UA drop per feature of `rows` (clip vectors) with `labels`; `predict` maps
/// rows to class indices.
pub fn permutation(
    rows: &[Vec<f32>],
    labels: &[usize],
    classes: &[String],
    seed: u64,
    predict: impl FnMut(&[Vec<f32>]) -> Vec<usize>,
) -> Vec<(f64, f64)> {
    let d = rows.first().map_or(0, |r| r.len());
    let singletons: Vec<Vec<usize>> = (0..d).map(|j| vec![j]).collect();
    permutation_groups(rows, labels, classes, seed, &singletons, predict)
}

/// `(mean, std)` UA drop per group of columns, each group's columns shuffled together (one
/// permutation of the clips for the whole group: the group's values stay a real clip's). A
/// pretrained encoder's hundreds of anonymous dimensions are scored per layer this way.
pub fn permutation_groups(
    rows: &[Vec<f32>],
    labels: &[usize],
    classes: &[String],
    seed: u64,
    groups: &[Vec<usize>],
    mut predict: impl FnMut(&[Vec<f32>]) -> Vec<usize>,
) -> Vec<(f64, f64)> {
    let ua = |pred: &[usize]| metrics::compute(labels, pred, classes).ua;
    let base = ua(&predict(rows));
    let orders = draw(rows.len(), seed, groups.len());
    groups
        .iter()
        .zip(orders.chunks(REPEATS))
        .map(|(cols, orders)| {
            let drops: Vec<f64> = orders
                .iter()
                .map(|order| {
                    let mut x = rows.to_vec();
                    for (i, &src) in order.iter().enumerate() {
                        for &j in cols {
                            x[i][j] = rows[src][j];
                        }
                    }
                    base - ua(&predict(&x))
                })
                .collect();
            mean_sd(&drops)
        })
        .collect()
}

/// The shuffles of `n` clips for `groups` groups × [`REPEATS`], in the order they are used
/// (each a reshuffle of the previous one, from one seeded generator).
fn draw(n: usize, seed: u64, groups: usize) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1f1f_2e2e);
    let mut order: Vec<usize> = (0..n).collect();
    (0..groups * REPEATS)
        .map(|_| {
            order.shuffle(&mut rng);
            order.clone()
        })
        .collect()
}

fn mean_sd(drops: &[f64]) -> (f64, f64) {
    let m = drops.iter().sum::<f64>() / drops.len() as f64;
    let v = drops.iter().map(|x| (x - m).powi(2)).sum::<f64>() / drops.len() as f64;
    (m, v.sqrt())
}

/// [`permutation_in`] for a model that scores its own clips with permuted columns:
/// `votes(cols, order)` gives the predicted class of every clip `i` when the columns `cols`
/// take clip `order[i]`'s values (`cols` empty: the clips as they are). The same shuffles as
/// [`permutation_groups`]; groups and repeats are scored in parallel.
pub fn permutation_scored(
    n: usize,
    d: usize,
    labels: &[usize],
    classes: &[String],
    seed: u64,
    groups: Groups,
    votes: impl Fn(&[usize], &[usize]) -> Vec<usize> + Sync,
) -> Vec<(f64, f64)> {
    use rayon::prelude::*;
    let singletons: Vec<Vec<usize>>;
    let groups = match groups {
        Some(g) => g,
        None => {
            singletons = (0..d).map(|j| vec![j]).collect();
            &singletons
        }
    };
    let ua = |pred: &[usize]| metrics::compute(labels, pred, classes).ua;
    let identity: Vec<usize> = (0..n).collect();
    let base = ua(&votes(&[], &identity));
    let orders = draw(n, seed, groups.len());
    let drops: Vec<f64> = orders
        .par_iter()
        .enumerate()
        .map(|(t, order)| base - ua(&votes(&groups[t / REPEATS], order)))
        .collect();
    drops.chunks(REPEATS).map(mean_sd).collect()
}

/// Importance groups of a run: `None` for one per feature, else each group's columns.
pub type Groups<'a> = Option<&'a [Vec<usize>]>;

/// [`permutation`], or [`permutation_groups`] where `groups` is given.
pub fn permutation_in(
    rows: &[Vec<f32>],
    labels: &[usize],
    classes: &[String],
    seed: u64,
    groups: Groups,
    predict: impl FnMut(&[Vec<f32>]) -> Vec<usize>,
) -> Vec<(f64, f64)> {
    match groups {
        Some(g) => permutation_groups(rows, labels, classes, seed, g, predict),
        None => permutation(rows, labels, classes, seed, predict),
    }
}

/// [`permutation`] of a network trained on clip vectors, on the validation clips `val` (whose
/// speaker statistics, if any, stay attached to their clips).
fn of_network(
    model: &Trained,
    val: &Dataset,
    classes: &[String],
    seed: u64,
    groups: Groups,
) -> Result<Vec<(f64, f64)>, TrainError> {
    let rows: Vec<Vec<f32>> = val.features.iter().map(|x| x.to_vec()).collect();
    let mut failed = None;
    let imp = permutation_in(&rows, &val.labels, classes, seed, groups, |x| {
        let ds = Dataset {
            features: x.iter().map(|r| r.clone().into()).collect(),
            ..val.clone()
        };
        match model.predict_proba(&ds) {
            Ok(p) => p.iter().map(|r| metrics::argmax(r)).collect(),
            Err(e) => {
                failed.get_or_insert(e);
                vec![0; x.len()]
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(imp),
    }
}

/// A fitted model whose importance is measured on the validation clips.
pub enum Subject<'a> {
    /// A classical model fitted on the training clips, with the validation vectors.
    Classical(&'a ValidationProbe),
    /// A network trained on clip vectors, with the validation clips.
    Network {
        model: &'a Trained,
        val: &'a Dataset,
    },
}

/// Permutation importance of `subject` on its validation clips: `(mean, std)` UA drop per
/// feature, or per group of columns where `groups` is given.
pub fn measure(
    subject: Subject,
    classes: &[String],
    seed: u64,
    groups: Groups,
) -> Result<Vec<(f64, f64)>, TrainError> {
    match subject {
        Subject::Classical(probe) => Ok(of_classical(probe, classes, seed, groups)),
        Subject::Network { model, val } => of_network(model, val, classes, seed, groups),
    }
}

/// [`permutation_scored`] of a classical model fitted on the training clips, on the validation
/// vectors of its probe: the model scores permuted columns itself (an SVM updates its kernel
/// arguments by the shuffled columns' terms only).
fn of_classical(
    probe: &ValidationProbe,
    classes: &[String],
    seed: u64,
    groups: Groups,
) -> Vec<(f64, f64)> {
    let permuted = probe.estimator.permuted(&probe.x);
    permutation_scored(
        probe.x.nrows(),
        probe.x.ncols(),
        &probe.labels,
        classes,
        seed,
        groups,
        |cols, order| permuted.votes(cols, order),
    )
}

/// Write `importance.parquet` into `dir` (atomically).
pub fn write(dir: &Path, names: &[String], values: &[(f64, f64)]) -> Result<()> {
    let mut df = DataFrame::new(vec![
        Column::new("feature".into(), names),
        Column::new(
            "importance".into(),
            values.iter().map(|v| v.0).collect::<Vec<f64>>(),
        ),
        Column::new(
            "std".into(),
            values.iter().map(|v| v.1).collect::<Vec<f64>>(),
        ),
    ])?;
    let path = dir.join(FILE);
    crate::util::atomic_write(&path, |w| {
        ParquetWriter::new(w).finish(&mut df)?;
        Ok(())
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_feature_the_model_reads_matters() {
        // The "model" predicts class 1 when feature 0 is positive; feature 1 is ignored.
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|i| vec![if i % 2 == 0 { 1.0 } else { -1.0 }, i as f32])
            .collect();
        let labels: Vec<usize> = (0..40).map(|i| (i % 2 == 0) as usize).collect();
        let classes = vec!["a".to_string(), "b".to_string()];
        let imp = permutation(&rows, &labels, &classes, 0, |x| {
            x.iter().map(|r| (r[0] > 0.0) as usize).collect()
        });
        assert!(imp[0].0 > 0.3, "{imp:?}");
        assert_eq!(imp[1], (0.0, 0.0));
    }

    #[test]
    fn a_group_is_shuffled_as_one_and_singletons_match_per_feature() {
        // The model reads the sum of columns 0 and 1 (one "layer"); columns 2-3 are ignored.
        let rows: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let s = if i % 2 == 0 { 1.0 } else { -1.0 };
                vec![s, s, i as f32, -(i as f32)]
            })
            .collect();
        let labels: Vec<usize> = (0..40).map(|i| (i % 2 == 0) as usize).collect();
        let classes = vec!["a".to_string(), "b".to_string()];
        let model = |x: &[Vec<f32>]| x.iter().map(|r| (r[0] + r[1] > 0.0) as usize).collect();
        let imp = permutation_groups(
            &rows,
            &labels,
            &classes,
            3,
            &[vec![0, 1], vec![2, 3]],
            model,
        );
        assert_eq!(imp.len(), 2);
        assert!(imp[0].0 > 0.3, "{imp:?}");
        assert_eq!(imp[1], (0.0, 0.0));
        let singles: Vec<Vec<usize>> = (0..4).map(|j| vec![j]).collect();
        assert_eq!(
            permutation_groups(&rows, &labels, &classes, 3, &singles, model),
            permutation(&rows, &labels, &classes, 3, model)
        );
    }
}
